//! `State::apply` across the three sources: the video-conferencing and SOC rules of
//! docs/contract.md §2.5 and §2.6, source silence (§2.7), the views, serde round trips, and the order-independence
//! property test. The dossier status machine has its own tests in `dossiers/tests.rs`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::decode::{DossierKind, Source};
use crate::derive::View;
use crate::derive::view::{AgencyGauges, AgencyPeriods};
use support::{ARRIVAL, START, apply, onestop, plain, received, resolved, state, state_with, t};

/// Helpers shared with `dossiers/tests.rs`: payloads from `iocd_testkit`, decoded.
pub(super) mod support {
    use iocd_testkit as tk;
    use serde_json::Value;

    use crate::decode::{DecodeLimits, Event, Source, decode};
    use crate::state::{Input, Outcome, Params, State, Timing};
    use crate::time::{Ts, parse_rfc3339};

    /// When the daemon first started in these tests.
    pub const START: Ts = Ts::from_secs(1_795_453_200); // 2026-11-24T00:00:00+07:00
    /// The arrival time of every event (only the dedupe memory uses it).
    pub const ARRIVAL: Ts = Ts::from_secs(1_796_058_000); // 2026-12-01T00:00:00+07:00
    /// The clock decode checks `occurred_at` against: far enough that nothing is "future".
    const DECODE_NOW: Ts = Ts::from_secs(4_102_444_800); // 2100-01-01

    /// An RFC 3339 instant.
    pub fn t(s: &str) -> Ts {
        parse_rfc3339(s).unwrap_or_else(|_| panic!("bad test timestamp {s}"))
    }

    /// A fresh state with default parameters, started at [`START`].
    pub fn state() -> State {
        State::new(Params::default(), START)
    }

    /// A fresh state with these parameters.
    pub fn state_with(params: Params, started_at: Ts) -> State {
        State::new(params, started_at)
    }

    /// Applies an event arriving at [`ARRIVAL`].
    pub fn apply(state: &mut State, ev: &Event<'_>) -> Outcome {
        state.apply(&Input::Event(ev.clone()), ARRIVAL)
    }

    /// Decodes a JSON payload of `source`; the bytes are leaked (tests only).
    pub fn event(source: Source, payload: &Value) -> Event<'static> {
        let bytes: &'static [u8] = Box::leak(payload.to_string().into_bytes().into_boxed_slice());
        decode(source, bytes, DECODE_NOW, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("test payload {payload} rejected: {e}"))
    }

    /// A testkit payload, decoded as its source's topic would be.
    pub fn decoded(payload: &tk::Payload) -> Event<'static> {
        let source = Source::ALL
            .into_iter()
            .find(|s| s.as_str() == payload.source())
            .unwrap_or_else(|| panic!("unknown source {}", payload.source()));
        event(source, &payload.json())
    }

    /// An event of `source` with the envelope and the fields of `extra`.
    pub fn envelope(
        source: Source,
        event_id: &str,
        ty: &str,
        at: &str,
        extra: Value,
    ) -> Event<'static> {
        decoded(
            &tk::event(source.as_str(), ty)
                .id(event_id)
                .at(at)
                .merge(extra),
        )
    }

    /// A one-stop event about `dossier`, with the fields of `extra`.
    pub fn onestop(
        event_id: &str,
        ty: &str,
        at: &str,
        dossier: &str,
        extra: Value,
    ) -> Event<'static> {
        let payload = tk::dossier(ty, dossier).id(event_id).at(at).merge(extra);
        decoded(&payload.set("dossier_id", dossier))
    }

    /// A one-stop event with no field beside `dossier_id`.
    pub fn plain(event_id: &str, ty: &str, at: &str, dossier: &str) -> Event<'static> {
        decoded(&tk::dossier(ty, dossier).id(event_id).at(at))
    }

    /// A `received` of procedure `P`.
    pub fn received(
        event_id: &str,
        at: &str,
        dossier: &str,
        agency: &str,
        channel: &str,
        due: Value,
    ) -> Event<'static> {
        let payload = tk::received(dossier).id(event_id).at(at);
        decoded(&payload.agency(agency).channel(channel).due(due))
    }

    /// A `resolved` without agency.
    pub fn resolved(event_id: &str, at: &str, dossier: &str, due: Value) -> Event<'static> {
        decoded(&tk::resolved(dossier).id(event_id).at(at).due(due))
    }

    /// Dossiers resolved with this timing, all agencies together.
    pub fn resolved_total(state: &State, timing: Timing) -> u64 {
        state
            .counters
            .resolved
            .iter()
            .map(|row| row[timing as usize])
            .sum()
    }

    /// Every ordering of `items`.
    pub fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first.clone());
                out.push(tail);
            }
        }
        out
    }
}

use iocd_testkit as tk;
use support::{decoded, envelope, permutations};

fn vc(event_id: &str, ty: &str, at: &str, extra: Value) -> crate::decode::Event<'static> {
    envelope(Source::Vc, event_id, ty, at, extra)
}

fn soc(event_id: &str, ty: &str, at: &str, extra: Value) -> crate::decode::Event<'static> {
    envelope(Source::Soc, event_id, ty, at, extra)
}

/// `meeting_started` titled `Họp {meeting}`.
fn started(
    event_id: &str,
    at: &str,
    meeting: &str,
    level: &str,
    expected: &[&str],
) -> crate::decode::Event<'static> {
    let payload = tk::meeting_started(meeting).id(event_id).at(at);
    decoded(
        &payload
            .set("level", level)
            .set("expected_endpoints", expected),
    )
}

fn ended(event_id: &str, at: &str, meeting: &str) -> crate::decode::Event<'static> {
    decoded(&tk::meeting_ended(meeting).id(event_id).at(at))
}

fn joined(
    event_id: &str,
    at: &str,
    meeting: &str,
    endpoint: &str,
) -> crate::decode::Event<'static> {
    decoded(&tk::endpoint_joined(meeting, endpoint).id(event_id).at(at))
}

fn left(event_id: &str, at: &str, meeting: &str, endpoint: &str) -> crate::decode::Event<'static> {
    decoded(&tk::endpoint_left(meeting, endpoint).id(event_id).at(at))
}

fn stats(
    event_id: &str,
    at: &str,
    meeting: &str,
    endpoint: &str,
    loss: f64,
    jitter: f64,
    rtt: f64,
) -> crate::decode::Event<'static> {
    let payload = tk::endpoint_stats(meeting, endpoint).id(event_id).at(at);
    decoded(&payload.quality(loss, jitter, rtt))
}

fn apply_all(state: &mut State, events: &[crate::decode::Event<'static>]) {
    for e in events {
        apply(state, e);
    }
}

fn connected(state: &State, endpoint: &str) -> Option<String> {
    state
        .vc
        .endpoints
        .get(endpoint)?
        .connected_to(&state.vc.meetings)
        .map(str::to_owned)
}

// ---------------------------------------------------------------- video conferencing

#[test]
fn a_meeting_is_active_after_its_start_and_inactive_after_its_end() {
    let mut s = state();
    apply(
        &mut s,
        &started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]),
    );
    let now = t("2026-11-24T08:30:00+07:00");
    assert_eq!(s.view(now).vc.meetings_active, [0, 1, 0, 0]);
    assert_eq!(
        s.vc.meetings["M1"].started_at(),
        Some(t("2026-11-24T08:00:00+07:00"))
    );
    apply(&mut s, &ended("v2", "2026-11-24T09:00:00+07:00", "M1"));
    assert_eq!(s.view(now).vc.meetings_active, [0, 0, 0, 0]);
    assert!(!s.vc.meetings["M1"].active());
}

#[test]
fn a_start_older_than_the_latest_end_does_not_reactivate_a_meeting() {
    let mut s = state();
    apply(&mut s, &ended("v2", "2026-11-24T09:00:00+07:00", "M1"));
    apply(
        &mut s,
        &started("v1", "2026-11-24T08:00:00+07:00", "M1", "central", &["E1"]),
    );
    assert!(!s.vc.meetings["M1"].active());
    let v = s.view(t("2026-11-24T10:00:00+07:00"));
    assert_eq!(v.vc.meetings_active, [0, 0, 0, 0]);
    assert_eq!(v.vc.endpoints_missing, 0);
}

#[test]
fn a_meeting_ended_and_started_again_starts_afresh_at_its_earliest_start_after_the_end() {
    let events = [
        started(
            "s1",
            "2026-11-24T08:00:00+07:00",
            "M1",
            "central",
            &["E1", "E2", "E3"],
        ),
        ended("e1", "2026-11-24T09:00:00+07:00", "M1"),
        started(
            "s2",
            "2026-11-24T09:30:00+07:00",
            "M1",
            "province",
            &["E1", "E2"],
        ),
        started("s3", "2026-11-24T09:32:00+07:00", "M1", "commune", &["E1"]),
    ];
    for order in permutations(&events) {
        let mut s = state();
        apply_all(&mut s, &order);
        let m = &s.vc.meetings["M1"];
        assert!(m.active());
        assert_eq!(m.started_at(), Some(t("2026-11-24T09:30:00+07:00")));
        assert_eq!(
            (m.level, m.title.as_str()),
            (Some(crate::decode::Level::Commune), "Họp M1")
        );
        assert_eq!(m.expected, ["E1"], "from the latest start");
        // Missing counts from the restart (09:30), not from the first start.
        assert_eq!(
            s.view(t("2026-11-24T09:35:00+07:00")).vc.endpoints_missing,
            0
        );
        assert_eq!(
            s.view(t("2026-11-24T09:35:00.000000001+07:00"))
                .vc
                .endpoints_missing,
            1
        );
        assert_eq!(
            s.view(t("2026-11-24T09:35:00+07:00")).vc.meetings_active,
            [0, 0, 1, 0]
        );
    }
}

#[test]
fn a_meeting_first_seen_through_endpoint_joined_is_active_with_level_unknown() {
    let mut s = state();
    apply(
        &mut s,
        &joined("v2", "2026-11-24T08:05:00+07:00", "M1", "E1"),
    );
    let now = t("2026-11-24T08:10:00+07:00");
    let v = s.view(now);
    assert_eq!(v.vc.meetings_active, [0, 0, 0, 1]);
    assert_eq!(v.vc.endpoints_connected, 1);
    assert_eq!(s.vc.meetings["M1"].started_at(), None);
    // The start, arriving late, says more.
    apply(
        &mut s,
        &started("v1", "2026-11-24T08:00:00+07:00", "M1", "central", &["E1"]),
    );
    assert_eq!(s.view(now).vc.meetings_active, [1, 0, 0, 0]);
    assert_eq!(connected(&s, "E1").as_deref(), Some("M1"));
}

#[test]
fn a_meeting_first_seen_through_another_event_is_inactive_once_an_end_is_known() {
    for first in ["endpoint_left", "endpoint_stats"] {
        let mut s = state();
        let e = match first {
            "endpoint_left" => left("v2", "2026-11-24T08:05:00+07:00", "M1", "E1"),
            _ => stats(
                "v2",
                "2026-11-24T08:05:00+07:00",
                "M1",
                "E1",
                0.0,
                0.0,
                10.0,
            ),
        };
        apply(&mut s, &e);
        assert_eq!(
            s.view(t("2026-11-24T08:10:00+07:00")).vc.meetings_active,
            [0, 0, 0, 1],
            "{first}"
        );
        apply(&mut s, &ended("v1", "2026-11-24T08:00:00+07:00", "M1"));
        assert_eq!(
            s.view(t("2026-11-24T08:10:00+07:00")).vc.meetings_active,
            [0, 0, 0, 0],
            "{first}"
        );
    }
}

#[test]
fn an_endpoint_is_connected_after_joining_and_not_after_leaving() {
    let mut s = state();
    let now = t("2026-11-24T09:00:00+07:00");
    apply(
        &mut s,
        &started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]),
    );
    apply(
        &mut s,
        &joined("v2", "2026-11-24T08:01:00+07:00", "M1", "E1"),
    );
    assert_eq!(s.view(now).vc.endpoints_connected, 1);
    apply(&mut s, &left("v3", "2026-11-24T08:30:00+07:00", "M1", "E1"));
    assert_eq!(s.view(now).vc.endpoints_connected, 0);
    // Rejoining after the leave connects it again.
    apply(
        &mut s,
        &joined("v4", "2026-11-24T08:40:00+07:00", "M1", "E1"),
    );
    assert_eq!(connected(&s, "E1").as_deref(), Some("M1"));
    // The meeting's end disconnects everyone.
    apply(&mut s, &ended("v5", "2026-11-24T08:50:00+07:00", "M1"));
    assert_eq!(s.view(now).vc.endpoints_connected, 0);
}

#[test]
fn an_endpoint_left_naming_another_meeting_changes_nothing() {
    let mut s = state();
    apply(
        &mut s,
        &started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]),
    );
    apply(
        &mut s,
        &joined("v2", "2026-11-24T08:01:00+07:00", "M1", "E1"),
    );
    apply(&mut s, &left("v3", "2026-11-24T08:30:00+07:00", "M2", "E1"));
    assert_eq!(connected(&s, "E1").as_deref(), Some("M1"));
    assert_eq!(
        s.view(t("2026-11-24T09:00:00+07:00"))
            .vc
            .endpoints_connected,
        1
    );
}

#[test]
fn joining_another_meeting_moves_the_endpoint() {
    let events = [
        started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &["E1"]),
        started("v2", "2026-11-24T08:00:00+07:00", "M2", "commune", &["E1"]),
        joined("v3", "2026-11-24T08:01:00+07:00", "M1", "E1"),
        joined("v4", "2026-11-24T08:20:00+07:00", "M2", "E1"),
    ];
    for order in permutations(&events) {
        let mut s = state();
        apply_all(&mut s, &order);
        assert_eq!(connected(&s, "E1").as_deref(), Some("M2"));
        let v = s.view(t("2026-11-24T09:00:00+07:00"));
        assert_eq!(v.vc.endpoints_connected, 1);
        assert_eq!(v.vc.endpoints_missing, 1, "E1 is missing from M1");
        let m1 = &s.vc.meetings["M1"];
        assert_eq!(
            s.vc.missing_in("M1", m1, &s.params().vc, t("2026-11-24T09:00:00+07:00"))
                .collect::<Vec<_>>(),
            ["E1"]
        );
    }
}

#[test]
fn a_left_arriving_before_its_join_still_disconnects() {
    let start = started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]);
    let join = joined("v2", "2026-11-24T08:01:00+07:00", "M1", "E1");
    let leave = left("v3", "2026-11-24T08:30:00+07:00", "M1", "E1");
    for order in permutations(&[start.clone(), join.clone(), leave.clone()]) {
        let mut s = state();
        apply_all(&mut s, &order);
        assert_eq!(connected(&s, "E1"), None);
    }
    // A leave older than the join does not.
    let old_leave = left("v0", "2026-11-24T07:59:00+07:00", "M1", "E1");
    for order in permutations(&[start, join, old_leave]) {
        let mut s = state();
        apply_all(&mut s, &order);
        assert_eq!(connected(&s, "E1").as_deref(), Some("M1"));
    }
}

#[test]
fn a_leave_and_join_at_the_same_instant_are_ordered_by_event_id() {
    let at = "2026-11-24T08:30:00+07:00";
    let start = started("v0", "2026-11-24T08:00:00+07:00", "M1", "province", &[]);
    let mut s = state();
    apply_all(
        &mut s,
        &[
            start.clone(),
            left("b", at, "M1", "E1"),
            joined("a", at, "M1", "E1"),
        ],
    );
    assert_eq!(
        connected(&s, "E1"),
        None,
        "the leave (b) is later than the join (a)"
    );
    let mut s = state();
    apply_all(
        &mut s,
        &[
            start,
            left("a", at, "M1", "E1"),
            joined("b", at, "M1", "E1"),
        ],
    );
    assert_eq!(connected(&s, "E1").as_deref(), Some("M1"));
}

#[test]
fn poor_quality_comes_only_from_stats_at_or_after_the_join_for_the_current_meeting() {
    let now = t("2026-11-24T09:00:00+07:00");
    let base = [
        started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]),
        started("v2", "2026-11-24T08:00:00+07:00", "M2", "province", &[]),
        joined("v3", "2026-11-24T08:10:00+07:00", "M1", "E1"),
    ];
    let poor = |id: &str, at: &str, meeting: &str| stats(id, at, meeting, "E1", 5.0, 0.0, 10.0);
    let cases: [(&str, Vec<crate::decode::Event<'static>>, u64); 6] = [
        (
            "before the join",
            vec![poor("q", "2026-11-24T08:09:59+07:00", "M1")],
            0,
        ),
        (
            "exactly at the join",
            vec![poor("q", "2026-11-24T08:10:00+07:00", "M1")],
            1,
        ),
        (
            "after the join",
            vec![poor("q", "2026-11-24T08:20:00+07:00", "M1")],
            1,
        ),
        (
            "for another meeting",
            vec![poor("q", "2026-11-24T08:20:00+07:00", "M2")],
            0,
        ),
        (
            "superseded by good stats",
            vec![
                stats(
                    "q2",
                    "2026-11-24T08:30:00+07:00",
                    "M1",
                    "E1",
                    0.0,
                    1.0,
                    20.0,
                ),
                poor("q1", "2026-11-24T08:20:00+07:00", "M1"),
            ],
            0,
        ),
        (
            "after leaving",
            vec![
                poor("q", "2026-11-24T08:20:00+07:00", "M1"),
                left("l", "2026-11-24T08:25:00+07:00", "M1", "E1"),
            ],
            0,
        ),
    ];
    for (what, events, expected) in cases {
        let mut s = state();
        apply_all(&mut s, &base);
        apply_all(&mut s, &events);
        assert_eq!(s.view(now).vc.endpoints_poor_quality, expected, "{what}");
    }
}

#[test]
fn stats_from_before_a_move_do_not_follow_the_endpoint() {
    let mut s = state();
    apply_all(
        &mut s,
        &[
            started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]),
            started("v2", "2026-11-24T08:00:00+07:00", "M2", "province", &[]),
            joined("v3", "2026-11-24T08:10:00+07:00", "M2", "E1"),
            stats(
                "q",
                "2026-11-24T08:12:00+07:00",
                "M2",
                "E1",
                9.0,
                90.0,
                900.0,
            ),
            joined("v4", "2026-11-24T08:20:00+07:00", "M1", "E1"),
        ],
    );
    assert_eq!(
        s.view(t("2026-11-24T09:00:00+07:00"))
            .vc
            .endpoints_poor_quality,
        0
    );
    // Rejoining M2 after those stats: they predate the new join.
    apply(
        &mut s,
        &joined("v5", "2026-11-24T08:30:00+07:00", "M2", "E1"),
    );
    assert_eq!(
        s.view(t("2026-11-24T09:00:00+07:00"))
            .vc
            .endpoints_poor_quality,
        0
    );
}

#[test]
fn quality_thresholds_are_strict() {
    let cases = [
        ((1.0, 30.0, 300.0), false),
        ((1.01, 0.0, 0.0), true),
        ((0.0, 30.5, 0.0), true),
        ((0.0, 0.0, 300.1), true),
        ((100.0, 0.0, 0.0), true),
    ];
    for ((loss, jitter, rtt), poor) in cases {
        let mut s = state();
        apply_all(
            &mut s,
            &[
                started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &[]),
                joined("v2", "2026-11-24T08:10:00+07:00", "M1", "E1"),
                stats(
                    "v3",
                    "2026-11-24T08:11:00+07:00",
                    "M1",
                    "E1",
                    loss,
                    jitter,
                    rtt,
                ),
            ],
        );
        assert_eq!(
            s.view(t("2026-11-24T09:00:00+07:00"))
                .vc
                .endpoints_poor_quality,
            u64::from(poor),
            "{loss} {jitter} {rtt}"
        );
    }
}

#[test]
fn an_expected_endpoint_is_missing_only_after_5_minutes_strictly_and_only_while_active() {
    let mut s = state();
    apply(
        &mut s,
        &started(
            "v1",
            "2026-11-24T08:00:00+07:00",
            "M1",
            "province",
            &["E1", "E2", "E3"],
        ),
    );
    apply(
        &mut s,
        &joined("v2", "2026-11-24T08:01:00+07:00", "M1", "E1"),
    );
    let edge = t("2026-11-24T08:05:00+07:00");
    assert_eq!(s.view(edge).vc.endpoints_missing, 0, "exactly 5 minutes");
    assert_eq!(s.view(Ts(edge.0 + 1)).vc.endpoints_missing, 2);
    // E2 joins another meeting: still missing from M1. E1 leaves: missing too.
    apply(
        &mut s,
        &joined("v3", "2026-11-24T08:02:00+07:00", "M9", "E2"),
    );
    apply(&mut s, &left("v4", "2026-11-24T08:20:00+07:00", "M1", "E1"));
    let now = t("2026-11-24T08:30:00+07:00");
    assert_eq!(s.view(now).vc.endpoints_missing, 3);
    apply(&mut s, &ended("v5", "2026-11-24T08:25:00+07:00", "M1"));
    assert_eq!(
        s.view(now).vc.endpoints_missing,
        0,
        "an ended meeting misses no one"
    );
}

// ---------------------------------------------------------------- SOC

/// `incident_opened` on system `S1`.
fn opened(
    event_id: &str,
    at: &str,
    incident: &str,
    severity: &str,
) -> crate::decode::Event<'static> {
    decoded(&tk::incident_opened(incident, severity).id(event_id).at(at))
}

fn acked(event_id: &str, at: &str, incident: &str) -> crate::decode::Event<'static> {
    decoded(&tk::incident_acknowledged(incident).id(event_id).at(at))
}

fn closed(event_id: &str, at: &str, incident: &str) -> crate::decode::Event<'static> {
    decoded(&tk::incident_resolved(incident).id(event_id).at(at))
}

/// An `alert` whose `alert_id` is its `event_id`.
fn alert(
    event_id: &str,
    at: &str,
    system: &str,
    severity: &str,
    category: &str,
) -> crate::decode::Event<'static> {
    let payload = tk::alert(event_id, system, severity).id(event_id).at(at);
    decoded(&payload.set("category", category))
}

#[test]
fn an_incident_is_open_and_unacknowledged_until_acknowledged_then_resolved() {
    let mut s = state();
    let now = t("2026-11-24T10:00:00+07:00");
    apply(
        &mut s,
        &opened("i1", "2026-11-24T08:00:00+07:00", "I1", "high"),
    );
    let v = s.view(now);
    assert_eq!(
        (v.soc.incidents_open, v.soc.incidents_unacknowledged),
        ([0, 0, 1, 0], [0, 0, 1, 0])
    );
    apply(&mut s, &acked("i2", "2026-11-24T08:10:00+07:00", "I1"));
    let v = s.view(now);
    assert_eq!(
        (v.soc.incidents_open, v.soc.incidents_unacknowledged),
        ([0, 0, 1, 0], [0; 4])
    );
    apply(&mut s, &closed("i3", "2026-11-24T09:00:00+07:00", "I1"));
    let v = s.view(now);
    assert_eq!(
        (v.soc.incidents_open, v.soc.incidents_unacknowledged),
        ([0; 4], [0; 4])
    );
}

#[test]
fn an_incident_resolved_without_acknowledgement_is_neither_open_nor_unacknowledged() {
    let mut s = state();
    apply(&mut s, &closed("i2", "2026-11-24T09:00:00+07:00", "I1"));
    assert_eq!(
        s.view(t("2026-11-24T10:00:00+07:00")).soc.incidents_open,
        [0; 4],
        "never opened"
    );
    apply(
        &mut s,
        &opened("i1", "2026-11-24T08:00:00+07:00", "I1", "critical"),
    );
    let v = s.view(t("2026-11-24T10:00:00+07:00"));
    assert_eq!(
        (v.soc.incidents_open, v.soc.incidents_unacknowledged),
        ([0; 4], [0; 4])
    );
    assert_eq!(s.counters.incident_resolve[3].count, 1);
    assert_eq!(s.counters.incident_ack[3].count, 0);
}

#[test]
fn ack_and_resolve_histograms_are_observed_once_from_the_earliest_opened() {
    let events = [
        opened("o1", "2026-11-24T08:00:00+07:00", "I1", "high"),
        opened("o2", "2026-11-24T08:05:00+07:00", "I1", "critical"),
        acked("a1", "2026-11-24T08:10:00+07:00", "I1"),
        acked("a2", "2026-11-24T08:20:00+07:00", "I1"),
        closed("r1", "2026-11-24T09:00:00+07:00", "I1"),
    ];
    let count = |h: &[counters::Histogram; 4]| h.iter().map(|h| h.count).sum::<u64>();
    for order in permutations(&events) {
        let mut s = state();
        apply_all(&mut s, &order);
        assert_eq!(count(&s.counters.incident_ack), 1);
        assert_eq!(count(&s.counters.incident_resolve), 1);
        assert_eq!(
            s.soc.incidents["I1"].severity,
            Some(crate::decode::Severity::Critical),
            "of the latest opened"
        );
    }
    // In order: from the earliest opened (08:00) to the earliest ack (08:10) and resolve (09:00).
    // (o2 arrived before the ack: the severity known then is critical.)
    let mut s = state();
    apply_all(&mut s, &events);
    assert_eq!(s.counters.incident_ack[3].count, 1);
    assert!((s.counters.incident_ack[3].sum - 600.0).abs() < 1e-9);
    assert_eq!(s.counters.incident_resolve[3].count, 1);
    assert!((s.counters.incident_resolve[3].sum - 3600.0).abs() < 1e-9);
    // Reversed: both ends are known when the last opened arrives; the earliest opened decides.
    let mut s = state();
    let mut reversed = events.to_vec();
    reversed.reverse();
    apply_all(&mut s, &reversed);
    assert!(
        (count_sum(&s.counters.incident_ack) - 300.0).abs() < 1e-9,
        "from o2, the only opened known then"
    );
}

fn count_sum(h: &[counters::Histogram; 4]) -> f64 {
    h.iter().map(|h| h.sum).sum()
}

#[test]
fn a_system_is_silent_more_than_10_minutes_after_its_latest_alert_or_heartbeat() {
    let mut s = state();
    apply(
        &mut s,
        &alert("a1", "2026-11-24T08:00:00+07:00", "S1", "low", "recon"),
    );
    apply(
        &mut s,
        &soc(
            "h1",
            "system_heartbeat",
            "2026-11-24T08:05:00+07:00",
            json!({"system_id": "S1"}),
        ),
    );
    apply(
        &mut s,
        &soc(
            "h0",
            "system_heartbeat",
            "2026-11-24T07:00:00+07:00",
            json!({"system_id": "S2"}),
        ),
    );
    // Neither a plain heartbeat nor an incident is news from a system.
    apply(
        &mut s,
        &soc("h2", "heartbeat", "2026-11-24T08:30:00+07:00", json!({})),
    );
    let incident = json!({"incident_id": "I1", "system_id": "S3", "severity": "low"});
    apply(
        &mut s,
        &soc(
            "i1",
            "incident_opened",
            "2026-11-24T08:30:00+07:00",
            incident,
        ),
    );
    let edge = t("2026-11-24T08:15:00+07:00");
    assert_eq!(s.silent_systems(edge).collect::<Vec<_>>(), ["S2"]);
    assert_eq!(s.view(edge).soc.systems_silent, 1);
    assert_eq!(s.view(Ts(edge.0 + 1)).soc.systems_silent, 2);
}

#[test]
fn a_configured_system_never_heard_from_is_silent_10_minutes_after_the_start() {
    let params = Params {
        systems: vec!["S9".into(), "S1".into()],
        ..Params::default()
    };
    let mut s = state_with(params, START);
    let edge = START.plus_secs(600);
    assert_eq!(s.view(edge).soc.systems_silent, 0);
    assert_eq!(s.view(Ts(edge.0 + 1)).soc.systems_silent, 2);
    apply(
        &mut s,
        &soc(
            "h1",
            "system_heartbeat",
            "2026-11-24T00:20:00+07:00",
            json!({"system_id": "S1"}),
        ),
    );
    let now = t("2026-11-24T00:25:00+07:00");
    assert_eq!(s.silent_systems(now).collect::<Vec<_>>(), ["S9"]);
}

#[test]
fn alerts_of_the_last_60_local_minutes_are_counted_by_severity() {
    let mut s = state();
    let now = t("2026-11-24T10:00:30+07:00");
    apply_all(
        &mut s,
        &[
            alert("a1", "2026-11-24T09:01:00+07:00", "S1", "low", "recon"),
            alert(
                "a2",
                "2026-11-24T09:30:00+07:00",
                "S1",
                "critical",
                "malware",
            ),
            alert("a3", "2026-11-24T10:00:00+07:00", "S2", "critical", "ddos"),
            alert("a4", "2026-11-24T10:02:00+07:00", "S2", "medium", "ddos"), // ahead, within the skew
            alert("a5", "2026-11-24T09:00:59+07:00", "S1", "high", "intrusion"), // out
        ],
    );
    let v = s.view(now);
    assert_eq!(v.soc.alerts_60m, [1, 1, 0, 2]);
    assert_eq!(s.counters.soc_alerts.iter().flatten().sum::<u64>(), 5);
    assert_eq!(
        s.counters.soc_alerts[3][crate::decode::Category::Malware as usize],
        1
    );
    assert_eq!(
        s.counters.soc_alerts[3][crate::decode::Category::Ddos as usize],
        1
    );
}

// ---------------------------------------------------------------- sources

#[test]
fn a_source_last_event_time_is_the_greatest_occurred_at_heartbeats_included() {
    let mut s = state();
    apply(
        &mut s,
        &joined("v1", "2026-11-24T08:00:00+07:00", "M1", "E1"),
    );
    apply(
        &mut s,
        &vc("hb", "heartbeat", "2026-11-24T08:30:00+07:00", json!({})),
    );
    apply(&mut s, &left("v2", "2026-11-24T08:10:00+07:00", "M1", "E1"));
    let v = s.view(t("2026-11-24T08:31:00+07:00"));
    assert_eq!(
        v.sources[Source::Vc.index()].last_event_at,
        Some(t("2026-11-24T08:30:00+07:00"))
    );
    assert_eq!(v.sources[Source::Onestop.index()].last_event_at, None);
    assert_eq!(s.counters.events_of(Source::Vc, "heartbeat"), 1);
    // Rejected payloads and duplicates are not accepted events.
    assert_eq!(
        s.apply(
            &Input::Rejected {
                source: Source::Vc,
                reason: crate::decode::Reason::InvalidJson
            },
            ARRIVAL
        ),
        Outcome::Rejected
    );
    apply(
        &mut s,
        &vc("hb", "heartbeat", "2026-11-24T09:00:00+07:00", json!({})),
    );
    assert_eq!(
        s.last_event[Source::Vc.index()],
        Some(t("2026-11-24T08:30:00+07:00"))
    );
    assert_eq!(
        s.counters.rejected[Source::Vc.index()][crate::decode::Reason::InvalidJson.index()],
        1
    );
}

#[test]
fn a_source_is_silent_more_than_5_minutes_after_its_latest_accepted_event() {
    let mut s = state();
    apply(
        &mut s,
        &soc("hb", "heartbeat", "2026-11-24T08:00:00+07:00", json!({})),
    );
    let edge = t("2026-11-24T08:05:00+07:00");
    assert!(!s.view(edge).sources[Source::Soc.index()].silent);
    assert!(s.view(Ts(edge.0 + 1)).sources[Source::Soc.index()].silent);
}

#[test]
fn a_source_that_never_sent_anything_is_silent_5_minutes_after_the_start() {
    let mut s = state();
    let edge = START.plus_secs(300);
    assert!(s.view(edge).sources.iter().all(|src| !src.silent));
    assert!(s.view(Ts(edge.0 + 1)).sources.iter().all(|src| src.silent));
    // An event older than the start still counts as the latest event.
    apply(
        &mut s,
        &plain("e1", "transferred", "2026-11-23T23:59:00+07:00", "D1"),
    );
    let v = s.view(Ts(edge.0 + 1));
    assert!(v.sources[Source::Onestop.index()].silent);
    assert_eq!(
        v.sources[Source::Onestop.index()].last_event_at,
        Some(t("2026-11-23T23:59:00+07:00"))
    );
}

// ---------------------------------------------------------------- views

#[test]
fn the_view_gives_dossier_gauges_per_agency() {
    let mut s = state();
    let due = "2026-11-24T12:00:00+07:00";
    apply_all(
        &mut s,
        &[
            received(
                "e1",
                "2026-11-24T08:00:00+07:00",
                "D1",
                "A",
                "online",
                json!(due),
            ),
            received(
                "e2",
                "2026-11-20T08:00:00+07:00",
                "D2",
                "A",
                "direct",
                json!("2026-11-21T12:00:00+07:00"),
            ),
            received(
                "e3",
                "2026-11-24T08:00:00+07:00",
                "D3",
                "B",
                "online",
                json!(null),
            ),
            onestop(
                "e4",
                "submitted",
                "2026-11-24T08:00:00+07:00",
                "D4",
                json!({"agency": "B", "procedure": "P", "channel": "online"}),
            ),
            onestop("e5", "paused", "2026-11-24T09:00:00+07:00", "D3", json!({})),
            plain(
                "e6",
                "supplement_requested",
                "2026-11-24T09:00:00+07:00",
                "D5",
            ),
        ],
    );
    let v = s.view(t("2026-11-24T10:00:00+07:00"));
    assert_eq!(v.agency_labels, ["unknown", "A", "B"]);
    // Late by the 766 rules: here, the overdue ones (no clock stopped late, no second
    // supplement request).
    let gauges = |open, overdue, due_soon, stalled| AgencyGauges {
        open,
        overdue,
        due_soon,
        stalled,
        late_766: overdue,
    };
    assert_eq!(
        v.agencies,
        [
            gauges([0, 0, 1, 0], 0, 0, 0),
            gauges([0, 2, 0, 0], 1, 1, 1),
            gauges([1, 0, 0, 1], 0, 0, 0)
        ]
    );
    assert_eq!(v.onestop.totals, gauges([1, 2, 1, 1], 1, 1, 1));
    assert_eq!(v.counters.received[1], [1, 1, 0]);
    assert_eq!(v.counters.received[2], [1, 0, 0]);
}

#[test]
fn agencies_past_the_label_limit_are_folded_into_other() {
    let mut s = state_with(
        Params {
            agency_label_limit: 2,
            ..Params::default()
        },
        START,
    );
    apply_all(
        &mut s,
        &[
            received(
                "e1",
                "2026-11-24T08:00:00+07:00",
                "D1",
                "A",
                "online",
                json!(null),
            ),
            onestop(
                "e2",
                "submitted",
                "2026-11-24T08:00:00+07:00",
                "D2",
                json!({"agency": "B", "procedure": "P", "channel": "online"}),
            ),
            received(
                "e3",
                "2026-11-24T08:00:00+07:00",
                "D3",
                "C",
                "direct",
                json!(null),
            ),
            received(
                "e4",
                "2026-11-24T08:00:00+07:00",
                "D4",
                "D",
                "postal",
                json!(null),
            ),
            onestop("e5", "paused", "2026-11-24T09:00:00+07:00", "D4", json!({})),
            plain("e6", "transferred", "2026-11-24T09:00:00+07:00", "D5"),
            resolved("e7", "2026-11-24T09:00:00+07:00", "D3", json!(null)),
        ],
    );
    let v = s.view(t("2026-11-24T10:00:00+07:00"));
    assert_eq!(v.agency_labels, ["unknown", "A", "B", "other"]);
    assert_eq!(v.agencies.len(), 4);
    assert_eq!(
        v.agencies[3].open,
        [0, 0, 0, 1],
        "D (paused); C is resolved"
    );
    assert_eq!(v.agencies[0].open, [0, 1, 0, 0]);
    assert_eq!(
        v.counters.received,
        [[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1]]
    );
    assert_eq!(v.counters.resolved[3], [0, 1, 0], "resolved by C, on time");
    // The state keeps the real agencies; only the view folds them.
    assert_eq!(s.agencies.name(s.dossiers.get("D4").unwrap().agency()), "D");
    // A later dossier of an agency with its own label keeps it.
    apply(
        &mut s,
        &received(
            "e8",
            "2026-11-24T09:30:00+07:00",
            "D6",
            "A",
            "online",
            json!(null),
        ),
    );
    assert_eq!(
        s.view(t("2026-11-24T10:00:00+07:00")).agencies[1].open,
        [0, 2, 0, 0]
    );
}

#[test]
fn an_agency_literally_named_other_shares_the_other_label() {
    let mut s = state_with(
        Params {
            agency_label_limit: 1,
            ..Params::default()
        },
        START,
    );
    apply_all(
        &mut s,
        &[
            received(
                "e1",
                "2026-11-24T08:00:00+07:00",
                "D1",
                "other",
                "online",
                json!(null),
            ),
            received(
                "e2",
                "2026-11-24T08:00:00+07:00",
                "D2",
                "A",
                "online",
                json!(null),
            ),
            received(
                "e3",
                "2026-11-24T08:00:00+07:00",
                "D3",
                "B",
                "online",
                json!(null),
            ),
        ],
    );
    let v = s.view(t("2026-11-24T10:00:00+07:00"));
    assert_eq!(v.agency_labels, ["unknown", "other"]);
    assert_eq!(v.agencies[1].open, [0, 3, 0, 0]);
}

// ---------------------------------------------------------------- order independence, named cases

#[test]
fn a_moved_window_count_leaves_no_trace_so_both_orders_give_equal_states() {
    // Found by the property test: moving a count used to leave an empty bucket behind.
    let r1 = received(
        "r1",
        "2026-11-24T08:00:00+07:00",
        "D1",
        "A",
        "online",
        json!(null),
    );
    let r2 = received(
        "r2",
        "2026-11-25T09:00:00+07:00",
        "D1",
        "A",
        "online",
        json!(null),
    );
    let s1 = resolved("s1", "2026-11-25T10:00:00+07:00", "D1", json!(null));
    let s2 = resolved("s2", "2026-11-26T10:00:00+07:00", "D1", json!(null));
    let mut a = state();
    apply_all(&mut a, &[r1.clone(), r2.clone(), s1.clone(), s2.clone()]);
    let mut b = state();
    apply_all(&mut b, &[s2, s1, r2, r1]);
    // The counters count once, with the labels and values known when each item first
    // became countable, so they may split differently; the rest must be equal.
    assert_same_state_but_counters(&a, &b);
    let v = |s: &State| s.view(t("2026-11-24T08:30:00+07:00"));
    assert_same_view(&v(&a), &v(&b));
}

#[test]
fn an_endpoint_s_meetings_are_the_same_whatever_the_arrival_order() {
    // Found by the property test: per-meeting records were kept in arrival order.
    let join = joined("v1", "2026-11-26T17:45:00+07:00", "M0", "E2");
    let leave = left("v2", "2026-11-24T01:30:00+07:00", "M1", "E2");
    let stat = stats("v3", "2026-11-24T01:00:00+07:00", "M2", "E2", 0.0, 0.0, 1.0);
    let mut first: Option<State> = None;
    for order in permutations(&[join, leave, stat]) {
        let mut s = state();
        apply_all(&mut s, &order);
        match &first {
            Some(f) => assert_eq!(&s, f),
            None => first = Some(s),
        }
    }
}

// ---------------------------------------------------------------- serde

/// Compares two views field by field. Counters of received and resolved dossiers, and the
/// histograms, may split their totals differently across labels (docs/contract.md §3.1,
/// order independence): only their totals are compared; everything else must be identical.
fn assert_same_view(a: &View, b: &View) {
    assert_eq!(a.at, b.at);
    assert_eq!(a.agency_labels, b.agency_labels, "agency labels");
    assert_eq!(a.agencies, b.agencies, "agency gauges");
    assert_eq!(a.agency_periods, b.agency_periods, "agency periods");
    assert_same_figures(a, b);
}

/// Everything but the agency labels and per-label gauges.
fn assert_same_figures(a: &View, b: &View) {
    assert_eq!(a.onestop, b.onestop, "onestop");
    assert_eq!(a.vc, b.vc, "vc");
    assert_eq!(a.soc, b.soc, "soc");
    assert_eq!(a.sources, b.sources, "sources");
    assert_eq!(a.dossiers_held, b.dossiers_held, "dossiers held");
    assert_eq!(a.dedupe_ids, b.dedupe_ids, "dedupe ids");
    assert_eq!(a.meetings, b.meetings, "meeting rows");
    assert_eq!(a.silent_system_ids, b.silent_system_ids, "silent systems");
    assert_eq!(a.sectors, b.sectors, "sectors");
    let (x, y) = (&a.counters, &b.counters);
    assert_eq!(x.events, y.events, "events_total");
    assert_eq!(x.duplicates, y.duplicates, "duplicates");
    assert_eq!(x.rejected, y.rejected, "rejected");
    assert_eq!(x.soc_alerts, y.soc_alerts, "soc alerts");
    let total = |rows: &[[u64; 3]]| rows.iter().flatten().sum::<u64>();
    assert_eq!(total(&x.received), total(&y.received), "received total");
    assert_eq!(total(&x.resolved), total(&y.resolved), "resolved total");
    assert_eq!(x.resolution.count, y.resolution.count, "resolution count");
    let count = |h: &[counters::Histogram; 4]| h.iter().map(|h| h.count).sum::<u64>();
    assert_eq!(count(&x.incident_ack), count(&y.incident_ack), "ack count");
    assert_eq!(
        count(&x.incident_resolve),
        count(&y.incident_resolve),
        "resolve count"
    );
}

fn rich_state() -> State {
    let params = Params {
        systems: vec!["S9".into()],
        ..Params::default()
    };
    let mut s = state_with(params, START);
    apply_all(
        &mut s,
        &[
            received(
                "e1",
                "2026-11-24T08:00:00.123456789+07:00",
                "D1",
                "A",
                "online",
                json!("2026-11-25T17:00:00+07:00"),
            ),
            resolved(
                "e2",
                "2026-11-24T09:13:07.000000311+07:00",
                "D1",
                json!("2026-11-25T17:00:00+07:00"),
            ),
            received(
                "e3",
                "2026-11-24T08:30:00+07:00",
                "D2",
                "B",
                "postal",
                json!(null),
            ),
            onestop(
                "e4",
                "paused",
                "2026-11-24T08:40:00+07:00",
                "D2",
                json!({"reason": "fees"}),
            ),
            plain("e5", "transferred", "2026-11-24T09:40:00+07:00", "D3"),
            started(
                "v1",
                "2026-11-24T08:00:00+07:00",
                "M1",
                "central",
                &["E1", "E2"],
            ),
            joined("v2", "2026-11-24T08:01:00+07:00", "M1", "E1"),
            stats(
                "v3",
                "2026-11-24T08:02:00.5+07:00",
                "M1",
                "E1",
                1.3,
                12.7,
                88.1,
            ),
            joined("v4", "2026-11-24T08:03:00+07:00", "M7", "E3"),
            opened("s1", "2026-11-24T08:00:00+07:00", "I1", "high"),
            acked("s2", "2026-11-24T08:17:33.333333333+07:00", "I1"),
            opened("s3", "2026-11-24T09:00:00+07:00", "I2", "low"),
            closed("s4", "2026-11-24T09:05:00+07:00", "I2"),
            alert(
                "s5",
                "2026-11-24T09:50:00+07:00",
                "S1",
                "medium",
                "phishing",
            ),
        ],
    );
    s.apply(
        &Input::Rejected {
            source: Source::Soc,
            reason: crate::decode::Reason::TooLarge,
        },
        ARRIVAL,
    );
    apply(
        &mut s,
        &plain("e5", "transferred", "2026-11-24T09:40:00+07:00", "D3"),
    );
    s
}

#[test]
fn a_state_round_trips_through_serde_json_and_gives_the_same_view() {
    let s = rich_state();
    let text = serde_json::to_string(&s).unwrap();
    let mut back: State = serde_json::from_str(&text).unwrap();
    back.set_params(s.params().clone());
    assert_eq!(back, s);
    for now in ["2026-11-24T10:00:00+07:00", "2026-11-27T10:00:00+07:00"] {
        assert_same_view(&back.view(t(now)), &s.view(t(now)));
        assert_eq!(back.view(t(now)).counters, s.view(t(now)).counters);
    }
    // The dedupe memory survives: a redelivery is still a duplicate.
    assert_eq!(
        apply(
            &mut back,
            &plain("e5", "transferred", "2026-11-24T09:40:00+07:00", "D3")
        ),
        Outcome::Duplicate
    );
    // And the restored state keeps applying like the original.
    let mut s = s;
    let next = resolved("e9", "2026-11-24T09:55:00+07:00", "D2", json!(null));
    assert_eq!(apply(&mut s, &next), apply(&mut back, &next));
    assert_eq!(back.counters.duplicates, [2, 0, 0]);
    back.counters.duplicates = s.counters.duplicates;
    assert_eq!(back, s);
}

// ---------------------------------------------------------------- order independence

/// Start of the generated events; `occurred_at` is `BASE + slot × 15 min`.
const BASE: Ts = Ts::from_secs(1_795_482_000); // 2026-11-24T08:00:00+07:00
const SLOT_SECS: i64 = 15 * 60;
const SLOTS: u32 = 288; // 72 hours
/// The views compare at a few instants: just after the last slot (inside the windows), and
/// later, when time has passed without events.
const VIEW_AT: [i64; 3] = [
    287 * SLOT_SECS + 3 * 60,
    287 * SLOT_SECS + 61 * 60,
    400 * SLOT_SECS,
];

fn slot_time(slot: u32, offset: u8) -> String {
    let ts = BASE.plus_secs(i64::from(slot) * SLOT_SECS);
    let tz = match offset {
        0 => jiff::tz::TimeZone::UTC,
        1 => jiff::tz::TimeZone::fixed(jiff::tz::offset(7)),
        _ => jiff::tz::TimeZone::fixed(jiff::tz::offset(-5)),
    };
    ts.to_rfc3339(&tz)
}

fn due(choice: u8, slot: u32, required: bool) -> Option<Value> {
    match choice {
        0 if !required => None,
        0 | 1 => Some(Value::Null),
        _ => Some(slot_time(slot, 1).into()),
    }
}

prop_compose! {
    fn dossier_body()(
        kind in 0..DossierKind::ALL.len(), dossier in 0..3u8, agency in prop::option::weighted(0.6, 0..3u8),
        procedure in 0..2u8, channel in 0..3usize, due_choice in 0..4u8, due_slot in 0..(SLOTS + 120),
        facts in prop::array::uniform4(prop::option::of(any::<bool>())),
        choice in 0..3usize,
    ) -> Value {
        let kind = DossierKind::ALL[kind];
        // Contract 1.2: the facts, each absent, false or true; a payment's method; a rating
        // with or without a complaint.
        let set = |v: &mut Value, key: &str, fact: Option<bool>| {
            if let Some(b) = fact {
                v[key] = b.into();
            }
        };
        match kind {
            DossierKind::Paid => {
                let method = crate::decode::PaymentMethod::ALL[choice].as_str();
                return json!({"type": "paid", "dossier_id": format!("D{dossier}"), "method": method});
            }
            DossierKind::Rated => {
                let rating = crate::decode::Rating::ALL[choice].as_str();
                let mut v = json!({"type": "rated", "dossier_id": format!("D{dossier}"), "rating": rating});
                set(&mut v, "complaint", facts[0]);
                return v;
            }
            _ => {}
        }
        let intake = matches!(kind, DossierKind::Submitted | DossierKind::Received);
        let required = matches!(kind, DossierKind::Received | DossierKind::Resolved);
        let mut v = json!({"type": kind.as_str(), "dossier_id": format!("D{dossier}")});
        if let Some(agency) = agency.or(intake.then_some(0)) {
            v["agency"] = format!("A{agency}").into();
        }
        if intake {
            v["procedure"] = format!("P{procedure}").into();
            v["sector"] = format!("S{}", (procedure + dossier) % 2).into();
            v["channel"] = crate::decode::Channel::ALL[channel].as_str().into();
        }
        if let Some(due) = due(due_choice, due_slot, required) {
            v["due_at"] = due;
        }
        if kind == DossierKind::Received {
            for (key, fact) in ["fee_required", "paper_result", "digitised", "reused_data"].into_iter().zip(facts) {
                set(&mut v, key, fact);
            }
        }
        if matches!(kind, DossierKind::Resolved | DossierKind::Returned) {
            set(&mut v, "result_electronic", facts[3]);
        }
        v
    }
}

prop_compose! {
    fn vc_body()(
        kind in 0..5u8, meeting in 0..2u8, endpoint in 0..3u8, level in 0..3usize,
        expected in prop::sample::subsequence(vec!["E0", "E1", "E2"], 0..=3),
        agency in prop::option::of(0..3u8),
        loss in prop::sample::select(vec![0.0, 1.0, 1.5, 40.0]),
        jitter in prop::sample::select(vec![0.0, 30.0, 31.0]),
        rtt in prop::sample::select(vec![20.0, 300.0, 301.0]),
    ) -> Value {
        let meeting_id = format!("M{meeting}");
        let endpoint_id = format!("E{endpoint}");
        let level = ["central", "province", "commune"][level];
        match kind {
            0 => json!({"type": "meeting_started", "meeting_id": meeting_id, "title": "t",
                        "level": level, "expected_endpoints": expected}),
            1 => json!({"type": "meeting_ended", "meeting_id": meeting_id}),
            2 => {
                let mut v = json!({"type": "endpoint_joined", "meeting_id": meeting_id, "endpoint_id": endpoint_id});
                if let Some(a) = agency {
                    v["agency"] = format!("A{a}").into();
                }
                v
            }
            3 => json!({"type": "endpoint_left", "meeting_id": meeting_id, "endpoint_id": endpoint_id}),
            _ => json!({"type": "endpoint_stats", "meeting_id": meeting_id, "endpoint_id": endpoint_id,
                        "packet_loss_pct": loss, "jitter_ms": jitter, "rtt_ms": rtt, "bitrate_kbps": 512}),
        }
    }
}

prop_compose! {
    fn soc_body()(kind in 0..5u8, incident in 0..2u8, system in 0..2u8, severity in 0..4usize, category in 0..7usize) -> Value {
        let severity = crate::decode::Severity::ALL[severity].as_str();
        let (incident_id, system_id) = (format!("I{incident}"), format!("S{system}"));
        match kind {
            0 => json!({"type": "alert", "alert_id": "x", "system_id": system_id, "severity": severity,
                        "category": crate::decode::Category::ALL[category].as_str()}),
            1 => json!({"type": "incident_opened", "incident_id": incident_id, "system_id": system_id, "severity": severity}),
            2 => json!({"type": "incident_acknowledged", "incident_id": incident_id}),
            3 => json!({"type": "incident_resolved", "incident_id": incident_id}),
            _ => json!({"type": "system_heartbeat", "system_id": system_id}),
        }
    }
}

fn body() -> impl Strategy<Value = (Source, Value)> {
    prop_oneof![
        5 => dossier_body().prop_map(|v| (Source::Onestop, v)),
        3 => vc_body().prop_map(|v| (Source::Vc, v)),
        3 => soc_body().prop_map(|v| (Source::Soc, v)),
        1 => (0..3usize).prop_map(|s| (Source::ALL[s], json!({"type": "heartbeat"}))),
    ]
}

/// Slots cluster near the end (the last hour, where the per-minute windows look) and
/// collide often (equal timestamps).
fn slot() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0..SLOTS, 2 => (SLOTS - 8)..SLOTS, 1 => prop::sample::select(vec![0, 100, 200])]
}

/// Payloads in generated order, and the same in a random permutation.
type Payloads = Vec<(Source, String)>;

fn scenario() -> impl Strategy<Value = (Payloads, Payloads)> {
    (
        prop::collection::vec((body(), slot(), 0..3u8, 0..40u8), 1..48),
        prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    )
        .prop_map(|(items, dups)| {
            let mut used = std::collections::HashSet::new();
            let mut out: Payloads = items
                .into_iter()
                .enumerate()
                .map(|(i, ((source, mut v), slot, offset, id))| {
                    // Small ids (ties between them decide equal timestamps), unique per source.
                    let mut event_id = id.to_string();
                    if !used.insert((source, event_id.clone())) {
                        event_id = format!("{id}~{i}");
                        used.insert((source, event_id.clone()));
                    }
                    v["event_id"] = event_id.into();
                    v["occurred_at"] = slot_time(slot, offset).into();
                    (source, v.to_string())
                })
                .collect();
            // Redeliveries: the very same payload again.
            let copies: Vec<_> = dups
                .iter()
                .map(|d| out[d.index(out.len())].clone())
                .collect();
            out.extend(copies);
            out
        })
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

fn decode_all(payloads: &Payloads) -> Vec<crate::decode::Event<'_>> {
    payloads
        .iter()
        .map(|(source, p)| {
            crate::decode::decode(
                *source,
                p.as_bytes(),
                ARRIVAL,
                &crate::decode::DecodeLimits::default(),
            )
            .unwrap_or_else(|e| panic!("generated payload {p} rejected: {e}"))
        })
        .collect()
}

/// Applies `events` to a fresh state; `preintern` interns every agency and procedure code
/// first, in a fixed order, so that interned ids (which follow arrival order, docs/contract.md §5.3's
/// label limit) do not differ between two orders.
fn run(events: &[crate::decode::Event<'_>], preintern: bool) -> State {
    let params = Params {
        systems: vec!["S0".into(), "S7".into()],
        ..Params::default()
    };
    let mut s = State::new(params, BASE.plus_secs(-3600));
    if preintern {
        for i in 0..3 {
            s.agencies.intern(&format!("A{i}"));
        }
        for i in 0..2 {
            for j in 0..2 {
                s.procedures.intern(&format!("P{i}\u{1f}S{j}"));
            }
        }
    }
    for e in events {
        s.apply(&Input::Event(e.clone()), ARRIVAL);
    }
    s
}

/// `a == b` but for the counters, part by part so that a failure names the part.
fn assert_same_state_but_counters(a: &State, b: &State) {
    assert_eq!(a.started_at, b.started_at, "started_at");
    assert_eq!(a.dedupe, b.dedupe, "dedupe");
    assert_eq!(a.windows, b.windows, "windows");
    assert_eq!(a.agencies, b.agencies, "agencies");
    assert_eq!(a.procedures, b.procedures, "procedures");
    assert_eq!(a.dossiers, b.dossiers, "dossiers");
    assert_eq!(a.periods, b.periods, "periods");
    assert_eq!(a.vc, b.vc, "vc");
    assert_eq!(a.soc, b.soc, "soc");
    assert_eq!(a.last_event, b.last_event, "last_event");
    let (mut a, mut b) = (a.clone(), b.clone());
    a.counters = Counters::default();
    b.counters = Counters::default();
    assert!(a == b, "state but counters");
}

fn agencies_by_name(v: &View) -> BTreeMap<&str, (AgencyGauges, AgencyPeriods)> {
    v.agency_labels
        .iter()
        .map(String::as_str)
        .zip(
            v.agencies
                .iter()
                .copied()
                .zip(v.agency_periods.iter().copied()),
        )
        .collect()
}

proptest! {
    // No regression file: failures are turned into named tests in this module instead.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_same_events_in_any_order_give_the_same_state_views_and_counter_totals((ordered, shuffled) in scenario()) {
        let (a_events, b_events) = (decode_all(&ordered), decode_all(&shuffled));
        let (a, b) = (run(&a_events, true), run(&b_events, true));
        // Counters may split their totals differently across labels: compared by total below.
        assert_same_state_but_counters(&a, &b);
        prop_assert_eq!(a.counters.duplicates, b.counters.duplicates);
        for at in VIEW_AT {
            assert_same_view(&a.view(BASE.plus_secs(at)), &b.view(BASE.plus_secs(at)));
        }
        // Without pre-interning, labels are handed out in arrival order, but every agency's
        // gauges and every other figure are the same.
        let (a, b) = (run(&a_events, false), run(&b_events, false));
        for at in VIEW_AT {
            let (va, vb) = (a.view(BASE.plus_secs(at)), b.view(BASE.plus_secs(at)));
            prop_assert_eq!(agencies_by_name(&va), agencies_by_name(&vb));
            assert_same_figures(&va, &vb);
        }
        // Housekeeping after the same events forgets the same things.
        let (mut a, mut b) = (a, b);
        let tick = BASE.plus_secs(VIEW_AT[0]);
        a.apply(&Input::Tick, tick);
        b.apply(&Input::Tick, tick);
        for at in VIEW_AT {
            let (va, vb) = (a.view(BASE.plus_secs(at)), b.view(BASE.plus_secs(at)));
            prop_assert_eq!(agencies_by_name(&va), agencies_by_name(&vb));
            assert_same_figures(&va, &vb);
        }
        // And a checkpoint restores the same state.
        let mut back: State = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        back.set_params(a.params().clone());
        prop_assert_eq!(&back, &a);
    }
}

// ------------------------------------------------- tracked figures against a recount

/// A state with every figure tracked as the pipeline keeps it, a derive stage over it, and
/// checks at each tick that the tracked figures and the alerts of the cached engine are
/// exactly those a full recount and a fresh engine give.
struct Tracked {
    state: State,
    deriver: crate::derive::Deriver,
    settings: crate::config::AlertSettings,
}

impl Tracked {
    fn new(params: Params) -> Self {
        // Small enough that the roll-ups are exercised.
        let settings = crate::config::AlertSettings {
            max_subjects_per_rule: 2,
            max_members: 3,
            ..Default::default()
        };
        let engine = crate::derive::alerts::Engine::new(settings.clone(), Calendar::default());
        Self {
            state: State::new(params, BASE.plus_secs(-3600)),
            deriver: crate::derive::Deriver::new(engine),
            settings,
        }
    }

    fn check(&mut self, now: Ts, housekeeping: bool) {
        if housekeeping {
            self.state.apply(&Input::Tick, now);
        }
        self.state.advance(now);
        let previous = crate::derive::snapshot::Snapshot::default();
        let derived = self.deriver.derive(&self.state, now, false, &previous);
        let (got, want) = (derived.view, self.state.view(now));
        assert_eq!(
            agencies_by_name(&got),
            agencies_by_name(&want),
            "agencies at {now:?}"
        );
        assert_same_figures(&got, &want);
        assert_eq!(got.meetings, want.meetings, "meetings at {now:?}");
        assert_eq!(got.silent_system_ids, want.silent_system_ids);
        let mut fresh =
            crate::derive::alerts::Engine::new(self.settings.clone(), Calendar::default());
        fresh.evaluate(&self.state, now);
        let firing =
            |e: &crate::derive::alerts::Engine| -> Vec<(String, u64, Vec<String>, String)> {
                e.firing()
                    .iter()
                    .map(|a| (a.id.clone(), a.count, a.members.clone(), a.summary.clone()))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect()
            };
        assert_eq!(
            firing(self.deriver.engine()),
            firing(&fresh),
            "alerts at {now:?}"
        );
    }
}

/// The working calendar of the shipped configuration, switched on, "stalled" at 15 working
/// hours.
fn working_params() -> Params {
    let work = crate::config::CalendarSettings {
        enabled: true,
        ..Default::default()
    }
    .build()
    .expect("the shipped calendar builds")
    .expect("an enabled calendar is built");
    Params {
        work: Some(std::sync::Arc::new(work)),
        stalled_secs: 15 * 3600,
        systems: vec!["S0".into(), "S7".into()],
        ..Params::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tracked_figures_and_cached_alerts_equal_a_recount_at_every_tick(
        items in prop::collection::vec((body(), slot(), 0..3u8, 0..6u8), 1..80),
        ticks in prop::collection::vec((any::<prop::sample::Index>(), -7200..(110 * 3600i64), any::<bool>()), 1..10),
        working in any::<bool>(),
        capped in any::<bool>(),
    ) {
        let payloads: Payloads = items
            .into_iter()
            .enumerate()
            .map(|(i, ((source, mut v), slot, offset, spread))| {
                // More dossiers than the order test has: D0..D17.
                if let Some(id) = v.get("dossier_id").and_then(Value::as_str) {
                    let n: u32 = id[1..].parse().unwrap_or(0);
                    v["dossier_id"] = format!("D{}", n + 3 * u32::from(spread)).into();
                }
                v["event_id"] = format!("e{i}").into();
                v["occurred_at"] = slot_time(slot, offset).into();
                (source, v.to_string())
            })
            .collect();
        let events = decode_all(&payloads);
        let mut params = if working {
            working_params()
        } else {
            Params { systems: vec!["S0".into(), "S7".into()], ..Params::default() }
        };
        if capped {
            // Evictions at every turn: the figures must follow them too.
            params.caps = evict::Caps { dossiers: 6, meetings: 1, endpoints: 2, systems: 1, incidents: 1 };
        }
        let mut at: Vec<(usize, i64, bool)> = ticks
            .iter()
            .map(|(i, secs, hk)| (i.index(events.len() + 1), *secs, *hk))
            .collect();
        at.sort_unstable();
        let mut times: Vec<i64> = at.iter().map(|t| t.1).collect();
        times.sort_unstable();
        let mut tracked = Tracked::new(params);
        let mut next = 0;
        for (i, e) in events.iter().enumerate() {
            while next < at.len() && at[next].0 == i {
                tracked.check(BASE.plus_secs(times[next]), at[next].2);
                next += 1;
            }
            tracked.state.apply(&Input::Event(e.clone()), ARRIVAL);
        }
        for t in VIEW_AT {
            tracked.check(BASE.plus_secs(t), false);
        }
        // The clock going back rebuilds the figures.
        tracked.check(BASE, false);
    }
}

// ---------------------------------------------------------------- memory caps

#[test]
fn at_each_cap_the_item_whose_latest_event_is_oldest_is_evicted_counted_and_dated() {
    let params = Params {
        caps: evict::Caps {
            dossiers: 2,
            meetings: 1,
            endpoints: 1,
            systems: 2,
            incidents: 1,
        },
        ..Params::default()
    };
    let mut s = State::new(params, START);
    apply(
        &mut s,
        &received(
            "e1",
            "2026-11-24T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(null),
        ),
    );
    apply(
        &mut s,
        &received(
            "e2",
            "2026-11-24T09:00:00+07:00",
            "D2",
            "A",
            "online",
            json!(null),
        ),
    );
    // D1 moves on: D2's latest event is now the oldest.
    apply(
        &mut s,
        &onestop(
            "e3",
            "transferred",
            "2026-11-24T10:00:00+07:00",
            "D1",
            json!({"agency": "X"}),
        ),
    );
    apply(
        &mut s,
        &received(
            "e4",
            "2026-11-24T11:00:00+07:00",
            "D3",
            "A",
            "online",
            json!(null),
        ),
    );
    let held: Vec<&str> = {
        let mut v: Vec<&str> = s.dossiers.iter().map(dossiers::Dossier::id).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(held, ["D1", "D3"]);
    // An event for a dossier held evicts nothing.
    apply(
        &mut s,
        &onestop(
            "e5",
            "transferred",
            "2026-11-24T11:30:00+07:00",
            "D3",
            json!({"agency": "X"}),
        ),
    );
    assert_eq!(s.evictions.count, [1, 0, 0, 0, 0]);
    assert_eq!(s.evictions.last_at, [Some(ARRIVAL), None, None]);

    apply_all(
        &mut s,
        &[
            started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &["E1"]),
            joined("v2", "2026-11-24T08:01:00+07:00", "M1", "E1"),
            joined("v3", "2026-11-24T08:02:00+07:00", "M2", "E2"),
        ],
    );
    assert!(s.vc.meetings.contains_key("M2") && !s.vc.meetings.contains_key("M1"));
    assert!(s.vc.endpoints.contains_key("E2") && !s.vc.endpoints.contains_key("E1"));
    apply_all(
        &mut s,
        &[
            alert("s1", "2026-11-24T08:00:00+07:00", "S1", "low", "malware"),
            alert("s2", "2026-11-24T08:01:00+07:00", "S2", "low", "malware"),
            alert("s3", "2026-11-24T08:02:00+07:00", "S1", "low", "malware"),
            alert("s4", "2026-11-24T08:03:00+07:00", "S3", "low", "malware"),
            opened("i1", "2026-11-24T08:00:00+07:00", "I1", "high"),
            opened("i2", "2026-11-24T08:05:00+07:00", "I2", "high"),
        ],
    );
    let mut systems: Vec<&String> = s.soc.systems.keys().collect();
    systems.sort_unstable();
    assert_eq!(systems, ["S1", "S3"]);
    assert!(s.soc.incidents.contains_key("I2") && !s.soc.incidents.contains_key("I1"));
    assert_eq!(s.evictions.count, [1, 1, 1, 1, 1]);
    assert_eq!(s.evictions.count.iter().sum::<u64>(), 5);
    // Counted in every view, and a restored state starts counting again.
    assert_eq!(s.view(ARRIVAL).evictions.count, [1, 1, 1, 1, 1]);
}

#[test]
fn an_evicted_meeting_or_endpoint_leaves_the_tracked_figures() {
    let params = Params {
        caps: evict::Caps {
            dossiers: 6,
            meetings: 1,
            endpoints: 2,
            systems: 1,
            incidents: 1,
        },
        ..Params::default()
    };
    let mut tr = Tracked::new(params);
    tr.check(t("2026-11-24T08:00:00+07:00"), false);
    apply(
        &mut tr.state,
        &started("v1", "2026-11-24T08:00:00+07:00", "M1", "province", &["E1"]),
    );
    tr.check(t("2026-11-24T08:00:01+07:00"), false);
    apply(
        &mut tr.state,
        &joined("v2", "2026-11-24T08:01:00+07:00", "M2", "E1"),
    );
    tr.check(t("2026-11-24T08:02:00+07:00"), false);
}

#[test]
fn the_most_urgent_members_are_by_deadline_then_dossier_id_whatever_the_store_order() {
    let mut s = state();
    let due = json!("2026-11-24T17:00:00+07:00");
    for (i, id) in ["D5", "D3", "D9", "D1", "D7"].iter().enumerate() {
        let at = format!("2026-11-24T08:0{i}:00+07:00");
        apply(
            &mut s,
            &received(&format!("e{i}"), &at, id, "A", "online", due.clone()),
        );
    }
    let earlier = json!("2026-11-24T16:00:00+07:00");
    apply(
        &mut s,
        &received(
            "e9",
            "2026-11-24T08:30:00+07:00",
            "D8",
            "A",
            "online",
            earlier,
        ),
    );
    s.advance(t("2026-11-25T08:00:00+07:00"));
    let agency = s.agencies.get("A").unwrap() as usize;
    let members = &s.dossiers.tracker().overdue_of()[agency];
    assert_eq!(members.len(), 6);
    assert_eq!(s.dossiers.most_urgent(members, 3), ["D8", "D1", "D3"]);
    assert_eq!(
        s.dossiers.most_urgent(members, 10),
        ["D8", "D1", "D3", "D5", "D7", "D9"]
    );
}

/// With the working calendar on, "due soon" looks ahead 24 working hours: a deadline on
/// Monday 7/12/2026 at 08:00 is due soon from Tuesday 16:00 (1 + 7.5 + 7.5 + 7.5 + 0.5
/// working hours left), not first on Sunday morning as in calendar time; the tracked figures
/// follow it as time passes.
#[test]
fn due_soon_counts_working_hours_when_the_calendar_is_on() {
    let due = json!("2026-12-07T08:00:00+07:00");
    let run = |params: Params, at: &str| {
        let mut s = state_with(params, t("2026-11-30T08:00:00+07:00"));
        apply_all(
            &mut s,
            &[received(
                "e1",
                "2026-11-30T08:00:00+07:00",
                "D1",
                "A",
                "online",
                due.clone(),
            )],
        );
        let now = t(at);
        // Through the tracker (advanced day by day, as the pipeline does) and a recount.
        for day in ["2026-12-01T00:00:00+07:00", "2026-12-02T00:00:00+07:00"] {
            if t(day) < now {
                s.advance(t(day));
            }
        }
        s.advance(now);
        let tracked = s
            .dossiers
            .tracker()
            .gauges()
            .iter()
            .map(|g| g.due_soon)
            .sum::<u64>();
        let recount = s.view(now).onestop.totals.due_soon;
        assert_eq!(tracked, recount, "tracked against recount at {at}");
        recount
    };
    let working = || Params {
        due_soon_secs: 24 * 3600,
        ..working_params()
    };
    let calendar = || Params {
        due_soon_secs: 24 * 3600,
        ..Params::default()
    };
    assert_eq!(
        run(working(), "2026-12-01T08:00:00+07:00"),
        0,
        "Tuesday: 30 h left"
    );
    assert_eq!(
        run(working(), "2026-12-01T15:59:59+07:00"),
        0,
        "Tuesday 15:59:59: a second over 24 h left"
    );
    assert_eq!(
        run(working(), "2026-12-01T16:00:00+07:00"),
        1,
        "Tuesday 16:00: 24 h left"
    );
    assert_eq!(
        run(working(), "2026-12-02T08:00:00+07:00"),
        1,
        "Wednesday: 22.5 h left"
    );
    assert_eq!(
        run(calendar(), "2026-12-04T08:00:00+07:00"),
        0,
        "calendar: Friday"
    );
    assert_eq!(
        run(calendar(), "2026-12-06T08:00:00+07:00"),
        1,
        "calendar: Sunday"
    );
}

/// A feed sector literally named "other" is the catch-all row, not a second `other` series;
/// a dossier without a sector counts as `unknown`; overdue and late are counted by sector.
#[test]
fn sectors_fold_a_feed_sector_named_other_into_the_catch_all_row() {
    let mut s = State::new(Params::default(), t("2026-11-24T07:00:00+07:00"));
    let past = json!("2026-11-24T08:00:00+07:00");
    for (i, sector) in [Some("other"), Some("Hộ tịch"), None]
        .into_iter()
        .enumerate()
    {
        let mut p = tk::received(&format!("S{i}"))
            .id(format!("s{i}"))
            .at("2026-11-24T07:30:00+07:00")
            .agency("A")
            .channel("online")
            .due(past.clone());
        if let Some(sector) = sector {
            p = p.set("sector", sector);
        }
        apply(&mut s, &decoded(&p));
    }
    let now = t("2026-11-24T10:00:00+07:00");
    s.advance(now);
    let rows = s.view(now).sectors;
    let named: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r.sector.as_str(), r.overdue))
        .collect();
    assert_eq!(
        named,
        vec![("Hộ tịch", 1), ("unknown", 1), ("other", 1)],
        "{rows:?}"
    );
}

// ------------------------------------------------- a group at a time

/// Message `k` of a group, arrived at one of `arrivals` (after [`ARRIVAL`]).
fn message<'m>(k: usize, (topic, payload): &'m (String, String), arrivals: &[i64]) -> Message<'m> {
    Message {
        topic,
        payload: payload.as_bytes(),
        received_at: ARRIVAL.plus_secs(arrivals[k % arrivals.len()]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// `process_all` decodes a group before applying it and looks ahead into the state:
    /// neither may change an outcome or the state, whatever the mix of messages (events
    /// with duplicates, rejected payloads, operator actions, topics outside the sources).
    #[test]
    fn processing_a_group_at_a_time_gives_the_outcomes_and_state_of_one_at_a_time(
        (ordered, _) in scenario(),
        odd in prop::collection::vec((any::<prop::sample::Index>(), 0..4u8), 0..12),
        arrivals in prop::collection::vec(0..(80 * 3600i64), 1..4),
    ) {
        let mut msgs: Vec<(String, String)> = ordered
            .iter()
            .map(|(source, p)| (format!("ioc/v1/{}/T", source.as_str()), p.clone()))
            .collect();
        for (at, kind) in odd {
            let i = at.index(msgs.len() + 1);
            let msg = match kind {
                0 => ("ioc/v1/onestop/T".to_owned(), r#"{"event_id":"x""#.to_owned()),
                1 => ("elsewhere/onestop/T".to_owned(), "{}".to_owned()),
                2 => (format!("ioc/v1/{ACTIONS_LEVEL}"), "not an action".to_owned()),
                _ => ("ioc/v1/soc/T".to_owned(), r#"{"type":"heartbeat"}"#.to_owned()),
            };
            msgs.insert(i, msg);
        }
        let limits = crate::decode::DecodeLimits::default();
        let params = Params { systems: vec!["S0".into(), "S7".into()], ..Params::default() };
        let mut one = State::new(params.clone(), BASE.plus_secs(-3600));
        let one_by_one: Vec<String> = msgs
            .iter()
            .enumerate()
            .map(|(k, m)| format!("{:?}", one.process(message(k, m, &arrivals), "ioc/v1", &limits)))
            .collect();
        let mut all = State::new(params, BASE.plus_secs(-3600));
        let mut out = Vec::new();
        let each = msgs.iter().enumerate().map(|(k, m)| message(k, m, &arrivals));
        all.process_all(each, "ioc/v1", &limits, &mut out);
        let grouped: Vec<String> = out.iter().map(|p| format!("{p:?}")).collect();
        prop_assert_eq!(grouped, one_by_one);
        prop_assert_eq!(&all, &one);
    }
}

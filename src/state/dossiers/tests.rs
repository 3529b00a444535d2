//! The dossier status machine of docs/contract.md §2.4, driven through `State::apply` with events
//! decoded from JSON, so the decode rules (`null` on an optional field, required keys) are
//! part of what is tested.

use iocd_testkit as tk;
use serde_json::json;

use super::*;
use crate::decode::Source;
use crate::state::tests::support::{
    ARRIVAL, START, apply, decoded, onestop, permutations, plain, received, resolved,
    resolved_total, state, state_with, t,
};
use crate::state::{Input, Outcome, Params, State};

const DUE: &str = "2026-11-25T17:00:00+07:00";

fn dossier<'s>(state: &'s State, id: &str) -> &'s Dossier {
    state
        .dossiers
        .get(id)
        .unwrap_or_else(|| panic!("dossier {id} is not held"))
}

fn status(state: &State, id: &str) -> DossierStatus {
    dossier(state, id).status()
}

fn agency_name<'s>(state: &'s State, id: &str) -> &'s str {
    state.agencies.name(dossier(state, id).agency())
}

fn procedure_name<'s>(state: &'s State, id: &str) -> Option<&'s str> {
    dossier(state, id)
        .procedure()
        .map(|p| state.procedures.name(p))
}

fn received_total(state: &State) -> u64 {
    state.counters.received.iter().flatten().sum()
}

/// The contract's table, with every field any type may carry (fields not listed for a
/// type are ignored by decode). `paid` and `rated` (contract 1.2) change no status: below.
const TABLE: [(&str, DossierStatus); 12] = [
    ("submitted", DossierStatus::Submitted),
    ("received", DossierStatus::InProgress),
    ("transferred", DossierStatus::InProgress),
    ("supplement_requested", DossierStatus::WaitingCitizen),
    ("supplement_received", DossierStatus::InProgress),
    ("paused", DossierStatus::Paused),
    ("resumed", DossierStatus::InProgress),
    ("resolved", DossierStatus::Resolved),
    ("returned", DossierStatus::Returned),
    ("rejected", DossierStatus::Closed),
    ("withdrawn", DossierStatus::Closed),
    ("cancelled", DossierStatus::Closed),
];

fn full(ty: &str, dossier_id: &str) -> crate::decode::Event<'static> {
    let payload = tk::dossier(ty, dossier_id)
        .id(format!("{ty}-{dossier_id}"))
        .at("2026-11-24T09:00:00+07:00");
    decoded(
        &payload
            .agency("A")
            .procedure("P")
            .channel("online")
            .due(DUE),
    )
}

#[test]
fn every_event_type_leaves_the_status_of_the_contract_table() {
    assert_eq!(TABLE.len() + 2, DossierKind::ALL.len());
    for (ty, expected) in TABLE {
        let mut s = state();
        assert_eq!(apply(&mut s, &full(ty, "D1")), Outcome::Applied, "{ty}");
        assert_eq!(status(&s, "D1"), expected, "{ty}");
        assert_eq!(s.counters.events_of(Source::Onestop, ty), 1, "{ty}");
    }
}

#[test]
fn only_submitted_in_progress_waiting_citizen_and_paused_are_open() {
    let mut s = state();
    for (i, (ty, expected)) in TABLE.iter().enumerate() {
        apply(&mut s, &full(ty, &format!("D{i}")));
        let open = matches!(
            expected,
            DossierStatus::Submitted
                | DossierStatus::InProgress
                | DossierStatus::WaitingCitizen
                | DossierStatus::Paused
        );
        assert_eq!(expected.is_open(), open, "{ty}");
    }
    let v = s.view(t("2026-11-24T09:30:00+07:00"));
    // submitted; received, transferred, supplement_received, resumed; waiting; paused.
    assert_eq!(v.onestop.totals.open, [1, 4, 1, 1]);
    assert_eq!(v.dossiers_held, 12);
}

#[test]
fn the_latest_event_decides_the_status_whatever_the_arrival_order() {
    let events = [
        received(
            "e1",
            "2026-11-24T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(DUE),
        ),
        plain(
            "e2",
            "supplement_requested",
            "2026-11-24T09:00:00+07:00",
            "D1",
        ),
        plain(
            "e3",
            "supplement_received",
            "2026-11-24T10:00:00+07:00",
            "D1",
        ),
        plain("e4", "paused", "2026-11-24T11:00:00+07:00", "D1"),
    ];
    for order in permutations(&events) {
        let mut s = state();
        for e in &order {
            apply(&mut s, e);
        }
        assert_eq!(status(&s, "D1"), DossierStatus::Paused);
        assert_eq!(
            dossier(&s, "D1").last_event_at(),
            t("2026-11-24T11:00:00+07:00")
        );
    }
}

#[test]
fn the_latest_event_is_compared_by_instant_whatever_the_offset_it_is_written_with() {
    // 10:00+07:00 is 03:00Z: the `paused` at 04:00Z is the latest.
    let a = plain("e1", "resumed", "2026-11-24T10:00:00+07:00", "D1");
    let b = plain("e2", "paused", "2026-11-24T04:00:00Z", "D1");
    for order in [[&a, &b], [&b, &a]] {
        let mut s = state();
        for e in order {
            _ = apply(&mut s, e);
        }
        assert_eq!(status(&s, "D1"), DossierStatus::Paused);
    }
}

#[test]
fn equal_occurred_at_is_broken_by_the_greater_event_id_in_byte_order() {
    let at = "2026-11-24T10:00:00+07:00";
    // "e9" > "e10" in byte order, although 9 < 10.
    let paused = plain("e9", "paused", at, "D1");
    let resumed = plain("e10", "resumed", at, "D1");
    // "b" (0x62) > "C" (0x43): lower case sorts after upper case.
    let requested = plain("b", "supplement_requested", at, "D2");
    let cancelled = plain("C", "cancelled", at, "D2");
    for order in [
        [&paused, &resumed, &requested, &cancelled],
        [&cancelled, &requested, &resumed, &paused],
    ] {
        let mut s = state();
        for e in order {
            _ = apply(&mut s, e);
        }
        assert_eq!(status(&s, "D1"), DossierStatus::Paused);
        assert_eq!(status(&s, "D2"), DossierStatus::WaitingCitizen);
    }
}

#[test]
fn ties_are_broken_for_each_field_by_the_event_that_carries_it() {
    let at = "2026-11-24T10:00:00+07:00";
    let events = [
        onestop("x2", "transferred", at, "D1", json!({"agency": "B"})),
        onestop(
            "x1",
            "paused",
            at,
            "D1",
            json!({"agency": "C", "due_at": "2026-12-01T17:00:00+07:00"}),
        ),
        onestop("x3", "resumed", at, "D1", json!({})),
        onestop(
            "x0",
            "supplement_received",
            at,
            "D1",
            json!({"due_at": "2026-12-02T17:00:00+07:00"}),
        ),
    ];
    for order in permutations(&events) {
        let mut s = state();
        for e in &order {
            _ = apply(&mut s, e);
        }
        assert_eq!(status(&s, "D1"), DossierStatus::InProgress); // x3
        assert_eq!(agency_name(&s, "D1"), "B"); // x2 > x1
        assert_eq!(
            dossier(&s, "D1").due_at(),
            Some(t("2026-12-01T17:00:00+07:00"))
        ); // x1 > x0
    }
}

#[test]
fn agency_channel_procedure_and_due_at_come_from_the_latest_event_that_carries_them() {
    let events = [
        onestop(
            "e0",
            "submitted",
            "2026-11-24T07:00:00+07:00",
            "D1",
            json!({"agency": "A0", "procedure": "P0", "channel": "online"}),
        ),
        onestop(
            "e1",
            "received",
            "2026-11-24T08:00:00+07:00",
            "D1",
            json!({"agency": "A", "procedure": "P1", "channel": "direct", "due_at": DUE}),
        ),
        onestop(
            "e2",
            "supplement_received",
            "2026-11-24T09:00:00+07:00",
            "D1",
            json!({"due_at": "2026-11-28T17:00:00+07:00"}),
        ),
        onestop(
            "e3",
            "transferred",
            "2026-11-24T10:00:00+07:00",
            "D1",
            json!({"agency": "B"}),
        ),
        // Fields not listed for `resumed` are ignored: no channel or procedure from it.
        onestop(
            "e4",
            "resumed",
            "2026-11-24T11:00:00+07:00",
            "D1",
            json!({"channel": "postal", "procedure": "P9"}),
        ),
    ];
    for order in permutations(&events) {
        let mut s = state();
        for e in &order {
            _ = apply(&mut s, e);
        }
        let d = dossier(&s, "D1");
        assert_eq!(d.status(), DossierStatus::InProgress);
        assert_eq!(agency_name(&s, "D1"), "B");
        assert_eq!(d.channel(), Some(Channel::Direct));
        assert_eq!(procedure_name(&s, "D1"), Some("P1"));
        assert_eq!(d.due_at(), Some(t("2026-11-28T17:00:00+07:00")));
        assert_eq!(d.received_at(), Some(t("2026-11-24T08:00:00+07:00")));
        assert_eq!(d.last_event_at(), t("2026-11-24T11:00:00+07:00"));
    }
}

#[test]
fn a_null_due_at_on_an_optional_field_does_not_remove_a_deadline() {
    let mut s = state();
    apply(
        &mut s,
        &received(
            "e1",
            "2026-11-24T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(DUE),
        ),
    );
    for (i, ty) in [
        "transferred",
        "supplement_requested",
        "supplement_received",
        "paused",
        "resumed",
        "submitted",
    ]
    .into_iter()
    .enumerate()
    {
        let at = format!("2026-11-24T09:0{i}:00+07:00");
        let extra = json!({"agency": "A", "procedure": "P", "channel": "online", "due_at": null});
        assert_eq!(
            apply(&mut s, &onestop(&format!("n{i}"), ty, &at, "D1", extra)),
            Outcome::Applied
        );
        assert_eq!(dossier(&s, "D1").due_at(), Some(t(DUE)), "{ty}");
    }
}

#[test]
fn a_null_due_at_on_received_means_no_deadline() {
    let mut s = state();
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
    assert_eq!(dossier(&s, "D1").due_at(), None);
    let v = s.view(t("2027-06-01T00:00:00+07:00"));
    assert_eq!(
        (v.onestop.totals.overdue, v.onestop.totals.due_soon),
        (0, 0)
    );
    assert_eq!(v.onestop.totals.stalled, 1);
}

#[test]
fn the_agency_is_unknown_until_an_event_names_one() {
    let mut s = state();
    apply(
        &mut s,
        &plain("e2", "transferred", "2026-11-24T10:00:00+07:00", "D1"),
    );
    assert_eq!(dossier(&s, "D1").agency(), crate::state::intern::UNKNOWN);
    assert_eq!(agency_name(&s, "D1"), "unknown");
    let v = s.view(t("2026-11-24T10:30:00+07:00"));
    assert_eq!(v.agency_labels, ["unknown"]);
    assert_eq!(v.agencies[0].open, [0, 1, 0, 0]);
    // An older event naming an agency is still the latest one that carries it.
    apply(
        &mut s,
        &onestop(
            "e1",
            "submitted",
            "2026-11-24T08:00:00+07:00",
            "D1",
            json!({"agency": "A", "procedure": "P", "channel": "online"}),
        ),
    );
    assert_eq!(agency_name(&s, "D1"), "A");
    assert_eq!(status(&s, "D1"), DossierStatus::InProgress);
}

#[test]
fn a_dossier_first_seen_through_a_later_event_is_created_from_what_it_carries() {
    let mut s = state();
    apply(
        &mut s,
        &onestop(
            "e5",
            "paused",
            "2026-11-24T10:00:00+07:00",
            "D1",
            json!({"agency": "A", "due_at": DUE, "reason": "fees"}),
        ),
    );
    let d = dossier(&s, "D1");
    assert_eq!(d.status(), DossierStatus::Paused);
    assert_eq!(agency_name(&s, "D1"), "A");
    assert_eq!(d.due_at(), Some(t(DUE)));
    assert_eq!(
        (d.channel(), d.procedure(), d.received_at()),
        (None, None, None)
    );

    apply(
        &mut s,
        &onestop(
            "e9",
            "resolved",
            "2026-11-24T11:00:00+07:00",
            "D2",
            json!({"due_at": DUE}),
        ),
    );
    assert_eq!(status(&s, "D2"), DossierStatus::Resolved);
    assert_eq!(dossier(&s, "D2").timing(), Some(Timing::Early));
    assert_eq!(agency_name(&s, "D2"), "unknown");
    assert_eq!(
        s.counters.resolution.count, 0,
        "no received: no resolution time"
    );
}

#[test]
fn a_dossier_is_received_once_at_its_earliest_received_whatever_the_arrival_order() {
    // R1 at 09:10 online by A, R2 at 09:40 direct by B; R2 arrives first.
    let r1 = received(
        "r1",
        "2026-11-24T09:10:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    let r2 = received(
        "r2",
        "2026-11-24T09:40:00+07:00",
        "D1",
        "B",
        "direct",
        json!(DUE),
    );
    let now = t("2026-11-24T09:50:30+07:00");
    for order in [[&r2, &r1], [&r1, &r2]] {
        let mut s = state();
        for e in order {
            _ = apply(&mut s, e);
        }
        assert_eq!(
            dossier(&s, "D1").received_at(),
            Some(t("2026-11-24T09:10:00+07:00"))
        );
        assert_eq!(received_total(&s), 1, "the counter counts once");
        let v = s.view(now);
        assert_eq!(v.onestop.today_received, 1);
        assert_eq!(
            v.onestop.today_online_ratio,
            Some(1.0),
            "channel of the earliest"
        );
        let per_minute = &v.onestop.received_per_minute;
        assert_eq!(per_minute.len(), 60);
        assert_eq!(per_minute[59 - 40], 1, "09:10");
        assert_eq!(per_minute[59 - 10], 0, "09:40");
        assert_eq!(per_minute.iter().sum::<u32>(), 1);
    }
}

#[test]
fn a_received_moved_to_an_earlier_day_leaves_the_later_day() {
    let r1 = received(
        "r1",
        "2026-11-23T23:50:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    let r2 = received(
        "r2",
        "2026-11-24T00:20:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    let mut s = state();
    apply(&mut s, &r2);
    assert_eq!(
        s.view(t("2026-11-24T00:30:00+07:00"))
            .onestop
            .today_received,
        1
    );
    apply(&mut s, &r1);
    assert_eq!(
        s.view(t("2026-11-24T00:30:00+07:00"))
            .onestop
            .today_received,
        0
    );
    assert_eq!(
        s.view(t("2026-11-23T23:55:00+07:00"))
            .onestop
            .today_received,
        1
    );
    assert_eq!(received_total(&s), 1);
}

#[test]
fn the_online_ratio_is_online_over_all_received_today() {
    let mut s = state();
    assert_eq!(
        s.view(t("2026-11-24T12:00:00+07:00"))
            .onestop
            .today_online_ratio,
        None
    );
    apply(
        &mut s,
        &received(
            "e1",
            "2026-11-24T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(DUE),
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
            json!(DUE),
        ),
    );
    apply(
        &mut s,
        &received(
            "e3",
            "2026-11-24T10:00:00+07:00",
            "D3",
            "B",
            "postal",
            json!(null),
        ),
    );
    apply(
        &mut s,
        &received(
            "e4",
            "2026-11-23T10:00:00+07:00",
            "D4",
            "B",
            "direct",
            json!(null),
        ),
    );
    // A submitted (not received) online dossier does not count.
    apply(
        &mut s,
        &onestop(
            "e5",
            "submitted",
            "2026-11-24T10:00:00+07:00",
            "D5",
            json!({"agency": "A", "procedure": "P", "channel": "online"}),
        ),
    );
    let v = s.view(t("2026-11-24T12:00:00+07:00"));
    assert_eq!(v.onestop.today_received, 3);
    assert_eq!(v.onestop.today_online_ratio, Some(2.0 / 3.0));
    assert_eq!(received_total(&s), 4);
    let online: u64 = s
        .counters
        .received
        .iter()
        .map(|row| row[Channel::Online as usize])
        .sum();
    assert_eq!(online, 2);
}

#[test]
fn classify_follows_local_days_and_the_exact_deadline() {
    let cal = Calendar::default();
    let due = Due::At(t(DUE));
    let cases = [
        ("2026-11-25T17:00:00+07:00", Timing::OnTime), // exactly at due_at
        ("2026-11-25T17:00:00.000000001+07:00", Timing::Late),
        ("2026-11-24T23:59:00+07:00", Timing::Early), // the day before the due day
        ("2026-11-24T23:59:59.999999999+07:00", Timing::Early),
        ("2026-11-25T00:00:00+07:00", Timing::OnTime), // local midnight of the due day
        ("2026-11-24T17:00:00Z", Timing::OnTime),      // = 00:00 on the 25th, local
        ("2026-11-24T16:59:59Z", Timing::Early),       // = 23:59:59 on the 24th, local
        ("2026-11-20T08:00:00+07:00", Timing::Early),
        ("2026-12-01T08:00:00+07:00", Timing::Late),
    ];
    for (at, expected) in cases {
        assert_eq!(classify(&cal, t(at), due), expected, "{at}");
    }
    assert_eq!(
        classify(&cal, t("2030-01-01T00:00:00Z"), Due::NoDeadline),
        Timing::OnTime
    );
}

#[test]
fn a_resolution_is_early_on_time_or_late_around_local_midnight_and_the_exact_deadline() {
    let cases = [
        ("2026-11-25T17:00:00+07:00", Timing::OnTime),
        ("2026-11-25T17:00:00.000000001+07:00", Timing::Late),
        ("2026-11-24T23:59:00+07:00", Timing::Early),
        ("2026-11-25T00:00:00+07:00", Timing::OnTime),
    ];
    for (at, expected) in cases {
        let mut s = state();
        apply(
            &mut s,
            &received(
                "r",
                "2026-11-20T08:00:00+07:00",
                "D1",
                "A",
                "online",
                json!(DUE),
            ),
        );
        apply(&mut s, &resolved("s", at, "D1", json!(DUE)));
        assert_eq!(dossier(&s, "D1").timing(), Some(expected), "{at}");
        assert_eq!(dossier(&s, "D1").resolved_at(), Some(t(at)));
        assert_eq!(resolved_total(&s, expected), 1, "{at}");
        let in_time = if expected == Timing::Late { 0.0 } else { 1.0 };
        assert_eq!(
            s.view(t(at)).onestop.on_time_ratio_30d,
            Some(in_time),
            "{at}"
        );
    }
}

#[test]
fn a_resolution_without_deadline_is_on_time() {
    let mut s = state();
    apply(
        &mut s,
        &received(
            "r",
            "2026-11-20T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(null),
        ),
    );
    apply(
        &mut s,
        &resolved("s", "2027-11-20T08:00:00+07:00", "D1", json!(null)),
    );
    assert_eq!(dossier(&s, "D1").timing(), Some(Timing::OnTime));
    assert_eq!(resolved_total(&s, Timing::OnTime), 1);
}

#[test]
fn a_resolution_is_classified_against_the_due_at_of_its_own_resolved_event() {
    let mut s = state();
    // The dossier's deadline is the 25th, but the resolved event carries the 30th.
    apply(
        &mut s,
        &received(
            "r",
            "2026-11-20T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(DUE),
        ),
    );
    apply(
        &mut s,
        &resolved(
            "s",
            "2026-11-27T08:00:00+07:00",
            "D1",
            json!("2026-11-30T17:00:00+07:00"),
        ),
    );
    assert_eq!(dossier(&s, "D1").timing(), Some(Timing::Early));
    // And a `null` there means no deadline, whatever the dossier's.
    apply(
        &mut s,
        &received(
            "r2",
            "2026-11-20T08:00:00+07:00",
            "D2",
            "A",
            "online",
            json!(DUE),
        ),
    );
    apply(
        &mut s,
        &resolved("s2", "2026-11-27T08:00:00+07:00", "D2", json!(null)),
    );
    assert_eq!(dossier(&s, "D2").timing(), Some(Timing::OnTime));
}

#[test]
fn the_earliest_resolved_decides_even_when_it_arrives_second() {
    let late = resolved("s2", "2026-11-26T09:00:00+07:00", "D1", json!(DUE));
    let early = resolved("s1", "2026-11-24T15:00:00+07:00", "D1", json!(DUE));
    let rec = received(
        "r",
        "2026-11-24T08:00:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    for order in permutations(&[rec, late, early]) {
        let mut s = state();
        for e in &order {
            _ = apply(&mut s, e);
        }
        let d = dossier(&s, "D1");
        assert_eq!(d.timing(), Some(Timing::Early));
        assert_eq!(d.resolved_at(), Some(t("2026-11-24T15:00:00+07:00")));
        assert_eq!(d.status(), DossierStatus::Resolved);
        let total: u64 = Timing::ALL.iter().map(|&x| resolved_total(&s, x)).sum();
        assert_eq!(
            total, 1,
            "counted once, with the timing known when it first became countable"
        );
        let v = s.view(t("2026-11-24T15:30:00+07:00"));
        assert_eq!(v.onestop.today_resolved, 1);
        assert_eq!(v.onestop.resolved_per_minute[59 - 30], 1);
        assert_eq!(v.onestop.on_time_ratio_30d, Some(1.0));
        assert_eq!(
            s.view(t("2026-11-26T09:30:00+07:00"))
                .onestop
                .today_resolved,
            0
        );
    }
}

#[test]
fn the_resolution_histogram_is_observed_once_when_both_received_and_resolved_are_known() {
    let r1 = received(
        "r1",
        "2026-11-24T08:00:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    let r2 = received(
        "r2",
        "2026-11-24T09:00:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    let s1 = resolved("s1", "2026-11-24T12:00:00+07:00", "D1", json!(DUE));
    let s2 = resolved("s2", "2026-11-24T13:00:00+07:00", "D1", json!(DUE));
    for order in permutations(&[r1.clone(), r2, s1.clone(), s2]) {
        let mut s = state();
        for (i, e) in order.iter().enumerate() {
            apply(&mut s, e);
            let d = dossier(&s, "D1");
            let known = d.received_at().is_some() && d.resolved_at().is_some();
            assert_eq!(
                s.counters.resolution.count,
                u64::from(known),
                "after {} events",
                i + 1
            );
        }
    }
    for order in [[&r1, &s1], [&s1, &r1]] {
        let mut s = state();
        for e in order {
            _ = apply(&mut s, e);
        }
        assert_eq!(s.counters.resolution.count, 1);
        assert!((s.counters.resolution.sum - 4.0 * 3600.0).abs() < 1e-6);
    }
}

fn in_progress(
    id: &str,
    event_id: &str,
    at: &str,
    due: serde_json::Value,
) -> crate::decode::Event<'static> {
    received(event_id, at, id, "A", "online", due)
}

#[test]
fn an_in_progress_dossier_becomes_overdue_when_its_deadline_passes_without_any_event() {
    let mut s = state();
    apply(
        &mut s,
        &in_progress("D1", "e1", "2026-11-24T08:00:00+07:00", json!(DUE)),
    );
    let due = t(DUE);
    let at = |now: Ts| s.view(now).onestop.totals;
    assert_eq!(
        (at(due).overdue, at(due).due_soon),
        (0, 1),
        "at due_at: not yet overdue"
    );
    let after = Ts(due.0 + 1);
    assert_eq!(
        (at(after).overdue, at(after).due_soon),
        (1, 0),
        "1 ns later: overdue, not due soon"
    );
    let v = s.view(after);
    assert_eq!(
        v.agencies[v.agency_labels.iter().position(|l| l == "A").unwrap()].overdue,
        1
    );
}

#[test]
fn due_soon_counts_a_deadline_exactly_24_hours_ahead_and_not_one_nanosecond_more() {
    let mut s = state();
    apply(
        &mut s,
        &in_progress("D1", "e1", "2026-11-24T08:00:00+07:00", json!(DUE)),
    );
    let day_before = t(DUE).minus_secs(24 * 3600);
    assert_eq!(s.view(day_before).onestop.totals.due_soon, 1);
    assert_eq!(s.view(Ts(day_before.0 - 1)).onestop.totals.due_soon, 0);
    assert_eq!(s.view(Ts(day_before.0 - 1)).onestop.totals.overdue, 0);
}

#[test]
fn stalled_is_strictly_more_than_48_hours_since_the_latest_event() {
    let mut s = state();
    apply(
        &mut s,
        &in_progress("D1", "e1", "2026-11-24T08:00:00+07:00", json!(null)),
    );
    apply(
        &mut s,
        &plain("e2", "transferred", "2026-11-24T10:00:00+07:00", "D1"),
    );
    let edge = t("2026-11-26T10:00:00+07:00");
    assert_eq!(s.view(edge).onestop.totals.stalled, 0, "exactly 48 h");
    assert_eq!(s.view(Ts(edge.0 + 1)).onestop.totals.stalled, 1);
    assert_eq!(s.view(Ts(edge.0 + 1)).agencies[1].stalled, 1);
}

#[test]
fn only_in_progress_dossiers_are_overdue_due_soon_or_stalled() {
    let mut s = state();
    let overdue_soon = [
        ("D1", "supplement_requested"),
        ("D2", "paused"),
        ("D3", "resolved"),
        ("D4", "returned"),
        ("D5", "cancelled"),
    ];
    for (id, ty) in overdue_soon {
        apply(
            &mut s,
            &in_progress(
                id,
                &format!("r-{id}"),
                "2026-11-20T08:00:00+07:00",
                json!(DUE),
            ),
        );
        apply(
            &mut s,
            &onestop(
                &format!("x-{id}"),
                ty,
                "2026-11-21T08:00:00+07:00",
                id,
                json!({"due_at": DUE}),
            ),
        );
    }
    // Submitted with a deadline: not in progress.
    apply(
        &mut s,
        &onestop(
            "sub",
            "submitted",
            "2026-11-20T08:00:00+07:00",
            "D6",
            json!({"agency": "A", "procedure": "P", "channel": "online", "due_at": DUE}),
        ),
    );
    for now in ["2026-11-25T08:00:00+07:00", "2027-01-01T00:00:00+07:00"] {
        let v = s.view(t(now));
        let g = v.onestop.totals;
        assert_eq!((g.overdue, g.due_soon, g.stalled), (0, 0, 0), "{now}");
        assert_eq!(g.open, [1, 0, 1, 1], "{now}");
    }
    // Resumed later: the same dossiers count again.
    apply(
        &mut s,
        &plain(
            "back",
            "supplement_received",
            "2026-11-22T08:00:00+07:00",
            "D1",
        ),
    );
    let g = s.view(t("2027-01-01T00:00:00+07:00")).onestop.totals;
    assert_eq!((g.overdue, g.due_soon, g.stalled), (1, 0, 1));
}

#[test]
fn a_dossier_without_deadline_is_never_overdue_nor_due_soon() {
    let mut s = state();
    apply(
        &mut s,
        &in_progress("D1", "e1", "2026-11-24T08:00:00+07:00", json!(null)),
    );
    let g = s.view(t("2026-11-24T09:00:00+07:00")).onestop.totals;
    assert_eq!((g.open[1], g.overdue, g.due_soon, g.stalled), (1, 0, 0, 0));
}

#[test]
fn a_second_event_with_the_same_source_and_event_id_is_ignored_and_counted() {
    let e = received(
        "e1",
        "2026-11-24T08:00:00+07:00",
        "D1",
        "A",
        "online",
        json!(DUE),
    );
    let mut s = state();
    assert_eq!(apply(&mut s, &e), Outcome::Applied);
    let once = s.clone();
    assert_eq!(apply(&mut s, &e), Outcome::Duplicate);
    assert_eq!(s.counters.duplicates, [1, 0, 0]);
    assert_eq!(s.counters.events_of(Source::Onestop, "received"), 1);
    assert_eq!(received_total(&s), 1);
    let mut expected = once;
    expected.counters.duplicates = [1, 0, 0];
    assert_eq!(s, expected);
}

#[test]
fn the_same_event_id_in_another_source_is_not_a_duplicate() {
    let mut s = state();
    assert_eq!(
        apply(
            &mut s,
            &received(
                "e1",
                "2026-11-24T08:00:00+07:00",
                "D1",
                "A",
                "online",
                json!(DUE)
            )
        ),
        Outcome::Applied
    );
    let vc = decoded(
        &tk::meeting_ended("M1")
            .id("e1")
            .at("2026-11-24T08:00:00+07:00"),
    );
    let soc = decoded(
        &tk::heartbeat(tk::SOC)
            .id("e1")
            .at("2026-11-24T08:00:00+07:00"),
    );
    assert_eq!(apply(&mut s, &vc), Outcome::Applied);
    assert_eq!(apply(&mut s, &soc), Outcome::Applied);
    assert_eq!(s.counters.duplicates, [0, 0, 0]);
}

#[test]
fn a_duplicate_with_different_content_changes_nothing_and_the_first_wins() {
    let mut s = state();
    apply(
        &mut s,
        &received(
            "e1",
            "2026-11-24T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(DUE),
        ),
    );
    let before = s.clone();
    let impostors = [
        onestop(
            "e1",
            "cancelled",
            "2026-11-24T09:00:00+07:00",
            "D1",
            json!({}),
        ),
        received(
            "e1",
            "2026-11-24T07:00:00+07:00",
            "D1",
            "B",
            "direct",
            json!(null),
        ),
        received(
            "e1",
            "2026-11-24T08:00:00+07:00",
            "D2",
            "A",
            "online",
            json!(DUE),
        ),
    ];
    for e in &impostors {
        assert_eq!(apply(&mut s, e), Outcome::Duplicate);
    }
    assert!(s.dossiers.get("D2").is_none());
    assert_eq!(status(&s, "D1"), DossierStatus::InProgress);
    assert_eq!(agency_name(&s, "D1"), "A");
    assert_eq!(
        s.last_event, before.last_event,
        "a duplicate is not an accepted event"
    );
    let mut expected = before;
    expected.counters.duplicates = [3, 0, 0];
    assert_eq!(s, expected);
}

/// A state that keeps closed dossiers an hour after their latest event.
fn retaining_an_hour() -> State {
    state_with(
        Params {
            retention_secs: 3600,
            ..Params::default()
        },
        START,
    )
}

#[test]
fn a_closed_dossier_leaves_memory_on_tick_after_the_retention_and_an_open_one_stays() {
    let mut s = retaining_an_hour();
    let at = "2026-11-24T08:00:00+07:00";
    for (id, ty) in [
        ("D1", "resolved"),
        ("D2", "returned"),
        ("D3", "rejected"),
        ("D4", "withdrawn"),
        ("D5", "cancelled"),
    ] {
        apply(
            &mut s,
            &onestop(&format!("e-{id}"), ty, at, id, json!({"due_at": DUE})),
        );
    }
    for (id, ty) in [
        ("D6", "submitted"),
        ("D7", "received"),
        ("D8", "supplement_requested"),
        ("D9", "paused"),
    ] {
        apply(
            &mut s,
            &onestop(
                &format!("e-{id}"),
                ty,
                at,
                id,
                json!({"agency": "A", "procedure": "P", "channel": "online", "due_at": DUE}),
            ),
        );
    }
    let counters = s.counters.clone();
    assert_eq!(
        s.apply(&Input::Tick, t(at).plus_secs(3599)),
        Outcome::Ticked
    );
    assert_eq!(s.dossiers.len(), 9);
    s.apply(&Input::Tick, t(at).plus_secs(3601));
    let mut left: Vec<&str> = s.dossiers.iter().map(Dossier::id).collect();
    left.sort_unstable();
    assert_eq!(left, ["D6", "D7", "D8", "D9"]);
    assert_eq!(s.counters, counters, "forgetting changes no counter");
    s.apply(&Input::Tick, t("2030-01-01T00:00:00Z"));
    assert_eq!(s.dossiers.len(), 4, "open dossiers stay whatever their age");
    for id in ["D6", "D7", "D8", "D9"] {
        assert!(s.dossiers.get(id).is_some(), "{id}");
    }
}

/// A rating (or a payment) that comes after a closed dossier was forgotten revives
/// nothing and changes no figure, but is counted by type: the sign that the retention is
/// shorter than the days in which citizens rate.
#[test]
fn a_rating_for_a_forgotten_dossier_is_counted_and_changes_nothing() {
    let mut s = retaining_an_hour();
    let at = "2026-11-24T08:00:00+07:00";
    apply(
        &mut s,
        &onestop("e-D1", "resolved", at, "D1", json!({"due_at": DUE})),
    );
    s.apply(&Input::Tick, t(at).plus_secs(3601));
    assert!(s.dossiers.get("D1").is_none(), "forgotten");
    let periods = s.periods.clone();
    for (id, ty, extra) in [
        (
            "r1",
            "rated",
            json!({"rating": "unsatisfied", "complaint": true}),
        ),
        ("p1", "paid", json!({"method": "online_local"})),
        ("r2", "rated", json!({"rating": "satisfied"})),
    ] {
        assert_eq!(
            apply(
                &mut s,
                &onestop(id, ty, "2026-11-27T09:00:00+07:00", "D1", extra)
            ),
            Outcome::Applied
        );
    }
    assert!(s.dossiers.get("D1").is_none(), "not revived");
    assert_eq!(s.periods, periods, "no figure moved");
    let by = |k: DossierKind| {
        let i = DossierKind::ALL.iter().position(|x| *x == k).unwrap();
        s.forgotten_hits.by_kind[i]
    };
    assert_eq!(
        (
            by(DossierKind::Rated),
            by(DossierKind::Paid),
            by(DossierKind::Resolved)
        ),
        (2, 1, 0)
    );
}

#[test]
fn a_closed_dossier_with_a_recent_event_is_retained() {
    let mut s = retaining_an_hour();
    apply(
        &mut s,
        &in_progress("D1", "e1", "2026-11-24T08:00:00+07:00", json!(DUE)),
    );
    apply(
        &mut s,
        &resolved("e2", "2026-11-24T10:00:00+07:00", "D1", json!(DUE)),
    );
    s.apply(&Input::Tick, t("2026-11-24T10:30:00+07:00"));
    assert_eq!(status(&s, "D1"), DossierStatus::Resolved);
    s.apply(&Input::Tick, t("2026-11-24T11:30:00+07:00"));
    assert!(s.dossiers.get("D1").is_none());
}

#[test]
fn removing_dossiers_keeps_the_index_consistent() {
    let mut s = state_with(
        Params {
            retention_secs: 60,
            ..Params::default()
        },
        START,
    );
    for i in 0..20 {
        let ty = if i % 3 == 0 { "received" } else { "cancelled" };
        let extra = json!({"agency": "A", "procedure": "P", "channel": "online", "due_at": DUE});
        apply(
            &mut s,
            &onestop(
                &format!("e{i}"),
                ty,
                "2026-11-24T08:00:00+07:00",
                &format!("D{i}"),
                extra,
            ),
        );
    }
    s.apply(&Input::Tick, ARRIVAL);
    assert_eq!(s.dossiers.len(), 7);
    for i in 0..20 {
        assert_eq!(
            s.dossiers.get(&format!("D{i}")).is_some(),
            i % 3 == 0,
            "D{i}"
        );
        if let Some(d) = s.dossiers.get(&format!("D{i}")) {
            assert_eq!(d.id(), format!("D{i}"));
        }
    }
}

#[test]
fn the_id_table_keeps_each_key_s_event_id_when_keys_move_independently() {
    // Seven events at the same instant with long ids: every key is decided by the ids.
    let long = |c: char| c.to_string().repeat(128);
    let at = "2026-11-24T08:00:00+07:00";
    let events = [
        received(&long('m'), at, "D1", "A", "online", json!(DUE)),
        resolved(&long('k'), at, "D1", json!(DUE)),
        onestop(&long('n'), "transferred", at, "D1", json!({"agency": "B"})),
        onestop(
            &long('o'),
            "paused",
            at,
            "D1",
            json!({"due_at": "2026-12-01T17:00:00+07:00"}),
        ),
        received(&long('l'), at, "D1", "C", "postal", json!(DUE)),
        onestop(&long('j'), "transferred", at, "D1", json!({"agency": "D"})),
        resolved(&long('z'), at, "D1", json!(null)),
    ];
    let mut first: Option<State> = None;
    for order in permutations(&events) {
        let mut s = state();
        for name in ["A", "B", "C", "D"] {
            s.agencies.intern(name);
        }
        for e in &order {
            _ = apply(&mut s, e);
        }
        let d = dossier(&s, "D1");
        assert_eq!(d.status(), DossierStatus::Resolved, "z is the latest");
        assert_eq!(
            agency_name(&s, "D1"),
            "B",
            "n is the latest naming an agency"
        );
        assert_eq!(d.channel(), Some(Channel::Online), "m is the latest intake");
        assert_eq!(
            d.due_at(),
            None,
            "z carries no deadline and is the latest carrying due_at"
        );
        assert_eq!(
            d.timing(),
            Some(Timing::Early),
            "k is the earliest resolved"
        );
        assert!(!d.received_online, "l (postal) is the earliest received");
        if let Some(first) = &first {
            assert_eq!(first.dossiers, s.dossiers);
        } else {
            first = Some(s.clone());
        }
    }
}

#[test]
fn a_late_event_for_a_forgotten_dossier_does_not_revive_it() {
    let mut s = retaining_an_hour();
    let at = "2026-11-24T08:00:00+07:00";
    apply(
        &mut s,
        &received("r1", at, "D1", "A", "online", json!(null)),
    );
    apply(
        &mut s,
        &resolved("s1", "2026-11-24T09:00:00+07:00", "D1", json!(null)),
    );
    s.apply(&Input::Tick, t("2026-11-24T12:00:00+07:00"));
    assert!(s.dossiers.get("D1").is_none());
    let received_before = s.counters.received.clone();
    // A backlog replay of an earlier step of the same dossier, days later.
    apply(
        &mut s,
        &plain("t1", "transferred", "2026-11-24T08:30:00+07:00", "D1"),
    );
    apply(
        &mut s,
        &received(
            "r0",
            "2026-11-24T07:59:00+07:00",
            "D1",
            "A",
            "online",
            json!(null),
        ),
    );
    assert!(
        s.dossiers.get("D1").is_none(),
        "a forgotten dossier stays forgotten"
    );
    assert_eq!(
        s.counters.received, received_before,
        "and is not received twice"
    );
    assert_eq!(
        s.counters.events_of(Source::Onestop, "transferred"),
        1,
        "the event is still accepted"
    );
    // After the tombstone horizon the id may be used again.
    s.apply(
        &Input::Tick,
        t("2026-11-24T12:00:00+07:00").plus_secs(31 * 86_400),
    );
    apply(
        &mut s,
        &received(
            "r9",
            "2026-12-26T08:00:00+07:00",
            "D1",
            "A",
            "online",
            json!(null),
        ),
    );
    assert!(s.dossiers.get("D1").is_some());
}

// Contract 1.2: payments, ratings and the facts of the received and result events.

fn paid(dossier_id: &str, event_id: &str, at: &str, method: &str) -> crate::decode::Event<'static> {
    decoded(
        &tk::dossier("paid", dossier_id)
            .id(event_id)
            .at(at)
            .set("method", method),
    )
}

fn rated(
    dossier_id: &str,
    event_id: &str,
    at: &str,
    rating: &str,
    complaint: Option<bool>,
) -> crate::decode::Event<'static> {
    let mut p = tk::dossier("rated", dossier_id)
        .id(event_id)
        .at(at)
        .set("rating", rating);
    if let Some(c) = complaint {
        p = p.set("complaint", c);
    }
    decoded(&p)
}

#[test]
fn payments_and_ratings_change_no_status_and_a_dossier_known_only_by_them_is_neither_open_nor_closed()
 {
    let mut s = state();
    apply(
        &mut s,
        &paid("D1", "p1", "2026-11-24T09:00:00+07:00", "online_local"),
    );
    apply(
        &mut s,
        &rated("D1", "r1", "2026-11-24T09:10:00+07:00", "satisfied", None),
    );
    let d = dossier(&s, "D1");
    assert!(!d.has_status() && !d.is_open() && !d.is_closed());
    assert_eq!(d.payment(), Some(crate::decode::PaymentMethod::OnlineLocal));
    let v = s.view(t("2026-11-24T09:30:00+07:00"));
    assert_eq!(v.onestop.totals.open, [0, 0, 0, 0], "not counted open");
    // Its status events come: it is a dossier as any other, its payment kept.
    apply(&mut s, &full("received", "D1"));
    assert_eq!(status(&s, "D1"), DossierStatus::InProgress);
    apply(
        &mut s,
        &paid("D1", "p0", "2026-11-24T08:00:00+07:00", "direct"),
    );
    let d = dossier(&s, "D1");
    assert!(d.is_open());
    assert_eq!(
        d.payment(),
        Some(crate::decode::PaymentMethod::OnlineLocal),
        "the latest payment wins"
    );
    assert_eq!(
        d.last_event_at(),
        t("2026-11-24T09:00:00+07:00"),
        "the received"
    );
    assert_eq!(s.counters.events_of(Source::Onestop, "paid"), 2);
    assert_eq!(s.counters.events_of(Source::Onestop, "rated"), 1);
    // A late payment does not hide a later status event.
    apply(&mut s, &full("resolved", "D1"));
    assert_eq!(status(&s, "D1"), DossierStatus::Resolved);
}

/// The latest payment and rating win whatever the order; a tie of instants goes to the
/// greater event id, as for every key of a dossier.
#[test]
fn the_latest_payment_and_rating_win_in_any_order() {
    let events = [
        paid("D1", "p1", "2026-11-24T09:00:00+07:00", "direct"),
        paid("D1", "p2", "2026-11-24T10:00:00+07:00", "online_national"),
        paid("D1", "p3", "2026-11-24T10:00:00+07:00", "online_local"),
        rated(
            "D1",
            "r1",
            "2026-11-25T09:00:00+07:00",
            "unsatisfied",
            Some(true),
        ),
        rated(
            "D1",
            "r2",
            "2026-11-26T09:00:00+07:00",
            "very_satisfied",
            None,
        ),
        full("received", "D1"),
    ];
    for order in permutations(&events) {
        let mut s = state();
        for e in &order {
            apply(&mut s, e);
        }
        let d = dossier(&s, "D1");
        assert_eq!(d.payment(), Some(crate::decode::PaymentMethod::OnlineLocal));
        assert_eq!(
            d.rating(),
            Some((crate::decode::Rating::VerySatisfied, None)),
            "the complaint belongs to its rating"
        );
    }
}

/// The received facts are the earliest `received`'s; the result is electronic when any
/// result said so, whatever the order.
#[test]
fn the_facts_of_1_2_follow_the_earliest_received_and_any_electronic_result() {
    let received = |id: &str, at: &str, digitised: Option<bool>| {
        let mut p = tk::dossier("received", "D1")
            .id(id)
            .at(at)
            .agency("A")
            .procedure("P")
            .channel("online")
            .due(DUE)
            .set("fee_required", true)
            .set("paper_result", false);
        if let Some(d) = digitised {
            p = p.set("digitised", d);
        }
        decoded(&p)
    };
    let result = |ty: &str, id: &str, at: &str, electronic: Option<bool>| {
        let mut p = tk::dossier(ty, "D1").id(id).at(at).due(DUE);
        if let Some(e) = electronic {
            p = p.set("result_electronic", e);
        }
        decoded(&p)
    };
    let events = [
        received("a", "2026-11-24T08:00:00+07:00", Some(true)),
        received("b", "2026-11-24T08:30:00+07:00", None),
        result("resolved", "c", "2026-11-25T08:00:00+07:00", Some(false)),
        result("returned", "d", "2026-11-25T09:00:00+07:00", Some(true)),
        result("returned", "e", "2026-11-25T10:00:00+07:00", None),
    ];
    for order in permutations(&events) {
        let mut s = state();
        for e in &order {
            apply(&mut s, e);
        }
        let f = dossier(&s, "D1").facts();
        assert_eq!(
            (
                f.fee_required(),
                f.paper_result(),
                f.digitised(),
                f.reused_data()
            ),
            (Some(true), Some(false), Some(true), None),
            "the earliest received's"
        );
        assert_eq!(f.result_electronic(), Some(true));
    }
    // Only a "no": false; nothing said: unknown.
    let mut s = state();
    apply(
        &mut s,
        &result("resolved", "c", "2026-11-25T08:00:00+07:00", Some(false)),
    );
    assert_eq!(dossier(&s, "D1").facts().result_electronic(), Some(false));
    let mut s = state();
    apply(
        &mut s,
        &result("resolved", "c", "2026-11-25T08:00:00+07:00", None),
    );
    assert_eq!(dossier(&s, "D1").facts().result_electronic(), None);
}

/// "More than one supplement request" counts requests by their event ids: the same request
/// delivered again after the dedupe memory forgot it is still one.
#[test]
fn a_supplement_request_delivered_again_after_dedupe_forgot_it_is_still_one() {
    let params = Params {
        dedupe_max_ids: 2,
        ..Params::default()
    };
    let mut s = state_with(params, START);
    let request = decoded(
        &tk::dossier("supplement_requested", "D1")
            .id("s1")
            .at("2026-11-24T10:00:00+07:00"),
    );
    apply(&mut s, &full("received", "D1"));
    apply(&mut s, &request);
    // Two more ids push `s1` out of the dedupe memory of two.
    apply(&mut s, &full("transferred", "D9"));
    apply(&mut s, &full("transferred", "D8"));
    assert_eq!(apply(&mut s, &request), Outcome::Applied, "not remembered");
    assert_eq!(dossier(&s, "D1").supplements(), 1);
    let second = decoded(
        &tk::dossier("supplement_requested", "D1")
            .id("s2")
            .at("2026-11-24T11:00:00+07:00"),
    );
    apply(&mut s, &second);
    assert_eq!(dossier(&s, "D1").supplements(), 2);
    assert!(dossier(&s, "D1").late_766_by_events());
}

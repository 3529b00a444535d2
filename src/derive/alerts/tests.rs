//! The alert engine against docs/contract.md §5.2: every rule fires, stays grouped, keeps its
//! count up to date, resolves, fires as time passes with no event arriving, and never flaps.
//! Time passes by calling `evaluate` with later instants; nothing sleeps.

use std::sync::Arc;

use iocd_testkit as tk;
use serde_json::{Value, json};

use super::*;
use crate::config::{CalendarSettings, RuleSettings};
use crate::decode::{DecodeLimits, Source, decode};
use crate::state::{Input, Outcome, Params};
use crate::time::parse_rfc3339;

/// When the daemon first started in these tests: Tuesday 24 November 2026, 08:00 local.
const START: &str = "2026-11-24T08:00:00+07:00";
/// The clock decode checks `occurred_at` against: far enough that nothing is "future".
const DECODE_NOW: Ts = Ts::from_secs(4_102_444_800); // 2100-01-01

fn t(s: &str) -> Ts {
    parse_rfc3339(s).unwrap_or_else(|_| panic!("bad test timestamp {s}"))
}

/// `secs` seconds after [`START`].
fn after(secs: i64) -> Ts {
    t(START).plus_secs(secs)
}

/// An instant as the engine writes `since`.
fn rfc(ts: Ts) -> String {
    ts.to_rfc3339(Calendar::default().tz())
}

fn rule_mut(s: &mut AlertSettings, rule: Rule) -> &mut RuleSettings {
    match rule {
        Rule::DossierOverdue => &mut s.dossier_overdue,
        Rule::DossierStalled => &mut s.dossier_stalled,
        Rule::FeedSilent => &mut s.feed_silent,
        Rule::EndpointMissing => &mut s.endpoint_missing,
        Rule::EndpointPoorQuality => &mut s.endpoint_poor_quality,
        Rule::IncidentUnacknowledged => &mut s.incident_unacknowledged,
        Rule::SocSystemSilent => &mut s.soc_system_silent,
    }
}

/// The shipped settings, but one alert per agency from one dossier and no province
/// digest: most tests here look at one agency's alert (the shipped grouping has its own
/// tests).
fn defaults() -> AlertSettings {
    let mut s = AlertSettings::default();
    s.dossier_overdue.min_count = 1;
    s.dossier_stalled.min_count = 1;
    s.dossier_digest = false;
    s
}

/// Default settings with every rule but `rule` switched off, so that silent feeds do not
/// crowd the transitions of the rule under test.
fn only(rule: Rule) -> AlertSettings {
    let mut s = defaults();
    for r in Rule::ALL {
        rule_mut(&mut s, r).enabled = r == rule;
    }
    s
}

/// Default settings with only `feed_silent` and `incident_unacknowledged` on.
fn only_feeds_and_incidents() -> AlertSettings {
    let mut s = only(Rule::FeedSilent);
    s.incident_unacknowledged.enabled = true;
    s
}

fn english(mut s: AlertSettings) -> AlertSettings {
    s.language = crate::config::Lang::En;
    s
}

/// The working calendar of the default `[calendar]` section, switched on, with the shipped
/// holidays (`config/holidays-vn.toml`), and "stalled" at 2 working days of 7.5 hours.
fn working_params() -> Params {
    let work = CalendarSettings {
        enabled: true,
        ..Default::default()
    }
    .build()
    .expect("the shipped calendar builds")
    .expect("an enabled calendar is built");
    Params {
        work: Some(Arc::new(work)),
        stalled_secs: 15 * 3600,
        ..Params::default()
    }
}

/// A state fed with events, and an engine watching it.
struct Ioc {
    state: State,
    engine: Engine,
}

impl Ioc {
    fn new(settings: AlertSettings) -> Self {
        Self::with(settings, Params::default())
    }

    /// Escalations and reminders are off: these tests look at the rules; the handling
    /// has its own tests ([`Ioc::handled`]).
    fn with(mut settings: AlertSettings, params: Params) -> Self {
        settings.escalate_after = [None; 3];
        settings.remind_every = None;
        Self::handled(settings, params)
    }

    /// With the settings' escalations and reminders.
    fn handled(settings: AlertSettings, params: Params) -> Self {
        Self {
            state: State::new(params, t(START)),
            engine: Engine::new(settings, Calendar::default()),
        }
    }

    /// The transitions of an evaluation at `now`.
    fn at(&mut self, now: Ts) -> Vec<Alert> {
        self.state.advance(now);
        self.engine.evaluate(&self.state, now)
    }

    /// The ids of the firing alerts, as `firing()` orders them.
    fn firing_ids(&self) -> Vec<String> {
        self.engine.firing().iter().map(|a| a.id.clone()).collect()
    }

    /// Applies a `ty` event of `source` at `at` with `fields` (and a fresh event id).
    fn send(&mut self, source: Source, ty: &str, at: Ts, fields: Value) {
        self.apply(&tk::event(source.as_str(), ty).at(rfc(at)).merge(fields));
    }

    /// Decodes and applies `payload`, which must be applied (not a duplicate, not rejected).
    fn apply(&mut self, payload: &tk::Payload) {
        let source = Source::ALL
            .into_iter()
            .find(|s| s.as_str() == payload.source())
            .expect("a testkit source");
        let bytes = payload.bytes();
        let ev = decode(source, &bytes, DECODE_NOW, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("test payload {payload} rejected: {e}"));
        assert_eq!(
            self.state.apply(&Input::Event(ev), DECODE_NOW),
            Outcome::Applied,
            "{payload}"
        );
    }

    fn received(&mut self, dossier: &str, agency: &str, at: Ts, due: Option<Ts>) {
        let payload = tk::received(dossier).at(rfc(at)).agency(agency);
        self.apply(&payload.due(due.map(rfc)));
    }

    fn transferred(&mut self, dossier: &str, at: Ts) {
        self.apply(&tk::dossier("transferred", dossier).at(rfc(at)));
    }

    fn resolved(&mut self, dossier: &str, at: Ts) {
        self.apply(&tk::resolved(dossier).at(rfc(at)));
    }

    fn heartbeat(&mut self, source: Source, at: Ts) {
        self.apply(&tk::heartbeat(source.as_str()).at(rfc(at)));
    }

    fn meeting_started(&mut self, meeting: &str, at: Ts, expected: &[&str]) {
        let payload = tk::meeting_started(meeting).at(rfc(at));
        self.apply(
            &payload
                .set("title", "Giao ban trực tuyến")
                .set("expected_endpoints", expected),
        );
    }

    fn meeting_ended(&mut self, meeting: &str, at: Ts) {
        self.apply(&tk::meeting_ended(meeting).at(rfc(at)));
    }

    fn joined(&mut self, meeting: &str, endpoint: &str, at: Ts) {
        self.apply(&tk::endpoint_joined(meeting, endpoint).at(rfc(at)));
    }

    fn stats(&mut self, meeting: &str, endpoint: &str, at: Ts, loss: f64, jitter: f64, rtt: f64) {
        let payload = tk::endpoint_stats(meeting, endpoint).at(rfc(at));
        self.apply(&payload.quality(loss, jitter, rtt));
    }

    fn incident_opened(&mut self, incident: &str, severity: &str, at: Ts) {
        let payload = tk::incident_opened(incident, severity).at(rfc(at));
        self.apply(
            &payload
                .set("system_id", "dvc-portal")
                .set("title", "Dò quét cổng dịch vụ công"),
        );
    }

    fn incident_acknowledged(&mut self, incident: &str, at: Ts) {
        self.apply(&tk::incident_acknowledged(incident).at(rfc(at)));
    }

    fn system_heartbeat(&mut self, system: &str, at: Ts) {
        self.apply(&tk::system_heartbeat(system).at(rfc(at)));
    }
}

/// The single transition of an evaluation.
#[track_caller]
fn single(transitions: Vec<Alert>) -> Alert {
    assert_eq!(
        transitions.len(),
        1,
        "expected one transition, got {transitions:#?}"
    );
    transitions.into_iter().next().expect("one transition")
}

fn ids(transitions: &[Alert]) -> Vec<&str> {
    transitions.iter().map(|a| a.id.as_str()).collect()
}

// dossier_overdue

#[test]
fn dossier_overdue_fires_when_a_deadline_passes_with_no_event_and_never_flaps() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    let first_due = t("2026-11-25T17:00:00+07:00");
    let second_due = t("2026-11-26T17:00:00+07:00");
    ioc.received("D1", "A", after(0), Some(first_due));
    ioc.received("D2", "A", after(60), Some(second_due));

    assert!(ioc.at(after(3600)).is_empty(), "deadlines in the future");
    assert!(
        ioc.at(first_due).is_empty(),
        "a deadline equal to now is not yet passed"
    );

    let now = first_due.plus_secs(1);
    let a = single(ioc.at(now));
    assert_eq!(a.id, "dossier_overdue:A");
    assert_eq!(a.rule, Rule::DossierOverdue);
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.severity, AlertSeverity::Warning);
    assert_eq!(
        a.subject,
        Subject {
            kind: "agency",
            id: "A".into()
        }
    );
    assert_eq!(a.count, 1);
    assert_eq!(a.since, "2026-11-25T17:00:01.000+07:00");
    assert_eq!(a.since_ts, now);
    assert_eq!(a.members, ["D1"]);
    assert!(a.summary.contains("Đơn vị A"), "{}", a.summary);
    assert!(a.summary.contains("1 hồ sơ"), "{}", a.summary);
    assert!(a.summary.contains("quá hạn"), "{}", a.summary);

    assert!(ioc.at(now).is_empty(), "the same now again changes nothing");
    assert!(
        ioc.at(now.plus_secs(3600)).is_empty(),
        "nothing changed an hour later either"
    );

    let later = second_due.plus_secs(1);
    let a = single(ioc.at(later));
    assert_eq!(
        (a.id.as_str(), a.state, a.count),
        ("dossier_overdue:A", AlertState::Firing, 2)
    );
    assert_eq!(
        a.since, "2026-11-25T17:00:01.000+07:00",
        "since is kept while firing"
    );
    assert_eq!(a.members, ["D1", "D2"]);
    assert!(a.summary.contains("2 hồ sơ"), "{}", a.summary);
    assert!(ioc.at(later).is_empty(), "no flapping");
    assert_eq!(ioc.firing_ids(), ["dossier_overdue:A"]);
}

#[test]
fn dossier_overdue_counts_down_as_dossiers_are_resolved_then_resolves_once() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(3600)));
    ioc.received("D2", "A", after(0), Some(after(7200)));
    let fired = single(ioc.at(after(7201)));
    assert_eq!(fired.count, 2);

    ioc.resolved("D2", after(7300));
    let a = single(ioc.at(after(7300)));
    assert_eq!((a.state, a.count), (AlertState::Firing, 1));
    assert_eq!(a.members, ["D1"]);
    assert_eq!(a.since, fired.since);

    ioc.resolved("D1", after(7400));
    let a = single(ioc.at(after(7400)));
    assert_eq!(a.id, "dossier_overdue:A");
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(a.since, fired.since);
    assert!(ioc.at(after(7400)).is_empty());
    assert!(
        ioc.at(after(86_400)).is_empty(),
        "nothing further once resolved"
    );
    assert!(ioc.engine.firing().is_empty());
}

#[test]
fn dossier_overdue_fires_again_with_a_new_since_after_resolving() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    let first = single(ioc.at(after(61)));
    ioc.resolved("D1", after(120));
    assert_eq!(single(ioc.at(after(120))).state, AlertState::Resolved);

    ioc.received("D3", "A", after(200), Some(after(3600)));
    assert!(ioc.at(after(3600)).is_empty());
    let again = single(ioc.at(after(3601)));
    assert_eq!(
        (again.id.as_str(), again.state, again.count),
        (first.id.as_str(), AlertState::Firing, 1)
    );
    assert_eq!(again.since, rfc(after(3601)));
    assert_ne!(again.since, first.since);
    assert_eq!(again.members, ["D3"]);
}

#[test]
fn replicas_agree_on_since_as_the_earliest_any_of_them_saw() {
    // Two replicas with the same events; B evaluates later (it was restarting).
    let (mut a, mut b) = (
        Ioc::new(only(Rule::DossierOverdue)),
        Ioc::new(only(Rule::DossierOverdue)),
    );
    for ioc in [&mut a, &mut b] {
        ioc.received("D1", "A", after(0), Some(after(60)));
        ioc.received("D2", "B", after(0), Some(after(60)));
    }
    let on_a = a.at(after(61));
    let (a1, a2) = (on_a[0].clone(), on_a[1].clone());
    // B hears of A's first alert before it fires it: kept, taken when it fires.
    let ops = b.state.ops.clone();
    let peer = b
        .engine
        .take_peer((&a1.id, "a"), Some(a1.since_ts), &ops, after(62));
    assert!(matches!(peer, PeerSince::Same), "{peer:?}");
    let on_b = b.at(after(90));
    assert_eq!(on_b[0].since, a1.since, "taken at firing");
    assert_eq!(
        on_b[1].since,
        rfc(after(90)),
        "its own: A's has not come yet"
    );
    // A's second alert comes after B fired it: B's `since` moves back to A's.
    b.engine.take_changed();
    let peer = b
        .engine
        .take_peer((&a2.id, "a"), Some(a2.since_ts), &ops, after(91));
    assert!(
        matches!(&peer, PeerSince::Taken(x) if x.since == a2.since),
        "{peer:?}"
    );
    assert_eq!(
        b.engine.get(&a2.id).map(|x| x.since.clone()),
        Some(a2.since.clone())
    );
    assert!(b.engine.take_changed());
    // B's later `since` at A: A's earlier one is to be published again for B (B may have
    // restarted and lost A's first publication); the same `since` changes nothing.
    let ops = a.state.ops.clone();
    let peer = a
        .engine
        .take_peer((&a2.id, "b"), Some(after(90)), &ops, after(92));
    assert!(
        matches!(&peer, PeerSince::Earlier(x) if x.since == a2.since),
        "{peer:?}"
    );
    let peer = a
        .engine
        .take_peer((&a2.id, "b"), Some(a2.since_ts), &ops, after(92));
    assert!(matches!(peer, PeerSince::Same), "{peer:?}");
    let since = |ioc: &Ioc| {
        ioc.engine
            .firing()
            .iter()
            .map(|x| (x.id.clone(), x.since.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(since(&a), since(&b));
}

#[test]
fn a_peer_since_is_forgotten_when_the_peer_resolves_and_bounded() {
    let mut b = Ioc::new(only(Rule::DossierOverdue));
    let ops = b.state.ops.clone();
    let id = "dossier_overdue:A";
    b.engine
        .take_peer((id, "a"), Some(after(10)), &ops, after(11));
    b.engine.take_peer((id, "a"), None, &ops, after(12));
    b.received("D1", "A", after(0), Some(after(60)));
    assert_eq!(single(b.at(after(61))).since, rfc(after(61)), "forgotten");
    // A flood of publications for alerts this replica never fires is cut at PEER_MAX.
    for i in 0..PEER_MAX + 10 {
        b.engine.take_peer(
            (&format!("dossier_overdue:X{i}"), "a"),
            Some(after(1)),
            &ops,
            after(70),
        );
    }
    assert_eq!(b.engine.peer.len(), PEER_MAX);
}

#[test]
fn a_peer_since_of_an_earlier_episode_is_not_taken() {
    // A's first episode of the alert: fired at 61, acknowledged-era; resolved at 120; fired
    // again at 3601. A peer that restarted from a checkpoint of the first episode publishes
    // since 61: not taken, neither while firing nor kept for later.
    let mut a = Ioc::new(only(Rule::DossierOverdue));
    a.received("D1", "A", after(0), Some(after(60)));
    let first = single(a.at(after(61)));
    a.resolved("D1", after(120));
    assert_eq!(single(a.at(after(120))).state, AlertState::Resolved);
    let ops = a.state.ops.clone();
    a.engine
        .take_peer((&first.id, "b"), Some(first.since_ts), &ops, after(130));
    a.received("D3", "A", after(200), Some(after(3600)));
    let again = single(a.at(after(3601)));
    assert_eq!(
        again.since,
        rfc(after(3601)),
        "the old episode's since was not kept"
    );
    let peer = a
        .engine
        .take_peer((&first.id, "b"), Some(first.since_ts), &ops, after(3602));
    assert!(matches!(peer, PeerSince::Same), "{peer:?}");
    assert_eq!(
        a.engine.get(&first.id).map(|x| x.since.clone()),
        Some(again.since)
    );
}

#[test]
fn each_replica_latest_counts_and_the_earliest_of_them_is_taken() {
    let mut c = Ioc::new(only(Rule::DossierOverdue));
    let ops = c.state.ops.clone();
    let id = "dossier_overdue:A";
    // Replica a's first publication (a lost resolution in between) is replaced by its
    // latest; replica b's is earlier still.
    c.engine
        .take_peer((id, "a"), Some(after(5)), &ops, after(70));
    c.engine
        .take_peer((id, "a"), Some(after(40)), &ops, after(70));
    c.engine
        .take_peer((id, "b"), Some(after(30)), &ops, after(70));
    c.received("D1", "A", after(0), Some(after(60)));
    assert_eq!(single(c.at(after(90))).since, rfc(after(30)));
}

#[test]
fn overdue_members_are_most_urgent_first_and_bounded_by_max_members() {
    let mut settings = only(Rule::DossierOverdue);
    settings.max_members = 3;
    let mut ioc = Ioc::new(settings);
    // Ids in another order than deadlines; D-b and D-c share a deadline (ties by id).
    ioc.received("D-a", "A", after(0), Some(after(4000)));
    ioc.received("D-c", "A", after(0), Some(after(2000)));
    ioc.received("D-b", "A", after(0), Some(after(2000)));
    ioc.received("D-d", "A", after(0), Some(after(1000)));
    ioc.received("D-e", "A", after(0), Some(after(3000)));
    let a = single(ioc.at(after(5000)));
    assert_eq!(
        a.count, 5,
        "the count is every member, not only those listed"
    );
    assert_eq!(a.members, ["D-d", "D-b", "D-c"]);
}

#[test]
fn overdue_dossiers_of_another_agency_group_separately() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.received("D2", "B", after(0), Some(after(60)));
    ioc.received("D3", "B", after(0), Some(after(60)));
    let transitions = ioc.at(after(61));
    assert_eq!(
        ids(&transitions),
        ["dossier_overdue:A", "dossier_overdue:B"]
    );
    let b = &transitions[1];
    assert_eq!(
        b.subject,
        Subject {
            kind: "agency",
            id: "B".into()
        }
    );
    assert_eq!(b.count, 2);
    assert_eq!(b.members, ["D2", "D3"]);

    ioc.resolved("D1", after(120));
    let a = single(ioc.at(after(120)));
    assert_eq!(
        (a.id.as_str(), a.state),
        ("dossier_overdue:A", AlertState::Resolved)
    );
    assert_eq!(ioc.firing_ids(), ["dossier_overdue:B"]);
}

#[test]
fn a_dossier_transferred_to_another_agency_moves_to_that_agency_alert() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.received("D2", "A", after(0), Some(after(60)));
    assert_eq!(single(ioc.at(after(61))).count, 2);
    let fields = json!({"dossier_id": "D2", "agency": "B"});
    ioc.send(Source::Onestop, "transferred", after(100), fields);
    let transitions = ioc.at(after(100));
    assert_eq!(
        ids(&transitions),
        ["dossier_overdue:B", "dossier_overdue:A"]
    );
    assert_eq!(
        (transitions[0].state, transitions[0].count),
        (AlertState::Firing, 1)
    );
    assert_eq!(
        (transitions[1].state, transitions[1].count),
        (AlertState::Firing, 1)
    );
    assert_eq!(transitions[1].members, ["D1"]);
}

#[test]
fn members_that_change_without_the_count_are_updated_without_a_transition() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.received("D2", "A", after(0), Some(after(120)));
    assert_eq!(single(ioc.at(after(61))).members, ["D1"]);
    ioc.resolved("D1", after(100));
    assert!(
        ioc.at(after(121)).is_empty(),
        "still one overdue dossier: no transition"
    );
    let firing = ioc.engine.firing();
    assert_eq!(
        firing[0].members,
        ["D2"],
        "the API lists the current member"
    );
    assert_eq!(firing[0].with_members()["members"], json!(["D2"]));
}

#[test]
fn dossiers_waiting_for_the_citizen_or_without_deadline_are_never_overdue() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.send(
        Source::Onestop,
        "supplement_requested",
        after(30),
        json!({"dossier_id": "D1"}),
    );
    ioc.received("D2", "A", after(0), None);
    assert!(ioc.at(after(86_400)).is_empty());
}

#[test]
fn the_alert_object_has_the_contract_fields_plus_params_and_members_only_with_members() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    let a = single(ioc.at(after(61)));
    let v: Value = serde_json::from_str(&a.to_json()).expect("valid JSON");
    let obj = v.as_object().expect("an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "count", "handling", "id", "params", "rule", "severity", "since", "state", "subject",
            "summary"
        ]
    );
    assert_eq!(
        v["params"],
        json!({"agency": "A", "agency_name": null, "count": 1})
    );
    assert_eq!(v["rule"], "dossier_overdue");
    assert_eq!(v["severity"], "warning");
    assert_eq!(v["state"], "firing");
    assert_eq!(v["subject"], json!({"kind": "agency", "id": "A"}));
    assert_eq!(v["count"], 1);
    assert_eq!(v["since"], rfc(after(61)));
    assert_eq!(a.with_members()["members"], json!(["D1"]));
    let firing: Value = serde_json::from_str(&ioc.engine.firing_json()).expect("valid JSON");
    assert_eq!(firing, json!([v]));
}

// dossier_stalled

#[test]
fn dossier_stalled_fires_strictly_after_48_hours_without_an_event_and_resolves_on_progress() {
    let mut ioc = Ioc::new(only(Rule::DossierStalled));
    ioc.received("D1", "A", after(0), None);
    ioc.received("D2", "A", after(3600), None);
    assert!(
        ioc.at(after(48 * 3600)).is_empty(),
        "exactly 48 hours is not over 48 hours"
    );

    let now = after(48 * 3600 + 1);
    let a = single(ioc.at(now));
    assert_eq!(a.id, "dossier_stalled:A");
    assert_eq!((a.severity, a.count), (AlertSeverity::Warning, 1));
    assert_eq!(
        a.subject,
        Subject {
            kind: "agency",
            id: "A".into()
        }
    );
    assert_eq!(a.members, ["D1"]);
    assert!(
        a.summary.contains("Đơn vị A") && a.summary.contains("1 hồ sơ"),
        "{}",
        a.summary
    );
    assert!(a.summary.contains("48 giờ"), "{}", a.summary);
    assert!(
        !a.summary.contains("làm việc"),
        "calendar hours: {}",
        a.summary
    );
    assert!(ioc.at(now).is_empty(), "no flapping");

    let a = single(ioc.at(after(49 * 3600 + 1)));
    assert_eq!((a.count, a.since.as_str()), (2, rfc(now).as_str()));
    assert_eq!(a.members, ["D1", "D2"], "oldest latest event first");

    ioc.transferred("D1", after(50 * 3600));
    let a = single(ioc.at(after(50 * 3600)));
    assert_eq!((a.state, a.count), (AlertState::Firing, 1));
    ioc.transferred("D2", after(50 * 3600));
    assert_eq!(single(ioc.at(after(50 * 3600))).state, AlertState::Resolved);
    assert!(ioc.at(after(51 * 3600)).is_empty());
}

#[test]
fn with_a_working_calendar_a_dossier_does_not_stall_over_the_weekend() {
    let friday = t("2026-11-27T16:00:00+07:00");
    let monday = t("2026-11-30T09:00:00+07:00");
    let mut ioc = Ioc::with(only(Rule::DossierStalled), working_params());
    ioc.received("D1", "A", friday, None);
    assert!(
        ioc.at(monday).is_empty(),
        "1 h on Friday and 1.5 h on Monday are not 15 working hours"
    );

    // Friday 1 h + Monday 7.5 h + Tuesday 6.5 h (07:30-11:30, 13:30-16:00) = 15 h exactly.
    assert!(ioc.at(t("2026-11-30T16:00:00+07:00")).is_empty());
    assert!(
        ioc.at(t("2026-12-01T16:00:00+07:00")).is_empty(),
        "exactly 15 working hours"
    );
    let a = single(ioc.at(t("2026-12-01T16:00:01+07:00")));
    assert_eq!((a.id.as_str(), a.count), ("dossier_stalled:A", 1));
    assert!(a.summary.contains("15 giờ làm việc"), "{}", a.summary);
    assert!(
        ioc.at(t("2026-12-02T14:30:00+07:00")).is_empty(),
        "still firing on Wednesday afternoon"
    );
    assert_eq!(ioc.firing_ids(), ["dossier_stalled:A"]);

    // The same dossier in calendar time stalls over the weekend.
    let mut calendar_time = Ioc::with(only(Rule::DossierStalled), Params::default());
    calendar_time.received("D1", "A", friday, None);
    assert_eq!(single(calendar_time.at(monday)).count, 1);
}

#[test]
fn with_a_working_calendar_a_dossier_received_before_tet_does_not_stall_during_tet() {
    let mut ioc = Ioc::with(only(Rule::DossierStalled), working_params());
    ioc.received("D1", "A", t("2026-02-13T16:00:00+07:00"), None);
    assert!(
        ioc.at(t("2026-02-16T10:00:00+07:00")).is_empty(),
        "Monday in Tết"
    );
    assert!(
        ioc.at(t("2026-02-22T23:00:00+07:00")).is_empty(),
        "the last day of Tết"
    );
    // Friday 1 h + Monday 23 February 7.5 h + Tuesday 6.5 h.
    assert!(ioc.at(t("2026-02-24T16:00:00+07:00")).is_empty());
    let a = single(ioc.at(t("2026-02-24T16:00:01+07:00")));
    assert_eq!(
        (a.id.as_str(), a.state, a.count),
        ("dossier_stalled:A", AlertState::Firing, 1)
    );
}

#[test]
fn dossiers_waiting_for_the_citizen_or_paused_never_stall() {
    let mut ioc = Ioc::new(only(Rule::DossierStalled));
    ioc.received("D1", "A", after(0), None);
    ioc.send(
        Source::Onestop,
        "supplement_requested",
        after(10),
        json!({"dossier_id": "D1"}),
    );
    ioc.received("D2", "A", after(0), None);
    ioc.send(
        Source::Onestop,
        "paused",
        after(10),
        json!({"dossier_id": "D2", "reason": "fees"}),
    );
    assert!(ioc.at(after(30 * 86_400)).is_empty());
}

// feed_silent

#[test]
fn feed_silent_fires_per_source_strictly_after_5_minutes_since_the_start() {
    let mut ioc = Ioc::new(only(Rule::FeedSilent));
    assert!(
        ioc.at(after(300)).is_empty(),
        "exactly 5 minutes is not silent"
    );
    let transitions = ioc.at(after(301));
    assert_eq!(
        ids(&transitions),
        ["feed_silent:onestop", "feed_silent:soc", "feed_silent:vc"]
    );
    for a in &transitions {
        assert_eq!(
            (a.state, a.severity, a.count),
            (AlertState::Firing, AlertSeverity::Critical, 1)
        );
        assert_eq!(a.subject.kind, "source");
        assert_eq!(a.id, format!("feed_silent:{}", a.subject.id));
        assert!(a.summary.contains("5 phút"), "{}", a.summary);
        assert_eq!(a.since, rfc(after(301)));
    }
    assert!(ioc.at(after(302)).is_empty(), "no flapping");
}

#[test]
fn an_event_on_a_silent_source_resolves_its_alert_and_silence_is_strict() {
    let mut ioc = Ioc::new(only(Rule::FeedSilent));
    assert_eq!(ioc.at(after(301)).len(), 3);
    ioc.heartbeat(Source::Vc, after(400));
    let a = single(ioc.at(after(401)));
    assert_eq!(
        (a.id.as_str(), a.state),
        ("feed_silent:vc", AlertState::Resolved)
    );
    assert!(
        ioc.at(after(700)).is_empty(),
        "exactly 5 minutes after the heartbeat"
    );
    let a = single(ioc.at(after(701)));
    assert_eq!(
        (a.id.as_str(), a.state),
        ("feed_silent:vc", AlertState::Firing)
    );
    assert_eq!(a.since, rfc(after(701)), "a new since after resolving");
}

#[test]
fn a_source_that_sent_within_5_minutes_of_the_start_is_not_silent() {
    let mut ioc = Ioc::new(only(Rule::FeedSilent));
    ioc.received("D1", "A", after(200), None);
    let transitions = ioc.at(after(301));
    assert_eq!(ids(&transitions), ["feed_silent:soc", "feed_silent:vc"]);
    assert!(ioc.at(after(500)).is_empty());
    assert_eq!(single(ioc.at(after(501))).id, "feed_silent:onestop");
}

// endpoint_missing

#[test]
fn endpoint_missing_counts_expected_endpoints_not_connected_after_5_minutes() {
    let mut ioc = Ioc::new(only(Rule::EndpointMissing));
    ioc.meeting_started("M1", after(0), &["E1", "E2", "E3"]);
    ioc.joined("M1", "E1", after(10));
    assert!(
        ioc.at(after(300)).is_empty(),
        "exactly 5 minutes after the start"
    );

    let a = single(ioc.at(after(301)));
    assert_eq!(a.id, "endpoint_missing:M1");
    assert_eq!(
        a.subject,
        Subject {
            kind: "meeting",
            id: "M1".into()
        }
    );
    assert_eq!(
        (a.state, a.severity, a.count),
        (AlertState::Firing, AlertSeverity::Warning, 2)
    );
    assert_eq!(a.members, ["E2", "E3"]);
    assert!(
        a.summary.contains("M1") && a.summary.contains("2 điểm cầu"),
        "{}",
        a.summary
    );
    assert!(a.summary.contains("5 phút"), "{}", a.summary);
    assert!(ioc.at(after(302)).is_empty(), "no flapping");

    ioc.joined("M1", "E2", after(400));
    let a = single(ioc.at(after(400)));
    assert_eq!(
        (a.state, a.count, a.since.as_str()),
        (AlertState::Firing, 1, rfc(after(301)).as_str())
    );
    assert_eq!(a.members, ["E3"]);

    ioc.meeting_ended("M1", after(500));
    let a = single(ioc.at(after(500)));
    assert_eq!(
        (a.id.as_str(), a.state),
        ("endpoint_missing:M1", AlertState::Resolved)
    );
    assert!(ioc.at(after(10_000)).is_empty());
}

#[test]
fn an_endpoint_listed_twice_as_expected_is_one_missing_endpoint() {
    let mut ioc = Ioc::new(only(Rule::EndpointMissing));
    ioc.meeting_started("M1", after(0), &["E1", "E2", "E1"]);
    let a = single(ioc.at(after(301)));
    assert_eq!(a.count, 2);
    assert_eq!(a.members, ["E1", "E2"]);
}

#[test]
fn an_endpoint_that_left_is_missing_again() {
    let mut ioc = Ioc::new(only(Rule::EndpointMissing));
    ioc.meeting_started("M1", after(0), &["E1"]);
    ioc.joined("M1", "E1", after(10));
    assert!(ioc.at(after(400)).is_empty());
    let fields = json!({"meeting_id": "M1", "endpoint_id": "E1"});
    ioc.send(Source::Vc, "endpoint_left", after(500), fields);
    let a = single(ioc.at(after(500)));
    assert_eq!(a.count, 1);
    assert_eq!(a.members, ["E1"]);
}

// endpoint_poor_quality

#[test]
fn endpoint_poor_quality_fires_per_meeting_and_resolves_when_quality_recovers() {
    let mut ioc = Ioc::new(only(Rule::EndpointPoorQuality));
    ioc.meeting_started("M1", after(0), &[]);
    ioc.meeting_started("M2", after(0), &[]);
    ioc.joined("M1", "E1", after(10));
    ioc.joined("M1", "E2", after(10));
    ioc.joined("M2", "E3", after(10));
    ioc.stats("M1", "E1", after(20), 0.5, 10.0, 40.0);
    assert!(ioc.at(after(20)).is_empty(), "good quality");

    ioc.stats("M1", "E1", after(30), 2.0, 10.0, 40.0);
    let a = single(ioc.at(after(30)));
    assert_eq!(a.id, "endpoint_poor_quality:M1");
    assert_eq!(
        a.subject,
        Subject {
            kind: "meeting",
            id: "M1".into()
        }
    );
    assert_eq!(
        (a.state, a.severity, a.count),
        (AlertState::Firing, AlertSeverity::Info, 1)
    );
    assert_eq!(a.members, ["E1"]);
    assert!(
        a.summary.contains("M1") && a.summary.contains("1 điểm cầu"),
        "{}",
        a.summary
    );
    assert!(ioc.at(after(31)).is_empty(), "no flapping");

    ioc.stats("M1", "E2", after(40), 0.0, 45.0, 40.0);
    ioc.stats("M2", "E3", after(40), 0.0, 0.0, 350.0);
    let transitions = ioc.at(after(40));
    assert_eq!(
        ids(&transitions),
        ["endpoint_poor_quality:M2", "endpoint_poor_quality:M1"]
    );
    assert_eq!(
        (transitions[0].state, transitions[0].count),
        (AlertState::Firing, 1)
    );
    assert_eq!((transitions[1].count, transitions[1].members.len()), (2, 2));

    ioc.stats("M1", "E1", after(50), 0.1, 5.0, 40.0);
    let a = single(ioc.at(after(50)));
    assert_eq!((a.id.as_str(), a.count), ("endpoint_poor_quality:M1", 1));
    assert_eq!(a.members, ["E2"]);
    ioc.stats("M1", "E2", after(60), 0.1, 5.0, 40.0);
    let a = single(ioc.at(after(60)));
    assert_eq!(
        (a.id.as_str(), a.state),
        ("endpoint_poor_quality:M1", AlertState::Resolved)
    );
    assert_eq!(ioc.firing_ids(), ["endpoint_poor_quality:M2"]);
}

#[test]
fn poor_quality_resolves_when_the_endpoint_leaves_or_the_meeting_ends() {
    let mut ioc = Ioc::new(only(Rule::EndpointPoorQuality));
    ioc.meeting_started("M1", after(0), &[]);
    ioc.joined("M1", "E1", after(10));
    ioc.joined("M1", "E2", after(10));
    ioc.stats("M1", "E1", after(20), 5.0, 0.0, 0.0);
    ioc.stats("M1", "E2", after(20), 5.0, 0.0, 0.0);
    assert_eq!(single(ioc.at(after(20))).count, 2);
    let fields = json!({"meeting_id": "M1", "endpoint_id": "E1"});
    ioc.send(Source::Vc, "endpoint_left", after(30), fields);
    assert_eq!(single(ioc.at(after(30))).count, 1);
    ioc.meeting_ended("M1", after(40));
    assert_eq!(single(ioc.at(after(40))).state, AlertState::Resolved);
}

#[test]
fn packet_loss_of_exactly_the_threshold_is_not_poor_quality() {
    let mut ioc = Ioc::new(only(Rule::EndpointPoorQuality));
    ioc.meeting_started("M1", after(0), &[]);
    ioc.joined("M1", "E1", after(10));
    ioc.stats("M1", "E1", after(20), 1.0, 30.0, 300.0);
    assert!(ioc.at(after(20)).is_empty());
}

// incident_unacknowledged

#[test]
fn incident_unacknowledged_fires_strictly_after_15_minutes_and_resolves_on_acknowledgement() {
    let mut ioc = Ioc::new(only(Rule::IncidentUnacknowledged));
    ioc.incident_opened("INC-1", "critical", after(0));
    assert!(ioc.at(after(900)).is_empty(), "exactly 15 minutes");

    let a = single(ioc.at(after(901)));
    assert_eq!(a.id, "incident_unacknowledged:INC-1");
    assert_eq!(
        a.subject,
        Subject {
            kind: "incident",
            id: "INC-1".into()
        }
    );
    assert_eq!(
        (a.state, a.severity, a.count),
        (AlertState::Firing, AlertSeverity::Critical, 1)
    );
    assert!(
        a.summary.contains("INC-1") && a.summary.contains("15 phút"),
        "{}",
        a.summary
    );
    assert!(ioc.at(after(5000)).is_empty(), "no flapping");

    ioc.incident_acknowledged("INC-1", after(6000));
    let a = single(ioc.at(after(6000)));
    assert_eq!(
        (a.id.as_str(), a.state),
        ("incident_unacknowledged:INC-1", AlertState::Resolved)
    );
    assert!(ioc.at(after(9000)).is_empty());
}

#[test]
fn a_high_incident_fires_and_a_medium_one_never_does_by_default() {
    let mut ioc = Ioc::new(only(Rule::IncidentUnacknowledged));
    ioc.incident_opened("INC-H", "high", after(0));
    ioc.incident_opened("INC-M", "medium", after(0));
    ioc.incident_opened("INC-L", "low", after(0));
    let a = single(ioc.at(after(901)));
    assert_eq!(a.id, "incident_unacknowledged:INC-H");
    assert!(ioc.at(after(7 * 86_400)).is_empty());
}

#[test]
fn a_low_minimum_severity_makes_a_medium_incident_fire() {
    let mut settings = only(Rule::IncidentUnacknowledged);
    settings.incident_min_severity = crate::decode::Severity::Low;
    let mut ioc = Ioc::new(settings);
    ioc.incident_opened("INC-M", "medium", after(0));
    let a = single(ioc.at(after(901)));
    assert_eq!(a.id, "incident_unacknowledged:INC-M");
    assert!(a.summary.contains("trung bình"), "{}", a.summary);
}

// soc_system_silent

#[test]
fn soc_system_silent_fires_strictly_after_10_minutes_since_its_latest_heartbeat() {
    let mut ioc = Ioc::new(only(Rule::SocSystemSilent));
    ioc.system_heartbeat("S1", after(60));
    assert!(ioc.at(after(660)).is_empty(), "exactly 10 minutes");
    let a = single(ioc.at(after(661)));
    assert_eq!(a.id, "soc_system_silent:S1");
    assert_eq!(
        a.subject,
        Subject {
            kind: "system",
            id: "S1".into()
        }
    );
    assert_eq!(
        (a.state, a.severity, a.count),
        (AlertState::Firing, AlertSeverity::Warning, 1)
    );
    assert!(
        a.summary.contains("S1") && a.summary.contains("10 phút"),
        "{}",
        a.summary
    );
    assert!(ioc.at(after(700)).is_empty(), "no flapping");

    ioc.system_heartbeat("S1", after(800));
    assert_eq!(single(ioc.at(after(800))).state, AlertState::Resolved);
    assert!(ioc.at(after(1400)).is_empty());
    assert_eq!(single(ioc.at(after(1401))).since, rfc(after(1401)));
}

#[test]
fn a_configured_system_never_heard_from_fires_10_minutes_after_the_start() {
    let params = Params {
        systems: vec!["S9".into()],
        ..Params::default()
    };
    let mut ioc = Ioc::with(only(Rule::SocSystemSilent), params);
    assert!(ioc.at(after(600)).is_empty());
    let a = single(ioc.at(after(601)));
    assert_eq!(a.id, "soc_system_silent:S9");
    ioc.system_heartbeat("S9", after(700));
    assert_eq!(single(ioc.at(after(700))).state, AlertState::Resolved);
}

// Rule settings

#[test]
fn a_disabled_rule_never_fires_and_has_no_gauge_row() {
    let mut settings = defaults();
    settings.dossier_overdue.enabled = false;
    let mut ioc = Ioc::new(settings);
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.heartbeat(Source::Vc, after(3 * 86_400));
    ioc.heartbeat(Source::Soc, after(3 * 86_400));
    let transitions = ioc.at(after(3 * 86_400));
    assert!(
        transitions.iter().all(|a| a.rule != Rule::DossierOverdue),
        "{transitions:#?}"
    );
    assert!(
        transitions.iter().any(|a| a.rule == Rule::DossierStalled),
        "the others still run"
    );
    let counts = ioc.engine.firing_counts();
    assert!(
        counts.iter().all(|(r, _, _)| *r != Rule::DossierOverdue),
        "{counts:?}"
    );
}

#[test]
fn a_min_count_of_3_fires_only_from_3_overdue_dossiers() {
    let mut settings = only(Rule::DossierOverdue);
    settings.dossier_overdue.min_count = 3;
    let mut ioc = Ioc::new(settings);
    ioc.received("D1", "A", after(0), Some(after(100)));
    ioc.received("D2", "A", after(0), Some(after(200)));
    ioc.received("D3", "A", after(0), Some(after(300)));
    assert!(ioc.at(after(201)).is_empty(), "2 overdue");
    let a = single(ioc.at(after(301)));
    assert_eq!((a.count, a.since.as_str()), (3, rfc(after(301)).as_str()));
    ioc.resolved("D1", after(400));
    assert_eq!(
        single(ioc.at(after(400))).state,
        AlertState::Resolved,
        "back under the minimum"
    );
}

#[test]
fn a_configured_severity_is_used_by_the_alert_and_its_gauge_row() {
    let mut settings = only(Rule::DossierOverdue);
    settings.dossier_overdue.severity = AlertSeverity::Critical;
    let mut ioc = Ioc::new(settings);
    ioc.received("D1", "A", after(0), Some(after(60)));
    assert_eq!(single(ioc.at(after(61))).severity, AlertSeverity::Critical);
    assert_eq!(
        ioc.engine.firing_counts(),
        [(Rule::DossierOverdue, AlertSeverity::Critical, 1)]
    );
}

// English summaries

#[test]
fn english_summaries_of_dossier_rules_name_the_agency_the_threshold_and_the_count() {
    let mut ioc = Ioc::new(english(only(Rule::DossierOverdue)));
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.received("D2", "A", after(0), Some(after(120)));
    assert_eq!(
        single(ioc.at(after(61))).summary,
        "Agency A has 1 dossier in progress past its due date."
    );
    assert_eq!(
        single(ioc.at(after(121))).summary,
        "Agency A has 2 dossiers in progress past their due date."
    );

    let mut ioc = Ioc::new(english(only(Rule::DossierStalled)));
    ioc.received("D1", "A", after(0), None);
    assert_eq!(
        single(ioc.at(after(48 * 3600 + 1))).summary,
        "Agency A has 1 stalled dossier with no progress for more than 48 hours."
    );

    let mut ioc = Ioc::with(english(only(Rule::DossierStalled)), working_params());
    ioc.received("D1", "A", t("2026-11-27T16:00:00+07:00"), None);
    ioc.received("D2", "A", t("2026-11-27T16:00:00+07:00"), None);
    assert_eq!(
        single(ioc.at(t("2026-12-02T10:00:00+07:00"))).summary,
        "Agency A has 2 stalled dossiers with no progress for more than 15 working hours."
    );
}

#[test]
fn english_summaries_of_feed_and_system_rules_name_the_subject_and_the_threshold() {
    let mut ioc = Ioc::new(english(only(Rule::FeedSilent)));
    let transitions = ioc.at(after(301));
    let summaries: Vec<&str> = transitions.iter().map(|a| a.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "The administrative procedures information system has sent no event for more than 5 minutes.",
            "The security operations centre (SOC) has sent no event for more than 5 minutes.",
            "The video-conferencing system has sent no event for more than 5 minutes.",
        ]
    );

    let mut ioc = Ioc::new(english(only(Rule::SocSystemSilent)));
    ioc.system_heartbeat("S1", after(0));
    assert_eq!(
        single(ioc.at(after(601))).summary,
        "System S1 has sent no alert or heartbeat for more than 10 minutes."
    );
}

#[test]
fn english_summaries_of_meeting_and_incident_rules_name_the_subject_the_threshold_and_the_count() {
    let mut ioc = Ioc::new(english(only(Rule::EndpointMissing)));
    ioc.meeting_started("M1", after(0), &["E1", "E2"]);
    assert_eq!(
        single(ioc.at(after(301))).summary,
        "Meeting «Giao ban trực tuyến» (M1) is missing 2 expected endpoints more than 5 minutes after it started."
    );
    ioc.joined("M1", "E1", after(400));
    assert_eq!(
        single(ioc.at(after(400))).summary,
        "Meeting «Giao ban trực tuyến» (M1) is missing 1 expected endpoint more than 5 minutes after it started."
    );

    let mut ioc = Ioc::new(english(only(Rule::EndpointPoorQuality)));
    ioc.meeting_started("M1", after(0), &[]);
    ioc.joined("M1", "E1", after(10));
    ioc.stats("M1", "E1", after(20), 2.0, 0.0, 0.0);
    assert_eq!(
        single(ioc.at(after(20))).summary,
        "Meeting «Giao ban trực tuyến» (M1) has 1 endpoint with poor quality \
         (packet loss over 1%, jitter over 30 ms or round-trip time over 300 ms)."
    );

    let mut ioc = Ioc::new(english(only(Rule::IncidentUnacknowledged)));
    ioc.incident_opened("INC-1", "critical", after(0));
    assert_eq!(
        single(ioc.at(after(901))).summary,
        "Incident INC-1 (critical) on system dvc-portal has not been acknowledged for more than 15 minutes."
    );
}

#[test]
fn a_threshold_that_is_not_whole_minutes_is_named_in_seconds() {
    let params = Params {
        source_silent_secs: 90,
        system_silent_secs: 60,
        ..Params::default()
    };
    let mut settings = english(defaults());
    settings.incident_unacknowledged_after = std::time::Duration::from_secs(30);
    let mut ioc = Ioc::with(settings, params.clone());
    ioc.system_heartbeat("S1", after(0));
    ioc.incident_opened("INC-1", "high", after(0));
    let transitions = ioc.at(after(91));
    let summary = |id: &str| {
        transitions
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.summary.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        summary("feed_silent:vc"),
        "The video-conferencing system has sent no event for more than 90 seconds."
    );
    assert_eq!(
        summary("soc_system_silent:S1"),
        "System S1 has sent no alert or heartbeat for more than 1 minute."
    );
    assert!(summary("incident_unacknowledged:INC-1").ends_with("for more than 30 seconds."));

    let mut ioc = Ioc::with(defaults(), params);
    let a = ioc
        .at(after(91))
        .into_iter()
        .find(|a| a.id == "feed_silent:vc")
        .expect("vc silent");
    assert!(a.summary.contains("hơn 90 giây"), "{}", a.summary);
}

// Params: the values each summary is built from, for clients writing their own sentence

/// The `params` of an alert as serialised in the alert object.
fn params_of(a: &Alert) -> Value {
    let v: Value = serde_json::from_str(&a.to_json()).expect("valid JSON");
    v["params"].clone()
}

#[test]
fn params_of_dossier_rules_carry_the_agency_the_count_and_the_stalled_threshold() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "000.00.19.H42", after(0), Some(after(60)));
    ioc.received("D2", "000.00.19.H42", after(0), Some(after(120)));
    let a = single(ioc.at(after(61)));
    assert_eq!(
        params_of(&a),
        json!({"agency": "000.00.19.H42", "agency_name": null, "count": 1})
    );
    // A count change is a transition, and its params follow.
    let a = single(ioc.at(after(121)));
    assert_eq!(
        params_of(&a),
        json!({"agency": "000.00.19.H42", "agency_name": null, "count": 2})
    );

    let mut ioc = Ioc::new(only(Rule::DossierStalled));
    ioc.received("D1", "A", after(0), None);
    let a = single(ioc.at(after(48 * 3600 + 1)));
    assert_eq!(
        params_of(&a),
        json!({"agency": "A", "agency_name": null, "count": 1, "hours": 48, "working_hours": false})
    );

    let mut ioc = Ioc::with(only(Rule::DossierStalled), working_params());
    ioc.received("D1", "A", t("2026-11-27T16:00:00+07:00"), None);
    ioc.received("D2", "A", t("2026-11-27T16:00:00+07:00"), None);
    let a = single(ioc.at(t("2026-12-02T10:00:00+07:00")));
    assert_eq!(
        params_of(&a),
        json!({"agency": "A", "agency_name": null, "count": 2, "hours": 15, "working_hours": true})
    );
}

#[test]
fn params_of_feed_and_system_rules_carry_the_subject_and_the_threshold_in_seconds() {
    let mut ioc = Ioc::new(only(Rule::FeedSilent));
    let transitions = ioc.at(after(301));
    let params: Vec<Value> = transitions.iter().map(params_of).collect();
    assert_eq!(
        params,
        [
            json!({"source": "onestop", "seconds": 300}),
            json!({"source": "soc", "seconds": 300}),
            json!({"source": "vc", "seconds": 300}),
        ]
    );

    let mut ioc = Ioc::with(
        only(Rule::SocSystemSilent),
        Params {
            system_silent_secs: 90,
            ..Params::default()
        },
    );
    ioc.system_heartbeat("HT-DVC", after(0));
    let a = single(ioc.at(after(91)));
    assert_eq!(params_of(&a), json!({"system": "HT-DVC", "seconds": 90}));
}

#[test]
fn params_of_meeting_and_incident_rules_carry_the_subject_the_count_and_the_thresholds() {
    let mut ioc = Ioc::new(only(Rule::EndpointMissing));
    ioc.meeting_started("M1", after(0), &["E1", "E2"]);
    let a = single(ioc.at(after(301)));
    assert_eq!(
        params_of(&a),
        json!({"meeting": "M1", "title": "Giao ban trực tuyến", "count": 2, "seconds": 300})
    );

    let mut ioc = Ioc::new(only(Rule::EndpointPoorQuality));
    ioc.meeting_started("M1", after(0), &[]);
    ioc.joined("M1", "E1", after(10));
    ioc.stats("M1", "E1", after(20), 2.0, 0.0, 0.0);
    let a = single(ioc.at(after(20)));
    assert_eq!(
        params_of(&a),
        json!({"meeting": "M1", "title": "Giao ban trực tuyến", "count": 1,
               "packet_loss_pct": 1.0, "jitter_ms": 30.0, "rtt_ms": 300.0})
    );

    let mut settings = only(Rule::IncidentUnacknowledged);
    settings.incident_unacknowledged_after = std::time::Duration::from_secs(30);
    let mut ioc = Ioc::new(settings);
    ioc.incident_opened("INC-1", "critical", after(0));
    let a = single(ioc.at(after(31)));
    assert_eq!(
        params_of(&a),
        json!({"incident": "INC-1", "incident_severity": "critical", "system": "dvc-portal",
               "seconds": 30})
    );
}

#[test]
fn params_are_the_same_in_both_languages_and_an_unknown_title_is_null() {
    for rule in Rule::ALL {
        let run = |settings: AlertSettings| {
            let mut ioc = Ioc::with(settings, working_params());
            ioc.received("D1", "A", after(0), Some(after(60)));
            ioc.meeting_started("M1", after(0), &["E1", "E2"]);
            ioc.joined("M1", "E3", after(10));
            ioc.stats("M1", "E3", after(20), 5.0, 0.0, 0.0);
            ioc.incident_opened("INC-1", "high", after(0));
            ioc.system_heartbeat("S1", after(0));
            // Friday 08:00: D1 has stalled for more than 15 working hours. The first alert
            // by id (feed_silent fires for each source).
            let a = ioc.at(after(3 * 86_400)).into_iter().next();
            let a = a.unwrap_or_else(|| panic!("{rule:?} fires"));
            (a.summary.clone(), params_of(&a))
        };
        let (vi, vi_params) = run(only(rule));
        let (en, en_params) = run(english(only(rule)));
        assert_ne!(vi, en, "{rule:?}: two languages");
        assert_eq!(
            vi_params, en_params,
            "{rule:?}: params do not depend on the language"
        );
        assert!(
            vi_params.as_object().is_some_and(|o| !o.is_empty()),
            "{rule:?}: params {vi_params}"
        );
    }

    let vc = Params::default().vc;
    let text = super::summary::Text::Poor {
        meeting: "M9",
        title: "",
        count: 3,
        vc: &vc,
    };
    assert_eq!(text.params()["title"], Value::Null);
    assert_eq!(text.params()["meeting"], "M9");
}

// Ordering and gauges

#[test]
fn firing_lists_the_newest_since_first_and_ties_by_ascending_id() {
    let mut ioc = Ioc::new(only_feeds_and_incidents());
    ioc.heartbeat(Source::Onestop, after(100));
    let first = ioc.at(after(301));
    assert_eq!(ids(&first), ["feed_silent:soc", "feed_silent:vc"]);
    ioc.incident_opened("INC-1", "critical", after(300));
    ioc.heartbeat(Source::Onestop, after(300));
    let second = ioc.at(after(1201));
    assert_eq!(
        ids(&second),
        ["feed_silent:onestop", "incident_unacknowledged:INC-1"]
    );
    assert_eq!(
        ioc.firing_ids(),
        [
            "feed_silent:onestop",
            "incident_unacknowledged:INC-1",
            "feed_silent:soc",
            "feed_silent:vc",
        ]
    );
    let json: Value = serde_json::from_str(&ioc.engine.firing_json()).expect("valid JSON");
    let json_ids: Vec<&str> = json
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(json_ids, ioc.firing_ids());
}

#[test]
fn transitions_of_one_evaluation_are_new_firings_then_count_changes_then_resolutions_each_by_id() {
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    let agencies = ["H", "C", "F", "A", "G", "B", "E", "D"];
    for (i, agency) in agencies.iter().enumerate() {
        ioc.received(&format!("D{i}"), agency, after(0), Some(after(60)));
    }
    let first = ioc.at(after(61));
    let expected: Vec<String> = ["A", "B", "C", "D", "E", "F", "G", "H"]
        .iter()
        .map(|a| format!("dossier_overdue:{a}"))
        .collect();
    assert_eq!(ids(&first), expected);

    // H and C gain a dossier, F and A lose theirs, J and I start.
    ioc.received("X1", "H", after(0), Some(after(100)));
    ioc.received("X2", "C", after(0), Some(after(100)));
    ioc.resolved("D2", after(100));
    ioc.resolved("D3", after(100));
    ioc.received("X3", "J", after(0), Some(after(100)));
    ioc.received("X4", "I", after(0), Some(after(100)));
    let next = ioc.at(after(101));
    assert_eq!(
        ids(&next),
        [
            "dossier_overdue:I",
            "dossier_overdue:J",
            "dossier_overdue:C",
            "dossier_overdue:H",
            "dossier_overdue:A",
            "dossier_overdue:F",
        ]
    );
    let states: Vec<(AlertState, u64)> = next.iter().map(|a| (a.state, a.count)).collect();
    assert_eq!(
        states,
        [
            (AlertState::Firing, 1),
            (AlertState::Firing, 1),
            (AlertState::Firing, 2),
            (AlertState::Firing, 2),
            (AlertState::Resolved, 1),
            (AlertState::Resolved, 1),
        ]
    );
}

#[test]
fn firing_counts_give_0_for_every_enabled_rule_with_nothing_firing() {
    let ioc = Ioc::new(defaults());
    assert_eq!(
        ioc.engine.firing_counts(),
        [
            (Rule::DossierOverdue, AlertSeverity::Warning, 0),
            (Rule::DossierStalled, AlertSeverity::Warning, 0),
            (Rule::FeedSilent, AlertSeverity::Critical, 0),
            (Rule::EndpointMissing, AlertSeverity::Warning, 0),
            (Rule::EndpointPoorQuality, AlertSeverity::Info, 0),
            (Rule::IncidentUnacknowledged, AlertSeverity::Critical, 0),
            (Rule::SocSystemSilent, AlertSeverity::Warning, 0),
        ]
    );
}

#[test]
fn firing_counts_count_firing_alerts_per_rule_and_severity() {
    let mut ioc = Ioc::new(defaults());
    ioc.received("D1", "A", after(200), Some(after(250)));
    ioc.received("D2", "B", after(200), Some(after(250)));
    ioc.heartbeat(Source::Vc, after(200));
    ioc.heartbeat(Source::Soc, after(200));
    ioc.at(after(301));
    let counts = ioc.engine.firing_counts();
    assert!(
        counts.contains(&(Rule::DossierOverdue, AlertSeverity::Warning, 2)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&(Rule::FeedSilent, AlertSeverity::Critical, 0)),
        "{counts:?}"
    );
    let total: u64 = counts.iter().map(|(_, _, n)| n).sum();
    assert_eq!(total, ioc.engine.firing().len() as u64);
}

// At most `max_subjects_per_rule` subjects per rule; the rest in one roll-up alert.

/// Overdue dossiers: agency → how many.
fn overdue_agencies(ioc: &mut Ioc, agencies: &[(&str, usize)]) {
    for (agency, n) in agencies {
        for i in 0..*n {
            ioc.received(
                &format!("D-{agency}-{i}"),
                agency,
                after(0),
                Some(after(60)),
            );
        }
    }
}

#[test]
fn beyond_max_subjects_the_rest_of_a_rule_rolls_up_into_one_alert() {
    let mut settings = only(Rule::DossierOverdue);
    settings.max_subjects_per_rule = 3;
    let mut ioc = Ioc::new(settings);
    overdue_agencies(
        &mut ioc,
        &[("A", 1), ("B", 3), ("C", 2), ("D", 2), ("E", 1), ("F", 1)],
    );
    let transitions = ioc.at(after(61));
    // The most urgent keep their own alert: largest count, ties by id.
    assert_eq!(
        ids(&transitions),
        [
            "dossier_overdue:+others",
            "dossier_overdue:B",
            "dossier_overdue:C",
            "dossier_overdue:D"
        ]
    );
    let others = &transitions[0];
    assert_eq!(
        others.subject,
        Subject {
            kind: "agency",
            id: OTHERS.into()
        }
    );
    assert_eq!(others.count, 3, "the count is the subjects beyond the cap");
    assert_eq!(others.members, ["A", "E", "F"]);
    assert_eq!(
        others.summary,
        "Và 3 đơn vị khác có hồ sơ đang xử lý quá hạn."
    );
    assert_eq!(others.params, json!({"count": 3, "others": true}));
    assert_eq!(others.severity, AlertSeverity::Warning);

    // One more agency beyond the cap: the roll-up's count changes, nothing else.
    ioc.received("D-G-0", "G", after(70), Some(after(80)));
    let changed = single(ioc.at(after(81)));
    assert_eq!(
        (changed.id.as_str(), changed.state, changed.count),
        ("dossier_overdue:+others", AlertState::Firing, 4)
    );
    assert_eq!(changed.since, others.since);
}

#[test]
fn the_roll_up_resolves_when_the_subjects_fit_under_the_cap_again() {
    let mut settings = only(Rule::DossierOverdue);
    settings.max_subjects_per_rule = 2;
    let mut ioc = Ioc::new(settings);
    overdue_agencies(&mut ioc, &[("A", 2), ("B", 2), ("C", 1)]);
    assert_eq!(ioc.at(after(61)).len(), 3);
    ioc.resolved("D-C-0", after(100));
    let gone = single(ioc.at(after(100)));
    assert_eq!(
        (gone.id.as_str(), gone.state),
        ("dossier_overdue:+others", AlertState::Resolved)
    );
    assert_eq!(ioc.firing_ids(), ["dossier_overdue:A", "dossier_overdue:B"]);
}

#[test]
fn the_roll_up_summary_is_english_too_and_singular_for_one() {
    let mut settings = english(only(Rule::DossierOverdue));
    settings.max_subjects_per_rule = 1;
    let mut ioc = Ioc::new(settings);
    overdue_agencies(&mut ioc, &[("A", 2), ("B", 1)]);
    let transitions = ioc.at(after(61));
    assert_eq!(
        transitions[0].summary,
        "And 1 more agency with overdue dossiers."
    );
    overdue_agencies(&mut ioc, &[("C", 1)]);
    let changed = single(ioc.at(after(62)));
    assert_eq!(
        changed.summary,
        "And 2 more agencies with overdue dossiers."
    );
}

#[test]
fn a_flood_of_subjects_gives_a_bounded_alert_list_and_snapshot() {
    let settings = only(Rule::DossierOverdue);
    let cap = settings.max_subjects_per_rule;
    assert_eq!(cap, 200, "the shipped default");
    let mut ioc = Ioc::new(settings);
    // Long agency codes make each alert object large.
    let agencies: Vec<(String, usize)> = (0..3000)
        .map(|i| (format!("{i:0>5}.{}", "X".repeat(60)), 1 + i % 3))
        .collect();
    let refs: Vec<(&str, usize)> = agencies.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    overdue_agencies(&mut ioc, &refs);
    let transitions = ioc.at(after(61));
    assert_eq!(transitions.len(), cap + 1);
    let others = transitions
        .iter()
        .find(|a| a.subject.id == OTHERS)
        .expect("a roll-up");
    assert_eq!(others.count, 3000 - 200);
    // The 200 kept are the agencies with 3 overdue dossiers, the first by id.
    assert!(
        transitions
            .iter()
            .filter(|a| a.subject.id != OTHERS)
            .all(|a| a.count == 3)
    );
    let snapshot = ioc.engine.firing_json();
    assert!(
        snapshot.len() <= SNAPSHOT_ALERTS_BYTES,
        "{}",
        snapshot.len()
    );
    let listed: Value = serde_json::from_str(&snapshot).expect("valid JSON");
    let listed = listed.as_array().expect("an array");
    assert!(listed.iter().any(|a| a["subject"]["id"] == OTHERS));
    assert_eq!(ioc.engine.api_items().len(), cap + 1);
}

// Operator actions: acknowledgement, escalation, reminders, silences

fn act(id: &str, kind: crate::decode::action::ActionKind, at: Ts) -> crate::decode::action::Action {
    crate::decode::action::Action {
        id: id.into(),
        kind,
        at,
        by: crate::decode::action::Actor {
            name: "Trực ban ca 1".into(),
            role: crate::decode::action::Role::Operator,
        },
        alert_id: Some("dossier_overdue:A".into()),
        comment: Some("Đã gọi điện cho đơn vị".into()),
        assignee: (kind == crate::decode::action::ActionKind::Assign)
            .then(|| "Phòng Kiểm soát TTHC".into()),
        silence: None,
        silence_id: None,
    }
}

fn silence_of_rule(id: &str, from: Ts, to: Ts) -> crate::decode::action::Action {
    crate::decode::action::Action {
        alert_id: None,
        comment: None,
        silence: Some(crate::decode::action::Silence {
            rule: "dossier_overdue".into(),
            subject: None,
            starts: from,
            ends: to,
            reason: "Bảo trì hệ thống một cửa".into(),
        }),
        ..act(id, crate::decode::action::ActionKind::Silence, from)
    }
}

#[test]
fn an_unacknowledged_alert_is_reminded_then_escalated_and_an_acknowledgement_stops_both() {
    use crate::decode::action::ActionKind;
    use handling::Status;
    let mut settings = only(Rule::DossierOverdue);
    settings.remind_every = Some(std::time::Duration::from_secs(1800));
    settings.escalate_after = [None, Some(std::time::Duration::from_secs(7200)), None];
    let mut ioc = Ioc::handled(settings, Params::default());
    ioc.received("D1", "A", after(0), Some(after(60)));
    let fired = single(ioc.at(after(61)));
    assert_eq!(fired.handling.handling, Status::New);
    assert!(
        ioc.at(after(1000)).is_empty(),
        "nothing before the first reminder"
    );
    let reminded = single(ioc.at(after(61 + 1800)));
    assert_eq!(reminded.handling.reminders, 1);
    let escalated = single(ioc.at(after(61 + 7200)));
    assert_eq!(escalated.handling.handling, Status::Escalated);
    assert_eq!(
        escalated.handling.escalated.as_ref().map(|e| e.severity),
        Some(AlertSeverity::Critical),
        "a warning escalates to critical"
    );
    assert_eq!(
        escalated.severity,
        AlertSeverity::Warning,
        "the rule's severity stays"
    );
    assert_eq!(
        ioc.engine.unacknowledged_counts(),
        [(Rule::DossierOverdue, AlertSeverity::Warning, 1)]
    );
    ioc.state.apply(
        &Input::Action(act("a1", ActionKind::Acknowledge, after(7300))),
        after(7300),
    );
    let taken = single(ioc.at(after(7301)));
    assert_eq!(taken.handling.handling, Status::Acknowledged);
    assert!(taken.handling.escalated.is_none() && taken.handling.reminders == 0);
    assert_eq!(
        taken.handling.acknowledged.as_ref().map(|t| t.by.as_str()),
        Some("Trực ban ca 1")
    );
    let mtta = ioc.engine.take_acknowledged();
    assert_eq!(mtta.len(), 1);
    assert!((mtta[0].2 - 7239.0).abs() < 1.0, "{mtta:?}");
    assert_eq!(
        ioc.engine.unacknowledged_counts(),
        [(Rule::DossierOverdue, AlertSeverity::Warning, 0)]
    );
    assert!(ioc.at(after(20_000)).is_empty(), "no reminder once taken");
    // A silence of the whole rule mutes it for its time, then it is as it was.
    ioc.state.apply(
        &Input::Action(silence_of_rule("s1", after(20_100), after(21_000))),
        after(20_050),
    );
    assert_eq!(
        single(ioc.at(after(20_101))).handling.handling,
        Status::Silenced
    );
    assert_eq!(
        single(ioc.at(after(21_001))).handling.handling,
        Status::Acknowledged
    );
}

#[test]
fn the_handling_is_the_same_whatever_order_the_actions_arrive_in() {
    use crate::decode::action::ActionKind;
    let actions = [
        act("a1", ActionKind::Acknowledge, after(100)),
        act("a2", ActionKind::Unacknowledge, after(200)),
        act("a3", ActionKind::Assign, after(300)),
        act("a4", ActionKind::Acknowledge, after(400)),
        act("a5", ActionKind::Comment, after(500)),
    ];
    let mut seen: Option<String> = None;
    for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]] {
        let mut ioc = Ioc::new(only(Rule::DossierOverdue));
        ioc.received("D1", "A", after(0), Some(after(60)));
        ioc.at(after(61));
        for i in order {
            ioc.state
                .apply(&Input::Action(actions[i].clone()), after(600));
            // A copy (from the broker, a retry) changes nothing.
            let again = ioc
                .state
                .apply(&Input::Action(actions[i].clone()), after(600));
            assert_eq!(again, Outcome::Duplicate);
        }
        let a = single(ioc.at(after(601)));
        assert_eq!(
            a.handling
                .acknowledged
                .as_ref()
                .map(|t| t.action_id.as_str()),
            Some("a4")
        );
        assert_eq!(
            a.handling.assignee.as_ref().map(|x| x.to.as_str()),
            Some("Phòng Kiểm soát TTHC")
        );
        let json = a.to_json();
        if let Some(first) = &seen {
            assert_eq!(first, &json);
        }
        seen = Some(json);
    }
}

#[test]
fn an_acknowledgement_belongs_to_its_episode() {
    use crate::decode::action::ActionKind;
    let mut ioc = Ioc::new(only(Rule::DossierOverdue));
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.at(after(61));
    ioc.state.apply(
        &Input::Action(act("a1", ActionKind::Acknowledge, after(100))),
        after(100),
    );
    assert!(single(ioc.at(after(101))).handling.acknowledged.is_some());
    ioc.resolved("D1", after(200));
    assert_eq!(single(ioc.at(after(201))).state, AlertState::Resolved);
    ioc.received("D2", "A", after(300), Some(after(400)));
    let again = single(ioc.at(after(401)));
    assert_eq!(again.state, AlertState::Firing);
    assert!(
        again.handling.acknowledged.is_none(),
        "a new episode is new again"
    );
}

// The shipped grouping of the dossier rules

#[test]
fn by_default_an_agency_alerts_from_three_dossiers_and_one_digest_counts_the_province() {
    let mut settings = AlertSettings::default();
    for r in Rule::ALL {
        rule_mut(&mut settings, r).enabled = r == Rule::DossierOverdue;
    }
    assert_eq!(settings.dossier_overdue.min_count, 3, "the shipped default");
    assert!(settings.dossier_digest);
    let mut ioc = Ioc::new(settings);
    // Five agencies with one overdue dossier each, one with three.
    for a in 0..5 {
        ioc.received(
            &format!("D{a}"),
            &format!("A{a}"),
            after(0),
            Some(after(60)),
        );
    }
    for d in 0..3 {
        ioc.received(&format!("B{d}"), "B", after(0), Some(after(60)));
    }
    let fired = ioc.at(after(61));
    assert_eq!(
        ids(&fired),
        ["dossier_overdue:*", "dossier_overdue:B"],
        "the agency with three has its own alert; the others are in the digest"
    );
    let digest = fired.iter().find(|a| a.subject.id == "*").unwrap();
    assert_eq!(digest.count, 8, "every overdue dossier of the province");
    assert_eq!(
        digest.params,
        json!({"count": 8, "agencies": 6, "digest": true})
    );
    assert_eq!(digest.members[0], "B", "the agency with most first");
    assert_eq!(
        digest.summary,
        "Toàn tỉnh có 8 hồ sơ đang xử lý quá hạn trả kết quả, tại 6 đơn vị."
    );
    assert_eq!(
        digest.summary_alt,
        "Province-wide, 8 dossiers past due at 6 agencies."
    );
    // One more agency below the minimum: only the digest changes.
    ioc.received("D9", "A9", after(70), Some(after(80)));
    let changed = ioc.at(after(81));
    assert_eq!(ids(&changed), ["dossier_overdue:*"]);
    assert_eq!(changed[0].count, 9);
    // Everything resolved: the digest resolves too.
    for a in 0..5 {
        ioc.resolved(&format!("D{a}"), after(100));
    }
    ioc.resolved("D9", after(100));
    for d in 0..3 {
        ioc.resolved(&format!("B{d}"), after(100));
    }
    let resolved = ioc.at(after(101));
    assert!(resolved.iter().all(|a| a.state == AlertState::Resolved));
    assert_eq!(resolved.len(), 2);
}

#[test]
fn a_silenced_alert_neither_escalates_nor_reminds() {
    use handling::Status;
    let mut settings = only(Rule::DossierOverdue);
    settings.remind_every = Some(std::time::Duration::from_secs(1800));
    settings.escalate_after = [None, Some(std::time::Duration::from_secs(7200)), None];
    let mut ioc = Ioc::handled(settings, Params::default());
    ioc.received("D1", "A", after(0), Some(after(60)));
    ioc.at(after(61));
    ioc.state.apply(
        &Input::Action(silence_of_rule("s1", after(100), after(20_000))),
        after(100),
    );
    let muted = single(ioc.at(after(101)));
    assert_eq!(muted.handling.handling, Status::Silenced);
    assert!(
        ioc.at(after(10_000)).is_empty(),
        "no reminder nor escalation while silenced"
    );
    assert_eq!(
        ioc.engine.unacknowledged_counts(),
        [(Rule::DossierOverdue, AlertSeverity::Warning, 0)],
        "a silenced alert does not page"
    );
    // When the silence ends, it is overdue for escalation: it escalates at once.
    let after_silence = single(ioc.at(after(20_001)));
    assert_eq!(after_silence.handling.handling, Status::Escalated);
}

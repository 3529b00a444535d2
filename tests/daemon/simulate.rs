//! The simulator against the daemon's own rules: every message it generates passes
//! decoding and applies to the state, except the faults it declares, which are rejected
//! with exactly their reason or counted as duplicates; the simulated province looks like
//! one; the demo shows every panel at once; and end to end through a real Mosquitto, the
//! daemon's counters match the simulator's report exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use iocd::decode::{DecodeLimits, Reason, Source, decode, source_of};
use iocd::simulate::{Fault, Generator, SimMessage, SimOptions, SimReport};
use iocd::state::{Input, Outcome, Params, State, Timing};
use iocd::time::{Ts, parse_rfc3339};

use crate::helpers::{broker::TestBroker, metric_sum, poll_until, spawn_app, test_settings};

const PREFIX: &str = "ioc/v1";

/// Feeds messages through decode and apply as the daemon does, checking each against its
/// declared fault.
struct Daemonish {
    state: State,
    report: SimReport,
    reasons_seen: HashSet<Reason>,
    types_seen: HashSet<(Source, String)>,
}

impl Daemonish {
    fn new(start: Ts) -> Self {
        Self {
            state: State::new(Params::default(), start),
            report: SimReport::default(),
            reasons_seen: HashSet::new(),
            types_seen: HashSet::new(),
        }
    }

    fn feed(&mut self, msgs: &[SimMessage], prefix: &str) {
        for m in msgs {
            self.report.record(m);
            let source = source_of(&m.topic, prefix).expect("a source topic");
            assert_eq!(source, m.source, "{}", m.topic);
            let decoded = decode(source, &m.payload, m.at, &DecodeLimits::default());
            let text = String::from_utf8_lossy(&m.payload);
            match (m.fault, decoded) {
                (Some(Fault::Malformed(reason)), Err(e)) => {
                    assert_eq!(e.reason, reason, "{text}: {e}");
                    self.reasons_seen.insert(reason);
                    let input = Input::Rejected { source, reason };
                    assert_eq!(self.state.apply(&input, m.at), Outcome::Rejected);
                }
                (Some(Fault::Malformed(reason)), Ok(_)) => {
                    panic!("declared {reason:?} but accepted: {text}")
                }
                (fault, Ok(ev)) => {
                    self.types_seen.insert((source, ev.type_name().to_owned()));
                    let want = if fault == Some(Fault::Duplicate) {
                        Outcome::Duplicate
                    } else {
                        Outcome::Applied
                    };
                    assert_eq!(self.state.apply(&Input::Event(ev), m.at), want, "{text}");
                }
                (fault, Err(e)) => panic!("{fault:?} message rejected: {e}: {text}"),
            }
        }
    }

    /// The daemon's counters against the simulator's declarations, exactly.
    fn assert_counts_match(&self) {
        let c = &self.state.counters;
        let rejected: u64 = c.rejected.iter().flatten().sum();
        assert_eq!(rejected, self.report.malformed);
        for r in Reason::ALL {
            let n: u64 = c.rejected.iter().map(|row| row[r.index()]).sum();
            assert_eq!(n, self.report.malformed_by_reason[r.index()], "{r:?}");
        }
        assert_eq!(c.duplicates.iter().sum::<u64>(), self.report.duplicates);
        for s in Source::ALL {
            let accepted: u64 = c.events[s.index()].iter().sum();
            assert_eq!(
                accepted,
                self.report.accepted_per_source[s.index()],
                "{s:?}"
            );
        }
        assert_eq!(
            c.events.iter().flatten().sum::<u64>(),
            self.report.accepted_expected
        );
    }
}

fn ts(s: &str) -> Ts {
    parse_rfc3339(s).unwrap()
}

/// Generates `[start, start + secs)` in one-minute slices.
fn simulate(options: &SimOptions, start: Ts, secs: i64) -> Daemonish {
    let mut generator = Generator::new(options, start);
    let mut d = Daemonish::new(start);
    let mut t = start;
    while t < start.plus_secs(secs) {
        t = t.plus_secs(60);
        let msgs = generator.generate(t);
        d.feed(&msgs, PREFIX);
    }
    d
}

#[test]
fn a_simulated_day_passes_validation_except_its_declared_faults() {
    let options = SimOptions {
        seed: 42,
        faults: 0.05,
        ..SimOptions::default()
    };
    // A Tuesday, from midnight: nights, office hours and the lunch break.
    let start = ts("2026-11-24T00:00:00+07:00");
    let began = Instant::now();
    let d = simulate(&options, start, 86_400);
    let r = &d.report;
    eprintln!("24 h in {:.1} s: {r}", began.elapsed().as_secs_f64());

    d.assert_counts_match();
    let faults = r.malformed + r.duplicates + r.out_of_order;
    let share = faults as f64 / r.sent() as f64;
    assert!((0.035..0.065).contains(&share), "fault share {share}");
    assert!(d.reasons_seen.len() >= 7, "{:?}", d.reasons_seen);
    assert!(r.out_of_order > 0 && r.duplicates > 0);
    assert_province_is_realistic(&d);
}

fn assert_province_is_realistic(d: &Daemonish) {
    let c = &d.state.counters;
    let received: [u64; 3] = c
        .received
        .iter()
        .fold([0; 3], |a, r| [a[0] + r[0], a[1] + r[1], a[2] + r[2]]);
    let total: u64 = received.iter().sum();
    let online = received[0] as f64 / total as f64;
    eprintln!("received {total} {received:?}, online share {online:.3}");
    assert!((0.80..0.95).contains(&online), "online share {online}");
    assert!(
        (5_000..20_000).contains(&total),
        "received in a working day: {total}"
    );

    let resolved: [u64; 3] = c
        .resolved
        .iter()
        .fold([0; 3], |a, r| [a[0] + r[0], a[1] + r[1], a[2] + r[2]]);
    let all: u64 = resolved.iter().sum();
    let late = resolved[Timing::Late as usize] as f64 / all as f64;
    eprintln!("resolved {all} {resolved:?} (early, on time, late), late share {late:.4}");
    assert!((0.005..0.10).contains(&late), "late share {late}");
    assert!(resolved[Timing::Early as usize] > 0);

    let agencies = c
        .received
        .iter()
        .filter(|r| r.iter().sum::<u64>() > 0)
        .count();
    assert!(agencies >= 100, "agencies receiving: {agencies}");

    let big = d
        .state
        .vc
        .meetings
        .values()
        .filter(|m| m.expected.len() >= 10)
        .count();
    assert!(
        big >= 1,
        "meetings with ten or more expected endpoints: {big}"
    );
    let severities = c
        .soc_alerts
        .iter()
        .filter(|row| row.iter().sum::<u64>() > 0)
        .count();
    assert!(severities >= 3, "alert severities: {severities}");
    assert!(c.events_of(Source::Soc, "incident_opened") > 0);
    for ty in [
        "submitted",
        "received",
        "transferred",
        "supplement_requested",
        "supplement_received",
        "paused",
        "resumed",
        "resolved",
        "returned",
        "rejected",
        "withdrawn",
        "paid",
        "rated",
        "heartbeat",
    ] {
        assert!(
            d.types_seen.contains(&(Source::Onestop, ty.to_owned())),
            "no {ty}"
        );
    }
    for ty in [
        "meeting_started",
        "endpoint_joined",
        "endpoint_stats",
        "endpoint_left",
        "meeting_ended",
    ] {
        assert!(
            d.types_seen.contains(&(Source::Vc, ty.to_owned())),
            "no {ty}"
        );
    }
    for ty in [
        "alert",
        "incident_opened",
        "incident_acknowledged",
        "incident_resolved",
        "system_heartbeat",
    ] {
        assert!(
            d.types_seen.contains(&(Source::Soc, ty.to_owned())),
            "no {ty}"
        );
    }
}

#[test]
fn the_same_seed_and_start_give_the_same_messages() {
    let options = SimOptions {
        seed: 7,
        faults: 0.05,
        ..SimOptions::default()
    };
    let start = ts("2026-11-24T09:00:00+07:00");
    let first = Generator::new(&options, start).generate(start.plus_secs(600));
    let again = Generator::new(&options, start).generate(start.plus_secs(600));
    assert!(first.len() > 100, "{}", first.len());
    assert_eq!(first, again);
    let other =
        Generator::new(&SimOptions { seed: 8, ..options }, start).generate(start.plus_secs(600));
    assert_ne!(first, other);
}

#[test]
fn the_demo_shows_every_panel_within_seconds() {
    let options = SimOptions {
        demo: true,
        seed: 3,
        ..SimOptions::default()
    };
    // A Saturday night: the demo does not depend on office hours.
    let start = ts("2026-11-28T21:40:00+07:00");
    let mut generator = Generator::new(&options, start);
    let mut d = Daemonish::new(start);
    let history = generator.generate(start);
    let burst = history.len();
    d.feed(&history, PREFIX);
    d.feed(&generator.generate(start.plus_secs(5)), PREFIX);
    d.assert_counts_match();
    eprintln!("demo: {}", d.report);
    let v = d.state.view(start.plus_secs(5));
    let o = &v.onestop;
    eprintln!(
        "demo: history of {burst} messages; overdue {}, stalled {}, due soon {}, open {:?}, \
         today {} received / {} resolved; vc {:?}; soc {:?}",
        o.totals.overdue,
        o.totals.stalled,
        o.totals.due_soon,
        o.totals.open,
        o.today_received,
        o.today_resolved,
        v.vc,
        v.soc
    );
    assert!(burst < 30_000, "history burst of {burst} messages");
    assert!(o.totals.overdue > 0 && o.totals.stalled > 0 && o.totals.due_soon > 0);
    assert!(o.today_received > 0 && o.today_resolved > 0);
    assert!(o.received_per_minute.iter().sum::<u32>() > 0);
    assert!(o.resolved_per_minute.iter().sum::<u32>() > 0);
    assert!(v.vc.endpoints_missing > 0 && v.vc.endpoints_poor_quality > 0);
    assert!(v.vc.endpoints_connected >= 50);
    assert!(v.soc.incidents_unacknowledged[3] > 0, "a critical one");
    assert!(v.soc.systems_silent > 0);
    assert!(v.soc.alerts_60m.iter().sum::<u64>() > 0);
    assert!(v.sources.iter().all(|s| !s.silent));
    let critical_since = d
        .state
        .soc
        .incidents
        .values()
        .filter(|i| i.is_unacknowledged())
        .filter_map(iocd::state::soc::Incident::opened_at)
        .min()
        .unwrap();
    assert!(start.secs_since(critical_since) > 15.0 * 60.0);
    let meeting = v
        .meetings
        .iter()
        .map(|m| m.started_at.unwrap())
        .min()
        .unwrap();
    assert!(start.secs_since(meeting) > 5.0 * 60.0);
}

// ---- end to end ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_counts_exactly_what_the_simulator_reports() {
    let broker = TestBroker::start();
    let app = spawn_app(test_settings(&broker)).await;

    let options = SimOptions {
        mqtt_url: broker.url().parse().unwrap(),
        prefix: app.prefix.clone(),
        rate: Some(500.0),
        duration: Some(Duration::from_secs(5)),
        seed: 11,
        faults: 0.05,
        ..SimOptions::default()
    };
    let report = iocd::simulate::run_until(options, std::future::pending())
        .await
        .unwrap();
    eprintln!("{report}");
    assert_eq!(report.unacknowledged, 0);
    assert!(report.sent() >= 1000, "{report}");
    assert!(report.malformed > 0 && report.duplicates > 0);

    let expected = report.accepted_expected + report.malformed + report.duplicates;
    let body = poll_until(
        Duration::from_secs(30),
        || async { app.get("/metrics").await.1 },
        |body| {
            let seen = metric_sum(body, "iocd_events_total")
                + metric_sum(body, "iocd_events_rejected_total")
                + metric_sum(body, "iocd_events_duplicate_total");
            seen as u64 >= expected
        },
    )
    .await;
    assert_eq!(
        metric_sum(&body, "iocd_events_rejected_total") as u64,
        report.malformed
    );
    assert_eq!(
        metric_sum(&body, "iocd_events_duplicate_total") as u64,
        report.duplicates
    );
    assert_eq!(
        metric_sum(&body, "iocd_events_total") as u64,
        report.accepted_expected
    );
    for r in Reason::ALL {
        let label = format!("reason=\"{}\"", r.as_str());
        let n: f64 = body
            .lines()
            .filter(|l| l.starts_with("iocd_events_rejected_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        assert_eq!(n as u64, report.malformed_by_reason[r.index()], "{r:?}");
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
}

//! The cost of a tick with nothing arriving, as the state grows tenfold (issue 11.1).
//!
//! `cargo bench --bench tick` (about 3 minutes, most of it building the states). Figures
//! and the machine are in `docs/performance.md`.
//!
//! Two states are built by applying contract events: a *province* (100,000 open dossiers,
//! 10,000 active meetings with 30,000 endpoints, 5,000 SOC systems) and ten times that
//! (1,000,000 dossiers, 100,000 meetings, 50,000 systems). Dossiers come from 200
//! agencies, received over the last 30 days with deadlines spread from 20 days ago to 40
//! days ahead and their latest events spread over the last 4 days, so that every tick some
//! cross "due soon", "overdue" or "stalled"; systems were last heard over the last 20
//! minutes, so that some go silent as time passes. A tick is what the pipeline does every
//! 500 ms when no event arrives: `State::advance` to the new instant, then
//! `Deriver::derive` (view, alert rules, snapshot). Each measured iteration moves the clock
//! 500 ms on. Idle CPU is the tick's time over 500 ms.
//!
//! The `quiet_` variants hold the same numbers of items with nothing about to cross a
//! threshold (deadlines a year ahead, latest events within the day, meetings and silences
//! already past theirs): what a tick costs when nothing changed, which must not grow with
//! the state.
//!
//! For comparison, `recount` is `State::view`, which counts every figure from scratch
//! (what every tick did before).

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]
#![allow(clippy::too_many_lines)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use iocd::config::AlertSettings;
use iocd::decode::{DecodeLimits, Source, decode};
use iocd::derive::Deriver;
use iocd::derive::alerts::Engine;
use iocd::derive::snapshot::Snapshot;
use iocd::state::evict::Caps;
use iocd::state::{Input, Params, State};
use iocd::time::{Calendar, Ts};
use iocd_testkit as tk;

/// 2026-12-01T09:00:00+07:00: the instant the states are built at.
const T0: i64 = 1_796_090_400;
const DAY: i64 = 86_400;

fn rfc(secs: i64) -> String {
    Ts::from_secs(secs).to_rfc3339(&jiff::tz::TimeZone::UTC)
}

/// A state of `scale` provinces (see the module comment), with memory caps above it (the
/// default caps are sized for ten times a real province, which holds far fewer meetings
/// and systems than this stress state).
fn build(scale: usize, quiet: bool) -> State {
    let params = Params {
        caps: Caps {
            dossiers: 2_000_000,
            meetings: 200_000,
            endpoints: 400_000,
            systems: 100_000,
            incidents: 100_000,
        },
        ..Params::default()
    };
    let mut state = State::new(params, Ts::from_secs(T0 - 40 * DAY));
    let limits = DecodeLimits::default();
    let decode_now = Ts::from_secs(T0 + DAY);
    let mut apply = |p: &tk::Payload| {
        let source = match p.source() {
            tk::ONESTOP => Source::Onestop,
            tk::VC => Source::Vc,
            _ => Source::Soc,
        };
        let bytes = p.bytes();
        let ev = decode(source, &bytes, decode_now, &limits).expect("valid payload");
        state.apply(&Input::Event(ev), decode_now);
    };
    // A spread that covers a range evenly whatever n is: i × prime mod range.
    let spread = |i: usize, range: i64| (i as i64 * 7919) % range;
    for i in 0..100_000 * scale {
        let agency = format!("000.00.{:02}.H42", i % 200);
        let received = T0 - 30 * DAY + spread(i, 30 * DAY);
        let due = if quiet {
            // A year ahead: nothing enters "due soon" during the measurement.
            T0 + 365 * DAY + spread(i * 31, 60 * DAY)
        } else {
            T0 - 20 * DAY + spread(i * 31, 60 * DAY)
        };
        let id = format!("{agency}-{i:08}");
        apply(
            &tk::received(&id)
                .id(format!("r{i}"))
                .agency(&agency)
                .at(rfc(received))
                .due(rfc(due)),
        );
        // The latest event: over the last 4 days (stalled after 2).
        let last = if quiet {
            // Within the last day: nothing stalls during the measurement.
            T0 - DAY + spread(i * 17, DAY - 3600)
        } else {
            T0 - 4 * DAY + spread(i * 17, 4 * DAY)
        }
        .max(received);
        apply(
            &tk::transferred(&id, &agency)
                .id(format!("u{i}"))
                .at(rfc(last)),
        );
    }
    for m in 0..10_000 * scale {
        let meeting = format!("M{m}");
        let eps: Vec<String> = (0..3).map(|k| format!("E{}", 3 * m + k)).collect();
        // Quiet: all past the "missing" threshold already.
        let started = if quiet {
            T0 - 3600 + spread(m, 3000)
        } else {
            T0 - 3600 + spread(m, 3600)
        };
        apply(
            &tk::meeting_started(&meeting)
                .id(format!("m{m}"))
                .at(rfc(started))
                .set("expected_endpoints", eps.clone()),
        );
        for (k, ep) in eps.iter().take(2).enumerate() {
            apply(
                &tk::endpoint_joined(&meeting, ep)
                    .id(format!("j{m}-{k}"))
                    .at(rfc(started + 10)),
            );
        }
    }
    for s in 0..5_000 * scale {
        apply(
            &tk::system_heartbeat(&format!("S{s}"))
                .id(format!("h{s}"))
                // Quiet: all silent already.
                .at(rfc(if quiet {
                    T0 - 3600 + spread(s, 1200)
                } else {
                    T0 - 1200 + spread(s, 1200)
                })),
        );
    }
    state
}

fn benches(c: &mut Criterion) {
    // Without `--bench` (`cargo test --bench '*'`), criterion runs each benchmark once: a
    // smoke test on states 100 times smaller.
    let full = std::env::args().any(|a| a == "--bench");
    let (small, large) = if full { (1, 10) } else { (0, 0) };
    // IOCD_TICK_ONLY=province_x10 builds and measures only that state (for profiling).
    let only = std::env::var("IOCD_TICK_ONLY").ok();
    for (name, scale, quiet) in [
        ("province", small, false),
        ("province_x10", large, false),
        ("quiet_province", small, true),
        ("quiet_province_x10", large, true),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut state = if scale == 0 {
            smoke()
        } else {
            build(scale, quiet)
        };
        let mut now = Ts::from_secs(T0);
        // The first advance classifies every dossier (as after a start from a checkpoint).
        let began = std::time::Instant::now();
        state.advance(now);
        eprintln!(
            "{name}: first advance (classifies every dossier) {:?}",
            began.elapsed()
        );
        let engine = Engine::new(AlertSettings::default(), Calendar::default());
        let mut deriver = Deriver::new(engine);
        let mut previous = Snapshot::default();
        // The first derive computes everything: not what an idle tick costs.
        let first = deriver.derive(&state, now, false, &previous);
        if let Some(s) = first.snapshot {
            previous = s;
        }
        eprintln!(
            "{name}: {} dossiers, {} meetings, {} endpoints, {} systems; {} overdue, {} stalled, {} alerts firing",
            state.dossiers.len(),
            state.vc.meetings.len(),
            state.vc.endpoints.len(),
            state.soc.systems.len(),
            first.view.onestop.totals.overdue,
            first.view.onestop.totals.stalled,
            first.view.alerts_firing.iter().map(|a| a.2).sum::<u64>(),
        );
        let mut g = c.benchmark_group(name);
        g.sample_size(30);
        g.warm_up_time(Duration::from_secs(2));
        g.measurement_time(Duration::from_secs(10));
        g.bench_function("idle_tick", |b| {
            b.iter(|| {
                now = Ts(now.0 + 500_000_000);
                state.advance(now);
                let d = deriver.derive(&state, now, false, &previous);
                if let Some(s) = d.snapshot {
                    previous = s;
                }
                black_box(d.transitions.len())
            });
        });
        g.sample_size(10);
        g.bench_function("recount", |b| b.iter(|| black_box(state.view(now))));
        g.finish();
    }
}

/// A state 100 times smaller than a province, for the smoke test.
fn smoke() -> State {
    let mut state = State::new(Params::default(), Ts::from_secs(T0 - 40 * DAY));
    let limits = DecodeLimits::default();
    for i in 0..1000 {
        let p = tk::received(&format!("D{i}"))
            .id(format!("r{i}"))
            .at(rfc(T0 - DAY))
            .due(rfc(T0 - DAY + (i64::from(i) * 97) % (3 * DAY)));
        let bytes = p.bytes();
        let ev = decode(Source::Onestop, &bytes, Ts::from_secs(T0 + DAY), &limits)
            .expect("valid payload");
        state.apply(&Input::Event(ev), Ts::from_secs(T0));
    }
    state
}

criterion_group!(tick, benches);
criterion_main!(tick);

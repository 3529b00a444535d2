//! Resident memory per open dossier: `cargo bench --bench memory`.
//!
//! Applies 1,000,000 `received` events for distinct dossiers (ids of 25 characters like
//! `000.00.19.H42-261124-0001`, UUID event ids, 200 agencies, 2,000 procedures, a deadline on
//! 95 % of them, 88 % online), then one `transferred` for each, so the typical open dossier
//! remembers two distinct event ids. Resident memory (`VmRSS` of `/proc/self/status`) is read
//! before and after; the payloads are generated one at a time into a reused buffer and
//! decoded without allocating, so the delta is the state alone.
//!
//! Each configuration runs in a child process of its own (this binary re-executed), so
//! that the allocator state of one run cannot flatter the next:
//! - `default`: default parameters, the dedupe memory holding its default 1,000,000 ids;
//! - `no_dedupe`: the same with `dedupe_max_ids = 1`, i.e. the dossiers, interners,
//!   counters and windows alone. The difference between the two is the dedupe memory.
//!
//! The allocator is glibc's default. Figures and analysis are in `docs/performance.md`.
//! Run without `--bench` (as `cargo test --bench '*'` in `.ci/run` does), it only prints a skip
//! line.

// The numeric casts allowed in Cargo.toml ([workspace.lints], with the reason), repeated
// here so that `cargo clippy -- -W clippy::pedantic` on the command line keeps them allowed.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]
// A test or a bench reads as one script, top to bottom: no line cap.
#![allow(clippy::too_many_lines)]

use std::fmt::Write as _;
use std::process::Command;

use iocd::decode::{DecodeLimits, Source, decode};
use iocd::state::{Input, Params, State};
use iocd::time::Ts;
use iocd_testkit::corpus::{
    Fraction, LOCAL_OFFSET, Rng, agency_code, civil_from_days, procedure_code, write_local_time,
};

const DOSSIERS: usize = 1_000_000;
const MODE_VAR: &str = "IOCD_MEMORY_BENCH_MODE";
/// 2026-11-24T00:00:00+07:00 in Unix seconds.
const DAY: i64 = 1_795_453_200;

/// `VmRSS` of this process, in bytes.
fn rss_bytes() -> u64 {
    let status =
        std::fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS in kB")
}

/// Writes `secs` (Unix) as `2026-11-24T08:15:02+07:00`.
fn write_ts(out: &mut String, secs: i64) {
    write_local_time(out, secs * 1000, Fraction::None);
}

struct Gen {
    rng: Rng,
    seq: u64,
    agencies: Vec<String>,
    procedures: Vec<String>,
    buf: String,
}

impl Gen {
    fn new() -> Self {
        Self {
            rng: Rng(0x3E30_2026),
            seq: 0,
            agencies: (0..200).map(agency_code).collect(),
            procedures: (0..2000).map(procedure_code).collect(),
            buf: String::with_capacity(512),
        }
    }

    fn envelope(&mut self, ty: &str, at: i64) {
        self.seq += 1;
        self.buf.clear();
        self.rng
            .write_envelope(&mut self.buf, self.seq, ty, at * 1000, Fraction::None);
    }

    /// Dossier `n`: agency `n % 200`, filed `n / 20,000` days before the reference day,
    /// 100 a day per agency, so the id `{agency}-{yymmdd}-{number}` is unique.
    fn dossier_id(&self, n: usize) -> String {
        let day = (DAY + LOCAL_OFFSET) / 86_400 - (n / 20_000) as i64;
        let (y, m, d) = civil_from_days(day);
        format!(
            "{}-{:02}{m:02}{d:02}-{:04}",
            self.agencies[n % 200],
            y % 100,
            n / 200 % 100
        )
    }

    fn received(&mut self, n: usize, at: i64) -> &[u8] {
        let id = self.dossier_id(n);
        self.envelope("received", at);
        let agency = &self.agencies[n % 200];
        let procedure = &self.procedures[n * 7919 % 2000];
        let channel = match n % 50 {
            0..44 => "online",
            44..49 => "direct",
            _ => "postal",
        };
        let _ = write!(
            self.buf,
            r#","dossier_id":"{id}","agency":"{agency}","agency_level":"commune","procedure":"{procedure}","sector":"Hộ tịch","channel":"{channel}","due_at":"#
        );
        if n.is_multiple_of(20) {
            self.buf.push_str("null");
        } else {
            self.buf.push('"');
            write_ts(&mut self.buf, at + 86_400 * (3 + (n % 15) as i64));
            self.buf.push('"');
        }
        self.buf.push('}');
        self.buf.as_bytes()
    }

    fn transferred(&mut self, n: usize, at: i64) -> &[u8] {
        let id = self.dossier_id(n);
        self.envelope("transferred", at);
        let _ = write!(self.buf, r#","dossier_id":"{id}"}}"#);
        self.buf.as_bytes()
    }
}

/// Builds the state in this process and prints one machine-readable line.
fn child(mode: &str) {
    let mut params = Params::default();
    if mode == "no_dedupe" {
        params.dedupe_max_ids = 1;
    }
    let limits = DecodeLimits::default();
    let now = Ts::from_secs(DAY + 86_400);
    let mut g = Gen::new();
    let before = rss_bytes();
    let mut state = State::new(params, Ts::from_secs(DAY));
    for n in 0..DOSSIERS {
        // Received over the last 50 days, in office hours.
        let at = DAY - (n / 20_000) as i64 * 86_400 + 8 * 3600 + (n % 30_000) as i64;
        let ev = decode(Source::Onestop, g.received(n, at), now, &limits).expect("valid received");
        state.apply(&Input::Event(ev), now);
    }
    for n in 0..DOSSIERS {
        let at = DAY - (n / 20_000) as i64 * 86_400 + 15 * 3600 + (n % 30_000) as i64;
        let ev =
            decode(Source::Onestop, g.transferred(n, at), now, &limits).expect("valid transferred");
        state.apply(&Input::Event(ev), now);
    }
    // As the pipeline does every tick: the figures that depend on "now" are tracked (timers,
    // and the overdue and stalled dossiers listed per agency), which costs memory too.
    state.advance(now);
    let after = rss_bytes();
    let open = state.view(now).onestop.totals.open.iter().sum::<u64>();
    let tracked = state
        .dossiers
        .tracker()
        .gauges()
        .iter()
        .fold((0, 0), |(o, s), g| (o + g.overdue, s + g.stalled));
    eprintln!(
        "{mode}: tracked overdue {}, stalled {}",
        tracked.0, tracked.1
    );
    assert_eq!(open, DOSSIERS as u64, "every dossier is open");
    println!(
        "{mode} rss_before={before} rss_after={after} open={open} dedupe_ids={} dossier_struct={}",
        state.dedupe_len(),
        std::mem::size_of::<iocd::state::dossiers::Dossier>()
    );
    std::hint::black_box(&state);
}

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("`{key}` in `{line}`"))
}

fn run(mode: &str) -> (u64, u64, String) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env(MODE_VAR, mode)
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "child {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let delta = field(&line, "rss_after") - field(&line, "rss_before");
    (delta, field(&line, "open"), line)
}

const MB: f64 = 1_000_000.0;

fn main() {
    if let Ok(mode) = std::env::var(MODE_VAR) {
        child(&mode);
        return;
    }
    // `cargo bench` passes `--bench`; without it (`cargo test --bench '*'`), only say so.
    if !std::env::args().any(|a| a == "--bench") {
        println!("memory bench: skipped (run with cargo bench --bench memory)");
        return;
    }
    let (all, open, line_all) = run("default");
    let (dossiers_only, _, line_no_dedupe) = run("no_dedupe");
    println!("{line_all}");
    println!("{line_no_dedupe}");
    let per = |bytes: u64| bytes as f64 / open as f64;
    let dedupe = all.saturating_sub(dossiers_only);
    println!(
        "dossiers, interners, counters, windows (dedupe_max_ids = 1): RSS delta {:.1} MB, {:.0} bytes/dossier",
        dossiers_only as f64 / MB,
        per(dossiers_only)
    );
    println!(
        "dedupe memory (1,000,000 ids, the default cap): {:.1} MB, {:.0} bytes/id",
        dedupe as f64 / MB,
        dedupe as f64 / 1_000_000.0
    );
    println!(
        "open dossiers: {open}, RSS delta: {:.1} MB, {:.0} bytes/dossier (target 300), of which dedupe {:.0}",
        all as f64 / MB,
        per(all),
        per(dedupe)
    );
}

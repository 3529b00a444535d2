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
//! Run without `--bench` (as `cargo test --all-targets` does), it only prints a skip line.

use std::fmt::Write as _;
use std::process::Command;

use iocd::decode::{DecodeLimits, Source, decode};
use iocd::state::{Input, Params, State};
use iocd::time::Ts;

const DOSSIERS: usize = 1_000_000;
const MODE_VAR: &str = "IOCD_MEMORY_BENCH_MODE";
/// 2026-11-24T00:00:00+07:00 in Unix seconds.
const DAY: i64 = 1_795_453_200;
const LOCAL_OFFSET: i64 = 7 * 3600;

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

/// SplitMix64, for deterministic UUID-shaped event ids.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Writes `secs` (Unix) as `2026-11-24T08:15:02+07:00`.
fn write_ts(out: &mut String, secs: i64) {
    let local = secs + LOCAL_OFFSET;
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}+07:00",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
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
            agencies: (0..200)
                .map(|i| {
                    if i < 20 {
                        format!("000.00.{:02}.H42", i + 1)
                    } else {
                        format!("000.{:02}.{:02}.H42", 20 + i / 10, i % 10 + 21)
                    }
                })
                .collect(),
            procedures: (0..2000)
                .map(|i| format!("{}.{:06}", 1 + i % 2, 1000 + i * 7))
                .collect(),
            buf: String::with_capacity(512),
        }
    }

    fn envelope(&mut self, ty: &str, at: i64) {
        self.seq += 1;
        let r = self.rng.next();
        let n = self.seq;
        self.buf.clear();
        let _ = write!(
            self.buf,
            r#"{{"event_id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","type":"{ty}","occurred_at":""#,
            (r >> 32) as u32,
            (r >> 16) as u16,
            r & 0xfff,
            0x8000 | (n >> 48) as u16 & 0x3fff,
            n & 0xffff_ffff_ffff
        );
        write_ts(&mut self.buf, at);
        self.buf.push('"');
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
        if n % 20 == 0 {
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
    let after = rss_bytes();
    let open = state.view(now).onestop.totals.open.iter().sum::<u64>();
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
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`), only say so.
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

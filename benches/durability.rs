//! Durability costs: `cargo bench --bench durability` (about 1 to 2 minutes, release).
//!
//! All in-process on the library API, no broker, in temporary directories (under `TMPDIR`,
//! so on the same disk as `/tmp` unless told otherwise):
//!
//! 1. **Ingest throughput, log off**: `source_of` + `decode` + `State::apply` of a realistic
//!    mixed stream (one-stop `received` / `transferred` / `resolved`, VC `endpoint_stats`,
//!    SOC `alert`; every event id unique), in batches of 512 as `pipeline.rs` takes them off
//!    the queue.
//! 2. **Ingest throughput, log on**: the same plus `Journal::message` for each message and
//!    `Journal::commit` per batch of 512, as the pipeline does (the log thread writes and
//!    fsyncs meanwhile, grouping what waits; the time runs until everything is durable);
//!    then batches of 64, and of 1 waiting for each (one fsync per message) to show what
//!    group commit buys.
//! 3. **Disk bytes per event**: the log segments' size over the events logged; the
//!    checkpoint's size over the open dossiers it holds.
//! 4. **Recovery of 1,000,000 open dossiers**: 1 M `received` events for distinct dossiers
//!    are logged and applied through the journal with a checkpoint after the first 500,000.
//!    A child process (this binary re-executed, so its peak RSS is its own) then times
//!    `Journal::open`: load the 500 k checkpoint and replay 500 k records (runs of 512, as
//!    the pipeline takes them live). The parent then writes a checkpoint of the whole 1 M
//!    state and a second child times `Journal::open` again: load the checkpoint, replay
//!    nothing. Both children also time loading the checkpoint alone, so replay time =
//!    open − load.
//!
//! Every file was just written, so the children read from the page cache: a cold start also
//! pays reading the checkpoint and log from the disk (sizes printed).
//!
//! Run without `--bench` (as `cargo test --bench '*'` in `.ci/run` does), it only prints a skip
//! line.
//! Figures and method are in `docs/durability.md`.

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
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iocd::decode::DecodeLimits;
use iocd::ingest::RawMessage;
use iocd::state::{Params, Processed, State};
use iocd::store;
use iocd::store::{Checkpoint, Journal};
use iocd::time::Ts;
use iocd_testkit::corpus::{
    self, Fraction, LOCAL_OFFSET, Rng, agency_code, agency_level, civil_from_days, procedure_code,
    write_local_time,
};

const PREFIX: &str = "ioc/v1";
/// Messages of the mixed stream.
const MIXED: usize = 400_000;
/// Runs of each throughput measurement (the median is reported).
const RUNS: usize = 5;
/// Stop a small-batch run after this long (fsync per message is slow).
const SMALL_BATCH_CAP: Duration = Duration::from_secs(4);
/// Open dossiers for the recovery measurement.
const DOSSIERS: usize = 1_000_000;
/// 2026-11-24T08:00:00+07:00 in Unix seconds.
const T0: i64 = 1_795_453_200 + 8 * 3600;
/// Set in the child process: the data directory to recover.
const CHILD_VAR: &str = "IOCD_DURABILITY_BENCH_RECOVER";

// ---------------------------------------------------------------------------------------
// Deterministic generation
// ---------------------------------------------------------------------------------------

/// Writes Unix milliseconds as `2026-11-24T08:15:02.123+07:00`.
fn write_ts(out: &mut String, ms: i64) {
    write_local_time(out, ms, Fraction::Millis);
}

/// The ten most common sectors (the corpus the figures of docs/durability.md were measured on).
const SECTORS: &[&str] = corpus::SECTORS.split_at(10).0;

struct Agency {
    code: String,
    level: &'static str,
    /// The topic level the one-stop system publishes under.
    topic: String,
}

struct Gen {
    rng: Rng,
    seq: u64,
    agencies: Vec<Agency>,
    procedures: Vec<String>,
    buf: String,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let agencies = (0..200)
            .map(|i| Agency {
                code: agency_code(i),
                level: agency_level(i),
                // Provincial departments publish under a short topic level of their own.
                topic: if i < 20 {
                    format!("H42.{:02}", i + 1)
                } else {
                    agency_code(i)
                },
            })
            .collect();
        Self {
            rng: Rng(seed),
            seq: 0,
            agencies,
            procedures: (0..2000).map(procedure_code).collect(),
            buf: String::with_capacity(512),
        }
    }

    /// Starts a payload in `buf`: the envelope with a fresh UUID-shaped event id.
    fn envelope(&mut self, ty: &str, at_ms: i64) {
        self.seq += 1;
        self.buf.clear();
        self.rng
            .write_envelope(&mut self.buf, self.seq, ty, at_ms, Fraction::Millis);
    }

    /// The message in `buf`, closed, on `topic`, received 20 to 500 ms after `at_ms`.
    fn finish(&mut self, topic: String, at_ms: i64) -> RawMessage {
        self.buf.push('}');
        let delay = 20 + self.rng.below(480) as i64;
        RawMessage {
            topic,
            payload: Bytes::copy_from_slice(self.buf.as_bytes()),
            received_at: Ts((at_ms + delay) * 1_000_000),
            ack: None,
        }
    }

    /// Dossier `n`'s id: agency `n % 200`, filed one of 30 days, unique number.
    fn dossier_id(&self, n: usize) -> String {
        let agency = &self.agencies[n % 200].code;
        let day = (n / 200) % 30;
        let filed_ms = (T0 - day as i64 * 86_400) * 1000;
        let (y, m, d) = civil_from_days((filed_ms / 1000 + LOCAL_OFFSET).div_euclid(86_400));
        format!("{agency}-{:02}{m:02}{d:02}-{:04}", y % 100, n / 6000)
    }

    /// A `received` for dossier `n` at `at_ms`: the full intake, a deadline on 95 %.
    fn received(&mut self, n: usize, at_ms: i64) -> RawMessage {
        let id = self.dossier_id(n);
        let procedure = (n * 7919) % 2000;
        let channel = ["online", "online", "online", "direct", "postal"][n % 5];
        self.envelope("received", at_ms);
        let a = &self.agencies[n % 200];
        let _ = write!(
            self.buf,
            r#","dossier_id":"{id}","agency":"{}","agency_level":"{}","procedure":"{}","sector":"{}","channel":"{channel}","due_at":"#,
            a.code,
            a.level,
            self.procedures[procedure],
            SECTORS[procedure % SECTORS.len()],
        );
        let topic = format!("{PREFIX}/onestop/{}/dossier", a.topic);
        if self.rng.below(100) < 5 {
            self.buf.push_str("null");
        } else {
            let day =
                (at_ms / 1000 + LOCAL_OFFSET).div_euclid(86_400) + 3 + self.rng.below(18) as i64;
            self.buf.push('"');
            write_ts(
                &mut self.buf,
                (day * 86_400 + 17 * 3600 - LOCAL_OFFSET) * 1000,
            );
            self.buf.push('"');
        }
        self.finish(topic, at_ms)
    }

    /// A one-stop event without intake fields (`transferred`, `resolved`) for dossier `n`.
    fn dossier_step(&mut self, n: usize, ty: &str, extra: &str, at_ms: i64) -> RawMessage {
        let id = self.dossier_id(n);
        self.envelope(ty, at_ms);
        let _ = write!(self.buf, r#","dossier_id":"{id}"{extra}"#);
        let topic = format!("{PREFIX}/onestop/{}/dossier", self.agencies[n % 200].topic);
        self.finish(topic, at_ms)
    }

    fn meeting_started(&mut self, m: usize, endpoints: &[String], at_ms: i64) -> RawMessage {
        self.envelope("meeting_started", at_ms);
        let list = endpoints
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect::<Vec<_>>()
            .join(",");
        let _ = write!(
            self.buf,
            r#","meeting_id":"M-2026-{m:04}","title":"Hội nghị trực tuyến số {m}","level":"province","expected_endpoints":[{list}]"#
        );
        self.finish(format!("{PREFIX}/vc/meetings/M-2026-{m:04}"), at_ms)
    }

    fn endpoint_joined(&mut self, m: usize, ep: &str, at_ms: i64) -> RawMessage {
        self.envelope("endpoint_joined", at_ms);
        let _ = write!(
            self.buf,
            r#","meeting_id":"M-2026-{m:04}","endpoint_id":"{ep}""#
        );
        self.finish(format!("{PREFIX}/vc/endpoints/{ep}"), at_ms)
    }

    fn endpoint_stats(&mut self, m: usize, ep: &str, at_ms: i64) -> RawMessage {
        self.envelope("endpoint_stats", at_ms);
        let loss = self.rng.below(300) as f64 / 100.0;
        let jitter = self.rng.below(400) as f64 / 10.0;
        let rtt = 20.0 + self.rng.below(3000) as f64 / 10.0;
        let bitrate = 512 + self.rng.below(3584);
        let _ = write!(
            self.buf,
            r#","meeting_id":"M-2026-{m:04}","endpoint_id":"{ep}","packet_loss_pct":{loss},"jitter_ms":{jitter},"rtt_ms":{rtt},"bitrate_kbps":{bitrate}"#
        );
        self.finish(format!("{PREFIX}/vc/endpoints/{ep}"), at_ms)
    }

    fn soc_alert(&mut self, at_ms: i64) -> RawMessage {
        let system = format!("HT-{:03}", 1 + self.rng.below(75));
        let severity = ["low", "low", "low", "medium", "medium", "high", "critical"]
            [self.rng.below(7) as usize];
        let category = [
            "malware",
            "intrusion",
            "ddos",
            "phishing",
            "recon",
            "policy",
        ][self.rng.below(6) as usize];
        let alert = self.rng.below(100_000_000);
        let (a, b) = (self.rng.below(255), self.rng.below(255));
        self.envelope("alert", at_ms);
        let _ = write!(
            self.buf,
            r#","alert_id":"SIEM-{alert}","system_id":"{system}","severity":"{severity}","category":"{category}","src_ip":"203.0.{a}.{b}","dst_ip":"10.20.1.{a}","signature":"ET SCAN Suspicious inbound to port {b}""#
        );
        self.finish(format!("{PREFIX}/soc/alerts/{system}"), at_ms)
    }
}

/// The mixed stream, one message every 60 ms: 20 meetings of 30 endpoints started first,
/// then ~40 % new dossiers, ~20 % transfers and ~18 % resolutions of open ones (one-stop
/// ~78 %), ~16 % VC `endpoint_stats`, ~6 % SOC alerts.
#[allow(clippy::many_single_char_names)] // g(enerator), t(ime), m(eeting), d(ossier), k: a recipe
fn mixed(n: usize) -> Vec<RawMessage> {
    let mut g = Gen::new(0xD0_2026);
    let mut out = Vec::with_capacity(n);
    let mut t = T0 * 1000;
    let meetings: Vec<Vec<String>> = (0..20)
        .map(|m| {
            (0..30)
                .map(|k| format!("EP-H42-{:03}", (m * 7 + k) % 200))
                .collect()
        })
        .collect();
    for (m, eps) in meetings.iter().enumerate() {
        out.push(g.meeting_started(m, eps, t));
        for ep in eps {
            out.push(g.endpoint_joined(m, ep, t + 10));
        }
        t += 60;
    }
    let mut open: Vec<usize> = Vec::new();
    let mut next_dossier = 0;
    while out.len() < n {
        t += 60;
        let roll = g.rng.below(100);
        let msg = match roll {
            0..40 => {
                open.push(next_dossier);
                next_dossier += 1;
                g.received(next_dossier - 1, t)
            }
            40..78 if !open.is_empty() => {
                let k = g.rng.below(open.len() as u64) as usize;
                let d = open[k];
                if roll < 60 {
                    let extra = if g.rng.below(100) < 40 {
                        format!(r#","agency":"{}""#, g.agencies[(d + 1) % 200].code)
                    } else {
                        String::new()
                    };
                    g.dossier_step(d, "transferred", &extra, t)
                } else {
                    open.swap_remove(k);
                    let mut extra = String::from(r#","outcome":"approved","due_at":""#);
                    let day = (t / 1000 + LOCAL_OFFSET).div_euclid(86_400) + 2;
                    write_ts(&mut extra, (day * 86_400 + 17 * 3600 - LOCAL_OFFSET) * 1000);
                    extra.push('"');
                    g.dossier_step(d, "resolved", &extra, t)
                }
            }
            40..94 => {
                let m = g.rng.below(20) as usize;
                let ep = meetings[m][g.rng.below(30) as usize].clone();
                g.endpoint_stats(m, &ep, t)
            }
            _ => g.soc_alert(t),
        };
        out.push(msg);
    }
    out
}

// ---------------------------------------------------------------------------------------
// 5: a checkpoint under load
// ---------------------------------------------------------------------------------------

/// Events per second offered while a checkpoint is written.
const LOAD_RATE: u64 = 20_000;
/// Seconds of events generated for it (the run ends earlier when both checkpoints are done).
const LOAD_SECS: u64 = 14;
/// Quiet seconds before the first checkpoint, and between the two.
const LOAD_QUIET: Duration = Duration::from_secs(2);

/// Publish → applied latencies (µs) of the events published in each part of the run.
struct UnderLoad {
    quiet: Vec<u64>,
    background: Vec<u64>,
    synchronous: Vec<u64>,
    /// How long `start_checkpoint` held the pipeline (freezing the state).
    pause: Duration,
    /// How long the background checkpoint took to write, and the synchronous one.
    background_took: Duration,
    synchronous_took: Duration,
    /// Resident memory before the background checkpoint and at its end.
    rss: (u64, u64),
    dossiers: usize,
}

/// Offers `LOAD_RATE` events/s from a thread of their own (half `received` of new dossiers,
/// half `transferred` of dossiers spread over the whole store, so that the writes land in
/// every chunk of the copy-on-write store) to a loop that does the pipeline's work (log,
/// apply, commit per batch of up to 512); after `LOAD_QUIET` it starts a checkpoint on the
/// checkpoint thread as the daemon does, then, `LOAD_QUIET` after that one is written, one
/// on the loop itself (as before issue 11), and measures each event's delay from publish
/// to applied.
fn checkpoint_under_load(journal: &mut Journal, state: &mut State, g: &mut Gen) -> UnderLoad {
    let limits = DecodeLimits::default();
    let n = (LOAD_RATE * LOAD_SECS) as usize;
    let gap = Duration::from_nanos(1_000_000_000 / LOAD_RATE);
    let t0 = (T0 - 2 * 3600) * 1000;
    let msgs: Vec<RawMessage> = (0..n)
        .map(|k| {
            let at = t0 + k as i64 / 20;
            if k % 2 == 0 {
                g.received(DOSSIERS + k, at)
            } else {
                let d = g.rng.below(DOSSIERS as u64) as usize;
                g.dossier_step(d, "transferred", "", at)
            }
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, RawMessage)>();
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        for (k, msg) in msgs.into_iter().enumerate() {
            let due = start + gap * k as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                #[allow(clippy::disallowed_methods, reason = "a thread of its own, no runtime")]
                std::thread::sleep(wait);
            }
            if tx.send((Instant::now(), msg)).is_err() {
                return;
            }
        }
    });
    let mut lat: Vec<(Duration, u64)> = Vec::with_capacity(n);
    let mut background: Option<(Duration, Option<Duration>)> = None;
    let mut synchronous: Option<(Duration, Duration)> = None;
    let mut pause = Duration::ZERO;
    let mut rss = (0, 0);
    let mut batch = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(512);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        batch.extend(rx.try_iter().take(511));
        // As the pipeline: the batch logged, then applied a group at a time; each message's
        // latency is taken once the whole batch is applied (an upper bound).
        let (sent, msgs): (Vec<Instant>, Vec<RawMessage>) = batch.drain(..).unzip();
        for msg in &msgs {
            journal.message(msg);
        }
        assert_eq!(handle(state, &msgs, &limits, &mut out), 0, "valid payloads");
        for sent in sent {
            lat.push((sent - start, sent.elapsed().as_micros() as u64));
        }
        journal.commit();
        let now = start.elapsed();
        match (background, synchronous) {
            (None, _) if now >= LOAD_QUIET => {
                rss.0 = status_bytes("VmRSS:");
                let began = Instant::now();
                assert!(
                    journal.start_checkpoint(state, Vec::new()),
                    "a checkpoint starts"
                );
                pause = began.elapsed();
                background = Some((now, None));
            }
            (Some((from, None)), _) if journal.poll_checkpoint() => {
                rss.1 = status_bytes("VmRSS:");
                background = Some((from, Some(now)));
            }
            (Some((_, Some(done))), None) if now >= done + LOAD_QUIET => {
                journal.checkpoint(state, Vec::new());
                synchronous = Some((now, start.elapsed()));
            }
            (Some(_), Some((_, done))) if now >= done + LOAD_QUIET => break,
            _ => {}
        }
    }
    drop(rx);
    producer.join().expect("the producer ends");
    let (bg_from, bg_to) = background.expect("the background checkpoint ran");
    let bg_to = bg_to.expect("the background checkpoint was written within the run");
    let (sync_from, sync_to) = synchronous.expect("the synchronous checkpoint ran within the run");
    let within = |from: Duration, to: Duration| -> Vec<u64> {
        lat.iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, l)| *l)
            .collect()
    };
    UnderLoad {
        quiet: within(Duration::ZERO, bg_from),
        background: within(bg_from, bg_to),
        // The events published while the loop was held, and those queued behind them.
        synchronous: within(sync_from, sync_to + sync_to.saturating_sub(sync_from)),
        pause,
        background_took: bg_to.saturating_sub(bg_from),
        synchronous_took: sync_to.saturating_sub(sync_from),
        rss,
        dossiers: state.dossiers.len(),
    }
}

impl UnderLoad {
    fn print(&self) {
        println!();
        println!(
            "checkpoint of {} dossiers while {LOAD_RATE} events/s arrive (log on, commit per batch): \
             freezing the state held the pipeline {:.2} ms; written in {:.2} s on its own thread \
             (RSS {:.0} -> {:.0} MiB), {:.2} s on the pipeline",
            self.dossiers,
            self.pause.as_secs_f64() * 1e3,
            self.background_took.as_secs_f64(),
            mib(self.rss.0),
            mib(self.rss.1),
            self.synchronous_took.as_secs_f64(),
        );
        println!(
            "{:<52} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "publish -> applied (ms)", "events", "p50", "p99", "p99.9", "max"
        );
        for (name, xs) in [
            ("no checkpoint", &self.quiet),
            (
                "checkpoint on its own thread (the daemon)",
                &self.background,
            ),
            (
                "checkpoint on the pipeline (before issue 11)",
                &self.synchronous,
            ),
        ] {
            let mut xs = xs.clone();
            xs.sort_unstable();
            let q = |p: f64| {
                xs.get(((xs.len() as f64 * p) as usize).min(xs.len().saturating_sub(1)))
                    .map_or(f64::NAN, |&v| v as f64 / 1e3)
            };
            println!(
                "{name:<52} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                xs.len(),
                q(0.5),
                q(0.99),
                q(0.999),
                q(1.0)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The pipeline's work, as in `pipeline.rs`
// ---------------------------------------------------------------------------------------

/// `State::process_all` of a batch, as `Pipeline::contract_messages` calls it (without the
/// dead letters and the reject log, which nothing takes here); returns how many were
/// rejected.
fn handle(
    state: &mut State,
    msgs: &[RawMessage],
    limits: &DecodeLimits,
    out: &mut Vec<Processed>,
) -> usize {
    state.process_all(msgs.iter().map(Into::into), PREFIX, limits, out);
    out.drain(..)
        .filter(|p| !matches!(p, Processed::Applied(_)))
        .count()
}

/// Ingests `msgs` in batches of `batch` (one commit per batch when `journal` is set), up
/// to `cap`; returns the messages ingested and the time taken.
fn ingest(
    msgs: &[RawMessage],
    mut journal: Option<&mut Journal>,
    batch: usize,
    cap: Option<Duration>,
) -> (usize, Duration) {
    let limits = DecodeLimits::default();
    let mut state = State::new(params(), msgs[0].received_at);
    let mut done = 0;
    let mut rejected = 0;
    let started = Instant::now();
    let mut out = Vec::with_capacity(batch);
    for chunk in msgs.chunks(batch) {
        if let Some(j) = journal.as_deref_mut() {
            for msg in chunk {
                j.message(msg);
            }
        }
        rejected += handle(&mut state, chunk, &limits, &mut out);
        if let Some(j) = journal.as_deref_mut() {
            // Batches go to the log thread without waiting; one message at a time waits for
            // each to be durable (an fsync per message).
            if batch == 1 {
                assert!(j.sync(), "durable");
            } else {
                j.commit();
            }
        }
        done += chunk.len();
        if cap.is_some_and(|cap| started.elapsed() > cap) {
            break;
        }
    }
    if let Some(j) = journal {
        assert!(j.sync(), "durable");
    }
    let took = started.elapsed();
    assert_eq!(rejected, 0, "generated payloads are valid");
    (done, took)
}

/// The default parameters, with room for twice the dossiers of the recovery measurement
/// (at the cap every new dossier would evict one, which is not what is measured here).
fn params() -> Params {
    let mut p = Params::default();
    p.caps.dossiers = 2 * DOSSIERS;
    p
}

fn open_journal(dir: &Path) -> (Journal, State) {
    let (journal, recovery, _healthy) = Journal::open(
        dir,
        params(),
        &DecodeLimits::default(),
        PREFIX,
        Duration::from_secs(3600),
    )
    .expect("the data directory opens");
    (journal, recovery.state)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("iocd-durability-bench-")
        .tempdir()
        .expect("a temporary directory")
}

/// Total size of the files directly in `dir` whose name starts with `prefix`.
fn size_of(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .expect("directory readable")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Commits timed per size: 316 bytes (one event) and 160 KiB (512 events).
const SYNCS: usize = 200;

/// (median, p90) in µs of appending 316 bytes, then 160 KiB, to a file and `fdatasync`ing
/// it, as `EventLog::commit` does.
fn fdatasync_latency() -> [(f64, f64); 2] {
    use std::io::Write as _;
    let dir = temp_dir();
    let mut file = std::fs::File::create(dir.path().join("probe")).expect("a file");
    [316, 512 * 316].map(|size| {
        let chunk = vec![0x5a_u8; size];
        let mut us: Vec<f64> = (0..SYNCS)
            .map(|_| {
                let started = Instant::now();
                file.write_all(&chunk).expect("write");
                file.sync_data().expect("fdatasync");
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        us.sort_by(f64::total_cmp);
        (us[SYNCS / 2], us[SYNCS * 9 / 10])
    })
}

// ---------------------------------------------------------------------------------------
// Recovery child
// ---------------------------------------------------------------------------------------

/// In the child: `Journal::open` of `dir` (timed, with the peak RSS it reached), then the
/// checkpoint alone (timed). Prints one `key=value` line.
fn recover_child(dir: &Path) {
    let base = status_bytes("VmRSS:");
    let started = Instant::now();
    let (journal, recovery, _healthy) = Journal::open(
        dir,
        params(),
        &DecodeLimits::default(),
        PREFIX,
        Duration::from_secs(3600),
    )
    .expect("the data directory opens");
    let open = started.elapsed();
    let hwm = status_bytes("VmHWM:");
    let rss = status_bytes("VmRSS:");
    let dossiers = recovery.state.dossiers.len();
    let replayed = recovery.replayed;
    drop(journal);
    drop(recovery);
    let started = Instant::now();
    let (_, ck, _) = store::read_latest_checkpoint::<Checkpoint>(dir)
        .expect("the checkpoint reads")
        .expect("a checkpoint");
    let load = started.elapsed();
    let ck_dossiers = ck.state.dossiers.len();
    println!(
        "open_s={} load_s={} replayed={replayed} dossiers={dossiers} ck_dossiers={ck_dossiers} \
         base={base} hwm={hwm} rss={rss}",
        open.as_secs_f64(),
        load.as_secs_f64()
    );
    // Freeing a million dossiers is not part of any measurement.
    std::process::exit(0);
}

struct ChildResult {
    open_s: f64,
    load_s: f64,
    replayed: u64,
    dossiers: usize,
    ck_dossiers: usize,
    base: u64,
    hwm: u64,
    rss: u64,
}

fn run_child(dir: &Path) -> ChildResult {
    let out = Command::new(std::env::current_exe().expect("own executable"))
        .arg("--bench")
        .env(CHILD_VAR, dir)
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "recovery child failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().expect("a result line");
    let get = |key: &str| -> &str {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .expect("every key present")
    };
    let num = |key: &str| get(key).parse::<f64>().expect("a number");
    ChildResult {
        open_s: num("open_s"),
        load_s: num("load_s"),
        replayed: num("replayed") as u64,
        dossiers: num("dossiers") as usize,
        ck_dossiers: num("ck_dossiers") as usize,
        base: num("base") as u64,
        hwm: num("hwm") as u64,
        rss: num("rss") as u64,
    }
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_VAR) {
        recover_child(Path::new(&dir));
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!("durability bench: skipped (run with cargo bench --bench durability)");
        return;
    }
    let all = Instant::now();

    // 0: the disk's commit latency, as `EventLog::commit` pays it.
    let sync = fdatasync_latency();

    // 1-3: throughput and bytes per event.
    let msgs = mixed(MIXED);
    let payload_bytes: usize = msgs.iter().map(|m| m.payload.len()).sum();
    let topic_bytes: usize = msgs.iter().map(|m| m.topic.len()).sum();
    println!(
        "fdatasync latency (append + fdatasync, {SYNCS} each): 316 B median {:.0} µs, p90 {:.0} µs; \
         160 KiB (a batch of 512) median {:.0} µs, p90 {:.0} µs",
        sync[0].0, sync[0].1, sync[1].0, sync[1].1
    );
    println!(
        "mixed stream: {} messages, {:.0} payload bytes and {:.0} topic bytes per message on average",
        msgs.len(),
        payload_bytes as f64 / msgs.len() as f64,
        topic_bytes as f64 / msgs.len() as f64
    );
    let mut rates: Vec<(String, Vec<f64>, usize)> = vec![
        ("log off (batches of 512)".into(), Vec::new(), 0),
        ("log on, commit per 512".into(), Vec::new(), 0),
        ("log on, commit per 64".into(), Vec::new(), 0),
    ];
    let mut log_bytes = 0;
    for _ in 0..RUNS {
        let (n, took) = ingest(&msgs, None, 512, None);
        rates[0].1.push(n as f64 / took.as_secs_f64());
        rates[0].2 = n;
        for (row, batch, cap) in [(1, 512, None), (2, 64, Some(SMALL_BATCH_CAP))] {
            let dir = temp_dir();
            let (mut journal, _) = open_journal(dir.path());
            let (n, took) = ingest(&msgs, Some(&mut journal), batch, cap);
            rates[row].1.push(n as f64 / took.as_secs_f64());
            rates[row].2 = n;
            if batch == 512 {
                log_bytes = size_of(&dir.path().join("log"), "segment-");
            }
        }
    }
    let single = {
        let dir = temp_dir();
        let (mut journal, _) = open_journal(dir.path());
        let (n, took) = ingest(&msgs, Some(&mut journal), 1, Some(SMALL_BATCH_CAP));
        (n, n as f64 / took.as_secs_f64())
    };
    let off = median(rates[0].1.clone());
    println!();
    println!(
        "{:<34} {:>10} {:>14} {:>12} {:>14}",
        "ingest (decode + apply [+ log])", "messages", "msg/s", "µs/msg", "vs log off"
    );
    let mut rows: Vec<(String, usize, f64, String)> = rates
        .iter()
        .map(|(name, rs, n)| {
            let runs = rs
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ");
            (name.clone(), *n, median(rs.clone()), runs)
        })
        .collect();
    rows.push((
        "log on, commit per message".into(),
        single.0,
        single.1,
        "1 run".into(),
    ));
    for (name, n, rate, runs) in &rows {
        println!(
            "{name:<34} {n:>10} {rate:>14.0} {:>12.2} {:>13.0}%   (runs: {runs})",
            1e6 / rate,
            100.0 * rate / off
        );
    }
    let fsync_us = 1e6 / single.1 - 1e6 / off;
    println!(
        "  → commit (write + fdatasync) latency with one message per commit ≈ {fsync_us:.0} µs"
    );
    println!();
    println!(
        "log on disk: {:.1} MiB for {} messages = {:.1} bytes/event ({:.1} payload + {:.1} topic + 25 framing and record header)",
        mib(log_bytes),
        MIXED,
        log_bytes as f64 / MIXED as f64,
        payload_bytes as f64 / MIXED as f64,
        topic_bytes as f64 / MIXED as f64
    );
    drop(msgs);

    // 4: recovery of 1 M open dossiers.
    let dir = temp_dir();
    let limits = DecodeLimits::default();
    let mut out = Vec::with_capacity(1);
    let (mut journal, mut state) = open_journal(dir.path());
    let mut g = Gen::new(0x1_000_000);
    let build = Instant::now();
    let mut ck_half = Duration::ZERO;
    let mut half_log_bytes = 0;
    let mut trimmed_log_bytes = 0;
    for n in 0..DOSSIERS {
        // One `received` every 50 ms: 1 M over ~14 h, inside the 72 h dedupe horizon.
        let msg = g.received(n, (T0 - 16 * 3600) * 1000 + n as i64 * 50);
        journal.message(&msg);
        assert_eq!(
            handle(&mut state, std::slice::from_ref(&msg), &limits, &mut out),
            0,
            "valid payload"
        );
        if n % 512 == 511 || n + 1 == DOSSIERS {
            journal.commit();
        }
        if n + 1 == DOSSIERS / 2 {
            half_log_bytes = size_of(&dir.path().join("log"), "segment-");
            let started = Instant::now();
            journal.checkpoint(&state, Vec::new());
            ck_half = started.elapsed();
            // The checkpoint trimmed the segments before its own.
            trimmed_log_bytes = half_log_bytes - size_of(&dir.path().join("log"), "segment-");
        }
    }
    let build = build.elapsed();
    let full_log_bytes = size_of(&dir.path().join("log"), "segment-") + trimmed_log_bytes;
    let half_ck_bytes = size_of(dir.path(), "checkpoint-");
    assert_eq!(state.dossiers.len(), DOSSIERS);
    let parent_rss = status_bytes("VmRSS:");
    assert!(journal.sync(), "durable");
    let replay_case = run_child(dir.path());
    let started = Instant::now();
    journal.checkpoint(&state, Vec::new());
    let ck_full = started.elapsed();
    let full_ck_bytes = size_of(dir.path(), "checkpoint-") - half_ck_bytes;
    let load_case = run_child(dir.path());
    // 5: a checkpoint of that state while events keep arriving.
    let under_load = checkpoint_under_load(&mut journal, &mut state, &mut g);
    drop(journal);
    drop(state);
    assert_eq!(replay_case.dossiers, DOSSIERS);
    assert_eq!(replay_case.ck_dossiers, DOSSIERS / 2);
    assert_eq!(replay_case.replayed, (DOSSIERS / 2) as u64);
    assert_eq!(load_case.dossiers, DOSSIERS);
    assert_eq!(load_case.replayed, 0);

    println!();
    println!(
        "recovery setup: {DOSSIERS} `received` logged + applied in {:.1} s ({:.0}/s, log on, commit per 512); \
         parent RSS with the 1 M state {:.0} MiB",
        build.as_secs_f64(),
        DOSSIERS as f64 / build.as_secs_f64(),
        mib(parent_rss)
    );
    println!(
        "checkpoint write: 500 k dossiers {:.2} s ({:.0} MiB), 1 M dossiers {:.2} s ({:.0} MiB) = {:.0} bytes/open dossier",
        ck_half.as_secs_f64(),
        mib(half_ck_bytes),
        ck_full.as_secs_f64(),
        mib(full_ck_bytes),
        full_ck_bytes as f64 / DOSSIERS as f64
    );
    println!(
        "log of the 1 M `received`: {:.0} MiB = {:.0} bytes/event (the 500 k after the first checkpoint: {:.0} MiB)",
        mib(full_log_bytes),
        full_log_bytes as f64 / DOSSIERS as f64,
        mib(full_log_bytes - half_log_bytes)
    );
    println!();
    println!(
        "{:<44} {:>9} {:>11} {:>11} {:>13} {:>13} {:>13}",
        "recovery (Journal::open, warm page cache)",
        "open s",
        "ckpt load s",
        "replay s",
        "replay rec/s",
        "peak RSS MiB",
        "RSS after MiB"
    );
    for (name, c) in [
        ("checkpoint 1 M, replay 0", &load_case),
        ("checkpoint 500 k + replay 500 k", &replay_case),
    ] {
        let replay_s = (c.open_s - c.load_s).max(0.0);
        let rate = if c.replayed == 0 {
            "-".to_string()
        } else {
            format!("{:.0}", c.replayed as f64 / replay_s)
        };
        println!(
            "{name:<44} {:>9.2} {:>11.2} {:>11.2} {rate:>13} {:>13.0} {:>13.0}",
            c.open_s,
            c.load_s,
            replay_s,
            mib(c.hwm),
            mib(c.rss)
        );
    }
    println!(
        "(child baseline RSS {:.0} MiB; replay s = open − checkpoint load measured alone)",
        mib(load_case.base)
    );
    under_load.print();
    println!();
    println!("total bench time {:.0} s", all.elapsed().as_secs_f64());
}

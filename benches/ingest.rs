//! Ingest throughput: decode and apply of realistic payloads, on one core.
//!
//! `cargo bench --bench ingest` (about 2 minutes). Figures, method and analysis are in
//! `docs/performance.md`. `GLIBC_TUNABLES=glibc.malloc.hugetlb=1 cargo bench --bench ingest`
//! measures the heap in huge pages, as `config/iocd.service` runs the daemon.
//!
//! The corpus is generated deterministically up front: a 20-day stream of about 1.2 M
//! events (220 bytes on average), time-ordered with ~2 % of neighbours swapped, weighted
//! like DOMAIN.md's load model: ~80 % one-stop dossier lifecycles (175,000 dossiers from
//! 200 agencies and 2,000 procedures, ids like `000.00.19.H42-261124-0001`), ~15 %
//! video-conferencing events (mostly `endpoint_stats`), ~4 % SOC events, ~1 % heartbeats.
//! Every event id is unique (a UUID), so no event is short-circuited as a duplicate. The
//! payloads lie end to end in one buffer, as a network buffer holds them.
//!
//! The first 1,000,000 events build a *warm* state (about 143,000 dossiers, the dedupe
//! memory full at 900,000 ids, in its steady regime); the measured slice is the next 200,000
//! events, applied to a fresh clone of that warm state in every iteration (cloning is
//! set-up, not measured). That is the steady state of a daemon that has run for a while:
//! every apply pays a dedupe insert and an eviction, and dossier lookups miss the caches.
//! Every event arrives at one instant after the corpus (a backlog replay), so the dedupe
//! horizon expires nothing and housekeeping never runs: the heaviest path.
//!
//! Groups: `serde_json_value_parse` (the yardstick: `serde_json::Value` of the same
//! payloads), `decode`, `apply` (pre-decoded events, one at a time), `decode_apply` (the
//! figure of the target: the pipeline's path, `State::process_all` over batches of 512
//! messages), `decode_apply_each` (`State::process` of one message at a time, the path
//! before `process_all`), `decode_apply_known_source` (decode and apply with the source
//! known), `ingest_from_empty/decode_apply_1m` (the first million events into an empty
//! state) and `view/view_1m_dossiers` (`State::view` over 1,000,000 open dossiers).

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
use std::hint::black_box;
use std::ops::Range;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use iocd::decode::{DecodeLimits, Source, decode};
use iocd::state::{Input, Message, Outcome, Params, Processed, State};
use iocd::time::Ts;
use iocd_testkit::corpus::{
    Fraction, LOCAL_OFFSET, Rng, SECTORS, agency_code, agency_level, civil_from_days, local_time,
    procedure_code,
};

/// Events applied before the measured slice.
const WARM: usize = 1_000_000;
/// Ids the dedupe memory of the warm state holds: fewer than [`WARM`], so that the memory
/// has filled, and settled into its steady regime (see `state::dedupe`), before the measured
/// slice begins; with exactly as many, every measured iteration would pay that one-off step.
const DEDUPE_IDS: usize = 900_000;
/// Messages the pipeline takes off its queue at most at a time (`pipeline::BATCH`).
const PIPELINE_BATCH: usize = 512;
/// Events measured per iteration.
const MEASURED: usize = 200_000;
/// Days the stream spans.
const DAYS: i64 = 20;
/// Dossiers opened over those days.
const DOSSIERS: usize = 175_000;
/// Open dossiers in the state the view is built from.
const VIEW_DOSSIERS: usize = 1_000_000;
/// 2026-11-02T00:00:00+07:00, a Monday, in Unix seconds.
const DAY0: i64 = 1_793_552_400;

// ---------------------------------------------------------------------------------------
// Deterministic generation
// ---------------------------------------------------------------------------------------

/// Unix milliseconds → `2026-11-24T08:15:02.123+07:00` (milliseconds only when not zero).
fn rfc3339(ms: i64) -> String {
    local_time(ms, Fraction::MillisIfAny)
}

/// `yymmdd` of a local day, for dossier ids.
fn yymmdd(ms: i64) -> String {
    let (y, m, d) = civil_from_days((ms.div_euclid(1000) + LOCAL_OFFSET).div_euclid(86_400));
    format!("{:02}{m:02}{d:02}", y % 100)
}

/// 200 agency codes: 20 provincial departments and 180 communes.
fn agencies() -> Vec<(String, &'static str)> {
    (0..200)
        .map(|i| (agency_code(i), agency_level(i)))
        .collect()
}

/// 2,000 procedure codes (`1.001234`), each with its sector.
fn procedures() -> Vec<(String, &'static str)> {
    (0..2000)
        .map(|i| (procedure_code(i), SECTORS[i % SECTORS.len()]))
        .collect()
}

/// One generated message: its source, its payload and when it happened (Unix ms).
struct Msg {
    at_ms: i64,
    source: Source,
    payload: Vec<u8>,
}

struct Gen {
    rng: Rng,
    seq: u64,
    out: Vec<Msg>,
    agencies: Vec<(String, &'static str)>,
    procedures: Vec<(String, &'static str)>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng(seed),
            seq: 0,
            out: Vec::new(),
            agencies: agencies(),
            procedures: procedures(),
        }
    }

    /// Starts a payload: the envelope with a fresh unique event id.
    fn envelope(&mut self, ty: &str, at_ms: i64) -> String {
        self.seq += 1;
        let mut p = String::new();
        self.rng
            .write_envelope(&mut p, self.seq, ty, at_ms, Fraction::MillisIfAny);
        p
    }

    fn push(&mut self, source: Source, at_ms: i64, mut body: String) {
        body.push('}');
        self.out.push(Msg {
            at_ms,
            source,
            payload: body.into_bytes(),
        });
    }

    /// A deadline: 3 to 15 working days (roughly) after `at`, at 17:00 local; 5 % none.
    fn due(&mut self, at_ms: i64) -> String {
        if self.rng.pct(5) {
            return "null".into();
        }
        let day = (at_ms / 1000 + LOCAL_OFFSET).div_euclid(86_400) + 3 + self.rng.below(18) as i64;
        format!(
            "\"{}\"",
            rfc3339((day * 86_400 + 17 * 3600 - LOCAL_OFFSET) * 1000)
        )
    }

    /// Milliseconds in `lo_min..hi_min` minutes, with a random millisecond part.
    fn gap(&mut self, lo_min: u64, hi_min: u64) -> i64 {
        ((lo_min + self.rng.below(hi_min - lo_min)) * 60_000 + self.rng.below(60_000)) as i64
    }

    /// One dossier's lifecycle, starting at `t` (Unix ms).
    #[allow(clippy::many_single_char_names)] // r(ng), t(ime), n: the generator's recipe
    fn dossier(&mut self, n: usize, mut t: i64) {
        let r = &mut self.rng;
        let (agency, level) = self.agencies[r.below(200) as usize].clone();
        let (procedure, sector) = self.procedures[r.below(2000) as usize].clone();
        let channel = match r.below(100) {
            0..88 => "online",
            88..98 => "direct",
            _ => "postal",
        };
        let id = format!("{agency}-{}-{:04}", yymmdd(t), n % 10_000);
        let intake = |g: &mut Self, ty: &str, t: i64, due: bool| {
            let mut p = g.envelope(ty, t);
            let _ = write!(
                p,
                r#","dossier_id":"{id}","agency":"{agency}","agency_level":"{level}","procedure":"{procedure}","sector":"{sector}","channel":"{channel}""#
            );
            if due {
                let d = g.due(t);
                let _ = write!(p, r#","due_at":{d}"#);
            }
            g.push(Source::Onestop, t, p);
        };
        let simple = |g: &mut Self, ty: &str, t: i64, extra: &str| {
            let mut p = g.envelope(ty, t);
            let _ = write!(p, r#","dossier_id":"{id}"{extra}"#);
            g.push(Source::Onestop, t, p);
        };
        if channel == "online" {
            intake(self, "submitted", t, false);
            t += self.gap(10, 240);
        }
        intake(self, "received", t, true);
        match self.rng.below(100) {
            0..3 => {
                let t = t + self.gap(30, 600);
                return simple(self, "rejected", t, "");
            }
            3..6 => {
                let t = t + self.gap(60, 2880);
                let ty = if self.rng.pct(66) {
                    "withdrawn"
                } else {
                    "cancelled"
                };
                return simple(self, ty, t, "");
            }
            _ => {}
        }
        for _ in 0..=self.rng.below(3) {
            t += self.gap(30, 1440);
            if self.rng.pct(40) {
                let a = self.agencies[self.rng.below(200) as usize].0.clone();
                simple(self, "transferred", t, &format!(r#","agency":"{a}""#));
            } else {
                simple(self, "transferred", t, "");
            }
        }
        if self.rng.pct(15) {
            t += self.gap(60, 1440);
            simple(self, "supplement_requested", t, "");
            t += self.gap(600, 4320);
            let d = self.due(t);
            simple(self, "supplement_received", t, &format!(r#","due_at":{d}"#));
        }
        if self.rng.pct(5) {
            t += self.gap(60, 1440);
            simple(self, "paused", t, r#","reason":"fees""#);
            t += self.gap(60, 2880);
            simple(self, "resumed", t, "");
        }
        t += self.gap(120, 7200);
        let d = self.due(t - 86_400_000 * 3);
        let outcome = if self.rng.pct(97) {
            "approved"
        } else {
            "refused"
        };
        simple(
            self,
            "resolved",
            t,
            &format!(r#","due_at":{d},"outcome":"{outcome}""#),
        );
        if self.rng.pct(90) {
            t += self.gap(60, 2880);
            simple(self, "returned", t, "");
        }
    }

    /// Video conferencing: meetings with endpoints joining, sending stats, leaving.
    fn vc(&mut self, quota: usize, span_ms: i64) {
        let start_len = self.out.len();
        let mut m = 0;
        while self.out.len() - start_len < quota {
            m += 1;
            let meeting = format!("M-2026-{m:04}");
            let start = DAY0 * 1000 + self.rng.below(span_ms as u64) as i64;
            let (level, n) = match self.rng.below(10) {
                0 => ("central", 150),
                1..4 => ("province", 20 + self.rng.below(40) as usize),
                _ => ("commune", 3 + self.rng.below(10) as usize),
            };
            let first = self.rng.below(200) as usize;
            let eps: Vec<String> = (0..n)
                .map(|k| format!("EP-H42-{:03}", (first + k) % 200))
                .collect();
            let list = eps
                .iter()
                .map(|e| format!("\"{e}\""))
                .collect::<Vec<_>>()
                .join(",");
            let mut p = self.envelope("meeting_started", start);
            let _ = write!(
                p,
                r#","meeting_id":"{meeting}","title":"Hội nghị trực tuyến số {m}","level":"{level}","expected_endpoints":[{list}]"#
            );
            self.push(Source::Vc, start, p);
            let samples = 30;
            for ep in &eps {
                let mut t = start - 300_000 + self.rng.below(360_000) as i64;
                let mut p = self.envelope("endpoint_joined", t);
                let _ = write!(p, r#","meeting_id":"{meeting}","endpoint_id":"{ep}""#);
                self.push(Source::Vc, t, p);
                for _ in 0..samples {
                    t += 2000 + self.rng.below(3000) as i64;
                    let mut p = self.envelope("endpoint_stats", t);
                    let loss = self.rng.below(300) as f64 / 100.0;
                    let jitter = self.rng.below(400) as f64 / 10.0;
                    let rtt = 20.0 + self.rng.below(3000) as f64 / 10.0;
                    let bitrate = 512 + self.rng.below(3584);
                    let _ = write!(
                        p,
                        r#","meeting_id":"{meeting}","endpoint_id":"{ep}","packet_loss_pct":{loss},"jitter_ms":{jitter},"rtt_ms":{rtt},"bitrate_kbps":{bitrate}"#
                    );
                    self.push(Source::Vc, t, p);
                }
                let mut p = self.envelope("endpoint_left", t + 1000);
                let _ = write!(p, r#","meeting_id":"{meeting}","endpoint_id":"{ep}""#);
                self.push(Source::Vc, t + 1000, p);
            }
            let end = start + 3_600_000;
            let mut p = self.envelope("meeting_ended", end);
            let _ = write!(p, r#","meeting_id":"{meeting}""#);
            self.push(Source::Vc, end, p);
        }
    }

    /// SOC: alerts, incidents and system heartbeats over 75 systems.
    fn soc(&mut self, quota: usize, span_ms: i64) {
        let systems: Vec<String> = (0..75).map(|i| format!("HT-{:03}", i + 1)).collect();
        let start_len = self.out.len();
        let mut incident = 0;
        while self.out.len() - start_len < quota {
            let t = DAY0 * 1000 + self.rng.below(span_ms as u64) as i64;
            let system = self.rng.pick(&systems).clone();
            match self.rng.below(100) {
                0..60 => {
                    let severity = match self.rng.below(100) {
                        0..70 => "low",
                        70..90 => "medium",
                        90..98 => "high",
                        _ => "critical",
                    };
                    let category = self.rng.pick(&[
                        "malware",
                        "intrusion",
                        "ddos",
                        "phishing",
                        "recon",
                        "recon",
                        "policy",
                        "other",
                    ]);
                    let alert = self.rng.below(100_000_000);
                    let (a, b) = (self.rng.below(255), self.rng.below(255));
                    let mut p = self.envelope("alert", t);
                    let _ = write!(
                        p,
                        r#","alert_id":"SIEM-{alert}","system_id":"{system}","severity":"{severity}","category":"{category}","src_ip":"203.0.{a}.{b}","dst_ip":"10.20.1.{a}","signature":"ET SCAN Suspicious inbound to port {b}""#
                    );
                    self.push(Source::Soc, t, p);
                }
                60..62 => {
                    incident += 1;
                    let id = format!("INC-2026-{incident:05}");
                    let severity = self.rng.pick(&["low", "medium", "high", "critical"]);
                    let mut p = self.envelope("incident_opened", t);
                    let _ = write!(
                        p,
                        r#","incident_id":"{id}","system_id":"{system}","severity":"{severity}","title":"Sự cố an toàn thông tin {incident}""#
                    );
                    self.push(Source::Soc, t, p);
                    for (ty, after) in [
                        ("incident_acknowledged", 600_000),
                        ("incident_resolved", 7_200_000),
                    ] {
                        let mut p = self.envelope(ty, t + after);
                        let _ = write!(p, r#","incident_id":"{id}""#);
                        self.push(Source::Soc, t + after, p);
                    }
                }
                _ => {
                    let mut p = self.envelope("system_heartbeat", t);
                    let _ = write!(p, r#","system_id":"{system}""#);
                    self.push(Source::Soc, t, p);
                }
            }
        }
    }

    fn heartbeats(&mut self, quota: usize, span_ms: i64) {
        for i in 0..quota {
            let t = DAY0 * 1000 + span_ms / quota as i64 * i as i64;
            let source = Source::ALL[i % 3];
            let p = self.envelope("heartbeat", t);
            self.push(source, t, p);
        }
    }
}

/// The corpus: its payloads laid end to end in one buffer, in arrival order, as a network
/// buffer would hold them (so each payload is read from memory the way a just-received
/// one is, not from a cold heap block); each message's source and byte range.
struct Corpus {
    bytes: Vec<u8>,
    msgs: Vec<(Source, Range<usize>)>,
    /// The instant everything arrives at.
    now: Ts,
}

impl Corpus {
    fn payloads(&self) -> Vec<(Source, &[u8])> {
        self.msgs
            .iter()
            .map(|(s, r)| (*s, &self.bytes[r.clone()]))
            .collect()
    }
}

/// The corpus, time-ordered with ~2 % of neighbours swapped (redelivery, vendor retries).
fn corpus(dossiers: usize) -> Corpus {
    let mut g = Gen::new(0x10C0_2026);
    let span_ms = DAYS * 86_400_000;
    for n in 0..dossiers {
        // Filed on a working day's office hours, uniformly over the span.
        let day = g.rng.below(DAYS as u64) as i64;
        let minute = 7 * 60 + 30 + g.rng.below(9 * 60 + 30) as i64;
        let t = (DAY0 + day * 86_400 + minute * 60) * 1000 + g.rng.below(60_000) as i64;
        g.dossier(n, t);
    }
    let dossier_events = g.out.len();
    g.vc(dossier_events * 15 / 80, span_ms);
    g.soc(dossier_events * 4 / 80, span_ms);
    g.heartbeats(dossier_events / 80, span_ms);
    let mut out = g.out;
    // Lifecycles run past the span: keep what happened before its end.
    let end = (DAY0 + DAYS * 86_400) * 1000;
    out.retain(|m| m.at_ms < end);
    out.sort_by_key(|m| m.at_ms);
    let mut rng = Rng(7);
    for i in 1..out.len() {
        if rng.pct(2) {
            out.swap(i - 1, i);
        }
    }
    let mut bytes = Vec::with_capacity(out.iter().map(|m| m.payload.len()).sum());
    let msgs = out
        .into_iter()
        .map(|m| {
            let start = bytes.len();
            bytes.extend_from_slice(&m.payload);
            (m.source, start..bytes.len())
        })
        .collect();
    Corpus {
        bytes,
        msgs,
        now: Ts((end + 60_000) * 1_000_000),
    }
}

/// A `received` payload for dossier `n` of a set of distinct dossiers (for the view bench):
/// 100 dossiers a day per agency, over as many days as needed, filed on the day of `t`
/// minus `n / 20,000` days (so ids are unique: agency, day, number), received that day.
fn received_payload(g: &mut Gen, n: usize, t: i64) -> Vec<u8> {
    let (agency, level) = g.agencies[n % 200].clone();
    let filed = t - (n / 20_000) as i64 * 86_400_000;
    let (procedure, sector) = g.procedures[(n * 7919) % 2000].clone();
    let channel = ["online", "online", "online", "direct", "postal"][n % 5];
    let mut p = g.envelope("received", filed);
    let due = g.due(filed);
    let _ = write!(
        p,
        r#","dossier_id":"{agency}-{}-{:04}","agency":"{agency}","agency_level":"{level}","procedure":"{procedure}","sector":"{sector}","channel":"{channel}","due_at":{due}}}"#,
        yymmdd(filed),
        n / 200 % 100
    );
    p.into_bytes()
}

// ---------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------

/// A topic of each source, indexed by [`Source::index`].
const TOPICS: [&str; 3] = [
    "ioc/v1/onestop/H42/dossier",
    "ioc/v1/vc/endpoints/EP",
    "ioc/v1/soc/alerts/HT",
];

/// The messages of `msgs`, with a topic of their source.
fn messages<'m>(msgs: &'m [(Source, &'m [u8])], now: Ts) -> impl Iterator<Item = Message<'m>> {
    msgs.iter().map(move |&(source, payload)| Message {
        topic: TOPICS[source.index()],
        payload,
        received_at: now,
    })
}

/// A way of taking messages into a state.
type Ingest = fn(&mut State, &[(Source, &[u8])], Ts, &DecodeLimits);

/// The daemon's path: `State::process_all` (topic → source, decode, apply, a group of
/// messages at a time) over a batch of messages, as the pipeline takes them off its queue.
fn apply_all(state: &mut State, msgs: &[(Source, &[u8])], now: Ts, limits: &DecodeLimits) {
    let mut out = Vec::with_capacity(PIPELINE_BATCH);
    for batch in msgs.chunks(PIPELINE_BATCH) {
        state.process_all(messages(batch, now), "ioc/v1", limits, &mut out);
        assert!(
            out.drain(..)
                .all(|o| matches!(o, Processed::Applied(Outcome::Applied))),
            "generated payloads are valid"
        );
    }
}

/// [`apply_all`] in a function of its own, never inlined, whose name callgrind's
/// `--toggle-collect` can find (`benches/ingest-instructions.sh`).
#[inline(never)]
fn ingest_once(state: &mut State, msgs: &[(Source, &[u8])], now: Ts, limits: &DecodeLimits) {
    apply_all(state, msgs, now, limits);
}

/// `State::process` of each message alone, as before `process_all`.
fn apply_each(state: &mut State, msgs: &[(Source, &[u8])], now: Ts, limits: &DecodeLimits) {
    for msg in messages(msgs, now) {
        let outcome = state.process(msg, "ioc/v1", limits);
        assert!(
            matches!(outcome, Processed::Applied(Outcome::Applied)),
            "generated payloads are valid"
        );
    }
}

fn benches(c: &mut Criterion) {
    // Without `--bench` (`cargo test --bench '*'`), criterion runs each benchmark once:
    // a smoke test, on a corpus 50 times smaller.
    let scale = if std::env::args().any(|a| a == "--bench") {
        1
    } else {
        50
    };
    let (warm_n, measured_n, view_n) = (WARM / scale, MEASURED / scale, VIEW_DOSSIERS / scale);
    let corpus = corpus(DOSSIERS / scale);
    let now = corpus.now;
    let msgs = corpus.payloads();
    let limits = DecodeLimits::default();
    assert!(
        msgs.len() >= warm_n + measured_n,
        "corpus of {} events is too small",
        msgs.len()
    );
    // Huge pages move apply by a tenth or more on these VMs: say which case was measured.
    eprintln!("heap: huge pages {}", iocd::telemetry::huge_pages::status());
    let (warm_msgs, rest) = msgs.split_at(warm_n);
    let measured = &rest[..measured_n];
    let bytes: usize = measured.iter().map(|m| m.1.len()).sum();
    let onestop = msgs.iter().filter(|m| m.0 == Source::Onestop).count();
    eprintln!(
        "corpus: {} events ({:.1} % one-stop), measured slice: {} events, {:.0} bytes/payload on average",
        msgs.len(),
        100.0 * onestop as f64 / msgs.len() as f64,
        measured_n,
        bytes as f64 / measured_n as f64
    );

    let mut warm = State::new(warm_params(DEDUPE_IDS / scale), Ts(DAY0 * 1_000_000_000));
    apply_all(&mut warm, warm_msgs, now, &limits);
    // As in the daemon, whose pipeline advances the state every tick: the figures that
    // depend on "now" are tracked, and every dossier event keeps them up to date.
    warm.advance(now);
    eprintln!(
        "warm state: {} dossiers, {} ids in the dedupe memory",
        warm.dossiers.len(),
        warm.dedupe_len()
    );

    if std::env::var_os("IOCD_INGEST_ONCE").is_some() {
        // For `benches/ingest-instructions.sh`: the measured slice once, under callgrind.
        let mut state = warm.clone();
        ingest_once(&mut state, measured, now, &limits);
        eprintln!("applied the measured slice once: {measured_n} events");
        return;
    }

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(measured_n as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(8));

    g.bench_function("serde_json_value_parse", |b| {
        b.iter(|| {
            for m in measured {
                black_box(serde_json::from_slice::<serde_json::Value>(m.1).expect("valid JSON"));
            }
        });
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for &(source, payload) in measured {
                black_box(decode(source, payload, now, &limits).expect("valid"));
            }
        });
    });
    let decoded: Vec<Input<'_>> = measured
        .iter()
        .map(|&(source, payload)| {
            Input::Event(decode(source, payload, now, &limits).expect("valid"))
        })
        .collect();
    g.bench_function("apply", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut state| {
                for input in &decoded {
                    state.apply(input, now);
                }
                state
            },
            BatchSize::PerIteration,
        );
    });
    // The pipeline's path, and one message at a time as it went before `State::process_all`.
    let paths: [(&str, Ingest); 2] = [
        ("decode_apply", apply_all),
        ("decode_apply_each", apply_each),
    ];
    for (name, path) in paths {
        g.bench_function(name, |b| {
            b.iter_batched(
                || warm.clone(),
                |mut state| {
                    path(&mut state, measured, now, &limits);
                    state
                },
                BatchSize::PerIteration,
            );
        });
    }
    // The same without the topic: decode + apply with the source known, as this row was
    // measured before `State::process` (which also finds the source from the topic).
    g.bench_function("decode_apply_known_source", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut state| {
                for &(source, payload) in measured {
                    let ev = decode(source, payload, now, &limits).expect("valid");
                    state.apply(&Input::Event(ev), now);
                }
                state
            },
            BatchSize::PerIteration,
        );
    });
    drop(decoded);
    g.finish();

    // From an empty state: the whole first million events, the state growing from nothing.
    let mut g = c.benchmark_group("ingest_from_empty");
    g.throughput(Throughput::Elements(warm_n as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("decode_apply_1m", |b| {
        b.iter_batched(
            || State::new(Params::default(), Ts(DAY0 * 1_000_000_000)),
            |mut state| {
                apply_all(&mut state, warm_msgs, now, &limits);
                state
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
    drop(warm);
    drop(msgs);
    drop(corpus);

    // The view, every 500 ms in the daemon, over 1,000,000 open dossiers.
    let mut state = State::new(Params::default(), Ts(DAY0 * 1_000_000_000));
    let mut generator = Gen::new(42);
    let t0 = (DAY0 + 19 * 86_400 + 8 * 3600) * 1000;
    for n in 0..view_n {
        let t = t0 + (n as i64 % 36_000_000);
        let payload = received_payload(&mut generator, n, t);
        let ev = decode(Source::Onestop, &payload, now, &limits).expect("valid");
        state.apply(&Input::Event(ev), now);
    }
    assert_eq!(state.dossiers.len(), view_n);
    let mut g = c.benchmark_group("view");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("view_1m_dossiers", |b| {
        b.iter(|| black_box(state.view(now)));
    });
    g.finish();
}

/// The parameters of the warm state: the defaults, with a dedupe memory of `ids` ids.
fn warm_params(ids: usize) -> Params {
    Params {
        dedupe_max_ids: ids,
        ..Params::default()
    }
}

criterion_group!(ingest, benches);
criterion_main!(ingest);

//! The pure, deterministic event generator: given the options, a seed and a start instant,
//! [`Generator::generate`] returns every message due before an instant, in time order.
//!
//! It is a discrete-event simulation: a priority queue of tasks (an arrival process firing,
//! a dossier's next step, an endpoint's next statistics sample, a heartbeat) ordered by
//! time and insertion. Each task may emit messages and schedule further tasks. The source
//! models live in `dossiers`, `meetings` and `soc`; faults are injected by `faults` on the
//! way out. No I/O and no clock: the caller says how far to go.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use super::clock::{Clock, Rhythm};
use super::dossiers::Step;
use super::faults::Injector;
use super::meetings::{MeetingRun, MeetingTask};
use super::model::Province;
use super::soc::{SocSim, SocTask};
use super::{Profile, SimOptions};
use crate::decode::{Reason, Source};
use crate::time::Ts;

/// A fault injected on purpose, so dashboards show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A second copy of an event already sent (same `event_id`): counted as a duplicate.
    Duplicate,
    /// A valid event held back and sent later than events that follow it: accepted.
    OutOfOrder,
    /// A corrupted copy of an event: rejected with exactly this reason (under the
    /// contract's default limits: 65,536 bytes, 5 minutes of clock skew).
    Malformed(Reason),
}

/// One message to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct SimMessage {
    /// Full topic, prefix included.
    pub topic: String,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// The fault it carries, if any.
    pub fault: Option<Fault>,
    /// Its source (the topic's second level).
    pub source: Source,
    /// When to publish it: its `occurred_at`, or later for a held-back or repeated one.
    pub at: Ts,
}

/// Something the simulation does at an instant.
#[derive(Debug)]
pub(super) enum Task {
    /// A citizen files online (thinned Poisson process over the citizen rhythm).
    OnlineArrival,
    /// A citizen files at the desk or by post (Poisson process in office time).
    DeskArrival,
    /// A dossier's next lifecycle step.
    Dossier(Box<Step>),
    /// A source's feed heartbeat.
    SourceHeartbeat(Source),
    /// Video conferencing.
    Meeting(MeetingTask),
    /// Security operations.
    Soc(SocTask),
    /// Adjusts the scale towards the target rate (`--rate`).
    RateCheck,
    /// A message held back or repeated by the fault injector.
    Release(Box<SimMessage>),
}

struct Entry {
    at: Ts,
    seq: u64,
    task: Task,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Seconds between two feed heartbeats of a source.
const SOURCE_HEARTBEAT_SECS: i64 = 30;
/// Seconds between two rate checks.
const RATE_WINDOW_SECS: i64 = 2;

/// The simulation.
pub struct Generator {
    pub(super) province: Province,
    pub(super) clock: Clock,
    pub(super) rng: StdRng,
    pub(super) profile: Profile,
    /// Topic prefix, without a trailing slash.
    pub(super) prefix: String,
    /// Where history ends and the live part begins.
    pub(super) start: Ts,
    /// A per-run tag in every id, so that two runs never share an `event_id`.
    pub(super) tag: u32,
    /// Topic level of each agency (`H42.19`, `X01.05`).
    pub(super) agency_topics: Vec<String>,
    /// Cumulative weights of the procedures and of the communes.
    pub(super) procedure_cum: Vec<f64>,
    pub(super) commune_cum: Vec<f64>,
    /// Next dossier serial per (agency, local day).
    pub(super) dossier_serials: HashMap<(u16, u32), u32>,
    pub(super) meetings: HashMap<u32, MeetingRun>,
    pub(super) meeting_serial: u32,
    pub(super) soc: SocSim,
    /// Next office-time instant (office seconds) of a desk arrival.
    pub(super) desk_next_x: f64,
    /// Next office-time instant of a meeting being planned.
    pub(super) meeting_next_x: f64,
    /// Meetings going on air before this are not kept (their start would be unpublished).
    pub(super) meetings_from: Ts,
    /// Current intensity multiplier of live dossier filings (steered with a target rate).
    scale: f64,
    event_serial: [u64; 3],
    queue: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    injector: Injector,
    emitted_in_window: u64,
    out: Vec<SimMessage>,
}

impl Generator {
    /// A generator whose live part starts at `start` (the wall clock's now, for `run`).
    /// History before `start` (the backlog of open dossiers, and in demo mode the recent
    /// past of every source) is produced by the first call to [`Generator::generate`].
    #[must_use]
    pub fn new(options: &SimOptions, start: Ts) -> Self {
        let profile = Profile::of(options);
        let province = Province::new();
        let tag = run_tag(options.seed, start);
        let procedure_cum = cumulative(super::model::PROCEDURES.iter().map(|p| p.weight));
        let commune_cum = cumulative(
            province.agencies[province.communes()]
                .iter()
                .map(|a| a.weight),
        );
        let mut g = Self {
            procedure_cum,
            commune_cum,
            agency_topics: province
                .agencies
                .iter()
                .map(super::model::Agency::topic_level)
                .collect(),
            soc: SocSim::new(province.systems.len()),
            province,
            clock: Clock::new(profile.rhythm, start).compressed(profile.compression),
            rng: StdRng::seed_from_u64(options.seed),
            prefix: options.prefix.trim_end_matches('/').to_owned(),
            start,
            tag,
            dossier_serials: HashMap::new(),
            meetings: HashMap::new(),
            meeting_serial: 0,
            desk_next_x: 0.0,
            meeting_next_x: 0.0,
            meetings_from: start,
            scale: profile.filing_scale,
            event_serial: [0; 3],
            queue: BinaryHeap::new(),
            seq: 0,
            injector: options.fault_mix.map_or_else(
                || Injector::new(options.faults),
                |mix| Injector::with_shares(mix.shares()),
            ),
            emitted_in_window: 0,
            out: Vec::new(),
            profile,
        };
        g.schedule_processes();
        g
    }

    fn schedule_processes(&mut self) {
        let dossiers_from = self.start.minus_secs(self.profile.dossier_history_secs);
        let vc_from = self.start.minus_secs(self.profile.vc_history_secs);
        let soc_from = self.start.minus_secs(self.profile.soc_history_secs);
        self.schedule(dossiers_from, Task::OnlineArrival);
        self.desk_next_x = self.clock.office_secs(dossiers_from) as f64;
        let first_desk = self.clock.from_office_secs(self.desk_next_x as i64);
        self.schedule(first_desk, Task::DeskArrival);
        // Meetings are announced up to an hour ahead: planning starts an hour early, and
        // only meetings going on air within the meeting history are kept.
        let planning = vc_from.minus_secs(3600);
        self.meetings_from = vc_from;
        self.meeting_next_x = self.clock.office_secs(planning) as f64;
        let first = self.clock.from_office_secs(self.meeting_next_x as i64);
        self.schedule(first, Task::Meeting(MeetingTask::Arrival));
        for (i, source) in Source::ALL.into_iter().enumerate() {
            let at = soc_from.plus_secs(i as i64 * 7);
            self.schedule(at, Task::SourceHeartbeat(source));
        }
        self.schedule_soc(soc_from);
        if self.profile.target_rate.is_some() {
            self.schedule(self.start.plus_secs(RATE_WINDOW_SECS), Task::RateCheck);
        }
        if self.profile.demo {
            self.schedule_demo();
        }
    }

    /// Every message due before `until`, in publishing order. Repeated calls continue where
    /// the previous one stopped; the first one also produces the history.
    pub fn generate(&mut self, until: Ts) -> Vec<SimMessage> {
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.at >= until {
                break;
            }
            if let Some(Reverse(entry)) = self.queue.pop() {
                self.run(entry.at, entry.task);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// The current intensity multiplier of live dossier filings (1.0: the province).
    #[must_use]
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The intensity multiplier of meetings and the SOC (1.0: the province).
    pub(super) fn base_scale(&self) -> f64 {
        self.profile.live_scale
    }

    /// Where the live part begins.
    #[must_use]
    pub fn start(&self) -> Ts {
        self.start
    }

    fn run(&mut self, at: Ts, task: Task) {
        match task {
            Task::OnlineArrival => self.online_arrival(at),
            Task::DeskArrival => self.desk_arrival(at),
            Task::Dossier(step) => self.dossier_step(at, &step),
            Task::SourceHeartbeat(source) => self.source_heartbeat(at, source),
            Task::Meeting(t) => self.meeting_task(at, t),
            Task::Soc(t) => self.soc_task(at, t),
            Task::RateCheck => self.rate_check(at),
            Task::Release(msg) => self.push_out(*msg),
        }
    }

    /// Queues `task` at `at`.
    pub(super) fn schedule(&mut self, at: Ts, task: Task) {
        self.seq += 1;
        self.queue.push(Reverse(Entry {
            at,
            seq: self.seq,
            task,
        }));
    }

    /// The intensity multiplier of dossier arrivals at `at`: the history's before the
    /// start (it sizes the backlog), the live one after. Meetings and SOC use the live one.
    pub(super) fn scale_at(&self, at: Ts) -> f64 {
        if at < self.start {
            self.profile.history_scale
        } else {
            self.scale
        }
    }

    /// Whether an event at `at` is published (history is silent unless replayed).
    pub(super) fn emitted(&self, at: Ts) -> bool {
        at >= self.start || self.profile.emit_history
    }

    /// Publishes one event: adds `event_id`, `type` and `occurred_at`, then lets the fault
    /// injector pass it, hold it back, repeat it or add a corrupted copy.
    pub(super) fn emit(
        &mut self,
        at: Ts,
        source: Source,
        topic: String,
        ty: &str,
        mut obj: Map<String, Value>,
    ) {
        if !self.emitted(at) {
            return;
        }
        let n = &mut self.event_serial[source.index()];
        *n += 1;
        let prefix = match source {
            Source::Onestop => "os",
            Source::Vc => "vc",
            Source::Soc => "soc",
        };
        obj.insert(
            "event_id".into(),
            format!("{prefix}-{:08x}-{n:07}", self.tag).into(),
        );
        obj.insert("type".into(), ty.into());
        let utc = source == Source::Soc;
        obj.insert("occurred_at".into(), self.clock.rfc3339(at, utc).into());
        let msgs = self
            .injector
            .inject(&mut self.rng, &self.clock, at, source, topic, &obj);
        for (release_at, msg) in msgs.into_iter().flatten() {
            if release_at > at {
                self.schedule(release_at, Task::Release(Box::new(msg)));
            } else {
                self.push_out(msg);
            }
        }
    }

    fn push_out(&mut self, msg: SimMessage) {
        self.emitted_in_window += 1;
        self.out.push(msg);
    }

    /// `{prefix}/{rest}`.
    pub(super) fn topic(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}/{rest}", self.prefix)
    }

    fn source_heartbeat(&mut self, at: Ts, source: Source) {
        let topic = self.topic(format_args!("{}/heartbeat", source.as_str()));
        self.emit(at, source, topic, "heartbeat", Map::new());
        let next = self.jittered(at.plus_secs(SOURCE_HEARTBEAT_SECS), 500);
        self.schedule(next, Task::SourceHeartbeat(source));
    }

    /// Steers the live scale so that the output averages the target rate: a damped
    /// multiplicative correction every two simulated seconds.
    fn rate_check(&mut self, at: Ts) {
        if let Some(target) = self.profile.target_rate {
            let want = target * RATE_WINDOW_SECS as f64;
            let got = (self.emitted_in_window as f64).max(1.0);
            let factor = (want / got).clamp(0.5, 4.0).powf(0.6);
            self.scale = (self.scale * factor).clamp(1e-3, 1e6);
        }
        self.emitted_in_window = 0;
        self.schedule(at.plus_secs(RATE_WINDOW_SECS), Task::RateCheck);
    }

    // ---- random helpers ----

    /// A uniform sample in `[lo, hi)`.
    pub(super) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi <= lo {
            return lo;
        }
        self.rng.random_range(lo..hi)
    }

    /// An exponential sample with this mean.
    pub(super) fn exp(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        -u.ln() * mean
    }

    /// A log-normal sample with this median and shape.
    pub(super) fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// An index drawn by `weights`.
    pub(super) fn pick_weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut r = self.uniform(0.0, total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// `at` plus a random offset of up to `max_ms` milliseconds.
    pub(super) fn jittered(&mut self, at: Ts, max_ms: i64) -> Ts {
        let ms = self.rng.random_range(0..max_ms.max(1));
        Ts(at.0.saturating_add(ms * 1_000_000))
    }

    /// `at` plus `secs` (fractional) seconds.
    pub(super) fn after(at: Ts, secs: f64) -> Ts {
        Ts(at.0.saturating_add((secs.max(0.0) * 1e9) as i64))
    }

    /// Whether the rhythm is the real week.
    pub(super) fn daily(&self) -> bool {
        self.clock.rhythm() == Rhythm::Daily
    }
}

/// An index drawn by cumulative weights (ascending, the last being the total).
pub(super) fn pick_cumulative(rng: &mut StdRng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    if total <= 0.0 {
        return 0;
    }
    let r = rng.random_range(0.0..total);
    cumulative
        .partition_point(|c| *c <= r)
        .min(cumulative.len().saturating_sub(1))
}

/// Running sums of `weights`.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

/// A tag for the run's ids, from the seed and the start (so a rerun never collides).
fn run_tag(seed: u64, start: Ts) -> u32 {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::try_from(start.0 / 1_000_000).unwrap_or(0))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (mixed >> 32) as u32
}

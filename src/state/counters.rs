//! Monotonic counters and histograms of docs/contract.md §5.3, kept as plain numbers inside
//! the state (so they are serialised, replayed and never reset) and turned into Prometheus
//! families only at scrape time by `outputs::prometheus`.

use serde::{Deserialize, Serialize};

use crate::decode::{Category, Channel, Event, Reason, Severity, Source, type_names};

/// How a dossier was resolved against its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// On a local day before the due day.
    Early,
    /// On the due day, not after `due_at` (or without a deadline).
    OnTime,
    /// After `due_at`.
    Late,
}

impl Timing {
    /// Every timing, in label order.
    pub const ALL: [Timing; 3] = [Timing::Early, Timing::OnTime, Timing::Late];

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Timing::Early => "early",
            Timing::OnTime => "on_time",
            Timing::Late => "late",
        }
    }

    /// Early or on time.
    #[must_use]
    pub const fn in_time(self) -> bool {
        !matches!(self, Timing::Late)
    }
}

/// A Prometheus-style histogram with fixed upper bounds (seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds, ascending; `+Inf` is implicit.
    pub bounds: Vec<f64>,
    /// Non-cumulative count per bound, plus one for `+Inf`.
    pub counts: Vec<u64>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds.
    #[must_use]
    pub fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }
}

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
/// Dossier resolution: hours to months.
pub const RESOLUTION_BOUNDS: [f64; 13] = [
    HOUR,
    4.0 * HOUR,
    8.0 * HOUR,
    DAY,
    2.0 * DAY,
    3.0 * DAY,
    5.0 * DAY,
    7.0 * DAY,
    10.0 * DAY,
    15.0 * DAY,
    30.0 * DAY,
    60.0 * DAY,
    90.0 * DAY,
];
/// Incident acknowledgement: minutes to days.
pub const ACK_BOUNDS: [f64; 10] = [
    60.0,
    300.0,
    900.0,
    1800.0,
    HOUR,
    2.0 * HOUR,
    4.0 * HOUR,
    8.0 * HOUR,
    DAY,
    3.0 * DAY,
];
/// Incident resolution: minutes to weeks.
pub const RESOLVE_BOUNDS: [f64; 10] = [
    900.0,
    HOUR,
    4.0 * HOUR,
    8.0 * HOUR,
    DAY,
    2.0 * DAY,
    3.0 * DAY,
    7.0 * DAY,
    14.0 * DAY,
    30.0 * DAY,
];

/// Most event types of any source (one-stop: 14 + heartbeat).
const MAX_TYPES: usize = 15;
/// The same before contract 1.2 (checkpoint formats 1 to 4: one-stop 12 + heartbeat).
const TYPES_FORMAT4: usize = 13;

/// Every counter and histogram of docs/contract.md §5.3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Accepted events by source and type index (see [`type_names`]).
    pub events: [[u64; MAX_TYPES]; 3],
    /// Duplicates by source.
    pub duplicates: [u64; 3],
    /// Rejected payloads by source and reason.
    pub rejected: [[u64; Reason::COUNT]; 3],
    /// Dossiers received, by interned agency id and channel.
    pub received: Vec<[u64; 3]>,
    /// Dossiers resolved, by interned agency id and timing.
    pub resolved: Vec<[u64; 3]>,
    /// Received → resolved, in seconds.
    pub resolution: Histogram,
    /// SOC alerts by severity and category.
    pub soc_alerts: [[u64; 7]; 4],
    /// Incident opened → acknowledged, by severity.
    pub incident_ack: [Histogram; 4],
    /// Incident opened → resolved, by severity.
    pub incident_resolve: [Histogram; 4],
}

/// [`Counters`] as checkpoint formats 1 to 4 wrote them: event counts of 13 types per
/// source (before `paid` and `rated`), and `J` the rejections of one source: nine reasons in
/// formats 1 and 2 (before `mapping_failed`, counted from zero after the upgrade), all of
/// them in formats 3 and 4.
#[derive(Deserialize)]
#[serde(rename = "Counters")]
pub struct CountersBefore12<J> {
    events: [[u64; TYPES_FORMAT4]; 3],
    duplicates: [u64; 3],
    rejected: [J; 3],
    received: Vec<[u64; 3]>,
    resolved: Vec<[u64; 3]>,
    resolution: Histogram,
    soc_alerts: [[u64; 7]; 4],
    incident_ack: [Histogram; 4],
    incident_resolve: [Histogram; 4],
}

impl<J: AsRef<[u64]>> From<CountersBefore12<J>> for Counters {
    fn from(c: CountersBefore12<J>) -> Self {
        let mut rejected = [[0; Reason::COUNT]; 3];
        for (new, old) in rejected.iter_mut().zip(&c.rejected) {
            let old = old.as_ref();
            let n = old.len().min(Reason::COUNT);
            new[..n].copy_from_slice(&old[..n]);
        }
        Self {
            events: widen(&c.events),
            duplicates: c.duplicates,
            rejected,
            received: c.received,
            resolved: c.resolved,
            resolution: c.resolution,
            soc_alerts: c.soc_alerts,
            incident_ack: c.incident_ack,
            incident_resolve: c.incident_resolve,
        }
    }
}

/// Event counts by type before contract 1.2, in today's slots: `paid` and `rated` come
/// before the one-stop heartbeat, which moves from slot 12 to 14; the other sources' slots
/// stay where they were.
fn widen(old: &[[u64; TYPES_FORMAT4]; 3]) -> [[u64; MAX_TYPES]; 3] {
    let mut events = [[0; MAX_TYPES]; 3];
    for (source, (new, old)) in events.iter_mut().zip(old).enumerate() {
        new[..TYPES_FORMAT4].copy_from_slice(old);
        if source == Source::Onestop.index() {
            new[TYPES_FORMAT4 - 1] = 0;
            new[type_names(Source::Onestop).len() - 1] = old[TYPES_FORMAT4 - 1];
        }
    }
    events
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            events: [[0; MAX_TYPES]; 3],
            duplicates: [0; 3],
            rejected: [[0; Reason::COUNT]; 3],
            received: Vec::new(),
            resolved: Vec::new(),
            resolution: Histogram::new(&RESOLUTION_BOUNDS),
            soc_alerts: [[0; 7]; 4],
            incident_ack: std::array::from_fn(|_| Histogram::new(&ACK_BOUNDS)),
            incident_resolve: std::array::from_fn(|_| Histogram::new(&RESOLVE_BOUNDS)),
        }
    }
}

fn at(v: &mut Vec<[u64; 3]>, agency: u32) -> &mut [u64; 3] {
    let i = agency as usize;
    if v.len() <= i {
        v.resize(i + 1, [0; 3]);
    }
    &mut v[i]
}

impl Counters {
    /// Counts an accepted event.
    pub fn event(&mut self, ev: &Event<'_>) {
        let i = ev.type_index().min(MAX_TYPES - 1);
        self.events[ev.source.index()][i] += 1;
    }

    /// Counts a rejected payload.
    pub fn rejected(&mut self, source: Source, reason: Reason) {
        self.rejected[source.index()][reason.index()] += 1;
    }

    /// Counts a dossier received.
    pub fn received(&mut self, agency: u32, channel: Channel) {
        at(&mut self.received, agency)[channel as usize] += 1;
    }

    /// Counts a dossier resolved.
    pub fn resolved(&mut self, agency: u32, timing: Timing) {
        at(&mut self.resolved, agency)[timing as usize] += 1;
    }

    /// Counts a SOC alert.
    pub fn soc_alert(&mut self, severity: Severity, category: Category) {
        self.soc_alerts[severity as usize][category as usize] += 1;
    }

    /// Accepted events of one source and type name.
    #[must_use]
    pub fn events_of(&self, source: Source, type_name: &str) -> u64 {
        type_names(source)
            .iter()
            .position(|t| *t == type_name)
            .map_or(0, |i| self.events[source.index()][i])
    }
}

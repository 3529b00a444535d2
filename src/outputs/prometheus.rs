//! The domain metrics of docs/contract.md §5.3, in the Prometheus text exposition format.
//!
//! # Choice: a custom `Collector` that reads the latest [`View`] at scrape time
//!
//! STYLE 8 asks us to choose once between gauges updated by the pipeline and a collector
//! that reads the state when scraped. We chose the collector. [`DomainCollector`] holds the
//! receiving end of the `watch` channel on which the pipeline publishes an `Arc<View>` every
//! tick; `collect()` clones that `Arc` and turns the numbers into metric families. Why:
//!
//! - The hot path (`decode` → `State::apply`) never touches Prometheus types, atomics or
//!   label hashing; the counters are plain numbers inside the state.
//! - Counters and histograms live in the state, so they are checkpointed and rebuilt by
//!   replay like everything else: after a restart they continue where they were instead of
//!   resetting (docs/contract.md §4.5), which registered `IntCounterVec`s could not do.
//! - Gauges that depend on "now" (overdue, stalled, silent) come from the same `View` as
//!   the snapshot, so `/metrics` and the wall displays never disagree, and nothing has to
//!   reset a gauge vector between ticks (a vanished agency simply stops being emitted).
//! - A scrape costs one `Arc` clone and a walk over a few hundred numbers; it never locks
//!   the state.
//!
//! Series policy: every combination of small fixed enums is emitted, zeros included, so that
//! Grafana queries always find their series. Per-agency gauges are emitted for each agency
//! label with at least one open dossier (all four statuses, and overdue, due soon and
//! stalled, zeros included); per-agency counters for each combination that has counted
//! something, which stays true once true because counters never decrease. Metric names are
//! in [`names`]. iocd's own metrics (connection, queue) live in `telemetry::metrics` and
//! share the same registry.
//!
//! `iocd_alerts_firing` is not emitted yet: a family without series cannot go through this
//! crate (the registry drops it and the text encoder refuses it), and declaring its
//! descriptor here would stop the alert engine from registering it later.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricType::{COUNTER, GAUGE, HISTOGRAM};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Registry, TextEncoder};
use tokio::sync::watch;

use crate::decode::{
    Category, Channel, DossierKind, DossierStatus, Level, Reason, Severity, Source, type_names,
};
use crate::derive::View;
use crate::derive::view::{AgencyGauges, AgencyPeriods};
use crate::state::Timing;
use crate::state::counters::{Counters, Histogram};
use crate::state::evict::Kind;

/// The content type of [`encode`]'s output, for the `/metrics` response.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Metric names of docs/contract.md §5.3 and iocd's state gauges, for dashboards and tests.
pub mod names {
    /// Counter `{source, type}`: events accepted (heartbeats included).
    pub const EVENTS_TOTAL: &str = "iocd_events_total";
    /// Counter `{source}`: duplicates ignored.
    pub const EVENTS_DUPLICATE_TOTAL: &str = "iocd_events_duplicate_total";
    /// Counter `{source, reason}`: payloads rejected.
    pub const EVENTS_REJECTED_TOTAL: &str = "iocd_events_rejected_total";
    /// Gauge `{source}`: `occurred_at` of the latest accepted event, Unix time.
    pub const SOURCE_LAST_EVENT_TIMESTAMP_SECONDS: &str =
        "iocd_source_last_event_timestamp_seconds";
    /// Gauge `{agency, status}`: dossiers in each open status.
    pub const ONESTOP_DOSSIERS: &str = "iocd_onestop_dossiers";
    /// Gauge `{agency}`: overdue dossiers.
    pub const ONESTOP_DOSSIERS_OVERDUE: &str = "iocd_onestop_dossiers_overdue";
    /// Gauge `{agency}`: dossiers due soon.
    pub const ONESTOP_DOSSIERS_DUE_SOON: &str = "iocd_onestop_dossiers_due_soon";
    /// Gauge `{agency}`: stalled dossiers.
    pub const ONESTOP_DOSSIERS_STALLED: &str = "iocd_onestop_dossiers_stalled";
    /// Counter `{agency, channel}`: dossiers received.
    pub const ONESTOP_RECEIVED_TOTAL: &str = "iocd_onestop_received_total";
    /// Counter `{agency, timing}`: dossiers resolved.
    pub const ONESTOP_RESOLVED_TOTAL: &str = "iocd_onestop_resolved_total";
    /// Histogram: received to resolved, seconds.
    pub const ONESTOP_RESOLUTION_SECONDS: &str = "iocd_onestop_resolution_seconds";
    /// Gauge `{level}`: meetings in progress.
    pub const VC_MEETINGS_ACTIVE: &str = "iocd_vc_meetings_active";
    /// Gauge: endpoints connected.
    pub const VC_ENDPOINTS_CONNECTED: &str = "iocd_vc_endpoints_connected";
    /// Gauge: expected endpoints missing.
    pub const VC_ENDPOINTS_MISSING: &str = "iocd_vc_endpoints_missing";
    /// Gauge: connected endpoints with poor quality.
    pub const VC_ENDPOINTS_POOR_QUALITY: &str = "iocd_vc_endpoints_poor_quality";
    /// Counter `{severity, category}`: security alerts.
    pub const SOC_ALERTS_TOTAL: &str = "iocd_soc_alerts_total";
    /// Gauge `{severity}`: open incidents.
    pub const SOC_INCIDENTS_OPEN: &str = "iocd_soc_incidents_open";
    /// Gauge `{severity}`: open, unacknowledged incidents.
    pub const SOC_INCIDENTS_UNACKNOWLEDGED: &str = "iocd_soc_incidents_unacknowledged";
    /// Histogram `{severity}`: opened to acknowledged, seconds.
    pub const SOC_INCIDENT_ACK_SECONDS: &str = "iocd_soc_incident_ack_seconds";
    /// Histogram `{severity}`: opened to resolved, seconds.
    pub const SOC_INCIDENT_RESOLVE_SECONDS: &str = "iocd_soc_incident_resolve_seconds";
    /// Gauge: monitored systems silent.
    pub const SOC_SYSTEMS_SILENT: &str = "iocd_soc_systems_silent";
    /// Gauge `{rule, severity}`: alerts firing. Not emitted yet (the alert engine adds it).
    pub const ALERTS_FIRING: &str = "iocd_alerts_firing";
    /// Gauge `{rule, severity}`: firing alerts nobody has acknowledged (nor silenced).
    pub const ALERTS_UNACKNOWLEDGED: &str = "iocd_alerts_unacknowledged";
    /// Gauge: dossiers held in memory (iocd-internal).
    pub const STATE_DOSSIERS: &str = "iocd_state_dossiers";
    /// Gauge: ids in the dedupe memory (iocd-internal).
    pub const DEDUPE_IDS: &str = "iocd_dedupe_ids";
    /// Counter `{kind}`: items evicted at the memory caps (iocd-internal).
    pub const STATE_EVICTED: &str = "iocd_state_evicted_total";
    /// Gauge `{kind}`: items held in memory per kind, beside `[state] max_*` (iocd-internal).
    pub const STATE_ITEMS: &str = "iocd_state_items";
    /// Gauge: tombstones of forgotten dossiers held (iocd-internal).
    pub const STATE_TOMBSTONES: &str = "iocd_state_tombstones";
    /// Counter `{type}`: events accepted for dossiers already forgotten (iocd-internal).
    pub const ONESTOP_FORGOTTEN_EVENTS: &str = "iocd_onestop_forgotten_events_total";
    /// Gauge `{agency, name, short_name, level, kind, parent}`, always 1: one series per unit
    /// of the agency directory, to join on `agency` for names (the `_info` convention).
    pub const AGENCY_INFO: &str = "iocd_agency_info";
    /// Gauge: agency codes seen since the start that the directory lacks (0 without one).
    pub const AGENCY_UNKNOWN: &str = "iocd_agency_unknown";
    /// Gauge `{agency, period, channel}`: dossiers received in the month or year to date.
    pub const ONESTOP_PERIOD_RECEIVED: &str = "iocd_onestop_period_received";
    /// Gauge `{agency, period, timing}`: dossiers resolved in the month or year to date.
    pub const ONESTOP_PERIOD_RESOLVED: &str = "iocd_onestop_period_resolved";
    /// Gauge `{agency, period}`: dossiers carried over into the month or year (tồn kỳ trước).
    pub const ONESTOP_PERIOD_CARRIED_OVER: &str = "iocd_onestop_period_carried_over";
    /// Gauge `{agency, period}`: iocd's estimate of the Decision 766 progress indicator.
    pub const ONESTOP_PROGRESS_ESTIMATE: &str = "iocd_onestop_progress_estimate_ratio";
    /// Gauge `{agency, period}`: online share at receipt, an estimate of 766 indicator 3.3.
    pub const ONESTOP_ONLINE_SHARE_ESTIMATE: &str = "iocd_onestop_online_share_estimate_ratio";
    /// Gauge `{level, period}`: the progress estimate of every agency of a directory level
    /// together (`all`: the province; `unknown`: codes the directory lacks).
    pub const ONESTOP_LEVEL_PROGRESS_ESTIMATE: &str = "iocd_onestop_level_progress_estimate_ratio";
    /// Gauge `{level, period}`: the online share of every agency of a level together.
    pub const ONESTOP_LEVEL_ONLINE_SHARE_ESTIMATE: &str =
        "iocd_onestop_level_online_share_estimate_ratio";
    /// Gauge `{sector}`: overdue dossiers by sector (lĩnh vực).
    pub const ONESTOP_SECTOR_OVERDUE: &str = "iocd_onestop_sector_dossiers_overdue";
    /// Gauge `{indicator, agency, period}`: iocd's estimate of a Decision 766 indicator.
    pub const INDICATOR_766_RATIO: &str = "iocd_766_indicator_ratio";
    /// Gauge `{indicator, level, period}`: the same for every agency of a level together,
    /// and for the province (`all`).
    pub const LEVEL_INDICATOR_766_RATIO: &str = "iocd_766_level_indicator_ratio";
    /// Gauge `{sector, period}`: dossiers resolved late in the month or year, by sector.
    pub const ONESTOP_SECTOR_RESOLVED_LATE: &str = "iocd_onestop_sector_resolved_late";
}

/// One metric family: name, help, type and label names.
#[derive(Clone, Copy, Debug)]
struct Spec {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const fn spec(
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
) -> Spec {
    Spec {
        name,
        help,
        kind,
        labels,
    }
}

const EVENTS: Spec = spec(
    names::EVENTS_TOTAL,
    "Events accepted, heartbeats included; duplicates and rejected payloads excluded.",
    COUNTER,
    &["source", "type"],
);
const DUPLICATES: Spec = spec(
    names::EVENTS_DUPLICATE_TOTAL,
    "Duplicate events ignored.",
    COUNTER,
    &["source"],
);
const REJECTED: Spec = spec(
    names::EVENTS_REJECTED_TOTAL,
    "Payloads rejected, by reason.",
    COUNTER,
    &["source", "reason"],
);
const LAST_EVENT: Spec = spec(
    names::SOURCE_LAST_EVENT_TIMESTAMP_SECONDS,
    "occurred_at of the latest accepted event of the source, as Unix time.",
    GAUGE,
    &["source"],
);
const DOSSIERS: Spec = spec(
    names::ONESTOP_DOSSIERS,
    "Dossiers now in each open status.",
    GAUGE,
    &["agency", "status"],
);
const OVERDUE: Spec = spec(
    names::ONESTOP_DOSSIERS_OVERDUE,
    "Dossiers in progress past their deadline now.",
    GAUGE,
    &["agency"],
);
const DUE_SOON: Spec = spec(
    names::ONESTOP_DOSSIERS_DUE_SOON,
    "Dossiers in progress, not overdue, due within the due-soon horizon now.",
    GAUGE,
    &["agency"],
);
const STALLED: Spec = spec(
    names::ONESTOP_DOSSIERS_STALLED,
    "Dossiers in progress without an event for longer than the stalled threshold now.",
    GAUGE,
    &["agency"],
);
const RECEIVED: Spec = spec(
    names::ONESTOP_RECEIVED_TOTAL,
    "Dossiers received.",
    COUNTER,
    &["agency", "channel"],
);
const RESOLVED: Spec = spec(
    names::ONESTOP_RESOLVED_TOTAL,
    "Dossiers resolved, by timing against their deadline (early, on_time, late).",
    COUNTER,
    &["agency", "timing"],
);
const RESOLUTION: Spec = spec(
    names::ONESTOP_RESOLUTION_SECONDS,
    "Time from a dossier's received event to its resolved event.",
    HISTOGRAM,
    &[],
);
const MEETINGS: Spec = spec(
    names::VC_MEETINGS_ACTIVE,
    "Meetings in progress, by level (unknown for meetings seen before their start).",
    GAUGE,
    &["level"],
);
const CONNECTED: Spec = spec(
    names::VC_ENDPOINTS_CONNECTED,
    "Endpoints connected now.",
    GAUGE,
    &[],
);
const MISSING: Spec = spec(
    names::VC_ENDPOINTS_MISSING,
    "Expected endpoints missing from their meeting now.",
    GAUGE,
    &[],
);
const POOR: Spec = spec(
    names::VC_ENDPOINTS_POOR_QUALITY,
    "Connected endpoints with poor link quality now.",
    GAUGE,
    &[],
);
const ALERTS: Spec = spec(
    names::SOC_ALERTS_TOTAL,
    "Security alerts.",
    COUNTER,
    &["severity", "category"],
);
const INCIDENTS_OPEN: Spec = spec(
    names::SOC_INCIDENTS_OPEN,
    "Open incidents.",
    GAUGE,
    &["severity"],
);
const INCIDENTS_UNACK: Spec = spec(
    names::SOC_INCIDENTS_UNACKNOWLEDGED,
    "Open incidents not yet acknowledged.",
    GAUGE,
    &["severity"],
);
const ACK: Spec = spec(
    names::SOC_INCIDENT_ACK_SECONDS,
    "Time from an incident's opening to its acknowledgement.",
    HISTOGRAM,
    &["severity"],
);
const RESOLVE: Spec = spec(
    names::SOC_INCIDENT_RESOLVE_SECONDS,
    "Time from an incident's opening to its resolution.",
    HISTOGRAM,
    &["severity"],
);
const SYSTEMS_SILENT: Spec = spec(
    names::SOC_SYSTEMS_SILENT,
    "Monitored systems silent now.",
    GAUGE,
    &[],
);
const STATE_DOSSIERS: Spec = spec(
    names::STATE_DOSSIERS,
    "Dossiers held in memory, open and retained closed.",
    GAUGE,
    &[],
);
const STATE_EVICTED: Spec = spec(
    names::STATE_EVICTED,
    "Items evicted at the memory caps ([state] max_*), by kind, since the process started.",
    COUNTER,
    &["kind"],
);
const DEDUPE_IDS: Spec = spec(
    names::DEDUPE_IDS,
    "Event ids held in the dedupe memory.",
    GAUGE,
    &[],
);
const ALERTS_FIRING: Spec = spec(
    names::ALERTS_FIRING,
    "Alerts of the built-in rules firing now.",
    GAUGE,
    &["rule", "severity"],
);
const ALERTS_UNACKNOWLEDGED: Spec = spec(
    names::ALERTS_UNACKNOWLEDGED,
    "Firing alerts that page: neither acknowledged by an operator nor silenced.",
    GAUGE,
    &["rule", "severity"],
);
const STATE_ITEMS: Spec = spec(
    names::STATE_ITEMS,
    "Items held in memory, by kind (open and retained ones), beside their caps ([state] max_*).",
    GAUGE,
    &["kind"],
);
const STATE_TOMBSTONES: Spec = spec(
    names::STATE_TOMBSTONES,
    "Tombstones of forgotten dossiers held (closed, past the retention), so that late events do not revive them.",
    GAUGE,
    &[],
);
const FORGOTTEN_EVENTS: Spec = spec(
    names::ONESTOP_FORGOTTEN_EVENTS,
    "Events accepted for dossiers already forgotten (closed past [state] closed_retention_hours), by type, since the process started; they change nothing. Ratings here mean the retention is shorter than the 766 indicators need.",
    COUNTER,
    &["type"],
);
const AGENCY_INFO: Spec = spec(
    names::AGENCY_INFO,
    "The agency directory: one series per unit, value 1, to join on agency for its names.",
    GAUGE,
    &["agency", "name", "short_name", "level", "kind", "parent"],
);
const AGENCY_UNKNOWN: Spec = spec(
    names::AGENCY_UNKNOWN,
    "Agency codes seen since the start that the agency directory lacks (0 without a directory).",
    GAUGE,
    &[],
);

const PERIOD_RECEIVED: Spec = spec(
    names::ONESTOP_PERIOD_RECEIVED,
    "Dossiers received in the local month or year to date (period), by channel (unknown: not carried).",
    GAUGE,
    &["agency", "period", "channel"],
);
const PERIOD_RESOLVED: Spec = spec(
    names::ONESTOP_PERIOD_RESOLVED,
    "Dossiers resolved in the local month or year to date, by timing against their deadline.",
    GAUGE,
    &["agency", "period", "timing"],
);
const PERIOD_CARRIED_OVER: Spec = spec(
    names::ONESTOP_PERIOD_CARRIED_OVER,
    "Dossiers received before the period and not closed before it began (carried over).",
    GAUGE,
    &["agency", "period"],
);
const PROGRESS_ESTIMATE: Spec = spec(
    names::ONESTOP_PROGRESS_ESTIMATE,
    "Estimate of the Decision 766 progress indicator: resolved early or on time plus open within time, over resolved plus open, in the period (not an official score).",
    GAUGE,
    &["agency", "period"],
);
const ONLINE_SHARE_ESTIMATE: Spec = spec(
    names::ONESTOP_ONLINE_SHARE_ESTIMATE,
    "Dossiers received online over dossiers received, in the period (estimate of Decision 766 indicator 3.3).",
    GAUGE,
    &["agency", "period"],
);
const LEVEL_PROGRESS_ESTIMATE: Spec = spec(
    names::ONESTOP_LEVEL_PROGRESS_ESTIMATE,
    "The progress estimate of all agencies of a directory level together (all: the province).",
    GAUGE,
    &["level", "period"],
);
const LEVEL_ONLINE_SHARE_ESTIMATE: Spec = spec(
    names::ONESTOP_LEVEL_ONLINE_SHARE_ESTIMATE,
    "The online share of all agencies of a directory level together (all: the province).",
    GAUGE,
    &["level", "period"],
);
const SECTOR_OVERDUE: Spec = spec(
    names::ONESTOP_SECTOR_OVERDUE,
    "Dossiers in progress past their deadline now, by sector (the 40 sectors with most, then other).",
    GAUGE,
    &["sector"],
);
const SECTOR_RESOLVED_LATE: Spec = spec(
    names::ONESTOP_SECTOR_RESOLVED_LATE,
    "Dossiers resolved late in the local month or year to date, by sector.",
    GAUGE,
    &["sector", "period"],
);

const INDICATOR_766: Spec = spec(
    names::INDICATOR_766_RATIO,
    "Estimate of a Decision 766 indicator (2.1 progress, 3.3 online share, 3.6 online payment, 4.1 electronic results, 4.2 digitisation, 4.3 data reuse, 5.4 satisfaction) in the local week, month or year to date (not an official score; docs/scorecard.md).",
    GAUGE,
    &["indicator", "agency", "period"],
);

const LEVEL_INDICATOR_766: Spec = spec(
    names::LEVEL_INDICATOR_766_RATIO,
    "Estimate of a Decision 766 indicator for every agency of a directory level together (all: the province), in the local week, month or year to date.",
    GAUGE,
    &["indicator", "level", "period"],
);

/// Every family [`DomainCollector`] emits, in emission order.
const SPECS: [Spec; 42] = [
    EVENTS,
    DUPLICATES,
    REJECTED,
    LAST_EVENT,
    DOSSIERS,
    OVERDUE,
    DUE_SOON,
    STALLED,
    RECEIVED,
    RESOLVED,
    RESOLUTION,
    MEETINGS,
    CONNECTED,
    MISSING,
    POOR,
    ALERTS,
    INCIDENTS_OPEN,
    INCIDENTS_UNACK,
    ACK,
    RESOLVE,
    SYSTEMS_SILENT,
    STATE_DOSSIERS,
    DEDUPE_IDS,
    STATE_EVICTED,
    STATE_ITEMS,
    STATE_TOMBSTONES,
    FORGOTTEN_EVENTS,
    ALERTS_FIRING,
    ALERTS_UNACKNOWLEDGED,
    AGENCY_INFO,
    AGENCY_UNKNOWN,
    PERIOD_RECEIVED,
    PERIOD_RESOLVED,
    PERIOD_CARRIED_OVER,
    PROGRESS_ESTIMATE,
    ONLINE_SHARE_ESTIMATE,
    LEVEL_PROGRESS_ESTIMATE,
    LEVEL_ONLINE_SHARE_ESTIMATE,
    SECTOR_OVERDUE,
    SECTOR_RESOLVED_LATE,
    INDICATOR_766,
    LEVEL_INDICATOR_766,
];

impl Spec {
    fn desc(&self) -> prometheus::Result<Desc> {
        let labels = self.labels.iter().map(|l| (*l).to_owned()).collect();
        Desc::new(
            self.name.to_owned(),
            self.help.to_owned(),
            labels,
            HashMap::new(),
        )
    }

    fn family(&self, metrics: Vec<proto::Metric>) -> MetricFamily {
        let mut mf = MetricFamily::default();
        mf.set_name(self.name.to_owned());
        mf.set_help(self.help.to_owned());
        mf.set_field_type(self.kind);
        mf.set_metric(metrics);
        mf
    }

    /// A series without a value yet, with `values` for this family's label names.
    fn series(&self, values: &[&str]) -> proto::Metric {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "label values of {}",
            self.name
        );
        let pairs = self
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = proto::LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect();
        proto::Metric::from_label(pairs)
    }

    /// A counter or gauge series, according to this family's type.
    fn sample(&self, values: &[&str], value: f64) -> proto::Metric {
        let mut m = self.series(values);
        if self.kind == COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            debug_assert_eq!(self.kind, GAUGE, "{} is not a counter or gauge", self.name);
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        m
    }

    /// A histogram series, turning the state's per-bucket counts into cumulative ones.
    /// The `+Inf` bucket is written by the encoder from the sample count.
    fn histogram(&self, values: &[&str], h: &Histogram) -> proto::Metric {
        let mut cumulative = 0;
        let buckets = h
            .bounds
            .iter()
            .zip(&h.counts)
            .map(|(&bound, &n)| {
                cumulative += n;
                let mut b = proto::Bucket::default();
                b.set_upper_bound(bound);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        let mut ph = proto::Histogram::default();
        ph.set_bucket(buckets);
        ph.set_sample_count(h.count);
        ph.set_sample_sum(h.sum);
        let mut m = self.series(values);
        m.set_histogram(ph);
        m
    }

    /// A family of one unlabelled counter or gauge.
    fn single(&self, value: u64) -> MetricFamily {
        self.family(vec![self.sample(&[], num(value))])
    }

    /// A family with one series per severity.
    fn per_severity(&self, values: [u64; 4]) -> MetricFamily {
        let series = Severity::ALL
            .iter()
            .zip(values)
            .map(|(s, v)| self.sample(&[s.as_str()], num(v)));
        self.family(series.collect())
    }

    /// A family of one histogram per severity.
    fn histograms_per_severity(&self, hs: &[Histogram; 4]) -> MetricFamily {
        let series = Severity::ALL
            .iter()
            .zip(hs)
            .map(|(s, h)| self.histogram(&[s.as_str()], h));
        self.family(series.collect())
    }
}

/// A count as a sample value (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
const fn num(v: u64) -> f64 {
    v as f64
}

/// Builds the docs/contract.md §5.3 families from the pipeline's latest [`View`] at each scrape.
#[derive(Debug)]
pub struct DomainCollector {
    views: watch::Receiver<Arc<View>>,
    descs: Vec<Desc>,
}

impl DomainCollector {
    /// A collector over the views published on `views`.
    ///
    /// # Errors
    /// Never in practice: only if a constant name or help string were invalid.
    pub fn new(views: watch::Receiver<Arc<View>>) -> prometheus::Result<Self> {
        let descs = SPECS
            .iter()
            .map(Spec::desc)
            .collect::<prometheus::Result<_>>()?;
        Ok(Self { views, descs })
    }
}

impl Collector for DomainCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Clone the `Arc` so the channel's lock is released before the work starts.
        let view = Arc::clone(&self.views.borrow());
        families(&view)
    }
}

/// Registers a [`DomainCollector`] over `views` in `registry`.
///
/// # Errors
/// When a family of the same name is already registered there.
pub fn register(registry: &Registry, views: watch::Receiver<Arc<View>>) -> prometheus::Result<()> {
    registry.register(Box::new(DomainCollector::new(views)?))
}

/// Gathers every collector of `registry` (domain and self-metrics) in the text format that
/// `GET /metrics` serves with [`CONTENT_TYPE`].
///
/// # Errors
/// When a family cannot be encoded (none of ours can fail).
pub fn encode(registry: &Registry) -> Result<String, prometheus::Error> {
    TextEncoder::new().encode_to_string(&registry.gather())
}

/// Every family of [`SPECS`], in the same order, from one view.
fn families(view: &View) -> Vec<MetricFamily> {
    let c = &view.counters;
    vec![
        events(c),
        duplicates(c),
        rejected(c),
        last_event(view),
        dossiers(view),
        per_agency(&OVERDUE, view, |g| g.overdue),
        per_agency(&DUE_SOON, view, |g| g.due_soon),
        per_agency(&STALLED, view, |g| g.stalled),
        agency_counter(
            &RECEIVED,
            &view.agency_labels,
            &c.received,
            Channel::ALL.map(Channel::as_str),
        ),
        agency_counter(
            &RESOLVED,
            &view.agency_labels,
            &c.resolved,
            Timing::ALL.map(Timing::as_str),
        ),
        RESOLUTION.family(vec![RESOLUTION.histogram(&[], &c.resolution)]),
        meetings(view),
        CONNECTED.single(view.vc.endpoints_connected),
        MISSING.single(view.vc.endpoints_missing),
        POOR.single(view.vc.endpoints_poor_quality),
        soc_alerts(c),
        INCIDENTS_OPEN.per_severity(view.soc.incidents_open),
        INCIDENTS_UNACK.per_severity(view.soc.incidents_unacknowledged),
        ACK.histograms_per_severity(&c.incident_ack),
        RESOLVE.histograms_per_severity(&c.incident_resolve),
        SYSTEMS_SILENT.single(view.soc.systems_silent),
        STATE_DOSSIERS.single(view.dossiers_held),
        DEDUPE_IDS.single(view.dedupe_ids),
        evicted(view),
        items_held(view),
        STATE_TOMBSTONES.single(view.tombstones),
        forgotten_events(view),
        alerts_firing(view),
        alerts_unacknowledged(view),
        agency_info(view),
        AGENCY_UNKNOWN.single(view.agencies_unknown),
    ]
    .into_iter()
    .chain(period_families(view))
    .chain(indicator_families(view))
    .collect()
}

/// The Decision 766 indicators with a value, per agency label, per level and for the
/// province, this week, month and year.
fn indicator_families(view: &View) -> [MetricFamily; 2] {
    use crate::derive::scorecard::{Counts, INDICATORS, ratio};
    const PERIODS: [&str; 3] = ["week", "month", "year"];
    let samples = |spec: &'static Spec, label: &str, counts: &[Counts; 3]| {
        let mut out = Vec::new();
        for (period, c) in PERIODS.iter().zip(counts) {
            for (ind, f) in INDICATORS.iter().zip(c.fractions()) {
                if let Some(v) = ratio(f) {
                    out.push(spec.sample(&[ind.id, label, period], v));
                }
            }
        }
        out
    };
    let mut agencies = Vec::new();
    let mut levels: std::collections::BTreeMap<&str, [Counts; 3]> =
        std::collections::BTreeMap::new();
    for (label, counts) in view.agency_labels.iter().zip(&view.agency_scores) {
        agencies.extend(samples(&INDICATOR_766, label, counts));
        let level = view
            .directory
            .get(label)
            .map_or("unknown", |a| a.level.as_str());
        for key in [level, "all"] {
            let sum = levels.entry(key).or_default();
            for (s, c) in sum.iter_mut().zip(counts) {
                s.add(c);
            }
        }
    }
    let by_level = levels
        .iter()
        .flat_map(|(level, counts)| samples(&LEVEL_INDICATOR_766, level, counts))
        .collect();
    [
        INDICATOR_766.family(agencies),
        LEVEL_INDICATOR_766.family(by_level),
    ]
}

/// The month and year to date, per agency label (those with anything to show), per level
/// and by sector.
fn period_families(view: &View) -> [MetricFamily; 9] {
    let periods = ["month", "year"];
    let tables: Vec<(&str, [crate::derive::periods::Table; 2])> = view
        .agency_labels
        .iter()
        .zip(&view.agencies)
        .zip(&view.agency_periods)
        .filter(|((_, g), p)| **g != AgencyGauges::default() || **p != AgencyPeriods::default())
        .map(|((label, g), p)| {
            let f = crate::derive::periods::figures(p, g);
            (label.as_str(), [f.month, f.year])
        })
        .collect();
    let each = |f: &dyn Fn(&str, &str, &crate::derive::periods::Table) -> Vec<proto::Metric>| {
        tables
            .iter()
            .flat_map(|(agency, t)| {
                periods
                    .iter()
                    .zip(t)
                    .flat_map(|(period, t)| f(agency, period, t))
            })
            .collect::<Vec<_>>()
    };
    let received = each(&|a, p, t| {
        let r = &t.received;
        [
            ("online", r.online),
            ("direct", r.direct),
            ("postal", r.postal),
            ("unknown", r.unknown),
        ]
        .iter()
        .map(|(c, n)| PERIOD_RECEIVED.sample(&[a, p, c], num(*n)))
        .collect()
    });
    let resolved = each(&|a, p, t| {
        let r = &t.resolved;
        Timing::ALL
            .iter()
            .zip([r.early, r.on_time, r.late])
            .map(|(timing, n)| PERIOD_RESOLVED.sample(&[a, p, timing.as_str()], num(n)))
            .collect()
    });
    let carried = each(&|a, p, t| vec![PERIOD_CARRIED_OVER.sample(&[a, p], num(t.carried_over))]);
    let ratio = |spec: &'static Spec, r: fn(&crate::derive::periods::Table) -> Option<f64>| {
        each(&move |a, p, t| r(t).map(|v| spec.sample(&[a, p], v)).into_iter().collect())
    };
    let progress = ratio(&PROGRESS_ESTIMATE, |t| t.progress_estimate);
    let online = ratio(&ONLINE_SHARE_ESTIMATE, |t| t.online_share_estimate);
    let [level_progress, level_online] = level_families(view);
    let sector_overdue = view
        .sectors
        .iter()
        .map(|s| SECTOR_OVERDUE.sample(&[&s.sector], num(s.overdue)))
        .collect();
    let sector_late = view
        .sectors
        .iter()
        .flat_map(|s| {
            [("month", s.late_month), ("year", s.late_year)]
                .map(|(p, n)| SECTOR_RESOLVED_LATE.sample(&[&s.sector, p], num(n)))
        })
        .collect();
    [
        PERIOD_RECEIVED.family(received),
        PERIOD_RESOLVED.family(resolved),
        PERIOD_CARRIED_OVER.family(carried),
        PROGRESS_ESTIMATE.family(progress),
        ONLINE_SHARE_ESTIMATE.family(online),
        level_progress,
        level_online,
        SECTOR_OVERDUE.family(sector_overdue),
        SECTOR_RESOLVED_LATE.family(sector_late),
    ]
}

/// The progress and online-share estimates of every directory level together, and of the
/// province (`all`).
fn level_families(view: &View) -> [MetricFamily; 2] {
    let periods = ["month", "year"];
    let mut levels: std::collections::BTreeMap<&str, (AgencyGauges, AgencyPeriods)> =
        std::collections::BTreeMap::new();
    for ((label, g), p) in view
        .agency_labels
        .iter()
        .zip(&view.agencies)
        .zip(&view.agency_periods)
    {
        let level = view
            .directory
            .get(label)
            .map_or("unknown", |a| a.level.as_str());
        for key in [level, "all"] {
            let (lg, lp) = levels.entry(key).or_default();
            lg.add(g);
            lp.add(p);
        }
    }
    let mut level_progress = Vec::new();
    let mut level_online = Vec::new();
    for (level, (g, p)) in &levels {
        let f = crate::derive::periods::figures(p, g);
        for (period, t) in periods.iter().zip([f.month, f.year]) {
            if let Some(v) = t.progress_estimate {
                level_progress.push(LEVEL_PROGRESS_ESTIMATE.sample(&[level, period], v));
            }
            if let Some(v) = t.online_share_estimate {
                level_online.push(LEVEL_ONLINE_SHARE_ESTIMATE.sample(&[level, period], v));
            }
        }
    }
    [
        LEVEL_PROGRESS_ESTIMATE.family(level_progress),
        LEVEL_ONLINE_SHARE_ESTIMATE.family(level_online),
    ]
}

fn items_held(view: &View) -> MetricFamily {
    let series = Kind::ALL
        .iter()
        .zip(view.items_held)
        .map(|(k, n)| STATE_ITEMS.sample(&[k.as_str()], num(n)));
    STATE_ITEMS.family(series.collect())
}

fn agency_info(view: &View) -> MetricFamily {
    let series = view.directory.agencies().iter().map(|a| {
        AGENCY_INFO.sample(
            &[
                &a.code,
                &a.name,
                &a.short_name,
                a.level.as_str(),
                a.kind.as_str(),
                a.parent.as_deref().unwrap_or(""),
            ],
            1.0,
        )
    });
    AGENCY_INFO.family(series.collect())
}

fn evicted(view: &View) -> MetricFamily {
    let series = Kind::ALL
        .iter()
        .zip(view.evictions.count)
        .map(|(k, n)| STATE_EVICTED.sample(&[k.as_str()], num(n)));
    STATE_EVICTED.family(series.collect())
}

fn forgotten_events(view: &View) -> MetricFamily {
    let series = DossierKind::ALL
        .iter()
        .zip(view.forgotten_hits.by_kind)
        .map(|(k, n)| FORGOTTEN_EVENTS.sample(&[k.as_str()], num(n)));
    FORGOTTEN_EVENTS.family(series.collect())
}

/// One series per enabled rule and its severity, 0 when nothing fires.
fn alerts_firing(view: &View) -> MetricFamily {
    let series = view
        .alerts_firing
        .iter()
        .map(|(rule, severity, n)| ALERTS_FIRING.sample(&[rule, severity], num(*n)));
    ALERTS_FIRING.family(series.collect())
}

/// As [`alerts_firing`], counting only the alerts that page.
fn alerts_unacknowledged(view: &View) -> MetricFamily {
    let series = view
        .alerts_unacknowledged
        .iter()
        .map(|(rule, severity, n)| ALERTS_UNACKNOWLEDGED.sample(&[rule, severity], num(*n)));
    ALERTS_UNACKNOWLEDGED.family(series.collect())
}

fn duplicates(c: &Counters) -> MetricFamily {
    let series = Source::ALL
        .iter()
        .map(|&s| DUPLICATES.sample(&[s.as_str()], num(c.duplicates[s.index()])));
    DUPLICATES.family(series.collect())
}

fn events(c: &Counters) -> MetricFamily {
    let series = Source::ALL.iter().flat_map(|&s| {
        let counts = &c.events[s.index()];
        type_names(s)
            .iter()
            .zip(counts)
            .map(move |(t, &n)| EVENTS.sample(&[s.as_str(), t], num(n)))
    });
    EVENTS.family(series.collect())
}

fn rejected(c: &Counters) -> MetricFamily {
    let series = Source::ALL.iter().flat_map(|&s| {
        let counts = c.rejected[s.index()];
        Reason::ALL
            .iter()
            .map(move |r| REJECTED.sample(&[s.as_str(), r.as_str()], num(counts[r.index()])))
    });
    REJECTED.family(series.collect())
}

/// Only sources that have sent an event: a missing timestamp is no timestamp, not 1970.
fn last_event(view: &View) -> MetricFamily {
    let series = Source::ALL.iter().filter_map(|&s| {
        let at = view.sources[s.index()].last_event_at?;
        Some(LAST_EVENT.sample(&[s.as_str()], at.as_secs_f64()))
    });
    LAST_EVENT.family(series.collect())
}

/// Agency labels with at least one open dossier, and their gauges.
fn active_agencies(view: &View) -> impl Iterator<Item = (&str, &AgencyGauges)> {
    let idle = AgencyGauges::default();
    view.agency_labels
        .iter()
        .zip(&view.agencies)
        .filter(move |(_, g)| **g != idle)
        .map(|(label, g)| (label.as_str(), g))
}

fn dossiers(view: &View) -> MetricFamily {
    let series = active_agencies(view).flat_map(|(agency, g)| {
        DossierStatus::OPEN
            .iter()
            .zip(g.open)
            .map(move |(status, n)| DOSSIERS.sample(&[agency, status.as_str()], num(n)))
    });
    DOSSIERS.family(series.collect())
}

fn per_agency(spec: &Spec, view: &View, value: impl Fn(&AgencyGauges) -> u64) -> MetricFamily {
    let series = active_agencies(view).map(|(agency, g)| spec.sample(&[agency], num(value(g))));
    spec.family(series.collect())
}

/// A per-agency counter: every channel (or timing) of each agency that has counted
/// something, zeros included, so `increase()` sees a series from 0 rather than missing the
/// first count of a new combination.
fn agency_counter(
    spec: &Spec,
    agencies: &[String],
    rows: &[[u64; 3]],
    names: [&str; 3],
) -> MetricFamily {
    let series = agencies
        .iter()
        .zip(rows)
        .filter(|(_, row)| row.iter().any(|&n| n > 0))
        .flat_map(|(agency, row)| {
            names
                .iter()
                .zip(row)
                .map(move |(name, &n)| spec.sample(&[agency, name], num(n)))
        });
    spec.family(series.collect())
}

fn meetings(view: &View) -> MetricFamily {
    let series = Level::MEETING
        .iter()
        .zip(view.vc.meetings_active)
        .map(|(level, n)| MEETINGS.sample(&[level.as_str()], num(n)));
    MEETINGS.family(series.collect())
}

fn soc_alerts(c: &Counters) -> MetricFamily {
    let series = Severity::ALL
        .iter()
        .zip(&c.soc_alerts)
        .flat_map(|(sev, row)| {
            Category::ALL
                .iter()
                .zip(row)
                .map(move |(cat, &n)| ALERTS.sample(&[sev.as_str(), cat.as_str()], num(n)))
        });
    ALERTS.family(series.collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;
    use crate::decode::{DecodeLimits, decode};
    use crate::state::{Input, Outcome, Params, State};
    use crate::time::{Ts, parse_rfc3339};

    const NOW: &str = "2026-11-24T10:00:00+07:00";

    fn ts(s: &str) -> Ts {
        parse_rfc3339(s).expect("test timestamp is valid")
    }

    fn apply(state: &mut State, source: Source, json: &str) -> Outcome {
        let now = ts(NOW);
        let ev = decode(source, json.as_bytes(), now, &DecodeLimits::default())
            .expect("test event is valid");
        state.apply(&Input::Event(ev), now)
    }

    fn received(state: &mut State, id: &str, agency: &str, channel: &str, at: &str, due: &str) {
        let json = format!(
            r#"{{"event_id":"r-{id}","type":"received","occurred_at":"{at}","dossier_id":"{id}",
                "agency":"{agency}","procedure":"1.001","channel":"{channel}","due_at":{due}}}"#
        );
        assert_eq!(apply(state, Source::Onestop, &json), Outcome::Applied);
    }

    /// A few events of each source, a duplicate and a rejection.
    fn sample_state() -> State {
        let mut s = State::new(Params::default(), ts("2026-11-24T07:00:00+07:00"));
        received(
            &mut s,
            "d1",
            "A",
            "online",
            "2026-11-24T08:00:00+07:00",
            r#""2026-11-28T17:00:00+07:00""#,
        );
        received(
            &mut s,
            "d2",
            "A",
            "direct",
            "2026-11-24T08:10:00+07:00",
            r#""2026-11-24T09:00:00+07:00""#,
        );
        received(
            &mut s,
            "d4",
            "B",
            "postal",
            "2026-11-24T08:00:00+07:00",
            "null",
        );
        let os = [
            r#"{"event_id":"s-d3","type":"submitted","occurred_at":"2026-11-24T08:20:00+07:00","dossier_id":"d3",
                "agency":"B","procedure":"1.002","channel":"online"}"#,
            r#"{"event_id":"x-d4","type":"resolved","occurred_at":"2026-11-24T09:00:00+07:00","dossier_id":"d4",
                "due_at":null}"#,
            r#"{"event_id":"hb-1","type":"heartbeat","occurred_at":"2026-11-24T09:15:00+07:00"}"#,
        ];
        let vc = [
            r#"{"event_id":"v1","type":"meeting_started","occurred_at":"2026-11-24T09:00:00+07:00","meeting_id":"M1",
                "title":"Giao ban","level":"province"}"#,
            r#"{"event_id":"v2","type":"endpoint_joined","occurred_at":"2026-11-24T09:10:00+07:00","meeting_id":"M2",
                "endpoint_id":"E1"}"#,
        ];
        let soc = [
            r#"{"event_id":"a1","type":"alert","occurred_at":"2026-11-24T09:00:00+07:00","alert_id":"AL1",
                "system_id":"sys1","severity":"high","category":"intrusion"}"#,
            r#"{"event_id":"i1","type":"incident_opened","occurred_at":"2026-11-24T09:00:00+07:00","incident_id":"I1",
                "system_id":"sys2","severity":"critical"}"#,
            r#"{"event_id":"i2","type":"incident_acknowledged","occurred_at":"2026-11-24T09:05:00+07:00",
                "incident_id":"I1"}"#,
        ];
        for (source, events) in [
            (Source::Onestop, &os[..]),
            (Source::Vc, &vc[..]),
            (Source::Soc, &soc[..]),
        ] {
            for json in events {
                assert_eq!(apply(&mut s, source, json), Outcome::Applied, "{json}");
            }
        }
        assert_eq!(apply(&mut s, Source::Soc, soc[0]), Outcome::Duplicate);
        s.apply(
            &Input::Rejected {
                source: Source::Vc,
                reason: Reason::InvalidJson,
            },
            ts(NOW),
        );
        s
    }

    /// Registers a collector over `view` in a fresh registry and encodes it.
    fn scrape(view: View) -> String {
        let (_tx, views) = watch::channel(Arc::new(view));
        let registry = Registry::new();
        register(&registry, views).expect("registers in a fresh registry");
        encode(&registry).expect("encodes")
    }

    fn assert_lines(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(
                text.lines().any(|l| l == *line),
                "missing line {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn every_contract_series_is_exported_with_its_labels_and_value() {
        let text = scrape(sample_state().view(ts(NOW)));
        let vc_last = ts("2026-11-24T09:10:00+07:00").as_secs_f64();
        assert_lines(
            &text,
            &[
                "# TYPE iocd_events_total counter",
                r#"iocd_events_total{source="onestop",type="received"} 3"#,
                r#"iocd_events_total{source="onestop",type="heartbeat"} 1"#,
                r#"iocd_events_total{source="vc",type="endpoint_stats"} 0"#,
                r#"iocd_events_total{source="soc",type="alert"} 1"#,
                r#"iocd_events_duplicate_total{source="soc"} 1"#,
                r#"iocd_events_duplicate_total{source="vc"} 0"#,
                r#"iocd_events_rejected_total{source="vc",reason="invalid_json"} 1"#,
                r#"iocd_events_rejected_total{source="onestop",reason="future_timestamp"} 0"#,
                "# TYPE iocd_source_last_event_timestamp_seconds gauge",
                &format!(r#"iocd_source_last_event_timestamp_seconds{{source="vc"}} {vc_last}"#),
                r#"iocd_onestop_dossiers{agency="A",status="in_progress"} 2"#,
                r#"iocd_onestop_dossiers{agency="A",status="submitted"} 0"#,
                r#"iocd_onestop_dossiers{agency="B",status="submitted"} 1"#,
                r#"iocd_onestop_dossiers_overdue{agency="A"} 1"#,
                r#"iocd_onestop_dossiers_overdue{agency="B"} 0"#,
                r#"iocd_onestop_dossiers_due_soon{agency="A"} 0"#,
                r#"iocd_onestop_dossiers_stalled{agency="A"} 0"#,
                r#"iocd_onestop_received_total{agency="A",channel="online"} 1"#,
                r#"iocd_onestop_received_total{agency="A",channel="direct"} 1"#,
                r#"iocd_onestop_received_total{agency="B",channel="postal"} 1"#,
                r#"iocd_onestop_resolved_total{agency="B",timing="on_time"} 1"#,
                "# TYPE iocd_onestop_resolution_seconds histogram",
                r#"iocd_onestop_resolution_seconds_bucket{le="3600"} 1"#,
                r#"iocd_onestop_resolution_seconds_bucket{le="14400"} 1"#,
                r#"iocd_onestop_resolution_seconds_bucket{le="+Inf"} 1"#,
                "iocd_onestop_resolution_seconds_sum 3600",
                "iocd_onestop_resolution_seconds_count 1",
                "# TYPE iocd_vc_meetings_active gauge",
                r#"iocd_vc_meetings_active{level="central"} 0"#,
                r#"iocd_vc_meetings_active{level="province"} 1"#,
                r#"iocd_vc_meetings_active{level="unknown"} 1"#,
                "iocd_vc_endpoints_connected 1",
                "iocd_vc_endpoints_missing 0",
                "iocd_vc_endpoints_poor_quality 0",
                r#"iocd_soc_alerts_total{severity="high",category="intrusion"} 1"#,
                r#"iocd_soc_alerts_total{severity="low",category="other"} 0"#,
                r#"iocd_soc_incidents_open{severity="critical"} 1"#,
                r#"iocd_soc_incidents_open{severity="low"} 0"#,
                r#"iocd_soc_incidents_unacknowledged{severity="critical"} 0"#,
                r#"iocd_soc_incident_ack_seconds_bucket{severity="critical",le="60"} 0"#,
                r#"iocd_soc_incident_ack_seconds_bucket{severity="critical",le="300"} 1"#,
                r#"iocd_soc_incident_ack_seconds_bucket{severity="critical",le="+Inf"} 1"#,
                r#"iocd_soc_incident_ack_seconds_sum{severity="critical"} 300"#,
                r#"iocd_soc_incident_ack_seconds_count{severity="low"} 0"#,
                r#"iocd_soc_incident_resolve_seconds_count{severity="critical"} 0"#,
                "iocd_soc_systems_silent 1",
                "iocd_state_dossiers 4",
                "iocd_dedupe_ids 11",
            ],
        );
        // No timestamp before a source's first event; no empty agency rows; every channel of
        // an agency that received something, zeros included (so `increase()` sees them start).
        assert!(text.contains(r#"iocd_source_last_event_timestamp_seconds{source="onestop"}"#));
        assert!(!text.contains(r#"{agency="unknown""#), "{text}");
        assert!(
            text.contains(r#"iocd_onestop_received_total{agency="A",channel="postal"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn agencies_past_the_label_limit_are_folded_into_other() {
        let params = Params {
            agency_label_limit: 2,
            ..Params::default()
        };
        let mut s = State::new(params, ts("2026-11-24T07:00:00+07:00"));
        for (id, agency) in [("d1", "A"), ("d2", "B"), ("d3", "C")] {
            received(
                &mut s,
                id,
                agency,
                "online",
                "2026-11-24T08:00:00+07:00",
                "null",
            );
        }
        let text = scrape(s.view(ts(NOW)));
        assert_lines(
            &text,
            &[
                r#"iocd_onestop_received_total{agency="A",channel="online"} 1"#,
                r#"iocd_onestop_received_total{agency="B",channel="online"} 1"#,
                r#"iocd_onestop_received_total{agency="other",channel="online"} 1"#,
                r#"iocd_onestop_dossiers{agency="other",status="in_progress"} 1"#,
            ],
        );
        assert!(!text.contains(r#"agency="C""#), "{text}");
    }

    #[test]
    fn an_empty_view_still_exports_every_fixed_series() {
        let text = scrape(View::default());
        assert_lines(
            &text,
            &[
                r#"iocd_events_total{source="soc",type="system_heartbeat"} 0"#,
                r#"iocd_vc_meetings_active{level="unknown"} 0"#,
                r#"iocd_onestop_resolution_seconds_bucket{le="+Inf"} 0"#,
                "iocd_state_dossiers 0",
            ],
        );
        assert!(
            !text.contains(names::SOURCE_LAST_EVENT_TIMESTAMP_SECONDS),
            "{text}"
        );
        assert!(!text.contains(names::ONESTOP_DOSSIERS), "{text}");
    }

    #[test]
    fn a_scrape_reads_the_latest_published_view() {
        let (tx, views) = watch::channel(Arc::new(View::default()));
        let registry = Registry::new();
        register(&registry, views).expect("registers in a fresh registry");
        assert_lines(
            &encode(&registry).expect("encodes"),
            &["iocd_state_dossiers 0"],
        );
        tx.send(Arc::new(sample_state().view(ts(NOW))))
            .expect("receiver alive");
        assert_lines(
            &encode(&registry).expect("encodes"),
            &["iocd_state_dossiers 4"],
        );
    }

    #[test]
    fn descriptors_match_the_collected_families_one_to_one() {
        let (_tx, views) = watch::channel(Arc::new(View::default()));
        let collector = DomainCollector::new(views).expect("constant descriptors are valid");
        let declared: Vec<_> = collector.desc().iter().map(|d| d.fq_name.clone()).collect();
        let collected: Vec<_> = collector
            .collect()
            .iter()
            .map(|mf| mf.name().to_owned())
            .collect();
        assert_eq!(declared, collected);
        for (desc, mf) in collector.desc().iter().zip(collector.collect()) {
            let kind = mf.get_field_type();
            assert_eq!(
                desc.fq_name.ends_with("_total"),
                kind == COUNTER,
                "{}",
                desc.fq_name
            );
        }
    }

    #[test]
    fn the_domain_collector_sits_beside_the_self_metrics() {
        let metrics = crate::telemetry::SelfMetrics::new();
        let (_tx, views) = watch::channel(Arc::new(View::default()));
        register(&metrics.registry, views).expect("no name clashes with the self-metrics");
        let text = encode(&metrics.registry).expect("encodes");
        assert_lines(&text, &["iocd_mqtt_connected 0", "iocd_state_dossiers 0"]);
    }

    /// `promtool check metrics` accepts the whole output without a lint problem. Runs when
    /// promtool is installed; on CI (`CI` set) a missing promtool is a failure.
    #[test]
    fn promtool_accepts_the_exposition() {
        let Some(promtool) = find_promtool() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is required on CI (Debian package prometheus)"
            );
            eprintln!("note: promtool not on PATH; exposition not checked by promtool");
            return;
        };
        for text in [
            scrape(sample_state().view(ts(NOW))),
            scrape(View::default()),
        ] {
            let mut child = Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool starts");
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(text.as_bytes())
                .expect("promtool reads");
            let out = child.wait_with_output().expect("promtool finishes");
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && report.trim().is_empty(),
                "promtool: {report}\n{text}"
            );
        }
    }

    fn find_promtool() -> Option<std::path::PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    }
}

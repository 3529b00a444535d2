//! A read-only picture of the state at one instant: every gauge and figure that depends on
//! "now", computed in one pass, plus a copy of the counters with agencies folded into their
//! Prometheus labels. Built once per tick, shared (`Arc<View>`) by `/metrics` and the
//! snapshot, so nothing is computed per reader. `State::view` is defined here, with the
//! derive stage, not in `state`.

use std::collections::HashMap;

use serde::Serialize;

use crate::decode::{Severity, Source};
use crate::state::counters::Counters;
use crate::state::vc::VcSummary;
use crate::state::{State, intern};
use crate::time::Ts;

/// Overdue and stalled dossiers per interned agency, as `(due_at or latest event, id)`:
/// what the dossier alert rules group, collected in the view's pass.
#[derive(Debug, Default)]
pub struct DossierGroups<'s> {
    /// Overdue dossiers: `(due_at, id)`.
    pub overdue: HashMap<u32, Vec<(Ts, &'s str)>>,
    /// Stalled dossiers: `(latest event, id)`.
    pub stalled: HashMap<u32, Vec<(Ts, &'s str)>>,
}

/// Dossier gauges of one agency label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AgencyGauges {
    /// Dossiers in each open status: submitted, in progress, waiting for the citizen, paused.
    pub open: [u64; 4],
    /// In progress and past `due_at`.
    pub overdue: u64,
    /// In progress, not overdue, due within the due-soon horizon.
    pub due_soon: u64,
    /// In progress, no event for longer than the stalled threshold.
    pub stalled: u64,
}

impl AgencyGauges {
    fn add(&mut self, other: &AgencyGauges) {
        for (a, b) in self.open.iter_mut().zip(other.open) {
            *a += b;
        }
        self.overdue += other.overdue;
        self.due_soon += other.due_soon;
        self.stalled += other.stalled;
    }
}

/// One-stop figures of the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OnestopSummary {
    /// Received today (local day).
    pub today_received: u64,
    /// Resolved today.
    pub today_resolved: u64,
    /// Online share of today's received; `None` when none.
    pub today_online_ratio: Option<f64>,
    /// All agencies together.
    pub totals: AgencyGauges,
    /// Early plus on time over resolved, last 30 × 24 h.
    pub on_time_ratio_30d: Option<f64>,
    /// Received per local minute, the last 60 minutes, oldest first.
    pub received_per_minute: Vec<u32>,
    /// Resolved per local minute, the last 60 minutes, oldest first.
    pub resolved_per_minute: Vec<u32>,
}

/// SOC figures of the snapshot, arrays by severity (low, medium, high, critical).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SocSummary {
    /// Alerts whose `occurred_at` is in the last 60 local minutes.
    pub alerts_60m: [u64; 4],
    /// Open incidents.
    pub incidents_open: [u64; 4],
    /// Open, unacknowledged incidents.
    pub incidents_unacknowledged: [u64; 4],
    /// Monitored systems silent now.
    pub systems_silent: u64,
}

/// A source's health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    /// `occurred_at` of its latest accepted event.
    pub last_event_at: Option<Ts>,
    /// Silent now (docs/contract.md §2.7).
    pub silent: bool,
}

/// Everything the outputs show, at one instant.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The instant it describes.
    pub at: Ts,
    /// Agency label values: the first `agency_label_limit` agencies, then `other`.
    pub agency_labels: Vec<String>,
    /// Dossier gauges per agency label (same order as `agency_labels`).
    pub agencies: Vec<AgencyGauges>,
    /// Counters, with `received` and `resolved` folded per agency label.
    pub counters: Counters,
    /// One-stop snapshot figures.
    pub onestop: OnestopSummary,
    /// Video-conferencing figures.
    pub vc: VcSummary,
    /// SOC figures.
    pub soc: SocSummary,
    /// Per-source health, indexed by [`Source::index`].
    pub sources: [SourceStatus; 3],
    /// Dossiers held in memory (open and retained closed).
    pub dossiers_held: u64,
    /// Ids in the dedupe memory.
    pub dedupe_ids: u64,
    /// Active meetings, most recently started first (at most [`MEETINGS_LISTED`]).
    pub meetings: Vec<MeetingRow>,
    /// Ids of the silent monitored systems, sorted (at most [`SYSTEMS_LISTED`]).
    pub silent_system_ids: Vec<String>,
    /// Alerts firing per (rule, severity), filled in from the alert engine.
    pub alerts_firing: Vec<(&'static str, &'static str, u64)>,
    /// The items of `GET /api/v1/alerts` (each firing alert with its members, as JSON text,
    /// newest first), shared from one tick to the next while they do not change; the API
    /// pages through them.
    pub alerts_api: std::sync::Arc<[String]>,
}

/// Meetings listed in a view.
pub const MEETINGS_LISTED: usize = 10;
/// Silent systems listed in a view.
pub const SYSTEMS_LISTED: usize = 10;

/// One active meeting as the wall shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MeetingRow {
    /// The meeting.
    pub meeting_id: String,
    /// Its title.
    pub title: String,
    /// Its level label.
    pub level: &'static str,
    /// When it started, if known.
    pub started_at: Option<Ts>,
    /// Expected endpoints.
    pub expected: u64,
    /// Endpoints connected to it.
    pub connected: u64,
    /// Expected endpoints missing now.
    pub missing: Vec<String>,
    /// Connected endpoints with poor quality.
    pub poor: Vec<String>,
}

#[allow(clippy::cast_precision_loss)]
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl State {
    /// The label index of each interned agency: own label for `unknown` and the first
    /// `limit` agencies to arrive, `other` for the rest. An agency whose code is literally
    /// `other` shares that label rather than producing a duplicate series.
    fn agency_labels(&self) -> (Vec<String>, Vec<u32>) {
        let limit = self.params().agency_label_limit;
        let mut labels: Vec<String> = Vec::new();
        let mut other: Option<u32> = None;
        let mut index = Vec::with_capacity(self.agencies.len());
        for i in 0..self.agencies.len() {
            let name = self
                .agencies
                .name(u32::try_from(i).unwrap_or(intern::UNKNOWN));
            let folded = i > limit || name == "other";
            let label = if folded {
                *other.get_or_insert_with(|| {
                    labels.push("other".to_owned());
                    u32::try_from(labels.len() - 1).unwrap_or(u32::MAX)
                })
            } else {
                labels.push(name.to_owned());
                u32::try_from(labels.len() - 1).unwrap_or(u32::MAX)
            };
            index.push(label);
        }
        (labels, index)
    }

    /// Builds the view at `now`. One pass over the dossiers; the rest is small.
    #[must_use]
    pub fn view(&self, now: Ts) -> View {
        self.scan(now, None)
    }

    /// The view at `now`; with `groups`, the same pass over the dossiers also collects the
    /// overdue and stalled ones per agency, for the alert rules.
    pub(crate) fn scan<'s>(&'s self, now: Ts, mut groups: Option<&mut DossierGroups<'s>>) -> View {
        let p = self.params();
        let (agency_labels, label_of) = self.agency_labels();
        let label = |agency: u32| label_of.get(agency as usize).copied().unwrap_or(0) as usize;
        let mut agencies = vec![AgencyGauges::default(); agency_labels.len()];
        let urgency = p.urgency_at(now);
        for d in self.dossiers.iter() {
            let Some(i) = d.status().open_index() else {
                continue;
            };
            let g = &mut agencies[label(d.agency())];
            g.open[i] += 1;
            let (overdue, stalled) = (urgency.is_overdue(d), urgency.is_stalled(d));
            g.overdue += u64::from(overdue);
            g.due_soon += u64::from(urgency.is_due_soon(d));
            g.stalled += u64::from(stalled);
            if let Some(groups) = groups.as_deref_mut() {
                if let (true, Some(due)) = (overdue, d.due_at()) {
                    groups
                        .overdue
                        .entry(d.agency())
                        .or_default()
                        .push((due, d.id()));
                }
                if stalled {
                    let member = (d.last_event_at(), d.id());
                    groups.stalled.entry(d.agency()).or_default().push(member);
                }
            }
        }
        let mut totals = AgencyGauges::default();
        for g in &agencies {
            totals.add(g);
        }

        let mut counters = self.counters.clone();
        counters.received = fold(&self.counters.received, &label_of, agency_labels.len());
        counters.resolved = fold(&self.counters.resolved, &label_of, agency_labels.len());

        let today = self.windows().today(&p.cal, now);
        let minutes = self.windows().last_60_minutes(&p.cal, now);
        let onestop = OnestopSummary {
            today_received: today.received.into(),
            today_resolved: today.resolved.into(),
            today_online_ratio: ratio(today.received_online.into(), today.received.into()),
            totals,
            on_time_ratio_30d: self.windows().on_time_ratio_30d(now),
            received_per_minute: minutes.iter().map(|m| m.received).collect(),
            resolved_per_minute: minutes.iter().map(|m| m.resolved).collect(),
        };

        let mut soc = SocSummary::default();
        for m in &minutes {
            for (a, b) in soc.alerts_60m.iter_mut().zip(m.alerts) {
                *a += u64::from(b);
            }
        }
        for inc in self.soc.incidents.values() {
            let Some(sev) = inc.severity else { continue };
            if inc.is_open() {
                soc.incidents_open[sev as usize] += 1;
            }
            if inc.is_unacknowledged() {
                soc.incidents_unacknowledged[sev as usize] += 1;
            }
        }
        soc.systems_silent = self.silent_systems(now).count() as u64;

        let sources = Source::ALL.map(|s| {
            let last = self.last_event[s.index()];
            let since = last.unwrap_or(self.started_at);
            SourceStatus {
                last_event_at: last,
                silent: now > since.plus_secs(p.source_silent_secs),
            }
        });

        View {
            at: now,
            agency_labels,
            agencies,
            counters,
            onestop,
            vc: self.vc.summary(&p.vc, now),
            soc,
            sources,
            dossiers_held: self.dossiers.len() as u64,
            dedupe_ids: self.dedupe_len() as u64,
            meetings: self.meeting_rows(now),
            silent_system_ids: {
                let mut ids: Vec<String> = self.silent_systems(now).map(str::to_owned).collect();
                ids.sort_unstable();
                ids.truncate(SYSTEMS_LISTED);
                ids
            },
            alerts_firing: Vec::new(),
            alerts_api: std::sync::Arc::from(Vec::new()),
        }
    }

    /// The active meetings with their endpoints, most recently started first.
    fn meeting_rows(&self, now: Ts) -> Vec<MeetingRow> {
        let vc = &self.vc;
        let mut rows: Vec<MeetingRow> = vc
            .meetings
            .iter()
            .filter(|(_, m)| m.active())
            .map(|(id, m)| {
                let mut connected = 0;
                let mut poor = Vec::new();
                for (ep_id, ep) in &vc.endpoints {
                    if ep.connected_to(&vc.meetings) == Some(id.as_str()) {
                        connected += 1;
                        if ep.poor_quality(&self.params().vc) {
                            poor.push(ep_id.clone());
                        }
                    }
                }
                poor.sort_unstable();
                MeetingRow {
                    meeting_id: id.clone(),
                    title: m.title.clone(),
                    level: m.level_label().as_str(),
                    started_at: m.started_at(),
                    expected: m.expected.len() as u64,
                    connected,
                    missing: vc
                        .missing_in(id, m, &self.params().vc, now)
                        .map(str::to_owned)
                        .collect(),
                    poor,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| a.meeting_id.cmp(&b.meeting_id))
        });
        rows.truncate(MEETINGS_LISTED);
        rows
    }
}

/// Sums per-agency counter rows into per-label rows.
fn fold(rows: &[[u64; 3]], label_of: &[u32], labels: usize) -> Vec<[u64; 3]> {
    let mut out = vec![[0u64; 3]; labels];
    for (agency, row) in rows.iter().enumerate() {
        let l = label_of.get(agency).copied().unwrap_or(0) as usize;
        if let Some(dst) = out.get_mut(l) {
            for (a, b) in dst.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
    out
}

impl View {
    /// Severity-indexed array as a map for JSON.
    #[must_use]
    pub fn by_severity(values: [u64; 4]) -> serde_json::Map<String, serde_json::Value> {
        Severity::ALL
            .iter()
            .zip(values)
            .map(|(s, v)| (s.as_str().to_owned(), v.into()))
            .collect()
    }
}

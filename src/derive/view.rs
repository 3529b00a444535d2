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

pub use super::periods::AgencyPeriods;
pub use crate::state::dossiers::AgencyGauges;

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
    /// Period tallies per agency label (same order): today, this month, this year.
    pub agency_periods: Vec<AgencyPeriods>,
    /// The counts of the Decision 766 indicators per agency label (same order): this week,
    /// this month and this year to date, with the open dossiers now.
    pub agency_scores: Vec<[crate::derive::scorecard::Counts; 3]>,
    /// Late and overdue dossiers by sector, most first (at most [`SECTORS_LISTED`], then
    /// `other`; `unknown` for procedures without a sector).
    pub sectors: Vec<SectorRow>,
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
    /// Items evicted at the memory caps since the process started.
    pub evictions: crate::state::evict::Evictions,
    /// Items held per kind ([`crate::state::evict::Kind::ALL`] order), beside their caps.
    pub items_held: [u64; 5],
    /// Tombstones of forgotten dossiers held (so that late events do not revive them).
    pub tombstones: u64,
    /// Events for forgotten dossiers since the process started, by type.
    pub forgotten_hits: crate::state::forgotten::Hits,
    /// Active meetings, most recently started first (at most [`MEETINGS_LISTED`]).
    pub meetings: Vec<MeetingRow>,
    /// Ids of the silent monitored systems, sorted (at most [`SYSTEMS_LISTED`]).
    pub silent_system_ids: Vec<String>,
    /// Alerts firing per (rule, severity), filled in from the alert engine.
    pub alerts_firing: Vec<(&'static str, &'static str, u64)>,
    /// Firing alerts that page (not acknowledged, not silenced) per (rule, severity).
    pub alerts_unacknowledged: Vec<(&'static str, &'static str, u64)>,
    /// The items of `GET /api/v1/alerts` (each firing alert with its members, as JSON text,
    /// newest first), shared from one tick to the next while they do not change; the API
    /// pages through them.
    pub alerts_api: std::sync::Arc<[String]>,
    /// The agency directory the outputs name agencies from, as the derive stage last had it
    /// (replaced on reload; empty without a directory).
    pub directory: std::sync::Arc<crate::directory::Directory>,
    /// The stalled threshold in hours, and whether it counts working hours (for labels).
    pub stalled_after: (i64, bool),
    /// How many agency codes held in the state the directory lacks (0 without a directory).
    pub agencies_unknown: u64,
    /// The first of them (at most [`UNKNOWN_LISTED`]), in order of arrival, so that the
    /// province can complete its directory.
    pub unknown_agency_codes: Vec<String>,
}

/// Sectors listed in a view (the sector label budget); the rest are summed as `other`.
pub const SECTORS_LISTED: usize = 40;

/// Late and overdue dossiers of one sector (lĩnh vực).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SectorRow {
    /// The sector, as the feed names it.
    pub sector: String,
    /// Overdue now.
    pub overdue: u64,
    /// Resolved late this month.
    pub late_month: u64,
    /// Resolved late this year.
    pub late_year: u64,
}

/// Unknown agency codes listed in a view.
pub const UNKNOWN_LISTED: usize = 100;

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

    /// The view at `now`, every figure counted from scratch: the reference the tracked
    /// figures are checked against in tests, and what a one-off reader (a test, a bench,
    /// the first view before the pipeline runs) uses. The pipeline builds its views with
    /// [`crate::derive::Deriver`], whose cost follows what changed.
    #[must_use]
    pub fn view(&self, now: Ts) -> View {
        let urgency = self.params().urgency_at(now);
        let mut per_agency = vec![AgencyGauges::default(); self.agencies.len()];
        for d in self.dossiers.iter() {
            let Some(i) = d.open_index() else {
                continue;
            };
            let Some(g) = per_agency.get_mut(d.agency() as usize) else {
                continue;
            };
            g.open[i] += 1;
            g.overdue += u64::from(urgency.is_overdue(d));
            g.due_soon += u64::from(urgency.is_due_soon(d));
            g.stalled += u64::from(urgency.is_stalled(d));
            g.late_766 += u64::from(urgency.is_late_766(d));
        }
        let vc = self.vc_figures(now);
        let soc = self.soc_figures(now);
        self.assemble(now, &per_agency, vc, soc)
    }

    /// The 766 counts of each agency label this week, month and year, the open dossiers
    /// from the label's gauges: a lookup per agency and period.
    fn agency_scores(
        &self,
        labels: &[String],
        label_of: &[u32],
        gauges: &[AgencyGauges],
        now: Ts,
    ) -> Vec<[crate::derive::scorecard::Counts; 3]> {
        use crate::derive::scorecard::Counts;
        use crate::state::periods::Period;
        let current = Period::scored(self.params().cal.day(now));
        let mut scores = vec![[Counts::default(); 3]; labels.len()];
        let mut add = |l: usize, agency: u32| {
            if let Some(dst) = scores.get_mut(l) {
                for (c, p) in dst.iter_mut().zip(current) {
                    c.score.add(&self.periods.score_of(agency, p));
                }
            }
        };
        for (agency, l) in label_of.iter().enumerate() {
            add(*l as usize, u32::try_from(agency).unwrap_or(u32::MAX));
        }
        if let Some(other) = labels.iter().position(|l| l == "other") {
            add(other, crate::state::periods::OTHER);
        }
        for (counts, g) in scores.iter_mut().zip(gauges) {
            let open = g.open_766();
            for c in counts.iter_mut() {
                c.open = open;
            }
        }
        scores
    }

    /// The video-conferencing part of a view at `now`: the summary and the meetings listed.
    /// Costs the meetings and endpoints held; the pipeline recomputes it only when they
    /// changed or a threshold passed.
    #[must_use]
    pub fn vc_figures(&self, now: Ts) -> (VcSummary, Vec<MeetingRow>) {
        (
            self.vc.summary(&self.params().vc, now),
            self.meeting_rows(now),
        )
    }

    /// The SOC part of a view at `now` (without the alerts of the last 60 minutes, which
    /// come from the windows) and the silent systems listed. Costs the incidents and
    /// systems held; recomputed only when they changed or a threshold passed.
    #[must_use]
    pub fn soc_figures(&self, now: Ts) -> (SocSummary, Vec<String>) {
        let mut soc = SocSummary::default();
        for inc in self.soc.incidents.values() {
            let Some(sev) = inc.severity else { continue };
            if inc.is_open() {
                soc.incidents_open[sev as usize] += 1;
            }
            if inc.is_unacknowledged() {
                soc.incidents_unacknowledged[sev as usize] += 1;
            }
        }
        let mut ids: Vec<&str> = Vec::new();
        for id in self.silent_systems(now) {
            soc.systems_silent += 1;
            ids.push(id);
        }
        let listed = ids.len().min(SYSTEMS_LISTED);
        if listed > 0 {
            ids.select_nth_unstable(listed - 1);
        }
        ids.truncate(listed);
        ids.sort_unstable();
        (soc, ids.into_iter().map(str::to_owned).collect())
    }

    /// A view at `now` from its parts: dossier gauges by interned agency, the VC and SOC
    /// figures; the rest (labels, counters, windows, sources) costs the agencies and the
    /// last 60 minutes, not the items held.
    #[must_use]
    pub fn assemble(
        &self,
        now: Ts,
        per_agency: &[AgencyGauges],
        (vc, meetings): (VcSummary, Vec<MeetingRow>),
        (mut soc, silent_system_ids): (SocSummary, Vec<String>),
    ) -> View {
        let p = self.params();
        let (agency_labels, label_of) = self.agency_labels();
        let mut agencies = vec![AgencyGauges::default(); agency_labels.len()];
        for (agency, g) in per_agency.iter().enumerate() {
            let l = label_of.get(agency).copied().unwrap_or(0) as usize;
            if let Some(dst) = agencies.get_mut(l) {
                dst.add(g);
            }
        }
        let mut totals = AgencyGauges::default();
        for g in &agencies {
            totals.add(g);
        }
        let mut agency_periods = vec![AgencyPeriods::default(); agency_labels.len()];
        for (agency, l) in label_of.iter().enumerate() {
            let id = u32::try_from(agency).unwrap_or(u32::MAX);
            if let Some(dst) = agency_periods.get_mut(*l as usize) {
                dst.add(&AgencyPeriods::of(&self.periods, &p.cal, id, now));
            }
        }
        if let Some(other) = agency_labels.iter().position(|l| l == "other") {
            let beyond =
                AgencyPeriods::of(&self.periods, &p.cal, crate::state::periods::OTHER, now);
            agency_periods[other].add(&beyond);
        }
        let agency_scores = self.agency_scores(&agency_labels, &label_of, &agencies, now);
        let sectors = self.view_sectors(now);

        let mut counters = self.counters.clone();
        counters.received = fold(&self.counters.received, &label_of, agency_labels.len());
        counters.resolved = fold(&self.counters.resolved, &label_of, agency_labels.len());

        let today = self.windows().today(&p.cal, now);
        let minutes = self.windows().last_60_minutes(&p.cal, now);
        let onestop = OnestopSummary {
            today_received: today.received.into(),
            today_resolved: today.resolved.into(),
            today_online_ratio: super::periods::ratio(
                today.received_online.into(),
                today.received.into(),
            ),
            totals,
            on_time_ratio_30d: self.windows().on_time_ratio_30d(now),
            received_per_minute: minutes.iter().map(|m| m.received).collect(),
            resolved_per_minute: minutes.iter().map(|m| m.resolved).collect(),
        };

        soc.alerts_60m = [0; 4];
        for m in &minutes {
            for (a, b) in soc.alerts_60m.iter_mut().zip(m.alerts) {
                *a += u64::from(b);
            }
        }

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
            agency_periods,
            agency_scores,
            sectors,
            counters,
            onestop,
            vc,
            soc,
            sources,
            dossiers_held: self.dossiers.len() as u64,
            dedupe_ids: self.dedupe_len() as u64,
            evictions: self.evictions,
            forgotten_hits: self.forgotten_hits,
            items_held: [
                self.dossiers.len() as u64,
                self.vc.meetings.len() as u64,
                self.vc.endpoints.len() as u64,
                self.soc.systems.len() as u64,
                self.soc.incidents.len() as u64,
            ],
            tombstones: self.forgotten.len() as u64,
            meetings,
            silent_system_ids,
            alerts_firing: Vec::new(),
            alerts_unacknowledged: Vec::new(),
            alerts_api: std::sync::Arc::from(Vec::new()),
            directory: std::sync::Arc::default(),
            stalled_after: (p.stalled_secs / 3600, p.work.is_some()),
            agencies_unknown: 0,
            unknown_agency_codes: Vec::new(),
        }
    }

    /// Late and overdue dossiers by sector: the overdue counts the tracker keeps by procedure
    /// and the late resolutions of the month and the year, folded by the procedures'
    /// sectors. Costs the procedures, not the dossiers.
    #[must_use]
    pub fn view_sectors(&self, now: Ts) -> Vec<SectorRow> {
        use crate::state::dossiers::split_procedure;
        use crate::state::periods::Period;
        let sector_of = |procedure: u32| {
            if (procedure as usize) < self.procedures.len() {
                split_procedure(self.procedures.name(procedure))
                    .1
                    .unwrap_or("unknown")
            } else {
                "unknown"
            }
        };
        let mut rows: HashMap<&str, SectorRow> = HashMap::new();
        let overdue = self.dossiers.tracker().overdue_by_procedure();
        for (procedure, &n) in overdue.iter().enumerate() {
            if n > 0 {
                let sector = sector_of(u32::try_from(procedure).unwrap_or(u32::MAX));
                rows.entry(sector).or_default().overdue += n;
            }
        }
        let [_, month, year] = Period::current(&self.params().cal, now);
        for (period, late) in [(month, true), (year, false)] {
            for (procedure, n) in self.periods.late_in(period) {
                let n = u64::try_from(n.max(0)).unwrap_or(0);
                let r = rows.entry(sector_of(procedure)).or_default();
                if late {
                    r.late_month += n;
                } else {
                    r.late_year += n;
                }
            }
        }
        // A sector the feed names "other" would collide with the catch-all row: it is one.
        let other_named = rows.remove("other").unwrap_or_default();
        let mut all: Vec<SectorRow> = rows
            .into_iter()
            .map(|(sector, r)| SectorRow {
                sector: sector.to_owned(),
                ..r
            })
            .collect();
        all.sort_by(|a, b| {
            (b.overdue + b.late_month, b.late_year)
                .cmp(&(a.overdue + a.late_month, a.late_year))
                .then_with(|| a.sector.cmp(&b.sector))
        });
        if all.len() > SECTORS_LISTED || other_named != SectorRow::default() {
            let rest = all.split_off(all.len().min(SECTORS_LISTED - 1));
            let mut other = SectorRow {
                sector: "other".to_owned(),
                ..other_named
            };
            for r in rest {
                other.overdue += r.overdue;
                other.late_month += r.late_month;
                other.late_year += r.late_year;
            }
            all.push(other);
        }
        all
    }

    /// The active meetings with their endpoints, most recently started first (at most
    /// [`MEETINGS_LISTED`]). One pass over the endpoints, one over the meetings.
    fn meeting_rows(&self, now: Ts) -> Vec<MeetingRow> {
        let vc = &self.vc;
        let mut active: Vec<(&String, &crate::state::vc::Meeting)> =
            vc.meetings.iter().filter(|(_, m)| m.active()).collect();
        let listed = active.len().min(MEETINGS_LISTED);
        let order = |a: &(&String, &crate::state::vc::Meeting),
                     b: &(&String, &crate::state::vc::Meeting)| {
            b.1.started_at()
                .cmp(&a.1.started_at())
                .then_with(|| a.0.cmp(b.0))
        };
        if listed > 0 {
            active.select_nth_unstable_by(listed - 1, order);
        }
        active.truncate(listed);
        active.sort_by(order);
        // Endpoints connected to each listed meeting, with the poor-quality ones.
        let mut connected: HashMap<&str, (u64, Vec<String>)> = active
            .iter()
            .map(|(id, _)| (id.as_str(), (0, Vec::new())))
            .collect();
        for (ep_id, ep) in &vc.endpoints {
            if let Some(row) = ep
                .connected_to(&vc.meetings)
                .and_then(|m| connected.get_mut(m))
            {
                row.0 += 1;
                if ep.poor_quality(&self.params().vc) {
                    row.1.push(ep_id.clone());
                }
            }
        }
        active
            .into_iter()
            .map(|(id, m)| {
                let (n, mut poor) = connected.remove(id.as_str()).unwrap_or_default();
                poor.sort_unstable();
                MeetingRow {
                    meeting_id: id.clone(),
                    title: m.title.clone(),
                    level: m.level_label().as_str(),
                    started_at: m.started_at(),
                    expected: m.expected.len() as u64,
                    connected: n,
                    missing: vc
                        .missing_in(id, m, &self.params().vc, now)
                        .map(str::to_owned)
                        .collect(),
                    poor,
                }
            })
            .collect()
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

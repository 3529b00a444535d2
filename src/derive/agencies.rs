//! The per-agency, cross-system view: for each agency its dossiers (open by status,
//! overdue, due soon, stalled, received and resolved since the start), and, through the
//! agency directory, its video endpoints, its SOC systems and incidents, and its firing
//! alerts; roll-ups by level and by parent.
//!
//! Computed on request (the API asks the pipeline), not per tick: a list costs the number of
//! agencies, a detail one pass over the meetings and the incidents. Pure: `now` is given.

use serde_json::{Value, json};

use super::Deriver;
use crate::decode::{DossierStatus, Source};
use crate::directory::{Agency, Directory};
use crate::state::State;
use crate::state::dossiers::AgencyGauges;
use crate::state::query::{AgencySort as SortBy, DossierFilter};
use crate::time::Ts;

use super::periods::{AgencyPeriods, figures as period_figures};

/// What the ratios are, written beside them.
const ESTIMATES: &str = "on_time_ratio and online_ratio are iocd's estimates from the events it received since it started; periods.*.progress_estimate and online_share_estimate are its estimates of the Decision 766 progress and online-share indicators for the month and the year to date. None of them is an official score";

/// Late and overdue dossiers by sector, as the API writes them.
fn sectors(state: &State, now: Ts) -> Value {
    serde_json::to_value(state.view_sectors(now)).unwrap_or(Value::Null)
}

/// Members listed per kind in a detail (the dossier API pages through all of them).
const MEMBERS: usize = 10;

/// One agency's dossier figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// The agency code.
    pub code: String,
    /// Open dossiers by status, overdue, due soon and stalled, now.
    pub gauges: AgencyGauges,
    /// Received since the start, by channel (online, direct, postal).
    pub received: [u64; 3],
    /// Resolved since the start, by timing (early, on time, late).
    pub resolved: [u64; 3],
    /// Tallies of today, the month and the year.
    pub periods: AgencyPeriods,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.gauges.add(&other.gauges);
        self.periods.add(&other.periods);
        for (a, b) in self.received.iter_mut().zip(other.received) {
            *a += b;
        }
        for (a, b) in self.resolved.iter_mut().zip(other.resolved) {
            *a += b;
        }
    }

    /// Early plus on time over resolved (an estimate from what iocd saw).
    fn on_time_ratio(&self) -> Option<f64> {
        let all: u64 = self.resolved.iter().sum();
        (all > 0).then(|| (self.resolved[0] + self.resolved[1]) as f64 / all as f64)
    }

    /// Online over received.
    fn online_ratio(&self) -> Option<f64> {
        let all: u64 = self.received.iter().sum();
        (all > 0).then(|| self.received[0] as f64 / all as f64)
    }

    /// The figures as the API writes them.
    fn json(&self) -> Value {
        let open: serde_json::Map<String, Value> = DossierStatus::OPEN
            .iter()
            .zip(self.gauges.open)
            .map(|(s, n)| (s.as_str().to_owned(), n.into()))
            .collect();
        json!({
            "open": open,
            "open_total": self.gauges.open.iter().sum::<u64>(),
            "overdue": self.gauges.overdue,
            "due_soon": self.gauges.due_soon,
            "stalled": self.gauges.stalled,
            "received_since_start": {"online": self.received[0], "direct": self.received[1], "postal": self.received[2]},
            "resolved_since_start": {"early": self.resolved[0], "on_time": self.resolved[1], "late": self.resolved[2]},
            "on_time_ratio": self.on_time_ratio(),
            "online_ratio": self.online_ratio(),
            "periods": period_figures(&self.periods, &self.gauges),
        })
    }

    /// The Decision 766 progress estimate of this month.
    fn progress(&self) -> Option<f64> {
        period_figures(&self.periods, &self.gauges)
            .month
            .progress_estimate
    }
}

/// Every agency the state has seen or the directory lists, with its figures, in code order.
#[must_use]
pub fn figures(state: &State, directory: &Directory, now: Ts) -> Vec<Figures> {
    let gauges = state.dossiers.tracker().gauges();
    let mut out: std::collections::BTreeMap<String, Figures> = directory
        .agencies()
        .iter()
        .map(|a| {
            let f = Figures {
                code: a.code.to_string(),
                ..Figures::default()
            };
            (f.code.clone(), f)
        })
        .collect();
    for id in 1..state.agencies.len() {
        let id32 = u32::try_from(id).unwrap_or(u32::MAX);
        let code = state.agencies.name(id32);
        let f = out.entry(code.to_owned()).or_insert_with(|| Figures {
            code: code.to_owned(),
            ..Figures::default()
        });
        if let Some(g) = gauges.get(id) {
            f.gauges = *g;
        }
        if let Some(r) = state.counters.received.get(id) {
            f.received = *r;
        }
        if let Some(r) = state.counters.resolved.get(id) {
            f.resolved = *r;
        }
        f.periods = AgencyPeriods::of(&state.periods, &state.params().cal, id32, now);
    }
    out.into_values().collect()
}

/// Names and place of `code` in the directory, as the API writes them.
fn identity(code: &str, a: Option<&Agency>) -> Value {
    json!({
        "code": code,
        "known": a.is_some(),
        "name": a.map(|a| &*a.name),
        "short_name": a.map(|a| &*a.short_name),
        "level": a.map(|a| a.level.as_str()),
        "kind": a.map(|a| a.kind.as_str()),
        "parent": a.and_then(|a| a.parent.as_deref()),
        "valid_to": a.and_then(|a| a.valid_to).map(|d| d.to_string()),
        "successor": a.and_then(|a| a.successor.as_deref()),
    })
}

fn row(f: &Figures, directory: &Directory) -> Value {
    let mut v = identity(&f.code, directory.get(&f.code));
    if let (Some(map), Value::Object(figures)) = (v.as_object_mut(), f.json()) {
        map.extend(figures);
    }
    v
}

/// Sums `figures` by level (`unknown` for codes the directory lacks).
fn by_level(figures: &[Figures], directory: &Directory) -> Value {
    let mut sums: std::collections::BTreeMap<&str, Figures> = std::collections::BTreeMap::new();
    for f in figures {
        let level = directory
            .get(&f.code)
            .map_or("unknown", |a| a.level.as_str());
        sums.entry(level).or_default().add(f);
    }
    sums.into_iter()
        .map(|(level, f)| (level.to_owned(), f.json()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The agency list: filtered by `level` and `parent`, sorted, one page, with the roll-ups of
/// the whole selection by level and in total.
#[must_use]
pub fn list(
    state: &State,
    directory: &Directory,
    (level, parent): (Option<&str>, Option<&str>),
    sort: SortBy,
    (limit, offset): (usize, usize),
    now: Ts,
) -> Value {
    let mut all = figures(state, directory, now);
    all.retain(|f| {
        let a = directory.get(&f.code);
        level.is_none_or(|l| a.map_or("unknown", |a| a.level.as_str()) == l)
            && parent.is_none_or(|p| a.and_then(|a| a.parent.as_deref()) == Some(p))
    });
    let key_ratio = |r: Option<f64>| r.map_or((1, 0), |r| (0, (r * 1e9) as i64));
    match sort {
        SortBy::Overdue => all.sort_by(|a, b| {
            let k = |f: &Figures| (f.gauges.overdue, f.gauges.stalled, f.gauges.due_soon);
            k(b).cmp(&k(a)).then_with(|| a.code.cmp(&b.code))
        }),
        SortBy::Open => all.sort_by(|a, b| {
            let k = |f: &Figures| f.gauges.open.iter().sum::<u64>();
            k(b).cmp(&k(a)).then_with(|| a.code.cmp(&b.code))
        }),
        SortBy::OnTime => all.sort_by(|a, b| {
            key_ratio(a.on_time_ratio())
                .cmp(&key_ratio(b.on_time_ratio()))
                .then_with(|| a.code.cmp(&b.code))
        }),
        SortBy::Online => all.sort_by(|a, b| {
            key_ratio(a.online_ratio())
                .cmp(&key_ratio(b.online_ratio()))
                .then_with(|| a.code.cmp(&b.code))
        }),
        SortBy::Progress => all.sort_by(|a, b| {
            key_ratio(a.progress())
                .cmp(&key_ratio(b.progress()))
                .then_with(|| a.code.cmp(&b.code))
        }),
        SortBy::Code => {}
    }
    let mut total = Figures::default();
    for f in &all {
        total.add(f);
    }
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|f| row(f, directory))
        .collect();
    json!({
        "total": all.len(),
        "agencies": page,
        "rollup": {"all": total.json(), "by_level": by_level(&all, directory)},
        "sectors": sectors(state, now),
        "estimates": ESTIMATES,
    })
}

impl Deriver {
    /// One agency in detail at `now` (the state advanced to it): its figures, its most
    /// urgent dossiers, its video endpoints and meetings, its SOC systems and open incidents,
    /// its firing alerts, and the roll-up of its child units. `None` when neither the state
    /// nor the directory knows `code`.
    #[must_use]
    pub fn agency_detail(&self, state: &State, code: &str, now: Ts) -> Option<Value> {
        let directory = &self.directory;
        let a = directory.get(code);
        let all = figures(state, directory, now);
        let mine = all.iter().find(|f| f.code == code)?;
        let mut v = row(mine, directory);
        let members = |filter| {
            let (total, rows) = state.query_dossiers(filter, Some(code), (MEMBERS, 0), now);
            let ids: Vec<&str> = rows.iter().map(|r| r.dossier_id.as_str()).collect();
            json!({"total": total, "first": ids})
        };
        let dossiers = json!({
            "overdue": members(DossierFilter::Overdue),
            "due_soon": members(DossierFilter::DueSoon),
            "stalled": members(DossierFilter::Stalled),
        });
        let endpoints = a.map_or(&[][..], |a| a.endpoints.as_slice());
        let systems = a.map_or(&[][..], |a| a.systems.as_slice());
        let vc = self.endpoints_of(state, endpoints);
        let soc = self.systems_of(state, systems);
        let alerts = self.alerts_of(state, code, endpoints, systems);
        let children: Vec<&Figures> = all
            .iter()
            .filter(|f| {
                directory
                    .get(&f.code)
                    .and_then(|c| c.parent.as_deref())
                    .is_some_and(|p| p == code)
            })
            .collect();
        let mut sum = Figures::default();
        for f in &children {
            sum.add(f);
        }
        if let Some(map) = v.as_object_mut() {
            map.insert("dossiers".into(), dossiers);
            map.insert("vc".into(), vc);
            map.insert("soc".into(), soc);
            map.insert("alerts".into(), alerts);
            map.insert(
                "children".into(),
                json!({"count": children.len(), "rollup": sum.json()}),
            );
            map.insert(
                "sources_silent".into(),
                json!(
                    Source::ALL
                        .iter()
                        .filter(|s| {
                            let since = state.last_event[s.index()].unwrap_or(state.started_at);
                            now > since.plus_secs(state.params().source_silent_secs)
                        })
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                ),
            );
        }
        Some(v)
    }

    /// The agency's endpoints: connected (to which meeting), poor quality, missing from
    /// which active meetings; and those meetings.
    fn endpoints_of(&self, state: &State, endpoints: &[Box<str>]) -> Value {
        let vcs = &state.vc;
        let p = state.params();
        let mut rows = Vec::new();
        let mut meetings = std::collections::BTreeSet::new();
        let (mut connected, mut missing, mut poor) = (0u64, 0u64, 0u64);
        for ep in endpoints {
            let e = vcs.endpoints.get(&**ep);
            let on = e.and_then(|e| e.connected_to(&vcs.meetings));
            let is_poor = on.is_some() && e.is_some_and(|e| e.poor_quality(&p.vc));
            let absent: Vec<&str> = self
                .vc
                .all()
                .filter(|(_, f)| f.active.is_some() && f.missing.iter().any(|m| **m == **ep))
                .map(|(id, _)| id.as_str())
                .collect();
            connected += u64::from(on.is_some());
            poor += u64::from(is_poor);
            missing += u64::from(!absent.is_empty());
            meetings.extend(on.map(str::to_owned));
            meetings.extend(absent.iter().map(|m| (*m).to_owned()));
            rows.push(json!({
                "endpoint_id": ep, "connected_to": on, "poor_quality": is_poor, "missing_from": absent,
            }));
        }
        let meetings: Vec<Value> = meetings
            .iter()
            .filter_map(|id| {
                let m = vcs.meetings.get(id)?;
                Some(json!({"meeting_id": id, "title": m.title, "level": m.level_label().as_str(), "active": m.active()}))
            })
            .collect();
        json!({
            "endpoints": rows,
            "connected": connected, "missing": missing, "poor_quality": poor,
            "meetings": meetings,
        })
    }

    /// The agency's SOC systems (silent or not) and their open incidents.
    fn systems_of(&self, state: &State, systems: &[Box<str>]) -> Value {
        let silent = self.soc.silent();
        let rows: Vec<Value> = systems
            .iter()
            .map(|s| json!({"system_id": s, "silent": silent.contains(&**s)}))
            .collect();
        let mut incidents: Vec<(&String, &crate::state::soc::Incident)> = state
            .soc
            .incidents
            .iter()
            .filter(|(_, i)| i.is_open() && systems.iter().any(|s| **s == *i.system_id))
            .collect();
        incidents.sort_by(|a, b| b.1.severity.cmp(&a.1.severity).then_with(|| a.0.cmp(b.0)));
        let incidents: Vec<Value> = incidents
            .iter()
            .map(|(id, i)| {
                json!({
                    "incident_id": id, "system_id": i.system_id, "severity": i.severity.map(crate::decode::Severity::as_str),
                    "title": i.title, "acknowledged": !i.is_unacknowledged(),
                })
            })
            .collect();
        json!({
            "systems": rows,
            "silent": systems.iter().filter(|s| silent.contains(&***s)).count(),
            "incidents_open": incidents,
        })
    }

    /// The firing alerts about the agency: its dossier alerts, the meetings missing or with
    /// poor quality at its endpoints, its systems silent, the incidents on its systems.
    fn alerts_of(
        &self,
        state: &State,
        code: &str,
        endpoints: &[Box<str>],
        systems: &[Box<str>],
    ) -> Value {
        let on_mine =
            |members: &[String]| members.iter().any(|m| endpoints.iter().any(|e| **e == **m));
        let alerts: Vec<Value> = self
            .engine
            .firing()
            .into_iter()
            .filter(|a| match a.subject.kind {
                "agency" => a.subject.id == code,
                "meeting" => on_mine(&a.members),
                "system" => systems.iter().any(|s| **s == *a.subject.id),
                "incident" => state
                    .soc
                    .incidents
                    .get(&a.subject.id)
                    .is_some_and(|i| systems.iter().any(|s| **s == *i.system_id)),
                _ => false,
            })
            .map(|a| serde_json::from_str(&a.to_json()).unwrap_or(Value::Null))
            .collect();
        Value::Array(alerts)
    }
}

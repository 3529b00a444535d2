//! Security operations centre: incidents and monitored systems (docs/contract.md §2.6). Alert
//! counts live in the counters and the per-minute window, not here.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Key;
use super::counters::Counters;
use super::evict::{self, Caps, Kind, Oldest};
use crate::decode::{Severity, SocEvent};
use crate::time::Ts;

/// One incident.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Earliest `incident_opened`.
    opened: Option<Key>,
    /// Latest `incident_opened`: system, severity and title come from it.
    latest_opened: Option<Key>,
    /// Affected system.
    pub system_id: String,
    /// Severity (of the latest `incident_opened`).
    pub severity: Option<Severity>,
    /// Title, when given.
    pub title: Option<String>,
    acknowledged: Option<Key>,
    resolved: Option<Key>,
    ack_observed: bool,
    resolve_observed: bool,
    last_event: Ts,
}

impl Incident {
    /// Open: opened and not resolved.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.opened.is_some() && self.resolved.is_none()
    }

    /// Open and not yet acknowledged.
    #[must_use]
    pub fn is_unacknowledged(&self) -> bool {
        self.is_open() && self.acknowledged.is_none()
    }

    /// When it was first opened.
    #[must_use]
    pub fn opened_at(&self) -> Option<Ts> {
        self.opened.as_ref().map(|k| k.ts)
    }
}

fn keep_earlier(slot: &mut Option<Key>, key: &Key) {
    if slot.as_ref().is_none_or(|k| key < k) {
        *slot = Some(key.clone());
    }
}

/// All SOC state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SocState {
    /// Incidents by id.
    pub incidents: HashMap<String, Incident>,
    /// Monitored systems by id: `occurred_at` of their latest alert or heartbeat.
    pub systems: HashMap<String, Ts>,
    /// Systems and incidents in order of their latest event, for eviction at the caps.
    #[serde(skip)]
    oldest: (Oldest, Oldest),
    /// The system or incident of every change (an event, an eviction, a removal): what the
    /// derive stage reads to recompute only those.
    #[serde(skip)]
    pub changes: super::ChangeLog<SocChange>,
}

/// What one SOC change was about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SocChange {
    /// A monitored system.
    System(Box<str>),
    /// An incident.
    Incident(Box<str>),
}

impl SocState {
    /// Applies one SOC event (counting alerts and incident durations in `counters`).
    pub fn apply(&mut self, e: &SocEvent<'_>, key: &Key, counters: &mut Counters) {
        self.changes.push(match e {
            SocEvent::Alert { system_id, .. } | SocEvent::SystemHeartbeat { system_id } => {
                SocChange::System((**system_id).into())
            }
            SocEvent::IncidentOpened { incident_id, .. }
            | SocEvent::IncidentAcknowledged { incident_id }
            | SocEvent::IncidentResolved { incident_id } => {
                SocChange::Incident((**incident_id).into())
            }
        });
        match e {
            SocEvent::Alert {
                system_id,
                severity,
                category,
                ..
            } => {
                counters.soc_alert(*severity, *category);
                self.heard_from(system_id, key.ts);
            }
            SocEvent::SystemHeartbeat { system_id } => self.heard_from(system_id, key.ts),
            SocEvent::IncidentOpened {
                incident_id,
                system_id,
                severity,
                title,
            } => {
                let inc = self.incident(incident_id, key.ts);
                keep_earlier(&mut inc.opened, key);
                if inc.latest_opened.as_ref().is_none_or(|k| key > k) {
                    inc.latest_opened = Some(key.clone());
                    inc.system_id = system_id.to_string();
                    inc.severity = Some(*severity);
                    inc.title = title.as_ref().map(ToString::to_string);
                }
                observe(inc, counters);
            }
            SocEvent::IncidentAcknowledged { incident_id } => {
                let inc = self.incident(incident_id, key.ts);
                keep_earlier(&mut inc.acknowledged, key);
                observe(inc, counters);
            }
            SocEvent::IncidentResolved { incident_id } => {
                let inc = self.incident(incident_id, key.ts);
                keep_earlier(&mut inc.resolved, key);
                observe(inc, counters);
            }
        }
    }

    /// Before `e` applies: at the caps, evicts the system or incident whose latest event is
    /// oldest for a new one `e` names; returns the kinds evicted.
    pub fn make_room(&mut self, e: &SocEvent<'_>, caps: &Caps) -> Vec<Kind> {
        let mut evicted = Vec::new();
        match e {
            SocEvent::Alert { system_id, .. } | SocEvent::SystemHeartbeat { system_id } => {
                let last = |t: &Ts| *t;
                let room = &mut self.oldest.0;
                if let Some((id, _)) =
                    evict::make_room(&mut self.systems, room, caps.systems, system_id, last)
                {
                    self.changes.push(SocChange::System(id));
                    evicted.push(Kind::System);
                }
            }
            SocEvent::IncidentOpened { incident_id, .. }
            | SocEvent::IncidentAcknowledged { incident_id }
            | SocEvent::IncidentResolved { incident_id } => {
                let last = |i: &Incident| i.last_event;
                let room = &mut self.oldest.1;
                if let Some((id, _)) =
                    evict::make_room(&mut self.incidents, room, caps.incidents, incident_id, last)
                {
                    self.changes.push(SocChange::Incident(id));
                    evicted.push(Kind::Incident);
                }
            }
        }
        evicted
    }

    fn incident(&mut self, id: &str, ts: Ts) -> &mut Incident {
        if !self.incidents.contains_key(id) {
            self.oldest.1.added(id, ts, self.incidents.len());
        }
        let inc = self.incidents.entry(id.to_owned()).or_default();
        inc.last_event = inc.last_event.max(ts);
        inc
    }

    fn heard_from(&mut self, system: &str, ts: Ts) {
        if !self.systems.contains_key(system) {
            self.oldest.0.added(system, ts, self.systems.len());
        }
        let last = self.systems.entry(system.to_owned()).or_insert(ts);
        *last = (*last).max(ts);
    }

    /// Forgets resolved incidents whose latest event is before `cutoff`. Systems are kept:
    /// a system that stops reporting is exactly what must stay visible as silent.
    pub fn prune(&mut self, cutoff: Ts) {
        let changes = &mut self.changes;
        self.incidents.retain(|id, i| {
            let keep = i.is_open() || i.last_event >= cutoff;
            if !keep {
                changes.push(SocChange::Incident(id.as_str().into()));
            }
            keep
        });
    }

    /// Whether `system` is silent at `now`: heard from more than `silent_secs` ago, or a
    /// configured one never heard from and the daemon started more than that ago.
    #[must_use]
    pub fn system_silent(&self, system: &str, silent_secs: i64, started_at: Ts, now: Ts) -> bool {
        let since = self.systems.get(system).copied().unwrap_or(started_at);
        now > since.plus_secs(silent_secs)
    }
}

/// Observes the ack and resolve durations once both ends are known, under the severity
/// known at that moment.
fn observe(inc: &mut Incident, counters: &mut Counters) {
    let (Some(opened), Some(severity)) = (&inc.opened, inc.severity) else {
        return;
    };
    let s = severity as usize;
    if let (false, Some(ack)) = (inc.ack_observed, &inc.acknowledged) {
        counters.incident_ack[s].observe(ack.ts.secs_since(opened.ts).max(0.0));
        inc.ack_observed = true;
    }
    if let (false, Some(res)) = (inc.resolve_observed, &inc.resolved) {
        counters.incident_resolve[s].observe(res.ts.secs_since(opened.ts).max(0.0));
        inc.resolve_observed = true;
    }
}

/// The serialised part of [`SocState`], cloned for a checkpoint written on another thread
/// (see [`crate::state::FrozenState`]); serialises as `SocState` does.
#[derive(Clone, Debug, Serialize)]
pub struct SocSaved {
    incidents: HashMap<String, Incident>,
    systems: HashMap<String, Ts>,
}

impl SocState {
    /// A copy of what a checkpoint keeps (not the caches, not the change log).
    #[must_use]
    pub fn saved(&self) -> SocSaved {
        SocSaved {
            incidents: self.incidents.clone(),
            systems: self.systems.clone(),
        }
    }
}

//! The video-conferencing and SOC figures, kept up to date per meeting, system and
//! incident: each tick recomputes only those named in the state's change logs since the
//! last tick, or whose threshold passed (a meeting old enough for its endpoints to be
//! missing, a system silent for too long, an incident unacknowledged for too long), so a
//! tick costs what changed, not what is held. A reader that fell behind a change log
//! rebuilds from the whole part (one pass).
//!
//! What a tick recomputed is returned as [`Touched`], so the alert rules that read these
//! figures look at those subjects only.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use crate::decode::{Level, Severity};
use crate::state::State;
use crate::state::soc::SocChange;
use crate::state::vc::VcSummary;
use crate::time::Ts;

/// The subjects whose figures a tick recomputed.
#[derive(Debug)]
pub enum Touched {
    /// Everything was rebuilt.
    All,
    /// These ids.
    Some(BTreeSet<String>),
}

impl Touched {
    fn none() -> Self {
        Touched::Some(BTreeSet::new())
    }

    fn add(&mut self, id: &str) {
        if let Touched::Some(ids) = self {
            ids.insert(id.to_owned());
        }
    }
}

/// One meeting's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeetingFigures {
    /// Index of its level in [`Level::MEETING`] (3: unknown) while active.
    pub active: Option<usize>,
    /// When it started, if known.
    pub started_at: Option<Ts>,
    /// Endpoints connected to it.
    pub connected: u64,
    /// Expected endpoints missing now, in the order expected.
    pub missing: Vec<String>,
    /// Connected endpoints with poor quality, sorted.
    pub poor: Vec<String>,
    /// When its endpoints start to count as missing, while that is ahead.
    due: Option<Ts>,
}

/// The video-conferencing figures, per meeting and in total.
#[derive(Debug, Default)]
pub struct VcTrack {
    /// Position in the state's change log; `None`: rebuild at the next update.
    seq: Option<u64>,
    /// The instant of the last update (a clock gone back rebuilds).
    at: Option<Ts>,
    /// The meeting each endpoint last joined, as last seen.
    joined: HashMap<String, String>,
    /// Endpoints that last joined each meeting.
    members: HashMap<String, BTreeSet<String>>,
    /// Figures of every meeting held.
    figures: HashMap<String, MeetingFigures>,
    totals: VcSummary,
    /// Active meetings, most recently started first, ties by id.
    on_air: BTreeSet<(Reverse<Option<Ts>>, String)>,
    /// `(instant, meeting)`: recompute the meeting then (its endpoints become missing).
    timers: BinaryHeap<Reverse<(Ts, String)>>,
}

impl VcTrack {
    /// The totals (active meetings by level, connected, missing, poor endpoints).
    #[must_use]
    pub fn totals(&self) -> VcSummary {
        self.totals
    }

    /// The figures of meeting `id`.
    #[must_use]
    pub fn figures(&self, id: &str) -> Option<&MeetingFigures> {
        self.figures.get(id)
    }

    /// Every meeting's figures.
    pub fn all(&self) -> impl Iterator<Item = (&String, &MeetingFigures)> {
        self.figures.iter()
    }

    /// Active meetings, most recently started first.
    pub fn on_air(&self) -> impl Iterator<Item = &str> {
        self.on_air.iter().map(|(_, id)| id.as_str())
    }

    /// Brings the figures to `now`; returns the meetings recomputed.
    pub fn update(&mut self, state: &State, now: Ts) -> Touched {
        let vc = &state.vc;
        let back = self.at.is_some_and(|at| now < at);
        self.at = Some(now);
        let changes = self
            .seq
            .filter(|_| !back)
            .and_then(|seq| vc.changes.since(seq));
        let Some(changes) = changes else {
            self.rebuild(state, now);
            return Touched::All;
        };
        let mut touched = BTreeSet::new();
        for (meeting, endpoint) in changes {
            touched.insert(meeting.to_string());
            if let Some(endpoint) = endpoint {
                let now_joined = vc
                    .endpoints
                    .get(&**endpoint)
                    .and_then(|e| e.joined_meeting());
                let before = self.joined.get(&**endpoint).map(String::as_str);
                if before != now_joined {
                    if let Some(old) = self.joined.remove(&**endpoint) {
                        if let Some(m) = self.members.get_mut(&old) {
                            m.remove(&**endpoint);
                            if m.is_empty() {
                                self.members.remove(&old);
                            }
                        }
                        touched.insert(old);
                    }
                    if let Some(new) = now_joined {
                        self.joined.insert(endpoint.to_string(), new.to_owned());
                        self.members
                            .entry(new.to_owned())
                            .or_default()
                            .insert(endpoint.to_string());
                        touched.insert(new.to_owned());
                    }
                }
            }
        }
        self.seq = Some(vc.changes.end());
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, id))) = self.timers.pop() {
                touched.insert(id);
            }
        }
        for id in &touched {
            self.recompute(state, id, now);
        }
        Touched::Some(touched)
    }

    fn rebuild(&mut self, state: &State, now: Ts) {
        *self = VcTrack {
            seq: Some(state.vc.changes.end()),
            at: Some(now),
            ..VcTrack::default()
        };
        for (id, e) in &state.vc.endpoints {
            if let Some(m) = e.joined_meeting() {
                self.joined.insert(id.clone(), m.to_owned());
                self.members
                    .entry(m.to_owned())
                    .or_default()
                    .insert(id.clone());
            }
        }
        for id in state.vc.meetings.keys() {
            self.recompute(state, id, now);
        }
    }

    /// Recomputes meeting `id` at `now` and folds the difference into the totals.
    fn recompute(&mut self, state: &State, id: &str, now: Ts) {
        let vc = &state.vc;
        let p = &state.params().vc;
        let new = vc.meetings.get(id).map(|m| {
            let mut f = MeetingFigures {
                active: m.active().then(|| {
                    Level::MEETING
                        .iter()
                        .position(|l| *l == m.level_label())
                        .unwrap_or(3)
                }),
                started_at: m.started_at(),
                ..MeetingFigures::default()
            };
            for ep in self.members.get(id).into_iter().flatten() {
                let Some(e) = vc.endpoints.get(ep) else {
                    continue;
                };
                if e.connected_to(&vc.meetings) == Some(id) {
                    f.connected += 1;
                    if e.poor_quality(p) {
                        f.poor.push(ep.clone());
                    }
                }
            }
            f.missing = vc.missing_in(id, m, p, now).map(str::to_owned).collect();
            let due = f
                .started_at
                .filter(|_| f.active.is_some())
                .map(|t| Ts(t.plus_secs(p.missing_after_secs).0.saturating_add(1)));
            f.due = due.filter(|t| *t > now);
            f
        });
        let old = match &new {
            Some(f) => self.figures.insert(id.to_owned(), f.clone()),
            None => self.figures.remove(id),
        };
        if let Some(o) = &old {
            count(&mut self.totals, o, false);
            if o.active.is_some() {
                self.on_air.remove(&(Reverse(o.started_at), id.to_owned()));
            }
        }
        if let Some(f) = &new {
            count(&mut self.totals, f, true);
            if f.active.is_some() {
                self.on_air.insert((Reverse(f.started_at), id.to_owned()));
            }
            if let Some(due) = f.due
                && old.as_ref().and_then(|o| o.due) != Some(due)
            {
                self.timers.push(Reverse((due, id.to_owned())));
            }
        }
    }
}

fn count(t: &mut VcSummary, f: &MeetingFigures, add: bool) {
    let step = |v: &mut u64, n: u64| {
        *v = if add { *v + n } else { v.saturating_sub(n) };
    };
    if let Some(level) = f.active {
        step(&mut t.meetings_active[level], 1);
    }
    step(&mut t.endpoints_connected, f.connected);
    step(&mut t.endpoints_missing, f.missing.len() as u64);
    step(&mut t.endpoints_poor_quality, f.poor.len() as u64);
}

/// One incident's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IncidentFigures {
    severity: Severity,
    open: bool,
    unacknowledged: bool,
}

/// The SOC figures: open and unacknowledged incidents by severity, silent systems.
#[derive(Debug)]
pub struct SocTrack {
    /// Position in the state's change log; `None`: rebuild at the next update.
    seq: Option<u64>,
    /// The instant of the last update (a clock gone back rebuilds).
    at: Option<Ts>,
    incidents: HashMap<String, IncidentFigures>,
    open: [u64; 4],
    unacknowledged: [u64; 4],
    /// Silent systems, sorted.
    silent: BTreeSet<String>,
    /// `(instant, system or incident)`: recompute it then.
    timers: BinaryHeap<Reverse<(Ts, SocChange)>>,
    /// When each system not silent goes silent, as armed.
    armed: HashMap<String, Ts>,
    /// How long an incident may stay unacknowledged (the alert rule's threshold).
    unacknowledged_after: i64,
}

/// What a SOC tick recomputed.
pub struct SocTouched {
    /// Systems.
    pub systems: Touched,
    /// Incidents.
    pub incidents: Touched,
}

impl SocTrack {
    /// Figures that arm a timer when an incident has been unacknowledged for
    /// `unacknowledged_after` seconds (so the alert rule is asked again then).
    #[must_use]
    pub fn new(unacknowledged_after: i64) -> Self {
        Self {
            seq: None,
            at: None,
            incidents: HashMap::new(),
            open: [0; 4],
            unacknowledged: [0; 4],
            silent: BTreeSet::new(),
            timers: BinaryHeap::new(),
            armed: HashMap::new(),
            unacknowledged_after,
        }
    }

    /// Open and unacknowledged incidents by severity.
    #[must_use]
    pub fn incidents(&self) -> ([u64; 4], [u64; 4]) {
        (self.open, self.unacknowledged)
    }

    /// The silent systems, sorted.
    #[must_use]
    pub fn silent(&self) -> &BTreeSet<String> {
        &self.silent
    }

    /// Brings the figures to `now`; returns the systems and incidents recomputed.
    pub fn update(&mut self, state: &State, now: Ts) -> SocTouched {
        let back = self.at.is_some_and(|at| now < at);
        self.at = Some(now);
        let changes = self
            .seq
            .filter(|_| !back)
            .and_then(|seq| state.soc.changes.since(seq));
        let Some(changes) = changes else {
            self.rebuild(state, now);
            return SocTouched {
                systems: Touched::All,
                incidents: Touched::All,
            };
        };
        let mut todo: BTreeSet<SocChange> = changes.cloned().collect();
        self.seq = Some(state.soc.changes.end());
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((t, c))) = self.timers.pop() {
                if let SocChange::System(id) = &c
                    && self.armed.get(&**id) == Some(&t)
                {
                    self.armed.remove(&**id);
                }
                todo.insert(c);
            }
        }
        let mut touched = SocTouched {
            systems: Touched::none(),
            incidents: Touched::none(),
        };
        for c in todo {
            match c {
                SocChange::System(id) => {
                    self.system(state, &id, now);
                    touched.systems.add(&id);
                }
                SocChange::Incident(id) => {
                    self.incident(state, &id, now);
                    touched.incidents.add(&id);
                }
            }
        }
        touched
    }

    fn rebuild(&mut self, state: &State, now: Ts) {
        *self = SocTrack {
            seq: Some(state.soc.changes.end()),
            at: Some(now),
            ..SocTrack::new(self.unacknowledged_after)
        };
        let configured = state.params().systems.iter();
        let heard = state.soc.systems.keys();
        for id in heard.chain(configured) {
            self.system(state, id, now);
        }
        for id in state.soc.incidents.keys() {
            self.incident(state, id, now);
        }
    }

    /// Recomputes system `id` (heard from or configured) at `now`.
    fn system(&mut self, state: &State, id: &str, now: Ts) {
        let p = state.params();
        let held = state.soc.systems.contains_key(id) || p.systems.iter().any(|s| s == id);
        let silent = held
            && state
                .soc
                .system_silent(id, p.system_silent_secs, state.started_at, now);
        if silent {
            self.silent.insert(id.to_owned());
            self.armed.remove(id);
            return;
        }
        self.silent.remove(id);
        if !held {
            self.armed.remove(id);
            return;
        }
        let since = state
            .soc
            .systems
            .get(id)
            .copied()
            .unwrap_or(state.started_at);
        let at = Ts(since.plus_secs(p.system_silent_secs).0.saturating_add(1));
        // Lazily: a system heard from again keeps its earlier timer, which then finds it
        // not silent and re-arms, so a heartbeat costs no timer of its own.
        if self.armed.get(id).is_none_or(|armed| at < *armed) {
            self.armed.insert(id.to_owned(), at);
            self.timers
                .push(Reverse((at, SocChange::System(id.into()))));
        }
    }

    /// Recomputes incident `id` at `now`.
    fn incident(&mut self, state: &State, id: &str, now: Ts) {
        let new = state.soc.incidents.get(id).and_then(|inc| {
            Some(IncidentFigures {
                severity: inc.severity?,
                open: inc.is_open(),
                unacknowledged: inc.is_unacknowledged(),
            })
        });
        let old = match new {
            Some(f) => self.incidents.insert(id.to_owned(), f),
            None => self.incidents.remove(id),
        };
        for (f, add) in [(old, false), (new, true)] {
            let Some(f) = f else { continue };
            let s = f.severity as usize;
            for (on, n) in [
                (f.open, &mut self.open[s]),
                (f.unacknowledged, &mut self.unacknowledged[s]),
            ] {
                if on {
                    *n = if add { *n + 1 } else { n.saturating_sub(1) };
                }
            }
        }
        // The alert rule asks again when it has been unacknowledged long enough.
        if let Some(inc) = state.soc.incidents.get(id)
            && inc.is_unacknowledged()
            && let Some(opened) = inc.opened_at()
        {
            let at = Ts(opened
                .plus_secs(self.unacknowledged_after)
                .0
                .saturating_add(1));
            if at > now {
                self.timers
                    .push(Reverse((at, SocChange::Incident(id.into()))));
            }
        }
    }
}

//! The alert engine (docs/contract.md §5.2): built-in rules evaluated against the state at
//! "now", grouped per agency, source, meeting, incident or system, with firing and resolved
//! transitions and `count` kept up to date while firing.
//!
//! [`Engine::evaluate`] takes `now` as an argument (an injectable clock): the pipeline calls
//! it every tick with the daemon's clock, tests call it with any instant, so "fires when a
//! deadline passes with no event arriving" is tested without sleeping. The engine only
//! decides; the pipeline sends each transition to the WebSocket, MQTT, the log and the
//! `iocd_alerts_firing` gauge.

pub mod handling;
mod rules;
pub use rules::{DIGEST, OTHERS, Tracked};
mod summary;

use handling::Handling;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{AlertSettings, AlertSeverity};
use crate::derive::track::{SocTrack, VcTrack};
use crate::state::State;
use crate::state::ops::Ops;
use crate::time::{Calendar, Ts, whole_secs};

/// Most bytes of alert objects in the snapshot's `alerts` (the rest of the snapshot is
/// bounded by the view's short lists), so that the snapshot stays under 256 KB.
pub const SNAPSHOT_ALERTS_BYTES: usize = 160 * 1024;

/// The built-in rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Rule {
    DossierOverdue,
    DossierStalled,
    FeedSilent,
    EndpointMissing,
    EndpointPoorQuality,
    IncidentUnacknowledged,
    SocSystemSilent,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 7] = [
        Rule::DossierOverdue,
        Rule::DossierStalled,
        Rule::FeedSilent,
        Rule::EndpointMissing,
        Rule::EndpointPoorQuality,
        Rule::IncidentUnacknowledged,
        Rule::SocSystemSilent,
    ];

    /// The rule's name (also the MQTT topic level and the metric label).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::DossierOverdue => "dossier_overdue",
            Rule::DossierStalled => "dossier_stalled",
            Rule::FeedSilent => "feed_silent",
            Rule::EndpointMissing => "endpoint_missing",
            Rule::EndpointPoorQuality => "endpoint_poor_quality",
            Rule::IncidentUnacknowledged => "incident_unacknowledged",
            Rule::SocSystemSilent => "soc_system_silent",
        }
    }

    /// The severity of its alerts in `settings`.
    #[must_use]
    pub fn severity_in(self, settings: &AlertSettings) -> AlertSeverity {
        rules::settings_of(settings, self).severity
    }

    /// The kind of subject it is grouped by.
    #[must_use]
    pub const fn subject_kind(self) -> &'static str {
        match self {
            Rule::DossierOverdue | Rule::DossierStalled => "agency",
            Rule::FeedSilent => "source",
            Rule::EndpointMissing | Rule::EndpointPoorQuality => "meeting",
            Rule::IncidentUnacknowledged => "incident",
            Rule::SocSystemSilent => "system",
        }
    }
}

/// What an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// `agency`, `source`, `meeting`, `incident` or `system`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
}

/// `firing` or `resolved`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The rule matches now.
    Firing,
    /// The rule stopped matching.
    Resolved,
}

/// An alert (docs/contract.md §5.2), plus its members for the API.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// `{rule}:{subject.id}`.
    pub id: String,
    /// The rule.
    pub rule: Rule,
    /// Its severity.
    pub severity: AlertSeverity,
    /// Firing or resolved.
    pub state: AlertState,
    /// What it is about.
    pub subject: Subject,
    /// How many members match (dossiers, endpoints; 1 otherwise).
    pub count: u64,
    /// The daemon's time when it started firing (RFC 3339).
    pub since: String,
    /// A sentence naming the subject, the threshold and, when grouped, the count.
    pub summary: String,
    /// The sentence in the other language (English when `summary` is Vietnamese), for
    /// notifiers (Alertmanager) that carry both; not part of the alert object.
    #[serde(skip)]
    pub summary_alt: String,
    /// The values `summary` is built from (subject, count, threshold…), per rule, so that a
    /// client writes the sentence in its own language (docs/alerts.md). An addition to the
    /// contract's alert object.
    pub params: serde_json::Value,
    /// The operator's side: acknowledged, assigned, silenced, escalated, reminded (an
    /// addition of contract 1.1, flattened into the object).
    #[serde(flatten)]
    pub handling: Handling,
    /// Members, most urgent first, bounded by `max_members` (not part of the alert object).
    #[serde(skip)]
    pub members: Vec<String>,
    /// `since` as an instant, for ordering.
    #[serde(skip)]
    pub since_ts: Ts,
}

impl Alert {
    /// The alert object as JSON text (without members).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The alert object with its members, for `GET /api/v1/alerts`.
    #[must_use]
    pub fn with_members(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("members".into(), self.members.clone().into());
        }
        v
    }
}

/// A rule matching now, before it is compared with what was firing.
#[derive(Clone, Debug)]
pub struct Match {
    /// The rule.
    pub rule: Rule,
    /// The subject id.
    pub subject: String,
    /// Members matching.
    pub count: u64,
    /// Members listed, most urgent first.
    pub members: Vec<String>,
    /// The sentence.
    pub summary: String,
    /// The sentence in the other language.
    pub summary_alt: String,
    /// The values of the sentence.
    pub params: serde_json::Value,
}

/// What [`Engine::take_peer`] made of another replica's alert.
#[derive(Debug)]
pub enum PeerSince {
    /// Its `since` was earlier: taken; the alert as it is now, to publish.
    Taken(Box<Alert>),
    /// This replica's `since` is earlier: the alert as here, for the peer to take.
    Earlier(Box<Alert>),
    /// Nothing to do: the same `since`, a resolution, or an alert not firing here.
    Same,
}

/// At most this many alerts other replicas fire and this one does not are remembered (a
/// few per rule and subject in practice; a flood of forged publications is cut here).
pub const PEER_MAX: usize = 10_000;

/// The firing alerts and the rules that produce them.
pub struct Engine {
    settings: AlertSettings,
    cal: Calendar,
    firing: BTreeMap<String, Alert>,
    /// `since` of alerts that were firing before a restart (from the checkpoint), used when
    /// they fire again at the first evaluation.
    restored: std::collections::HashMap<String, Ts>,
    /// `since` of alerts other replicas publish as firing and this one does not fire (yet),
    /// by alert id and replica (each replica's latest), at most [`PEER_MAX`]: taken when
    /// this one fires them ([`Engine::take_peer`]).
    peer: BTreeMap<(String, String), Ts>,
    /// When this replica last saw each alert resolve, at most [`PEER_MAX`] (the oldest go
    /// first): a peer's `since` before it belongs to an earlier episode and is not taken.
    resolved_at: std::collections::HashMap<String, Ts>,
    /// `resolved_at` by instant, for dropping the oldest.
    resolved_order: BTreeSet<(Ts, String)>,
    /// Whether anything the API lists (an alert, its count or members) changed since the
    /// last [`Engine::take_changed`].
    changed: bool,
    /// Per rule (in [`Rule::ALL`] order), the subjects that match, in order of urgency.
    subjects: [Subjects; 7],
    /// Position in the dossier tracker's change log; `None`: read every agency.
    dossier_seq: Option<u64>,
    /// Each firing alert's JSON, rendered when it fires or changes, so that the API list
    /// and the snapshot array are assembled, not rendered, whatever fires.
    rendered: std::collections::HashMap<String, Rendered>,
    /// Position in the operator actions' change log; `None`: look at every firing alert.
    ops_seq: Option<u64>,
    /// When a firing alert's handling changes by itself (an escalation or a reminder falls
    /// due), ordered by instant, so that a tick looks only at the alerts due.
    wakes: BTreeSet<(Ts, String)>,
    /// Each scheduled alert's instant in `wakes`.
    wake_of: std::collections::HashMap<String, Ts>,
    /// The next start or end of a silence: every firing alert is looked at again then.
    silence_wake: Option<Ts>,
    /// The first evaluation: acknowledgements made before it (replayed) are not timed.
    started: Option<Ts>,
    /// Time to acknowledge, in seconds, of the alerts acknowledged since the last
    /// [`Engine::take_acknowledged`], with their rule and severity.
    acknowledged: Vec<(Rule, AlertSeverity, f64)>,
}

/// The subjects one rule matches, with their counts, in order of urgency.
#[derive(Default)]
struct Subjects {
    counts: std::collections::HashMap<String, u64>,
    /// Largest count first, ties by id.
    order: BTreeSet<(Reverse<u64>, String)>,
    /// Every subject with a count, below `min_count` too (for the province digest), in
    /// order of urgency, and the sum of their counts.
    all: std::collections::HashMap<String, u64>,
    all_order: BTreeSet<(Reverse<u64>, String)>,
    total: u64,
}

/// Which subjects changed in an update.
enum Dirty {
    /// Possibly all.
    All,
    /// These.
    Some(BTreeSet<String>),
}

impl Dirty {
    fn is_empty(&self) -> bool {
        matches!(self, Dirty::Some(ids) if ids.is_empty())
    }
}

impl Subjects {
    /// Records `id`'s count below any minimum (`None` or 0: it has none); returns
    /// whether it changed.
    fn count_all(&mut self, id: &str, n: Option<u64>) -> bool {
        let n = n.filter(|n| *n > 0);
        let old = self.all.get(id).copied();
        if old == n {
            return false;
        }
        if let Some(old) = old {
            self.all_order.remove(&(Reverse(old), id.to_owned()));
            self.total -= old;
            self.all.remove(id);
        }
        if let Some(n) = n {
            self.all_order.insert((Reverse(n), id.to_owned()));
            self.total += n;
            self.all.insert(id.to_owned(), n);
        }
        true
    }

    /// Applies `updates` (counts below `min` do not match); returns which subjects changed,
    /// and whether any count changed (matching or not: the province digest's).
    fn update(&mut self, updates: rules::Updates, min: u64) -> (Dirty, bool) {
        match updates {
            rules::Updates::All(all) => {
                self.counts.clear();
                self.order.clear();
                self.all.clear();
                self.all_order.clear();
                self.total = 0;
                for (id, n) in all {
                    self.count_all(&id, Some(n));
                    if n >= min {
                        self.order.insert((Reverse(n), id.clone()));
                        self.counts.insert(id, n);
                    }
                }
                (Dirty::All, true)
            }
            rules::Updates::Some(some) => {
                let mut dirty = BTreeSet::new();
                let mut any = false;
                for (id, n) in some {
                    any |= self.count_all(&id, n);
                    let n = n.filter(|n| *n >= min);
                    let old = self.counts.get(&id).copied();
                    if old == n && n.is_none() {
                        continue;
                    }
                    if let Some(old) = old {
                        self.order.remove(&(Reverse(old), id.clone()));
                        self.counts.remove(&id);
                    }
                    if let Some(n) = n {
                        self.order.insert((Reverse(n), id.clone()));
                        self.counts.insert(id.clone(), n);
                    }
                    dirty.insert(id);
                }
                (Dirty::Some(dirty), any)
            }
        }
    }
}

/// A firing alert's JSON texts.
struct Rendered {
    /// The alert object ([`Alert::to_json`]).
    object: String,
    /// With its members ([`Alert::with_members`]).
    api: String,
}

impl Rendered {
    fn of(a: &Alert) -> Self {
        Self {
            object: a.to_json(),
            api: a.with_members().to_string(),
        }
    }
}

impl Engine {
    /// An engine with no alert firing.
    #[must_use]
    pub fn new(settings: AlertSettings, cal: Calendar) -> Self {
        Self {
            settings,
            cal,
            firing: BTreeMap::new(),
            restored: std::collections::HashMap::new(),
            peer: BTreeMap::new(),
            resolved_at: std::collections::HashMap::new(),
            resolved_order: BTreeSet::new(),
            changed: true,
            subjects: Default::default(),
            dossier_seq: None,
            rendered: std::collections::HashMap::new(),
            ops_seq: None,
            wakes: BTreeSet::new(),
            wake_of: std::collections::HashMap::new(),
            silence_wake: None,
            started: None,
            acknowledged: Vec::new(),
        }
    }

    /// The time to acknowledge of the alerts acknowledged since the last call (rule, rule
    /// severity, seconds from firing), for the MTTA histogram.
    pub fn take_acknowledged(&mut self) -> Vec<(Rule, AlertSeverity, f64)> {
        std::mem::take(&mut self.acknowledged)
    }

    /// Takes replica `from`'s publication of alert `id`: firing since `since`, or resolved
    /// (`None`). Replicas agree on an alert's `since` as the earliest any of them saw it
    /// firing in the current episode (docs/ha.md): a firing alert with a later `since`
    /// takes the peer's, one not firing here keeps each replica's latest for when it fires
    /// (never later than `now`), and a resolution forgets that replica's. A `since` before
    /// this replica last saw the alert resolve is of an earlier episode and is ignored. When
    /// this replica's `since` is the earlier, the peer should hear it: the alert is
    /// returned to be published again.
    pub fn take_peer(
        &mut self,
        (id, from): (&str, &str),
        since: Option<Ts>,
        ops: &Ops,
        now: Ts,
    ) -> PeerSince {
        let key = (id.to_owned(), from.to_owned());
        let Some(since) = since else {
            self.peer.remove(&key);
            return PeerSince::Same;
        };
        if self.resolved_at.get(id).is_some_and(|r| since < *r) {
            return PeerSince::Same;
        }
        let Some(a) = self.firing.get_mut(id) else {
            if self.peer.len() < PEER_MAX || self.peer.contains_key(&key) {
                self.peer.insert(key, since);
            }
            return PeerSince::Same;
        };
        match since.cmp(&a.since_ts) {
            std::cmp::Ordering::Equal => PeerSince::Same,
            std::cmp::Ordering::Greater => PeerSince::Earlier(Box::new(a.clone())),
            std::cmp::Ordering::Less => {
                a.since_ts = since;
                a.since = since.to_rfc3339(self.cal.tz());
                self.changed = true;
                self.rendered.insert(id.to_owned(), Rendered::of(a));
                // An acknowledgement made before the later `since` belongs to this episode.
                self.rehandle(id, ops, now);
                match self.firing.get(id) {
                    Some(a) => PeerSince::Taken(Box::new(a.clone())),
                    None => PeerSince::Same,
                }
            }
        }
    }

    /// The earliest `since` the other replicas gave for `id` (and forgets them), if any is
    /// of this episode.
    fn peer_since(&mut self, id: &str) -> Option<Ts> {
        let keys: Vec<(String, String)> = self
            .peer
            .range((id.to_owned(), String::new())..)
            .take_while(|((i, _), _)| i == id)
            .map(|(k, _)| k.clone())
            .collect();
        let resolved = self.resolved_at.get(id).copied();
        keys.into_iter()
            .filter_map(|k| self.peer.remove(&k))
            .filter(|t| resolved.is_none_or(|r| *t >= r))
            .min()
    }

    /// Records that `id` resolved at `at`, dropping the oldest record beyond [`PEER_MAX`].
    fn note_resolved(&mut self, id: &str, at: Ts) {
        if let Some(old) = self.resolved_at.insert(id.to_owned(), at) {
            self.resolved_order.remove(&(old, id.to_owned()));
        }
        self.resolved_order.insert((at, id.to_owned()));
        while self.resolved_order.len() > PEER_MAX {
            if let Some((_, oldest)) = self.resolved_order.pop_first() {
                self.resolved_at.remove(&oldest);
            }
        }
    }

    /// The firing alert `id`, if it fires.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Alert> {
        self.firing.get(id)
    }

    /// Computes the handling of firing alert `id` at `now` again and schedules its next
    /// change; returns the alert when its handling changed.
    fn rehandle(&mut self, id: &str, ops: &Ops, now: Ts) -> Option<Alert> {
        let a = self.firing.get_mut(id)?;
        let of = handling::Of {
            id: &a.id,
            rule: a.rule.as_str(),
            subject: &a.subject.id,
            since: a.since_ts,
            severity: a.severity,
        };
        let (h, wake) = Handling::at(&of, ops, &self.settings, now, self.cal.tz());
        if let Some(old) = self.wake_of.remove(id) {
            self.wakes.remove(&(old, id.to_owned()));
        }
        if let Some(w) = wake {
            self.wakes.insert((w, id.to_owned()));
            self.wake_of.insert(id.to_owned(), w);
        }
        if h == a.handling {
            return None;
        }
        if a.handling.acknowledged.is_none()
            && let Some(t) = &h.acknowledged
            && self.started.is_some_and(|s| t.at_ts >= s)
        {
            self.acknowledged
                .push((a.rule, a.severity, t.at_ts.secs_since(a.since_ts).max(0.0)));
        }
        a.handling = h;
        self.changed = true;
        self.rendered.insert(id.to_owned(), Rendered::of(a));
        Some(a.clone())
    }

    /// Follows the operator actions and the clock: the alerts whose actions changed, every
    /// firing alert when a silence changed or started or ended, and the alerts whose
    /// escalation or reminder fell due get their handling again. Returns those that changed.
    fn follow_ops(&mut self, ops: &Ops, now: Ts) -> Vec<Alert> {
        let log = ops.changes();
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut all = self.silence_wake.is_some_and(|w| now >= w);
        match self.ops_seq.and_then(|seq| log.since(seq)) {
            None => all = true,
            Some(changes) => {
                for c in changes {
                    match c {
                        Some(id) => {
                            ids.insert(id.to_string());
                        }
                        None => all = true,
                    }
                }
            }
        }
        self.ops_seq = Some(log.end());
        if all {
            ids.extend(self.firing.keys().cloned());
            self.silence_wake = ops.silence_edges(now).min();
        }
        while let Some((t, id)) = self.wakes.first().cloned() {
            if t > now {
                break;
            }
            self.wakes.pop_first();
            self.wake_of.remove(&id);
            ids.insert(id);
        }
        ids.iter()
            .filter_map(|id| self.rehandle(id, ops, now))
            .collect()
    }

    /// Puts every dossier alert into words again at the next evaluation (the agency
    /// directory changed).
    pub fn reword(&mut self) {
        self.dossier_seq = None;
    }

    /// The settings the rules run with.
    #[must_use]
    pub fn settings(&self) -> &AlertSettings {
        &self.settings
    }

    /// When each firing alert started firing (`id`, Unix nanoseconds), for checkpoints.
    #[must_use]
    pub fn since_map(&self) -> Vec<(String, i64)> {
        self.firing
            .values()
            .map(|a| (a.id.clone(), a.since_ts.0))
            .collect()
    }

    /// Restores `since` of the alerts firing before a restart: an alert with one of these
    /// ids that fires at the next evaluation keeps its original `since`.
    pub fn restore_since(&mut self, since: Vec<(String, i64)>) {
        self.restored = since.into_iter().map(|(id, ns)| (id, Ts(ns))).collect();
    }

    /// Evaluates every rule from scratch at `now` and returns the transitions: alerts that
    /// started firing, changed count, or resolved (in that order, by id). `state` must have
    /// been advanced to `now` ([`State::advance`]). For tests and one-off readers; the
    /// pipeline's [`crate::derive::Deriver`] calls [`Engine::evaluate_tracked`], whose cost
    /// follows what changed.
    pub fn evaluate(&mut self, state: &State, now: Ts) -> Vec<Alert> {
        let after = whole_secs(self.settings.incident_unacknowledged_after);
        let (mut vc, mut soc) = (VcTrack::default(), SocTrack::new(after));
        let meetings = vc.update(state, now);
        let soc_touched = soc.update(state, now);
        self.dossier_seq = None;
        let directory = crate::directory::Directory::empty();
        let t = rules::Tracked {
            vc: &vc,
            soc: &soc,
            meetings: &meetings,
            soc_touched: &soc_touched,
            directory: &directory,
        };
        self.evaluate_tracked(state, &t, now)
    }

    /// Evaluates the rules at `now` against the tracked figures `t`, looking only at the
    /// subjects that changed since the last call (agencies whose overdue or stalled
    /// dossiers changed, meetings, incidents and systems recomputed), and returns the
    /// transitions. Each rule keeps its subjects in order of urgency, so the subjects with
    /// their own alert and the roll-up cost what changed, not what matches.
    pub fn evaluate_tracked(
        &mut self,
        state: &State,
        t: &rules::Tracked<'_>,
        now: Ts,
    ) -> Vec<Alert> {
        debug_assert_eq!(
            state.dossiers.tracker().at(),
            Some(now),
            "state not advanced"
        );
        let log = state.dossiers.tracker().changes();
        let agencies: Option<BTreeSet<u32>> = self
            .dossier_seq
            .and_then(|seq| log.since(seq))
            .map(|changes| changes.copied().collect());
        self.dossier_seq = Some(log.end());
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for (i, rule) in Rule::ALL.into_iter().enumerate() {
            let r = rules::settings_of(&self.settings, rule);
            if !r.enabled {
                continue;
            }
            let min = r.min_count;
            let updates = rules::updates(&self.settings, state, t, rule, agencies.as_ref(), now);
            let (dirty, counts_changed) = self.subjects[i].update(updates, min);
            let digest_changed = counts_changed && self.has_digest(rule);
            if dirty.is_empty() && !digest_changed {
                continue;
            }
            let matches = self.matches(state, t, rule, i, &dirty);
            self.apply(
                rule,
                matches,
                (now, &state.ops),
                (&mut out.0, &mut out.1, &mut out.2),
            );
        }
        let (mut transitions, mut changed, mut resolved) = out;
        self.started.get_or_insert(now);
        // Alerts whose handling changed replace their entry among the changed ones.
        let handled = self.follow_ops(&state.ops, now);
        if !handled.is_empty() {
            let fired: BTreeSet<&str> = transitions.iter().map(|a| a.id.as_str()).collect();
            let mut by_id: BTreeMap<String, Alert> =
                changed.drain(..).map(|a| (a.id.clone(), a)).collect();
            let mut refired = Vec::new();
            for a in handled {
                if fired.contains(a.id.as_str()) {
                    refired.push(a);
                } else {
                    by_id.insert(a.id.clone(), a);
                }
            }
            for a in refired {
                if let Some(t) = transitions.iter_mut().find(|t| t.id == a.id) {
                    *t = a;
                }
            }
            changed = by_id.into_values().collect();
        }
        // Restored `since` values apply to the first evaluation after a restart only.
        self.restored.clear();
        // A count can change with the listed members unchanged (beyond `max_members`, or a
        // roll-up): that changes what the API lists too.
        self.changed |= !transitions.is_empty() || !changed.is_empty() || !resolved.is_empty();
        transitions.sort_by(|a, b| a.id.cmp(&b.id));
        changed.sort_by(|a, b| a.id.cmp(&b.id));
        resolved.sort_by(|a, b| a.id.cmp(&b.id));
        transitions.append(&mut changed);
        transitions.append(&mut resolved);
        transitions
    }

    /// The matches of `rule` now: the `max_subjects_per_rule` most urgent subjects (largest
    /// count, ties by id, so replicas agree) keep their own alert, put into words again
    /// only when `dirty` names them or they just became one of those; the rest make one
    /// roll-up whose members are the most urgent of them.
    fn matches(
        &self,
        state: &State,
        t: &rules::Tracked<'_>,
        rule: Rule,
        i: usize,
        dirty: &Dirty,
    ) -> Vec<Match> {
        let n = self.settings.max_subjects_per_rule;
        let subjects = &self.subjects[i];
        let prefix = format!("{}:", rule.as_str());
        let mut out = Vec::with_capacity(n.min(subjects.order.len()) + 1);
        for (Reverse(count), id) in subjects.order.iter().take(n) {
            let firing = self.firing.get(&format!("{prefix}{id}"));
            let again = match (dirty, firing) {
                (Dirty::All, _) | (_, None) => true,
                (Dirty::Some(ids), Some(_)) => ids.contains(id),
            };
            let m = match firing {
                Some(a) if !again => Some(Match {
                    rule,
                    subject: id.clone(),
                    count: a.count,
                    members: a.members.clone(),
                    summary: a.summary.clone(),
                    summary_alt: a.summary_alt.clone(),
                    params: a.params.clone(),
                }),
                _ => rules::kept(&self.settings, state, t, rule, id, *count),
            };
            out.extend(m);
        }
        if subjects.order.len() > n {
            let count = (subjects.order.len() - n) as u64;
            let members = subjects
                .order
                .iter()
                .skip(n)
                .take(self.settings.max_members)
                .map(|(_, id)| id.clone())
                .collect();
            out.push(rules::others(&self.settings, rule, count, members));
        }
        if self.has_digest(rule) && subjects.total > 0 {
            let members = subjects
                .all_order
                .iter()
                .take(self.settings.max_members)
                .map(|(_, id)| id.clone())
                .collect();
            let agencies = subjects.all.len() as u64;
            out.push(rules::digest(
                &self.settings,
                rule,
                (subjects.total, agencies),
                members,
            ));
        }
        out
    }

    /// Whether `rule` has a province-wide digest alert (`{rule}:*`).
    fn has_digest(&self, rule: Rule) -> bool {
        self.settings.dossier_digest && matches!(rule, Rule::DossierOverdue | Rule::DossierStalled)
    }

    /// Makes `matches` the alerts of `rule`: new ones fire, changed ones are updated, and
    /// the rule's alerts without a match resolve.
    fn apply(
        &mut self,
        rule: Rule,
        matches: Vec<Match>,
        (now, ops): (Ts, &Ops),
        (fired, changed, resolved): (&mut Vec<Alert>, &mut Vec<Alert>, &mut Vec<Alert>),
    ) {
        let prefix = format!("{}:", rule.as_str());
        let mut gone: std::collections::BTreeSet<String> = self
            .firing
            .range(prefix.clone()..)
            .take_while(|(id, _)| id.starts_with(&prefix))
            .map(|(id, _)| id.clone())
            .collect();
        for m in matches {
            let id = format!("{prefix}{}", m.subject);
            gone.remove(&id);
            if let Some(a) = self.firing.get_mut(&id) {
                let mut differs = false;
                if a.members != m.members {
                    a.members = m.members;
                    differs = true;
                }
                if a.count != m.count || a.summary != m.summary || a.params != m.params {
                    a.count = m.count;
                    a.summary = m.summary;
                    a.summary_alt = m.summary_alt;
                    a.params = m.params;
                    changed.push(a.clone());
                    differs = true;
                }
                if differs {
                    self.changed = true;
                    self.rendered.insert(id, Rendered::of(a));
                }
            } else {
                let own = self.restored.get(&id).copied().unwrap_or(now);
                let since = self.peer_since(&id).map_or(own, |peer| peer.min(own));
                let alert = Alert {
                    id: id.clone(),
                    rule: m.rule,
                    severity: self.severity(m.rule),
                    state: AlertState::Firing,
                    subject: Subject {
                        kind: m.rule.subject_kind(),
                        id: m.subject,
                    },
                    count: m.count,
                    since: since.to_rfc3339(self.cal.tz()),
                    summary: m.summary,
                    summary_alt: m.summary_alt,
                    params: m.params,
                    handling: Handling::default(),
                    members: m.members,
                    since_ts: since,
                };
                self.firing.insert(id.clone(), alert);
                self.rehandle(&id, ops, now);
                if let Some(alert) = self.firing.get(&id) {
                    fired.push(alert.clone());
                    self.rendered.insert(id.clone(), Rendered::of(alert));
                }
            }
        }
        for id in gone {
            self.rendered.remove(&id);
            if let Some(w) = self.wake_of.remove(&id) {
                self.wakes.remove(&(w, id.clone()));
            }
            if let Some(mut a) = self.firing.remove(&id) {
                a.state = AlertState::Resolved;
                resolved.push(a);
                self.note_resolved(&id, now);
            }
        }
    }

    fn severity(&self, rule: Rule) -> AlertSeverity {
        rules::settings_of(&self.settings, rule).severity
    }

    /// The firing alerts, newest first by `since`, ties by ascending id.
    #[must_use]
    pub fn firing(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.firing.values().collect();
        v.sort_by(|a, b| b.since_ts.cmp(&a.since_ts).then_with(|| a.id.cmp(&b.id)));
        v
    }

    /// Whether the firing alerts or their members changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The items of `GET /api/v1/alerts`: the firing alerts, newest first, each with its
    /// members (bounded by `max_members`) as JSON text; the API pages through them.
    #[must_use]
    pub fn api_items(&self) -> Vec<String> {
        self.firing()
            .iter()
            .map(|a| {
                self.rendered
                    .get(&a.id)
                    .map_or_else(|| a.with_members().to_string(), |r| r.api.clone())
            })
            .collect()
    }

    /// The body of `GET /api/v1/alerts` without paging: every firing alert with its members.
    #[must_use]
    pub fn api_json(&self) -> String {
        format!(r#"{{"alerts":[{}]}}"#, self.api_items().join(","))
    }

    /// The firing alerts as the snapshot's `alerts` array (JSON text), newest first, as many
    /// as fit in [`SNAPSHOT_ALERTS_BYTES`]: the roll-ups first, then by severity (most
    /// severe first), then newest first. So the snapshot stays small whatever fires; the
    /// API lists every firing alert.
    #[must_use]
    pub fn firing_json(&self) -> String {
        let firing = self.firing();
        let mut chosen: Vec<(usize, String)> = Vec::new();
        let mut order: Vec<usize> = (0..firing.len()).collect();
        order.sort_by_key(|i| {
            let a = firing[*i];
            (
                a.subject.id != rules::OTHERS && a.subject.id != rules::DIGEST,
                std::cmp::Reverse(a.severity),
                *i,
            )
        });
        let mut bytes = 2;
        for i in order {
            let a = firing[i];
            let json = self
                .rendered
                .get(&a.id)
                .map_or_else(|| a.to_json(), |r| r.object.clone());
            if bytes + json.len() + 1 > SNAPSHOT_ALERTS_BYTES {
                break;
            }
            bytes += json.len() + 1;
            chosen.push((i, json));
        }
        chosen.sort_unstable_by_key(|(i, _)| *i);
        let items: Vec<String> = chosen.into_iter().map(|(_, j)| j).collect();
        format!("[{}]", items.join(","))
    }

    /// How many firing alerts page (neither acknowledged nor silenced) per (rule, rule
    /// severity), for `iocd_alerts_unacknowledged`.
    #[must_use]
    pub fn unacknowledged_counts(&self) -> Vec<(Rule, AlertSeverity, u64)> {
        let mut counts: BTreeMap<(Rule, AlertSeverity), u64> = BTreeMap::new();
        for rule in Rule::ALL {
            let s = rules::settings_of(&self.settings, rule);
            if s.enabled {
                counts.insert((rule, s.severity), 0);
            }
        }
        for a in self.firing.values().filter(|a| a.handling.pages()) {
            *counts.entry((a.rule, a.severity)).or_default() += 1;
        }
        counts.into_iter().map(|((r, s), n)| (r, s, n)).collect()
    }

    /// How many alerts fire per (rule, severity), for `iocd_alerts_firing`.
    #[must_use]
    pub fn firing_counts(&self) -> Vec<(Rule, AlertSeverity, u64)> {
        let mut counts: BTreeMap<(Rule, AlertSeverity), u64> = BTreeMap::new();
        for rule in Rule::ALL {
            let s = rules::settings_of(&self.settings, rule);
            if s.enabled {
                counts.insert((rule, s.severity), 0);
            }
        }
        for a in self.firing.values() {
            *counts.entry((a.rule, a.severity)).or_default() += 1;
        }
        counts.into_iter().map(|((r, s), n)| (r, s, n)).collect()
    }
}

#[cfg(test)]
mod tests;

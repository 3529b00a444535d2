//! The alert engine (docs/contract.md §5.2): built-in rules evaluated against the state at
//! "now", grouped per agency, source, meeting, incident or system, with firing and resolved
//! transitions and `count` kept up to date while firing.
//!
//! [`Engine::evaluate`] takes `now` as an argument (an injectable clock): the pipeline calls
//! it every tick with the daemon's clock, tests call it with any instant, so "fires when a
//! deadline passes with no event arriving" is tested without sleeping. The engine only
//! decides; the pipeline sends each transition to the WebSocket, MQTT, the log and the
//! `iocd_alerts_firing` gauge.

mod rules;
pub use rules::OTHERS;
mod summary;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{AlertSettings, AlertSeverity};
use crate::state::State;
use crate::time::{Calendar, Ts};

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
    /// The values `summary` is built from (subject, count, threshold…), per rule, so that a
    /// client writes the sentence in its own language (docs/alerts.md). An addition to the
    /// contract's alert object.
    pub params: serde_json::Value,
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
    /// The values of the sentence.
    pub params: serde_json::Value,
}

/// The firing alerts and the rules that produce them.
pub struct Engine {
    settings: AlertSettings,
    cal: Calendar,
    firing: BTreeMap<String, Alert>,
    /// `since` of alerts that were firing before a restart (from the checkpoint), used when
    /// they fire again at the first evaluation.
    restored: std::collections::HashMap<String, Ts>,
    /// Whether anything the API lists (an alert, its count or members) changed since the
    /// last [`Engine::take_changed`].
    changed: bool,
    /// Per rule (in [`Rule::ALL`] order), what it read at its last evaluation and until
    /// when that answer held ([`rules::reads`]); `None`: never evaluated.
    evaluated: [Option<(u64, Ts)>; 7],
    /// The instant of the last evaluation.
    last_now: Option<Ts>,
    /// Each firing alert's JSON, rendered when it fires or changes, so that the API list
    /// and the snapshot array are assembled, not rendered, whatever fires.
    rendered: std::collections::HashMap<String, Rendered>,
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
            changed: true,
            evaluated: [None; 7],
            last_now: None,
            rendered: std::collections::HashMap::new(),
        }
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
        self.evaluated = [None; 7];
    }

    /// Evaluates the rules at `now` and returns the transitions: alerts that started
    /// firing, changed count, or resolved (in that order, by id). `state` must have been
    /// advanced to `now` ([`State::advance`]): the dossier rules read its tracked figures.
    ///
    /// A rule is evaluated again only when the part of the state it reads changed or the
    /// next threshold it reported passed; otherwise its alerts stand as they are. So a tick
    /// with nothing new costs almost nothing, whatever the state holds.
    pub fn evaluate(&mut self, state: &State, now: Ts) -> Vec<Alert> {
        debug_assert_eq!(
            state.dossiers.tracker().at(),
            Some(now),
            "state not advanced"
        );
        if self.last_now.is_some_and(|last| now < last) {
            // The clock went back: every threshold must be looked at again.
            self.evaluated = [None; 7];
        }
        self.last_now = Some(now);
        let mut transitions = Vec::new();
        let mut changed = Vec::new();
        let mut resolved = Vec::new();
        for (i, rule) in Rule::ALL.into_iter().enumerate() {
            let reads = rules::reads(state, rule);
            if let Some((seen, until)) = self.evaluated[i]
                && seen == reads
                && now < until
                && reads != u64::MAX
            {
                continue;
            }
            let (hits, until) = rules::hits(&self.settings, state, rule, now);
            self.evaluated[i] = Some((reads, until));
            let matches = rules::cap(&self.settings, state, rule, hits);
            self.apply(
                rule,
                matches,
                now,
                (&mut transitions, &mut changed, &mut resolved),
            );
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

    /// Makes `matches` the alerts of `rule`: new ones fire, changed ones are updated, and
    /// the rule's alerts without a match resolve.
    fn apply(
        &mut self,
        rule: Rule,
        matches: Vec<Match>,
        now: Ts,
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
                    a.params = m.params;
                    changed.push(a.clone());
                    differs = true;
                }
                if differs {
                    self.changed = true;
                    self.rendered.insert(id, Rendered::of(a));
                }
            } else {
                let since = self.restored.get(&id).copied().unwrap_or(now);
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
                    params: m.params,
                    members: m.members,
                    since_ts: since,
                };
                fired.push(alert.clone());
                self.rendered.insert(id.clone(), Rendered::of(&alert));
                self.firing.insert(id, alert);
            }
        }
        for id in gone {
            self.rendered.remove(&id);
            if let Some(mut a) = self.firing.remove(&id) {
                a.state = AlertState::Resolved;
                resolved.push(a);
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
                a.subject.id != rules::OTHERS,
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

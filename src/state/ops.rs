//! Operator actions held in the state: the audit trail (every action within the horizon,
//! by time), and what it says of each alert (acknowledged, assigned) and of the rules
//! (silences).
//!
//! The actions are a set: what an alert's acknowledgement or assignee is follows from the
//! set alone, by the contract's "latest wins" rule on `(at, action_id)`, so the order they
//! arrive in does not matter, and an action that comes twice is applied once. An
//! acknowledgement or assignment belongs to the firing episode it was made in: it counts
//! for an alert only when it was made at or after the alert's `since`, so an alert that
//! resolves and fires again is new again. A silence ends at its `ends_at` or at the earliest
//! `unsilence` of it, whichever comes first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::ChangeLog;
use crate::decode::action::{Action, ActionKind};
use crate::time::Ts;

/// The most silences kept (in force or not): every firing alert is checked against each
/// when one changes, so their number is bounded whatever the actions topic carries. Beyond
/// it the oldest `(at, id)` goes first, which keeps the same silences whatever the order.
pub const MAX_SILENCES: usize = 1000;

/// An action's place in the trail: `(at, action_id)`.
pub type Key = (Ts, Box<str>);

/// The actions and their indexes. Serialises as the list of actions (the indexes are
/// rebuilt when read back).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Action>", into = "Vec<Action>")]
pub struct Ops {
    /// Every action kept, by `(at, id)`: the audit trail.
    log: BTreeMap<Key, Action>,
    /// When each action id was made (idempotence).
    ids: HashMap<Box<str>, Ts>,
    /// Per alert id, its actions.
    by_alert: HashMap<Box<str>, BTreeSet<Key>>,
    /// The `silence` actions.
    silences: BTreeSet<Key>,
    /// Per silence id, its `unsilence` actions (the first is the one that ends it).
    unsilenced: HashMap<Box<str>, BTreeSet<Key>>,
    /// Alerts whose actions changed (`Some(id)`), or the silences (`None`), for the derive
    /// stage. A cache, not state.
    changes: ChangeLog<Option<Box<str>>>,
}

impl PartialEq for Ops {
    fn eq(&self, other: &Self) -> bool {
        self.log == other.log
    }
}

impl From<Vec<Action>> for Ops {
    fn from(actions: Vec<Action>) -> Self {
        let mut ops = Ops::default();
        for a in actions {
            let _ = ops.insert(a, usize::MAX);
        }
        ops
    }
}

impl From<Ops> for Vec<Action> {
    fn from(ops: Ops) -> Self {
        ops.log.into_values().collect()
    }
}

/// What [`Ops::apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new action, now in the trail.
    New,
    /// Its id was already applied.
    Duplicate,
    /// Older than the horizon: not kept.
    TooOld,
}

impl Ops {
    /// Actions kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether no action is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Applies `action`, keeping at most `max` actions (the oldest go first) and none made
    /// before `horizon_start`.
    pub fn apply(&mut self, action: &Action, max: usize, horizon_start: Ts) -> Applied {
        if self.ids.contains_key(&action.id) {
            return Applied::Duplicate;
        }
        if action.at < horizon_start {
            return Applied::TooOld;
        }
        if self.insert(action.clone(), max) {
            Applied::New
        } else {
            Applied::TooOld
        }
    }

    fn insert(&mut self, action: Action, max: usize) -> bool {
        let key: Key = (action.at, action.id.clone());
        // Full, and older than everything kept: not kept, as if it had come first and been
        // pushed out by the newer ones (so the same actions are kept whatever the order).
        if self.log.len() >= max.max(1)
            && self
                .log
                .first_key_value()
                .is_some_and(|(first, _)| key < *first)
        {
            return false;
        }
        while self.log.len() >= max.max(1) {
            let Some((key, _)) = self.log.first_key_value() else {
                break;
            };
            let key = key.clone();
            self.remove(&key);
        }
        self.ids.insert(action.id.clone(), action.at);
        if let Some(alert) = &action.alert_id {
            self.by_alert
                .entry(alert.clone())
                .or_default()
                .insert(key.clone());
            self.changes.push(Some(alert.clone()));
        }
        match action.kind {
            ActionKind::Silence => {
                self.silences.insert(key.clone());
                self.changes.push(None);
                while self.silences.len() > MAX_SILENCES {
                    let Some(oldest) = self.silences.first().cloned() else {
                        break;
                    };
                    if oldest == key {
                        // The new one is the oldest: it is not kept (as if it had come
                        // first and been pushed out by the newer ones).
                        self.silences.remove(&key);
                        self.ids.remove(&action.id);
                        return false;
                    }
                    self.remove(&oldest);
                }
            }
            ActionKind::Unsilence => {
                if let Some(id) = &action.silence_id {
                    self.unsilenced
                        .entry(id.clone())
                        .or_default()
                        .insert(key.clone());
                }
                self.changes.push(None);
            }
            _ => {}
        }
        self.log.insert(key, action);
        true
    }

    fn remove(&mut self, key: &Key) {
        let Some(action) = self.log.remove(key) else {
            return;
        };
        self.ids.remove(&action.id);
        if let Some(alert) = &action.alert_id
            && let Some(keys) = self.by_alert.get_mut(alert)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_alert.remove(alert);
            }
            // Its alert's handling may change (an acknowledgement pruned or pushed out).
            self.changes.push(Some(alert.clone()));
        }
        match action.kind {
            ActionKind::Silence => {
                self.silences.remove(key);
                self.changes.push(None);
            }
            ActionKind::Unsilence => {
                if let Some(id) = &action.silence_id
                    && let Some(keys) = self.unsilenced.get_mut(id)
                {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.unsilenced.remove(id);
                    }
                }
                self.changes.push(None);
            }
            _ => {}
        }
    }

    /// Forgets the actions made before `cutoff`, except silences still in force at `now`.
    pub fn prune(&mut self, cutoff: Ts, now: Ts) {
        let old: Vec<Key> = self
            .log
            .range(..(cutoff, Box::<str>::from("")))
            .filter(|(_, a)| {
                a.kind != ActionKind::Silence || self.silence_end(a).is_none_or(|end| end <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in old {
            self.remove(&key);
        }
    }

    /// When a silence action stops muting: its end, or its earliest `unsilence`.
    #[must_use]
    pub fn silence_end(&self, action: &Action) -> Option<Ts> {
        let s = action.silence.as_ref()?;
        Some(
            self.unsilenced
                .get(&action.id)
                .and_then(BTreeSet::first)
                .map_or(s.ends, |(at, _)| s.ends.min(*at)),
        )
    }

    /// The latest action of `kinds` on `alert` made at or after `since`.
    fn latest(&self, alert: &str, since: Ts, kinds: &[ActionKind]) -> Option<&Action> {
        self.by_alert
            .get(alert)?
            .range((since, Box::<str>::from(""))..)
            .rev()
            .filter_map(|k| self.log.get(k))
            .find(|a| kinds.contains(&a.kind))
    }

    /// The acknowledgement in force on `alert`, firing since `since`.
    #[must_use]
    pub fn acknowledged(&self, alert: &str, since: Ts) -> Option<&Action> {
        self.latest(
            alert,
            since,
            &[ActionKind::Acknowledge, ActionKind::Unacknowledge],
        )
        .filter(|a| a.kind == ActionKind::Acknowledge)
    }

    /// The assignment in force on `alert`, firing since `since`.
    #[must_use]
    pub fn assigned(&self, alert: &str, since: Ts) -> Option<&Action> {
        self.latest(alert, since, &[ActionKind::Assign])
            .filter(|a| a.assignee.as_deref().is_some_and(|s| !s.is_empty()))
    }

    /// The silence muting the alert of `rule` and `subject` at `now`: of those in force,
    /// the one ending last (ties by id).
    #[must_use]
    pub fn silenced(&self, rule: &str, subject: &str, now: Ts) -> Option<&Action> {
        self.silences
            .iter()
            .filter_map(|k| self.log.get(k))
            .filter(|a| {
                a.silence.as_ref().is_some_and(|s| {
                    s.matches(rule, subject, now) && self.silence_end(a).is_some_and(|e| now < e)
                })
            })
            .max_by(|a, b| {
                self.silence_end(a)
                    .cmp(&self.silence_end(b))
                    .then_with(|| b.id.cmp(&a.id))
            })
    }

    /// Every silence action kept, oldest first.
    pub fn silences(&self) -> impl Iterator<Item = &Action> {
        self.silences.iter().filter_map(|k| self.log.get(k))
    }

    /// The instants after `now` when a silence starts or ends: when muting may change.
    pub fn silence_edges(&self, now: Ts) -> impl Iterator<Item = Ts> + '_ {
        self.silences().flat_map(move |a| {
            let start = a.silence.as_ref().map(|s| s.starts);
            let end = self.silence_end(a);
            [start, end].into_iter().flatten().filter(move |t| *t > now)
        })
    }

    /// The actions on `alert`, oldest first.
    pub fn of_alert(&self, alert: &str) -> impl Iterator<Item = &Action> {
        self.by_alert
            .get(alert)
            .into_iter()
            .flatten()
            .filter_map(|k| self.log.get(k))
    }

    /// The trail from `since` (inclusive) to `until` (exclusive), oldest first.
    #[must_use]
    pub fn trail(&self, since: Ts, until: Ts) -> impl DoubleEndedIterator<Item = &Action> {
        let from = (since, Box::<str>::from(""));
        let to = (until, Box::<str>::from(""));
        let range = if from <= to {
            self.log.range(from..to)
        } else {
            self.log.range(to.clone()..to)
        };
        range.map(|(_, a)| a)
    }

    /// What changed, for the derive stage.
    #[must_use]
    pub fn changes(&self) -> &ChangeLog<Option<Box<str>>> {
        &self.changes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::action::{Actor, Role, Silence};
    use crate::time::parse_rfc3339;

    fn ts(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    fn action(id: &str, kind: ActionKind, at: &str) -> Action {
        Action {
            id: id.into(),
            kind,
            at: ts(at),
            by: Actor {
                name: "Trực ban".into(),
                role: Role::Operator,
            },
            alert_id: Some("dossier_overdue:H12".into()),
            comment: None,
            assignee: (kind == ActionKind::Assign).then(|| "Phòng CNTT".into()),
            silence: None,
            silence_id: None,
        }
    }

    fn silence(id: &str, at: &str, ends: &str) -> Action {
        Action {
            alert_id: None,
            silence: Some(Silence {
                rule: "soc_system_silent".into(),
                subject: Some("mail-gw".into()),
                starts: ts(at),
                ends: ts(ends),
                reason: "Bảo trì".into(),
            }),
            ..action(id, ActionKind::Silence, at)
        }
    }

    #[test]
    fn the_latest_acknowledgement_of_the_episode_holds_whatever_the_order() {
        let acts = [
            action("a", ActionKind::Acknowledge, "2026-12-07T08:00:00Z"),
            action("b", ActionKind::Unacknowledge, "2026-12-07T08:05:00Z"),
            action("c", ActionKind::Acknowledge, "2026-12-07T08:10:00Z"),
            action("d", ActionKind::Assign, "2026-12-07T08:11:00Z"),
        ];
        let since = ts("2026-12-07T07:00:00Z");
        let horizon = ts("2026-01-01T00:00:00Z");
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let mut ops = Ops::default();
            for i in order {
                assert_eq!(ops.apply(&acts[i], 100, horizon), Applied::New);
            }
            assert_eq!(ops.apply(&acts[0], 100, horizon), Applied::Duplicate);
            let alert = "dossier_overdue:H12";
            assert_eq!(&*ops.acknowledged(alert, since).unwrap().id, "c");
            assert_eq!(&*ops.assigned(alert, since).unwrap().id, "d");
            // A later episode starts unacknowledged.
            assert!(
                ops.acknowledged(alert, ts("2026-12-07T09:00:00Z"))
                    .is_none()
            );
            let saved: Vec<Action> = ops.clone().into();
            assert_eq!(Ops::from(saved), ops);
        }
    }

    #[test]
    fn a_silence_mutes_until_its_end_or_its_unsilence() {
        let mut ops = Ops::default();
        let horizon = ts("2026-01-01T00:00:00Z");
        ops.apply(
            &silence("s", "2026-12-07T08:00:00Z", "2026-12-07T12:00:00Z"),
            100,
            horizon,
        );
        let at = |s| ts(s);
        assert!(
            ops.silenced("soc_system_silent", "mail-gw", at("2026-12-07T09:00:00Z"))
                .is_some()
        );
        assert!(
            ops.silenced("soc_system_silent", "web", at("2026-12-07T09:00:00Z"))
                .is_none()
        );
        assert!(
            ops.silenced("soc_system_silent", "mail-gw", at("2026-12-07T12:00:00Z"))
                .is_none()
        );
        let mut end = action("u", ActionKind::Unsilence, "2026-12-07T10:00:00Z");
        end.alert_id = None;
        end.silence_id = Some("s".into());
        ops.apply(&end, 100, horizon);
        assert!(
            ops.silenced("soc_system_silent", "mail-gw", at("2026-12-07T10:30:00Z"))
                .is_none()
        );
        // Pruning keeps nothing older than the cutoff but a silence in force.
        ops.prune(at("2026-12-08T00:00:00Z"), at("2026-12-08T00:00:00Z"));
        assert!(ops.is_empty());
    }

    #[test]
    fn the_trail_is_bounded_oldest_first() {
        let mut ops = Ops::default();
        let horizon = ts("2026-12-01T00:00:00Z");
        for i in 0..10 {
            let a = action(
                &format!("x{i}"),
                ActionKind::Comment,
                &format!("2026-12-07T08:0{i}:00Z"),
            );
            ops.apply(&a, 4, horizon);
        }
        assert_eq!(ops.len(), 4);
        let ids: Vec<&str> = ops.trail(Ts::MIN, Ts::MAX).map(|a| a.id.as_ref()).collect();
        assert_eq!(ids, ["x6", "x7", "x8", "x9"]);
        let old = action("old", ActionKind::Comment, "2026-11-01T00:00:00Z");
        assert_eq!(ops.apply(&old, 4, horizon), Applied::TooOld);
    }

    use proptest::prelude::*;

    prop_compose! {
        fn any_action()(
            kind in 0..6usize, alert in 0..2u8, at in 0..20i64, id in 0..12u8, silence in 0..3u8,
            ends in 1..10i64,
        ) -> Action {
            let kind = ActionKind::ALL[kind];
            let at_ts = Ts::from_secs(1_800_000_000 + at * 60);
            let mut a = action(&format!("x{id}"), kind, "2026-12-07T08:00:00Z");
            a.at = at_ts;
            a.alert_id = Some(format!("dossier_overdue:A{alert}").into());
            match kind {
                ActionKind::Silence => {
                    a.alert_id = None;
                    a.silence = Some(Silence {
                        rule: "dossier_overdue".into(),
                        subject: (alert == 1).then(|| "A1".into()),
                        starts: at_ts,
                        ends: at_ts.plus_secs(ends * 300),
                        reason: "r".into(),
                    });
                }
                ActionKind::Unsilence => {
                    a.alert_id = None;
                    a.silence_id = Some(format!("x{silence}").into());
                }
                _ => {}
            }
            a
        }
    }

    /// Actions with unique ids (a copy of an id is the same action), plus redeliveries, and
    /// the same in a random order.
    fn actions() -> impl Strategy<Value = (Vec<Action>, Vec<Action>)> {
        prop::collection::vec(any_action(), 1..24)
            .prop_map(|v| {
                let mut seen = std::collections::HashMap::new();
                let mut out: Vec<Action> = v
                    .into_iter()
                    .map(|a| seen.entry(a.id.clone()).or_insert(a).clone())
                    .collect();
                let copies: Vec<Action> = out.iter().step_by(3).cloned().collect();
                out.extend(copies);
                out
            })
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// The contract's order independence, for operator actions: the same actions in any
        /// order (copies included) give the same trail, and the same acknowledgement,
        /// assignment and silence of every alert at every instant.
        #[test]
        fn the_same_actions_in_any_order_give_the_same_handling((ordered, shuffled) in actions()) {
            let horizon = Ts::from_secs(1_700_000_000);
            let (mut a, mut b) = (Ops::default(), Ops::default());
            for x in &ordered {
                a.apply(x, 1000, horizon);
            }
            for x in &shuffled {
                b.apply(x, 1000, horizon);
            }
            prop_assert!(a == b);
            let id = |x: Option<&Action>| x.map(|x| x.id.clone());
            for alert in ["dossier_overdue:A0", "dossier_overdue:A1"] {
                for minute in 0..24 {
                    let t = Ts::from_secs(1_800_000_000 + minute * 60);
                    prop_assert_eq!(id(a.acknowledged(alert, t)), id(b.acknowledged(alert, t)));
                    prop_assert_eq!(id(a.assigned(alert, t)), id(b.assigned(alert, t)));
                    let subject = &alert["dossier_overdue:".len()..];
                    prop_assert_eq!(
                        id(a.silenced("dossier_overdue", subject, t)),
                        id(b.silenced("dossier_overdue", subject, t))
                    );
                }
            }
        }
    }

    #[test]
    fn at_most_the_newest_silences_are_kept_whatever_the_order() {
        let horizon = Ts::from_secs(1_700_000_000);
        let silences: Vec<Action> = (0..MAX_SILENCES + 5)
            .map(|i| {
                let at = Ts::from_secs(1_800_000_000 + i as i64);
                let mut a = silence(
                    &format!("s{i:05}"),
                    "2026-12-07T08:00:00Z",
                    "2026-12-07T12:00:00Z",
                );
                a.at = at;
                a
            })
            .collect();
        let (mut a, mut b) = (Ops::default(), Ops::default());
        for x in &silences {
            a.apply(x, 100_000, horizon);
        }
        for x in silences.iter().rev() {
            b.apply(x, 100_000, horizon);
        }
        assert_eq!(a.silences().count(), MAX_SILENCES);
        assert!(a == b);
        assert_eq!(a.silences().next().map(|s| &*s.id), Some("s00005"));
    }
}

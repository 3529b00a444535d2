//! The pipeline's answers about operator actions and the alerts' history: it alone holds
//! the state (the actions) and the alert engine, so the API asks it.

use serde_json::{Value, json};

use super::Pipeline;
use crate::decode::action::Action;
use crate::derive::alerts::Alert;
use crate::state::query::AlertLookup;
use crate::store::history::Entry;
use crate::time::Ts;

impl Pipeline {
    /// Where alert `id` stands.
    pub(super) fn alert_lookup(&self, id: &str) -> AlertLookup {
        let firing = self.outputs.deriver.engine().get(id);
        AlertLookup {
            firing: firing.is_some(),
            known: firing.is_some() || self.history.knows(id),
            // From the actions themselves, not the alert's handling (rebuilt at the next
            // tick): an acknowledgement answered a moment ago counts at once.
            acknowledged_by: firing
                .and_then(|a| self.state.ops.acknowledged(id, a.since_ts))
                .map(|t| t.by.name.to_string()),
        }
    }

    fn action_json(&self, a: &Action) -> Value {
        let tz = self.state.params().cal.tz();
        serde_json::from_str(&a.to_json(tz)).unwrap_or(Value::Null)
    }

    /// `GET /api/v1/alerts/{id}/history`: its transitions and the actions on it, oldest
    /// first, and the alert as it is now when it fires.
    pub(super) fn alert_history(&self, id: &str) -> Option<Value> {
        let firing = self.outputs.deriver.engine().get(id);
        let actions: Vec<&Action> = self.state.ops.of_alert(id).collect();
        if firing.is_none() && !self.history.knows(id) && actions.is_empty() {
            return None;
        }
        let tz = self.state.params().cal.tz();
        let mut items: Vec<(Ts, Value)> = self
            .history
            .of(id)
            .map(|e: &Entry| {
                (
                    Ts(e.at_ns),
                    json!({"at": Ts(e.at_ns).to_rfc3339(tz), "event": e.event, "severity": e.severity,
                        "count": e.count, "summary": e.summary}),
                )
            })
            .collect();
        items.extend(actions.into_iter().map(|a| {
            (
                a.at,
                json!({"at": a.at.to_rfc3339(tz), "event": "action", "action": self.action_json(a)}),
            )
        }));
        items.sort_by_key(|(at, _)| *at);
        Some(json!({
            "alert_id": id,
            "firing": firing.is_some(),
            "alert": firing.map(Alert::with_members),
            "entries": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        }))
    }

    /// `GET /api/v1/audit`: the actions from `since` to `until` (by `who`), newest first.
    pub(super) fn audit(
        &self,
        (since, until): (Ts, Ts),
        who: Option<&str>,
        (limit, offset): (usize, usize),
    ) -> Value {
        let matching = || {
            self.state
                .ops
                .trail(since, until)
                .rev()
                .filter(move |a| who.is_none_or(|w| &*a.by.name == w))
        };
        let total = matching().count();
        let actions: Vec<Value> = matching()
            .skip(offset)
            .take(limit)
            .map(|a| self.action_json(a))
            .collect();
        json!({"total": total, "actions": actions})
    }

    /// `GET /api/v1/silences`: every silence kept, newest first, with when it ends in
    /// effect (its end, or when it was ended early) and whether it is in force now.
    pub(super) fn silences(&self) -> Value {
        let now = Ts::now();
        let tz = self.state.params().cal.tz();
        let ops = &self.state.ops;
        let mut list: Vec<Value> = ops
            .silences()
            .filter_map(|a| {
                let s = a.silence.as_ref()?;
                let end = ops.silence_end(a).unwrap_or(s.ends);
                Some(json!({
                    "silence_id": &*a.id,
                    "rule": &*s.rule,
                    "subject": s.subject.as_deref(),
                    "starts_at": s.starts.to_rfc3339(tz),
                    "ends_at": end.to_rfc3339(tz),
                    "reason": &*s.reason,
                    "by": &*a.by.name,
                    "at": a.at.to_rfc3339(tz),
                    "active": s.starts <= now && now < end,
                    "ended_early": end < s.ends,
                }))
            })
            .collect();
        list.reverse();
        json!({"silences": list})
    }
}

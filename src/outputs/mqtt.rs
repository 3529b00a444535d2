//! Alert transitions on the broker: each one, as the alert object, on
//! `{prefix}/alerts/{rule}` (QoS 1, not retained), through the ingest connection.
//!
//! The task takes the derive stage's transitions off a bounded `broadcast` as soon as they
//! come, into a queue keyed by alert id, and publishes from that queue, waiting for room in
//! the MQTT client as long as it takes. Under a burst (a slow broker, a storm of changes) a
//! newer transition of an alert replaces its older pending one in place: the broker gets
//! every alert's latest state, in the order the alerts first changed, and each replaced
//! transition is counted in `iocd_mqtt_alerts_coalesced_total`. The queue holds at most one
//! entry per alert, and alerts are bounded per rule (`alerts.max_subjects_per_rule`), so it
//! is bounded too. Nothing is dropped silently: should the task still fall behind the
//! broadcast, what it missed is counted in `iocd_mqtt_publish_dropped_total{kind="alert"}`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::warn;

use crate::derive::Transition;
use crate::ingest::{PublishError, Publisher};
use crate::telemetry::SelfMetrics;

/// Transitions waiting to be published: one per alert id, the latest, in the order the
/// alerts first entered the queue.
#[derive(Default)]
struct Pending {
    order: VecDeque<String>,
    latest: HashMap<String, Arc<Transition>>,
}

impl Pending {
    /// Adds `t`; returns whether it replaced a pending transition of the same alert.
    fn push(&mut self, t: Arc<Transition>) -> bool {
        let id = t.alert.id.clone();
        let replaced = self.latest.insert(id.clone(), t).is_some();
        if !replaced {
            self.order.push_back(id);
        }
        replaced
    }

    /// The transition to publish next, without removing it.
    fn front(&self) -> Option<Arc<Transition>> {
        self.order
            .front()
            .and_then(|id| self.latest.get(id))
            .map(Arc::clone)
    }

    /// Removes the front transition (once published).
    fn pop(&mut self) {
        if let Some(id) = self.order.pop_front() {
            self.latest.remove(&id);
        }
    }
}

/// Publishes every alert's transitions received on `transitions` until the channel closes
/// (the pipeline stopped), coalescing under bursts.
///
/// `replica` (`[ha] replica`) is added to each alert object as `replica`: every replica
/// publishes its alerts, and a consumer keeps one per alert `id`, `state` and `since`
/// (which the replicas agree on, docs/ha.md).
pub async fn publish_alerts(
    mut transitions: broadcast::Receiver<Arc<Transition>>,
    publisher: Publisher,
    metrics: SelfMetrics,
    replica: Option<String>,
) {
    let mut pending = Pending::default();
    loop {
        let next = pending.front();
        tokio::select! {
            biased;
            received = transitions.recv() => match received {
                Ok(t) => {
                    if pending.push(t) {
                        metrics.mqtt_alerts_coalesced.inc();
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    metrics.publish_dropped.with_label_values(&["alert"]).inc_by(missed);
                    warn!(missed, "Alert transitions came faster than they could be queued; some were not published.");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            sent = publish(&publisher, next.as_deref(), replica.as_deref()), if next.is_some() => {
                if let Err(PublishError::Closed) = sent {
                    return;
                }
                pending.pop();
            }
        }
    }
}

/// Publishes `t` on `{prefix}/alerts/{rule}`, waiting for room in the client.
async fn publish(
    publisher: &Publisher,
    t: Option<&Transition>,
    replica: Option<&str>,
) -> Result<(), PublishError> {
    let Some(t) = t else { return Ok(()) };
    let topic = format!("{}/alerts/{}", publisher.prefix(), t.alert.rule.as_str());
    let payload = match replica {
        Some(name) => with_replica(&t.json, name),
        None => t.json.as_bytes().to_vec(),
    };
    let sent = publisher
        .publish_waiting("alert", topic, payload, Duration::MAX)
        .await;
    if let Err(e) = &sent {
        warn!(alert = %t.alert.id, error = %e, "Alert not published on MQTT.");
    }
    sent
}

/// The alert object `json` with `"replica": name` added.
fn with_replica(json: &str, name: &str) -> Vec<u8> {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json) {
        Ok(mut object) => {
            object.insert("replica".into(), name.into());
            serde_json::to_vec(&object).unwrap_or_else(|_| json.as_bytes().to_vec())
        }
        Err(_) => json.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlertSeverity;
    use crate::derive::alerts::{Alert, AlertState, Rule, Subject};

    fn transition(id: &str, state: AlertState, count: u64) -> Arc<Transition> {
        let alert = Alert {
            id: id.to_owned(),
            rule: Rule::DossierOverdue,
            severity: AlertSeverity::Warning,
            state,
            subject: Subject {
                kind: "agency",
                id: id.to_owned(),
            },
            count,
            since: String::new(),
            summary: String::new(),
            summary_alt: String::new(),
            params: serde_json::Value::Null,
            members: Vec::new(),
            handling: crate::derive::alerts::handling::Handling::default(),
            since_ts: crate::time::Ts(0),
        };
        let json = Arc::from(alert.to_json());
        Arc::new(Transition { alert, json })
    }

    #[test]
    fn a_replica_names_itself_in_each_alert_it_publishes() {
        let t = transition("dossier_overdue:x", AlertState::Firing, 3);
        let v: serde_json::Value = serde_json::from_slice(&with_replica(&t.json, "b")).unwrap();
        assert_eq!(v["replica"], "b");
        assert_eq!(v["id"], "dossier_overdue:x");
        assert_eq!(v["count"], 3);
    }

    #[test]
    fn a_newer_transition_replaces_the_pending_one_in_place() {
        let mut q = Pending::default();
        assert!(!q.push(transition("a", AlertState::Firing, 1)));
        assert!(!q.push(transition("b", AlertState::Firing, 1)));
        assert!(q.push(transition("a", AlertState::Firing, 2)));
        assert!(q.push(transition("a", AlertState::Resolved, 2)));
        let first = q
            .front()
            .map(|t| (t.alert.id.clone(), t.alert.state, t.alert.count));
        assert_eq!(first, Some(("a".to_owned(), AlertState::Resolved, 2)));
        q.pop();
        assert_eq!(q.front().map(|t| t.alert.id.clone()), Some("b".to_owned()));
        q.pop();
        assert!(q.front().is_none());
        // Published, then changed again: a new entry at the back.
        assert!(!q.push(transition("a", AlertState::Firing, 3)));
    }
}

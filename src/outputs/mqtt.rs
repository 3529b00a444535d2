//! Alert transitions on the broker: each one, as the alert object, on
//! `{prefix}/alerts/{rule}` (QoS 1, not retained), through the ingest connection.
//!
//! The task reads the derive stage's transitions from a bounded `broadcast`. If it falls
//! behind (a storm of transitions while the broker is slow), the transitions it missed are
//! counted in `iocd_mqtt_publish_dropped_total{kind="alert"}` and logged, never waited for:
//! the pipeline must not block on an output.

use std::sync::Arc;

use tokio::sync::broadcast;
use tracing::warn;

use crate::derive::Transition;
use crate::ingest::Publisher;
use crate::telemetry::SelfMetrics;

/// Publishes every transition received on `transitions` until the channel closes (the
/// pipeline stopped).
pub async fn publish_alerts(
    mut transitions: broadcast::Receiver<Arc<Transition>>,
    publisher: Publisher,
    metrics: SelfMetrics,
) {
    loop {
        match transitions.recv().await {
            Ok(t) => {
                let rule = t.alert.rule.as_str();
                let topic = format!("{}/alerts/{rule}", publisher.prefix());
                if let Err(e) = publisher.try_publish("alert", topic, t.json.as_bytes().to_vec()) {
                    warn!(alert = %t.alert.id, error = %e, "Alert not published on MQTT.");
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics
                    .publish_dropped
                    .with_label_values(&["alert"])
                    .inc_by(missed);
                warn!(
                    missed,
                    "Alert transitions came faster than MQTT took them; some were not published."
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

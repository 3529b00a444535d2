//! Outgoing publishes (dead letters, alerts) over the ingest connection, never blocking.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::IntCounterVec;
use rumqttc::{AsyncClient, QoS};

use super::options::{MQTT_MAX_PACKET_BYTES, OUTGOING_HEADROOM_BYTES};

/// Why an outgoing publish was not queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// The client's request queue is full (the link is down or slow); the message was
    /// dropped and counted in `publish_dropped{kind}`.
    #[error("the MQTT request queue is full")]
    QueueFull,
    /// The MQTT task has stopped (shutdown).
    #[error("the MQTT connection task has stopped")]
    Closed,
    /// The payload is over the outgoing limit. It is refused here because a packet the
    /// client refuses to write breaks the connection and is retried on every reconnect.
    #[error("the payload of {bytes} bytes is over the outgoing limit of {max} bytes")]
    TooLarge {
        /// The payload's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The topic is empty, too long, or holds a wildcard or a NUL character.
    #[error("{0:?} is not a valid topic to publish on")]
    BadTopic(String),
}

/// Cloneable handle for outgoing publishes (dead letters, alerts) over the ingest
/// connection. It never blocks.
#[derive(Clone)]
pub struct Publisher {
    pub(super) client: AsyncClient,
    pub(super) prefix: Arc<str>,
    pub(super) max_payload_bytes: usize,
    pub(super) open: Arc<AtomicBool>,
    pub(super) dropped: IntCounterVec,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("prefix", &self.prefix)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Queues a QoS 1, not retained publish. Never blocks.
    ///
    /// # Errors
    /// [`PublishError::QueueFull`] when the request queue is full (the message is dropped and
    /// counted in `publish_dropped{kind}`), [`PublishError::Closed`] after the MQTT task has
    /// stopped, [`PublishError::TooLarge`] and [`PublishError::BadTopic`] for a message that
    /// could never be sent.
    pub fn try_publish(
        &self,
        kind: &'static str,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), PublishError> {
        let topic = self.check(topic, &payload)?;
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
        {
            Ok(()) => Ok(()),
            // rumqttc reports "full" and "receiver gone" alike; the flag tells them apart.
            Err(_) if !self.open.load(Ordering::Acquire) => Err(PublishError::Closed),
            Err(_) => {
                self.dropped.with_label_values(&[kind]).inc();
                Err(PublishError::QueueFull)
            }
        }
    }

    /// What can be refused before queueing: a stopped task, a payload over the outgoing
    /// limit, a topic that cannot be published on. Returns the topic when it may go.
    fn check(&self, topic: String, payload: &[u8]) -> Result<String, PublishError> {
        if !self.open.load(Ordering::Acquire) {
            return Err(PublishError::Closed);
        }
        if payload.len() > self.max_payload_bytes {
            return Err(PublishError::TooLarge {
                bytes: payload.len(),
                max: self.max_payload_bytes,
            });
        }
        if !is_publishable_topic(&topic) {
            return Err(PublishError::BadTopic(topic));
        }
        Ok(topic)
    }

    /// Queues a QoS 1, not retained publish, waiting up to `wait` for room in the request
    /// queue: backpressure for outputs that must not be lost (dead letters). Only when the
    /// queue stays full for all of `wait` is the message dropped and counted.
    ///
    /// # Errors
    /// As [`Publisher::try_publish`]; [`PublishError::QueueFull`] only after `wait`.
    pub async fn publish_waiting(
        &self,
        kind: &'static str,
        topic: String,
        payload: Vec<u8>,
        wait: std::time::Duration,
    ) -> Result<(), PublishError> {
        let topic = self.check(topic, &payload)?;
        let queued = self.client.publish(topic, QoS::AtLeastOnce, false, payload);
        match tokio::time::timeout(wait, queued).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(PublishError::Closed),
            Err(_elapsed) => {
                self.dropped.with_label_values(&[kind]).inc();
                Err(PublishError::QueueFull)
            }
        }
    }

    /// Counts one `kind` publish dropped before it reached this client.
    pub fn count_dropped(&self, kind: &'static str) {
        self.dropped.with_label_values(&[kind]).inc();
    }

    /// The configured topic prefix (`ioc/v1` by default), for building output topics.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The largest payload [`Publisher::try_publish`] accepts, in bytes.
    #[must_use]
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }
}

/// Sets the shared "open" flag to false when the ingest task is dropped.
pub(super) struct OpenGuard(pub(super) Arc<AtomicBool>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Whether a topic can be published on (MQTT 3.1.1 section 4.7).
pub(super) fn is_publishable_topic(topic: &str) -> bool {
    !topic.is_empty() && u16::try_from(topic.len()).is_ok() && !topic.contains(['+', '#', '\0'])
}

/// The largest outgoing payload: a dead letter of a `max_payload_bytes` payload.
///
/// The payload is cut to the limit, then written as JSON text or base64 (4/3); JSON
/// escaping of control characters can take 6 bytes per input byte (`\u0001`), so the limit
/// is 6 × `max_payload_bytes` plus 64 KiB for the other fields (topic, detail, times).
/// The broker's `max_packet_size` must allow it, or the broker drops the connection.
#[must_use]
pub fn outgoing_payload_limit(max_payload_bytes: usize) -> usize {
    max_payload_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024)
        .min(MQTT_MAX_PACKET_BYTES - OUTGOING_HEADROOM_BYTES)
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::MqttSettings;
    use crate::ingest::{Acks, MqttIngest};
    use crate::telemetry::SelfMetrics;

    #[test]
    fn oversized_or_wildcard_publishes_are_refused_before_queueing() {
        let metrics = SelfMetrics::new();
        let (tx, _rx) = mpsc::channel(1);
        let settings = MqttSettings::default();
        let built = MqttIngest::new(&settings, None, 10, Acks::OnReceipt, tx, metrics);
        let Ok((_ingest, publisher, _status)) = built else {
            panic!("settings are valid")
        };
        let max = publisher.max_payload_bytes();
        let too_big = publisher.try_publish("deadletter", "ioc/v1/x".into(), vec![0; max + 1]);
        assert_eq!(
            too_big,
            Err(PublishError::TooLarge {
                bytes: max + 1,
                max
            })
        );
        let wildcard = publisher.try_publish("deadletter", "ioc/v1/#".into(), vec![1]);
        assert!(matches!(wildcard, Err(PublishError::BadTopic(_))));
        assert_eq!(
            publisher.try_publish("deadletter", "ioc/v1/x".into(), vec![1]),
            Ok(())
        );
    }

    #[test]
    fn publishing_after_the_task_is_gone_reports_closed() {
        let (tx, _rx) = mpsc::channel(1);
        let built = MqttIngest::new(
            &MqttSettings::default(),
            None,
            10,
            Acks::OnReceipt,
            tx,
            SelfMetrics::new(),
        );
        let Ok((ingest, publisher, _status)) = built else {
            panic!("settings are valid")
        };
        drop(ingest);
        assert_eq!(
            publisher.try_publish("alert", "ioc/v1/a".into(), vec![1]),
            Err(PublishError::Closed)
        );
    }
}

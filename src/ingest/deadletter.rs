//! Dead letters (docs/contract.md §5.1): every rejected payload is republished, with its
//! reason, to `{prefix}/deadletter/{source}` at QoS 1, not retained, so vendors can see
//! exactly what was refused and why.
//!
//! The pipeline hands each dead letter to a queue of its own, bounded by count and by bytes,
//! which [`DeadLetterSender::run`] drains into the MQTT client, waiting for room there as
//! long as it takes. A burst (thousands of rejections a second) is absorbed by that queue
//! instead of by the client's request queue, and the pipeline never waits on the client:
//! the MQTT task may itself be waiting for the pipeline, and the two would stall each other.
//! Only when the queue stays full for [`DEAD_LETTER_WAIT`] (the broker is gone or far too
//! slow) is a dead letter dropped, and counted in
//! `iocd_mqtt_publish_dropped_total{kind="deadletter"}`; the rejection itself is always
//! counted in `iocd_events_rejected_total`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::{debug, warn};

use crate::decode::{DecodeError, Source};
use crate::ingest::{PublishError, Publisher, RawMessage};
use crate::time::Calendar;

/// The dead-letter document.
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    /// The reason code.
    pub reason: &'static str,
    /// What exactly was wrong.
    pub detail: &'a str,
    /// The topic it came on.
    pub topic: &'a str,
    /// When the daemon received it (RFC 3339, local offset).
    pub received_at: String,
    /// The payload, as text or base64.
    pub payload: String,
    /// `utf8` or `base64`.
    pub payload_encoding: &'static str,
    /// Present and true when the payload was cut to the size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl<'a> DeadLetter<'a> {
    /// Builds the dead letter of `msg`, cutting the payload to `max_payload_bytes`.
    #[must_use]
    pub fn new(
        msg: &'a RawMessage,
        err: &'a DecodeError,
        max_payload_bytes: usize,
        cal: &Calendar,
    ) -> Self {
        let truncated = msg.payload.len() > max_payload_bytes;
        let bytes = &msg.payload[..msg.payload.len().min(max_payload_bytes)];
        let (payload, payload_encoding) = match std::str::from_utf8(bytes) {
            Ok(text) if !truncated => (text.to_owned(), "utf8"),
            _ => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                "base64",
            ),
        };
        Self {
            reason: err.reason.as_str(),
            detail: &err.detail,
            topic: &msg.topic,
            received_at: msg.received_at.to_rfc3339(cal.tz()),
            payload,
            payload_encoding,
            truncated,
        }
    }
}

/// How long the pipeline waits for room in the dead-letter queue before dropping one.
pub const DEAD_LETTER_WAIT: Duration = Duration::from_secs(2);
/// Dead letters queued at most (a burst of 2,000 rejections a second for 4 s).
const QUEUE: usize = 8192;
/// Bytes of dead letters queued at most.
const BUDGET_BYTES: usize = 64 << 20;

/// One dead letter on its way, holding its share of the byte budget.
struct Outgoing {
    topic: String,
    body: Vec<u8>,
    _budget: OwnedSemaphorePermit,
}

/// The pipeline's end: formats dead letters and queues them.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    queue: Option<(mpsc::Sender<Outgoing>, Arc<Semaphore>, Publisher)>,
    cal: Calendar,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("topic", &self.topic)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The broker's end: publishes what was queued, in order.
pub struct DeadLetterSender {
    rx: mpsc::Receiver<Outgoing>,
    publisher: Publisher,
}

impl DeadLetters {
    /// Dead letters published through `publisher`, and the task that sends them.
    #[must_use]
    pub fn new(publisher: Publisher, cal: Calendar) -> (Self, DeadLetterSender) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let budget = Arc::new(Semaphore::new(BUDGET_BYTES));
        let letters = Self {
            queue: Some((tx, budget, publisher.clone())),
            cal,
        };
        (letters, DeadLetterSender { rx, publisher })
    }

    /// Dead letters that go nowhere: for replay and benchmarks.
    #[must_use]
    pub fn discard(cal: Calendar) -> Self {
        Self { queue: None, cal }
    }

    /// Queues the dead letter of `msg`, waiting up to [`DEAD_LETTER_WAIT`] for room; only
    /// then is it dropped and counted.
    pub async fn publish(
        &self,
        source: Source,
        msg: &RawMessage,
        err: &DecodeError,
        max_payload_bytes: usize,
    ) {
        self.publish_under(source.as_str(), msg, err, max_payload_bytes)
            .await;
    }

    /// As [`DeadLetters::publish`], under `{prefix}/deadletter/{level}`: `ops` for an
    /// operator action that cannot be read.
    pub async fn publish_under(
        &self,
        level: &str,
        msg: &RawMessage,
        err: &DecodeError,
        max_payload_bytes: usize,
    ) {
        let Some((tx, budget, publisher)) = &self.queue else {
            return;
        };
        let letter = DeadLetter::new(msg, err, max_payload_bytes, &self.cal);
        let topic = format!("{}/deadletter/{level}", publisher.prefix());
        let body = match serde_json::to_vec(&letter) {
            Ok(body) => body,
            Err(e) => {
                debug!(error = %e, "Dead letter not serialisable.");
                return;
            }
        };
        let bytes = u32::try_from(body.len().min(BUDGET_BYTES)).unwrap_or(u32::MAX);
        let queued = tokio::time::timeout(DEAD_LETTER_WAIT, async {
            let budget = Arc::clone(budget).acquire_many_owned(bytes).await.ok()?;
            let outgoing = Outgoing {
                topic,
                body,
                _budget: budget,
            };
            tx.send(outgoing).await.ok()
        })
        .await;
        if !matches!(queued, Ok(Some(()))) {
            publisher.count_dropped("deadletter");
            warn!(
                source = level,
                "Dead letter dropped: the dead-letter queue stayed full (is the broker reachable?)."
            );
        }
    }
}

impl DeadLetterSender {
    /// Publishes queued dead letters in order until the pipeline's end is dropped, waiting
    /// for room in the MQTT client as long as needed.
    pub async fn run(mut self) {
        while let Some(out) = self.rx.recv().await {
            let sent = self
                .publisher
                .publish_waiting("deadletter", out.topic, out.body, Duration::MAX)
                .await;
            match sent {
                Ok(()) => {}
                Err(PublishError::Closed) => return,
                Err(e) => warn!(error = %e, "Dead letter not published."),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::decode::Reason;
    use crate::time::Ts;

    fn msg(payload: &'static [u8]) -> RawMessage {
        RawMessage {
            topic: "ioc/v1/soc/x".into(),
            payload: Bytes::from_static(payload),
            received_at: Ts::from_secs(1_764_000_000),
            ack: None,
        }
    }

    #[test]
    fn a_utf8_payload_is_kept_as_text() {
        let m = msg(b"{not json");
        let err = DecodeError {
            reason: Reason::InvalidJson,
            detail: "x".into(),
        };
        let v = serde_json::to_value(DeadLetter::new(&m, &err, 100, &Calendar::default())).unwrap();
        assert_eq!(v["payload"], "{not json");
        assert_eq!(v["payload_encoding"], "utf8");
        assert_eq!(v["reason"], "invalid_json");
        assert!(v.get("truncated").is_none());
    }

    #[test]
    fn a_cut_or_binary_payload_is_base64() {
        let m = msg(b"0123456789");
        let err = DecodeError {
            reason: Reason::TooLarge,
            detail: "x".into(),
        };
        let v = serde_json::to_value(DeadLetter::new(&m, &err, 4, &Calendar::default())).unwrap();
        assert_eq!(v["payload"], "MDEyMw==");
        assert_eq!(v["payload_encoding"], "base64");
        assert_eq!(v["truncated"], true);
        let m = msg(b"\xff\xfe");
        let v = serde_json::to_value(DeadLetter::new(&m, &err, 100, &Calendar::default())).unwrap();
        assert_eq!(v["payload_encoding"], "base64");
    }
}

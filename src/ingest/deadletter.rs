//! Dead letters (docs/contract.md §5.1): every rejected payload is republished, with its
//! reason, to `{prefix}/deadletter/{source}` at QoS 1, not retained, so vendors can see
//! exactly what was refused and why. Publishing never blocks the pipeline: when the MQTT
//! request queue is full the dead letter is dropped and counted (the rejection itself is
//! always counted in `iocd_events_rejected_total`).

use base64::Engine as _;
use serde::Serialize;
use tracing::{debug, warn};

use crate::decode::{DecodeError, Source};
use crate::ingest::{Publisher, RawMessage};
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

/// How long a dead letter waits for room in the MQTT request queue before it is dropped
/// (and counted in `iocd_mqtt_publish_dropped_total{kind="deadletter"}`). Long enough for
/// any burst on a live link; short enough that a stuck link cannot hold ingestion for long.
pub const DEAD_LETTER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Publishes dead letters through the ingest connection.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    publisher: Option<Publisher>,
    cal: Calendar,
}

impl DeadLetters {
    /// Dead letters over `publisher` (`None` discards them: for replay and benchmarks).
    #[must_use]
    pub fn new(publisher: Option<Publisher>, cal: Calendar) -> Self {
        Self { publisher, cal }
    }

    /// Publishes the dead letter of `msg`. When the MQTT request queue is full it waits, up
    /// to [`DEAD_LETTER_WAIT`], for room (the pipeline, and so ingestion, waits with it: the
    /// broker holds the input meanwhile); only then is the dead letter dropped and counted.
    pub async fn publish(
        &self,
        source: Source,
        msg: &RawMessage,
        err: &DecodeError,
        max_payload_bytes: usize,
    ) {
        let Some(publisher) = &self.publisher else {
            return;
        };
        let letter = DeadLetter::new(msg, err, max_payload_bytes, &self.cal);
        let topic = format!("{}/deadletter/{}", publisher.prefix(), source.as_str());
        match serde_json::to_vec(&letter) {
            Ok(body) => {
                let sent = publisher
                    .publish_waiting("deadletter", topic, body, DEAD_LETTER_WAIT)
                    .await;
                if let Err(e) = sent {
                    warn!(error = %e, "Dead letter not published.");
                }
            }
            Err(e) => debug!(error = %e, "Dead letter not serialisable."),
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

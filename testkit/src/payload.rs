//! One contract event as a JSON payload, built with defaults and overrides.
//!
//! In: a type and the ids that matter to the test. Out: a [`Payload`] (source, JSON object)
//! that serialises to what a feed publishes. Defaults are the smallest valid event of the
//! type: a fresh `event_id` (`tk-1`, `tk-2`, … in this process), `occurred_at` now, and the
//! required fields (`agency` `A`, `procedure` `P`, `channel` `online`, `due_at` `null`,
//! `level` `province`, `severity` as given, …). Override any field with the setters, or
//! [`Payload::set`] and [`Payload::merge`]; remove one with [`Payload::remove`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

/// The one-stop system's source name, as in topics (`{prefix}/onestop/…`).
pub const ONESTOP: &str = "onestop";
/// The video-conferencing system's source name.
pub const VC: &str = "vc";
/// The security operations centre's source name.
pub const SOC: &str = "soc";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// RFC 3339 (UTC) of now plus `secs` (negative: in the past).
#[must_use]
pub fn at(secs: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs)).to_string()
}

/// A contract event of one source: the envelope and the fields of its type.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    source: &'static str,
    fields: Map<String, Value>,
}

/// The envelope of a `ty` event of `source` (`onestop`, `vc` or `soc`): a fresh `event_id`,
/// `occurred_at` now, no other field.
#[must_use]
pub fn event(source: &'static str, ty: &str) -> Payload {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut fields = Map::new();
    fields.insert("event_id".into(), format!("tk-{n}").into());
    fields.insert("type".into(), ty.into());
    fields.insert("occurred_at".into(), at(0).into());
    Payload { source, fields }
}

/// A `heartbeat` of `source`.
#[must_use]
pub fn heartbeat(source: &'static str) -> Payload {
    event(source, "heartbeat")
}

// ------------------------------------------------------------------------------ one-stop

/// A one-stop event of type `ty` about `dossier_id`, with no other field: `transferred`,
/// `supplement_requested`, `paused`, `returned`, … (see [`received`], [`submitted`] and
/// [`resolved`] for the types with required fields).
#[must_use]
pub fn dossier(ty: &str, dossier_id: &str) -> Payload {
    event(ONESTOP, ty).set("dossier_id", dossier_id)
}

/// `submitted` online at agency `A`, procedure `P`.
#[must_use]
pub fn submitted(dossier_id: &str) -> Payload {
    dossier("submitted", dossier_id)
        .agency("A")
        .procedure("P")
        .channel("online")
}

/// `received` online at agency `A`, procedure `P`, without a deadline (`due_at: null`).
#[must_use]
pub fn received(dossier_id: &str) -> Payload {
    submitted(dossier_id).typed("received").due(Value::Null)
}

/// `resolved` without a deadline (`due_at: null`), no agency, no outcome.
#[must_use]
pub fn resolved(dossier_id: &str) -> Payload {
    dossier("resolved", dossier_id).due(Value::Null)
}

/// `transferred` to `agency`.
#[must_use]
pub fn transferred(dossier_id: &str, agency: &str) -> Payload {
    dossier("transferred", dossier_id).agency(agency)
}

// ---------------------------------------------------------------- video conferencing

/// `meeting_started` of level `province`, titled `Họp {meeting_id}`, with no expected
/// endpoints listed (set `expected_endpoints` to list some).
#[must_use]
pub fn meeting_started(meeting_id: &str) -> Payload {
    event(VC, "meeting_started")
        .set("meeting_id", meeting_id)
        .set("title", format!("Họp {meeting_id}"))
        .set("level", "province")
}

/// `meeting_ended`.
#[must_use]
pub fn meeting_ended(meeting_id: &str) -> Payload {
    event(VC, "meeting_ended").set("meeting_id", meeting_id)
}

/// `endpoint_joined`, without an agency.
#[must_use]
pub fn endpoint_joined(meeting_id: &str, endpoint_id: &str) -> Payload {
    event(VC, "endpoint_joined")
        .set("meeting_id", meeting_id)
        .set("endpoint_id", endpoint_id)
}

/// `endpoint_left`.
#[must_use]
pub fn endpoint_left(meeting_id: &str, endpoint_id: &str) -> Payload {
    endpoint_joined(meeting_id, endpoint_id).typed("endpoint_left")
}

/// `endpoint_stats` of a good link (0.1 % loss, 5 ms jitter, 40 ms round trip, 2048 kbit/s);
/// [`Payload::quality`] sets the three figures the poor-quality rule reads.
#[must_use]
pub fn endpoint_stats(meeting_id: &str, endpoint_id: &str) -> Payload {
    endpoint_joined(meeting_id, endpoint_id)
        .typed("endpoint_stats")
        .quality(0.1, 5.0, 40.0)
        .set("bitrate_kbps", 2048)
}

// --------------------------------------------------------------------------------- SOC

/// `alert` `alert_id` on `system_id`, category `intrusion`.
#[must_use]
pub fn alert(alert_id: &str, system_id: &str, severity: &str) -> Payload {
    event(SOC, "alert")
        .set("alert_id", alert_id)
        .set("system_id", system_id)
        .set("severity", severity)
        .set("category", "intrusion")
}

/// `incident_opened` on system `S1`, without a title.
#[must_use]
pub fn incident_opened(incident_id: &str, severity: &str) -> Payload {
    event(SOC, "incident_opened")
        .set("incident_id", incident_id)
        .set("system_id", "S1")
        .set("severity", severity)
}

/// `incident_acknowledged`.
#[must_use]
pub fn incident_acknowledged(incident_id: &str) -> Payload {
    event(SOC, "incident_acknowledged").set("incident_id", incident_id)
}

/// `incident_resolved`.
#[must_use]
pub fn incident_resolved(incident_id: &str) -> Payload {
    event(SOC, "incident_resolved").set("incident_id", incident_id)
}

/// `system_heartbeat` of `system_id`.
#[must_use]
pub fn system_heartbeat(system_id: &str) -> Payload {
    event(SOC, "system_heartbeat").set("system_id", system_id)
}

// ---------------------------------------------------------------------------- Payload

impl Payload {
    /// Sets (or replaces) `key`.
    #[must_use]
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Sets every field of `fields` (a JSON object; anything else changes nothing).
    #[must_use]
    pub fn merge(mut self, fields: Value) -> Self {
        if let Value::Object(fields) = fields {
            self.fields.extend(fields);
        }
        self
    }

    /// Removes `key` (a payload missing a required field, say).
    #[must_use]
    pub fn remove(mut self, key: &str) -> Self {
        self.fields.remove(key);
        self
    }

    /// Sets `event_id`.
    #[must_use]
    pub fn id(self, event_id: impl Into<String>) -> Self {
        self.set("event_id", event_id.into())
    }

    /// Sets `type`.
    #[must_use]
    pub fn typed(self, ty: &str) -> Self {
        self.set("type", ty)
    }

    /// Sets `occurred_at` (RFC 3339, as the test writes it).
    #[must_use]
    pub fn at(self, occurred_at: impl Into<String>) -> Self {
        self.set("occurred_at", occurred_at.into())
    }

    /// Sets `occurred_at` to `secs` seconds ago.
    #[must_use]
    pub fn ago(self, secs: i64) -> Self {
        self.at(at(-secs))
    }

    /// Sets `due_at`: an RFC 3339 string, `Option` of one (`None`: `null`), or `Value::Null`.
    #[must_use]
    pub fn due(self, due_at: impl Into<Value>) -> Self {
        self.set("due_at", due_at)
    }

    /// Sets `agency`.
    #[must_use]
    pub fn agency(self, agency: &str) -> Self {
        self.set("agency", agency)
    }

    /// Sets `procedure`.
    #[must_use]
    pub fn procedure(self, procedure: &str) -> Self {
        self.set("procedure", procedure)
    }

    /// Sets `channel` (`online`, `direct` or `postal`).
    #[must_use]
    pub fn channel(self, channel: &str) -> Self {
        self.set("channel", channel)
    }

    /// Sets the link figures of an `endpoint_stats`: packet loss (%), jitter and round-trip
    /// time (ms).
    #[must_use]
    pub fn quality(self, packet_loss_pct: f64, jitter_ms: f64, rtt_ms: f64) -> Self {
        self.set("packet_loss_pct", packet_loss_pct)
            .set("jitter_ms", jitter_ms)
            .set("rtt_ms", rtt_ms)
    }

    /// The source it is published by: [`ONESTOP`], [`VC`] or [`SOC`].
    #[must_use]
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// A field's value.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// The event as a JSON value.
    #[must_use]
    pub fn json(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    /// The payload bytes, as published.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Payload {
    /// The compact JSON text of the event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", json!(self.fields))
    }
}

impl From<Payload> for Value {
    fn from(p: Payload) -> Value {
        Value::Object(p.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_smallest_valid_event_and_overrides_replace_them() {
        let a = received("D1");
        let b = received("D1");
        assert_ne!(a.get("event_id"), b.get("event_id"), "fresh ids");
        assert_eq!(a.source(), ONESTOP);
        let v = a
            .id("e1")
            .at("2026-11-24T09:00:00+07:00")
            .agency("B")
            .due("2026-11-25T17:00:00+07:00")
            .json();
        assert_eq!(
            v,
            json!({"event_id": "e1", "type": "received", "occurred_at": "2026-11-24T09:00:00+07:00",
                   "dossier_id": "D1", "agency": "B", "procedure": "P", "channel": "online",
                   "due_at": "2026-11-25T17:00:00+07:00"})
        );
        let stats = endpoint_stats("M1", "E1").quality(5.0, 1.0, 2.0).json();
        assert_eq!(stats["type"], "endpoint_stats");
        assert_eq!(stats["packet_loss_pct"], 5.0);
        assert_eq!(stats["bitrate_kbps"], 2048);
        let parsed: Value =
            serde_json::from_slice(&resolved("D2").remove("due_at").bytes()).expect("JSON");
        assert!(parsed.get("due_at").is_none());
        assert_eq!(
            resolved("D3").due(None::<String>).json()["due_at"],
            Value::Null
        );
    }
}

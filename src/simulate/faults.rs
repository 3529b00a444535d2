//! Faults injected on purpose, as real feeds produce them: a repeated event (a vendor's
//! retry), an event held back and sent after later ones, and corrupted copies whose
//! rejection reason is known exactly. The valid stream itself stays complete: a malformed
//! payload or a duplicate is an extra message, and an out-of-order one is only late.
//!
//! Each corruption is built so that the reason it declares is the first that applies in
//! the daemon's precedence (`too_large` > `invalid_json` > `not_object` > `missing_field` >
//! `wrong_type` > `unknown_type` > `invalid_value` > `out_of_range` > `future_timestamp`).

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value};

use super::clock::Clock;
use super::generator::{Fault, SimMessage};
use crate::decode::{Reason, Source};
use crate::time::Ts;

/// Share of faults that are duplicates, held-back events and corrupted copies.
const KINDS: [f64; 3] = [0.35, 0.2, 0.45];
/// Reasons of corrupted copies and their shares; `out_of_range` needs link statistics and
/// is drawn again for other events.
const REASONS: [(Reason, f64); 8] = [
    (Reason::InvalidJson, 0.22),
    (Reason::NotObject, 0.05),
    (Reason::MissingField, 0.2),
    (Reason::WrongType, 0.13),
    (Reason::UnknownType, 0.1),
    (Reason::InvalidValue, 0.15),
    (Reason::OutOfRange, 0.1),
    (Reason::FutureTimestamp, 0.05),
];

/// Decides the fault of each event.
#[derive(Clone, Debug)]
pub(super) struct Injector {
    /// Share of events with a fault.
    share: f64,
    /// How the faulty ones split into duplicates, held-back events and corrupted copies.
    kinds: [f64; 3],
}

/// A message and when to publish it.
pub(super) type Timed = (Ts, SimMessage);

impl Injector {
    pub(super) fn new(share: f64) -> Self {
        Self {
            share: clamp_share(share),
            kinds: KINDS,
        }
    }

    /// Each kind of fault with a share of its own: `shares` of duplicates, held-back events
    /// and corrupted copies, per event.
    pub(super) fn with_shares(shares: [f64; 3]) -> Self {
        let kinds = shares.map(clamp_share);
        let share = kinds.iter().sum::<f64>();
        if share <= 0.0 {
            return Self::new(0.0);
        }
        Self {
            share: share.min(1.0),
            kinds,
        }
    }

    /// The event as published, and possibly a faulty sibling: a repeat a little later or a
    /// corrupted copy right after it.
    pub(super) fn inject(
        &self,
        rng: &mut StdRng,
        clock: &Clock,
        at: Ts,
        source: Source,
        topic: String,
        obj: &Map<String, Value>,
    ) -> [Option<Timed>; 2] {
        let payload = serde_json::to_vec(obj).unwrap_or_default();
        let msg = SimMessage {
            topic,
            payload,
            fault: None,
            source,
            at,
        };
        if self.share <= 0.0 || rng.random::<f64>() >= self.share {
            return [Some((at, msg)), None];
        }
        match pick(rng, &self.kinds) {
            0 => {
                let later = after(at, rng.random_range(0.2..20.0));
                let copy = SimMessage {
                    fault: Some(Fault::Duplicate),
                    at: later,
                    ..msg.clone()
                };
                [Some((at, msg)), Some((later, copy))]
            }
            1 => {
                let later = after(at, rng.random_range(5.0..90.0));
                let held = SimMessage {
                    fault: Some(Fault::OutOfOrder),
                    at: later,
                    ..msg
                };
                [Some((later, held)), None]
            }
            _ => {
                let (reason, payload) = corrupt(rng, clock, at, obj, &msg.payload);
                let bad = SimMessage {
                    payload,
                    fault: Some(Fault::Malformed(reason)),
                    ..msg.clone()
                };
                [Some((at, msg)), Some((at, bad))]
            }
        }
    }
}

fn clamp_share(share: f64) -> f64 {
    if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn after(at: Ts, secs: f64) -> Ts {
    Ts(at.0.saturating_add((secs * 1e9) as i64))
}

fn pick(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    weights.len() - 1
}

/// A corrupted copy of the event `obj` (serialised as `bytes`) and the reason it earns.
fn corrupt(
    rng: &mut StdRng,
    clock: &Clock,
    at: Ts,
    obj: &Map<String, Value>,
    bytes: &[u8],
) -> (Reason, Vec<u8>) {
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let weights: Vec<f64> = REASONS
        .iter()
        .map(|&(r, w)| {
            if r == Reason::OutOfRange && ty != "endpoint_stats" {
                0.0
            } else {
                w
            }
        })
        .collect();
    let reason = REASONS[pick(rng, &weights)].0;
    let mut o = obj.clone();
    let bytes = match reason {
        Reason::InvalidJson => return (reason, invalid_json(rng, bytes)),
        Reason::NotObject => {
            // A vendor batching events into an array.
            let mut v = Vec::with_capacity(bytes.len() + 2);
            v.push(b'[');
            v.extend_from_slice(bytes);
            v.push(b']');
            return (reason, v);
        }
        Reason::MissingField => {
            let fields = required(ty);
            let field = fields[rng.random_range(0..fields.len())];
            o.remove(field);
            o
        }
        Reason::WrongType => {
            wrong_type(rng, &mut o, ty);
            o
        }
        Reason::UnknownType => {
            let names = [
                "status_changed",
                "dossier_updated",
                "alert_closed",
                "recording_started",
            ];
            o.insert(
                "type".into(),
                names[rng.random_range(0..names.len())].into(),
            );
            o
        }
        Reason::InvalidValue => {
            invalid_value(rng, clock, at, &mut o, ty);
            o
        }
        Reason::OutOfRange => {
            let (field, value) = match rng.random_range(0..3) {
                0 => ("packet_loss_pct", rng.random_range(100.5..250.0)),
                1 => ("jitter_ms", -rng.random_range(1.0..50.0)),
                _ => ("rtt_ms", -1.0),
            };
            o.insert(field.into(), ((value * 10.0_f64).round() / 10.0).into());
            o
        }
        Reason::FutureTimestamp | Reason::TooLarge | Reason::MappingFailed => {
            // A source whose clock runs hours ahead.
            let ahead = after(at, rng.random_range(7200.0..93_600.0));
            o.insert("occurred_at".into(), clock.rfc3339(ahead, false).into());
            return (Reason::FutureTimestamp, to_bytes(&o));
        }
    };
    (reason, to_bytes(&bytes))
}

fn to_bytes(o: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(o).unwrap_or_default()
}

/// Cut short (a truncated transfer), or with a trailing comma (hand-built JSON).
fn invalid_json(rng: &mut StdRng, bytes: &[u8]) -> Vec<u8> {
    if bytes.len() > 8 && rng.random_bool(0.7) {
        let cut = rng.random_range(bytes.len() / 4..bytes.len() - 2);
        return bytes[..cut].to_vec();
    }
    let mut v = bytes.to_vec();
    if v.last() == Some(&b'}') {
        v.pop();
        v.extend_from_slice(b",}");
    } else {
        v.extend_from_slice(b"}}");
    }
    v
}

/// Fields of type `ty` that are always required (envelope first).
fn required(ty: &str) -> &'static [&'static str] {
    match ty {
        "submitted" => &[
            "event_id",
            "occurred_at",
            "dossier_id",
            "agency",
            "procedure",
            "channel",
        ],
        "received" => &[
            "event_id",
            "occurred_at",
            "dossier_id",
            "agency",
            "channel",
            "due_at",
        ],
        "resolved" => &["event_id", "occurred_at", "dossier_id", "due_at"],
        "heartbeat" => &["event_id", "occurred_at", "type"],
        "meeting_started" => &["event_id", "occurred_at", "meeting_id", "title", "level"],
        "meeting_ended" => &["event_id", "meeting_id"],
        "endpoint_joined" | "endpoint_left" => &["event_id", "meeting_id", "endpoint_id"],
        "endpoint_stats" => &["occurred_at", "endpoint_id", "packet_loss_pct", "rtt_ms"],
        "alert" => &["event_id", "alert_id", "system_id", "severity", "category"],
        "incident_opened" => &["event_id", "incident_id", "system_id", "severity"],
        "incident_acknowledged" | "incident_resolved" => &["occurred_at", "incident_id"],
        "system_heartbeat" => &["event_id", "system_id"],
        _ => &["event_id", "occurred_at", "dossier_id"],
    }
}

/// A field of the wrong JSON type: a number where a string is due, or the reverse.
fn wrong_type(rng: &mut StdRng, o: &mut Map<String, Value>, ty: &str) {
    let choice = rng.random_range(0..3);
    if choice == 0 && o.contains_key("due_at") {
        o.insert("due_at".into(), 20_261_128.into());
    } else if choice == 0 && ty == "endpoint_stats" {
        o.insert("packet_loss_pct".into(), "2.4".into());
    } else if choice == 0 && ty == "meeting_started" {
        o.insert("expected_endpoints".into(), "EP-PT-UBND,EP-X01".into());
    } else if choice == 1 {
        o.insert("event_id".into(), rng.random_range(1..1_000_000u32).into());
    } else {
        o.insert(
            "occurred_at".into(),
            rng.random_range(1.7e9..1.9e9_f64).round().into(),
        );
    }
}

/// A string of the right type but an unknown enum value, a malformed timestamp, or an
/// empty id.
fn invalid_value(rng: &mut StdRng, clock: &Clock, at: Ts, o: &mut Map<String, Value>, ty: &str) {
    let choice = rng.random_range(0..3);
    if choice == 0 {
        let swapped = match ty {
            "submitted" | "received" => Some(("channel", "fax")),
            "alert" | "incident_opened" => Some(("severity", "severe")),
            "meeting_started" => Some(("level", "district")),
            _ => None,
        };
        if let Some((field, value)) = swapped {
            o.insert(field.into(), value.into());
            return;
        }
    }
    if choice == 1 {
        o.insert("event_id".into(), "".into());
        return;
    }
    // A local time without its offset, as some systems log it.
    let text = clock.rfc3339(at, false);
    let naive = text
        .get(..19)
        .unwrap_or("2026-11-24T08:15:02")
        .replace('T', " ");
    o.insert("occurred_at".into(), naive.into());
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::simulate::clock::Rhythm;

    #[test]
    fn each_kind_of_fault_can_have_a_share_of_its_own() {
        let at = Ts::from_secs(1_795_000_000);
        let clock = Clock::new(Rhythm::Busy, at);
        let mut rng = StdRng::seed_from_u64(1);
        let mut obj = Map::new();
        obj.insert("event_id".into(), "hb-1".into());
        obj.insert("type".into(), "heartbeat".into());
        obj.insert("occurred_at".into(), clock.rfc3339(at, true).into());
        let injector = Injector::with_shares([0.01, 0.0, 0.01]);
        let mut counts = [0_u32; 4];
        for _ in 0..100_000 {
            let out = injector.inject(&mut rng, &clock, at, Source::Onestop, "t".into(), &obj);
            for (_, msg) in out.into_iter().flatten() {
                let i = match msg.fault {
                    None => 0,
                    Some(Fault::Duplicate) => 1,
                    Some(Fault::OutOfOrder) => 2,
                    Some(Fault::Malformed(_)) => 3,
                };
                counts[i] += 1;
            }
        }
        // Every event is sent once; 1 % of them once more, 1 % with a corrupted copy.
        assert_eq!(counts[0], 100_000);
        assert_eq!(counts[2], 0);
        assert!((900..1100).contains(&counts[1]), "{counts:?}");
        assert!((900..1100).contains(&counts[3]), "{counts:?}");
        // No share at all: no fault.
        let none = Injector::with_shares([0.0; 3]);
        let out = none.inject(&mut rng, &clock, at, Source::Onestop, "t".into(), &obj);
        assert!(out[0].as_ref().is_some_and(|(_, m)| m.fault.is_none()) && out[1].is_none());
    }
}

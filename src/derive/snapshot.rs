//! The snapshot document of docs/contract.md §4, built once per change and shared.
//!
//! Each part (`onestop`, `vc`, `soc`, `alerts`, `sources`) is serialised once into JSON
//! text when the view changes; a frame for one client is those parts spliced together with
//! that connection's `seq`, holding only the parts it subscribed to. So a thousand clients
//! cost a thousand string concatenations per change, not a thousand serialisations.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::decode::{DossierStatus, Source};
use crate::derive::View;
use crate::time::{Calendar, Ts};

/// Parts a client can subscribe to (`type`, `seq`, `at` and `sources` always come).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // a set of four independent flags
pub struct Topics {
    /// One-stop figures.
    pub onestop: bool,
    /// Video-conferencing figures.
    pub vc: bool,
    /// SOC figures.
    pub soc: bool,
    /// Firing alerts in snapshots, and alert frames.
    pub alerts: bool,
}

impl Topics {
    /// Everything: what a client gets until it subscribes.
    pub const ALL: Topics = Topics {
        onestop: true,
        vc: true,
        soc: true,
        alerts: true,
    };

    /// Parses the `topics` of a `subscribe` message.
    ///
    /// # Errors
    /// [`UnknownTopic`], naming the first unknown topic.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Topics, UnknownTopic> {
        let mut t = Topics {
            onestop: false,
            vc: false,
            soc: false,
            alerts: false,
        };
        for name in names {
            match name {
                "onestop" => t.onestop = true,
                "vc" => t.vc = true,
                "soc" => t.soc = true,
                "alerts" => t.alerts = true,
                other => return Err(UnknownTopic(other.to_owned())),
            }
        }
        Ok(t)
    }
}

/// A topic name a client may not subscribe to.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic `{0}`; expected onestop, vc, soc or alerts")]
pub struct UnknownTopic(pub String);

/// A built snapshot: its parts as JSON text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Increases by one each time the content changes.
    pub version: u64,
    /// The view's instant, RFC 3339.
    pub at: String,
    onestop: String,
    vc: String,
    soc: String,
    alerts: String,
    sources: String,
}

/// Agencies listed as the worst.
const WORST_AGENCIES: usize = 5;

fn time(t: Option<Ts>, cal: &Calendar) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339(cal.tz())))
}

impl Snapshot {
    /// Builds the parts from `view` and the firing alerts (already a JSON array, newest
    /// first). `possible_gap` marks each source (by [`Source::index`]) whose data may miss
    /// something: the broker lost iocd's session recently, or items of that source were
    /// evicted at the memory caps. `version` is left at 0; the publisher numbers changed
    /// snapshots.
    #[must_use]
    pub fn build(
        view: &View,
        alerts_json: String,
        possible_gap: [bool; 3],
        cal: &Calendar,
    ) -> Snapshot {
        let o = &view.onestop;
        let open: serde_json::Map<String, Value> = DossierStatus::OPEN
            .iter()
            .zip(o.totals.open)
            .map(|(s, n)| (s.as_str().to_owned(), n.into()))
            .collect();
        let mut worst: Vec<(usize, &crate::derive::view::AgencyGauges)> = view
            .agencies
            .iter()
            .enumerate()
            .filter(|(_, g)| g.overdue + g.stalled + g.due_soon > 0)
            .collect();
        worst.sort_by(|(ia, a), (ib, b)| {
            (b.overdue, b.stalled, b.due_soon)
                .cmp(&(a.overdue, a.stalled, a.due_soon))
                .then(ia.cmp(ib))
        });
        // What the worst list is drawn from: agencies (labels) handling open dossiers now.
        let agencies_with_open = view
            .agencies
            .iter()
            .filter(|g| g.open.iter().any(|n| *n > 0))
            .count();
        let worst: Vec<Value> = worst
            .iter()
            .take(WORST_AGENCIES)
            .map(|(i, g)| {
                let code = &view.agency_labels[*i];
                let name = view.directory.get(code).map(|a| &*a.short_name);
                json!({"agency": code, "name": name, "overdue": g.overdue, "due_soon": g.due_soon, "stalled": g.stalled})
            })
            .collect();
        let onestop = json!({
            "today": {"received": o.today_received, "resolved": o.today_resolved, "online_ratio": o.today_online_ratio},
            "open": open,
            "overdue": o.totals.overdue,
            "due_soon": o.totals.due_soon,
            "stalled": o.totals.stalled,
            "on_time_ratio_30d": o.on_time_ratio_30d,
            "per_minute_60m": {"received": o.received_per_minute, "resolved": o.resolved_per_minute},
            "stalled_after": {"hours": view.stalled_after.0, "working_hours": view.stalled_after.1},
            "worst_agencies": worst,
            "agencies_with_open_dossiers": agencies_with_open,
        });
        let meetings: Vec<Value> = view
            .meetings
            .iter()
            .map(|m| {
                json!({"meeting_id": m.meeting_id, "title": m.title, "level": m.level, "started_at": time(m.started_at, cal),
                    "expected": m.expected, "connected": m.connected, "missing": m.missing, "poor": m.poor})
            })
            .collect();
        let vc = json!({
            "meetings_active": view.vc.meetings_active.iter().sum::<u64>(),
            "endpoints_connected": view.vc.endpoints_connected,
            "endpoints_missing": view.vc.endpoints_missing,
            "endpoints_poor_quality": view.vc.endpoints_poor_quality,
            "meetings": meetings,
        });
        let soc = json!({
            "alerts_60m": View::by_severity(view.soc.alerts_60m),
            "incidents_open": View::by_severity(view.soc.incidents_open),
            "incidents_unacknowledged": View::by_severity(view.soc.incidents_unacknowledged),
            "systems_silent": view.soc.systems_silent,
            "silent_system_ids": view.silent_system_ids,
        });
        let sources: serde_json::Map<String, Value> = Source::ALL
            .iter()
            .map(|s| {
                let st = view.sources[s.index()];
                let doc = json!({"last_event_at": time(st.last_event_at, cal), "silent": st.silent, "possible_gap": possible_gap[s.index()]});
                (s.as_str().to_owned(), doc)
            })
            .collect();
        Snapshot {
            version: 0,
            at: view.at.to_rfc3339(cal.tz()),
            onestop: onestop.to_string(),
            vc: vc.to_string(),
            soc: soc.to_string(),
            alerts: alerts_json,
            sources: Value::Object(sources).to_string(),
        }
    }

    /// Whether the content (everything but `at` and `version`) equals `other`'s.
    #[must_use]
    pub fn same_content(&self, other: &Snapshot) -> bool {
        self.onestop == other.onestop
            && self.vc == other.vc
            && self.soc == other.soc
            && self.alerts == other.alerts
            && self.sources == other.sources
    }

    /// The snapshot frame for one connection: `seq` and the subscribed parts.
    #[must_use]
    pub fn frame(&self, seq: u64, topics: Topics) -> String {
        let len = 64
            + self.onestop.len()
            + self.vc.len()
            + self.soc.len()
            + self.alerts.len()
            + self.sources.len();
        let mut out = String::with_capacity(len);
        // `at` is RFC 3339 (no characters JSON would escape).
        let _ = write!(out, r#"{{"type":"snapshot","seq":{seq},"at":"{}""#, self.at);
        for (on, name, part) in [
            (topics.onestop, "onestop", &self.onestop),
            (topics.vc, "vc", &self.vc),
            (topics.soc, "soc", &self.soc),
            (topics.alerts, "alerts", &self.alerts),
            (true, "sources", &self.sources),
        ] {
            if on {
                let _ = write!(out, r#","{name}":{part}"#);
            }
        }
        out.push('}');
        out
    }
}

/// An alert frame: `{"type":"alert","seq","alert"}`.
#[must_use]
pub fn alert_frame(seq: u64, alert_json: &str) -> String {
    format!(r#"{{"type":"alert","seq":{seq},"alert":{alert_json}}}"#)
}

/// An error frame for a message the server could not use.
#[must_use]
pub fn error_frame(seq: u64, message: &str) -> String {
    #[derive(Serialize)]
    struct ErrorFrame<'a> {
        r#type: &'static str,
        seq: u64,
        error: &'a str,
    }
    serde_json::to_string(&ErrorFrame {
        r#type: "error",
        seq,
        error: message,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Params, State};

    #[test]
    fn a_frame_holds_the_contract_fields_and_only_the_subscribed_parts() {
        let state = State::new(Params::default(), Ts::from_secs(1_764_000_000));
        let view = state.view(Ts::from_secs(1_764_000_100));
        let snap = Snapshot::build(&view, "[]".into(), [false; 3], &Calendar::default());
        let full: Value = serde_json::from_str(&snap.frame(7, Topics::ALL)).unwrap();
        assert_eq!(full["type"], "snapshot");
        assert_eq!(full["seq"], 7);
        assert_eq!(full["onestop"]["today"]["online_ratio"], Value::Null);
        assert_eq!(
            full["onestop"]["per_minute_60m"]["received"]
                .as_array()
                .unwrap()
                .len(),
            60
        );
        assert_eq!(full["onestop"]["open"]["waiting_citizen"], 0);
        assert_eq!(full["onestop"]["agencies_with_open_dossiers"], 0);
        assert_eq!(full["soc"]["alerts_60m"]["critical"], 0);
        assert_eq!(full["vc"]["meetings_active"], 0);
        assert_eq!(full["alerts"], json!([]));
        assert_eq!(full["sources"]["vc"]["last_event_at"], Value::Null);
        let only_vc: Value =
            serde_json::from_str(&snap.frame(8, Topics::parse(["vc"]).unwrap())).unwrap();
        let keys: Vec<&str> = only_vc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["at", "seq", "sources", "type", "vc"]); // serde_json sorts keys
        assert!(Topics::parse(["vc", "weather"]).is_err());
    }
}

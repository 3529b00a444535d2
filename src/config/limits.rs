//! `[ingest]`, `[state]` and `[store]`: how much is taken in, how long it is kept, in
//! which time zone, and how often it is saved.
//!
//! In: the three tables as written. Out: [`IngestSettings`], [`StateSettings`] (a
//! `jiff::tz::TimeZone`: an unknown zone is a problem keyed `state.timezone`, never a silent
//! fallback) and [`StoreSettings`], with `Duration`s, or the problems.

use std::time::Duration;

use serde::Deserialize;

use super::check::{MAX_HOURS, MAX_SECS, Problems, Unit};
use crate::time::Calendar;

/// `[ingest]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IngestFile {
    max_payload_bytes: usize,
    max_future_skew_secs: i64,
    dedupe_horizon_hours: i64,
    dedupe_max_ids: usize,
}

/// `[ingest]`: decoding and dedupe.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestSettings {
    /// Largest accepted payload in bytes; larger ones are rejected as `too_large`.
    pub max_payload_bytes: usize,
    /// `max_future_skew_secs`: how far `occurred_at` may be ahead of now before
    /// `future_timestamp`.
    pub max_future_skew: Duration,
    /// `dedupe_horizon_hours`: how long a seen `(source, event_id)` is remembered.
    pub dedupe_horizon: Duration,
    /// At most this many ids are remembered; the oldest are forgotten first.
    pub dedupe_max_ids: usize,
}

impl IngestFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<IngestSettings> {
        let max_payload_bytes = p.within(
            "ingest.max_payload_bytes",
            self.max_payload_bytes,
            16,
            268_435_455,
        );
        let max_future_skew = p.duration(
            "ingest.max_future_skew_secs",
            self.max_future_skew_secs,
            (0, MAX_SECS),
            Unit::Secs,
        );
        let dedupe_horizon = p.duration(
            "ingest.dedupe_horizon_hours",
            self.dedupe_horizon_hours,
            (1, MAX_HOURS),
            Unit::Hours,
        );
        let dedupe_max_ids = p.at_least("ingest.dedupe_max_ids", self.dedupe_max_ids, 1);
        Some(IngestSettings {
            max_payload_bytes: max_payload_bytes?,
            max_future_skew: max_future_skew?,
            dedupe_horizon: dedupe_horizon?,
            dedupe_max_ids: dedupe_max_ids?,
        })
    }
}

/// `[state]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateFile {
    timezone: String,
    closed_retention_hours: i64,
    agency_label_limit: usize,
    max_dossiers: usize,
    max_meetings: usize,
    max_endpoints: usize,
    max_systems: usize,
    max_incidents: usize,
}

/// `[state]`: the in-memory model.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSettings {
    /// The IANA time zone of "today" and local minutes.
    pub timezone: jiff::tz::TimeZone,
    /// `closed_retention_hours`: how long a closed dossier, ended meeting or resolved
    /// incident stays in memory.
    pub closed_retention: Duration,
    /// Only the first this many distinct agencies get their own Prometheus label.
    pub agency_label_limit: usize,
    /// `max_*`: the most dossiers, meetings, endpoints, systems and incidents held; at a
    /// cap, the one whose latest event is oldest is evicted.
    pub max_items: MaxItems,
}

/// The `max_*` keys of `[state]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct MaxItems {
    pub dossiers: usize,
    pub meetings: usize,
    pub endpoints: usize,
    pub systems: usize,
    pub incidents: usize,
}

impl StateSettings {
    /// The local calendar of `timezone`.
    #[must_use]
    pub fn calendar(&self) -> Calendar {
        Calendar::new(self.timezone.clone())
    }
}

impl StateFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<StateSettings> {
        let timezone = p.ok(
            "state.timezone",
            jiff::tz::TimeZone::get(&self.timezone).map_err(|err| {
                format!("`{}` is not a known IANA time zone ({err})", self.timezone)
            }),
        );
        let closed_retention = p.duration(
            "state.closed_retention_hours",
            self.closed_retention_hours,
            (0, MAX_HOURS),
            Unit::Hours,
        );
        let agency_label_limit = p.at_least("state.agency_label_limit", self.agency_label_limit, 1);
        let dossiers = p.at_least("state.max_dossiers", self.max_dossiers, 1);
        let meetings = p.at_least("state.max_meetings", self.max_meetings, 1);
        let endpoints = p.at_least("state.max_endpoints", self.max_endpoints, 1);
        let systems = p.at_least("state.max_systems", self.max_systems, 1);
        let incidents = p.at_least("state.max_incidents", self.max_incidents, 1);
        Some(StateSettings {
            timezone: timezone?,
            closed_retention: closed_retention?,
            agency_label_limit: agency_label_limit?,
            max_items: MaxItems {
                dossiers: dossiers?,
                meetings: meetings?,
                endpoints: endpoints?,
                systems: systems?,
                incidents: incidents?,
            },
        })
    }
}

/// `[store]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreFile {
    checkpoint_interval_secs: u64,
}

/// `[store]`: durability in `--data-dir` (used only when a data directory is given).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSettings {
    /// `checkpoint_interval_secs`: a checkpoint of the whole state is written this often;
    /// the log before the older of the two kept checkpoints is deleted.
    pub checkpoint_interval: Duration,
}

impl StoreFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<StoreSettings> {
        let checkpoint_interval = p.duration(
            "store.checkpoint_interval_secs",
            self.checkpoint_interval_secs,
            (1, 86_400),
            Unit::Secs,
        );
        Some(StoreSettings {
            checkpoint_interval: checkpoint_interval?,
        })
    }
}

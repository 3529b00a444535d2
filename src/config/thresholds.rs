//! `[onestop]`, `[vc]`, `[soc]` and `[sources]`: when a dossier is due soon or stalled, an
//! endpoint poor or missing, a system or a feed silent.
//!
//! In: the four tables as written. Out: [`OnestopSettings`], [`VcSettings`],
//! [`SocSettings`] and [`SourcesSettings`] with `Duration`s, or the problems.

use std::time::Duration;

use serde::Deserialize;

use super::check::{MAX_HOURS, MAX_SECS, Problems, Unit};

/// `[onestop]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnestopFile {
    due_soon_hours: i64,
    stalled_hours: i64,
}

/// `[onestop]`: dossier thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct OnestopSettings {
    /// `due_soon_hours`: "due soon" = `due_at` at most this far ahead.
    pub due_soon: Duration,
    /// `stalled_hours`: "stalled" = latest event older than this (working time with the
    /// calendar on).
    pub stalled: Duration,
}

impl OnestopFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<OnestopSettings> {
        let due_soon = p.duration(
            "onestop.due_soon_hours",
            self.due_soon_hours,
            (0, MAX_HOURS),
            Unit::Hours,
        );
        let stalled = p.duration(
            "onestop.stalled_hours",
            self.stalled_hours,
            (1, MAX_HOURS),
            Unit::Hours,
        );
        Some(OnestopSettings {
            due_soon: due_soon?,
            stalled: stalled?,
        })
    }
}

/// `[vc]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VcFile {
    poor_packet_loss_pct: f64,
    poor_jitter_ms: f64,
    poor_rtt_ms: f64,
    missing_after_secs: i64,
}

/// `[vc]`: link quality and missing endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct VcSettings {
    /// Poor quality above this packet loss, in percent.
    pub poor_packet_loss_pct: f64,
    /// Poor quality above this jitter, in ms (a measured figure, compared as a number).
    pub poor_jitter_ms: f64,
    /// Poor quality above this round-trip time, in ms (likewise).
    pub poor_rtt_ms: f64,
    /// `missing_after_secs`: an expected endpoint is missing once its meeting is older.
    pub missing_after: Duration,
}

impl VcFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<VcSettings> {
        let loss = p.finite_non_negative("vc.poor_packet_loss_pct", self.poor_packet_loss_pct);
        let jitter = p.finite_non_negative("vc.poor_jitter_ms", self.poor_jitter_ms);
        let rtt = p.finite_non_negative("vc.poor_rtt_ms", self.poor_rtt_ms);
        let missing_after = p.duration(
            "vc.missing_after_secs",
            self.missing_after_secs,
            (0, MAX_SECS),
            Unit::Secs,
        );
        Some(VcSettings {
            poor_packet_loss_pct: loss?,
            poor_jitter_ms: jitter?,
            poor_rtt_ms: rtt?,
            missing_after: missing_after?,
        })
    }
}

/// `[soc]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SocFile {
    system_silent_secs: i64,
    systems: Vec<String>,
}

/// `[soc]`: monitored systems.
#[derive(Clone, Debug, PartialEq)]
pub struct SocSettings {
    /// `system_silent_secs`: a system is silent after this long without alert or heartbeat.
    pub system_silent: Duration,
    /// Systems monitored even before they are heard from (1 to 128 characters each).
    pub systems: Vec<String>,
}

impl SocFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<SocSettings> {
        let system_silent = p.duration(
            "soc.system_silent_secs",
            self.system_silent_secs,
            (1, MAX_SECS),
            Unit::Secs,
        );
        for (i, system) in self.systems.iter().enumerate() {
            let chars = system.chars().count();
            if !(1..=128).contains(&chars) {
                p.add(
                    format!("soc.systems[{i}]"),
                    format!("must be 1 to 128 characters (got {chars})"),
                );
            }
        }
        Some(SocSettings {
            system_silent: system_silent?,
            systems: self.systems,
        })
    }
}

/// `[sources]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourcesFile {
    silent_after_secs: i64,
}

/// `[sources]`: feed silence.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcesSettings {
    /// `silent_after_secs`: a source is silent after this long without an accepted event.
    pub silent_after: Duration,
}

impl SourcesFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<SourcesSettings> {
        let silent_after = p.duration(
            "sources.silent_after_secs",
            self.silent_after_secs,
            (1, MAX_SECS),
            Unit::Secs,
        );
        Some(SourcesSettings {
            silent_after: silent_after?,
        })
    }
}

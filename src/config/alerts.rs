//! `[alerts]`: the built-in rules of docs/contract.md §5.2, their severities, and the
//! language of the summaries.
//!
//! In: the `[alerts]` table as written. Out: [`AlertSettings`] with the language a [`Lang`],
//! the lowest watched incident severity a [`Severity`] and the unacknowledged delay a
//! `Duration`, or the problems keyed `alerts.*`.

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::check::{MAX_SECS, Problems, Unit};
use crate::decode::Severity;

/// Alert severities (docs/contract.md §5.2).
#[derive(
    Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

impl AlertSeverity {
    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

/// The language of the alert summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Tiếng Việt (`vi`).
    Vi,
    /// English (`en`).
    En,
}

/// Neither `vi` nor `en`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be `vi` or `en` (got `{0}`)")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vi" => Ok(Lang::Vi),
            "en" => Ok(Lang::En),
            _ => Err(UnknownLang(s.to_owned())),
        }
    }
}

impl Lang {
    /// `vi` or `en`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// One rule's switch, severity and minimum count. The file's table and the typed settings
/// are the same; a key left out takes the shipped file's value for that rule.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Whether the rule is evaluated.
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: AlertSeverity,
    /// Fires when at least this many members match (dossiers, endpoints; 1 otherwise).
    pub min_count: u64,
}

/// `[alerts]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertFile {
    language: String,
    dossier_overdue: RuleSettings,
    dossier_stalled: RuleSettings,
    feed_silent: RuleSettings,
    endpoint_missing: RuleSettings,
    endpoint_poor_quality: RuleSettings,
    incident_unacknowledged: RuleSettings,
    incident_unacknowledged_after_secs: i64,
    incident_min_severity: String,
    soc_system_silent: RuleSettings,
    max_members: usize,
    max_subjects_per_rule: usize,
    dossier_digest: bool,
    escalate_after_secs: EscalateFile,
    remind_every_secs: i64,
    audit_retention_days: i64,
    max_actions: usize,
}

/// `[alerts.escalate_after_secs]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateFile {
    info: i64,
    warning: i64,
    critical: i64,
}

/// `[alerts]`: the built-in rules of docs/contract.md §5.2.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertSettings {
    /// Language of the summaries.
    pub language: Lang,
    /// An agency has overdue dossiers.
    pub dossier_overdue: RuleSettings,
    /// An agency has stalled dossiers.
    pub dossier_stalled: RuleSettings,
    /// A source is silent.
    pub feed_silent: RuleSettings,
    /// A meeting has missing endpoints.
    pub endpoint_missing: RuleSettings,
    /// A meeting has endpoints with poor quality.
    pub endpoint_poor_quality: RuleSettings,
    /// A high or critical incident is unacknowledged for too long.
    pub incident_unacknowledged: RuleSettings,
    /// `incident_unacknowledged_after_secs`: how long an incident may stay unacknowledged.
    pub incident_unacknowledged_after: Duration,
    /// Lowest incident severity the rule watches (`high` by default).
    pub incident_min_severity: Severity,
    /// A monitored system is silent.
    pub soc_system_silent: RuleSettings,
    /// Dossier ids (or other members) listed per alert by the API.
    pub max_members: usize,
    /// Subjects with an alert of their own per rule; the rest are counted in one roll-up
    /// alert per rule (`{rule}:+others`), so that a flood cannot raise thousands of alerts.
    pub max_subjects_per_rule: usize,
    /// One province-wide digest alert per dossier rule (`{rule}:*`), counting every
    /// matching dossier and agency, those below `min_count` included.
    pub dossier_digest: bool,
    /// Per severity (info, warning, critical), how long an alert may stay unacknowledged
    /// before it escalates; `None`: never.
    pub escalate_after: [Option<Duration>; 3],
    /// How often an unacknowledged alert is notified again; `None`: never.
    pub remind_every: Option<Duration>,
    /// How long operator actions are kept for the audit and the history.
    pub audit_retention: Duration,
    /// The most operator actions kept.
    pub max_actions: usize,
}

impl AlertSettings {
    /// How long an alert of `severity` may stay unacknowledged before it escalates.
    #[must_use]
    pub fn escalate_after(&self, severity: AlertSeverity) -> Option<Duration> {
        self.escalate_after[severity as usize]
    }
}

/// An incident severity by its wire name.
fn incident_severity(s: &str) -> Result<Severity, String> {
    Severity::ALL
        .into_iter()
        .find(|sev| sev.as_str() == s)
        .ok_or_else(|| format!("must be low, medium, high or critical (got `{s}`)"))
}

impl AlertFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<AlertSettings> {
        let language = p.ok("alerts.language", self.language.parse::<Lang>());
        let min_severity = p.ok(
            "alerts.incident_min_severity",
            incident_severity(&self.incident_min_severity),
        );
        let unacknowledged_after = p.duration(
            "alerts.incident_unacknowledged_after_secs",
            self.incident_unacknowledged_after_secs,
            (0, MAX_SECS),
            Unit::Secs,
        );
        let max_members = p.within("alerts.max_members", self.max_members, 1, 10_000);
        let max_subjects = p.within(
            "alerts.max_subjects_per_rule",
            self.max_subjects_per_rule,
            1,
            1_000,
        );
        let mut escalate = [None; 3];
        for (i, (key, secs)) in [
            ("info", self.escalate_after_secs.info),
            ("warning", self.escalate_after_secs.warning),
            ("critical", self.escalate_after_secs.critical),
        ]
        .into_iter()
        .enumerate()
        {
            let d = p.duration(
                &format!("alerts.escalate_after_secs.{key}"),
                secs,
                (0, MAX_SECS),
                Unit::Secs,
            );
            escalate[i] = d.filter(|d| !d.is_zero());
        }
        let remind = p.duration(
            "alerts.remind_every_secs",
            self.remind_every_secs,
            (0, MAX_SECS),
            Unit::Secs,
        );
        let retention = p.duration(
            "alerts.audit_retention_days",
            self.audit_retention_days,
            (1, 3650),
            Unit::Days,
        );
        let max_actions = p.within("alerts.max_actions", self.max_actions, 100, 10_000_000);
        Some(AlertSettings {
            escalate_after: escalate,
            remind_every: Some(remind?).filter(|d| !d.is_zero()),
            audit_retention: retention?,
            max_actions: max_actions?,
            language: language?,
            dossier_overdue: self.dossier_overdue,
            dossier_stalled: self.dossier_stalled,
            feed_silent: self.feed_silent,
            endpoint_missing: self.endpoint_missing,
            endpoint_poor_quality: self.endpoint_poor_quality,
            incident_unacknowledged: self.incident_unacknowledged,
            incident_unacknowledged_after: unacknowledged_after?,
            incident_min_severity: min_severity?,
            soc_system_silent: self.soc_system_silent,
            max_members: max_members?,
            max_subjects_per_rule: max_subjects?,
            dossier_digest: self.dossier_digest,
        })
    }
}

//! The operator's side of a firing alert, derived from the operator actions in the state
//! ([`crate::state::ops`]) and the time: acknowledged (by whom, when), assigned, silenced,
//! escalated, reminded. These are additions to the contract's alert object (§8): the
//! fields of §4 keep their meaning; `severity` stays the rule's, and an escalation says
//! which severity it is shown at.

use serde::Serialize;

use crate::config::{AlertSettings, AlertSeverity};
use crate::decode::action::Role;
use crate::state::ops::Ops;
use crate::time::{Ts, whole_secs};

/// Where an alert stands with the operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody has taken it.
    #[default]
    New,
    /// Nobody has taken it for longer than its severity allows.
    Escalated,
    /// Someone has taken it.
    Acknowledged,
    /// A silence mutes it: it does not page and is shown apart.
    Silenced,
}

impl Status {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Escalated => "escalated",
            Status::Acknowledged => "acknowledged",
            Status::Silenced => "silenced",
        }
    }
}

/// An acknowledgement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Taken {
    /// Who (the token's name).
    pub by: String,
    /// Their role.
    pub role: Role,
    /// When (RFC 3339).
    pub at: String,
    /// What they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The action id.
    pub action_id: String,
    /// `at` as an instant.
    #[serde(skip)]
    pub at_ts: Ts,
}

/// An assignment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assigned {
    /// To whom (a person or a unit).
    pub to: String,
    /// By whom.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The silence muting an alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Muted {
    /// The silence's id (its action id).
    pub silence_id: String,
    /// Who set it.
    pub by: String,
    /// Until when (RFC 3339).
    pub until: String,
    /// Why.
    pub reason: String,
}

/// An escalation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Escalated {
    /// When it escalated (RFC 3339): `since` plus the severity's delay.
    pub at: String,
    /// The severity it is shown and notified at: one step up.
    pub severity: AlertSeverity,
}

/// The operator's side of an alert (flattened into the alert object).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Handling {
    /// `new`, `escalated`, `acknowledged` or `silenced`.
    pub handling: Status,
    /// The acknowledgement in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Taken>,
    /// The assignment in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assigned>,
    /// The silence muting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced: Option<Muted>,
    /// Its escalation, while unacknowledged past the delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalated: Option<Escalated>,
    /// Reminders sent while unacknowledged.
    #[serde(skip_serializing_if = "is_zero")]
    pub reminders: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One severity up (critical stays critical).
#[must_use]
pub const fn one_up(s: AlertSeverity) -> AlertSeverity {
    match s {
        AlertSeverity::Info => AlertSeverity::Warning,
        AlertSeverity::Warning | AlertSeverity::Critical => AlertSeverity::Critical,
    }
}

/// What an alert is, for its handling.
pub struct Of<'a> {
    /// `{rule}:{subject}`.
    pub id: &'a str,
    /// The rule's name.
    pub rule: &'a str,
    /// The subject id.
    pub subject: &'a str,
    /// When it started firing.
    pub since: Ts,
    /// The rule's severity.
    pub severity: AlertSeverity,
}

impl Handling {
    /// The handling of alert `a` at `now`, and the next instant after `now` when it changes
    /// by itself (an escalation or a reminder falls due).
    #[must_use]
    pub fn at(
        a: &Of<'_>,
        ops: &Ops,
        settings: &AlertSettings,
        now: Ts,
        tz: &jiff::tz::TimeZone,
    ) -> (Self, Option<Ts>) {
        let mut h = Handling {
            acknowledged: ops.acknowledged(a.id, a.since).map(|ack| Taken {
                by: ack.by.name.to_string(),
                role: ack.by.role,
                at: ack.at.to_rfc3339(tz),
                comment: ack.comment.as_deref().map(str::to_owned),
                action_id: ack.id.to_string(),
                at_ts: ack.at,
            }),
            assignee: ops.assigned(a.id, a.since).map(|x| Assigned {
                to: x.assignee.as_deref().unwrap_or_default().to_owned(),
                by: x.by.name.to_string(),
                at: x.at.to_rfc3339(tz),
            }),
            silenced: ops.silenced(a.rule, a.subject, now).map(|s| Muted {
                silence_id: s.id.to_string(),
                by: s.by.name.to_string(),
                until: ops.silence_end(s).unwrap_or(now).to_rfc3339(tz),
                reason: s
                    .silence
                    .as_ref()
                    .map(|s| s.reason.to_string())
                    .unwrap_or_default(),
            }),
            ..Handling::default()
        };
        let mut wake = None;
        if h.silenced.is_some() {
            h.handling = Status::Silenced;
        } else if h.acknowledged.is_some() {
            h.handling = Status::Acknowledged;
        } else {
            if let Some(after) = settings.escalate_after(a.severity) {
                let due = a.since.plus_secs(whole_secs(after));
                if now >= due {
                    h.escalated = Some(Escalated {
                        at: due.to_rfc3339(tz),
                        severity: one_up(a.severity),
                    });
                    h.handling = Status::Escalated;
                } else {
                    wake = Some(due);
                }
            }
            if let Some(every) = settings.remind_every {
                let every = whole_secs(every).max(1);
                let elapsed = now.0.saturating_sub(a.since.0).max(0) / crate::time::NANOS_PER_SEC;
                h.reminders = u64::try_from(elapsed / every).unwrap_or(0);
                let next = a
                    .since
                    .plus_secs((i64::try_from(h.reminders).unwrap_or(i64::MAX) + 1) * every);
                wake = Some(wake.map_or(next, |w: Ts| w.min(next)));
            }
        }
        (h, wake)
    }

    /// The severity it is shown and notified at: the escalated one, else the rule's.
    #[must_use]
    pub fn shown_severity(&self, rule_severity: AlertSeverity) -> AlertSeverity {
        self.escalated
            .as_ref()
            .map_or(rule_severity, |e| e.severity)
    }

    /// Whether it pages: neither acknowledged nor silenced.
    #[must_use]
    pub fn pages(&self) -> bool {
        matches!(self.handling, Status::New | Status::Escalated)
    }
}

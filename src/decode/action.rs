//! Operator actions (docs/contract.md §8, "Operator actions"): what a duty officer does to an
//! alert (acknowledge, unacknowledge, assign, comment) or to the rules (silence, end a
//! silence), as the JSON document published on `{prefix}/ops/actions` and logged like a
//! feed event, and its checked form [`Action`] that `apply` takes.
//!
//! An action carries its own id (idempotence: a replica that gets it twice, or gets back
//! its own publication, applies it once) and its own time `at`, set by the daemon that
//! accepted it, so that every replica and every replay puts it at the same instant.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DecodeError, Reason};
use crate::time::{Ts, parse_rfc3339};

/// Longest action id, operator name, assignee, rule or subject, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest comment or silence reason, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// What an action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Someone has taken the alert (with an optional comment).
    Acknowledge,
    /// Takes an acknowledgement back.
    Unacknowledge,
    /// Gives the alert to a person or a unit (an empty assignee clears it).
    Assign,
    /// A note on the alert.
    Comment,
    /// Mutes the alerts of a rule (and subject) for a time: no paging, shown apart.
    Silence,
    /// Ends a silence before its end.
    Unsilence,
}

impl ActionKind {
    /// Every kind.
    pub const ALL: [ActionKind; 6] = [
        ActionKind::Acknowledge,
        ActionKind::Unacknowledge,
        ActionKind::Assign,
        ActionKind::Comment,
        ActionKind::Silence,
        ActionKind::Unsilence,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "acknowledge",
            ActionKind::Unacknowledge => "unacknowledge",
            ActionKind::Assign => "assign",
            ActionKind::Comment => "comment",
            ActionKind::Silence => "silence",
            ActionKind::Unsilence => "unsilence",
        }
    }

    /// Index into per-kind arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a token may do: read (`viewer`), also act on alerts (`operator`), also silence
/// whole rules (`admin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the wall and the API.
    Viewer,
    /// Also acknowledges, assigns, comments and silences.
    Operator,
    /// Everything an operator does (reserved for administration).
    Admin,
}

impl Role {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role by its wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who did it: the name of the token used, and its role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The token's name (`[[http.tokens]] name`), e.g. "Trực ban ca 1".
    pub name: Box<str>,
    /// Its role.
    pub role: Role,
}

/// A silence: the alerts of `rule` (for `subject`, or all of them) do not page from
/// `starts` to `ends`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// The rule name.
    pub rule: Box<str>,
    /// The subject id, or `None` for every subject of the rule.
    pub subject: Option<Box<str>>,
    /// When it starts.
    pub starts: Ts,
    /// When it ends.
    pub ends: Ts,
    /// Why (a planned maintenance, a known outage).
    pub reason: Box<str>,
}

impl Silence {
    /// Whether it mutes the alert of `rule` and `subject` at `now`.
    #[must_use]
    pub fn matches(&self, rule: &str, subject: &str, now: Ts) -> bool {
        *self.rule == *rule
            && self.subject.as_deref().is_none_or(|s| s == subject)
            && self.starts <= now
            && now < self.ends
    }
}

/// A checked operator action, as `apply` takes it and the checkpoint keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Its id: applied once whatever the number of copies.
    pub id: Box<str>,
    /// What it does.
    pub kind: ActionKind,
    /// When the accepting daemon took it.
    pub at: Ts,
    /// Who.
    pub by: Actor,
    /// The alert it acts on (every kind but the silences).
    pub alert_id: Option<Box<str>>,
    /// The comment (required for `comment`, optional otherwise).
    pub comment: Option<Box<str>>,
    /// For `assign`: a person or a unit; empty clears the assignment.
    pub assignee: Option<Box<str>>,
    /// For `silence`.
    pub silence: Option<Silence>,
    /// For `unsilence`: the id of the `silence` action it ends.
    pub silence_id: Option<Box<str>>,
}

/// The JSON document of an action on `{prefix}/ops/actions` (docs/schemas/action.schema.json).
#[derive(Debug, Serialize)]
struct Wire<'a> {
    action_id: &'a str,
    action: ActionKind,
    at: String,
    by: &'a Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    silence: Option<WireSilence<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    silence_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireSilence<'a> {
    rule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    starts_at: String,
    ends_at: String,
    reason: &'a str,
}

impl Action {
    /// The action as its JSON document, times in `tz`.
    #[must_use]
    pub fn to_json(&self, tz: &jiff::tz::TimeZone) -> String {
        let wire = Wire {
            action_id: &self.id,
            action: self.kind,
            at: self.at.to_rfc3339(tz),
            by: &self.by,
            alert_id: self.alert_id.as_deref(),
            comment: self.comment.as_deref(),
            assignee: self.assignee.as_deref(),
            silence: self.silence.as_ref().map(|s| WireSilence {
                rule: &s.rule,
                subject: s.subject.as_deref(),
                starts_at: s.starts.to_rfc3339(tz),
                ends_at: s.ends.to_rfc3339(tz),
                reason: &s.reason,
            }),
            silence_id: self.silence_id.as_deref(),
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

fn err(reason: Reason, detail: impl Into<String>) -> DecodeError {
    DecodeError::new(reason, detail)
}

/// A string field: `None` when absent or null; checked for length and control characters.
fn text(
    obj: &Map<String, Value>,
    key: &str,
    max_chars: usize,
) -> Result<Option<Box<str>>, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n > max_chars {
                return Err(err(
                    Reason::OutOfRange,
                    format!("{key} has {n} characters, more than {max_chars}"),
                ));
            }
            if s.chars().any(|c| c.is_control() && c != '\n') {
                return Err(err(
                    Reason::InvalidValue,
                    format!("{key} holds a control character"),
                ));
            }
            Ok(Some(s.as_str().into()))
        }
        Some(_) => Err(err(Reason::WrongType, format!("{key} must be a string"))),
    }
}

fn required(
    obj: &Map<String, Value>,
    key: &str,
    max_chars: usize,
) -> Result<Box<str>, DecodeError> {
    match text(obj, key, max_chars)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(err(Reason::InvalidValue, format!("{key} is empty"))),
        None => Err(err(Reason::MissingField, format!("{key} is missing"))),
    }
}

fn time(obj: &Map<String, Value>, key: &str) -> Result<Ts, DecodeError> {
    let s = required(obj, key, 64)?;
    parse_rfc3339(&s).map_err(|_| {
        err(
            Reason::InvalidValue,
            format!("{key} is not an RFC 3339 time: {s:?}"),
        )
    })
}

fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Map<String, Value>, DecodeError> {
    v.as_object()
        .ok_or_else(|| err(Reason::WrongType, format!("{what} must be an object")))
}

/// Reads and checks an action document received at `now`; `max_future_skew_secs` bounds
/// how far ahead of `now` its `at` may be.
///
/// # Errors
/// A [`DecodeError`] with the contract's reason codes: `too_large`, `invalid_json`,
/// `not_object`, `missing_field`, `wrong_type`, `unknown_type` (an unknown action),
/// `invalid_value`, `out_of_range`, `future_timestamp`.
pub fn decode_action(
    payload: &[u8],
    now: Ts,
    limits: &super::DecodeLimits,
) -> Result<Action, DecodeError> {
    if payload.len() > limits.max_payload_bytes {
        return Err(err(
            Reason::TooLarge,
            format!(
                "action of {} bytes exceeds the limit of {}",
                payload.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| err(Reason::InvalidJson, format!("not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| err(Reason::NotObject, "an action is a JSON object"))?;
    let id = required(obj, "action_id", MAX_NAME_CHARS)?;
    let kind_name = required(obj, "action", MAX_NAME_CHARS)?;
    let kind = ActionKind::parse(&kind_name)
        .ok_or_else(|| err(Reason::UnknownType, format!("unknown action {kind_name:?}")))?;
    let at = time(obj, "at")?;
    if at > now.plus_secs(limits.max_future_skew_secs) {
        return Err(err(
            Reason::FutureTimestamp,
            "at is further ahead of the daemon's clock than the allowed skew",
        ));
    }
    let by = object(
        obj.get("by")
            .ok_or_else(|| err(Reason::MissingField, "by is missing"))?,
        "by",
    )?;
    let role_name = required(by, "role", MAX_NAME_CHARS)?;
    let by = Actor {
        name: required(by, "name", MAX_NAME_CHARS)?,
        role: Role::parse(&role_name)
            .ok_or_else(|| err(Reason::InvalidValue, format!("unknown role {role_name:?}")))?,
    };
    if by.role < Role::Operator {
        return Err(err(
            Reason::InvalidValue,
            "a viewer cannot act on alerts (role must be operator or admin)",
        ));
    }
    let mut action = Action {
        id,
        kind,
        at,
        by,
        alert_id: None,
        comment: text(obj, "comment", MAX_TEXT_CHARS)?,
        assignee: None,
        silence: None,
        silence_id: None,
    };
    match kind {
        ActionKind::Acknowledge | ActionKind::Unacknowledge => {
            action.alert_id = Some(required(obj, "alert_id", 2 * MAX_NAME_CHARS + 1)?);
        }
        ActionKind::Comment => {
            action.alert_id = Some(required(obj, "alert_id", 2 * MAX_NAME_CHARS + 1)?);
            action.comment = Some(required(obj, "comment", MAX_TEXT_CHARS)?);
        }
        ActionKind::Assign => {
            action.alert_id = Some(required(obj, "alert_id", 2 * MAX_NAME_CHARS + 1)?);
            action.assignee = Some(
                text(obj, "assignee", MAX_NAME_CHARS)?
                    .ok_or_else(|| err(Reason::MissingField, "assignee is missing"))?,
            );
        }
        ActionKind::Silence => {
            let s = object(
                obj.get("silence")
                    .ok_or_else(|| err(Reason::MissingField, "silence is missing"))?,
                "silence",
            )?;
            let silence = Silence {
                rule: required(s, "rule", MAX_NAME_CHARS)?,
                subject: text(s, "subject", MAX_NAME_CHARS)?.filter(|s| !s.is_empty()),
                starts: time(s, "starts_at")?,
                ends: time(s, "ends_at")?,
                reason: required(s, "reason", MAX_TEXT_CHARS)?,
            };
            if silence.ends <= silence.starts {
                return Err(err(
                    Reason::InvalidValue,
                    "silence.ends_at must be after silence.starts_at",
                ));
            }
            action.silence = Some(silence);
        }
        ActionKind::Unsilence => {
            action.silence_id = Some(required(obj, "silence_id", MAX_NAME_CHARS)?);
        }
    }
    Ok(action)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::DecodeLimits;

    fn now() -> Ts {
        parse_rfc3339("2026-12-07T12:00:00Z").unwrap()
    }

    fn decode(s: &str) -> Result<Action, DecodeError> {
        decode_action(s.as_bytes(), now(), &DecodeLimits::default())
    }

    const ACK: &str = r#"{"action_id":"a1","action":"acknowledge","at":"2026-12-07T08:59:00+07:00",
        "by":{"name":"Trực ban ca 1","role":"operator"},"alert_id":"dossier_overdue:H12.01",
        "comment":"Đã gọi Sở Tư pháp"}"#;

    #[test]
    fn an_action_reads_and_writes_back_the_same() {
        let a = decode(ACK).unwrap();
        assert_eq!(a.kind, ActionKind::Acknowledge);
        assert_eq!(a.alert_id.as_deref(), Some("dossier_overdue:H12.01"));
        assert_eq!(&*a.by.name, "Trực ban ca 1");
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(7));
        let again = decode(&a.to_json(&tz)).unwrap();
        assert_eq!(again, a);
        let silence = r#"{"action_id":"s1","action":"silence","at":"2026-12-07T08:00:00Z",
            "by":{"name":"Quản trị","role":"admin"},
            "silence":{"rule":"soc_system_silent","subject":"mail-gw","starts_at":"2026-12-07T08:00:00Z",
            "ends_at":"2026-12-07T12:00:00Z","reason":"Bảo trì định kỳ"}}"#;
        let s = decode(silence).unwrap();
        let again = decode(&s.to_json(&tz)).unwrap();
        assert_eq!(again, s);
        assert!(s.silence.as_ref().unwrap().matches(
            "soc_system_silent",
            "mail-gw",
            parse_rfc3339("2026-12-07T09:00:00Z").unwrap()
        ));
    }

    #[test]
    fn bad_actions_get_the_contract_reasons() {
        let cases = [
            ("[1]", Reason::NotObject),
            ("{", Reason::InvalidJson),
            (
                r#"{"action":"acknowledge","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"operator"},"alert_id":"x"}"#,
                Reason::MissingField,
            ),
            (
                r#"{"action_id":"a","action":"close","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"operator"}}"#,
                Reason::UnknownType,
            ),
            (
                r#"{"action_id":"a","action":"acknowledge","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"viewer"},"alert_id":"x"}"#,
                Reason::InvalidValue,
            ),
            (
                r#"{"action_id":"a","action":"acknowledge","at":"2027-12-07T08:00:00Z","by":{"name":"a","role":"operator"},"alert_id":"x"}"#,
                Reason::FutureTimestamp,
            ),
            (
                r#"{"action_id":"a","action":"comment","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"operator"},"alert_id":"x"}"#,
                Reason::MissingField,
            ),
            (
                r#"{"action_id":7,"action":"comment","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"operator"},"alert_id":"x"}"#,
                Reason::WrongType,
            ),
            (
                r#"{"action_id":"a","action":"silence","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"operator"},
                   "silence":{"rule":"feed_silent","starts_at":"2026-12-07T08:00:00Z","ends_at":"2026-12-07T07:00:00Z","reason":"x"}}"#,
                Reason::InvalidValue,
            ),
            (
                r#"{"action_id":"a\u0007","action":"unsilence","at":"2026-12-07T08:00:00Z","by":{"name":"a","role":"operator"},"silence_id":"s"}"#,
                Reason::InvalidValue,
            ),
        ];
        for (payload, reason) in cases {
            assert_eq!(decode(payload).unwrap_err().reason, reason, "{payload}");
        }
    }
}

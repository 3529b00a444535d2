//! Decode: payload bytes → a validated [`Event`], or a [`DecodeError`] whose [`Reason`] is
//! exactly one of docs/contract.md §3.2's codes, the first in the contract's list when several apply.
//!
//! Two passes: `raw::parse` does the one strict JSON parse, keeping each known field with its
//! JSON shape; `validate` then checks, in the contract's order, presence, types, the event
//! type, values, ranges and the clock. Nothing here touches state or I/O, and the accepted
//! path allocates only for strings that JSON escaped.

pub mod action;
pub mod event;
pub mod mapping;
pub mod raw;

use std::borrow::Cow;

pub use event::*;
use raw::{RawFields, Val};

use crate::time::{Ts, parse_rfc3339};

/// Limits that decoding enforces.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest accepted payload, in bytes.
    pub max_payload_bytes: usize,
    /// How far ahead of now `occurred_at` may be, in seconds.
    pub max_future_skew_secs: i64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 65_536,
            max_future_skew_secs: 300,
        }
    }
}

/// Why a payload was rejected: docs/contract.md §3.2's codes, in their order of precedence.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Reason {
    TooLarge,
    InvalidJson,
    NotObject,
    MissingField,
    WrongType,
    UnknownType,
    InvalidValue,
    OutOfRange,
    FutureTimestamp,
    /// A mapped input (contract 1.1) that its mapping cannot turn into contract events.
    MappingFailed,
}

impl Reason {
    /// How many reasons there are.
    pub const COUNT: usize = 10;

    /// Every reason, in precedence order (`mapping_failed`, for mapped inputs only, comes
    /// after `invalid_json`). [`Reason::index`] is not this order: the index of a reason
    /// never changes, since checkpoints keep counts by it.
    pub const ALL: [Reason; Self::COUNT] = [
        Reason::TooLarge,
        Reason::InvalidJson,
        Reason::MappingFailed,
        Reason::NotObject,
        Reason::MissingField,
        Reason::WrongType,
        Reason::UnknownType,
        Reason::InvalidValue,
        Reason::OutOfRange,
        Reason::FutureTimestamp,
    ];

    /// The stable code used in the metric label and the dead letter.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::InvalidJson => "invalid_json",
            Reason::NotObject => "not_object",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::UnknownType => "unknown_type",
            Reason::InvalidValue => "invalid_value",
            Reason::OutOfRange => "out_of_range",
            Reason::FutureTimestamp => "future_timestamp",
            Reason::MappingFailed => "mapping_failed",
        }
    }

    /// The reason of index `i` ([`Reason::index`]).
    #[must_use]
    pub fn from_index(i: usize) -> Option<Reason> {
        Self::ALL.into_iter().find(|r| r.index() == i)
    }

    /// Index into per-reason arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A rejected payload: the contract's reason code and a short human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct DecodeError {
    /// The reason code.
    pub reason: Reason,
    /// What exactly was wrong, for the dead letter and the log.
    pub detail: String,
}

impl DecodeError {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The source named by `topic` under `prefix` (`{prefix}/{source}[/...]`), if any.
#[must_use]
pub fn source_of(topic: &str, prefix: &str) -> Option<Source> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    // Each source's level tried as a prefix: every message pays this, and splitting the
    // topic (a char searcher) cost three times as much (218 instructions against 65).
    Source::ALL.into_iter().find(|s| {
        rest.strip_prefix(s.as_str())
            .is_some_and(|after| after.is_empty() || after.starts_with('/'))
    })
}

/// Decodes and validates one payload of `source`, received at `now`.
///
/// # Errors
/// A [`DecodeError`] with the first applicable reason of docs/contract.md §3.2.
pub fn decode<'a>(
    source: Source,
    payload: &'a [u8],
    now: Ts,
    limits: &DecodeLimits,
) -> Result<Event<'a>, DecodeError> {
    decode_with_spans(source, payload, None, now, limits)
}

/// [`decode`] of an event iocd wrote itself (a mapped record), whose members' places in
/// `payload` are `spans`: the same checks and result without parsing the text again. Falls
/// back to parsing when the spans do not fit.
///
/// # Errors
/// As [`decode`].
pub fn decode_written<'a>(
    source: Source,
    payload: &'a [u8],
    spans: &[raw::Span],
    now: Ts,
    limits: &DecodeLimits,
) -> Result<Event<'a>, DecodeError> {
    decode_with_spans(source, payload, Some(spans), now, limits)
}

/// [`decode`], or [`decode_written`] when `spans` are given.
///
/// # Errors
/// As [`decode`].
pub fn decode_with_spans<'a>(
    source: Source,
    payload: &'a [u8],
    spans: Option<&[raw::Span]>,
    now: Ts,
    limits: &DecodeLimits,
) -> Result<Event<'a>, DecodeError> {
    if payload.len() > limits.max_payload_bytes {
        return Err(DecodeError::new(
            Reason::TooLarge,
            format!(
                "payload of {} bytes exceeds the limit of {}",
                payload.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    // Filled in place: the record is large, and moving it would cost more than parsing a field.
    let mut fields = RawFields::default();
    let filled = spans.and_then(|spans| {
        let text = std::str::from_utf8(payload).ok()?;
        let filled = raw::fill_from_spans(text, spans, &mut fields);
        if filled.is_none() {
            fields = RawFields::default();
        }
        filled
    });
    if filled.is_none() {
        match raw::parse_into(payload, &mut fields) {
            Ok(true) => {}
            Ok(false) => {
                return Err(DecodeError::new(
                    Reason::NotObject,
                    "payload is JSON but not an object",
                ));
            }
            Err(e) => return Err(DecodeError::new(Reason::InvalidJson, e.to_string())),
        }
    }
    validate(source, &mut fields, now, limits)
}

/// What a field must hold.
#[derive(Clone, Copy)]
enum Kind {
    /// An id or code: a string of 1 to 128 characters.
    Id,
    /// Free text.
    Text,
    /// An RFC 3339 timestamp.
    Time,
    /// `due_at`: a timestamp or `null`; where required, the key must be present.
    Due,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A number in `min..=max`.
    Num(f64, f64),
    /// An array of ids.
    IdList,
    /// `true` or `false`.
    Bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}
use Need::{Optional, Required};

type Getter = for<'r, 'a> fn(&'r RawFields<'a>) -> &'r Option<Val<'a>>;

/// One field of an event type: its name, where it is, what it holds, whether required.
struct Spec(&'static str, Getter, Kind, Need);

macro_rules! spec {
    ($name:ident, $kind:expr, $need:expr) => {
        Spec(stringify!($name), |f| &f.$name, $kind, $need)
    };
}

const LEVELS_AGENCY: &[&str] = &["province", "commune", "district"];
const LEVELS_MEETING: &[&str] = &["central", "province", "commune"];
const CHANNELS: &[&str] = &["online", "direct", "postal"];
const OUTCOMES: &[&str] = &["approved", "refused"];
const PAUSE_REASONS: &[&str] = &["fees", "suspended", "other"];
const PAY_METHODS: &[&str] = &["online_national", "online_local", "direct"];
const RATINGS: &[&str] = &["very_satisfied", "satisfied", "unsatisfied"];
const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];
const CATEGORIES: &[&str] = &[
    "malware",
    "intrusion",
    "ddos",
    "phishing",
    "recon",
    "policy",
    "other",
];
const NON_NEG: Kind = Kind::Num(0.0, f64::INFINITY);

const DOSSIER_SUBMITTED: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(agency, Kind::Id, Required),
    spec!(agency_level, Kind::Enum(LEVELS_AGENCY), Optional),
    spec!(procedure, Kind::Id, Required),
    spec!(sector, Kind::Id, Optional),
    spec!(channel, Kind::Enum(CHANNELS), Required),
    spec!(due_at, Kind::Due, Optional),
];
const DOSSIER_RECEIVED: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(agency, Kind::Id, Required),
    spec!(agency_level, Kind::Enum(LEVELS_AGENCY), Optional),
    spec!(procedure, Kind::Id, Required),
    spec!(sector, Kind::Id, Optional),
    spec!(channel, Kind::Enum(CHANNELS), Required),
    spec!(due_at, Kind::Due, Required),
    spec!(fee_required, Kind::Bool, Optional),
    spec!(paper_result, Kind::Bool, Optional),
    spec!(digitised, Kind::Bool, Optional),
    spec!(reused_data, Kind::Bool, Optional),
];
const DOSSIER_RESOLVED: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(agency, Kind::Id, Optional),
    spec!(agency_level, Kind::Enum(LEVELS_AGENCY), Optional),
    spec!(sector, Kind::Id, Optional),
    spec!(due_at, Kind::Due, Required),
    spec!(outcome, Kind::Enum(OUTCOMES), Optional),
    spec!(result_electronic, Kind::Bool, Optional),
];
const DOSSIER_RETURNED: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(agency, Kind::Id, Optional),
    spec!(agency_level, Kind::Enum(LEVELS_AGENCY), Optional),
    spec!(sector, Kind::Id, Optional),
    spec!(due_at, Kind::Due, Optional),
    spec!(result_electronic, Kind::Bool, Optional),
];
// `paid` and `rated` (contract 1.2) carry no agency or deadline: the dossier's own stand.
const DOSSIER_PAID: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(method, Kind::Enum(PAY_METHODS), Required),
];
const DOSSIER_RATED: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(rating, Kind::Enum(RATINGS), Required),
    spec!(complaint, Kind::Bool, Optional),
];
const DOSSIER_PAUSED: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(agency, Kind::Id, Optional),
    spec!(agency_level, Kind::Enum(LEVELS_AGENCY), Optional),
    spec!(sector, Kind::Id, Optional),
    spec!(due_at, Kind::Due, Optional),
    spec!(reason, Kind::Enum(PAUSE_REASONS), Optional),
];
const DOSSIER_OTHER: &[Spec] = &[
    spec!(dossier_id, Kind::Id, Required),
    spec!(agency, Kind::Id, Optional),
    spec!(agency_level, Kind::Enum(LEVELS_AGENCY), Optional),
    spec!(sector, Kind::Id, Optional),
    spec!(due_at, Kind::Due, Optional),
];

const MEETING: Spec = spec!(meeting_id, Kind::Id, Required);
const ENDPOINT: Spec = spec!(endpoint_id, Kind::Id, Required);
const VC_MEETING_STARTED: &[Spec] = &[
    MEETING,
    spec!(title, Kind::Text, Required),
    spec!(level, Kind::Enum(LEVELS_MEETING), Required),
    spec!(expected_endpoints, Kind::IdList, Optional),
];
const VC_MEETING_ENDED: &[Spec] = &[MEETING];
const VC_ENDPOINT_JOINED: &[Spec] = &[MEETING, ENDPOINT, spec!(agency, Kind::Id, Optional)];
const VC_ENDPOINT_LEFT: &[Spec] = &[MEETING, ENDPOINT];
const VC_ENDPOINT_STATS: &[Spec] = &[
    MEETING,
    ENDPOINT,
    spec!(packet_loss_pct, Kind::Num(0.0, 100.0), Required),
    spec!(jitter_ms, NON_NEG, Required),
    spec!(rtt_ms, NON_NEG, Required),
    spec!(bitrate_kbps, NON_NEG, Required),
];

const INCIDENT: Spec = spec!(incident_id, Kind::Id, Required);
const SYSTEM: Spec = spec!(system_id, Kind::Id, Required);
const SEVERITY: Spec = spec!(severity, Kind::Enum(SEVERITIES), Required);
const SOC_ALERT: &[Spec] = &[
    spec!(alert_id, Kind::Id, Required),
    SYSTEM,
    SEVERITY,
    spec!(category, Kind::Enum(CATEGORIES), Required),
    spec!(src_ip, Kind::Text, Optional),
    spec!(dst_ip, Kind::Text, Optional),
    spec!(signature, Kind::Text, Optional),
];
const SOC_INCIDENT_OPENED: &[Spec] = &[
    INCIDENT,
    SYSTEM,
    SEVERITY,
    spec!(title, Kind::Text, Optional),
];
const SOC_INCIDENT_ONLY: &[Spec] = &[INCIDENT];
const SOC_SYSTEM_HEARTBEAT: &[Spec] = &[SYSTEM];

const ENVELOPE: [Spec; 3] = [
    spec!(event_id, Kind::Id, Required),
    Spec("type", |f| &f.ty, Kind::Text, Required),
    spec!(occurred_at, Kind::Time, Required),
];

/// The fields of `source`'s type `ty`, or `None` for a type the source does not have.
fn type_specs(source: Source, ty: &str) -> Option<&'static [Spec]> {
    if ty == "heartbeat" {
        return Some(&[]);
    }
    Some(match (source, ty) {
        (Source::Onestop, _) => match DossierKind::parse(ty)? {
            DossierKind::Submitted => DOSSIER_SUBMITTED,
            DossierKind::Received => DOSSIER_RECEIVED,
            DossierKind::Resolved => DOSSIER_RESOLVED,
            DossierKind::Paused => DOSSIER_PAUSED,
            DossierKind::Returned => DOSSIER_RETURNED,
            DossierKind::Paid => DOSSIER_PAID,
            DossierKind::Rated => DOSSIER_RATED,
            _ => DOSSIER_OTHER,
        },
        (Source::Vc, "meeting_started") => VC_MEETING_STARTED,
        (Source::Vc, "meeting_ended") => VC_MEETING_ENDED,
        (Source::Vc, "endpoint_joined") => VC_ENDPOINT_JOINED,
        (Source::Vc, "endpoint_left") => VC_ENDPOINT_LEFT,
        (Source::Vc, "endpoint_stats") => VC_ENDPOINT_STATS,
        (Source::Soc, "alert") => SOC_ALERT,
        (Source::Soc, "incident_opened") => SOC_INCIDENT_OPENED,
        (Source::Soc, "incident_acknowledged" | "incident_resolved") => SOC_INCIDENT_ONLY,
        (Source::Soc, "system_heartbeat") => SOC_SYSTEM_HEARTBEAT,
        _ => return None,
    })
}

fn validate<'a>(
    source: Source,
    f: &mut RawFields<'a>,
    now: Ts,
    limits: &DecodeLimits,
) -> Result<Event<'a>, DecodeError> {
    // The type is moved out of the record so the record can be taken apart in `build`.
    let type_val = f.ty.take();
    let ty = match &type_val {
        Some(Val::Str(s)) => Some(s.as_ref()),
        _ => None,
    };
    let specs = ty.and_then(|t| type_specs(source, t));
    let all = || ENVELOPE.iter().chain(specs.into_iter().flatten());
    let get = |s: &Spec| {
        if s.0 == "type" {
            type_val.as_ref()
        } else {
            (s.1)(f).as_ref()
        }
    };

    // The usual case, a valid payload, in one pass over the fields. It accepts exactly what
    // the ordered passes below accept (see `passes`); when it does not, they find the first
    // reason in the contract's order to report.
    let mut times = Times::default();
    let valid = specs.is_some() && all().all(|s| passes(s, get(s), &mut times));
    if !valid {
        for s in all() {
            check_present(s, get(s))?;
        }
        for s in all() {
            if let Some(v) = get(s) {
                check_type(s, v)?;
            }
        }
        if specs.is_none() {
            return Err(DecodeError::new(
                Reason::UnknownType,
                format!(
                    "unknown type `{}` for source {}",
                    truncate(ty.unwrap_or_default()),
                    source.as_str()
                ),
            ));
        }
        for s in all() {
            if let Some(v) = get(s)
                && let Some(ts) = check_value(s, v)?
            {
                times.record(s, ts);
            }
        }
        for s in all() {
            if let Some(v) = get(s) {
                check_range(s, v)?;
            }
        }
    }
    let Some(ty) = ty else {
        // Unreachable: presence and type checks have passed. Kept as an error, not a panic.
        return Err(DecodeError::new(
            Reason::WrongType,
            "`type` must be a string",
        ));
    };
    let occurred_at = times.occurred_at;
    if occurred_at > now.plus_secs(limits.max_future_skew_secs) {
        // An instant past 2262 was clamped to `Ts::MAX`: say "at least".
        let at_least = if occurred_at == Ts::MAX {
            "at least "
        } else {
            ""
        };
        return Err(DecodeError::new(
            Reason::FutureTimestamp,
            format!(
                "`occurred_at` is {at_least}{:.0} s ahead of the daemon's clock (allowed: {} s)",
                occurred_at.secs_since(now),
                limits.max_future_skew_secs
            ),
        ));
    }
    build(source, ty, times, f)
}

/// The instants the checks parsed, kept so that `build` does not parse them again.
#[derive(Clone, Copy, Default)]
struct Times {
    /// `occurred_at`.
    occurred_at: Ts,
    /// `due_at`, when it is a timestamp.
    due_at: Option<Ts>,
}

impl Times {
    /// Keeps `ts`, the instant field `s` holds.
    fn record(&mut self, s: &Spec, ts: Ts) {
        match s.2 {
            Kind::Due => self.due_at = Some(ts),
            _ if s.0 == "occurred_at" => self.occurred_at = ts,
            _ => {}
        }
    }
}

/// Whether field `s`, holding `v`, passes all four checks of the ordered passes: presence,
/// type, value and range. Builds no error; records the instants it parses.
#[allow(clippy::match_same_arms)] // each arm is one rule of the contract
fn passes(s: &Spec, v: Option<&Val<'_>>, times: &mut Times) -> bool {
    let Some(v) = v else {
        return s.3 == Optional;
    };
    match (s.2, v) {
        // `due_at` may be null where it is required; other fields only where optional.
        (Kind::Due, Val::Null) => true,
        (_, Val::Null) => s.3 == Optional,
        (Kind::Id, Val::Str(x)) => id_len_ok(x),
        (Kind::Text, Val::Str(_)) => true,
        (Kind::Time | Kind::Due, Val::Str(x)) => match parse_rfc3339(x) {
            Ok(ts) => {
                times.record(s, ts);
                true
            }
            Err(_) => false,
        },
        (Kind::Enum(allowed), Val::Str(x)) => allowed.contains(&x.as_ref()),
        (Kind::Num(min, max), Val::Num(n)) => *n >= min && *n <= max,
        (Kind::IdList, Val::StrArray(items)) => items.iter().all(|x| id_len_ok(x)),
        (Kind::Bool, Val::Bool(_)) => true,
        _ => false,
    }
}

fn check_present(s: &Spec, v: Option<&Val<'_>>) -> Result<(), DecodeError> {
    let absent = match s.2 {
        Kind::Due => v.is_none(),
        _ => matches!(v, None | Some(Val::Null)),
    };
    if s.3 == Required && absent {
        let what = if v.is_some() { "is null" } else { "is missing" };
        return Err(DecodeError::new(
            Reason::MissingField,
            format!("required field `{}` {what}", s.0),
        ));
    }
    Ok(())
}

fn check_range(s: &Spec, v: &Val<'_>) -> Result<(), DecodeError> {
    if let (Kind::Num(min, max), Val::Num(n)) = (s.2, v)
        && !(*n >= min && *n <= max)
    {
        return Err(DecodeError::new(
            Reason::OutOfRange,
            format!("`{}` = {n} is outside {min}..={max}", s.0),
        ));
    }
    Ok(())
}

#[allow(clippy::match_same_arms)] // each arm is one rule of the contract
fn check_type(s: &Spec, v: &Val<'_>) -> Result<(), DecodeError> {
    let ok = match (s.2, v) {
        // A required null was reported as missing already; an optional null is absent.
        (_, Val::Null) => true,
        (Kind::Id | Kind::Text | Kind::Time | Kind::Due | Kind::Enum(_), Val::Str(_)) => true,
        (Kind::Num(..), Val::Num(_)) => true,
        (Kind::IdList, Val::StrArray(_)) => true,
        (Kind::Bool, Val::Bool(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let want = match s.2 {
            Kind::Id | Kind::Text | Kind::Time | Kind::Enum(_) => "a string",
            Kind::Due => "a string or null",
            Kind::Num(..) => "a number",
            Kind::IdList => "an array of strings",
            Kind::Bool => "a boolean",
        };
        Err(DecodeError::new(
            Reason::WrongType,
            format!("`{}` must be {want}, got {}", s.0, v.kind()),
        ))
    }
}

/// Checks a value; returns the parsed instant for time fields.
fn check_value(s: &Spec, v: &Val<'_>) -> Result<Option<Ts>, DecodeError> {
    let bad = |why: String| Err(DecodeError::new(Reason::InvalidValue, why));
    match (s.2, v) {
        (Kind::Id, Val::Str(x)) if !id_len_ok(x) => {
            return bad(format!("`{}` must have 1 to 128 characters", s.0));
        }
        (Kind::Time | Kind::Due, Val::Str(x)) => match parse_rfc3339(x) {
            Ok(ts) => return Ok(Some(ts)),
            Err(_) => {
                return bad(format!(
                    "`{}` is not an RFC 3339 timestamp with offset: `{}`",
                    s.0,
                    truncate(x)
                ));
            }
        },
        (Kind::Enum(allowed), Val::Str(x)) if !allowed.contains(&x.as_ref()) => {
            return bad(format!(
                "`{}` must be one of {}; got `{}`",
                s.0,
                allowed.join(", "),
                truncate(x)
            ));
        }
        (Kind::IdList, Val::StrArray(items)) if !items.iter().all(|x| id_len_ok(x)) => {
            return bad(format!(
                "every entry of `{}` must have 1 to 128 characters",
                s.0
            ));
        }
        _ => {}
    }
    Ok(None)
}

/// The longest id or code the contract takes, in characters.
pub const MAX_ID_CHARS: usize = 128;

fn id_len_ok(s: &str) -> bool {
    !s.is_empty() && (s.len() <= MAX_ID_CHARS || s.chars().count() <= MAX_ID_CHARS)
}

/// At most 64 characters of untrusted text for a detail message.
fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn take_str<'a>(v: &mut Option<Val<'a>>) -> Option<Cow<'a, str>> {
    match v.take() {
        Some(Val::Str(s)) => Some(s),
        _ => None,
    }
}

fn take_num(v: Option<&Val<'_>>) -> f64 {
    match v {
        Some(Val::Num(n)) => *n,
        _ => 0.0,
    }
}

fn take_bool(v: Option<&Val<'_>>) -> Option<bool> {
    match v {
        Some(Val::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn take_enum<T>(v: Option<&Val<'_>>, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    match v {
        Some(Val::Str(s)) => parse(s),
        _ => None,
    }
}

/// Validated fields → typed event. Every lookup here succeeds by construction; a missing
/// value falls back to an empty string rather than panicking.
fn build<'a>(
    source: Source,
    ty: &str,
    times: Times,
    f: &mut RawFields<'a>,
) -> Result<Event<'a>, DecodeError> {
    let event_id = take_str(&mut f.event_id).unwrap_or_default();
    let req = |v: &mut Option<Val<'a>>| take_str(v).unwrap_or_default();
    let body = if ty == "heartbeat" {
        Body::Heartbeat
    } else {
        match source {
            Source::Onestop => {
                let kind = DossierKind::parse(ty)
                    .ok_or_else(|| DecodeError::new(Reason::UnknownType, ty.to_owned()))?;
                let due_at = match &f.due_at {
                    // Parsed by the checks (a string that does not parse is refused there).
                    Some(Val::Str(_)) => times.due_at.map_or(Due::Absent, Due::At),
                    Some(Val::Null)
                        if matches!(kind, DossierKind::Received | DossierKind::Resolved) =>
                    {
                        Due::NoDeadline
                    }
                    _ => Due::Absent,
                };
                let intake = matches!(kind, DossierKind::Submitted | DossierKind::Received);
                // `paid` and `rated` validate no agency or deadline: none is taken from them.
                let placed = !matches!(kind, DossierKind::Paid | DossierKind::Rated);
                let on = |k: DossierKind, v: &Option<Val<'_>>| {
                    if kind == k {
                        take_bool(v.as_ref())
                    } else {
                        None
                    }
                };
                let result = matches!(kind, DossierKind::Resolved | DossierKind::Returned);
                let facts = Facts {
                    fee_required: on(DossierKind::Received, &f.fee_required),
                    paper_result: on(DossierKind::Received, &f.paper_result),
                    digitised: on(DossierKind::Received, &f.digitised),
                    reused_data: on(DossierKind::Received, &f.reused_data),
                    result_electronic: if result {
                        take_bool(f.result_electronic.as_ref())
                    } else {
                        None
                    },
                    complaint: on(DossierKind::Rated, &f.complaint),
                };
                Body::Dossier(DossierEvent {
                    kind,
                    dossier_id: req(&mut f.dossier_id),
                    agency: if placed {
                        take_str(&mut f.agency)
                    } else {
                        None
                    },
                    agency_level: if placed {
                        take_enum(f.agency_level.as_ref(), level)
                    } else {
                        None
                    },
                    procedure: if intake {
                        take_str(&mut f.procedure)
                    } else {
                        None
                    },
                    sector: if placed {
                        take_str(&mut f.sector)
                    } else {
                        None
                    },
                    channel: if intake {
                        take_enum(f.channel.as_ref(), channel)
                    } else {
                        None
                    },
                    due_at: if placed { due_at } else { Due::Absent },
                    outcome: (kind == DossierKind::Resolved)
                        .then(|| take_enum(f.outcome.as_ref(), outcome))
                        .flatten(),
                    reason: (kind == DossierKind::Paused)
                        .then(|| take_enum(f.reason.as_ref(), pause_reason))
                        .flatten(),
                    method: (kind == DossierKind::Paid)
                        .then(|| take_enum(f.method.as_ref(), pay_method))
                        .flatten(),
                    rating: (kind == DossierKind::Rated)
                        .then(|| take_enum(f.rating.as_ref(), rating))
                        .flatten(),
                    facts,
                })
            }
            Source::Vc => Body::Vc(build_vc(ty, f)),
            Source::Soc => Body::Soc(build_soc(ty, f)),
        }
    };
    Ok(Event {
        source,
        event_id,
        occurred_at: times.occurred_at,
        body,
    })
}

fn build_vc<'a>(ty: &str, f: &mut RawFields<'a>) -> VcEvent<'a> {
    let meeting_id = take_str(&mut f.meeting_id).unwrap_or_default();
    let endpoint_id = take_str(&mut f.endpoint_id).unwrap_or_default();
    match ty {
        "meeting_started" => VcEvent::MeetingStarted {
            meeting_id,
            title: take_str(&mut f.title).unwrap_or_default(),
            level: take_enum(f.level.as_ref(), level).unwrap_or(Level::Unknown),
            expected_endpoints: match f.expected_endpoints.take() {
                Some(Val::StrArray(v)) => Some(v),
                _ => None,
            },
        },
        "meeting_ended" => VcEvent::MeetingEnded { meeting_id },
        "endpoint_joined" => VcEvent::EndpointJoined {
            meeting_id,
            endpoint_id,
            agency: take_str(&mut f.agency),
        },
        "endpoint_left" => VcEvent::EndpointLeft {
            meeting_id,
            endpoint_id,
        },
        _ => VcEvent::EndpointStats {
            meeting_id,
            endpoint_id,
            stats: LinkStats {
                packet_loss_pct: take_num(f.packet_loss_pct.as_ref()),
                jitter_ms: take_num(f.jitter_ms.as_ref()),
                rtt_ms: take_num(f.rtt_ms.as_ref()),
                bitrate_kbps: take_num(f.bitrate_kbps.as_ref()),
            },
        },
    }
}

fn build_soc<'a>(ty: &str, f: &mut RawFields<'a>) -> SocEvent<'a> {
    let severity = take_enum(f.severity.as_ref(), severity).unwrap_or(Severity::Low);
    match ty {
        "alert" => SocEvent::Alert {
            alert_id: take_str(&mut f.alert_id).unwrap_or_default(),
            system_id: take_str(&mut f.system_id).unwrap_or_default(),
            severity,
            category: take_enum(f.category.as_ref(), category).unwrap_or(Category::Other),
        },
        "incident_opened" => SocEvent::IncidentOpened {
            incident_id: take_str(&mut f.incident_id).unwrap_or_default(),
            system_id: take_str(&mut f.system_id).unwrap_or_default(),
            severity,
            title: take_str(&mut f.title),
        },
        "incident_acknowledged" => SocEvent::IncidentAcknowledged {
            incident_id: take_str(&mut f.incident_id).unwrap_or_default(),
        },
        "incident_resolved" => SocEvent::IncidentResolved {
            incident_id: take_str(&mut f.incident_id).unwrap_or_default(),
        },
        _ => SocEvent::SystemHeartbeat {
            system_id: take_str(&mut f.system_id).unwrap_or_default(),
        },
    }
}

fn level(s: &str) -> Option<Level> {
    Some(match s {
        "central" => Level::Central,
        "province" => Level::Province,
        "commune" => Level::Commune,
        "district" => Level::District,
        _ => return None,
    })
}

fn pay_method(s: &str) -> Option<PaymentMethod> {
    PaymentMethod::ALL.into_iter().find(|m| m.as_str() == s)
}

fn rating(s: &str) -> Option<Rating> {
    Rating::ALL.into_iter().find(|r| r.as_str() == s)
}

fn channel(s: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| c.as_str() == s)
}

fn outcome(s: &str) -> Option<Outcome> {
    match s {
        "approved" => Some(Outcome::Approved),
        "refused" => Some(Outcome::Refused),
        _ => None,
    }
}

fn pause_reason(s: &str) -> Option<PauseReason> {
    match s {
        "fees" => Some(PauseReason::Fees),
        "suspended" => Some(PauseReason::Suspended),
        "other" => Some(PauseReason::Other),
        _ => None,
    }
}

fn severity(s: &str) -> Option<Severity> {
    Severity::ALL.into_iter().find(|c| c.as_str() == s)
}

fn category(s: &str) -> Option<Category> {
    Category::ALL.into_iter().find(|c| c.as_str() == s)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod schema_tests;

#[cfg(test)]
mod one_pass_tests {
    use super::*;

    /// `passes` accepts a field exactly when the four ordered checks all do.
    #[test]
    fn the_one_pass_check_accepts_exactly_what_the_ordered_checks_accept() {
        let long = "x".repeat(129);
        let values = [
            Val::Null,
            Val::Bool(true),
            Val::Bool(false),
            Val::Num(-1.0),
            Val::Num(0.0),
            Val::Num(50.5),
            Val::Num(100.0),
            Val::Num(100.5),
            Val::Str("".into()),
            Val::Str("a".into()),
            Val::Str(long.as_str().into()),
            Val::Str("online".into()),
            Val::Str("critical".into()),
            Val::Str("2026-11-24T08:15:02.123+07:00".into()),
            Val::Str("2026-11-24 08:15:02".into()),
            Val::StrArray(vec!["EP-1".into()]),
            Val::StrArray(vec!["".into()]),
            Val::StrArray(vec![]),
            Val::OtherArray,
            Val::Object,
        ];
        let kinds = [
            Kind::Id,
            Kind::Text,
            Kind::Time,
            Kind::Due,
            Kind::Enum(CHANNELS),
            Kind::Num(0.0, 100.0),
            NON_NEG,
            Kind::IdList,
            Kind::Bool,
        ];
        for kind in kinds {
            for need in [Required, Optional] {
                for name in ["occurred_at", "due_at", "x"] {
                    let s = Spec(name, |f| &f.event_id, kind, need);
                    for v in std::iter::once(None).chain(values.iter().map(Some)) {
                        let ordered = check_present(&s, v).is_ok()
                            && v.is_none_or(|v| {
                                check_type(&s, v).is_ok()
                                    && check_value(&s, v).is_ok()
                                    && check_range(&s, v).is_ok()
                            });
                        let mut times = Times::default();
                        assert_eq!(passes(&s, v, &mut times), ordered, "{name} {v:?}");
                        // What it parsed is what the ordered checks parse, kept for `build`.
                        let mut want = Times::default();
                        if ordered && let Some(Ok(Some(ts))) = v.map(|v| check_value(&s, v)) {
                            want.record(&s, ts);
                        }
                        assert_eq!(
                            (times.occurred_at, times.due_at),
                            (want.occurred_at, want.due_at),
                            "{name} {v:?}"
                        );
                    }
                }
            }
        }
    }
}

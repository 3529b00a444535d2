//! Declarative mappings: a vendor's JSON payload turned into contract events by a file a
//! province's engineer writes, not by code (issue 13). A mapping names the contract source
//! of its events, where the records are in a payload (one record, or an array inside a batch
//! body), and how each field of the contract event is built from a record: JSON pointers
//! (with fallbacks), constants, value tables, time formats in the IOC's time zone, agencies
//! by their name in the directory, and an `event_id` hashed from chosen fields when the
//! source has none, so that a re-sent record of the same state is a duplicate.
//!
//! The events it builds are contract JSON, which then goes through the same decoding,
//! validation, dedupe and `apply` as an event published in the contract's form. A record
//! the mapping cannot build an event from is a [`MappingError`] naming the mapping, the
//! record and the field (the dead-letter reason `mapping_failed`).
//!
//! The format is in `docs/integrations.md`; `config/mappings/` holds the shipped mappings.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Source;
use crate::directory::{Directory, Named};

/// A mapping, as read from its file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Its name: in errors, dead letters and the HTTP route.
    pub name: String,
    /// The contract source of the events it builds.
    #[serde(deserialize_with = "source")]
    pub source: Source,
    /// What it is for, for people.
    #[serde(default)]
    pub description: String,
    /// A JSON pointer to the array of records in a payload (a batch body). A payload
    /// without it is one record.
    #[serde(default)]
    pub records: Option<String>,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: TypeSpec,
    /// The event id.
    pub event_id: IdSpec,
    /// When the event happened.
    pub occurred_at: TimeSpec,
    /// The other fields of the contract event, by name.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// Where its payloads come from; none: only `iocd mapping check`.
    #[serde(default)]
    pub input: InputSpec,
}

/// Where a mapping's payloads come from: MQTT topic filters, the HTTP push route, a poller.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// MQTT topic filters (`+` and `#` wildcards) whose messages are this mapping's payloads.
    /// They must not overlap the contract's `{prefix}/{source}/#` topics.
    #[serde(default)]
    pub mqtt: Vec<String>,
    /// Whether `POST /api/v1/ingest/mapped/{name}` takes payloads for it.
    #[serde(default)]
    pub http: bool,
    /// An HTTP endpoint polled for records changed since a watermark.
    #[serde(default)]
    pub poll: Option<PollSpec>,
}

/// A JSON endpoint polled for the records changed since a watermark (issue 13 point 4).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    /// The URL, `http://`, with `{since}` (the watermark, URL-encoded) and optionally
    /// `{page}` (1, 2, … within one poll) in it.
    pub url: String,
    /// Seconds between two polls once caught up.
    #[serde(default = "default_poll_secs")]
    pub every_secs: u64,
    /// The record field whose greatest value is the next watermark (a JSON pointer), and
    /// the watermark before the first poll. Values compare as text (`yyyyMMddHHmmss`
    /// and RFC 3339 in one offset sort as text) or as numbers (epoch times).
    pub watermark: String,
    /// The watermark of the first poll.
    pub since: String,
    /// Records per page: a page with fewer ends the poll. Without it, one page per poll.
    #[serde(default)]
    pub page_size: Option<usize>,
    /// A bearer token for the endpoint, read from this environment variable.
    #[serde(default)]
    pub token_env: Option<String>,
}

const fn default_poll_secs() -> u64 {
    60
}

impl PollSpec {
    /// Whether it can be used.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url {:?} must start with http:// or https://",
                self.url
            ));
        }
        if !self.url.contains("{since}") {
            return Err(format!("url {:?} must contain {{since}}", self.url));
        }
        if self.page_size.is_some() != self.url.contains("{page}") {
            return Err("page_size and {page} in the url go together".into());
        }
        if !self.watermark.starts_with('/') {
            return Err(format!(
                "watermark {:?} must be a JSON pointer (starting with /)",
                self.watermark
            ));
        }
        if self.since.is_empty() {
            return Err("since (the first watermark) must not be empty".into());
        }
        if !(1..=86_400).contains(&self.every_secs) {
            return Err(format!("every_secs {} must be 1 to 86400", self.every_secs));
        }
        Ok(())
    }
}

fn source<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Source, D::Error> {
    let s = String::deserialize(d)?;
    Source::ALL
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("unknown source `{s}`; expected onestop, vc or soc"))
        })
}

/// One or several JSON pointers: the first that holds a value is taken.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Pointers {
    /// One pointer.
    One(String),
    /// Fallbacks, in order.
    Many(Vec<String>),
}

impl Pointers {
    fn list(&self) -> &[String] {
        match self {
            Pointers::One(p) => std::slice::from_ref(p),
            Pointers::Many(v) => v,
        }
    }
}

/// How the event type is found: a field's value through a table. A value the table maps
/// to `""` is known but has no contract type: the record is skipped (counted, no event).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeSpec {
    /// Where the value is.
    pub field: Pointers,
    /// Value (as text) → contract type.
    pub table: BTreeMap<String, String>,
}

/// How the event id is found: a field, or a stable hash of fields.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSpec {
    /// The source's own id.
    #[serde(default)]
    pub field: Option<Pointers>,
    /// Fields whose values, hashed with the mapping's name, make the id.
    #[serde(default)]
    pub hash: Vec<String>,
}

/// How `occurred_at` is found: fields by event type, with fallbacks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// The fields for any type without its own.
    pub field: Pointers,
    /// The fields for some types, tried before `field`.
    #[serde(default)]
    pub by_type: BTreeMap<String, Pointers>,
    /// Their format.
    #[serde(default)]
    pub format: TimeFormat,
}

/// A time format of the sources.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339, kept as it is.
    #[default]
    #[serde(rename = "rfc3339")]
    Rfc3339,
    /// `yyyyMMddHHmmss`, local time of the IOC.
    #[serde(rename = "yyyyMMddHHmmss")]
    Compact,
    /// `dd/MM/yyyy HH:mm:ss`, local time of the IOC.
    #[serde(rename = "dd/MM/yyyy HH:mm:ss")]
    DayFirst,
    /// Seconds since 1970 (a number or digits).
    #[serde(rename = "epoch_seconds")]
    EpochSeconds,
    /// Milliseconds since 1970.
    #[serde(rename = "epoch_milliseconds")]
    EpochMillis,
}

impl TimeFormat {
    fn name(self) -> &'static str {
        match self {
            TimeFormat::Rfc3339 => "RFC 3339",
            TimeFormat::Compact => "yyyyMMddHHmmss",
            TimeFormat::DayFirst => "dd/MM/yyyy HH:mm:ss",
            TimeFormat::EpochSeconds => "epoch seconds",
            TimeFormat::EpochMillis => "epoch milliseconds",
        }
    }
}

/// How one field of the contract event is built.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Where the value is (the first pointer that holds one).
    #[serde(default)]
    pub field: Option<Pointers>,
    /// A constant instead.
    #[serde(default)]
    pub value: Option<Value>,
    /// Value (as text) → the contract's value.
    #[serde(default)]
    pub table: Option<BTreeMap<String, Value>>,
    /// A time, in this format: written as RFC 3339.
    #[serde(default)]
    pub format: Option<TimeFormat>,
    /// An agency named as the directory names it (a unit's name or alias): its code.
    #[serde(default)]
    pub agency_by_name: bool,
    /// Only for these event types (all when empty).
    #[serde(default)]
    pub types: Vec<String>,
    /// A record without it cannot be mapped (else the field is left out).
    #[serde(default)]
    pub required: bool,
}

/// A record the mapping could not build an event from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingError {
    /// The mapping.
    pub mapping: String,
    /// The record's index in the payload (0 for a payload of one record).
    pub record: usize,
    /// The field or pointer concerned.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mapping {}, record {}, {}: {}",
            self.mapping, self.record, self.field, self.problem
        )
    }
}

impl std::error::Error for MappingError {}

/// What one record became.
#[derive(Clone, Debug, PartialEq)]
pub enum Mapped {
    /// A contract event (a JSON object, to be decoded as one published on the source).
    Event(Value),
    /// A record whose type has no contract event: counted, changes nothing.
    Skipped {
        /// The record's index.
        record: usize,
        /// Why.
        why: String,
    },
}

/// What a mapping needs besides the payload.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The IOC's time zone, for local times without an offset.
    pub tz: &'a jiff::tz::TimeZone,
    /// The agency directory, for agencies by name.
    pub directory: &'a Directory,
}

impl Mapping {
    /// Reads a mapping from TOML `text` (of file `file`, for messages).
    ///
    /// # Errors
    /// The TOML error, with its line, or what is inconsistent.
    pub fn parse(text: &str, file: &str) -> Result<Self, String> {
        let m: Mapping = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        if m.event_id.field.is_none() && m.event_id.hash.is_empty() {
            return Err(format!(
                "{file}: [event_id] needs `field` (the source's id) or `hash` (fields to hash)"
            ));
        }
        for (name, f) in &m.fields {
            if f.field.is_none() && f.value.is_none() {
                return Err(format!("{file}: field `{name}` needs `field` or `value`"));
            }
        }
        Ok(m)
    }

    /// The records of `payload` mapped, in order; the first record that cannot be mapped
    /// is the error.
    ///
    /// # Errors
    /// The payload is not JSON, or a record cannot be mapped (the first such record).
    pub fn map(&self, payload: &[u8], cx: Context<'_>) -> Result<Vec<Mapped>, MappingError> {
        let body: Value = serde_json::from_slice(payload)
            .map_err(|e| self.error(0, "payload", format!("not JSON: {e}")))?;
        self.map_each(&body, cx)?.into_iter().collect()
    }

    /// Each record of `body` mapped, in order: a batch with one bad record still yields
    /// the others.
    ///
    /// # Errors
    /// The records pointer holds something else than an array.
    pub fn map_each(
        &self,
        body: &Value,
        cx: Context<'_>,
    ) -> Result<Vec<Result<Mapped, MappingError>>, MappingError> {
        let records: Vec<&Value> = match self.records.as_deref().and_then(|p| body.pointer(p)) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(_) => {
                return Err(self.error(
                    0,
                    self.records.as_deref().unwrap_or(""),
                    "not an array".into(),
                ));
            }
            None => vec![body],
        };
        Ok(records
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.record(i, r, cx))
            .collect())
    }

    /// Record `i` of `body`, as [`Mapping::map_each`] numbers them.
    #[must_use]
    pub fn record_at<'a>(&self, body: &'a Value, i: usize) -> Option<&'a Value> {
        match self.records.as_deref().and_then(|p| body.pointer(p)) {
            Some(Value::Array(items)) => items.get(i),
            Some(_) => None,
            None => (i == 0).then_some(body),
        }
    }

    fn error(&self, record: usize, field: &str, problem: String) -> MappingError {
        MappingError {
            mapping: self.name.clone(),
            record,
            field: field.to_owned(),
            problem,
        }
    }

    fn record(&self, i: usize, r: &Value, cx: Context<'_>) -> Result<Mapped, MappingError> {
        if !r.is_object() {
            return Err(self.error(i, "record", "not a JSON object".into()));
        }
        let (pointer, raw) = first(r, &self.kind.field).ok_or_else(|| {
            self.error(
                i,
                &self.kind.field.list().join(" | "),
                "missing (the event type)".into(),
            )
        })?;
        let code = text(raw);
        let Some(kind) = self.kind.table.get(&code) else {
            return Err(self.error(i, pointer, format!("value {code} is not in the type table")));
        };
        if kind.is_empty() {
            return Ok(Mapped::Skipped {
                record: i,
                why: format!("{pointer} = {code} has no contract event type"),
            });
        }
        let mut out = Map::new();
        out.insert("type".into(), Value::String(kind.clone()));
        out.insert("event_id".into(), Value::String(self.event_id(i, r)?));
        let mut times = self
            .occurred_at
            .by_type
            .get(kind)
            .map(Pointers::list)
            .unwrap_or_default()
            .iter()
            .chain(self.occurred_at.field.list());
        let (pointer, at) = times
            .find_map(|p| r.pointer(p).filter(|v| !blank(v)).map(|v| (p, v)))
            .ok_or_else(|| {
                self.error(
                    i,
                    "occurred_at",
                    format!("none of its fields holds a time for type {kind}"),
                )
            })?;
        let at = time(at, self.occurred_at.format, cx.tz).map_err(|e| self.error(i, pointer, e))?;
        out.insert("occurred_at".into(), Value::String(at));
        for (name, spec) in &self.fields {
            if !spec.types.is_empty() && !spec.types.iter().any(|t| t == kind) {
                continue;
            }
            match self.field(i, name, spec, r, cx)? {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None if spec.required => {
                    return Err(self.error(i, name, "missing (required)".into()));
                }
                None => {}
            }
        }
        Ok(Mapped::Event(Value::Object(out)))
    }

    fn event_id(&self, i: usize, r: &Value) -> Result<String, MappingError> {
        if let Some(p) = &self.event_id.field
            && let Some((_, v)) = first(r, p)
        {
            return Ok(text(v));
        }
        if self.event_id.hash.is_empty() {
            return Err(self.error(i, "event_id", "its field is missing".into()));
        }
        // The mapping's name and each field's value, each with its kind and length in front
        // (no two different records can write the same bytes), hashed: the same record state
        // gives the same id. A number is hashed as JSON wrote it, so no precision is lost.
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        let mut part = |kind: u8, bytes: &[u8]| {
            h.update(&[kind]);
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(b'm', self.name.as_bytes());
        for p in &self.event_id.hash {
            match r.pointer(p) {
                None | Some(Value::Null) => part(b'n', b""),
                Some(Value::String(s)) => part(b's', s.trim().as_bytes()),
                Some(other) => part(b'v', other.to_string().as_bytes()),
            }
        }
        Ok(format!("{}-{:032x}", self.name, h.digest128()))
    }

    fn field(
        &self,
        i: usize,
        name: &str,
        spec: &FieldSpec,
        r: &Value,
        cx: Context<'_>,
    ) -> Result<Option<Value>, MappingError> {
        let (pointer, v) = match (&spec.field, &spec.value) {
            (Some(p), _) => match first(r, p) {
                Some((pointer, v)) => (pointer.to_owned(), v.clone()),
                None => match &spec.value {
                    Some(c) => (name.to_owned(), c.clone()),
                    None => return Ok(None),
                },
            },
            (None, Some(c)) => (name.to_owned(), c.clone()),
            (None, None) => return Ok(None),
        };
        let v = match &spec.table {
            Some(table) => {
                let key = text(&v);
                table.get(&key).cloned().ok_or_else(|| {
                    self.error(
                        i,
                        &pointer,
                        format!("value {key} is not in the table of `{name}`"),
                    )
                })?
            }
            None => v,
        };
        if let Some(format) = spec.format {
            return time(&v, format, cx.tz)
                .map(|t| Some(Value::String(t)))
                .map_err(|e| self.error(i, &pointer, e));
        }
        if spec.agency_by_name {
            let named = text(&v);
            return match cx.directory.by_name(&named) {
                Named::One(a) => Ok(Some(Value::String(a.code.to_string()))),
                Named::Ambiguous(codes) => Err(self.error(
                    i,
                    &pointer,
                    format!(
                        "agency {named:?} names several units ({}); give each an alias in the directory",
                        codes.join(", ")
                    ),
                )),
                Named::Unknown => Err(self.error(
                    i,
                    &pointer,
                    format!(
                        "agency {named:?} is neither a code, a name nor an alias in the directory"
                    ),
                )),
            };
        }
        Ok(Some(v))
    }
}

/// The first pointer of `p` that holds a non-blank value in `r`, with it.
fn first<'a, 'p>(r: &'a Value, p: &'p Pointers) -> Option<(&'p str, &'a Value)> {
    p.list()
        .iter()
        .find_map(|p| r.pointer(p).filter(|v| !blank(v)).map(|v| (p.as_str(), v)))
}

/// Null or an empty string: "no value" in the sources.
fn blank(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty())
}

/// A scalar as text: a string as it is, a number or a boolean as JSON writes it.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

/// A time of the sources as RFC 3339 (local times in `tz`).
fn time(v: &Value, format: TimeFormat, tz: &jiff::tz::TimeZone) -> Result<String, String> {
    let s = text(v);
    let bad = || format!("{s:?} is not a time in {}", format.name());
    let local = |pattern: &str| {
        let dt = jiff::civil::DateTime::strptime(pattern, &s).map_err(|_| bad())?;
        tz.to_timestamp(dt).map_err(|_| bad())
    };
    let ts = match format {
        TimeFormat::Rfc3339 => return Ok(s),
        TimeFormat::Compact if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) => {
            local("%Y%m%d%H%M%S")?
        }
        TimeFormat::Compact => return Err(bad()),
        TimeFormat::DayFirst => local("%d/%m/%Y %H:%M:%S")?,
        TimeFormat::EpochSeconds | TimeFormat::EpochMillis => {
            let n: i64 = s.parse().map_err(|_| bad())?;
            let r = if format == TimeFormat::EpochSeconds {
                jiff::Timestamp::from_second(n)
            } else {
                jiff::Timestamp::from_millisecond(n)
            };
            r.map_err(|_| bad())?
        }
    };
    Ok(ts
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
        .to_string())
}

pub mod set;
#[cfg(test)]
mod tests;

pub use set::Mappings;

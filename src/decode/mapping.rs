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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use smallvec::SmallVec;

use lazy::Scalar;

use super::Source;
use super::raw::Span;
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
    /// Further events a record makes besides the one of its type, each when a field holds
    /// one of its values (a payment flag on a status record makes a `paid` event).
    #[serde(default)]
    pub also: Vec<AlsoSpec>,
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

/// A further event a record makes, besides the one of its type: of type `kind`, when the
/// field `when` holds one of `values`. Its `occurred_at` and fields are found as for any
/// event of that type (`[occurred_at.by_type]`, and the `[fields]` whose `types` include it
/// or are empty). A record is mapped whole: if this event cannot be built, the record is
/// refused with the reason.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsoSpec {
    /// Its contract type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The field that decides.
    pub when: Pointers,
    /// The values (as text) that make the event; any other value, or none, makes nothing.
    pub values: Vec<String>,
    /// Its id. A hash is salted with the type, and the source's own id gets `:type` after
    /// it, so it is never the id of the record's own event.
    pub event_id: IdSpec,
    /// Only these of `[fields]` (of those its type takes); none: all its type takes. A field
    /// the contract ignores on this type (the agency of a payment) is left out this way, so
    /// it cannot fail the record.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
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
    /// A JSON pointer to an array of the record: the field is then whether `field`, read in
    /// each item, passes `test` in any of them (see [`ItemTest`]): `true` when one does,
    /// `false` when none does but some item answered, left out when the array is missing or
    /// empty or no item answered. A fee list says so whether fees are due; a list of files,
    /// whether one is attached.
    #[serde(default)]
    pub any_in: Option<String>,
    /// The test of `any_in`.
    #[serde(default)]
    pub test: Option<ItemTest>,
}

/// What an item of an `any_in` array is asked.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ItemTest {
    /// An amount other than 0: a JSON number, or a string with digits, read whatever its
    /// separators and unit (`"1.500.000"`, `"50,000 đ"`): a price. An item without a digit
    /// there does not answer.
    Nonzero,
    /// Text that is not blank: a file's link. `""` or `null` is no; an item without the
    /// member, or with something else than text there, does not answer.
    Nonblank,
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

/// Why a payload gave no records at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// It is not JSON (the reason `invalid_json`): what the parser says.
    NotJson(String),
    /// Its records pointer holds something else than an array (`mapping_failed`).
    Mapping(MappingError),
}

/// What one record became.
#[derive(Clone, Debug, PartialEq)]
pub enum Mapped {
    /// A contract event, to be decoded as one published on the source.
    Event {
        /// Its contract type.
        kind: &'static str,
        /// Its JSON text.
        json: Vec<u8>,
        /// Its `event_id`.
        event_id: String,
        /// Where each member is in `json`, for `decode::decode_written`.
        spans: Vec<Span>,
    },
    /// A record whose type has no contract event: counted, changes nothing.
    Skipped {
        /// The record's index.
        record: usize,
        /// Why.
        why: String,
    },
}

/// What one record became: its own event (or its skip) first, then the `[[also]]` events
/// it made.
pub type RecordEvents = smallvec::SmallVec<[Mapped; 1]>;

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
        let types = super::type_names(m.source);
        for kind in m.kind.table.values() {
            if !kind.is_empty() && !types.contains(&kind.as_str()) {
                return Err(format!(
                    "{file}: [type] table: `{kind}` is not a type of source {}",
                    m.source.as_str()
                ));
            }
        }
        for also in &m.also {
            if also.kind.is_empty() || also.values.is_empty() {
                return Err(format!(
                    "{file}: [[also]] needs a `type` and at least one of `values`"
                ));
            }
            if !types.contains(&also.kind.as_str()) {
                return Err(format!(
                    "{file}: [[also]] type `{}` is not a type of source {}",
                    also.kind,
                    m.source.as_str()
                ));
            }
            if let Some(unknown) = also
                .fields
                .iter()
                .flatten()
                .find(|f| !m.fields.contains_key(*f))
            {
                return Err(format!(
                    "{file}: [[also]] of type `{}`: `{unknown}` is not one of [fields]",
                    also.kind
                ));
            }
            if also.event_id.field.is_none() && also.event_id.hash.is_empty() {
                return Err(format!(
                    "{file}: [[also]] of type `{}`: its event_id needs `field` or `hash`",
                    also.kind
                ));
            }
        }
        for (name, f) in &m.fields {
            if f.any_in.is_some() != f.test.is_some()
                || f.any_in.as_ref().is_some_and(|p| {
                    !p.starts_with('/')
                        || f.field.is_none()
                        || f.table.is_some()
                        || f.value.is_some()
                        || f.format.is_some()
                        || f.agency_by_name
                        || f.required
                })
            {
                return Err(format!(
                    "{file}: field `{name}`: `any_in` (a pointer, starting with /) needs `test` and `field` (read in each item), and takes no `table`, `value`, `format`, `agency_by_name` or `required`"
                ));
            }
            if f.field.is_none() && f.value.is_none() {
                return Err(format!("{file}: field `{name}` needs `field` or `value`"));
            }
            if ["type", "event_id", "occurred_at"].contains(&name.as_str()) {
                return Err(format!(
                    "{file}: field `{name}` is set by [{}], not [fields]",
                    if name == "type" { "type" } else { name }
                ));
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
        match self.map_each(payload, cx) {
            Ok(records) => {
                let mut all = Vec::with_capacity(records.len());
                for r in records {
                    all.extend(r?);
                }
                Ok(all)
            }
            Err(PayloadError::NotJson(e)) => {
                Err(self.error(0, "payload", format!("not JSON: {e}")))
            }
            Err(PayloadError::Mapping(e)) => Err(e),
        }
    }

    /// Each record of `payload` mapped, in order: a batch with one bad record still yields
    /// the others. The payload is read in one pass ([`lazy::records`]).
    ///
    /// # Errors
    /// The payload is not JSON, or the records pointer holds something else than an array.
    pub fn map_each(
        &self,
        payload: &[u8],
        cx: Context<'_>,
    ) -> Result<Vec<Result<RecordEvents, MappingError>>, PayloadError> {
        let records = lazy::records(payload, self.records.as_deref())
            .map_err(|e| PayloadError::NotJson(e.to_string()))?;
        let records = match records {
            lazy::Records::Items(items) => items,
            lazy::Records::Single(one) => vec![one],
            lazy::Records::NotArray => {
                return Err(PayloadError::Mapping(self.error(
                    0,
                    self.records.as_deref().unwrap_or(""),
                    "not an array".into(),
                )));
            }
        };
        Ok(records
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Some(members) => self.record(i, &lazy::Record::from(members), cx),
                None => Err(self.error(i, "record", "not a JSON object".into())),
            })
            .collect())
    }

    /// The records of `body`: the items of the array `records` points to, or `body` itself
    /// when it has nothing there; `None` when it has something else than an array there.
    #[must_use]
    pub fn records_of<'a>(&self, body: &'a RawValue) -> Option<Vec<&'a RawValue>> {
        match self.records.as_deref().and_then(|p| lazy::pointer(body, p)) {
            Some(items) => lazy::array(items),
            None => Some(vec![body]),
        }
    }

    /// Record `i` of `body`, as [`Mapping::map_each`] numbers them.
    #[must_use]
    pub fn record_at<'a>(&self, body: &'a RawValue, i: usize) -> Option<&'a RawValue> {
        self.records_of(body)?.get(i).copied()
    }

    fn error(&self, record: usize, field: &str, problem: String) -> MappingError {
        MappingError {
            mapping: self.name.clone(),
            record,
            field: field.to_owned(),
            problem,
        }
    }

    fn record(
        &self,
        i: usize,
        r: &lazy::Record<'_>,
        cx: Context<'_>,
    ) -> Result<RecordEvents, MappingError> {
        let (pointer, got) = first(r, &self.kind.field).ok_or_else(|| {
            self.error(
                i,
                &self.kind.field.list().join(" | "),
                "missing (the event type)".into(),
            )
        })?;
        let code = got.as_text();
        let Some(kind) = self.kind.table.get(code) else {
            return Err(self.error(i, pointer, format!("value {code} is not in the type table")));
        };
        let mut made = RecordEvents::new();
        if kind.is_empty() {
            made.push(Mapped::Skipped {
                record: i,
                why: format!("{pointer} = {code} has no contract event type"),
            });
        } else {
            let event_id = self.event_id(i, r, &self.event_id, None)?;
            made.push(self.event(i, r, cx, kind, event_id, None)?);
        }
        for also in &self.also {
            let decides = first(r, &also.when);
            if decides.is_some_and(|(_, v)| also.values.iter().any(|x| x == v.as_text())) {
                let event_id = self.event_id(i, r, &also.event_id, Some(&also.kind))?;
                made.push(self.event(i, r, cx, &also.kind, event_id, also.fields.as_deref())?);
            }
        }
        Ok(made)
    }

    /// The contract event of type `kind` with id `event_id` that record `r` makes, with the
    /// fields its type takes (`only` these, when given).
    fn event(
        &self,
        i: usize,
        r: &lazy::Record<'_>,
        cx: Context<'_>,
        kind: &str,
        event_id: String,
        only: Option<&[String]>,
    ) -> Result<Mapped, MappingError> {
        // The contract's own name of the type (every type was checked when the mapping was
        // read), so that the event carries it without an allocation.
        let Some(&kind) = super::type_names(self.source).iter().find(|t| **t == kind) else {
            return Err(self.error(i, "type", format!("`{kind}` is not a type of the source")));
        };
        let mut out = Out::new();
        out.key("type");
        out.string(kind);
        out.key("event_id");
        out.string(&event_id);
        let mut times = self
            .occurred_at
            .by_type
            .get(kind)
            .map(Pointers::list)
            .unwrap_or_default()
            .iter()
            .chain(self.occurred_at.field.list());
        let (pointer, at) = times
            .find_map(|p| {
                let v = lazy::scalar(r.at(p)?);
                (!v.is_blank()).then_some((p, v))
            })
            .ok_or_else(|| {
                self.error(
                    i,
                    "occurred_at",
                    format!("none of its fields holds a time for type {kind}"),
                )
            })?;
        let at = time(at.as_text(), self.occurred_at.format, cx.tz)
            .map_err(|e| self.error(i, pointer, e))?;
        out.key("occurred_at");
        out.string(at.as_str());
        for (name, spec) in &self.fields {
            if !spec.types.is_empty() && !spec.types.iter().any(|t| t == kind)
                || only.is_some_and(|o| !o.contains(name))
            {
                continue;
            }
            match self.field(i, name, spec, r, cx)? {
                Some(v) => {
                    out.key(name);
                    v.write(&mut out);
                }
                None if spec.required => {
                    return Err(self.error(i, name, "missing (required)".into()));
                }
                None => {}
            }
        }
        let (json, spans) = out.finish();
        Ok(Mapped::Event {
            kind,
            json,
            event_id,
            spans,
        })
    }

    /// The id `spec` gives record `r`; for an `[[also]]` event of type `also`, one that is
    /// never the record's own event's.
    fn event_id(
        &self,
        i: usize,
        r: &lazy::Record<'_>,
        spec: &IdSpec,
        also: Option<&str>,
    ) -> Result<String, MappingError> {
        if let Some(p) = &spec.field
            && let Some((_, v)) = first(r, p)
        {
            let id = v.text();
            let Some(kind) = also else {
                return Ok(id);
            };
            if id.chars().count() + 1 + kind.len() <= super::MAX_ID_CHARS {
                return Ok(format!("{id}:{kind}"));
            }
            // Too long with its suffix for the contract's ids: the source's id hashed, with
            // the type.
            let mut h = IdHash::new(&self.name, also);
            h.part(b's', id.as_bytes());
            return Ok(h.finish(&self.name));
        }
        if spec.hash.is_empty() {
            return Err(self.error(i, "event_id", "its field is missing".into()));
        }
        let mut h = IdHash::new(&self.name, also);
        for p in &spec.hash {
            match r.at(p).map(lazy::scalar) {
                None | Some(Scalar::Null) => h.part(b'n', b""),
                Some(Scalar::Str(s)) => h.part(b's', s.trim().as_bytes()),
                Some(Scalar::Other(t)) => h.part(b'v', t.as_bytes()),
            }
        }
        Ok(h.finish(&self.name))
    }

    fn field<'m>(
        &'m self,
        i: usize,
        name: &'m str,
        spec: &'m FieldSpec,
        r: &lazy::Record<'m>,
        cx: Context<'m>,
    ) -> Result<Option<Got<'m>>, MappingError> {
        if let (Some(items), Some(test), Some(field)) = (&spec.any_in, spec.test, &spec.field) {
            return Ok(any_in(r, items, field, test).map(|any| Got::Const(bool_value(any))));
        }
        let found = spec.field.as_ref().and_then(|p| first(r, p));
        let (pointer, v) = match (found, &spec.value) {
            (Some((pointer, v)), _) => (pointer, Got::Read(v)),
            (None, Some(c)) => (name, Got::Const(c)),
            (None, None) => return Ok(None),
        };
        let v = match &spec.table {
            Some(table) => {
                let key = v.text();
                Got::Const(table.get(key.as_ref()).ok_or_else(|| {
                    self.error(
                        i,
                        pointer,
                        format!("value {key} is not in the table of `{name}`"),
                    )
                })?)
            }
            None => v,
        };
        if let Some(format) = spec.format {
            // An RFC 3339 time is kept as the source wrote it (decoding checks it).
            let made = match time(&v.text(), format, cx.tz) {
                Ok(Written::Made(stamp)) => Some(stamp),
                Ok(Written::As(_)) => None,
                Err(e) => return Err(self.error(i, pointer, e)),
            };
            return Ok(Some(made.map_or(v, Got::Time)));
        }
        if spec.agency_by_name {
            let named = v.text();
            return match cx.directory.by_name(&named) {
                Named::One(a) => Ok(Some(Got::Code(&a.code))),
                Named::Ambiguous(codes) => Err(self.error(
                    i,
                    pointer,
                    format!(
                        "agency {named:?} names several units ({}); give each an alias in the directory",
                        codes.join(", ")
                    ),
                )),
                Named::Unknown => Err(self.error(
                    i,
                    pointer,
                    format!(
                        "agency {named:?} is neither a code, a name nor an alias in the directory"
                    ),
                )),
            };
        }
        Ok(Some(v))
    }
}

/// Whether `field` passes `test` in any item of the array at `items`: `None` when the
/// array is missing or empty or no item answers (see [`FieldSpec::any_in`]).
fn any_in(r: &lazy::Record<'_>, items: &str, field: &Pointers, test: ItemTest) -> Option<bool> {
    let mut answered = false;
    for item in lazy::array(r.at(items)?)? {
        // An item without the member does not answer: another key, or not synced.
        let found = field.list().iter().find_map(|p| lazy::pointer(item, p));
        let passes = match (test, found.map(lazy::scalar)) {
            (_, None)
            | (ItemTest::Nonzero, Some(Scalar::Null))
            | (ItemTest::Nonblank, Some(Scalar::Other(_))) => None,
            (ItemTest::Nonzero, Some(Scalar::Str(s))) => nonzero(&s),
            (ItemTest::Nonzero, Some(Scalar::Other(t))) => t
                .starts_with(|c: char| c == '-' || c.is_ascii_digit())
                .then(|| nonzero(t))
                .flatten(),
            (ItemTest::Nonblank, Some(Scalar::Str(s))) => Some(!s.trim().is_empty()),
            (ItemTest::Nonblank, Some(Scalar::Null)) => Some(false),
        };
        match passes {
            Some(true) => return Some(true),
            Some(false) => answered = true,
            None => {}
        }
    }
    answered.then_some(false)
}

/// Whether an amount written as `text` is other than 0, whatever its separators and unit
/// (`50000`, `"1.500.000"`, `"50,000"`, `"8.000 đ"`, `"0 đồng"`): `None` without a digit.
fn nonzero(text: &str) -> Option<bool> {
    let mut digits = text.bytes().filter(u8::is_ascii_digit).peekable();
    digits.peek()?;
    Some(digits.any(|d| d != b'0'))
}

/// `true` or `false` as a JSON value the mapping can lend.
fn bool_value(b: bool) -> &'static Value {
    static TRUE: Value = Value::Bool(true);
    static FALSE: Value = Value::Bool(false);
    if b { &TRUE } else { &FALSE }
}

/// A hashed event id: the mapping's name, the type of an `[[also]]` event, and each value,
/// each with its kind and length in front (no two different records can write the same
/// bytes), hashed (XXH3-128): the same record state gives the same id. A number is hashed as
/// JSON wrote it, so no precision is lost.
///
/// The parts are gathered in a buffer (on the stack while they fit) and hashed in one shot:
/// XXH3 gives the same digest in one shot as streamed, and a dozen streamed updates of a few
/// bytes each cost more than the rest of the id.
struct IdHash(SmallVec<[u8; 256]>);

impl IdHash {
    fn new(mapping: &str, also: Option<&str>) -> Self {
        let mut h = Self(SmallVec::new());
        h.part(b'm', mapping.as_bytes());
        if let Some(kind) = also {
            h.part(b't', kind.as_bytes());
        }
        h
    }

    fn part(&mut self, kind: u8, bytes: &[u8]) {
        self.0.push(kind);
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    /// `MAPPING-<32 hex>`, written by hand: `format!` costs more than the hash.
    fn finish(&self, mapping: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = xxhash_rust::xxh3::xxh3_128(&self.0);
        let mut hex = [0u8; 32];
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = HEX[((digest >> (124 - 4 * i)) & 0xf) as usize];
        }
        let mut id = String::with_capacity(mapping.len() + 33);
        id.push_str(mapping);
        id.push('-');
        // Hex digits are ASCII.
        id.extend(hex.iter().map(|&b| char::from(b)));
        id
    }
}

/// A field's value as the mapping found or made it.
enum Got<'m> {
    /// Read from the record.
    Read(Scalar<'m>),
    /// A constant or a table's value from the mapping file.
    Const(&'m Value),
    /// A time the mapping wrote.
    Time(Stamp),
    /// An agency code from the directory.
    Code(&'m str),
}

impl Got<'_> {
    /// As text, for tables, time formats and names (borrowed unless a constant is not a
    /// string).
    fn text(&self) -> Cow<'_, str> {
        match self {
            Got::Read(v) => Cow::Borrowed(v.as_text()),
            Got::Time(text) => Cow::Borrowed(text.as_str()),
            Got::Code(code) => Cow::Borrowed(code),
            Got::Const(Value::String(s)) => Cow::Borrowed(s.trim()),
            Got::Const(other) => Cow::Owned(other.to_string()),
        }
    }

    fn write(&self, out: &mut Out) {
        match self {
            Got::Read(Scalar::Null) => out.raw("null"),
            Got::Read(Scalar::Str(s)) => out.string(s),
            Got::Read(Scalar::Other(json)) => out.raw(json),
            Got::Const(v) => out.value(v),
            Got::Time(s) => out.string(s),
            Got::Code(s) => out.string(s),
        }
    }
}

/// A contract event written as JSON text, member by member, noting where each member is
/// (so that decoding it need not parse it again: `decode::decode_written`).
struct Out {
    text: Vec<u8>,
    spans: Vec<Span>,
}

impl Out {
    fn new() -> Self {
        let mut text = Vec::with_capacity(320);
        text.push(b'{');
        Self {
            text,
            spans: Vec::with_capacity(16),
        }
    }

    /// The text's length so far, as a span offset (an event is far below 4 GiB; a larger
    /// one gets an offset no text has, and decoding falls back to parsing).
    fn at(&self) -> u32 {
        u32::try_from(self.text.len()).unwrap_or(u32::MAX)
    }

    fn key(&mut self, name: &str) {
        if self.text.len() > 1 {
            self.text.push(b',');
        }
        let (key, plain) = self.write_str(name);
        self.text.push(b':');
        let at = self.at();
        // A key written with escapes gets an empty range: no known field is named so, and
        // decoding falls back to parsing if such a key ever mattered.
        self.spans.push(Span {
            key: if plain { key } else { (0, 0) },
            value: (at, at),
            plain: false,
        });
    }

    /// Writes `s` as a JSON string: the range of its contents and whether it needed no
    /// escapes (then the range holds `s` as it is).
    fn write_str(&mut self, s: &str) -> ((u32, u32), bool) {
        let start = self.at();
        // Most values need no escaping: copied as they are.
        if needs_escape(s.as_bytes()) {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.text, s);
            ((start, self.at()), false)
        } else {
            self.text.push(b'"');
            self.text.extend_from_slice(s.as_bytes());
            self.text.push(b'"');
            ((start + 1, self.at() - 1), true)
        }
    }

    /// The place of the value just written, for the member last keyed.
    fn valued(&mut self, value: (u32, u32), plain: bool) {
        if let Some(last) = self.spans.last_mut() {
            last.value = value;
            last.plain = plain;
        }
    }

    fn string(&mut self, s: &str) {
        let (range, plain) = self.write_str(s);
        self.valued(range, plain);
    }

    fn raw(&mut self, json: &str) {
        let start = self.at();
        self.text.extend_from_slice(json.as_bytes());
        self.valued((start, self.at()), false);
    }

    fn value(&mut self, v: &Value) {
        // A table's or constant's string (a type, a channel): the plain path, as any string.
        if let Value::String(s) = v {
            return self.string(s);
        }
        let start = self.at();
        let _ = serde_json::to_writer(&mut self.text, v);
        self.valued((start, self.at()), false);
    }

    fn finish(mut self) -> (Vec<u8>, Vec<Span>) {
        self.text.push(b'}');
        (self.text, self.spans)
    }
}

/// Whether JSON must escape some byte of `s` (a control character, a quote, a backslash).
fn needs_escape(s: &[u8]) -> bool {
    lazy::any_byte(s, b' ', |b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The first pointer of `p` that holds a non-blank value in `r`, with it.
fn first<'a, 'p>(r: &lazy::Record<'a>, p: &'p Pointers) -> Option<(&'p str, Scalar<'a>)> {
    p.list().iter().find_map(|p| {
        let v = lazy::scalar(r.at(p)?);
        (!v.is_blank()).then_some((p.as_str(), v))
    })
}

/// A time of the sources as RFC 3339 (local times in `tz`).
fn time<'s>(
    s: &'s str,
    format: TimeFormat,
    tz: &jiff::tz::TimeZone,
) -> Result<Written<'s>, String> {
    let bad = || format!("{s:?} is not a time in {}", format.name());
    let civil = match format {
        TimeFormat::Rfc3339 => return Ok(Written::As(s)),
        TimeFormat::Compact => compact(s).ok_or_else(bad)?,
        TimeFormat::DayFirst => {
            jiff::civil::DateTime::strptime("%d/%m/%Y %H:%M:%S", s).map_err(|_| bad())?
        }
        TimeFormat::EpochSeconds | TimeFormat::EpochMillis => {
            let n: i64 = s.parse().map_err(|_| bad())?;
            let ts = if format == TimeFormat::EpochSeconds {
                jiff::Timestamp::from_second(n)
            } else {
                jiff::Timestamp::from_millisecond(n)
            };
            let ts = ts.map_err(|_| bad())?;
            let offset = tz.to_offset(ts);
            return Ok(Written::Made(written(offset.to_datetime(ts), offset)));
        }
    };
    // A local time, written with the zone's offset at it: one lookup in the zone's rules,
    // unless a change of offset skips or repeats that time (then the earlier offset, as
    // jiff's `compatible` does).
    let ambiguous = tz.to_ambiguous_timestamp(civil);
    if let jiff::tz::AmbiguousOffset::Unambiguous { offset } = ambiguous.offset() {
        return Ok(Written::Made(written(civil, offset)));
    }
    let ts = ambiguous.compatible().map_err(|_| bad())?;
    let offset = tz.to_offset(ts);
    Ok(Written::Made(written(offset.to_datetime(ts), offset)))
}

/// RFC 3339 text, at most 30 characters (`-9999-12-31T23:59:59.999+14:00`): kept inline,
/// not allocated.
type Stamp = arrayvec::ArrayString<40>;

/// A time as the event gets it: the source's RFC 3339 text as it is, or written by iocd.
enum Written<'s> {
    As(&'s str),
    Made(Stamp),
}

impl Written<'_> {
    fn as_str(&self) -> &str {
        match self {
            Written::As(s) => s,
            Written::Made(s) => s.as_str(),
        }
    }
}

/// `yyyyMMddHHmmss`, read digit by digit (the national sync writes every time so; a
/// format-string parser costs several times more per record).
fn compact(s: &str) -> Option<jiff::civil::DateTime> {
    let b = s.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize, len: usize| {
        b[i..i + len]
            .iter()
            .fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'))
    };
    jiff::civil::DateTime::new(
        i16::try_from(n(0, 4)).ok()?,
        n(4, 2) as i8,
        n(6, 2) as i8,
        n(8, 2) as i8,
        n(10, 2) as i8,
        n(12, 2) as i8,
        0,
    )
    .ok()
}

/// A local time and its offset as RFC 3339, with milliseconds when it has any; written
/// digit by digit into a byte buffer (the formatting machinery, and then pushing char by
/// char, cost more than the rest of the field).
fn written(dt: jiff::civil::DateTime, offset: jiff::tz::Offset) -> Stamp {
    /// `n`'s last `width` decimal digits at `out[at..]`; the place after them.
    fn digits(out: &mut [u8; 40], at: usize, mut n: u32, width: usize) -> usize {
        for slot in out[at..at + width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        at + width
    }
    let mut out = [0u8; 40];
    let mut at = 0;
    let year = i32::from(dt.year());
    if year < 0 {
        out[0] = b'-';
        at = 1;
    }
    at = digits(&mut out, at, year.unsigned_abs(), 4);
    for (sep, n) in [
        (b'-', dt.month()),
        (b'-', dt.day()),
        (b'T', dt.hour()),
        (b':', dt.minute()),
        (b':', dt.second()),
    ] {
        out[at] = sep;
        at = digits(&mut out, at + 1, n.unsigned_abs().into(), 2);
    }
    let ms = dt.subsec_nanosecond() / 1_000_000;
    if ms > 0 {
        out[at] = b'.';
        at = digits(&mut out, at + 1, ms.unsigned_abs(), 3);
    }
    let secs = offset.seconds();
    out[at] = if secs < 0 { b'-' } else { b'+' };
    let abs = secs.unsigned_abs();
    at = digits(&mut out, at + 1, abs / 3600, 2);
    out[at] = b':';
    at = digits(&mut out, at + 1, abs / 60 % 60, 2);
    // ASCII digits and separators, at most 30 bytes: always a `Stamp`.
    std::str::from_utf8(&out[..at])
        .ok()
        .and_then(|text| Stamp::from(text).ok())
        .unwrap_or_default()
}

pub mod lazy;
pub mod set;
#[cfg(test)]
mod tests;

pub use set::Mappings;

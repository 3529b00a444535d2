//! First pass of decoding: one strict JSON parse of the payload into a flat record of the
//! fields the contract knows, each kept with its JSON shape so that the second pass
//! (`decode::validate`) can rank problems in the contract's order. Strings are borrowed
//! from the payload unless they contain escapes; unknown keys are skipped unread.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value reduced to what validation needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Any number.
    Num(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array of strings (the only array the contract has).
    StrArray(Vec<Cow<'a, str>>),
    /// An array holding something other than strings.
    OtherArray,
    /// An object.
    Object,
}

impl Val<'_> {
    /// The JSON type name, for error details.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Num(_) => "number",
            Val::Str(_) => "string",
            Val::StrArray(_) | Val::OtherArray => "array",
            Val::Object => "object",
        }
    }
}

macro_rules! fields {
    ($($name:ident),* $(,)?) => {
        /// The known fields of every event type, as found in the payload.
        #[derive(Debug, Default)]
        #[allow(missing_docs)]
        pub struct RawFields<'a> {
            $(pub $name: Option<Val<'a>>,)*
        }

        impl<'a> RawFields<'a> {
            fn slot(&mut self, key: &str) -> Option<&mut Option<Val<'a>>> {
                match key {
                    // `stringify!(r#type)` is "r#type", so the one raw identifier is mapped here.
                    "type" => Some(&mut self.r#type),
                    $(stringify!($name) => Some(&mut self.$name),)*
                    _ => None,
                }
            }
        }
    };
}

fields!(
    event_id,
    r#type,
    occurred_at,
    dossier_id,
    agency,
    agency_level,
    procedure,
    sector,
    channel,
    due_at,
    outcome,
    reason,
    meeting_id,
    title,
    level,
    expected_endpoints,
    endpoint_id,
    packet_loss_pct,
    jitter_ms,
    rtt_ms,
    bitrate_kbps,
    alert_id,
    system_id,
    severity,
    category,
    incident_id,
    src_ip,
    dst_ip,
    signature,
    fee_required,
    paper_result,
    digitised,
    reused_data,
    result_electronic,
    method,
    rating,
    complaint,
);

/// Parses `payload` as strict JSON: `Some` with the known fields of an object, `None` for
/// valid JSON that is not an object.
///
/// # Errors
/// The `serde_json` error when the payload is not UTF-8 JSON, has trailing data, or repeats
/// a known key (ambiguous: which one would win?).
pub fn parse(payload: &[u8]) -> Result<Option<RawFields<'_>>, serde_json::Error> {
    let mut fields = RawFields::default();
    Ok(parse_into(payload, &mut fields)?.then_some(fields))
}

/// [`parse`] into a record the caller owns: true for an object, false for valid JSON that is
/// not an object. The hot path uses this form, so the large record is never moved.
///
/// The whole payload is checked to be UTF-8 first, in one pass: that also covers the parts
/// the parse skips (values of unknown keys), and spares the parser a check per string.
///
/// # Errors
/// As [`parse`].
pub(crate) fn parse_into<'a>(
    payload: &'a [u8],
    fields: &mut RawFields<'a>,
) -> Result<bool, serde_json::Error> {
    let text = std::str::from_utf8(payload)
        .map_err(|e| de::Error::custom(format_args!("payload is not UTF-8: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let is_object = de.deserialize_any(TopVisitor(fields))?;
    de.end()?;
    Ok(is_object)
}

/// Where one member of a JSON object that iocd wrote itself (a mapped event) lies in its
/// text: byte ranges of the key's contents and of the value. `plain` when the value is a
/// string without escapes, and its range then holds the contents between the quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The key's contents (written without escapes).
    pub key: (u32, u32),
    /// The value: a plain string's contents, else its whole JSON text.
    pub value: (u32, u32),
    /// The value is a string written without escapes.
    pub plain: bool,
}

/// The known fields of the object `text`, read at `spans` (every member of the object, in
/// order) instead of parsing it: what [`parse_into`] gives for the same text, without its
/// cost. A plain string is borrowed as it is (it has no escapes, as the parser would borrow
/// it); any other value goes through the parser's own value reader. `None` when the spans
/// do not fit the text or name a known key twice: the caller then parses the text, which
/// says what is wrong.
#[must_use]
pub(crate) fn fill_from_spans<'a>(
    text: &'a str,
    spans: &[Span],
    fields: &mut RawFields<'a>,
) -> Option<()> {
    let at = |(start, end): (u32, u32)| text.get(start as usize..end as usize);
    for span in spans {
        let Some(slot) = fields.slot(at(span.key)?) else {
            continue;
        };
        if slot.is_some() {
            return None;
        }
        let value = at(span.value)?;
        *slot = Some(if span.plain {
            Val::Str(Cow::Borrowed(value))
        } else {
            let mut de = serde_json::Deserializer::from_str(value);
            let v = ValSeed.deserialize(&mut de).ok()?;
            de.end().ok()?;
            v
        });
    }
    Some(())
}

struct TopVisitor<'r, 'de>(&'r mut RawFields<'de>);

impl<'de> Visitor<'de> for TopVisitor<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let fields = self.0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match fields.slot(&key) {
                Some(slot) => {
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                    }
                    *slot = Some(map.next_value_seed(ValSeed)?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(false)
    }
}

/// Reads an object key without allocating when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValSeed)? {
            if let Val::Str(s) = item {
                items.push(s);
            } else {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Val::OtherArray);
            }
        }
        Ok(Val::StrArray(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `members` written as a JSON object, with the spans `mapping::Out` notes as it writes.
    fn written(members: &[(&str, serde_json::Value)]) -> (String, Vec<Span>) {
        let n = |i: usize| u32::try_from(i).unwrap();
        let mut text = String::from("{");
        let mut spans = Vec::new();
        for (key, value) in members {
            if text.len() > 1 {
                text.push(',');
            }
            let k = text.len() + 1;
            text.push('"');
            text.push_str(key);
            text.push_str("\":");
            let v = text.len();
            let json = value.to_string();
            text.push_str(&json);
            let plain = value.as_str().is_some_and(|s| json.len() == s.len() + 2);
            let value = if plain {
                (n(v + 1), n(text.len() - 1))
            } else {
                (n(v), n(text.len()))
            };
            spans.push(Span {
                key: (n(k), n(k + key.len())),
                value,
                plain,
            });
        }
        text.push('}');
        (text, spans)
    }

    #[test]
    fn fields_read_at_spans_are_the_parsed_ones() {
        use serde_json::json;
        let (text, spans) = written(&[
            ("type", json!("endpoint_stats")),
            ("event_id", json!("e\"1")),
            ("packet_loss_pct", json!(2.5)),
            ("rtt_ms", json!(12)),
            ("alert_ids", json!(["a", "b\n"])),
            ("level", json!(null)),
            ("x", json!({"a": 1})),
            ("title", json!("Hội nghị")),
            ("signature", json!(true)),
        ]);
        let mut at_spans = RawFields::default();
        assert_eq!(fill_from_spans(&text, &spans, &mut at_spans), Some(()));
        let parsed = parse(text.as_bytes()).unwrap().unwrap();
        assert_eq!(format!("{at_spans:?}"), format!("{parsed:?}"));
        assert_eq!(at_spans.event_id, Some(Val::Str(Cow::Borrowed("e\"1"))));
        assert_eq!(at_spans.title, Some(Val::Str(Cow::Borrowed("Hội nghị"))));
        assert_eq!(at_spans.rtt_ms, Some(Val::Num(12.0)));
    }

    #[test]
    fn spans_that_do_not_fit_make_the_caller_parse() {
        use serde_json::json;
        let (text, spans) = written(&[("event_id", json!("e1")), ("type", json!("received"))]);
        // A known key twice: the parser's "duplicate key" error must be the one reported.
        let twice = [spans[0], spans[0]];
        assert_eq!(
            fill_from_spans(&text, &twice, &mut RawFields::default()),
            None
        );
        // Beyond the text; a value cut short.
        let mut beyond = spans[0];
        beyond.value = (30, 400);
        assert_eq!(
            fill_from_spans(&text, &[beyond], &mut RawFields::default()),
            None
        );
        let mut cut = spans[1];
        cut.plain = false;
        cut.value = (cut.value.0 - 1, cut.value.1);
        assert_eq!(
            fill_from_spans(&text, &[cut], &mut RawFields::default()),
            None
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_even_in_a_value_the_parse_skips() {
        let mut payload = br#"{"event_id":"e1","note":""#.to_vec();
        payload.extend_from_slice(b"\xff\xfe\"}");
        assert!(parse(&payload).is_err());
        assert!(parse(br#"{"event_id":"\u00e9","note":"H\u1ed9i ngh\u1ecb"}"#).is_ok());
        assert!(parse("{\"note\":\"Hội nghị\"}".as_bytes()).is_ok());
    }
}

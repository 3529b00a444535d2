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
            /// The key `type` (a Rust keyword): the one field not named as its key.
            pub ty: Option<Val<'a>>,
            $(pub $name: Option<Val<'a>>,)*
        }

        impl<'a> RawFields<'a> {
            fn slot(&mut self, key: &str) -> Option<&mut Option<Val<'a>>> {
                match key {
                    "type" => Some(&mut self.ty),
                    $(stringify!($name) => Some(&mut self.$name),)*
                    _ => None,
                }
            }
        }
    };
}

fields!(
    event_id,
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
    if flat::read(text, fields).is_some() {
        return Ok(true);
    }
    // Not the plain shape (or not valid): the parser reads it from a clean record, and says
    // what is wrong if anything is.
    *fields = RawFields::default();
    parse_text(text, fields)
}

/// The parse of [`parse_into`] by `serde_json` alone.
fn parse_text<'a>(text: &'a str, fields: &mut RawFields<'a>) -> Result<bool, serde_json::Error> {
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
            value_of(value)?
        });
    }
    Some(())
}

/// The plain shape of an event read without the general parser: a flat object whose keys
/// and strings have no escapes, whose values are strings, numbers, `true`, `false` or `null`.
/// Nearly every payload has it, and reading it takes about half the instructions of the
/// parser's visitor (`benches/ingest-instructions.sh`). Anything else (an escape, a nested
/// value, a known key twice, anything not valid JSON) makes [`read`](flat::read) give
/// `None`, and the caller parses the text with `serde_json`, which stays the one judge of
/// what is valid and the one writer of error messages: the fast path accepts only what the
/// parser accepts, and fills the record exactly as the parser would (a property test holds
/// it to that). Numbers are read by `serde_json` itself, so their values are its own.
mod flat {
    use std::borrow::Cow;

    use super::{RawFields, Val};

    /// Bytes that end the plain part of a string: the quote, the backslash of an escape and
    /// the control characters JSON forbids in a string.
    const STOP: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 0x20 {
            t[b] = true;
            b += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };

    /// The first [`STOP`] byte of `bytes` from `i` on, eight bytes at a time (as
    /// `serde_json` scans its strings): a byte is flagged when it is below 0x20 or equal to
    /// a quote or a backslash; a borrow can flag a byte wrongly only after a rightly flagged
    /// one, so the lowest flag is exact.
    pub(super) fn stop_at(bytes: &[u8], mut i: usize) -> Option<usize> {
        const ONES: u64 = u64::MAX / 255;
        const QUOTES: u64 = ONES * b'"' as u64;
        const BACKSLASHES: u64 = ONES * b'\\' as u64;
        while let Some(chunk) = bytes.get(i..i + 8) {
            let x = u64::from_le_bytes(chunk.try_into().ok()?);
            let control = x.wrapping_sub(ONES * 0x20) & !x;
            let (q, b) = (x ^ QUOTES, x ^ BACKSLASHES);
            let quote = q.wrapping_sub(ONES) & !q;
            let backslash = b.wrapping_sub(ONES) & !b;
            let flags = (control | quote | backslash) & (ONES << 7);
            if flags != 0 {
                return Some(i + (flags.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        let tail = bytes.get(i..)?;
        tail.iter()
            .position(|&b| STOP[usize::from(b)])
            .map(|n| i + n)
    }

    struct Reader<'a> {
        text: &'a str,
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn peek(&self) -> Option<u8> {
            self.text.as_bytes().get(self.at).copied()
        }

        /// Skips JSON whitespace; the next byte, if any.
        fn skip_ws(&mut self) -> Option<u8> {
            while let Some(b) = self.peek() {
                if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    return Some(b);
                }
                self.at += 1;
            }
            None
        }

        fn eat(&mut self, b: u8) -> Option<()> {
            (self.skip_ws()? == b).then(|| self.at += 1)
        }

        /// A string without escapes or control characters, the reader at its opening quote.
        fn plain_str(&mut self) -> Option<&'a str> {
            let bytes = self.text.as_bytes();
            let start = self.at + 1;
            let end = stop_at(bytes, start)?;
            if bytes.get(end) != Some(&b'"') {
                return None;
            }
            self.at = end + 1;
            // Both ends are ASCII quotes, so char boundaries: never `None` here.
            self.text.get(start..end)
        }

        /// `word` (`true`, `false`, `null`) at the reader.
        fn word(&mut self, word: &str) -> Option<()> {
            let rest = self.text.as_bytes().get(self.at..)?;
            rest.starts_with(word.as_bytes())
                .then(|| self.at += word.len())
        }

        /// A number at the reader, read by `serde_json` from its text (the characters a JSON
        /// number can hold; anything invalid among them is the parser's to reject).
        fn number(&mut self) -> Option<Val<'a>> {
            let bytes = self.text.as_bytes();
            let len = bytes
                .get(self.at..)?
                .iter()
                .position(|&b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'));
            let end = len.map_or(bytes.len(), |n| self.at + n);
            let v = super::value_of(self.text.get(self.at..end)?)?;
            self.at = end;
            Some(v)
        }

        /// A value of the plain shape.
        fn value(&mut self) -> Option<Val<'a>> {
            Some(match self.skip_ws()? {
                b'"' => Val::Str(Cow::Borrowed(self.plain_str()?)),
                b't' => self.word("true").map(|()| Val::Bool(true))?,
                b'f' => self.word("false").map(|()| Val::Bool(false))?,
                b'n' => self.word("null").map(|()| Val::Null)?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            })
        }
    }

    /// Fills `fields` from `text` when it is a valid object of the plain shape; `None`
    /// otherwise, with `fields` then partly filled (the caller starts again from a clean one).
    pub(super) fn read<'a>(text: &'a str, fields: &mut RawFields<'a>) -> Option<()> {
        let mut r = Reader { text, at: 0 };
        r.eat(b'{')?;
        if r.skip_ws()? == b'}' {
            r.at += 1;
        } else {
            loop {
                if r.skip_ws()? != b'"' {
                    return None;
                }
                let key = r.plain_str()?;
                r.eat(b':')?;
                let value = r.value()?;
                if let Some(slot) = fields.slot(key) {
                    if slot.is_some() {
                        return None;
                    }
                    *slot = Some(value);
                }
                match r.skip_ws()? {
                    b',' => r.at += 1,
                    b'}' => {
                        r.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        r.skip_ws().is_none().then_some(())
    }
}

/// `text`, one whole JSON value, as the parser reads a value (`None` if it is not one).
fn value_of(text: &str) -> Option<Val<'_>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = ValSeed.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v)
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

    /// What the parse gives for `text`: the record's fields, or the error's message.
    fn outcome(r: Result<bool, serde_json::Error>, fields: &RawFields<'_>) -> String {
        match r {
            Ok(true) => format!("{fields:?}"),
            Ok(false) => "not an object".into(),
            Err(e) => format!("error: {e}"),
        }
    }

    /// The fast path's and the parser's readings of `text`: the fast path's reading, if it
    /// took the text, must be the parser's; the whole parse must be the parser's in any case.
    fn same_as_the_parser(text: &str) -> Option<()> {
        let mut parsed = RawFields::default();
        let by_parser = outcome(parse_text(text, &mut parsed), &parsed);
        let mut read = RawFields::default();
        let taken = flat::read(text, &mut read);
        if taken.is_some() {
            assert_eq!(format!("{read:?}"), by_parser, "fast path on {text:?}");
        }
        let mut whole = RawFields::default();
        let by_whole = outcome(parse_into(text.as_bytes(), &mut whole), &whole);
        assert_eq!(by_whole, by_parser, "parse of {text:?}");
        taken
    }

    #[test]
    fn the_fast_path_reads_plain_objects_as_the_parser_does_and_leaves_the_rest_to_it() {
        let taken = [
            r#"{"event_id":"e1","type":"received","occurred_at":"2026-11-24T08:00:00+07:00"}"#,
            " {\t\"event_id\" :\n\"e1\" ,\r\"rtt_ms\": 12 } \n",
            "{}",
            r#"{"title":"Hội nghị giao ban","level":null,"signature":true,"digitised":false}"#,
            r#"{"packet_loss_pct":2.5,"jitter_ms":-0,"rtt_ms":1e3,"bitrate_kbps":18446744073709551616}"#,
            r#"{"unknown":"x","unknown":1,"event_id":""}"#,
            r#"{"type":"received","r#type":"x"}"#,
            "{\"note\":\"DEL is allowed raw: \u{7f}\"}",
        ];
        for text in taken {
            assert!(same_as_the_parser(text).is_some(), "not taken: {text:?}");
        }
        let left = [
            r#"{"event_id":"e\"1"}"#,
            r#"{"ev\u0065nt_id":"e1"}"#,
            r#"{"alert_ids":["a","b"]}"#,
            r#"{"x":{"a":1}}"#,
            r#"{"event_id":"e1","event_id":"e2"}"#,
            "{\"event_id\":\"a\u{1}b\"}",
            r#"{"rtt_ms":01}"#,
            r#"{"rtt_ms":1.}"#,
            r#"{"rtt_ms":-}"#,
            r#"{"rtt_ms":1e400}"#,
            r#"{"rtt_ms":NaN}"#,
            r#"{"rtt_ms":1x}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nulls}"#,
            r#"{"a":1}x"#,
            r#"{"a":1}{}"#,
            r#"{"a":"#,
            "{",
            "",
            "   ",
            "[1]",
            "\"s\"",
            "\u{feff}{}",
            "{'a':1}",
        ];
        for text in left {
            assert!(same_as_the_parser(text).is_none(), "taken: {text:?}");
        }
    }

    #[test]
    fn the_eight_byte_scan_finds_the_first_stop_byte_as_a_byte_scan_does() {
        let naive = |bytes: &[u8], from: usize| {
            bytes[from..]
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .map(|n| from + n)
        };
        let fillers: [&[u8]; 4] = [b"a", b" ", "é".as_bytes(), &[0x7f, 0x80, 0xff, 0x21]];
        for filler in fillers {
            for stop in [b'"', b'\\', 0, 0x1f] {
                for len in 0..40 {
                    let mut bytes: Vec<u8> = filler.iter().copied().cycle().take(len).collect();
                    for at in 0..=len {
                        let mut with = bytes.clone();
                        with.insert(at, stop);
                        // A second stop byte after the first must not hide it.
                        with.push(b'"');
                        for from in [0, at.min(3)] {
                            assert_eq!(flat::stop_at(&with, from), naive(&with, from));
                        }
                    }
                    bytes.push(b'x');
                    assert_eq!(flat::stop_at(&bytes, 0), None);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Objects built from the pieces payloads are made of (known and unknown keys,
        /// strings with and without escapes, numbers valid or not, literals, nested values,
        /// whitespace), then cut short or given a stray byte: whatever the fast path takes it
        /// reads as the parser does, and the whole parse is always the parser's.
        #[test]
        fn the_fast_path_never_disagrees_with_the_parser(
            members in proptest::collection::vec((0usize..8, 0usize..14, 0usize..4), 0..8),
            cut in proptest::option::of(0usize..200),
            stray in proptest::option::of((0usize..200, proptest::sample::select(
                vec![b'"', b'\\', b',', b':', b'}', b'{', b' ', b'1', b'e', b'\n', 0u8, 0x7f]))),
        ) {
            const KEYS: [&str; 8] =
                ["event_id", "type", "rtt_ms", "title", "x", "", "ti\\u0074le", "level"];
            const VALUES: [&str; 14] = [
                "\"e1\"", "\"Hội nghị\"", "\"a\\\"b\"", "12", "-0.5e-3", "01", "1.", "true",
                "false", "null", "[\"a\"]", "{\"k\":[1,{}]}", "\"\\u00e9\"", "-",
            ];
            const WS: [&str; 4] = ["", " ", "\n\t", "\r "];
            let mut text = String::from("{");
            for (i, &(k, v, w)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(WS[w]);
                text.push('"');
                text.push_str(KEYS[k]);
                text.push('"');
                text.push_str(WS[(w + 1) % 4]);
                text.push(':');
                text.push_str(WS[w]);
                text.push_str(VALUES[v]);
            }
            text.push('}');
            let mut bytes = text.into_bytes();
            if let Some(at) = cut {
                bytes.truncate(at.min(bytes.len()));
            }
            if let Some((at, b)) = stray {
                bytes.insert(at.min(bytes.len()), b);
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                same_as_the_parser(text);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Every object of the plain shape is taken by the fast path, whatever its strings
        /// (any length, any character but a quote, a backslash or a control character),
        /// numbers and whitespace, and read as the parser reads it.
        #[test]
        fn the_fast_path_takes_every_plain_object(
            members in proptest::collection::vec(
                ("[a-z_]{0,12}", 0usize..6, "[^\"\\\\\\x00-\\x1f]{0,40}", -1e9f64..1e9, 0usize..4),
                0..10,
            ),
        ) {
            use std::fmt::Write as _;
            const WS: [&str; 4] = ["", " ", "\n\t", "\r "];
            let mut text = String::from("{");
            let mut seen = std::collections::HashSet::new();
            for (key, kind, string, number, w) in &members {
                if !seen.insert(key.clone()) {
                    continue;
                }
                if text.len() > 1 {
                    text.push(',');
                }
                let value = match *kind {
                    0 => format!("\"{string}\""),
                    1 => number.to_string(),
                    2 => format!("{}", number.trunc()),
                    3 => "true".into(),
                    4 => "false".into(),
                    _ => "null".into(),
                };
                let ws = WS[*w];
                let _ = write!(text, "{ws}\"{key}\"{ws}:{ws}{value}{ws}");
            }
            text.push('}');
            proptest::prop_assert!(same_as_the_parser(&text).is_some(), "not taken: {text:?}");
        }
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

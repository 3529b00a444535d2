//! JSON read lazily for the mappings: a payload is checked once as JSON and kept as its
//! text ([`RawValue`]); a record is split into its members (names borrowed, values still
//! text), and only the values a mapping reads are looked at. Building a `serde_json::Value`
//! tree of every record allocated each member and cost more than mapping it (issue 13
//! point 7: mapped ingest at most twice the cost of a contract event).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A value's text, as the payload wrote it.
pub type Raw<'a> = &'a RawValue;

/// What a value is, as far as the mappings care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// A number, a boolean, an object or an array: its JSON text.
    Other(&'a str),
}

impl Scalar<'_> {
    /// Null or an empty string: "no value" in the sources.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        match self {
            Scalar::Null => true,
            Scalar::Str(s) => s.trim().is_empty(),
            Scalar::Other(_) => false,
        }
    }

    /// As text: a string trimmed, anything else as JSON wrote it (`2` and `"2"` read alike).
    #[must_use]
    pub fn text(&self) -> String {
        self.as_text().to_owned()
    }

    /// [`Scalar::text`], borrowed.
    #[must_use]
    pub fn as_text(&self) -> &str {
        match self {
            Scalar::Null => "null",
            Scalar::Str(s) => s.trim(),
            Scalar::Other(t) => t,
        }
    }
}

/// What `raw` is.
#[must_use]
pub fn scalar(raw: Raw<'_>) -> Scalar<'_> {
    let text = raw.get();
    match text.as_bytes().first() {
        // Without escapes the contents are the text between the quotes, already checked.
        Some(b'"') if !text.contains('\\') && text.len() >= 2 => {
            Scalar::Str(Cow::Borrowed(&text[1..text.len() - 1]))
        }
        Some(b'"') => match serde_json::from_str::<Text<'_>>(text) {
            Ok(Text(s)) => Scalar::Str(s),
            Err(_) => Scalar::Other(text),
        },
        Some(b'n') => Scalar::Null,
        _ => Scalar::Other(text),
    }
}

/// The members of an object, in order, names borrowed where they have no escapes.
#[derive(Debug, Default)]
pub struct Object<'a>(pub Vec<(Cow<'a, str>, Raw<'a>)>);

impl<'a> Object<'a> {
    /// `raw` as an object; `None` when it is something else.
    #[must_use]
    pub fn of(raw: Raw<'a>) -> Option<Self> {
        if !raw.get().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Object<'a>>(raw.get()).ok()
    }

    /// The member `name` (the last, if repeated, as `serde_json::Value` would keep).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Raw<'a>> {
        let name = name.as_bytes();
        self.0
            .iter()
            .rev()
            .find(|(k, _)| same_name(k.as_bytes(), name))
            .map(|(_, v)| *v)
    }
}

/// Whether two member names are equal, the cheap tests first: the names of a record's members
/// mostly differ in length or in their last byte, and a call to `memcmp` for each of them
/// was the largest single cost of reading a record's fields.
fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.last() == b.last() && a == b
}

/// The items of `raw` when it is an array.
#[must_use]
pub fn array(raw: Raw<'_>) -> Option<Vec<Raw<'_>>> {
    if !raw.get().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Items<'_>>(raw.get())
        .ok()
        .map(|i| i.0)
}

/// The tokens of a JSON pointer (RFC 6901), unescaped; `""` is the whole value.
fn tokens(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> {
    pointer.split('/').skip(1).map(|t| {
        if t.contains('~') {
            Cow::Owned(t.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(t)
        }
    })
}

/// The value at `pointer` in `root`.
#[must_use]
pub fn pointer<'a>(root: Raw<'a>, pointer: &str) -> Option<Raw<'a>> {
    if pointer.is_empty() {
        return Some(root);
    }
    if !pointer.starts_with('/') {
        return None;
    }
    let mut at = root;
    for token in tokens(pointer) {
        at = step(at, &token)?;
    }
    Some(at)
}

/// One level down: a member of an object, or an item of an array by index.
fn step<'a>(at: Raw<'a>, token: &str) -> Option<Raw<'a>> {
    match at.get().as_bytes().first() {
        Some(b'{') => Object::of(at)?.get(token),
        Some(b'[') => {
            let i: usize = token.parse().ok()?;
            array(at)?.get(i).copied()
        }
        _ => None,
    }
}

/// Whether any byte of `s` is a `hit`: checked 16 bytes at a time, without a branch inside a
/// block, so that the compiler makes each block a few vector instructions (the rest padded
/// with `pad`, which must not be a hit). The mappings run such checks on every name and
/// value of every record; byte by byte, they were a tenth of the instructions of mapping one.
pub(super) fn any_byte(s: &[u8], pad: u8, hit: impl Fn(u8) -> bool + Copy) -> bool {
    let any = |block: &[u8; 16]| block.iter().fold(0u8, |acc, &b| acc | u8::from(hit(b))) != 0;
    let mut blocks = s.chunks_exact(16);
    for block in &mut blocks {
        if block.try_into().is_ok_and(any) {
            return true;
        }
    }
    let rest = blocks.remainder();
    let mut last = [pad; 16];
    last[..rest.len()].copy_from_slice(rest);
    any(&last)
}

/// Whether a pointer token holds a `/` or a `~` (then it is split or unescaped).
fn has_separator(name: &[u8]) -> bool {
    any_byte(name, 0, |b| b == b'/' || b == b'~')
}

/// A record split into its members once, then read by pointer.
pub struct Record<'a> {
    members: Object<'a>,
}

impl<'a> Record<'a> {
    /// `raw` as a record; `None` when it is not an object.
    #[must_use]
    pub fn of(raw: Raw<'a>) -> Option<Self> {
        Object::of(raw).map(Self::from)
    }

    /// The value at `pointer`: the first level from the members read once, deeper levels
    /// read when asked.
    #[must_use]
    pub fn at(&self, pointer: &str) -> Option<Raw<'a>> {
        let name = pointer.strip_prefix('/')?;
        // One level, nothing escaped: the common pointer, without splitting it.
        if !has_separator(name.as_bytes()) {
            return self.members.get(name);
        }
        let mut tokens = tokens(pointer);
        let mut at = self.members.get(&tokens.next()?)?;
        for token in tokens {
            at = step(at, &token)?;
        }
        Some(at)
    }
}

impl<'a> From<Object<'a>> for Record<'a> {
    fn from(members: Object<'a>) -> Self {
        Self { members }
    }
}

/// The records of a payload, read in one pass over it (which also checks it is JSON).
#[derive(Debug)]
pub enum Records<'a> {
    /// The items of the array the records pointer names: objects split into members, or
    /// `None` for an item that is not an object.
    Items(Vec<Option<Object<'a>>>),
    /// The payload has nothing at the pointer (or has no pointer): it is one record, or
    /// `None` when it is not an object.
    Single(Option<Object<'a>>),
    /// The pointer names something else than an array.
    NotArray,
}

/// The records of `payload` in one pass: the items of the array at `pointer` (a pointer of
/// object members: `/data`, `/result/items`), or the payload itself when it has nothing
/// there.
///
/// # Errors
/// The payload is not JSON (`serde_json`'s error, with its line and column).
pub fn records<'a>(
    payload: &'a [u8],
    pointer: Option<&str>,
) -> Result<Records<'a>, serde_json::Error> {
    let tokens: Vec<Cow<'_, str>> = pointer.map(|p| tokens(p).collect()).unwrap_or_default();
    // Checked as UTF-8 once, in one fast pass, rather than string by string.
    let text = std::str::from_utf8(payload).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format!(
            "not UTF-8 at byte {}",
            e.valid_up_to()
        ))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let level = serde::de::DeserializeSeed::deserialize(Level { tokens: &tokens }, &mut de)?;
    de.end()?;
    Ok(match level {
        Walk::Found(items) => Records::Items(items),
        Walk::NotArray => Records::NotArray,
        Walk::Absent(top) => Records::Single(top),
    })
}

/// What one level of a records pointer found.
enum Walk<'a> {
    Found(Vec<Option<Object<'a>>>),
    NotArray,
    /// Nothing there; the members of this level when it is an object.
    Absent(Option<Object<'a>>),
}

/// A level of the walk down a records pointer: `tokens` still to follow (none: this is the
/// array of records).
struct Level<'t> {
    tokens: &'t [Cow<'t, str>],
}

impl<'de> serde::de::DeserializeSeed<'de> for Level<'_> {
    type Value = Walk<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = Walk<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        let mut found = None;
        while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
            match self.tokens.split_first() {
                Some((first, rest)) if found.is_none() && k == *first => {
                    let walk = if rest.is_empty() {
                        map.next_value_seed(Items2)?
                    } else {
                        map.next_value_seed(Level { tokens: rest })?
                    };
                    found = Some(walk);
                }
                _ => members.push((k, map.next_value::<Raw<'de>>()?)),
            }
        }
        Ok(match found {
            Some(Walk::Absent(_)) | None => Walk::Absent(Some(Object(members))),
            Some(walk) => walk,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Walk::Absent(None))
    }

    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Walk::Absent(None))
    }
}

/// The array of records at the end of the pointer.
struct Items2;

impl<'de> serde::de::DeserializeSeed<'de> for Items2 {
    type Value = Walk<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items2 {
    type Value = Walk<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Item<'de>>()? {
            items.push(item.0);
        }
        Ok(Walk::Found(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Walk::NotArray)
    }

    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
    /// `null` at the pointer: nothing there, as `serde_json::Value::pointer` would not say.
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Walk::NotArray)
    }
}

/// One item of the array of records: an object's members, or `None`.
struct Item<'a>(Option<Object<'a>>);

impl<'de> serde::Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let object = <Object<'de> as serde::Deserialize>::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(Item(Some(object)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Item(None))
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string's contents, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((Text(k), v)) = map.next_entry::<Text<'de>, Raw<'de>>()? {
                    members.push((k, v));
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// The items of an array, as text.
struct Items<'a>(Vec<Raw<'a>>);

impl<'de> serde::Deserialize<'de> for Items<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Items<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element::<Raw<'de>>()? {
                    items.push(v);
                }
                Ok(Items(items))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn records_are_read_in_one_pass_down_the_pointer_or_the_payload_is_one() {
        let batch = br#"{"service": "x", "data": [{"a": 1}, 2, {"b": "c"}], "z": [1]}"#;
        let Records::Items(items) = records(batch, Some("/data")).unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert!(items[1].is_none());
        assert_eq!(items[2].as_ref().unwrap().get("b").unwrap().get(), r#""c""#);
        let nested = br#"{"result": {"items": [{"a": 1}]}}"#;
        assert!(
            matches!(records(nested, Some("/result/items")).unwrap(), Records::Items(i) if i.len() == 1)
        );
        let single = br#"{"a": 1, "data2": []}"#;
        let Records::Single(Some(one)) = records(single, Some("/data")).unwrap() else {
            panic!()
        };
        assert_eq!(one.get("a").unwrap().get(), "1");
        assert!(matches!(
            records(br#"{"data": 3}"#, Some("/data")).unwrap(),
            Records::NotArray
        ));
        assert!(matches!(
            records(br#"{"data": {"x": 1}}"#, Some("/data")).unwrap(),
            Records::NotArray
        ));
        assert!(matches!(
            records(b"[1]", None).unwrap(),
            Records::Single(None)
        ));
        assert!(records(br#"{"data": [1,]}"#, Some("/data")).is_err());
        assert!(records(br#"{"a": 1} x"#, None).is_err());
        assert!(records(b"{\"a\": \"\xff\"}", None).is_err(), "not UTF-8");
    }

    #[test]
    fn pointers_reach_members_items_and_escaped_names() {
        let body = raw(r#"{"data": [{"a": 1}, {"b": {"c/d": "x\u00e9", "e~f": null}}], "n": 2}"#);
        assert_eq!(pointer(body, "/n").unwrap().get(), "2");
        assert_eq!(pointer(body, "/data/0/a").unwrap().get(), "1");
        let r = Record::of(array(pointer(body, "/data").unwrap()).unwrap()[1]).unwrap();
        assert_eq!(scalar(r.at("/b/c~1d").unwrap()), Scalar::Str("xé".into()));
        assert_eq!(scalar(r.at("/b/e~0f").unwrap()), Scalar::Null);
        assert!(r.at("/b/missing").is_none());
        assert!(r.at("/a").is_none());
        assert!(r.at("b").is_none());
        assert!(pointer(body, "/data/2").is_none());
        assert!(Record::of(raw("[1]")).is_none());
        assert!(scalar(raw(r#""  ""#)).is_blank());
        assert_eq!(scalar(raw(" 2")).text(), "2");
        assert_eq!(scalar(raw(r#"" 2 ""#)).text(), "2");
    }
}

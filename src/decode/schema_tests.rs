//! The JSON Schemas of `docs/schemas/events` (docs/contract.md) against the decoder, which is
//! the reference: every example payload, every refused example, and mutations of the
//! examples get the same verdict from both, except for what no schema can check (the size
//! limit, JSON syntax such as a repeated key, and the clock).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::{Draft, Registry, Validator};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::{INVALID, VALID, fixture_lines};
use super::*;
use crate::time::parse_rfc3339;

/// The schemas' `$id`s start with this; below it the layout is that of `docs/`.
const BASE: &str = "https://iocd.example/";

/// The reasons no schema can express.
const SCHEMA_BLIND: [Reason; 3] = [
    Reason::TooLarge,
    Reason::InvalidJson,
    Reason::FutureTimestamp,
];

fn now() -> Ts {
    parse_rfc3339("2026-12-02T00:00:00Z").unwrap()
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The schema files and docs/openapi.json, registered under their `$id`s.
struct Schemas {
    registry: Registry<'static>,
    /// Every schema file, compiled, by its path under `docs/schemas` (`events/vc.schema.json`).
    validators: BTreeMap<String, Validator>,
}

fn compile(registry: &Registry<'_>, uri: &str) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(registry)
        .should_validate_formats(true)
        .build(&json!({ "$ref": uri }))
        .unwrap_or_else(|e| panic!("{uri} does not compile: {e}"))
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = schema_dir();
        let mut files = Vec::new();
        collect(&dir, &mut files);
        let docs: Vec<(String, Value)> = files
            .iter()
            .map(|path| {
                let rel = path
                    .strip_prefix(&dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(path).unwrap();
                let schema: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"));
                (rel, schema)
            })
            .collect();
        let openapi = std::fs::read_to_string(dir.join("../openapi.json")).unwrap();
        let openapi: Value = serde_json::from_str(&openapi).unwrap();
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .extend(
                docs.iter()
                    .map(|(rel, schema)| (format!("{BASE}schemas/{rel}"), schema.clone()))
                    .chain([(format!("{BASE}openapi.json"), openapi)]),
            )
            .unwrap()
            .prepare()
            .unwrap();
        let validators = docs
            .iter()
            .map(|(rel, schema)| {
                assert_eq!(
                    schema["$id"],
                    format!("{BASE}schemas/{rel}"),
                    "{rel}: `$id` must follow the file's place under docs/"
                );
                assert_eq!(
                    schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                    "{rel}"
                );
                if let Err(e) = jsonschema::meta::validate(schema) {
                    panic!("{rel} is not a valid schema: {e}");
                }
                (
                    rel.clone(),
                    compile(&registry, &format!("{BASE}schemas/{rel}")),
                )
            })
            .collect();
        Schemas {
            registry,
            validators,
        }
    })
}

fn validator(rel: &str) -> &'static Validator {
    schemas()
        .validators
        .get(rel)
        .unwrap_or_else(|| panic!("no schema docs/schemas/{rel}"))
}

fn errors(rel: &str, payload: &Value) -> Vec<String> {
    validator(rel)
        .iter_errors(payload)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The schema of `source`'s type `ty`, when the source has that type.
fn type_schema(source: Source, ty: &str) -> Option<String> {
    type_names(source)
        .contains(&ty)
        .then(|| format!("events/{}.{ty}.schema.json", source.as_str()))
}

fn valid_examples() -> Vec<(Source, Value)> {
    fixture_lines(VALID)
        .into_iter()
        .map(|line| {
            let source = source_of(line["topic"].as_str().unwrap(), "ioc/v1").unwrap();
            (source, line["payload"].clone())
        })
        .collect()
}

/// Whether the decoder and the schemas agree on `payload`: accepted exactly when the
/// source's schema validates it, and, when its `type` is one of the source's, when that
/// type's schema does. `Err` tells how they disagree.
fn agree(source: Source, payload: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(payload).unwrap();
    let decoded = decode(source, &bytes, now(), &DecodeLimits::default());
    let accepted = match &decoded {
        Ok(_) => true,
        // The clock is checked last: everything a schema sees has passed.
        Err(e) if e.reason == Reason::FutureTimestamp => true,
        Err(e) if SCHEMA_BLIND.contains(&e.reason) => {
            return Err(format!(
                "the decoder refused {payload} for a reason no schema sees: {e}"
            ));
        }
        Err(_) => false,
    };
    let mut checked = vec![format!("events/{}.schema.json", source.as_str())];
    checked.extend(
        payload["type"]
            .as_str()
            .and_then(|t| type_schema(source, t)),
    );
    for rel in checked {
        let found = errors(&rel, payload);
        if found.is_empty() != accepted {
            return Err(format!(
                "{payload}\n  decoder: {}\n  {rel}: {}",
                decoded
                    .as_ref()
                    .map_or_else(ToString::to_string, |_| "accepted".to_owned()),
                if found.is_empty() {
                    "valid".to_owned()
                } else {
                    found.join("; ")
                }
            ));
        }
    }
    Ok(())
}

#[test]
fn every_schema_file_is_a_draft_2020_12_schema_that_compiles() {
    let names: BTreeSet<&str> = schemas().validators.keys().map(String::as_str).collect();
    for source in Source::ALL {
        assert!(names.contains(format!("events/{}.schema.json", source.as_str()).as_str()));
        for ty in type_names(source) {
            assert!(type_schema(source, ty).is_some_and(|rel| names.contains(rel.as_str())));
        }
    }
    for rel in [
        "events/common.schema.json",
        "deadletter.schema.json",
        "alert.schema.json",
        "snapshot.schema.json",
    ] {
        assert!(names.contains(rel), "{rel}");
    }
}

#[test]
fn every_valid_example_passes_its_source_schema_and_its_type_schema() {
    for (source, payload) in valid_examples() {
        let ty = payload["type"].as_str().unwrap();
        for rel in [
            format!("events/{}.schema.json", source.as_str()),
            type_schema(source, ty).unwrap(),
        ] {
            let found = errors(&rel, &payload);
            assert!(found.is_empty(), "{rel}: {payload}: {found:?}");
        }
        agree(source, &payload).unwrap();
    }
}

#[test]
fn every_refused_example_fails_its_source_schema_but_for_what_no_schema_can_check() {
    let mut blind = BTreeSet::new();
    for line in fixture_lines(INVALID) {
        let source = source_of(line["topic"].as_str().unwrap(), "ioc/v1").unwrap();
        let reason = line["reason"].as_str().unwrap();
        let payload = match &line["raw"] {
            Value::String(raw) => serde_json::from_str(raw).ok(),
            _ => Some(line["payload"].clone()),
        };
        let rel = format!("events/{}.schema.json", source.as_str());
        let refused = payload.as_ref().is_none_or(|p| !errors(&rel, p).is_empty());
        if payload.is_none() || !refused {
            blind.insert(reason.to_owned());
        }
        assert!(
            refused || SCHEMA_BLIND.iter().any(|r| r.as_str() == reason),
            "{line}"
        );
    }
    assert_eq!(
        blind,
        BTreeSet::from(["future_timestamp".to_owned(), "invalid_json".to_owned()])
    );
}

/// What docs/contract.md lists as beyond any schema: each is valid to the schema and
/// refused by the decoder.
#[test]
fn the_size_limit_a_repeated_key_and_the_clock_are_beyond_the_schemas() {
    let base = r#"{"event_id":"e","type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z""#;
    let cases = [
        (
            format!(r#"{base},"note":"{}"}}"#, "x".repeat(65_536)),
            Reason::TooLarge,
        ),
        (format!(r#"{base},"event_id":"e2"}}"#), Reason::InvalidJson),
        (
            r#"{"event_id":"e","type":"heartbeat","occurred_at":"2026-12-02T00:05:01Z"}"#
                .to_owned(),
            Reason::FutureTimestamp,
        ),
    ];
    for (text, reason) in cases {
        // A JSON parser that keeps the last of two repeated keys, as most do.
        let payload: Value = serde_json::from_str(&text).unwrap();
        assert!(errors("events/vc.schema.json", &payload).is_empty());
        let err = decode(Source::Vc, text.as_bytes(), now(), &DecodeLimits::default());
        assert_eq!(err.map(|_| ()).map_err(|e| e.reason), Err(reason));
    }
}

#[test]
fn the_examples_in_the_schemas_match_them_and_the_decoder_accepts_the_events() {
    let mut events = 0;
    for rel in schemas().validators.keys() {
        let text = std::fs::read_to_string(schema_dir().join(rel)).unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        for example in schema["examples"].as_array().into_iter().flatten() {
            let found = errors(rel, example);
            assert!(found.is_empty(), "{rel}: {found:?}");
            let source = rel
                .strip_prefix("events/")
                .and_then(|name| name.split('.').next())
                .and_then(Source::from_level);
            if let Some(source) = source {
                agree(source, example).unwrap();
                let bytes = serde_json::to_vec(example).unwrap();
                assert!(decode(source, &bytes, now(), &DecodeLimits::default()).is_ok());
                events += 1;
            }
        }
    }
    // One example per event type.
    let types: usize = Source::ALL.iter().map(|s| type_names(*s).len()).sum();
    assert_eq!(events, types);
    let cut = json!({"reason": "too_large", "detail": "d", "topic": "ioc/v1/vc/x",
        "received_at": "2026-11-24T09:00:00.000+07:00", "payload": "eyJh", "payload_encoding": "utf8",
        "truncated": true});
    assert!(!errors("deadletter.schema.json", &cut).is_empty());
}

/// Errors of `instance` against the OpenAPI component schema `name`.
fn component_errors(name: &str, instance: &Value) -> Vec<String> {
    let uri = format!("{BASE}openapi.json#/components/schemas/{name}");
    compile(&schemas().registry, &uri)
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The snapshot, alerts, frames and dead letters as the code builds them, after events
/// that make every rule fire, against their schemas and docs/openapi.json's components.
#[test]
fn outputs_built_by_the_code_match_their_schemas() {
    use crate::config::AlertSettings;
    use crate::derive::alerts::Engine;
    use crate::derive::snapshot::{Snapshot, Topics, alert_frame, error_frame};
    use crate::ingest::RawMessage;
    use crate::ingest::deadletter::DeadLetter;
    use crate::state::{Input, Params, State};
    use crate::time::Calendar;

    let extra = [
        (
            Source::Onestop,
            json!({"event_id": "x1", "type": "received", "occurred_at": "2026-11-24T09:00:00+07:00",
            "dossier_id": "D-LATE", "agency": "A1", "procedure": "P", "channel": "postal", "due_at": "2026-11-25T17:00:00+07:00"}),
        ),
        (
            Source::Onestop,
            json!({"event_id": "x2", "type": "received", "occurred_at": "2026-12-01T20:00:00+07:00",
            "dossier_id": "D-SOON", "agency": "A1", "procedure": "P", "channel": "online", "due_at": "2026-12-02T12:00:00+07:00"}),
        ),
        (
            Source::Vc,
            json!({"event_id": "x3", "type": "meeting_started", "occurred_at": "2026-12-01T23:00:00Z",
            "meeting_id": "M-LIVE", "title": "", "level": "commune", "expected_endpoints": ["EP-A", "EP-B"]}),
        ),
        (
            Source::Vc,
            json!({"event_id": "x4", "type": "endpoint_joined", "occurred_at": "2026-12-01T23:01:00Z",
            "meeting_id": "M-LIVE", "endpoint_id": "EP-A"}),
        ),
        (
            Source::Vc,
            json!({"event_id": "x5", "type": "endpoint_stats", "occurred_at": "2026-12-01T23:02:00Z",
            "meeting_id": "M-LIVE", "endpoint_id": "EP-A", "packet_loss_pct": 5, "jitter_ms": 1, "rtt_ms": 1, "bitrate_kbps": 1}),
        ),
        (
            Source::Soc,
            json!({"event_id": "x6", "type": "incident_opened", "occurred_at": "2026-12-01T23:00:00Z",
            "incident_id": "INC-X", "system_id": "HT-X", "severity": "high"}),
        ),
    ];
    let cal = Calendar::default();
    let mut state = State::new(
        Params::default(),
        parse_rfc3339("2026-11-24T00:00:00Z").unwrap(),
    );
    let payloads: Vec<(Source, Vec<u8>)> = valid_examples()
        .into_iter()
        .chain(extra)
        .map(|(source, p)| (source, serde_json::to_vec(&p).unwrap()))
        .collect();
    for (source, bytes) in &payloads {
        let event = decode(*source, bytes, now(), &DecodeLimits::default()).unwrap();
        state.apply(&Input::Event(event), now());
    }
    let mut engine = Engine::new(AlertSettings::default(), cal.clone());
    state.advance(now());
    let transitions = engine.evaluate(&state, now());
    let rules: BTreeSet<&str> = transitions.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules.len(), 7, "every rule fires: {rules:?}");
    for alert in &transitions {
        let object: Value = serde_json::from_str(&alert.to_json()).unwrap();
        let found = errors("alert.schema.json", &object);
        assert!(found.is_empty(), "{object}: {found:?}");
        let found = component_errors("AlertWithMembers", &alert.with_members());
        assert!(found.is_empty(), "{found:?}");
        let frame: Value = serde_json::from_str(&alert_frame(3, &alert.to_json())).unwrap();
        assert!(component_errors("AlertFrame", &frame).is_empty());
    }
    let snapshot = Snapshot::build(&state.view(now()), engine.firing_json(), [true; 3], &cal);
    let full: Value = serde_json::from_str(&snapshot.frame(7, Topics::ALL)).unwrap();
    let found = component_errors("Snapshot", &full);
    assert!(found.is_empty(), "{found:?}");
    assert!(full["vc"]["meetings"][0]["started_at"].is_string());
    assert_eq!(full["onestop"]["overdue"], 1);
    let only_vc: Value =
        serde_json::from_str(&snapshot.frame(8, Topics::parse(["vc"]).unwrap())).unwrap();
    assert!(component_errors("SnapshotFrame", &only_vc).is_empty());
    assert!(!component_errors("Snapshot", &only_vc).is_empty());
    let error: Value = serde_json::from_str(&error_frame(9, "unknown topic")).unwrap();
    assert!(component_errors("ErrorFrame", &error).is_empty());

    for line in fixture_lines(INVALID) {
        let payload = match &line["raw"] {
            Value::String(raw) => raw.clone().into_bytes(),
            _ => serde_json::to_vec(&line["payload"]).unwrap(),
        };
        let msg = RawMessage {
            topic: line["topic"].as_str().unwrap().to_owned(),
            payload: payload.into(),
            received_at: now(),
            ack: None,
        };
        let source = source_of(&msg.topic, "ioc/v1").unwrap();
        let err = decode(source, &msg.payload, now(), &DecodeLimits::default()).unwrap_err();
        for limit in [65_536, 16] {
            let letter = serde_json::to_value(DeadLetter::new(&msg, &err, limit, &cal)).unwrap();
            let found = errors("deadletter.schema.json", &letter);
            assert!(found.is_empty(), "{letter}: {found:?}");
        }
    }
}

// Mutations -------------------------------------------------------------------------------

/// Every field name the decoder knows, and two it does not.
const KEYS: [&str; 39] = [
    "event_id",
    "type",
    "occurred_at",
    "dossier_id",
    "agency",
    "agency_level",
    "procedure",
    "sector",
    "channel",
    "due_at",
    "outcome",
    "reason",
    "meeting_id",
    "title",
    "level",
    "expected_endpoints",
    "endpoint_id",
    "packet_loss_pct",
    "jitter_ms",
    "rtt_ms",
    "bitrate_kbps",
    "alert_id",
    "system_id",
    "severity",
    "category",
    "incident_id",
    "src_ip",
    "dst_ip",
    "signature",
    "fee_required",
    "paper_result",
    "digitised",
    "reused_data",
    "result_electronic",
    "method",
    "rating",
    "complaint",
    "note",
    "x_vendor",
];

/// Values of every JSON type.
fn other_types() -> Vec<Value> {
    vec![
        json!(42),
        json!(1.5),
        json!(true),
        json!(false),
        json!({}),
        json!({"a": 1}),
        json!([]),
        json!([1]),
        json!(["EP-1", 2]),
        json!(["EP-1", null]),
        json!([""]),
        json!(["EP-1", "EP-2"]),
        json!("text"),
    ]
}

fn numbers() -> Vec<Value> {
    vec![
        json!(0),
        json!(-0.0),
        json!(-1),
        json!(-0.1),
        json!(-1e-9),
        json!(50.5),
        json!(100),
        json!(100.0),
        json!(100.000_001),
        json!(101),
        json!(1e9),
        json!(u64::MAX),
        json!(i64::MIN),
    ]
}

fn words() -> Vec<Value> {
    [
        "online",
        "direct",
        "postal",
        "province",
        "commune",
        "district",
        "central",
        "unknown",
        "approved",
        "refused",
        "fees",
        "suspended",
        "other",
        "low",
        "medium",
        "high",
        "critical",
        "malware",
        "intrusion",
        "ddos",
        "phishing",
        "recon",
        "policy",
        "online_national",
        "online_local",
        "very_satisfied",
        "satisfied",
        "unsatisfied",
        "Satisfied",
        "cash",
        "ONLINE",
        " online",
        "bogus",
    ]
    .into_iter()
    .map(Value::from)
    .collect()
}

fn strings() -> Vec<Value> {
    vec![
        json!(""),
        json!("a"),
        json!(" "),
        json!("x".repeat(128)),
        json!("x".repeat(129)),
        // 128 characters in 256 bytes, then 129.
        json!("đ".repeat(128)),
        json!("đ".repeat(129)),
        // Outside the Basic Multilingual Plane: one character, two UTF-16 units.
        json!("🙂".repeat(128)),
        json!("🙂".repeat(129)),
        json!("e\u{301}".repeat(64)),
        json!("e\u{301}".repeat(65)),
    ]
}

/// Timestamps the decoder accepts or refuses, over the whole RFC 3339 range; those ahead of
/// `now` are `future_timestamp` as `occurred_at`, which the schemas accept.
fn timestamps() -> Vec<Value> {
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+23:59",
        "1677-09-21T00:12:43.145224191Z",
        "1678-01-01T00:00:00-07:00",
        "2261-12-31T23:59:59Z",
        "2262-04-11T23:47:16.854775808Z",
        "9999-12-31T23:59:59.999999999Z",
        "9999-12-31T23:59:59-23:59",
        "0999-06-30T23:59:60Z",
        "2016-12-31T23:59:60.5Z",
        "2017-01-01T06:59:60+07:00",
        "2016-12-31T23:29:60-00:30",
        "2016-12-31T23:59:60+07:00",
        "2016-12-31T23:58:60Z",
        "2016-12-31T23:59:61Z",
        "2026-11-24T08:00:00Z",
        "2026-11-24t08:00:00z",
        "2026-11-24T08:00:00.5+07:00",
        "2026-11-24T08:00:00.123456789123-00:00",
        "2026-11-24T08:00:00-23:59",
        "2026-11-24T08:00:00+23:59",
        "2024-02-29T23:59:59Z",
        "2000-02-29T00:00:00Z",
        "1679-01-01T00:00:00Z",
        "2026-12-01T23:59:59+07:00",
        "2026-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T08:60:00Z",
        "2026-11-24T08:00:60Z",
        "2016-12-31T23:59:60Z",
        "2026-11-24T08:00:00",
        "2026-11-24 08:00:00Z",
        "2026-11-24T08:00:00+0700",
        "2026-11-24T08:00:00+07",
        "2026-11-24T08:00:00.Z",
        "2026-11-24T08:00:00,5Z",
        "2026-11-24T08:00:00+24:00",
        "2026-11-24T08:00:00+07:60",
        "2026-11-24T08:00Z",
        "2026-11-24",
        "20261124T080000Z",
        "0000-01-01T00:00:00Z",
        "1600-01-01T00:00:00Z",
        "2026-11-24T08:00:00Z ",
        "2026-11-24T08:00:00Z\n",
        "\n2026-11-24T08:00:00Z",
        " 2026-11-24T08:00:00Z",
        "2026-11-24T08:00:00ZZ",
        "+2026-11-24T08:00:00Z",
        "٢٠٢٦-11-24T08:00:00Z",
        "2026-11-24T08:00:00.١Z",
        "tomorrow",
        "",
    ]
    .into_iter()
    .map(Value::from)
    .collect()
}

/// Every `type` of every source, and some no source has.
fn types() -> Vec<Value> {
    Source::ALL
        .iter()
        .flat_map(|s| type_names(*s).iter().copied())
        .chain(["approved", "Heartbeat", ""])
        .map(Value::from)
        .collect()
}

/// One change to a payload.
#[derive(Clone, Debug)]
enum Mutation {
    Drop(usize),
    Null(usize),
    Set(usize, Value),
    NotObject(Value),
}

fn all_values() -> Vec<Value> {
    [
        other_types(),
        numbers(),
        words(),
        strings(),
        timestamps(),
        types(),
    ]
    .concat()
}

/// Applies `m` to `payload`; a key index past the known names picks one of the payload's own.
fn apply(payload: &mut Value, m: &Mutation) {
    let key = |i: usize, p: &Value| -> String {
        let own: Vec<&String> = p
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        match KEYS.get(i) {
            Some(k) => (*k).to_owned(),
            None if own.is_empty() => KEYS[0].to_owned(),
            None => own[(i - KEYS.len()) % own.len()].clone(),
        }
    };
    match m {
        Mutation::Drop(i) => {
            let k = key(*i, payload);
            if let Some(o) = payload.as_object_mut() {
                o.remove(&k);
            }
        }
        Mutation::Null(i) => {
            let k = key(*i, payload);
            if let Some(o) = payload.as_object_mut() {
                o.insert(k, Value::Null);
            }
        }
        Mutation::Set(i, v) => {
            let k = key(*i, payload);
            if let Some(o) = payload.as_object_mut() {
                o.insert(k, v.clone());
            }
        }
        Mutation::NotObject(v) => *payload = v.clone(),
    }
}

#[test]
fn every_single_mutation_of_every_example_gets_the_same_verdict() {
    let values = all_values();
    let mut disagreements = Vec::new();
    let mut checked = 0usize;
    for (source, example) in valid_examples() {
        let mut mutations = Vec::new();
        for i in 0..KEYS.len() {
            mutations.push(Mutation::Drop(i));
            mutations.push(Mutation::Null(i));
            mutations.extend(values.iter().map(|v| Mutation::Set(i, v.clone())));
        }
        mutations.extend(
            [
                json!([1, 2]),
                json!("text"),
                json!(42),
                json!(null),
                json!(true),
            ]
            .into_iter()
            .map(Mutation::NotObject),
        );
        for m in &mutations {
            let mut payload = example.clone();
            apply(&mut payload, m);
            checked += 1;
            if let Err(e) = agree(source, &payload) {
                disagreements.push(e);
            }
        }
    }
    assert!(checked > 50_000, "{checked}");
    assert!(
        disagreements.is_empty(),
        "{} of {checked} disagree, e.g.:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let values = all_values();
    let key = 0..KEYS.len() + 8;
    prop_oneof![
        2 => key.clone().prop_map(Mutation::Drop),
        2 => key.clone().prop_map(Mutation::Null),
        8 => (key, proptest::sample::select(values)).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => proptest::sample::select(vec![json!([]), json!("x"), json!(0)]).prop_map(Mutation::NotObject),
    ]
}

proptest! {
    // No regression file: a failure prints the payload; turn it into a named test here.
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_mutations_of_the_examples_get_the_same_verdict_from_decoder_and_schema(
        example in 0..valid_examples().len(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let (source, mut payload) = valid_examples().swap_remove(example);
        for m in &mutations {
            apply(&mut payload, m);
        }
        let verdict = agree(source, &payload);
        prop_assert!(verdict.is_ok(), "{}", verdict.err().unwrap_or_default());
    }
}

use super::*;
use crate::time::parse_rfc3339;

fn now() -> Ts {
    parse_rfc3339("2026-12-02T00:00:00Z").unwrap()
}

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

fn reason_of(source: Source, payload: &str) -> Reason {
    decode(source, payload.as_bytes(), now(), &limits())
        .unwrap_err()
        .reason
}

/// The valid examples of contract 1.1 and of its additions in 1.2.
pub(super) const VALID: &str = concat!(
    include_str!("../../tests/fixtures/valid.jsonl"),
    "\n",
    include_str!("../../tests/fixtures/valid-1.2.jsonl")
);
/// The invalid examples, each with its reason, of 1.1 and 1.2.
pub(super) const INVALID: &str = concat!(
    include_str!("../../tests/fixtures/invalid.jsonl"),
    "\n",
    include_str!("../../tests/fixtures/invalid-1.2.jsonl")
);

/// The JSON lines of a fixture file (blank lines skipped).
pub(super) fn fixture_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_valid_example_is_accepted_with_its_type() {
    let lines = fixture_lines(VALID);
    assert!(lines.len() >= 20);
    for line in lines {
        let topic = line["topic"].as_str().unwrap();
        let source = source_of(topic, "ioc/v1").unwrap();
        let payload = serde_json::to_vec(&line["payload"]).unwrap();
        let ev =
            decode(source, &payload, now(), &limits()).unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(ev.type_name(), line["payload"]["type"].as_str().unwrap());
        assert_eq!(ev.event_id, line["payload"]["event_id"].as_str().unwrap());
    }
}

#[test]
fn every_invalid_example_gets_its_reason() {
    for line in fixture_lines(INVALID) {
        let topic = line["topic"].as_str().unwrap();
        let source = source_of(topic, "ioc/v1").unwrap();
        let payload = match line.get("raw") {
            Some(raw) => raw.as_str().unwrap().as_bytes().to_vec(),
            None => serde_json::to_vec(&line["payload"]).unwrap(),
        };
        let err = decode(source, &payload, now(), &limits()).unwrap_err();
        assert_eq!(
            err.reason.as_str(),
            line["reason"].as_str().unwrap(),
            "{line}: {err}"
        );
    }
}

#[test]
fn a_payload_over_the_limit_is_too_large_before_anything_else() {
    let small = DecodeLimits {
        max_payload_bytes: 16,
        ..limits()
    };
    let err = decode(
        Source::Onestop,
        b"{not json at all, and long",
        now(),
        &small,
    )
    .unwrap_err();
    assert_eq!(err.reason, Reason::TooLarge);
    assert!(
        decode(Source::Onestop, b"{\"a\":1}", now(), &small)
            .is_err_and(|e| e.reason != Reason::TooLarge)
    );
}

#[test]
fn malformed_json_and_invalid_utf8_are_invalid_json() {
    assert_eq!(
        reason_of(Source::Soc, "{\"event_id\": \"x\",}"),
        Reason::InvalidJson
    );
    assert_eq!(reason_of(Source::Soc, "{} trailing"), Reason::InvalidJson);
    assert_eq!(reason_of(Source::Soc, ""), Reason::InvalidJson);
    let bad_utf8 = b"{\"event_id\": \"\xff\xfe\"}";
    assert_eq!(
        decode(Source::Soc, bad_utf8, now(), &limits())
            .unwrap_err()
            .reason,
        Reason::InvalidJson
    );
}

#[test]
fn a_repeated_known_key_is_invalid_json() {
    let p = r#"{"event_id":"a","event_id":"b","type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z"}"#;
    assert_eq!(reason_of(Source::Vc, p), Reason::InvalidJson);
}

#[test]
fn json_that_is_not_an_object_is_not_object() {
    for p in ["[1,2]", "\"text\"", "42", "null", "true"] {
        assert_eq!(reason_of(Source::Onestop, p), Reason::NotObject, "{p}");
    }
}

#[test]
fn missing_envelope_fields_are_missing_field_even_with_an_unknown_type() {
    assert_eq!(
        reason_of(
            Source::Onestop,
            r#"{"type":"nope","occurred_at":"2026-11-24T09:00:00Z"}"#
        ),
        Reason::MissingField
    );
    assert_eq!(
        reason_of(
            Source::Onestop,
            r#"{"event_id":"e","occurred_at":"2026-11-24T09:00:00Z"}"#
        ),
        Reason::MissingField
    );
    assert_eq!(
        reason_of(Source::Onestop, r#"{"event_id":"e","type":"heartbeat"}"#),
        Reason::MissingField
    );
}

#[test]
fn a_required_field_set_to_null_is_missing() {
    let p = r#"{"event_id":"e","type":"transferred","occurred_at":"2026-11-24T09:00:00Z","dossier_id":null}"#;
    assert_eq!(reason_of(Source::Onestop, p), Reason::MissingField);
}

#[test]
fn missing_field_wins_over_wrong_type() {
    let p =
        r#"{"event_id":5,"type":"received","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D"}"#;
    assert_eq!(reason_of(Source::Onestop, p), Reason::MissingField);
}

#[test]
fn wrong_json_types_are_wrong_type() {
    let cases = [
        (
            Source::Onestop,
            r#"{"event_id":1,"type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z"}"#,
        ),
        (
            Source::Onestop,
            r#"{"event_id":"e","type":7,"occurred_at":"2026-11-24T09:00:00Z"}"#,
        ),
        (
            Source::Onestop,
            r#"{"event_id":"e","type":"transferred","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D","agency":["A"]}"#,
        ),
        (
            Source::Vc,
            r#"{"event_id":"e","type":"endpoint_stats","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","endpoint_id":"E","packet_loss_pct":"1","jitter_ms":1,"rtt_ms":1,"bitrate_kbps":1}"#,
        ),
        (
            Source::Vc,
            r#"{"event_id":"e","type":"meeting_started","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","title":"T","level":"central","expected_endpoints":["A",2]}"#,
        ),
        (
            Source::Soc,
            r#"{"event_id":"e","type":"alert","occurred_at":"2026-11-24T09:00:00Z","alert_id":"A","system_id":"S","severity":"low","category":"other","src_ip":{}}"#,
        ),
    ];
    for (source, p) in cases {
        assert_eq!(reason_of(source, p), Reason::WrongType, "{p}");
    }
}

#[test]
fn wrong_type_wins_over_unknown_type_and_invalid_value() {
    let p = r#"{"event_id":"e","type":"received","occurred_at":"bad","dossier_id":"D","agency":"A","procedure":"P","channel":"fax","due_at":5}"#;
    assert_eq!(reason_of(Source::Onestop, p), Reason::WrongType);
}

#[test]
fn fields_not_listed_for_the_type_are_ignored_whatever_they_hold() {
    // `procedure` and `channel` are listed only for submitted/received.
    let p = r#"{"event_id":"e","type":"transferred","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D","channel":42,"procedure":"","x":[{}]}"#;
    assert!(decode(Source::Onestop, p.as_bytes(), now(), &limits()).is_ok());
}

#[test]
fn a_type_of_another_source_is_unknown_type() {
    let p = r#"{"event_id":"e","type":"alert","occurred_at":"2026-11-24T09:00:00Z"}"#;
    assert_eq!(reason_of(Source::Onestop, p), Reason::UnknownType);
}

#[test]
fn bad_values_are_invalid_value() {
    let long = "x".repeat(129);
    let cases = [
        format!(r#"{{"event_id":"{long}","type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z"}}"#),
        r#"{"event_id":"","type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z"}"#.to_owned(),
        r#"{"event_id":"e","type":"heartbeat","occurred_at":"2026-11-24 09:00:00"}"#.to_owned(),
        r#"{"event_id":"e","type":"received","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D","agency":"A","procedure":"P","channel":"online","due_at":"tomorrow"}"#.to_owned(),
        r#"{"event_id":"e","type":"paused","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D","reason":"lunch"}"#.to_owned(),
        r#"{"event_id":"e","type":"meeting_started","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","title":"T","level":"district"}"#.to_owned(),
        r#"{"event_id":"e","type":"meeting_started","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","title":"T","level":"central","expected_endpoints":[""]}"#.to_owned(),
        r#"{"event_id":"e","type":"alert","occurred_at":"2026-11-24T09:00:00Z","alert_id":"A","system_id":"S","severity":"severe","category":"other"}"#.to_owned(),
    ];
    for p in &cases {
        let source = if p.contains("meeting") {
            Source::Vc
        } else if p.contains("alert") {
            Source::Soc
        } else {
            Source::Onestop
        };
        assert_eq!(reason_of(source, p), Reason::InvalidValue, "{p}");
    }
}

#[test]
fn ids_are_measured_in_characters_not_bytes() {
    let id = "đ".repeat(128); // 256 bytes, 128 characters
    let p =
        format!(r#"{{"event_id":"{id}","type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z"}}"#);
    assert!(decode(Source::Vc, p.as_bytes(), now(), &limits()).is_ok());
}

#[test]
fn invalid_value_wins_over_out_of_range() {
    let p = r#"{"event_id":"","type":"endpoint_stats","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","endpoint_id":"E","packet_loss_pct":101,"jitter_ms":1,"rtt_ms":1,"bitrate_kbps":1}"#;
    assert_eq!(reason_of(Source::Vc, p), Reason::InvalidValue);
}

#[test]
fn numbers_outside_their_range_are_out_of_range() {
    for (field, value) in [
        ("packet_loss_pct", "-0.1"),
        ("packet_loss_pct", "100.5"),
        ("jitter_ms", "-1"),
        ("rtt_ms", "-5"),
        ("bitrate_kbps", "-1"),
    ] {
        let mut v: serde_json::Value = serde_json::from_str(
            r#"{"event_id":"e","type":"endpoint_stats","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","endpoint_id":"E","packet_loss_pct":0,"jitter_ms":0,"rtt_ms":0,"bitrate_kbps":0}"#,
        )
        .unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        assert_eq!(
            reason_of(Source::Vc, &v.to_string()),
            Reason::OutOfRange,
            "{field}={value}"
        );
    }
    let edge = r#"{"event_id":"e","type":"endpoint_stats","occurred_at":"2026-11-24T09:00:00Z","meeting_id":"M","endpoint_id":"E","packet_loss_pct":100,"jitter_ms":0,"rtt_ms":0,"bitrate_kbps":0}"#;
    assert!(decode(Source::Vc, edge.as_bytes(), now(), &limits()).is_ok());
}

#[test]
fn out_of_range_wins_over_future_timestamp() {
    let p = r#"{"event_id":"e","type":"endpoint_stats","occurred_at":"2099-01-01T00:00:00Z","meeting_id":"M","endpoint_id":"E","packet_loss_pct":101,"jitter_ms":1,"rtt_ms":1,"bitrate_kbps":1}"#;
    assert_eq!(reason_of(Source::Vc, p), Reason::OutOfRange);
}

#[test]
fn the_future_skew_is_strict() {
    let at = |offset_secs: i64| {
        let t = now()
            .plus_secs(offset_secs)
            .to_rfc3339(&jiff::tz::TimeZone::UTC);
        format!(r#"{{"event_id":"e","type":"heartbeat","occurred_at":"{t}"}}"#)
    };
    assert!(decode(Source::Soc, at(300).as_bytes(), now(), &limits()).is_ok());
    assert_eq!(reason_of(Source::Soc, &at(301)), Reason::FutureTimestamp);
}

/// A `received` dossier with the given `occurred_at` and `due_at` (JSON, quoted or `null`).
fn received_at(occurred_at: &str, due_at: &str) -> String {
    format!(
        r#"{{"event_id":"e","type":"received","occurred_at":"{occurred_at}","dossier_id":"D","agency":"A","procedure":"P","channel":"online","due_at":{due_at}}}"#
    )
}

fn due_of(payload: &str) -> Due {
    match decode(Source::Onestop, payload.as_bytes(), now(), &limits()) {
        Ok(Event {
            body: Body::Dossier(d),
            ..
        }) => d.due_at,
        other => panic!("{payload}: {other:?}"),
    }
}

#[test]
fn a_far_future_occurred_at_is_future_timestamp_not_invalid_value() {
    for far in [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999999999-23:59",
        "2262-04-12T00:00:00Z",
        "2261-01-01T00:00:00+07:00",
    ] {
        let p = format!(r#"{{"event_id":"e","type":"heartbeat","occurred_at":"{far}"}}"#);
        let err = decode(Source::Soc, p.as_bytes(), now(), &limits()).unwrap_err();
        assert_eq!(err.reason, Reason::FutureTimestamp, "{far}: {err}");
    }
    let p = r#"{"event_id":"e","type":"heartbeat","occurred_at":"9999-12-31T23:59:59Z"}"#;
    let err = decode(Source::Soc, p.as_bytes(), now(), &limits()).unwrap_err();
    assert!(err.detail.contains("at least"), "{err}");
}

#[test]
fn the_precedence_holds_at_the_edges_of_the_timestamp_range() {
    // invalid_value (year 0000, a misplaced leap second) before out_of_range before
    // future_timestamp (year 9999).
    let stats = |occurred_at: &str, loss: &str| {
        format!(
            r#"{{"event_id":"e","type":"endpoint_stats","occurred_at":"{occurred_at}","meeting_id":"M","endpoint_id":"E","packet_loss_pct":{loss},"jitter_ms":1,"rtt_ms":1,"bitrate_kbps":1}}"#
        )
    };
    for bad in ["0000-01-01T00:00:00Z", "2026-11-24T09:00:60Z"] {
        assert_eq!(
            reason_of(Source::Vc, &stats(bad, "101")),
            Reason::InvalidValue,
            "{bad}"
        );
    }
    let far = "9999-12-31T23:59:59Z";
    assert_eq!(
        reason_of(Source::Vc, &stats(far, "101")),
        Reason::OutOfRange
    );
    assert_eq!(
        reason_of(Source::Vc, &stats(far, "1")),
        Reason::FutureTimestamp
    );
    assert_eq!(
        reason_of(
            Source::Onestop,
            &received_at("2026-11-24T09:00:00Z", r#""0000-12-31T00:00:00Z""#)
        ),
        Reason::InvalidValue
    );
}

#[test]
fn the_first_year_and_leap_seconds_are_accepted() {
    for ok in [
        "0001-01-01T00:00:00Z",
        "1600-02-29T12:00:00+07:00",
        "2016-12-31T23:59:60Z",
        "2017-01-01T06:59:60.5+07:00",
    ] {
        let p = format!(r#"{{"event_id":"e","type":"heartbeat","occurred_at":"{ok}"}}"#);
        let ev = decode(Source::Soc, p.as_bytes(), now(), &limits())
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(ev.occurred_at, parse_rfc3339(ok).unwrap());
    }
    let p = r#"{"event_id":"e","type":"heartbeat","occurred_at":"0001-01-01T00:00:00Z"}"#;
    let ev = decode(Source::Soc, p.as_bytes(), now(), &limits()).unwrap();
    assert_eq!(ev.occurred_at, Ts::MIN, "clamped to the earliest instant");
}

#[test]
fn a_far_future_due_at_is_accepted_as_the_latest_instant() {
    let occurred = "2026-11-24T09:00:00Z";
    for far in [
        "9999-12-31T23:59:59Z",
        "2262-04-12T00:00:00-07:00",
        "2300-01-01T00:00:00Z",
    ] {
        assert_eq!(
            due_of(&received_at(occurred, &format!(r#""{far}""#))),
            Due::At(Ts::MAX),
            "{far}"
        );
    }
    // A deadline at a leap second is the last nanosecond of its day.
    assert_eq!(
        due_of(&received_at(occurred, r#""2026-12-31T23:59:60Z""#)),
        Due::At(parse_rfc3339("2026-12-31T23:59:59.999999999Z").unwrap())
    );
    // And one long past is accepted too (it is overdue, as it says).
    assert_eq!(
        due_of(&received_at(occurred, r#""0001-01-01T00:00:00Z""#)),
        Due::At(Ts::MIN)
    );
}

#[test]
fn null_due_at_is_no_deadline_where_required_and_absent_elsewhere() {
    let received = r#"{"event_id":"e","type":"received","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D","agency":"A","procedure":"P","channel":"online","due_at":null}"#;
    let Body::Dossier(d) = decode(Source::Onestop, received.as_bytes(), now(), &limits())
        .unwrap()
        .body
    else {
        panic!()
    };
    assert_eq!(d.due_at, Due::NoDeadline);
    let transferred = r#"{"event_id":"e","type":"transferred","occurred_at":"2026-11-24T09:00:00Z","dossier_id":"D","due_at":null,"agency":null}"#;
    let Body::Dossier(d) = decode(Source::Onestop, transferred.as_bytes(), now(), &limits())
        .unwrap()
        .body
    else {
        panic!()
    };
    assert_eq!(d.due_at, Due::Absent);
    assert_eq!(d.agency, None);
}

#[test]
fn escaped_strings_are_decoded() {
    let p = r#"{"event_id":"e\u0031","type":"heartbeat","occurred_at":"2026-11-24T09:00:00Z"}"#;
    assert_eq!(
        decode(Source::Vc, p.as_bytes(), now(), &limits())
            .unwrap()
            .event_id,
        "e1"
    );
}

#[test]
fn topics_name_their_source() {
    assert_eq!(
        source_of("ioc/v1/onestop/H42/dossier", "ioc/v1"),
        Some(Source::Onestop)
    );
    assert_eq!(source_of("ioc/v1/vc", "ioc/v1"), Some(Source::Vc));
    assert_eq!(source_of("ioc/v1/socx/a", "ioc/v1"), None);
    assert_eq!(source_of("ioc/v2/soc/a", "ioc/v1"), None);
    assert_eq!(source_of("ioc/v1/soc/", "ioc/v1"), Some(Source::Soc));
    for not_a_source in [
        "ioc/v1",
        "ioc/v1/",
        "ioc/v1//soc",
        "ioc/v1soc",
        "ioc/v1/Soc",
        "ioc/v1/vcx",
    ] {
        assert_eq!(source_of(not_a_source, "ioc/v1"), None, "{not_a_source}");
    }
    for s in Source::ALL {
        assert_eq!(Source::from_level(s.as_str()), Some(s));
        assert_eq!(
            source_of(&format!("ioc/v1/{}/x", s.as_str()), "ioc/v1"),
            Some(s)
        );
    }
    assert_eq!(Source::from_level("onestop/x"), None);
}

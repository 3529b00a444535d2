//! A scripted mix of all three sources (valid events, duplicates, late and out-of-order
//! events, malformed payloads) through a real broker: `/metrics` and the dead-letter topic
//! must show exactly the expected numbers. And a broker restart mid-stream.

use iocd_testkit as tk;
use serde_json::{Value, json};

use crate::helpers::{TestClient, broker::TestBroker, canon, spawn_app, test_settings, wait_for};

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn onestop_script() -> Vec<Vec<u8>> {
    let e4 = tk::transferred("D1", "C").id("e4").ago(30 * MIN);
    vec![
        tk::submitted("D1")
            .id("e1")
            .ago(60 * MIN)
            .procedure("P1")
            .bytes(),
        tk::received("D1")
            .id("e2")
            .ago(50 * MIN)
            .procedure("P1")
            .due(tk::at(48 * HOUR))
            .bytes(),
        tk::received("D2")
            .id("e3")
            .ago(40 * MIN)
            .agency("B")
            .procedure("P2")
            .channel("direct")
            .due(tk::at(-HOUR))
            .bytes(),
        e4.bytes(),
        tk::resolved("D3").id("e5").ago(20 * MIN).bytes(),
        tk::heartbeat(tk::ONESTOP).id("h1").ago(MIN).bytes(),
        // Duplicates: a redelivery, and a vendor retry with other content (the first wins).
        e4.bytes(),
        tk::dossier("withdrawn", "D1").id("e2").ago(MIN).bytes(),
        // Late: received three days ago, arriving now.
        tk::received("D4")
            .id("e0")
            .ago(72 * HOUR)
            .procedure("P1")
            .channel("postal")
            .due(tk::at(3 * HOUR))
            .bytes(),
        b"{not json".to_vec(),
        // `received` requires the `due_at` key.
        tk::received("D5")
            .id("e6")
            .ago(MIN)
            .procedure("P1")
            .remove("due_at")
            .bytes(),
        tk::dossier("approved", "D5").id("e7").ago(MIN).bytes(),
        vec![b'x'; 70_000],
    ]
}

fn vc_script() -> Vec<Vec<u8>> {
    let joined = tk::endpoint_joined("M1", "E1")
        .id("v2")
        .ago(9 * MIN)
        .agency("X01");
    let stats = |id: &str, loss: f64| {
        tk::endpoint_stats("M1", "E1")
            .id(id)
            .ago(8 * MIN)
            .quality(loss, 5.0, 40.0)
            .set("bitrate_kbps", 1500)
            .bytes()
    };
    vec![
        tk::meeting_started("M1")
            .id("v1")
            .ago(10 * MIN)
            .set("title", "Hội nghị")
            .set("expected_endpoints", json!(["E1", "E2"]))
            .bytes(),
        joined.bytes(),
        stats("v3", 5.0),
        joined.bytes(),
        stats("v5", 150.0),
        tk::endpoint_joined("M9", "E3")
            .id("v6")
            .ago(5 * MIN)
            .bytes(),
    ]
}

fn soc_script() -> Vec<Vec<u8>> {
    vec![
        tk::alert("A1", "S1", "high")
            .id("s1")
            .ago(5 * MIN)
            .set("src_ip", "203.0.113.7")
            .bytes(),
        tk::incident_opened("I1", "critical")
            .id("s2")
            .ago(4 * MIN)
            .bytes(),
        tk::incident_acknowledged("I1")
            .id("s3")
            .ago(3 * MIN)
            .bytes(),
        tk::incident_opened("I2", "high")
            .id("s4")
            .ago(2 * MIN)
            .set("system_id", "S2")
            .bytes(),
        tk::alert("A2", "S1", "low")
            .id("s5")
            .at(tk::at(HOUR))
            .set("category", "recon")
            .bytes(),
        tk::system_heartbeat("S3").id("s6").ago(30 * MIN).bytes(),
    ]
}

/// Publishes the three scripts on their sources' topics under `prefix`.
async fn publish_scripts(client: &TestClient, prefix: &str) {
    for payload in onestop_script() {
        client
            .publish(&format!("{prefix}/onestop/H42/dossier"), payload)
            .await;
    }
    for payload in vc_script() {
        client
            .publish(&format!("{prefix}/vc/meetings"), payload)
            .await;
    }
    for payload in soc_script() {
        client
            .publish(&format!("{prefix}/soc/alerts"), payload)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_mix_of_all_sources_gives_exact_metrics_and_dead_letters() {
    let broker = TestBroker::start();
    let app = spawn_app(test_settings(&broker)).await;
    let p = app.prefix.clone();
    let client = TestClient::connect(&broker, &[format!("{p}/deadletter/#")]).await;
    publish_scripts(&client, &p).await;
    // Noise outside the input topics is not ours.
    client
        .publish(&format!("{p}/other/x"), b"{}".to_vec())
        .await;

    wait_for("every dead letter", || async {
        client.received().len() >= 6
    })
    .await;
    app.wait_metric(
        r#"iocd_events_rejected_total{reason="out_of_range",source="vc"}"#,
        1.0,
    )
    .await;
    app.wait_metric(
        r#"iocd_events_total{source="soc",type="system_heartbeat"}"#,
        1.0,
    )
    .await;
    app.wait_metric(
        r#"iocd_events_total{source="onestop",type="received"}"#,
        3.0,
    )
    .await;
    // Time-based gauges are computed each view tick (500 ms); wait for one after the events.
    app.wait_metric(r"iocd_vc_endpoints_missing", 1.0).await;

    let m = app.metrics().await;
    let v = |k: &str| m.get(&canon(k)).copied().unwrap_or(0.0);
    let expect = [
        (
            r#"iocd_events_total{source="onestop",type="submitted"}"#,
            1.0,
        ),
        (
            r#"iocd_events_total{source="onestop",type="received"}"#,
            3.0,
        ),
        (
            r#"iocd_events_total{source="onestop",type="transferred"}"#,
            1.0,
        ),
        (
            r#"iocd_events_total{source="onestop",type="resolved"}"#,
            1.0,
        ),
        (
            r#"iocd_events_total{source="onestop",type="heartbeat"}"#,
            1.0,
        ),
        (
            r#"iocd_events_total{source="onestop",type="withdrawn"}"#,
            0.0,
        ),
        (r#"iocd_events_duplicate_total{source="onestop"}"#, 2.0),
        (r#"iocd_events_duplicate_total{source="vc"}"#, 1.0),
        (r#"iocd_events_duplicate_total{source="soc"}"#, 0.0),
        (
            r#"iocd_events_rejected_total{reason="invalid_json",source="onestop"}"#,
            1.0,
        ),
        (
            r#"iocd_events_rejected_total{reason="missing_field",source="onestop"}"#,
            1.0,
        ),
        (
            r#"iocd_events_rejected_total{reason="unknown_type",source="onestop"}"#,
            1.0,
        ),
        (
            r#"iocd_events_rejected_total{reason="too_large",source="onestop"}"#,
            1.0,
        ),
        (
            r#"iocd_events_rejected_total{reason="future_timestamp",source="soc"}"#,
            1.0,
        ),
        (
            r#"iocd_onestop_dossiers{agency="C",status="in_progress"}"#,
            1.0,
        ),
        (
            r#"iocd_onestop_dossiers{agency="B",status="in_progress"}"#,
            1.0,
        ),
        (
            r#"iocd_onestop_dossiers{agency="A",status="in_progress"}"#,
            1.0,
        ),
        (r#"iocd_onestop_dossiers_overdue{agency="B"}"#, 1.0),
        (r#"iocd_onestop_dossiers_due_soon{agency="A"}"#, 1.0),
        (r#"iocd_onestop_dossiers_due_soon{agency="C"}"#, 0.0),
        (r#"iocd_onestop_dossiers_stalled{agency="A"}"#, 1.0),
        (
            r#"iocd_onestop_received_total{agency="A",channel="online"}"#,
            1.0,
        ),
        (
            r#"iocd_onestop_received_total{agency="B",channel="direct"}"#,
            1.0,
        ),
        (
            r#"iocd_onestop_received_total{agency="A",channel="postal"}"#,
            1.0,
        ),
        (
            r#"iocd_onestop_resolved_total{agency="unknown",timing="on_time"}"#,
            1.0,
        ),
        (r#"iocd_vc_meetings_active{level="province"}"#, 1.0),
        (r#"iocd_vc_meetings_active{level="unknown"}"#, 1.0),
        ("iocd_vc_endpoints_connected", 2.0),
        ("iocd_vc_endpoints_missing", 1.0),
        ("iocd_vc_endpoints_poor_quality", 1.0),
        (
            r#"iocd_soc_alerts_total{category="intrusion",severity="high"}"#,
            1.0,
        ),
        (r#"iocd_soc_incidents_open{severity="critical"}"#, 1.0),
        (r#"iocd_soc_incidents_open{severity="high"}"#, 1.0),
        (r#"iocd_soc_incidents_unacknowledged{severity="high"}"#, 1.0),
        (
            r#"iocd_soc_incidents_unacknowledged{severity="critical"}"#,
            0.0,
        ),
        (
            r#"iocd_soc_incident_ack_seconds_count{severity="critical"}"#,
            1.0,
        ),
        ("iocd_soc_systems_silent", 1.0),
    ];
    let wrong: Vec<String> = expect
        .iter()
        .filter(|(k, want)| (v(k) - want).abs() > 1e-9)
        .map(|(k, want)| format!("{k}: got {}, want {want}", v(k)))
        .collect();
    assert!(wrong.is_empty(), "metrics differ:\n{}", wrong.join("\n"));
    let onestop_last = v(r#"iocd_source_last_event_timestamp_seconds{source="onestop"}"#);
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!(
        (now - 60.0 - onestop_last).abs() < 5.0,
        "last onestop event is the heartbeat"
    );

    let letters: Vec<(String, Value)> = client
        .received()
        .into_iter()
        .map(|(topic, body)| {
            (
                topic,
                serde_json::from_slice(&body).expect("dead letter is JSON"),
            )
        })
        .collect();
    let reasons = |source: &str| {
        let mut r: Vec<String> = letters
            .iter()
            .filter(|(t, _)| t == &format!("{p}/deadletter/{source}"))
            .map(|(_, v)| v["reason"].as_str().unwrap().to_owned())
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        reasons("onestop"),
        ["invalid_json", "missing_field", "too_large", "unknown_type"]
    );
    assert_eq!(reasons("vc"), ["out_of_range"]);
    assert_eq!(reasons("soc"), ["future_timestamp"]);
    let too_large = &letters
        .iter()
        .find(|(_, v)| v["reason"] == "too_large")
        .unwrap()
        .1;
    assert_eq!(too_large["truncated"], true);
    assert_eq!(too_large["payload_encoding"], "base64");
    assert_eq!(too_large["topic"], format!("{p}/onestop/H42/dossier"));
    let bad_json = &letters
        .iter()
        .find(|(_, v)| v["reason"] == "invalid_json")
        .unwrap()
        .1;
    assert_eq!(bad_json["payload"], "{not json");
    assert_eq!(bad_json["payload_encoding"], "utf8");
    assert!(bad_json["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(bad_json.get("truncated").is_none());
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_resumes_after_the_broker_restarts_mid_stream() {
    let mut broker = TestBroker::start();
    let app = spawn_app(test_settings(&broker)).await;
    let p = app.prefix.clone();
    let topic = format!("{p}/soc/systems");
    let heartbeat = |i: usize| tk::heartbeat(tk::SOC).id(format!("hb{i}")).ago(1).bytes();
    {
        let client = TestClient::connect(&broker, &[]).await;
        for i in 0..200 {
            client.publish(&topic, heartbeat(i)).await;
        }
        app.wait_metric(r#"iocd_events_total{source="soc",type="heartbeat"}"#, 200.0)
            .await;
    }
    broker.restart();
    app.wait_metric("iocd_mqtt_connects_total", 2.0).await;
    app.wait_ready().await;
    let client = TestClient::connect(&broker, &[]).await;
    // Duplicates of the first batch are still recognised after the restart.
    for i in 150..400 {
        client.publish(&topic, heartbeat(i)).await;
    }
    app.wait_metric(r#"iocd_events_total{source="soc",type="heartbeat"}"#, 400.0)
        .await;
    // At least the 50 re-sent ones; more when the broker redelivers messages it had not
    // yet saved as acknowledged before the kill. Either way none is counted twice.
    wait_for("the re-sent heartbeats to count as duplicates", || async {
        app.metric(r#"iocd_events_duplicate_total{source="soc"}"#)
            .await
            >= 50.0
    })
    .await;
    assert_eq!(
        app.metric(r#"iocd_events_total{source="soc",type="heartbeat"}"#)
            .await,
        400.0
    );
    app.stop().await.expect("clean stop");
}

/// The metric names of README.md's "Metrics" section, checking that each table there is
/// one unbroken block (a blank line inside a Markdown table splits it and breaks its
/// rendering).
fn readme_metrics() -> std::collections::BTreeSet<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Metrics")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README.md has a Metrics section");
    let mut names = std::collections::BTreeSet::new();
    let mut previous = "";
    for line in section.lines() {
        if line.starts_with("| `iocd_") {
            assert!(
                previous.starts_with('|'),
                "README.md: a metric row follows a line that is not a table row, so the table \
                 is broken: {line}"
            );
            let cell = line.split('|').nth(1).unwrap_or_default();
            for name in cell.split(',') {
                names.insert(name.trim().trim_matches('`').to_owned());
            }
        }
        previous = line;
    }
    names
}

/// A vendor API that has nothing new: `{"items": []}` on any path.
async fn empty_vendor_api() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app =
        axum::Router::new().fallback(|| async { axum::Json(serde_json::json!({"items": []})) });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_lists_exactly_the_metrics_served() {
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    // With a directory, so that `iocd_agency_info` has series (a family without any is not
    // served).
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agencies-example.toml");
    settings.directory.directory = std::sync::Arc::new(
        iocd::directory::Directory::read(&example).expect("the example directory is valid"),
    );
    // With the shipped mappings and a poller, so that the mapping and poller families have
    // series.
    let mappings = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("config/mappings")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, mappings.path().join(path.file_name().unwrap())).unwrap();
    }
    let port = empty_vendor_api().await;
    let soc = std::fs::read_to_string(root.join("config/mappings/soc-generic.toml")).unwrap();
    let polled = soc.replace("name = \"soc-generic\"", "name = \"soc-poll\"").replace(
        "[input]\nhttp = true",
        &format!(
            "[input.poll]\nurl = \"http://127.0.0.1:{port}/alerts?since={{since}}\"\nwatermark = \"/ts\"\nsince = \"2026-12-01T00:00:00+07:00\""
        ),
    );
    assert!(polled.contains("[input.poll]"));
    std::fs::write(mappings.path().join("soc-poll.toml"), polled).unwrap();
    settings.mappings.dir = Some(mappings.path().to_owned());
    settings.mappings.mappings = std::sync::Arc::new(
        iocd::decode::mapping::Mappings::read_dir(mappings.path(), &settings.mqtt.prefix).unwrap(),
    );
    let app = spawn_app(settings).await;
    let polled = crate::helpers::poll_until(
        std::time::Duration::from_secs(20),
        || app.metric(r#"iocd_poll_last_success_timestamp_seconds{mapping="soc-poll"}"#),
        |t| *t > 0.0,
    )
    .await;
    assert!(polled > 0.0, "the poller succeeded once");
    let p = app.prefix.clone();
    let client = TestClient::connect(&broker, &[]).await;
    publish_scripts(&client, &p).await;
    app.wait_metric(
        r#"iocd_events_total{source="soc",type="system_heartbeat"}"#,
        1.0,
    )
    .await;
    let (_, body) = app.get("/metrics").await;
    let served: std::collections::BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let documented = readme_metrics();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in README.md: {undocumented:?}; in README.md but not served: {unserved:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_feed_examples_are_accepted_and_leave_no_phantom_meeting() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("\n## Connect your feed")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("\n```").next())
        .expect("README.md has a shell block under Connect your feed");
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.mqtt.prefix = "ioc/v1".into(); // the README's topics; this broker is the test's own
    let app = spawn_app(settings).await;
    let script = block.replace(
        "H=127.0.0.1 P=1883",
        &format!("H=127.0.0.1 P={}", broker.port),
    );
    assert_ne!(script, block, "the block sets H and P first");
    let out = std::process::Command::new("sh")
        .args(["-ec", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for (source, kind) in [
        ("onestop", "received"),
        ("vc", "meeting_started"),
        ("vc", "endpoint_stats"),
        ("vc", "meeting_ended"),
        ("soc", "system_heartbeat"),
    ] {
        app.wait_metric(
            &format!(r#"iocd_events_total{{source="{source}",type="{kind}"}}"#),
            1.0,
        )
        .await;
    }
    let metrics = app.metrics().await;
    let rejected: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("iocd_events_rejected_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(rejected == 0.0, "{metrics:?}");
    let (_, body) = app.get("/api/v1/snapshot").await;
    let snap: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snap["vc"]["meetings_active"], 0, "{snap}");
    assert_eq!(snap["onestop"]["today"]["received"], 1, "{snap}");
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_2000_rejected_payloads_a_second_every_dead_letter_is_published() {
    const TOTAL: usize = 10_000;
    const PER_TICK: usize = 10; // every 5 ms: 2,000 a second for 5 s
    // Persistence off: saved on every change (the default here, for the crash tests), the
    // broker rewrites its whole store per message and falls behind 10,000 queued letters,
    // which is the broker under test, not iocd.
    let broker = TestBroker::start_with("persistence false");
    let app = spawn_app(test_settings(&broker)).await;
    let p = app.prefix.clone();
    let watcher = TestClient::connect(&broker, &[format!("{p}/deadletter/#")]).await;
    let feed = TestClient::connect(&broker, &[]).await;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
    let started = std::time::Instant::now();
    for batch in 0..TOTAL / PER_TICK {
        tick.tick().await;
        for i in 0..PER_TICK {
            let n = batch * PER_TICK + i;
            feed.publish(&format!("{p}/soc/poison"), format!("{{not json {n}"))
                .await;
        }
    }
    let sent_in = started.elapsed();
    let letters = crate::helpers::poll_until(
        std::time::Duration::from_secs(60),
        || async { watcher.received() },
        |got| got.len() >= TOTAL,
    )
    .await;
    let dropped = app
        .metric(r#"iocd_mqtt_publish_dropped_total{kind="deadletter"}"#)
        .await;
    assert_eq!(
        letters.len(),
        TOTAL,
        "every rejection has exactly one dead letter ({dropped} counted as dropped)"
    );
    app.wait_metric(
        r#"iocd_events_rejected_total{reason="invalid_json",source="soc"}"#,
        TOTAL as f64,
    )
    .await;
    assert!(dropped == 0.0, "{dropped} dead letters dropped");
    eprintln!(
        "dead letters: {} published of {TOTAL} rejected, sent in {sent_in:?}, all received after {:?}",
        letters.len(),
        started.elapsed()
    );
    app.stop().await.expect("clean stop");
}

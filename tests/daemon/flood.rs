//! The whole daemon under a flat-out QoS 0 flood while it holds a large state (issue 11,
//! point 2): the MQTT connection never starves, and every message the broker delivered is
//! counted, processed or counted as dropped.
//!
//! The test broker keeps every QoS 0 message for iocd (`max_queued_messages 1000000`, above
//! anything sent here), so what the broker delivered is what was published. No assertion is
//! about time: the figures are printed for `docs/performance.md`. Whether this flood outruns
//! the pipeline depends on the machine; `ingest_mqtt::at_qos0_a_stall_…` and
//! `ingest_mqtt::at_qos1_a_stall_…` stop the pipeline outright, so they fail on any machine
//! if the event loop ever waits for it again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iocd_testkit as tk;

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

use crate::helpers::{
    broker::TestBroker, metric_sum, poll_until, spawn_app, test_settings, unique,
};

/// Open dossiers loaded before the flood.
const DOSSIERS: usize = 100_000;
/// Messages of the flood: SOC alerts carrying the raw log line they come from.
const FLOOD: usize = 100_000;
/// Bytes of the raw log line in each alert (an extension field: decoded, then ignored).
const RAW_BYTES: usize = 1_000;
/// How long the counters may take to settle after each phase (a debug build on two cores).
const SETTLE: Duration = Duration::from_secs(60);

/// One payload a line, as `mosquitto_pub -l` reads them.
fn lines(payloads: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(p.as_bytes());
        out.push(b'\n');
    }
    out
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(&crate::helpers::canon(series))
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flat_out_qos0_flood_over_a_large_state_keeps_the_connection_and_counts_every_message() {
    // No broker persistence: the test broker's autosave on every change would write its
    // database for each QoS 1 message queued while the state loads.
    let broker = TestBroker::start_with("persistence false");
    let mut settings = test_settings(&broker);
    // The shortest keepalive a daemon would use: a starved event loop misses it first.
    settings.mqtt.keepalive = Duration::from_secs(2);
    let app = spawn_app(settings).await;
    let p = app.prefix.clone();

    // The large state, at QoS 1 (the broker holds what iocd cannot take yet).
    let started = Instant::now();
    publish_qos1(
        &broker,
        &format!("{p}/onestop/load"),
        (0..DOSSIERS).map(|i| tk::received(&format!("d-{i}")).bytes()),
    )
    .await;
    let loaded = poll_until(
        SETTLE,
        || app.metric("iocd_state_dossiers"),
        |n| *n >= DOSSIERS as f64,
    )
    .await;
    if loaded != DOSSIERS as f64 {
        let (_, body) = app.get("/metrics").await;
        let ours: Vec<&str> = body
            .lines()
            .filter(|l| l.starts_with("iocd_") && !l.starts_with("iocd_onestop"))
            .collect();
        panic!(
            "{loaded} of {DOSSIERS} dossiers loaded:\n{}",
            ours.join("\n")
        );
    }
    let load_took = started.elapsed();

    // The flood, at QoS 0, as fast as mosquitto_pub and the broker go.
    let raw = "x".repeat(RAW_BYTES);
    let flood = lines((0..FLOOD).map(|i| {
        tk::alert(&format!("a-{i}"), &format!("sys-{}", i % 50), "high")
            .set("raw", raw.as_str())
            .to_string()
    }));
    let started = Instant::now();
    broker
        .publish_lines(&format!("{p}/soc/flood"), 0, flood)
        .await;
    let flood_sent_in = started.elapsed();
    let published = (DOSSIERS + FLOOD) as f64;

    // Everything the broker delivered has been read, and nothing is held or queued any more.
    let m = poll_until(
        SETTLE,
        || app.metrics(),
        |m| {
            let received = get(m, "iocd_mqtt_messages_received_total");
            let enqueued = get(m, "iocd_pipeline_enqueued_total");
            received >= published
                && enqueued + get(m, "iocd_ingest_dropped_total") == received
                && get(m, "iocd_pipeline_dequeued_total") == enqueued
        },
    )
    .await;
    let drained_in = started.elapsed();
    let (_, body) = app.get("/metrics").await;
    let disconnects = metric_sum(&body, "iocd_mqtt_disconnects_total");
    let received = get(&m, "iocd_mqtt_messages_received_total");
    let enqueued = get(&m, "iocd_pipeline_enqueued_total");
    let dropped = get(&m, "iocd_ingest_dropped_total");
    let keepalive = get(&m, r#"iocd_mqtt_disconnects_total{cause="keepalive"}"#);
    eprintln!(
        "flood: {DOSSIERS} dossiers loaded in {load_took:?}; {FLOOD} QoS 0 messages sent in \
         {flood_sent_in:?}, all read and handled {drained_in:?} after the start; received \
         {received}, handed to the pipeline {enqueued}, dropped (counted) {dropped}, \
         disconnects {disconnects} (keepalive {keepalive}), broker drops {}",
        get(&m, "iocd_broker_messages_dropped")
    );

    // The connection never starved: not one disconnect, of any cause, and one CONNACK.
    assert_eq!(
        disconnects,
        0.0,
        "disconnects by cause:\n{}",
        disconnect_lines(&body)
    );
    assert_eq!(get(&m, "iocd_mqtt_connects_total"), 1.0);
    assert_eq!(get(&m, "iocd_broker_messages_dropped"), 0.0);
    // Every message the broker delivered was read (the broker dropped none, so that is
    // every message published) ...
    assert_eq!(received, published, "messages read off the connection");
    // ... and is either in the pipeline's counts or counted as dropped by ingest.
    assert_eq!(
        enqueued + dropped,
        received,
        "received = handed over + dropped"
    );
    assert_eq!(get(&m, "iocd_pipeline_dequeued_total"), enqueued);
    let counted = poll_until(
        SETTLE,
        || async {
            let (_, body) = app.get("/metrics").await;
            metric_sum(&body, "iocd_events_total")
                + metric_sum(&body, "iocd_events_rejected_total")
                + metric_sum(&body, "iocd_events_duplicate_total")
        },
        |n| *n >= enqueued,
    )
    .await;
    assert_eq!(
        counted, enqueued,
        "accepted + rejected + duplicates = handed over"
    );
    app.stop().await.expect("clean stop");
}

/// Publishes every payload on `topic` at QoS 1 from a fresh client (up to 1,000 in flight)
/// and returns once the broker has acknowledged them all. (`mosquitto_pub -l` at QoS 1 exits
/// before its last messages are out.)
async fn publish_qos1(broker: &TestBroker, topic: &str, payloads: impl Iterator<Item = Vec<u8>>) {
    let payloads: Vec<Vec<u8>> = payloads.collect();
    let mut options = MqttOptions::new(unique("load"), "127.0.0.1", broker.port);
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(options, payloads.len() + 1);
    // Each small PUBLISH goes out at once (no Nagle delay).
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let n = payloads.len();
    for payload in payloads {
        client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .expect("the request queue has room for every message");
    }
    let mut acked = 0;
    while acked < n {
        match tokio::time::timeout(SETTLE, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("test publisher, after {acked} of {n} acknowledged: {e}"),
            Err(elapsed) => panic!("test publisher: {acked} of {n} acknowledged, then {elapsed}"),
        }
    }
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}

fn disconnect_lines(body: &str) -> String {
    body.lines()
        .filter(|l| l.starts_with("iocd_mqtt_disconnects_total"))
        .collect::<Vec<_>>()
        .join("\n")
}

//! The embedded broker: `[mqtt] embedded = true` runs rumqttd inside iocd; external
//! publishers reach it like any broker. A taken port is a clear error naming the setting.

use std::net::TcpListener;
use std::process::Command;

use iocd_testkit as tk;

use crate::helpers::{free_port, spawn_app, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendors_publish_to_the_embedded_broker() {
    let port = free_port();
    let mut settings = iocd::config::Settings::default();
    settings.mqtt.embedded = true;
    settings.mqtt.embedded_listen = ([127, 0, 0, 1], port).into();
    settings.mqtt.client_id = unique("iocd");
    settings.mqtt.prefix = format!("{}/v1", unique("ioc"));
    settings.http.listen = ([127, 0, 0, 1], 0).into();
    let prefix = settings.mqtt.prefix.clone();
    let app = spawn_app(settings).await;
    let payload = tk::heartbeat(tk::SOC).id("x1");
    let published = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args([
            "-t",
            &format!("{prefix}/soc/hb"),
            "-m",
            &payload.to_string(),
        ])
        .status()
        .expect("mosquitto_pub runs");
    assert!(published.success());
    app.wait_metric(r#"iocd_events_total{source="soc",type="heartbeat"}"#, 1.0)
        .await;
    // One connection, kept: nothing iocd asks of the embedded broker makes it hang up.
    assert_eq!(app.metric("iocd_mqtt_connection_errors_total").await, 0.0);
    assert_eq!(app.metric("iocd_mqtt_connects_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_embedded_broker_port_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut settings = iocd::config::Settings::default();
    settings.mqtt.embedded = true;
    settings.mqtt.embedded_listen = ([127, 0, 0, 1], port).into();
    settings.http.listen = ([127, 0, 0, 1], 0).into();
    let err = iocd::app::App::build(settings, None)
        .await
        .err()
        .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&port.to_string()) && msg.contains("embedded_listen"),
        "{msg}"
    );
}

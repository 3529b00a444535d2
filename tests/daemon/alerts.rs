//! The alert engine end to end: transitions reach WebSocket clients as `alert` frames,
//! MQTT `{prefix}/alerts/{rule}`, `iocd_alerts_firing` and `GET /api/v1/alerts`, and fire
//! as time passes with no event arriving.

use futures_util::StreamExt as _;
use iocd_testkit as tk;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TIMEOUT, TestClient, broker::TestBroker, spawn_app, test_settings, wait_for};

async fn next_alert(
    ws: &mut (
             impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
             + Unpin
         ),
    pred: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("frame in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            let f: Value = serde_json::from_str(&t).unwrap();
            if f["type"] == "alert" && pred(&f["alert"]) {
                return f;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_feeds_and_overdue_dossiers_alert_everywhere_at_once() {
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.sources.silent_after = std::time::Duration::from_secs(2);
    settings.ws.push_interval = std::time::Duration::from_millis(100);
    let prefix = settings.mqtt.prefix.clone();
    let watcher = TestClient::connect(&broker, &[format!("{prefix}/alerts/#")]).await;
    let app = spawn_app(settings).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr))
        .await
        .unwrap();

    // Nothing arrives: after 2 s every feed is silent, with no event to trigger it.
    let frame = next_alert(&mut ws, |a| {
        a["id"] == "feed_silent:vc" && a["state"] == "firing"
    })
    .await;
    let alert = &frame["alert"];
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["subject"], json!({"kind": "source", "id": "vc"}));
    assert_eq!(alert["count"], 1);
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("hội nghị truyền hình"),
        "{alert}"
    );
    assert!(alert["since"].as_str().unwrap().ends_with("+07:00"));
    app.wait_metric(
        r#"iocd_alerts_firing{rule="feed_silent",severity="critical"}"#,
        3.0,
    )
    .await;

    // An overdue dossier and a heartbeat on vc.
    let client = TestClient::connect(&broker, &[]).await;
    for (id, due) in [("D1", -60), ("D2", -120)] {
        let ev = tk::received(id)
            .id(format!("e-{id}"))
            .ago(600)
            .agency("000.00.19.H42")
            .due(tk::at(due));
        client
            .publish(&format!("{prefix}/onestop/x"), ev.bytes())
            .await;
    }
    let hb = tk::heartbeat(tk::VC).id("hb1");
    client.publish(&format!("{prefix}/vc/hb"), hb.bytes()).await;

    let overdue = next_alert(&mut ws, |a| {
        a["id"] == "dossier_overdue:000.00.19.H42" && a["count"] == 2
    })
    .await;
    assert!(
        overdue["alert"]["summary"]
            .as_str()
            .unwrap()
            .contains("2 hồ sơ"),
        "{overdue}"
    );
    next_alert(&mut ws, |a| {
        a["id"] == "feed_silent:vc" && a["state"] == "resolved"
    })
    .await;

    let (status, body) = app.get("/api/v1/alerts").await;
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_str(&body).unwrap();
    let od = listed["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "dossier_overdue")
        .expect("listed");
    assert_eq!(od["members"], json!(["D2", "D1"]), "most overdue first");

    let (_, snap) = app.get("/api/v1/snapshot").await;
    let snap: Value = serde_json::from_str(&snap).unwrap();
    let ids: Vec<&str> = snap["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"dossier_overdue:000.00.19.H42") && !ids.contains(&"feed_silent:vc"),
        "{ids:?}"
    );

    wait_for("the MQTT alert transitions", || async {
        let got = watcher.received();
        got.iter()
            .any(|(t, p)| t == &format!("{prefix}/alerts/dossier_overdue") && p.starts_with(b"{"))
            && got.iter().any(|(t, p)| {
                t == &format!("{prefix}/alerts/feed_silent")
                    && serde_json::from_slice::<Value>(p)
                        .is_ok_and(|v| v["state"] == "resolved" && v["id"] == "feed_silent:vc")
            })
    })
    .await;
    app.wait_metric(
        r#"iocd_alerts_firing{rule="feed_silent",severity="critical"}"#,
        2.0,
    )
    .await;
    app.wait_metric(
        r#"iocd_alerts_firing{rule="dossier_overdue",severity="warning"}"#,
        1.0,
    )
    .await;
}

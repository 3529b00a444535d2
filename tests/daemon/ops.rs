//! Operator actions end to end: named tokens with roles, acknowledge / silence / expire over
//! HTTP with the 4xx answers of docs/openapi.json, the actions published on
//! `{prefix}/ops/actions` and applied by a second replica on the same broker, the history,
//! the audit trail, the metrics, and a restart that keeps it all.

use iocd::config::NamedToken;
use iocd::decode::action::Role;
use iocd_testkit as tk;
use serde_json::{Value, json};

use crate::helpers::openapi::assert_operation_answer;
use crate::helpers::{
    TestApp, TestClient, broker::TestBroker, poll_until, spawn_app_in, test_settings, unique,
};

const VIEWER: &str = "viewer-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";
const AGENCY: &str = "000.00.19.H42";
const ALERT: &str = "dossier_overdue:000.00.19.H42";

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let url = format!("http://{}{path}", app.addr);
    let client = reqwest::Client::new();
    let mut req = match method {
        "post" => client.post(url).body(body.to_string()),
        _ => client.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_operation_answer(method, path.split('?').next().unwrap(), status, &text);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, query: &[(&str, &str)]) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("http://{}{path}", app.addr))
        .query(query)
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_operation_answer("get", path, status, &text);
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The firing alert `id` as `GET /api/v1/alerts` lists it.
async fn alert(app: &TestApp, id: &str) -> Option<Value> {
    let list = get(app, "/api/v1/alerts", &[]).await;
    list["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id).cloned())
}

/// Waits until alert `id` on `app` satisfies `done`.
async fn wait_alert(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let found = poll_until(
        crate::helpers::TIMEOUT,
        || alert(app, id),
        |a| a.as_ref().is_some_and(&done),
    )
    .await;
    found.unwrap_or_else(|| panic!("alert {id} never reached the expected state"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_act_on_alerts_and_a_second_replica_follows() {
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.ws.push_interval = std::time::Duration::from_millis(100);
    settings.http.access_tokens = vec![VIEWER.into()];
    settings.http.tokens = vec![NamedToken {
        name: "Trực ban ca 1".into(),
        role: Role::Operator,
        token: OPERATOR.into(),
    }];
    let mut second = settings.clone();
    second.mqtt.client_id = unique("iocd-b");
    let prefix = settings.mqtt.prefix.clone();
    let data = tempfile::tempdir().unwrap();
    let watcher = TestClient::connect(&broker, &[format!("{prefix}/ops/actions")]).await;
    let a = spawn_app_in(settings.clone(), Some(data.path().to_path_buf())).await;
    let b = spawn_app_in(second, None).await;

    let client = TestClient::connect(&broker, &[]).await;
    let ev = tk::received("D1")
        .id("e-D1")
        .ago(600)
        .agency(AGENCY)
        .due(tk::at(-60));
    client
        .publish(&format!("{prefix}/onestop/x"), ev.bytes())
        .await;
    for app in [&a, &b] {
        let fired = wait_alert(app, ALERT, |_| true).await;
        assert_eq!(fired["handling"], "new");
    }

    // Who may act, and the clear refusals.
    let ack = json!({"comment": "Đã gọi Sở Tư pháp"});
    let path = format!("/api/v1/alerts/{ALERT}/acknowledge");
    assert_eq!(send(&a, "post", &path, None, ack.clone()).await.0, 401);
    assert_eq!(
        send(&a, "post", &path, Some(VIEWER), ack.clone()).await.0,
        403
    );
    let unknown = "/api/v1/alerts/dossier_overdue:NOPE/acknowledge";
    assert_eq!(
        send(&a, "post", unknown, Some(OPERATOR), ack.clone())
            .await
            .0,
        404
    );
    let malformed = "/api/v1/alerts/nope/acknowledge";
    assert_eq!(
        send(&a, "post", malformed, Some(OPERATOR), ack.clone())
            .await
            .0,
        400
    );
    let (status, answer) = send(&a, "post", &path, Some(OPERATOR), ack.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"]["by"]["name"], "Trực ban ca 1");
    assert_eq!(answer["action"]["action"], "acknowledge");
    assert_eq!(answer["published"], true);
    let (status, answer) = send(&a, "post", &path, Some(OPERATOR), ack.clone()).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("Trực ban ca 1"),
        "{answer}"
    );

    // Both replicas show it taken, the second through the broker alone.
    for app in [&a, &b] {
        let taken = wait_alert(app, ALERT, |x| x["handling"] == "acknowledged").await;
        assert_eq!(taken["acknowledged"]["by"], "Trực ban ca 1");
        assert_eq!(taken["acknowledged"]["comment"], "Đã gọi Sở Tư pháp");
        app.wait_metric(
            r#"iocd_alerts_unacknowledged{rule="dossier_overdue",severity="warning"}"#,
            0.0,
        )
        .await;
        app.wait_metric(r#"iocd_ops_actions_total{outcome="applied"}"#, 1.0)
            .await;
        app.wait_metric(
            r#"iocd_alert_acknowledge_seconds_count{rule="dossier_overdue",severity="warning"}"#,
            1.0,
        )
        .await;
    }
    // The replica that took it got its own publication back: a duplicate.
    a.wait_metric(r#"iocd_ops_actions_total{outcome="duplicate"}"#, 1.0)
        .await;
    let published = watcher.received();
    assert_eq!(published.len(), 1);
    let doc: Value = serde_json::from_slice(&published[0].1).unwrap();
    assert_eq!(doc["alert_id"], ALERT);

    // History and audit.
    let history = get(&a, &format!("/api/v1/alerts/{ALERT}/history"), &[]).await;
    let events: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["firing", "action"], "{history}");
    let audit = get(&a, "/api/v1/audit", &[("who", "Trực ban ca 1")]).await;
    assert_eq!(audit["total"], 1, "{audit}");
    let none = get(&a, "/api/v1/audit", &[("who", "someone else")]).await;
    assert_eq!(none["total"], 0);

    // A silence of the rule mutes it on both replicas, and ends early when expired.
    let silence = json!({"rule": "dossier_overdue", "duration_minutes": 60,
        "reason": "Bảo trì hệ thống một cửa"});
    assert_eq!(
        send(
            &a,
            "post",
            "/api/v1/silences",
            Some(VIEWER),
            silence.clone()
        )
        .await
        .0,
        403
    );
    let (status, answer) = send(&a, "post", "/api/v1/silences", Some(OPERATOR), silence).await;
    assert_eq!(status, 200, "{answer}");
    let silence_id = answer["action"]["action_id"].as_str().unwrap().to_owned();
    for app in [&a, &b] {
        let muted = wait_alert(app, ALERT, |x| x["handling"] == "silenced").await;
        assert_eq!(muted["silenced"]["reason"], "Bảo trì hệ thống một cửa");
    }
    let list = get(&b, "/api/v1/silences", &[]).await;
    assert_eq!(list["silences"][0]["active"], true, "{list}");
    let expire = format!("/api/v1/silences/{silence_id}/expire");
    let (status, _) = send(&a, "post", &expire, Some(OPERATOR), json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = send(&a, "post", &expire, Some(OPERATOR), json!({})).await;
    assert_eq!(status, 409, "an ended silence cannot end again");
    for app in [&a, &b] {
        wait_alert(app, ALERT, |x| x["handling"] == "acknowledged").await;
    }

    // A restart keeps the actions (checkpoint and log) and the history.
    a.stop().await.expect("clean stop");
    let a = spawn_app_in(settings, Some(data.path().to_path_buf())).await;
    let again = wait_alert(&a, ALERT, |x| x["handling"] == "acknowledged").await;
    assert_eq!(again["acknowledged"]["by"], "Trực ban ca 1");
    let audit = get(&a, "/api/v1/audit", &[]).await;
    assert_eq!(
        audit["total"], 3,
        "acknowledge, silence, unsilence: {audit}"
    );
    let history = get(&a, &format!("/api/v1/alerts/{ALERT}/history"), &[]).await;
    assert_eq!(history["entries"][0]["event"], "firing", "{history}");

    // Resolved by the data: it cannot be acknowledged any more, but may still get a note.
    let done = tk::resolved("D1").id("e-D1-done").ago(1);
    client
        .publish(&format!("{prefix}/onestop/x"), done.bytes())
        .await;
    poll_until(
        crate::helpers::TIMEOUT,
        || alert(&a, ALERT),
        Option::is_none,
    )
    .await;
    let unack = format!("/api/v1/alerts/{ALERT}/unacknowledge");
    let (status, answer) = send(&a, "post", &unack, Some(OPERATOR), json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("resolved"),
        "{answer}"
    );
    let comment_path = format!("/api/v1/alerts/{ALERT}/comment");
    let (status, _) = send(
        &a,
        "post",
        &comment_path,
        Some(OPERATOR),
        json!({"comment": "Đơn vị đã trả kết quả"}),
    )
    .await;
    assert_eq!(status, 200, "a note on a resolved alert is kept");
    let history = get(&a, &format!("/api/v1/alerts/{ALERT}/history"), &[]).await;
    let events: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"resolved"), "{history}");
    assert_eq!(events.last(), Some(&"action"), "{history}");
    a.stop().await.expect("clean stop");
    b.stop().await.expect("clean stop");
}

//! Alerts through a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`), with
//! the shipped `dashboards/alertmanager.yml` (its timings shortened, its webhook pointed at
//! a receiver in this test): what iocd posts arrives at the receiver with its labels and
//! both languages; an acknowledged alert is inhibited and stops repeating while another
//! keeps repeating; a resolved alert is notified as resolved.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iocd_testkit as tk;
use serde_json::{Value, json};

use crate::helpers::{
    TIMEOUT, TestClient, broker::TestBroker, free_port, spawn_app, test_settings,
};

const A: &str = "000.00.19.H42";
const B: &str = "000.00.20.H42";

/// Alertmanager's path (Debian names it `prometheus-alertmanager`).
fn alertmanager() -> Option<PathBuf> {
    crate::helpers::installed(
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    )
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The notifications the webhook received, in order.
type Received = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on a free port.
async fn webhook() -> (String, Received) {
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/iocd",
        axum::routing::post(move |body: axum::Json<Value>| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/iocd"), received)
}

/// The alerts (with the notification's status) the webhook got for `alert_id`.
fn notified(received: &Received, alert_id: &str) -> Vec<(String, Value)> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alert_id"] == alert_id)
        .map(|a| (a["status"].as_str().unwrap_or("").to_owned(), a))
        .collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < TIMEOUT, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A real Alertmanager with the shipped configuration, its timings shortened and its
/// webhook pointed at `hook`: the running process and its base URL.
async fn start_alertmanager(binary: &std::path::Path, hook: &str) -> (Running, String) {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards/alertmanager.yml"),
    )
    .unwrap();
    let config = shipped
        .replace("http://127.0.0.1:5001/iocd", hook)
        .replace("group_wait: 30s", "group_wait: 100ms")
        .replace("group_interval: 5m", "group_interval: 500ms")
        .replace("repeat_interval: 4h", "repeat_interval: 1s");
    assert_ne!(config, shipped, "the test shortens the shipped timings");
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("alertmanager.yml");
    std::fs::write(&file, config).unwrap();
    let port = free_port();
    let running = Running(
        Command::new(binary)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts"),
    );
    let am = format!("http://127.0.0.1:{port}");
    let ready = format!("{am}/-/ready");
    let start = Instant::now();
    while !reqwest::get(&ready)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(start.elapsed() < TIMEOUT, "alertmanager never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (running, am)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_and_an_acknowledged_one_stops_paging() {
    let Some(binary) = alertmanager() else {
        return;
    };
    let (hook, received) = webhook().await;
    let (_am, am) = start_alertmanager(&binary, &hook).await;

    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.ws.push_interval = Duration::from_millis(100);
    settings.alertmanager.url = Some(am.parse().unwrap());
    settings.alertmanager.resend = Duration::from_secs(1);
    settings.alertmanager.runbook_url = "https://ioc.example.gov.vn/runbook".into();
    settings.directory.directory = Arc::new(
        iocd::directory::Directory::parse(&crate::directory::small_province(), "t.toml")
            .expect("valid"),
    );
    let prefix = settings.mqtt.prefix.clone();
    let app = spawn_app(settings).await;
    let client = TestClient::connect(&broker, &[]).await;
    for (dossier, agency) in [("D1", A), ("D2", B)] {
        let ev = tk::received(dossier)
            .id(format!("e-{dossier}"))
            .ago(600)
            .agency(agency)
            .due(tk::at(-60));
        client
            .publish(&format!("{prefix}/onestop/x"), ev.bytes())
            .await;
    }
    let (a, b) = (
        format!("dossier_overdue:{A}"),
        format!("dossier_overdue:{B}"),
    );

    // Both arrive, with iocd's labels and both languages.
    wait_until("both alerts notified", || {
        !notified(&received, &a).is_empty() && !notified(&received, &b).is_empty()
    })
    .await;
    let (status, first) = notified(&received, &a).remove(0);
    assert_eq!(status, "firing");
    let labels = &first["labels"];
    assert_eq!(labels["alertname"], "dossier_overdue");
    assert_eq!(labels["severity"], "warning");
    assert_eq!(labels["subject_kind"], "agency");
    assert_eq!(labels["subject_id"], A);
    assert_eq!(labels["source"], "iocd");
    assert_eq!(labels["agency_name"], "Trung tâm Phục vụ hành chính công");
    let notes = &first["annotations"];
    assert!(
        notes["summary_vi"].as_str().unwrap().contains("hồ sơ"),
        "{notes}"
    );
    assert!(
        notes["summary_en"].as_str().unwrap().contains("dossier"),
        "{notes}"
    );
    assert_eq!(
        notes["runbook_url"],
        "https://ioc.example.gov.vn/runbook#dossier_overdue"
    );

    // Acknowledged in iocd: inhibited in Alertmanager, and no more notifications of it,
    // while the other one keeps repeating.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/v1/alerts/{a}/acknowledge", app.addr))
        .body(json!({"comment": "Đã gọi Trung tâm"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let query = format!(
        "{am}/api/v2/alerts?filter=alert_id%3D%22{a}%22&filter=alertname%3D%22dossier_overdue%22"
    );
    let start = Instant::now();
    loop {
        let alerts: Value = reqwest::get(&query).await.unwrap().json().await.unwrap();
        if alerts[0]["status"]["state"] == "suppressed"
            && alerts[0]["status"]["inhibitedBy"]
                .as_array()
                .is_some_and(|i| !i.is_empty())
        {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the acknowledged alert was never inhibited: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything already on its way has arrived once a group interval has passed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (a_before, b_before) = (notified(&received, &a).len(), notified(&received, &b).len());
    wait_until("the unacknowledged alert repeated twice", || {
        notified(&received, &b).len() >= b_before + 2
    })
    .await;
    assert_eq!(
        notified(&received, &a).len(),
        a_before,
        "no notification of the acknowledged alert while the other repeated"
    );
    let marker: Value = reqwest::get(format!(
        "{am}/api/v2/alerts?filter=alertname%3D%22iocd_handled%22"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(marker[0]["labels"]["alert_id"], a.as_str());
    assert_eq!(marker[0]["labels"]["handling"], "acknowledged");

    // Resolved in iocd: notified as resolved.
    let done = tk::resolved("D2").id("e-D2-done").ago(1);
    client
        .publish(&format!("{prefix}/onestop/x"), done.bytes())
        .await;
    wait_until("the resolved alert notified as resolved", || {
        notified(&received, &b)
            .iter()
            .any(|(status, _)| status == "resolved")
    })
    .await;
    app.stop().await.expect("clean stop");
}

/// Two replicas (`[ha] replica` a and b) on one broker post the same alerts to one
/// Alertmanager: it holds each alert once (the label sets are identical; the replica is
/// not a label) and notifies once per group, not once per replica. On MQTT each replica
/// publishes the alert with its own `replica`, and the same `since`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_page_once_and_publish_the_same_since() {
    let Some(binary) = alertmanager() else {
        return;
    };
    let (hook, received) = webhook().await;
    let (_am, am) = start_alertmanager(&binary, &hook).await;
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.ws.push_interval = Duration::from_millis(100);
    settings.alertmanager.url = Some(am.parse().unwrap());
    settings.alertmanager.resend = Duration::from_secs(1);
    settings.ha.replica = "a".into();
    let prefix = settings.mqtt.prefix.clone();
    let mut other = settings.clone();
    other.mqtt.client_id = crate::helpers::unique("iocd-b");
    other.ha.replica = "b".into();
    let watcher = TestClient::connect(&broker, &[format!("{prefix}/alerts/#")]).await;
    let a_app = spawn_app(settings).await;
    // B's session on the broker exists, then B stops: the event comes while it is down.
    spawn_app(other.clone())
        .await
        .stop()
        .await
        .expect("clean stop");
    let client = TestClient::connect(&broker, &[]).await;
    let ev = tk::received("D1")
        .id("e-D1")
        .ago(600)
        .agency(A)
        .due(tk::at(-60));
    client
        .publish(&format!("{prefix}/onestop/x"), ev.bytes())
        .await;
    let id = format!("dossier_overdue:{A}");
    // B starts again later: it fires the alert later, and takes A's `since`.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b_app = spawn_app(other).await;
    let since = |app: &crate::helpers::TestApp| {
        let url = format!("http://{}/api/v1/alerts", app.addr);
        let id = id.clone();
        async move {
            let (_, v) = crate::helpers::http_get_json(&url).await.unwrap();
            v["alerts"]
                .as_array()
                .and_then(|l| l.iter().find(|x| x["id"] == id.as_str()))
                .map(|x| x["since"].clone())
        }
    };
    let start = Instant::now();
    loop {
        let (sa, sb) = (since(&a_app).await, since(&b_app).await);
        if sa.is_some() && sa == sb {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "since never agreed: a {sa:?}, b {sb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both published it on MQTT, each naming itself.
    wait_until("both replicas published the alert", || {
        let names: std::collections::BTreeSet<String> = watcher
            .received()
            .iter()
            .filter_map(|(_, p)| serde_json::from_slice::<Value>(p).ok())
            .filter(|v| v["id"] == id.as_str())
            .filter_map(|v| v["replica"].as_str().map(str::to_owned))
            .collect();
        names.len() == 2
    })
    .await;

    // Alertmanager holds it once, and has notified it (with repeats) once per
    // notification, never twice in one.
    wait_until("the alert notified", || {
        !notified(&received, &id).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let held: Value = reqwest::get(format!(
        "{am}/api/v2/alerts?filter=alertname%3D%22dossier_overdue%22"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(held.as_array().map(Vec::len), Some(1), "{held}");
    for n in received.lock().unwrap().iter() {
        let of_it = n["alerts"].as_array().map_or(0, |l| {
            l.iter()
                .filter(|a| a["labels"]["alert_id"] == id.as_str())
                .count()
        });
        assert!(of_it <= 1, "one notification lists the alert once: {n}");
    }
    b_app.stop().await.expect("clean stop");
    a_app.stop().await.expect("clean stop");
}

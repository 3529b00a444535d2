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

/// Issue 11, point 4: 20,000 overdue dossiers, each of its own agency, against the real
/// binary. At most `max_subjects_per_rule` (200) `dossier_overdue` alerts plus one roll-up
/// counting the rest; the snapshot stays under 256 KB; `/api/v1/alerts` pages; the log is
/// rate limited; SIGTERM still stops the daemon cleanly within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_overdue_agencies_gives_bounded_alerts_snapshot_and_log() {
    use crate::helpers::process::{Reaper, iocd, stop_with};
    use crate::helpers::{free_port, http_get_json, unique};

    const DOSSIERS: usize = 20_000;
    let broker = TestBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/v1", unique("ioc"));
    let config = dir.path().join("iocd.toml");
    std::fs::write(
        &config,
        format!(
            // Every agency its own (no folding into `other`), so 20,000 subjects match.
            // One alert per agency from one dossier (as the tests' settings), so that the
            // flood matches 20,000 subjects.
            "[mqtt]\nclient_id = \"{}\"\nprefix = \"{prefix}\"\n\
             [state]\nagency_label_limit = 100000\n{}",
            unique("iocd"),
            crate::helpers::process::TEST_ALERTS
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let port = free_port();
    let started = std::time::Instant::now();
    let mut child = Reaper(
        iocd()
            .args(["run", "--config"])
            .arg(&config)
            .args(["--mqtt", &broker.url(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for("iocd to be ready", || {
        let url = format!("{base}/readyz");
        async move { http_get_json(&url).await.is_ok_and(|(s, _)| s == 200) }
    })
    .await;

    let client = TestClient::connect(&broker, &[]).await;
    for i in 0..DOSSIERS {
        let ev = tk::received(&format!("flood-{i}"))
            .id(format!("e-flood-{i}"))
            .ago(600)
            .agency(&format!("FLOOD.{i:05}"))
            .due(tk::at(-60));
        client
            .publish(&format!("{prefix}/onestop/x"), ev.bytes())
            .await;
    }
    // Every dossier counted as overdue, and the alerts settled: 200 agencies + the roll-up.
    let limit = std::time::Duration::from_secs(120);
    crate::helpers::wait_for_within("every dossier overdue and alerted", limit, || {
        let base = base.clone();
        async move {
            let Ok((_, snap)) = http_get_json(&format!("{base}/api/v1/snapshot")).await else {
                return false;
            };
            let Ok((_, alerts)) = http_get_json(&format!("{base}/api/v1/alerts?limit=1000")).await
            else {
                return false;
            };
            let overdue = alerts["alerts"].as_array().map_or(0, |a| {
                a.iter().filter(|a| a["rule"] == "dossier_overdue").count()
            });
            let others = alerts["alerts"].as_array().and_then(|a| {
                a.iter()
                    .find(|a| a["id"] == "dossier_overdue:+others")
                    .map(|a| a["count"].clone())
            });
            snap["onestop"]["overdue"] == DOSSIERS
                && overdue == 201
                && others == Some(json!(DOSSIERS - 200))
        }
    })
    .await;

    let (status, body) = crate::helpers::http_get(&format!("{base}/api/v1/snapshot"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.len() < 256 * 1024, "snapshot of {} bytes", body.len());
    let snap: Value = serde_json::from_str(&body).unwrap();
    assert!(
        snap["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "dossier_overdue:+others"),
        "the roll-up is in the snapshot"
    );

    // Page through `/api/v1/alerts`: every alert once, 201 of them `dossier_overdue` (the
    // others are the feeds that sent nothing, silent since the start).
    let mut seen = Vec::new();
    let mut total = 0;
    for offset in (0..).step_by(50) {
        let (status, page) =
            http_get_json(&format!("{base}/api/v1/alerts?limit=50&offset={offset}"))
                .await
                .unwrap();
        assert_eq!(status, 200);
        total = page["total"].as_u64().unwrap();
        let items = page["alerts"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 50);
        seen.extend(items);
    }
    assert_eq!(seen.len() as u64, total);
    let mut ids: Vec<&str> = seen.iter().map(|a| a["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), seen.len(), "no alert on two pages");
    let overdue: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| id.starts_with("dossier_overdue:"))
        .collect();
    assert_eq!(
        overdue.len(),
        201,
        "others: {:?}",
        ids.len() - overdue.len()
    );
    assert!(
        ids.iter()
            .all(|id| id.starts_with("dossier_overdue:") || id.starts_with("feed_silent:")),
        "{ids:?}"
    );
    let others = seen
        .iter()
        .find(|a| a["id"] == "dossier_overdue:+others")
        .expect("a roll-up alert");
    assert_eq!(
        others["subject"],
        json!({"kind": "agency", "id": "+others"})
    );
    assert_eq!(others["count"], DOSSIERS - 200);
    assert_eq!(
        others["params"],
        json!({"count": DOSSIERS - 200, "others": true})
    );
    assert_eq!(
        others["summary"],
        format!(
            "Và {} đơn vị khác có hồ sơ đang xử lý quá hạn.",
            DOSSIERS - 200
        )
    );
    assert_eq!(others["members"].as_array().unwrap().len(), 100);
    let (status, _) = http_get_json(&format!("{base}/api/v1/alerts?limit=1001"))
        .await
        .unwrap();
    assert_eq!(status, 400);

    let (status, took) = stop_with(&mut child.0, "-TERM", std::time::Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let ran = started.elapsed();
    let logged = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let firing: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("Alert firing"))
        .collect();
    // At most 20 lines per rule and 10 s (pipeline.rs, ALERT_LOG_BURST and _PERIOD_SECS),
    // however long the flood took to arrive here; 20,000 without the limit.
    let rules: std::collections::BTreeSet<&str> = firing
        .iter()
        .filter_map(|l| l.split("alert=").nth(1))
        .filter_map(|a| a.split(':').next())
        .collect();
    let bound = 20 * rules.len() * (ran.as_secs() as usize / 10 + 2);
    assert!(
        firing.len() <= bound,
        "{} alert lines for {} rules in {ran:?} (bound {bound}): the log is rate limited per rule",
        firing.len(),
        rules.len()
    );
}

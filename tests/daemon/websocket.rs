//! The WebSocket push and the read API with a real WebSocket client (tokio-tungstenite):
//! snapshot on connect, `seq`, updates, `subscribe`, slow-client isolation, client limits,
//! tokens and origins, and the dossier listing.

use futures_util::{SinkExt as _, StreamExt as _};
use iocd_testkit as tk;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::{TIMEOUT, TestApp, TestClient, broker::TestBroker, spawn_app, test_settings};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws{query}", app.addr))
        .await
        .expect("ws connects");
    ws
}

/// The next text frame as JSON (skipping control frames).
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("JSON frame");
        }
    }
}

/// Frames until one satisfies `pred`; checks that `seq` grows by one each time.
async fn until(ws: &mut Ws, last_seq: &mut u64, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let f = next(ws).await;
        let seq = f["seq"].as_u64().expect("seq");
        assert_eq!(seq, *last_seq + 1, "seq grows by one per frame: {f}");
        *last_seq = seq;
        if pred(&f) {
            return f;
        }
    }
}

/// `received` of `dossier` now, at agency `A`, without a deadline.
fn received(id: &str, dossier: &str) -> Vec<u8> {
    tk::received(dossier).id(id).bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_a_snapshot_then_updates_with_seq_and_can_subscribe() {
    let broker = TestBroker::start();
    let app = spawn_app(test_settings(&broker)).await;
    let mut ws = connect(&app, "").await;
    let first = next(&mut ws).await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["seq"], 1);
    for part in ["onestop", "vc", "soc", "alerts", "sources", "at"] {
        assert!(first.get(part).is_some(), "{part} in {first}");
    }
    let mut seq = 1;
    let client = TestClient::connect(&broker, &[]).await;
    client
        .publish(&format!("{}/onestop/x", app.prefix), received("w1", "D1"))
        .await;
    let update = until(&mut ws, &mut seq, |f| {
        f["onestop"]["today"]["received"] == 1
    })
    .await;
    assert_eq!(update["type"], "snapshot");
    assert_eq!(update["onestop"]["today"]["online_ratio"], 1.0);
    assert_eq!(update["onestop"]["open"]["in_progress"], 1);

    ws.send(Message::text(r#"{"type":"subscribe","topics":["vc"]}"#))
        .await
        .unwrap();
    let only_vc = until(&mut ws, &mut seq, |f| f.get("onestop").is_none()).await;
    assert!(only_vc.get("vc").is_some() && only_vc.get("sources").is_some());
    assert!(only_vc.get("soc").is_none() && only_vc.get("alerts").is_none());

    ws.send(Message::text(
        r#"{"type":"subscribe","topics":["weather"]}"#,
    ))
    .await
    .unwrap();
    let err = until(&mut ws, &mut seq, |f| f["type"] == "error").await;
    assert!(err["error"].as_str().unwrap().contains("weather"));

    // The API serves the same document.
    let (status, body) = app.get("/api/v1/snapshot").await;
    assert_eq!(status, 200);
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["type"], "snapshot");
    assert_eq!(api["onestop"]["today"]["received"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_neither_others_nor_ingestion() {
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.ws.push_interval = std::time::Duration::from_millis(50);
    let app = spawn_app(settings).await;
    // Connected, and never read again.
    let _stalled = connect(&app, "").await;
    let mut live = connect(&app, "").await;
    let mut seq = 0;
    let client = TestClient::connect(&broker, &[]).await;
    let topic = format!("{}/onestop/x", app.prefix);
    for round in 1..=5u64 {
        for i in 0..400 {
            client
                .publish(
                    &topic,
                    received(&format!("r{round}-{i}"), &format!("D{round}-{i}")),
                )
                .await;
        }
        let want = round * 400;
        app.wait_metric(
            r#"iocd_events_total{source="onestop",type="received"}"#,
            want as f64,
        )
        .await;
        until(&mut live, &mut seq, |f| {
            f["onestop"]["today"]["received"] == want
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_beyond_max_clients_get_503() {
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.ws.max_clients = 2;
    let app = spawn_app(settings).await;
    let mut a = connect(&app, "").await;
    let _b = connect(&app, "").await;
    next(&mut a).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    drop(a);
    // The slot comes back once the client is gone.
    crate::helpers::wait_for("a slot to free up", || async {
        tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr))
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_origins_are_enforced() {
    const TOKEN: &str = "wall-0123456789abcdef";
    let broker = TestBroker::start();
    let mut settings = test_settings(&broker);
    settings.http.access_tokens = vec![TOKEN.into()];
    settings.http.allowed_origins = vec!["https://wall.example".into()];
    let app = spawn_app(settings).await;
    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Ok(()) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    };
    let url = format!("ws://{}/ws", app.addr);
    assert_eq!(
        status(tokio_tungstenite::connect_async(&url).await.map(|_| ())),
        401
    );
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(format!("{url}?token=wrong-0123456789"))
                .await
                .map(|_| ())
        ),
        401
    );
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(format!("{url}?token={TOKEN}"))
                .await
                .map(|_| ())
        ),
        101
    );
    let with_origin = |origin: &'static str| {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req
    };
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(with_origin("https://evil.example"))
                .await
                .map(|_| ())
        ),
        403
    );
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(with_origin("https://wall.example"))
                .await
                .map(|_| ())
        ),
        101
    );
    let own: &'static str = Box::leak(format!("http://{}", app.addr).into_boxed_str());
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(with_origin(own))
                .await
                .map(|_| ())
        ),
        101
    );

    assert_eq!(app.get("/api/v1/snapshot").await.0, 401);
    assert_eq!(
        app.get(&format!("/api/v1/snapshot?token={TOKEN}")).await.0,
        200
    );
    assert_eq!(app.get("/api/v1/onestop/dossiers").await.0, 401);
    // The scheme of `Authorization` is case-insensitive (RFC 7235 §2.1).
    let http = reqwest::Client::new();
    let snapshot = format!("http://{}/api/v1/snapshot", app.addr);
    for (credentials, want) in [
        (format!("Bearer {TOKEN}"), 200),
        (format!("bearer {TOKEN}"), 200),
        (format!("BEARER {TOKEN}"), 200),
        ("bearer wrong-0123456789".to_owned(), 401),
        (format!("Basic {TOKEN}"), 401),
    ] {
        let resp = http
            .get(&snapshot)
            .header("Authorization", &credentials)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{credentials}");
    }
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    assert_eq!(
        app.get("/metrics").await.0,
        200,
        "metrics stay open unless protect_metrics"
    );
    app.wait_metric(r#"iocd_ws_rejected_total{reason="origin"}"#, 1.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dossier_api_lists_the_most_urgent_first_and_refuses_bad_parameters() {
    let broker = TestBroker::start();
    let app = spawn_app(test_settings(&broker)).await;
    let client = TestClient::connect(&broker, &[]).await;
    let topic = format!("{}/onestop/x", app.prefix);
    for (id, agency, due) in [
        ("D1", "A", -3600),
        ("D2", "A", -7200),
        ("D3", "B", 3600),
        ("D4", "A", 86_400 * 5),
    ] {
        let ev = tk::received(id)
            .id(format!("e-{id}"))
            .ago(60)
            .agency(agency)
            .channel("direct")
            .due(tk::at(due));
        client.publish(&topic, ev.bytes()).await;
    }
    app.wait_metric(
        r#"iocd_events_total{source="onestop",type="received"}"#,
        4.0,
    )
    .await;
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.get(&format!("/api/v1/onestop/dossiers{q}")).await;
            (status, serde_json::from_str::<Value>(&body).unwrap())
        }
    };
    let (status, all) = list("").await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], 4);
    let ids: Vec<&str> = all["dossiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dossier_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["D2", "D1", "D3", "D4"]);
    let (_, overdue) = list("?status=overdue&agency=A&limit=1").await;
    assert_eq!(overdue["total"], 2);
    assert_eq!(overdue["dossiers"][0]["dossier_id"], "D2");
    assert_eq!(overdue["dossiers"].as_array().unwrap().len(), 1);
    let d = &overdue["dossiers"][0];
    for key in [
        "agency",
        "status",
        "channel",
        "procedure",
        "received_at",
        "due_at",
        "last_event_at",
    ] {
        assert!(d.get(key).is_some(), "{key}");
    }
    let (_, soon) = list("?status=due_soon").await;
    assert_eq!(soon["total"], 1);
    for bad in ["?status=lost", "?limit=1001", "?limit=ten", "?limit=-1"] {
        let (status, body) = list(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}"
        );
    }
}

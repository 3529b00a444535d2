//! Mapped inputs and HTTP push (issue 13), end to end with a real broker: national sync
//! records pushed over HTTP and published on a mapped MQTT topic give the same state,
//! figures and alerts as the same dossiers sent as contract events; a record that cannot be
//! mapped is dead-lettered as `mapping_failed`; tokens have scopes; a poller fetches pages
//! from a local HTTP server and keeps its watermark across a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iocd::config::Settings;
use serde_json::{Value, json};

use crate::helpers::openapi::assert_operation_answer;
use crate::helpers::{
    TestApp, TestClient, broker::TestBroker, http_get_json, poll_until, spawn_app, test_settings,
};

const LIMIT: Duration = Duration::from_secs(20);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/national-sync").join(name)).unwrap()
}

/// Settings with the example agency directory, and the shipped mappings when `mapped`.
fn settings(broker: &TestBroker, mapped: bool) -> Settings {
    let mut s = test_settings(broker);
    let file = root().join("config/agencies-example.toml");
    s.directory.directory = Arc::new(iocd::directory::Directory::read(&file).unwrap());
    s.directory.file = Some(file);
    if mapped {
        s.mappings.dir = Some(root().join("config/mappings"));
        s.mappings.mappings = Arc::new(
            iocd::decode::mapping::Mappings::read_dir(
                &root().join("config/mappings"),
                &s.mqtt.prefix,
            )
            .unwrap(),
        );
    }
    s
}

/// `POST path` with `body`; the answer is checked against docs/openapi.json.
async fn post(app: &TestApp, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}{path}", app.addr))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_operation_answer("post", path.split('?').next().unwrap(), status, &text);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn json(app: &TestApp, path: &str) -> Value {
    http_get_json(&format!("http://{}{path}", app.addr))
        .await
        .unwrap()
        .1
}

/// What two daemons fed the same dossiers must agree on: the one-stop figures of the
/// snapshot, every dossier as the API lists it, the alerts, the agencies with their period
/// tables.
async fn figures(app: &TestApp) -> Value {
    let snapshot = json(app, "/api/v1/snapshot").await;
    let mut dossiers = json(app, "/api/v1/onestop/dossiers?limit=100").await;
    dossiers.as_object_mut().unwrap().remove("as_of");
    let alerts: Vec<Value> = json(app, "/api/v1/alerts").await["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["id"], a["severity"], a["count"], a["summary"]]))
        .collect();
    let mut agencies = json(app, "/api/v1/agencies?limit=500").await;
    agencies.as_object_mut().unwrap().remove("as_of");
    let mut scorecard = json(app, "/api/v1/scorecard?period=year").await;
    scorecard.as_object_mut().unwrap().remove("as_of");
    json!({
        "onestop": snapshot["onestop"],
        "dossiers": dossiers,
        "alerts": alerts,
        "agencies": agencies,
        "scorecard": scorecard,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_sync_records_give_the_state_the_same_dossiers_give_as_contract_events() {
    let broker = TestBroker::start();
    let mapped = spawn_app(settings(&broker, true)).await;
    let contract = spawn_app(settings(&broker, false)).await;
    let watcher = TestClient::connect(&broker, &[format!("{}/deadletter/#", mapped.prefix)]).await;

    // The batch over HTTP: 13 events, the withdrawal request skipped, and the payment online
    // of one dossier, which its 4 records each report (the first accepted, 3 duplicates).
    let (status, answer) = post(
        &mapped,
        "/api/v1/ingest/mapped/national-sync",
        fixture("batch.json"),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            &answer["accepted"],
            &answer["duplicate"],
            &answer["skipped"],
            &answer["rejected"]
        ),
        (&json!(14), &json!(3), &json!(1), &json!(0)),
        "{answer}"
    );
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 18);
    // The payment's items, told apart from their records' own by their type: the first
    // accepted, the repeats duplicates of it.
    let paid: Vec<&Value> = items.iter().filter(|i| i["type"] == "paid").collect();
    let statuses: Vec<&Value> = paid.iter().map(|i| &i["status"]).collect();
    assert_eq!(
        statuses,
        [
            &json!("accepted"),
            &json!("duplicate"),
            &json!("duplicate"),
            &json!("duplicate")
        ],
        "{answer}"
    );
    assert!(paid.iter().all(|i| i["event_id"] == paid[0]["event_id"]));
    assert_eq!(items[2]["type"], "submitted", "{answer}");
    assert!(
        items[0]["event_id"]
            .as_str()
            .unwrap()
            .starts_with("national-sync-")
    );
    // The single record over MQTT, on a topic the mapping names.
    let publisher = TestClient::connect(&broker, &[]).await;
    publisher
        .publish("lgsp/lgsp-phutho/hoso/X01.05", fixture("single.json"))
        .await;
    // The same dossiers as contract events, pushed as NDJSON.
    let (status, answer) = post(
        &contract,
        "/api/v1/ingest/onestop",
        fixture("contract.jsonl"),
        &[("content-type", "application/x-ndjson")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 15, "{answer}");

    mapped
        .wait_metric(
            r#"iocd_events_total{source="onestop",type="received"}"#,
            5.0,
        )
        .await;
    contract
        .wait_metric(
            r#"iocd_events_total{source="onestop",type="received"}"#,
            5.0,
        )
        .await;
    assert_eq!(
        mapped
            .metric(r#"iocd_mapping_records_total{mapping="national-sync",outcome="skipped"}"#)
            .await,
        1.0
    );
    assert_eq!(
        mapped
            .metric(r#"iocd_ingest_items_total{transport="http",outcome="accepted"}"#)
            .await,
        14.0
    );
    assert_eq!(
        mapped
            .metric(r#"iocd_ingest_items_total{transport="mqtt",outcome="accepted"}"#)
            .await,
        1.0
    );
    // The same figures, dossiers, alerts and agency tables (after a tick of both).
    let same = poll_until(
        LIMIT,
        || async { (figures(&mapped).await, figures(&contract).await) },
        |(a, b)| a == b && a["alerts"].as_array().is_some_and(|x| !x.is_empty()),
    )
    .await;
    assert_eq!(same.0, same.1);
    // The 766 facts came through the mapping: fees due on 2 dossiers (a third's fees are all
    // 0, the fourth has no fee list), 1 of them paid online.
    let province = &same.0["scorecard"]["province"]["indicators"];
    assert_eq!(
        (
            &province["3.6"]["numerator"],
            &province["3.6"]["denominator"]
        ),
        (&json!(1), &json!(2)),
        "{province}"
    );
    // Reuse known on 3 received dossiers, 1 of them reused; of the 2 resolved, 1 digitised
    // with an electronic result.
    let ratio = |id: &str| {
        (
            province[id]["numerator"].clone(),
            province[id]["denominator"].clone(),
        )
    };
    assert_eq!(ratio("4.3"), (json!(1), json!(3)), "{province}");
    assert_eq!(ratio("4.2"), (json!(1), json!(2)), "{province}");
    assert!(
        !same.0["alerts"].as_array().unwrap().is_empty(),
        "the late dossier's alert is among what is compared: {}",
        same.0["alerts"]
    );

    // Sent again, every event is a duplicate.
    let (_, again) = post(
        &mapped,
        "/api/v1/ingest/mapped/national-sync",
        fixture("batch.json"),
        &[],
    )
    .await;
    assert_eq!(
        (&again["duplicate"], &again["accepted"]),
        (&json!(17), &json!(0)),
        "{again}"
    );

    // A record the mapping cannot map: rejected per record, counted, dead-lettered with the
    // route as its topic and the mapping, record and field in its detail.
    let mut bad: Value = serde_json::from_slice(&fixture("single.json")).unwrap();
    bad["NgayTiepNhan"] = "02/12/2026".into();
    bad["MaHoSo"] = "X01.05-261202-0010".into();
    let (status, answer) = post(
        &mapped,
        "/api/v1/ingest/mapped/national-sync",
        bad.to_string().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["items"][0]["status"], "rejected", "{answer}");
    assert_eq!(answer["items"][0]["reason"], "mapping_failed");
    mapped
        .wait_metric(
            r#"iocd_events_rejected_total{source="onestop",reason="mapping_failed"}"#,
            1.0,
        )
        .await;
    let letter = poll_until(LIMIT, || async { watcher.received() }, |r| !r.is_empty()).await;
    let letter: Value = serde_json::from_slice(&letter[0].1).unwrap();
    assert_eq!(letter["reason"], "mapping_failed");
    assert_eq!(letter["topic"], "/api/v1/ingest/mapped/national-sync");
    assert!(
        letter["detail"]
            .as_str()
            .unwrap()
            .contains("mapping national-sync, record 0, /NgayTiepNhan"),
        "{letter}"
    );
    // Not JSON at all: invalid_json, not mapping_failed (the contract's precedence).
    let (_, answer) = post(
        &mapped,
        "/api/v1/ingest/mapped/national-sync",
        b"{oops".to_vec(),
        &[],
    )
    .await;
    assert_eq!(answer["items"][0]["reason"], "invalid_json", "{answer}");
    // /readyz lists the mappings loaded.
    let ready = json(&mapped, "/readyz").await;
    assert!(
        ready["mappings"]["loaded"]
            .as_array()
            .unwrap()
            .contains(&json!("national-sync")),
        "{ready}"
    );
    mapped.stop().await.unwrap();
    contract.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tokens_have_their_own_scope_and_bodies_their_limit() {
    let broker = TestBroker::start();
    let mut s = settings(&broker, true);
    let wall = "wall-token-0123456789";
    let feed = "feed-token-0123456789";
    s.http.access_tokens = vec![wall.to_owned().into()];
    s.http.ingest_tokens = vec![feed.to_owned().into()];
    s.http.ingest_max_body_bytes = 4096;
    let app = spawn_app(s).await;
    let event = iocd_testkit::received("scope-1").bytes();
    let bearer = |t: &str| format!("Bearer {t}");
    let (status, _) = post(&app, "/api/v1/ingest/onestop", event.clone(), &[]).await;
    assert_eq!(status, 401, "no token");
    let wall_auth = bearer(wall);
    let (status, _) = post(
        &app,
        "/api/v1/ingest/onestop",
        event.clone(),
        &[("authorization", &wall_auth)],
    )
    .await;
    assert_eq!(status, 401, "a wall token cannot ingest");
    let feed_auth = bearer(feed);
    let (status, answer) = post(
        &app,
        "/api/v1/ingest/onestop",
        event.clone(),
        &[("authorization", &feed_auth)],
    )
    .await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    // An ingest token cannot read.
    let resp = reqwest::Client::new()
        .get(format!("http://{}/api/v1/snapshot", app.addr))
        .header("authorization", &feed_auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Too large: 413; an unknown source or mapping: 404.
    let (status, _) = post(
        &app,
        "/api/v1/ingest/onestop",
        vec![b' '; 5000],
        &[("authorization", &feed_auth)],
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = post(
        &app,
        "/api/v1/ingest/crm",
        event.clone(),
        &[("authorization", &feed_auth)],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &app,
        "/api/v1/ingest/mapped/nothing",
        event,
        &[("authorization", &feed_auth)],
    )
    .await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}

/// A vendor API for the poller: records by `NgayCapNhat`, `tu` (since, inclusive) and
/// `trang` (page), two per page; counts its requests.
#[derive(Clone, Default)]
struct VendorApi {
    records: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl VendorApi {
    async fn serve(self) -> u16 {
        use axum::extract::{Query, State};
        use std::collections::HashMap;
        async fn page(
            State(api): State<VendorApi>,
            Query(q): Query<HashMap<String, String>>,
        ) -> axum::Json<Value> {
            api.requests
                .lock()
                .unwrap()
                .push(format!("tu={} trang={}", q["tu"], q["trang"]));
            let since = q["tu"].clone();
            let page: usize = q["trang"].parse().unwrap();
            let mut matching: Vec<Value> = api
                .records
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r["NgayCapNhat"].as_str().unwrap() >= since.as_str())
                .cloned()
                .collect();
            matching.sort_by(|a, b| a["NgayCapNhat"].as_str().cmp(&b["NgayCapNhat"].as_str()));
            let data: Vec<Value> = matching.into_iter().skip((page - 1) * 2).take(2).collect();
            axum::Json(json!({ "data": data }))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/hoso", axum::routing::get(page))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }
}

fn poll_mapping(dir: &Path, port: u16) {
    let shipped =
        std::fs::read_to_string(root().join("config/mappings/national-sync.toml")).unwrap();
    let polled = shipped
        .replace("name = \"national-sync\"", "name = \"vendor-poll\"")
        .replace(
            "[input]\nhttp = true\nmqtt = [\"lgsp/+/hoso/#\"]",
            &format!(
                "[input.poll]\nurl = \"http://127.0.0.1:{port}/hoso?tu={{since}}&trang={{page}}\"\nevery_secs = 1\nwatermark = \"/NgayCapNhat\"\nsince = \"20260101000000\"\npage_size = 2"
            ),
        );
    assert!(polled.contains("[input.poll]"));
    std::fs::write(dir.join("vendor-poll.toml"), polled).unwrap();
}

async fn spawn_durable(broker: &TestBroker, mappings: &Path, data: &Path, prefix: &str) -> TestApp {
    let mut s = settings(broker, false);
    s.mqtt.prefix = prefix.to_owned();
    s.mappings.dir = Some(mappings.to_owned());
    s.mappings.mappings =
        Arc::new(iocd::decode::mapping::Mappings::read_dir(mappings, prefix).unwrap());
    crate::helpers::spawn_app_in(s, Some(data.to_owned())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_takes_pages_since_its_watermark_and_keeps_it_across_a_restart() {
    let broker = TestBroker::start();
    let api = VendorApi::default();
    let batch: Value = serde_json::from_slice(&fixture("batch.json")).unwrap();
    let records = batch["data"].as_array().unwrap().clone();
    // The first 9 records are there before the first poll.
    api.records
        .lock()
        .unwrap()
        .extend(records[..9].iter().cloned());
    let port = api.clone().serve().await;
    let mappings = tempfile::tempdir().unwrap();
    poll_mapping(mappings.path(), port);
    let data = tempfile::tempdir().unwrap();
    let prefix = test_settings(&broker).mqtt.prefix;

    let app = Box::pin(spawn_durable(
        &broker,
        mappings.path(),
        data.path(),
        &prefix,
    ))
    .await;
    let taken = r#"iocd_mapping_records_total{mapping="vendor-poll",outcome="event"}"#;
    // 9 status events, and the payment one dossier's 4 records report (later polls take the
    // record at the watermark again: more, as duplicates).
    poll_until(LIMIT, || app.metric(taken), |n| *n >= 13.0).await;
    let watermark = data.path().join("poll/vendor-poll.json");
    let saved = poll_until(
        LIMIT,
        || async { std::fs::read_to_string(&watermark).unwrap_or_default() },
        |s| s.contains(records[8]["NgayCapNhat"].as_str().unwrap()),
    )
    .await;
    assert!(saved.contains("\"since\""), "{saved}");
    assert!(
        app.metric(r#"iocd_poll_last_success_timestamp_seconds{mapping="vendor-poll"}"#)
            .await
            > 0.0
    );
    // The 9 records, and the online payment of the dossier 4 of them report (3 duplicates).
    let accepted = r#"iocd_ingest_items_total{transport="poll",outcome="accepted"}"#;
    assert_eq!(app.metric(accepted).await, 10.0);
    app.stop().await.unwrap();

    // The rest arrive while iocd is stopped; after the restart, the poll starts from the
    // saved watermark: the new records are taken once, the old ones are not counted again.
    api.records
        .lock()
        .unwrap()
        .extend(records[9..].iter().cloned());
    api.requests.lock().unwrap().clear();
    let app = Box::pin(spawn_durable(
        &broker,
        mappings.path(),
        data.path(),
        &prefix,
    ))
    .await;
    app.wait_metric(
        r#"iocd_events_total{source="onestop",type="cancelled"}"#,
        1.0,
    )
    .await;
    let first = api.requests.lock().unwrap().first().cloned().unwrap();
    assert_eq!(
        first,
        format!("tu={} trang=1", records[8]["NgayCapNhat"].as_str().unwrap()),
        "restarted from the saved watermark"
    );
    // 13 events in all (the withdrawal request is skipped), each counted once: the record
    // at the watermark came again as a duplicate.
    let received = app
        .metric(r#"iocd_events_total{source="onestop",type="received"}"#)
        .await;
    assert_eq!(received, 4.0);
    let resolved = app
        .metric(r#"iocd_events_total{source="onestop",type="resolved"}"#)
        .await;
    assert_eq!(resolved, 2.0);
    // One dossier is still open (waiting for the citizen's supplement).
    let open = json(&app, "/api/v1/onestop/dossiers?limit=100").await;
    assert_eq!(open["total"], 1, "{open}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_reload_without_a_restart_and_a_bad_set_keeps_the_previous_one() {
    let broker = TestBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let shipped = root().join("config/mappings/national-sync.toml");
    let mut s = settings(&broker, false);
    s.mappings.dir = Some(dir.path().to_owned());
    s.mappings.check_every = Some(Duration::from_millis(100));
    let app = spawn_app(s).await;
    let (status, _) = post(
        &app,
        "/api/v1/ingest/mapped/national-sync",
        fixture("single.json"),
        &[],
    )
    .await;
    assert_eq!(status, 404, "nothing loaded yet");

    // A mapping added to the directory is taken in use: its HTTP route and its MQTT topic.
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace("lgsp/+/hoso/#", "vendor-reload/hoso/#");
    std::fs::write(dir.path().join("national-sync.toml"), &text).unwrap();
    let answered = poll_until(
        LIMIT,
        || async {
            post(
                &app,
                "/api/v1/ingest/mapped/national-sync",
                fixture("single.json"),
                &[],
            )
            .await
            .0
        },
        |s| *s == 200,
    )
    .await;
    assert_eq!(answered, 200);
    let ready = json(&app, "/readyz").await;
    assert_eq!(
        ready["mappings"]["loaded"],
        json!(["national-sync"]),
        "{ready}"
    );
    let publisher = TestClient::connect(&broker, &[]).await;
    let batch = fixture("batch.json");
    // The subscription follows the reload: published until the events count.
    let taken = r#"iocd_ingest_items_total{transport="mqtt",outcome="accepted"}"#;
    let got = poll_until(
        LIMIT,
        || async {
            publisher
                .publish("vendor-reload/hoso/1", batch.clone())
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            app.metric(taken).await
        },
        |n| *n >= 14.0,
    )
    .await;
    // 13 status events and 1 payment (reported by 4 records, 3 of them duplicates).
    assert_eq!(
        got, 14.0,
        "the batch counted once, its re-sends are duplicates"
    );

    // A bad file: refused as a whole, the previous mappings stay, /readyz says why.
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"broken\"\nsource = \"crm\"\n",
    )
    .unwrap();
    let ready = poll_until(
        LIMIT,
        || json(&app, "/readyz"),
        |r| r["mappings"]["reload_refused"].is_string(),
    )
    .await;
    assert!(
        ready["mappings"]["reload_refused"]
            .as_str()
            .unwrap()
            .contains("broken.toml"),
        "{ready}"
    );
    assert_eq!(ready["mappings"]["loaded"], json!(["national-sync"]));
    assert_eq!(
        app.metric(r#"iocd_mapping_reloads_total{result="refused"}"#)
            .await,
        1.0
    );
    let (status, _) = post(
        &app,
        "/api/v1/ingest/mapped/national-sync",
        fixture("single.json"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "the previous mappings still serve");
    app.stop().await.unwrap();
}

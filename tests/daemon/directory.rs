//! The agency directory, through the `iocd` binary: names in the alert sentences, the
//! snapshot, the dossier API and `iocd_agency_info`; unknown codes counted; reloads on SIGHUP
//! and on a change of the file; a bad file refused with its line, the previous directory
//! kept and `/readyz` saying why.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use iocd_testkit as tk;
use serde_json::Value;

use crate::helpers::process::{Reaper, iocd, signal, stop_with};
use crate::helpers::{
    TestClient, broker::TestBroker, free_port, http_get, http_get_json, poll_until, unique,
    wait_for,
};

const LIMIT: Duration = Duration::from_secs(20);

fn unit(code: &str, name: &str, short: &str, parent: Option<&str>) -> String {
    let parent = parent.map_or(String::new(), |p| format!("parent = \"{p}\"\n"));
    format!(
        "[[agency]]\ncode = \"{code}\"\nname = \"{name}\"\nshort_name = \"{short}\"\n\
         level = \"province\"\nkind = \"department\"\n{parent}\n"
    )
}

/// A directory naming the centre `000.00.19.H42` `name`.
fn directory(name: &str) -> String {
    unit("000.00.00.H42", "UBND tỉnh", "UBND tỉnh", None)
        + &unit("000.00.19.H42", name, "TT PVHCC", Some("000.00.00.H42"))
}

struct Running {
    child: Reaper,
    port: u16,
    prefix: String,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn json(&self, path: &str) -> Value {
        http_get_json(&self.url(path)).await.unwrap().1
    }

    /// The summary of the overdue alert of the centre, once one fires.
    async fn overdue_summary(&self) -> String {
        let alerts = self.json("/api/v1/alerts").await;
        alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"] == "dossier_overdue:000.00.19.H42")
            .and_then(|a| a["summary"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    async fn wait_summary_starts(&self, with: &str) {
        let got = poll_until(
            LIMIT,
            || self.overdue_summary(),
            |s: &String| s.starts_with(with),
        )
        .await;
        assert!(got.starts_with(with), "summary {got:?}, expected {with:?}…");
    }
}

async fn start(broker: &TestBroker, dir: &Path, file: &Path, check_secs: u64) -> Running {
    let port = free_port();
    let prefix = format!("{}/v1", unique("ioc"));
    let config = dir.join("iocd.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nclient_id = \"{}\"\nprefix = \"{prefix}\"\n\n[directory]\nfile = {:?}\ncheck_secs = {check_secs}\n{}",
            unique("iocd"),
            file.display().to_string(),
            crate::helpers::process::TEST_ALERTS
        ),
    )
    .unwrap();
    let child = iocd()
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--mqtt",
            &broker.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
    wait_for("iocd to be ready", || {
        let url = url.clone();
        async move { http_get(&url).await.is_ok_and(|(status, _)| status == 200) }
    })
    .await;
    Running {
        child: Reaper(child),
        port,
        prefix,
    }
}

/// One overdue dossier at the centre and one at an agency the directory does not know; the
/// client is returned to be kept until they are counted.
async fn feed(broker: &TestBroker, prefix: &str) -> TestClient {
    let client = TestClient::connect(broker, &[]).await;
    for (id, agency) in [("D1", "000.00.19.H42"), ("D2", "X99.99")] {
        let payload = tk::received(id).agency(agency).due(tk::at(-3600)).bytes();
        client
            .publish(&format!("{prefix}/onestop/dossiers"), payload)
            .await;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_come_from_the_directory_and_sighup_reloads_it_keeping_it_when_the_file_is_bad() {
    let broker = TestBroker::start_with("persistence false");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agencies.toml");
    std::fs::write(&file, directory("Trung tâm Phục vụ hành chính công")).unwrap();
    let mut d = start(&broker, dir.path(), &file, 0).await;
    let _feed = feed(&broker, &d.prefix).await;

    // The alert sentence, the wall's list, the dossier API and the metrics name the centre.
    d.wait_summary_starts("Trung tâm Phục vụ hành chính công có 1 hồ sơ đang xử lý quá hạn")
        .await;
    let snapshot = d.json("/api/v1/snapshot").await;
    let worst = &snapshot["onestop"]["worst_agencies"];
    let centre = worst
        .as_array()
        .and_then(|w| w.iter().find(|r| r["agency"] == "000.00.19.H42"))
        .unwrap_or_else(|| panic!("{worst}"));
    assert_eq!(centre["name"], "TT PVHCC", "{worst}");
    let unknown = worst
        .as_array()
        .and_then(|w| w.iter().find(|r| r["agency"] == "X99.99"))
        .unwrap_or_else(|| panic!("{worst}"));
    assert_eq!(unknown["name"], Value::Null, "{worst}");
    let dossiers = d
        .json("/api/v1/onestop/dossiers?agency=000.00.19.H42")
        .await;
    assert_eq!(
        dossiers["dossiers"][0]["agency_name"], "Trung tâm Phục vụ hành chính công",
        "{dossiers}"
    );
    let (_, metrics) = http_get(&d.url("/metrics")).await.unwrap();
    assert!(
        metrics.contains(
            r#"iocd_agency_info{agency="000.00.19.H42",name="Trung tâm Phục vụ hành chính công",short_name="TT PVHCC",level="province",kind="department",parent="000.00.00.H42"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("\niocd_agency_unknown 1\n"), "{metrics}");
    let ready = d.json("/readyz").await;
    assert_eq!(ready["directory"]["agencies"], 2, "{ready}");
    assert_eq!(ready["directory"]["reload_refused"], Value::Null, "{ready}");
    assert_eq!(ready["directory"]["unknown_agencies"], 1, "{ready}");
    assert_eq!(
        ready["directory"]["unknown_agency_codes"],
        serde_json::json!(["X99.99"]),
        "{ready}"
    );

    // SIGHUP with a new name: the alert is put into words again.
    std::fs::write(&file, directory("Trung tâm PVHCC tỉnh Phú Thọ")).unwrap();
    signal(&d.child.0, "-HUP");
    d.wait_summary_starts("Trung tâm PVHCC tỉnh Phú Thọ có 1 hồ sơ")
        .await;

    // A bad file: refused, named by line; the previous directory stays in use.
    std::fs::write(
        &file,
        directory("Tên mới") + &unit("A", "A", "A", Some("NOPE")),
    )
    .unwrap();
    signal(&d.child.0, "-HUP");
    let ready = poll_until(
        LIMIT,
        || d.json("/readyz"),
        |r: &Value| r["directory"]["reload_refused"].is_string(),
    )
    .await;
    let why = ready["directory"]["reload_refused"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("line 16") && why.contains("parent NOPE is not in the directory"),
        "{ready}"
    );
    assert_eq!(
        ready["ready"], true,
        "a refused reload does not make iocd unready"
    );
    assert!(
        d.overdue_summary()
            .await
            .starts_with("Trung tâm PVHCC tỉnh Phú Thọ có 1 hồ sơ")
    );
    let (_, metrics) = http_get(&d.url("/metrics")).await.unwrap();
    assert!(
        metrics.contains(r#"iocd_directory_reloads_total{result="refused"} 1"#)
            && metrics.contains(r#"iocd_directory_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );

    let (status, _) = stop_with(&mut d.child.0, "-TERM", Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_directory_file_is_reloaded_without_a_signal() {
    let broker = TestBroker::start_with("persistence false");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agencies.toml");
    std::fs::write(&file, directory("Trung tâm một")).unwrap();
    let mut d = start(&broker, dir.path(), &file, 1).await;
    let _feed = feed(&broker, &d.prefix).await;
    d.wait_summary_starts("Trung tâm một có 1 hồ sơ").await;
    std::fs::write(&file, directory("Trung tâm thứ hai")).unwrap();
    d.wait_summary_starts("Trung tâm thứ hai có 1 hồ sơ").await;
    let (status, _) = stop_with(&mut d.child.0, "-TERM", Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
}

#[test]
fn check_config_reports_a_bad_directory_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agencies.toml");
    std::fs::write(
        &file,
        directory("X") + &unit("000.00.19.H42", "Y", "Y", None),
    )
    .unwrap();
    let config = dir.path().join("iocd.toml");
    std::fs::write(
        &config,
        format!("[directory]\nfile = {:?}\n", file.display().to_string()),
    )
    .unwrap();
    let out = iocd()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("directory.file")
            && stderr.contains("line 16")
            && stderr.contains("code 000.00.19.H42 is already used on line 8"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_lists_the_provisional_days_the_working_calendar_relies_on() {
    let broker = TestBroker::start_with("persistence false");
    let mut settings = crate::helpers::test_settings(&broker);
    // Local days (the daemon's default time zone) 10 and 500 days from now.
    let day = |ahead: i64| {
        let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap();
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * ahead);
        tz.to_datetime(at).date().to_string()
    };
    let (soon, later) = (day(10), day(500));
    let text = format!(
        "[[day]]\ndate = \"{soon}\"\nkind = \"day_off\"\nname = \"Nghỉ bù\"\nsource = \"Thông báo\"\nprovisional = true\n\n\
         [[day]]\ndate = \"{later}\"\nkind = \"holiday\"\nname = \"Xa\"\nsource = \"Luật\"\nprovisional = true\n"
    );
    settings.calendar.enabled = true;
    settings.calendar.holidays =
        iocd::time::workcal::Holidays::parse(&text, "t.toml").expect("valid");
    let app = crate::helpers::spawn_app(settings).await;
    let (_, body) = app.get("/readyz").await;
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        ready["calendar"],
        serde_json::json!({"working_hours": true, "provisional_days": [{"date": soon, "name": "Nghỉ bù"}]}),
        "{ready}"
    );
    app.stop().await.expect("clean stop");
}

/// A directory of a province committee, its service centre (with a video endpoint and a SOC
/// system) and one commune.
pub fn small_province() -> String {
    let commune = "[[agency]]\ncode = \"X01.01\"\nname = \"Ủy ban nhân dân phường Việt Trì\"\n\
                   short_name = \"Phường Việt Trì\"\nlevel = \"commune\"\nkind = \"commune\"\n\
                   parent = \"000.00.00.H42\"\n\n";
    directory("Trung tâm Phục vụ hành chính công").replace(
        "parent = \"000.00.00.H42\"\n",
        "parent = \"000.00.00.H42\"\nendpoints = [\"EP-1\"]\nsystems = [\"SYS-1\"]\n",
    ) + commune
}

/// Publishes to `app` an overdue dossier at the centre, a due-soon one at the commune, a
/// meeting with the centre's endpoint connected and an incident on the centre's system, and
/// waits until they are counted; the client is returned to be kept.
pub async fn feed_small_province(broker: &TestBroker, app: &crate::helpers::TestApp) -> TestClient {
    let p = app.prefix.clone();
    let client = TestClient::connect(broker, &[]).await;
    let events = [
        (
            "onestop/d",
            tk::received("D1")
                .agency("000.00.19.H42")
                .due(tk::at(-3600)),
        ),
        (
            "onestop/d",
            tk::received("D2").agency("X01.01").due(tk::at(3600)),
        ),
        ("vc/m", tk::meeting_started("M1")),
        ("vc/m", tk::endpoint_joined("M1", "EP-1")),
        (
            "soc/i",
            tk::incident_opened("I1", "high").set("system_id", "SYS-1"),
        ),
    ];
    for (topic, e) in &events {
        client.publish(&format!("{p}/{topic}"), e.bytes()).await;
    }
    app.wait_metric(
        r#"iocd_events_total{source="soc",type="incident_opened"}"#,
        1.0,
    )
    .await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agency_api_joins_dossiers_video_endpoints_and_soc_systems_per_agency() {
    let broker = TestBroker::start_with("persistence false");
    let mut settings = crate::helpers::test_settings(&broker);
    settings.directory.directory = std::sync::Arc::new(
        iocd::directory::Directory::parse(&small_province(), "t.toml").expect("valid"),
    );
    let app = crate::helpers::spawn_app(settings).await;
    let client = feed_small_province(&broker, &app).await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.get(path).await;
            (
                status,
                serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let list = poll_until(
        LIMIT,
        || get("/api/v1/agencies"),
        |(_, v): &(u16, Value)| v["agencies"][0]["overdue"] == 1,
    )
    .await
    .1;
    assert_eq!(list["total"], 3, "{list}");
    let first = &list["agencies"][0];
    assert_eq!(first["code"], "000.00.19.H42", "{list}");
    assert_eq!(first["name"], "Trung tâm Phục vụ hành chính công", "{list}");
    assert_eq!(
        list["rollup"]["by_level"]["province"]["overdue"], 1,
        "{list}"
    );
    assert_eq!(
        list["rollup"]["by_level"]["commune"]["due_soon"], 1,
        "{list}"
    );
    assert_eq!(list["rollup"]["all"]["open_total"], 2, "{list}");

    let (_, communes) = get("/api/v1/agencies?level=commune").await;
    assert_eq!(communes["total"], 1, "{communes}");
    assert_eq!(
        communes["agencies"][0]["short_name"], "Phường Việt Trì",
        "{communes}"
    );

    let (status, centre) = get("/api/v1/agencies/000.00.19.H42").await;
    assert_eq!(status, 200, "{centre}");
    assert_eq!(
        centre["dossiers"]["overdue"]["first"],
        serde_json::json!(["D1"]),
        "{centre}"
    );
    assert_eq!(
        centre["vc"]["endpoints"][0]["connected_to"], "M1",
        "{centre}"
    );
    assert_eq!(
        centre["soc"]["incidents_open"][0]["incident_id"], "I1",
        "{centre}"
    );
    assert!(
        centre["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["id"] == "dossier_overdue:000.00.19.H42")),
        "{centre}"
    );

    let (_, root) = get("/api/v1/agencies/000.00.00.H42").await;
    assert_eq!(root["children"]["count"], 2, "{root}");
    assert_eq!(root["children"]["rollup"]["overdue"], 1, "{root}");
    assert_eq!(root["children"]["rollup"]["due_soon"], 1, "{root}");

    assert_eq!(get("/api/v1/agencies/NOPE").await.0, 404);
    assert_eq!(get("/api/v1/agencies?sort=worst").await.0, 400);
    assert_eq!(get("/api/v1/agencies?level=region").await.0, 400);
    drop(client);
    app.stop().await.expect("clean stop");
}

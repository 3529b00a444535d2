//! The dashboards stay honest (STYLE 10): `dashboards/` is checked against the real tools.
//!
//! - promtool checks the rules and the example configuration and runs the rules' unit tests.
//! - The Grafana dashboard is checked for what an import needs (inputs, variables, unique
//!   ids, a data source on every panel).
//! - A real Mosquitto, the real daemon in-process and a real Prometheus scraping it every
//!   second, fed a realistic mix of events of all three sources: every panel query of the
//!   dashboard must be valid and return data, every metric named in `dashboards/` must be in
//!   `/metrics`, and the alerting rules, loaded into that Prometheus, must evaluate cleanly
//!   and fire (as pending) exactly where the data says so.
//!
//! Without `promtool` or `prometheus` (Debian package `prometheus`) the tests print a note
//! and pass, unless the `CI` environment variable is set: then they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iocd_testkit::{self as tk, at};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestClient, broker::TestBroker, free_port, has_metric, metric_sum, poll_until,
    spawn_app, test_settings, wait_for_within,
};

/// How long any wait may take before the test fails (Prometheus scrapes every second and
/// evaluates the rules every second: a few rounds).
const TIMEOUT: Duration = Duration::from_secs(30);
/// How often Prometheus is asked whether it is up.
const POLL: Duration = Duration::from_millis(100);

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

fn read_dashboard() -> Value {
    let path = dashboards_dir().join("grafana-iocd.json");
    let text = fs::read_to_string(&path).expect("dashboards/grafana-iocd.json is readable");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

// ------------------------------------------------------------------------------- tools

/// `name` on `PATH`, else in `/usr/bin`. When missing: `None` with a note, or a failure
/// under `CI`.
fn tool(name: &str) -> Option<PathBuf> {
    crate::helpers::installed(&[name], "prometheus")
}

/// Runs `promtool args…` in `dir` and asserts it succeeds.
fn promtool(promtool: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_config_and_rule_unit_tests_pass_promtool() {
    let Some(promtool_path) = tool("promtool") else {
        return;
    };
    let dir = dashboards_dir();
    promtool(&promtool_path, &dir, &["check", "rules", "iocd.rules.yml"]);
    promtool(
        &promtool_path,
        &dir,
        &["test", "rules", "iocd.rules.test.yml"],
    );
    promtool(&promtool_path, &dir, &["check", "config", "prometheus.yml"]);

    // The commented `authorization` block is valid once uncommented (protect_metrics).
    let tmp = tempfile::tempdir().expect("temporary directory");
    let token = tmp.path().join("iocd.token");
    fs::write(&token, "secret-token\n").expect("write the token file");
    let example = fs::read_to_string(dir.join("prometheus.yml")).expect("read prometheus.yml");
    let with_auth = example
        .replace("    # authorization:", "    authorization:")
        .replace("    #   type: Bearer", "      type: Bearer")
        .replace(
            "    #   credentials_file: /etc/prometheus/iocd.token",
            &format!("      credentials_file: {}", token.display()),
        );
    assert_ne!(
        example, with_auth,
        "prometheus.yml has the commented authorization block"
    );
    fs::write(tmp.path().join("prometheus.yml"), with_auth).expect("write the config copy");
    fs::copy(
        dir.join("iocd.rules.yml"),
        tmp.path().join("iocd.rules.yml"),
    )
    .expect("copy rules");
    promtool(
        &promtool_path,
        tmp.path(),
        &["check", "config", "prometheus.yml"],
    );
}

// ------------------------------------------------------------------- dashboard shape

/// Every panel, rows included, also those nested in collapsed rows.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
        for p in panels {
            out.push(p);
            if let Some(nested) = p["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard["panels"].as_array().expect("panels is an array"),
        &mut out,
    );
    out
}

/// `(panel title, expr)` of every target of every panel.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    all_panels(dashboard)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                (
                    title.clone(),
                    t["expr"].as_str().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn grafana_dashboard_is_importable_as_is() {
    let d = read_dashboard();
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert!(d["id"].is_null(), "no id: Grafana assigns one on import");
    assert!(
        d["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u.len() <= 40)
    );
    let input = &d["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["type"], "datasource");
    assert_eq!(input["pluginId"], "prometheus");

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    let agency = var("agency");
    assert_eq!(agency["type"], "query");
    assert_eq!(
        agency["query"],
        "label_values(iocd_onestop_dossiers, agency)"
    );
    assert_eq!(agency["includeAll"], true);
    assert_eq!(agency["allValue"], ".*");

    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for p in all_panels(&d) {
        let title = p["title"].as_str().expect("every panel has a title");
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is unique ({title})");
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().expect("gridPos.x"),
            g["y"].as_u64().expect("gridPos.y"),
            g["w"].as_u64().expect("gridPos.w"),
            g["h"].as_u64().expect("gridPos.h"),
        );
        assert!(
            w > 0 && h > 0 && x + w <= 24,
            "{title}: gridPos within 24 columns"
        );
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{title} overlaps another panel at ({cx}, {cy})"
                );
            }
        }
        if p["type"] == "row" {
            assert!(title.contains(" / "), "row title is bilingual: {title}");
            continue;
        }
        assert!(
            title.contains(" / "),
            "panel title is Vietnamese / English: {title}"
        );
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "{title}: data source"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has a query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{title}: refIds unique"
            );
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "{title}: target data source"
            );
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{title}: expr"
            );
        }
    }
}

// ----------------------------------------------------------------------- the daemon

/// The daemon in this process, pushing every 100 ms.
async fn start_daemon(broker: &TestBroker) -> TestApp {
    spawn_app(daemon_settings(broker)).await
}

/// [`start_daemon`]'s settings.
fn daemon_settings(broker: &TestBroker) -> iocd::config::Settings {
    let mut s = test_settings(broker);
    s.ws.push_interval = Duration::from_millis(100);
    // The shipped example directory names A1, A2 and A3, for the panels' name join.
    let example = dashboards_dir().join("../config/agencies-example.toml");
    s.directory.directory = std::sync::Arc::new(
        iocd::directory::Directory::read(&example).expect("the example directory is valid"),
    );
    s
}

/// `/metrics` as text.
async fn metrics(daemon: &TestApp) -> String {
    let (status, body) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    body
}

// ----------------------------------------------------------------------- the events

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Agencies: two provincial departments and a commune.
const A1: &str = "000.00.19.H42";
const A2: &str = "000.00.21.H42";
const A3: &str = "X01.05";

/// What the daemon should make of a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    Accepted,
    Duplicate,
    Rejected,
}

/// Messages to publish: `(topic under the prefix, payload, fate)`.
#[derive(Default)]
struct Batch(Vec<(String, Vec<u8>, Fate)>);

impl Batch {
    fn ok(&mut self, topic: &str, event: &Value) -> &mut Self {
        self.push(topic, event, Fate::Accepted)
    }

    fn push(&mut self, topic: &str, event: &Value, fate: Fate) -> &mut Self {
        let bytes = serde_json::to_vec(event).expect("serialise an event");
        self.0.push((topic.to_owned(), bytes, fate));
        self
    }

    fn raw(&mut self, topic: &str, payload: &[u8]) -> &mut Self {
        self.0
            .push((topic.to_owned(), payload.to_vec(), Fate::Rejected));
        self
    }

    fn count(&self, fate: Fate) -> usize {
        self.0.iter().filter(|(_, _, f)| *f == fate).count()
    }
}

/// A dossier received `ago` seconds ago at `agency`, due `due_in` seconds from now
/// (`None`: no deadline).
fn received(id: &str, agency: &str, channel: &str, ago: i64, due_in: Option<i64>) -> Value {
    tk::received(id)
        .id(format!("{id}-rcv"))
        .ago(ago)
        .agency(agency)
        .set("agency_level", "province")
        .procedure("1.001234")
        .set("sector", "Tư pháp")
        .channel(channel)
        .due(due_in.map(at))
        .json()
}

fn dossier_event(id: &str, kind: &str, ago: i64, extra: &Value) -> Value {
    tk::dossier(kind, id)
        .id(format!("{id}-{kind}"))
        .ago(ago)
        .merge(extra.clone())
        .json()
}

fn resolved(id: &str, ago: i64, due_in: Option<i64>) -> Value {
    tk::resolved(id)
        .id(format!("{id}-resolved"))
        .ago(ago)
        .due(due_in.map(at))
        .set("outcome", "approved")
        .json()
}

/// The `n`th heartbeat of the feed that `label` names in event ids (`os`, `vc`, `soc`).
fn heartbeat(label: &str, n: u32) -> Value {
    tk::event(tk::ONESTOP, "heartbeat")
        .id(format!("{label}-hb-{n}"))
        .json()
}

/// Sent before Prometheus starts: creates every series and every state the panels show.
fn first_batch() -> Batch {
    let mut b = Batch::default();
    let os = "onestop/H42/dossier";
    // Overdue and stalled: received 3 days ago, due yesterday, no event since.
    b.ok(os, &received("D01", A1, "online", 3 * DAY, Some(-DAY)));
    // Overdue, not stalled: moved to A2 an hour ago.
    b.ok(os, &received("D02", A1, "direct", 3 * DAY, Some(-2 * HOUR)));
    b.ok(
        os,
        &dossier_event("D02", "transferred", HOUR, &json!({"agency": A2})),
    );
    // Due soon.
    b.ok(os, &received("D03", A2, "online", HOUR, Some(12 * HOUR)));
    // In progress, on track.
    b.ok(os, &received("D04", A3, "postal", 2 * HOUR, Some(5 * DAY)));
    // Submitted online, waiting at the desk.
    b.ok(
        os,
        &json!({"event_id": "D05-sub", "type": "submitted", "occurred_at": at(-10 * MIN),
                     "dossier_id": "D05", "agency": A1, "procedure": "2.000908",
                     "channel": "online"}),
    );
    // Waiting for the citizen; paused for fees.
    b.ok(os, &received("D06", A2, "direct", 3 * HOUR, Some(3 * DAY)));
    b.ok(
        os,
        &dossier_event("D06", "supplement_requested", HOUR, &json!({})),
    );
    b.ok(os, &received("D07", A3, "online", 4 * HOUR, Some(3 * DAY)));
    b.ok(
        os,
        &dossier_event("D07", "paused", HOUR, &json!({"reason": "fees"})),
    );
    // Resolved early, late and on time (no deadline).
    b.ok(os, &received("D08", A1, "online", 5 * DAY, Some(3 * DAY)));
    b.ok(os, &resolved("D08", HOUR, Some(3 * DAY)));
    b.ok(os, &received("D09", A2, "direct", 4 * DAY, Some(-DAY)));
    b.ok(os, &resolved("D09", 30 * MIN, Some(-DAY)));
    b.ok(os, &received("D10", A3, "online", DAY, None));
    b.ok(os, &resolved("D10", 10 * MIN, None));
    // Refused at intake.
    b.ok(os, &received("D11", A1, "direct", 2 * HOUR, Some(DAY)));
    b.ok(os, &dossier_event("D11", "rejected", HOUR, &json!({})));
    // A redelivery of D01's receipt.
    b.push(
        os,
        &received("D01", A1, "online", 3 * DAY, Some(-DAY)),
        Fate::Duplicate,
    );
    b.ok("onestop/heartbeat", &heartbeat("os", 1));

    let vc = "vc/meetings/M-311";
    b.ok(
        vc,
        &json!({"event_id": "vc-1", "type": "meeting_started", "occurred_at": at(-10 * MIN),
                     "meeting_id": "M-311", "title": "Giao ban trực tuyến UBND tỉnh",
                     "level": "province", "expected_endpoints": ["EP-A", "EP-B", "EP-C"]}),
    );
    for (n, ep) in [(2, "EP-A"), (3, "EP-C")] {
        b.ok(
            vc,
            &json!({"event_id": format!("vc-{n}"), "type": "endpoint_joined",
                         "occurred_at": at(-9 * MIN), "meeting_id": "M-311",
                         "endpoint_id": ep, "agency": A3}),
        );
    }
    // EP-B never joins: missing. EP-C's link is poor.
    b.ok(
        vc,
        &json!({"event_id": "vc-4", "type": "endpoint_stats", "occurred_at": at(-MIN),
                     "meeting_id": "M-311", "endpoint_id": "EP-C", "packet_loss_pct": 4.5,
                     "jitter_ms": 45.0, "rtt_ms": 120.0, "bitrate_kbps": 900.0}),
    );
    b.ok(
        vc,
        &json!({"event_id": "vc-5", "type": "endpoint_stats", "occurred_at": at(-MIN),
                     "meeting_id": "M-311", "endpoint_id": "EP-A", "packet_loss_pct": 0.1,
                     "jitter_ms": 5.0, "rtt_ms": 40.0, "bitrate_kbps": 2000.0}),
    );
    let vc2 = "vc/meetings/M-CP-07";
    b.ok(
        vc2,
        &json!({"event_id": "vc-6", "type": "meeting_started", "occurred_at": at(-2 * MIN),
                      "meeting_id": "M-CP-07", "title": "Hội nghị Chính phủ với địa phương",
                      "level": "central"}),
    );
    b.ok(
        vc2,
        &json!({"event_id": "vc-7", "type": "endpoint_joined", "occurred_at": at(-MIN),
                      "meeting_id": "M-CP-07", "endpoint_id": "EP-PT-UBND"}),
    );
    b.push(
        vc2,
        &json!({"event_id": "vc-7", "type": "endpoint_joined", "occurred_at": at(-MIN),
                        "meeting_id": "M-CP-07", "endpoint_id": "EP-PT-UBND"}),
        Fate::Duplicate,
    );
    b.ok("vc/heartbeat", &heartbeat("vc", 1));

    let soc = "soc/alerts";
    for (n, sev, cat, sys) in [
        (1, "high", "intrusion", "SYS-DVC"),
        (2, "low", "recon", "SYS-PORTAL"),
        (3, "critical", "malware", "SYS-MAIL"),
        (4, "medium", "phishing", "SYS-MAIL"),
    ] {
        b.ok(
            soc,
            &json!({"event_id": format!("soc-a{n}"), "type": "alert",
                          "occurred_at": at(-5 * MIN), "alert_id": format!("AL-{n}"),
                          "system_id": sys, "severity": sev, "category": cat,
                          "src_ip": "203.0.113.7", "signature": "ET SCAN"}),
        );
    }
    // A system whose log shipping stopped 30 minutes ago.
    b.ok("soc/systems/SYS-LEGACY", &json!({"event_id": "soc-hb-legacy", "type": "system_heartbeat",
                                           "occurred_at": at(-30 * MIN), "system_id": "SYS-LEGACY"}));
    let inc = "soc/incidents";
    // I1: high, open, never acknowledged.
    b.ok(
        inc,
        &json!({"event_id": "soc-i1-open", "type": "incident_opened", "occurred_at": at(-20 * MIN),
                      "incident_id": "I1", "system_id": "SYS-DVC", "severity": "high",
                      "title": "Dò quét cổng dịch vụ công"}),
    );
    // I2: critical, acknowledged, still open.
    b.ok(
        inc,
        &json!({"event_id": "soc-i2-open", "type": "incident_opened", "occurred_at": at(-40 * MIN),
                      "incident_id": "I2", "system_id": "SYS-MAIL", "severity": "critical"}),
    );
    b.ok(
        inc,
        &json!({"event_id": "soc-i2-ack", "type": "incident_acknowledged",
                      "occurred_at": at(-35 * MIN), "incident_id": "I2"}),
    );
    // I3: medium, acknowledged and resolved.
    b.ok(
        inc,
        &json!({"event_id": "soc-i3-open", "type": "incident_opened", "occurred_at": at(-2 * HOUR),
                      "incident_id": "I3", "system_id": "SYS-PORTAL", "severity": "medium"}),
    );
    b.ok(
        inc,
        &json!({"event_id": "soc-i3-ack", "type": "incident_acknowledged",
                      "occurred_at": at(-110 * MIN), "incident_id": "I3"}),
    );
    b.ok(
        inc,
        &json!({"event_id": "soc-i3-res", "type": "incident_resolved",
                      "occurred_at": at(-HOUR), "incident_id": "I3"}),
    );
    b.push(
        inc,
        &json!({"event_id": "soc-i3-res", "type": "incident_resolved",
                        "occurred_at": at(-HOUR), "incident_id": "I3"}),
        Fate::Duplicate,
    );
    b.ok("soc/heartbeat", &heartbeat("soc", 1));

    // Rejected payloads, one reason per source at least.
    b.raw("onestop/H42/dossier", b"{\"event_id\": \"broken");
    b.push(
        "onestop/H42/dossier",
        &json!({"event_id": "os-future", "type": "heartbeat",
                                           "occurred_at": at(HOUR)}),
        Fate::Rejected,
    );
    b.push(
        "vc/meetings/M-311",
        &json!({"event_id": "vc-bad", "type": "meeting_started",
                                        "occurred_at": at(0)}),
        Fate::Rejected,
    );
    b.push(
        "soc/alerts",
        &json!({"event_id": "soc-bad", "type": "port_scan",
                                 "occurred_at": at(0)}),
        Fate::Rejected,
    );
    b
}

/// Sent once Prometheus has scraped a few times: increments on existing series, so that
/// rates, `increase()` windows and histogram quantiles have something to show.
fn second_batch() -> Batch {
    let mut b = Batch::default();
    let os = "onestop/H42/dossier";
    b.ok(os, &received("D12", A1, "online", 0, Some(3 * DAY)));
    b.ok(os, &received("D13", A2, "direct", MIN, Some(3 * DAY)));
    b.ok(os, &received("D14", A3, "postal", MIN, Some(3 * DAY)));
    b.ok(os, &received("D15", A1, "online", 2 * DAY, Some(3 * DAY)));
    b.ok(os, &resolved("D15", 0, Some(3 * DAY)));
    b.ok(os, &received("D16", A2, "direct", 3 * DAY, Some(-DAY)));
    b.ok(os, &resolved("D16", 0, Some(-DAY)));
    b.ok(os, &received("D17", A3, "online", DAY, None));
    b.ok(os, &resolved("D17", 0, None));
    b.push(
        os,
        &received("D12", A1, "online", 0, Some(3 * DAY)),
        Fate::Duplicate,
    );
    b.ok("onestop/heartbeat", &heartbeat("os", 2));

    b.ok(
        "vc/meetings/M-311",
        &json!({"event_id": "vc-8", "type": "endpoint_stats",
                                      "occurred_at": at(0), "meeting_id": "M-311",
                                      "endpoint_id": "EP-C", "packet_loss_pct": 3.0,
                                      "jitter_ms": 40.0, "rtt_ms": 150.0, "bitrate_kbps": 800.0}),
    );
    b.ok("vc/heartbeat", &heartbeat("vc", 2));

    for (n, sev, cat) in [
        (5, "high", "intrusion"),
        (6, "low", "recon"),
        (7, "critical", "ddos"),
    ] {
        b.ok(
            "soc/alerts",
            &json!({"event_id": format!("soc-a{n}"), "type": "alert",
                                   "occurred_at": at(0), "alert_id": format!("AL-{n}"),
                                   "system_id": "SYS-DVC", "severity": sev, "category": cat}),
        );
    }
    let inc = "soc/incidents";
    b.ok(
        inc,
        &json!({"event_id": "soc-i4-open", "type": "incident_opened", "occurred_at": at(-5 * MIN),
                      "incident_id": "I4", "system_id": "SYS-PORTAL", "severity": "high"}),
    );
    b.ok(
        inc,
        &json!({"event_id": "soc-i4-ack", "type": "incident_acknowledged",
                      "occurred_at": at(0), "incident_id": "I4"}),
    );
    b.ok(
        inc,
        &json!({"event_id": "soc-i5-open", "type": "incident_opened", "occurred_at": at(-15 * MIN),
                      "incident_id": "I5", "system_id": "SYS-MAIL", "severity": "low"}),
    );
    b.ok(
        inc,
        &json!({"event_id": "soc-i5-res", "type": "incident_resolved",
                      "occurred_at": at(0), "incident_id": "I5"}),
    );
    b.push(
        inc,
        &json!({"event_id": "soc-i5-res", "type": "incident_resolved",
                        "occurred_at": at(0), "incident_id": "I5"}),
        Fate::Duplicate,
    );
    b.ok("soc/heartbeat", &heartbeat("soc", 2));

    b.raw("vc/meetings/M-311", b"[1, 2, 3]");
    b.push(
        "soc/alerts",
        &json!({"event_id": "soc-bad-2", "type": "alert", "occurred_at": at(0),
                                 "alert_id": "AL-X", "system_id": "SYS-DVC",
                                 "severity": "apocalyptic", "category": "other"}),
        Fate::Rejected,
    );
    b
}

/// Publishes `batch` at QoS 1, each message on its topic under `prefix`.
async fn send(client: &TestClient, prefix: &str, batch: &Batch) {
    for (topic, payload, _) in &batch.0 {
        client
            .publish(&format!("{prefix}/{topic}"), payload.clone())
            .await;
    }
}

/// Waits until `/metrics` has counted `accepted`, `duplicates` and `rejected` messages.
async fn wait_counted(daemon: &TestApp, accepted: usize, duplicates: usize, rejected: usize) {
    let want =
        [accepted, duplicates, rejected].map(|n| f64::from(u32::try_from(n).expect("small")));
    let got = poll_until(
        TIMEOUT,
        || async {
            let body = metrics(daemon).await;
            [
                metric_sum(&body, "iocd_events_total"),
                metric_sum(&body, "iocd_events_duplicate_total"),
                metric_sum(&body, "iocd_events_rejected_total"),
            ]
        },
        |got| *got == want,
    )
    .await;
    assert!(
        got == want,
        "accepted, duplicates, rejected in /metrics: {got:?}, expected {want:?}"
    );
}

// ----------------------------------------------------------------------- Prometheus

/// A real Prometheus on a free port, scraping the daemon every second, with the rules of
/// `dashboards/` loaded. Killed on `Drop`.
struct Prometheus {
    base: String,
    child: Child,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Prometheus {
    async fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        Self::start_replicas(binary, &[(target, None)]).await
    }

    /// Scraping each of `targets`, with its `replica` label when it has one (the HA pair of
    /// `dashboards/prometheus.yml`).
    async fn start_replicas(binary: &Path, targets: &[(SocketAddr, Option<&str>)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary directory for Prometheus");
        let rules = dashboards_dir().join("iocd.rules.yml");
        let statics: String = targets
            .iter()
            .map(|(addr, replica)| match replica {
                Some(r) => format!(
                    "      - targets: [\"{addr}\"]\n        labels:\n          replica: {r}\n"
                ),
                None => format!("      - targets: [\"{addr}\"]\n"),
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: iocd\n    static_configs:\n{statics}",
            rules = rules.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config).expect("write the Prometheus config");
        let port = free_port();
        let log = fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut prom = Prometheus {
            base: format!("http://127.0.0.1:{port}"),
            child,
            dir,
            http: reqwest::Client::new(),
        };
        let start = Instant::now();
        loop {
            let ready = prom
                .http
                .get(format!("{}/-/ready", prom.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return prom;
            }
            let exited = prom.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && start.elapsed() < TIMEOUT,
                "prometheus did not come up (exit: {exited:?}); its log:\n{}",
                prom.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: the HTTP status and the JSON answer.
    async fn query(&self, expr: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .expect("query Prometheus");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("a JSON answer"))
    }

    /// The result vector of a query that must succeed.
    async fn vector(&self, expr: &str) -> Vec<Value> {
        let (status, body) = self.query(expr).await;
        assert_eq!(status, 200, "{expr}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of a scalar-like query, if it returned one sample.
    async fn value(&self, expr: &str) -> Option<f64> {
        let v = self.vector(expr).await;
        v.first().and_then(sample_value)
    }

    async fn rules(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/api/v1/rules", self.base))
            .send()
            .await
            .expect("GET /api/v1/rules");
        let body: Value = resp.json().await.expect("rules JSON");
        body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one instant-vector sample (`"value": [time, "1.5"]`).
fn sample_value(sample: &Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}

/// A panel query as Grafana would send it for the whole dashboard, all agencies selected.
fn substitute(expr: &str) -> String {
    let q = expr
        .replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__interval", "1m")
        .replace("${__interval}", "1m")
        .replace("$__range", "1h")
        .replace("${__range}", "1h")
        .replace("${agency}", ".*")
        .replace("$agency", ".*");
    assert!(
        !q.contains('$'),
        "{expr}: a dashboard variable this test does not know; teach substitute() about it"
    );
    q
}

/// Every `iocd_…` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("iocd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let before = rest[..i].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

// ------------------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_a_real_prometheus() {
    let (Some(prometheus_bin), Some(_)) = (tool("prometheus"), tool("promtool")) else {
        return;
    };
    let broker = TestBroker::start();
    let daemon = Box::pin(start_daemon(&broker)).await;
    let publisher = TestClient::connect(&broker, &[]).await;

    let first = first_batch();
    send(&publisher, &daemon.prefix, &first).await;
    let mut counts = [Fate::Accepted, Fate::Duplicate, Fate::Rejected].map(|f| first.count(f));
    wait_counted(&daemon, counts[0], counts[1], counts[2]).await;
    wait_for_domain_state(&daemon).await;

    let prom = Prometheus::start(&prometheus_bin, daemon.addr).await;
    let prom_ref = &prom;
    wait_for_within("three successful scrapes", TIMEOUT, || async move {
        let prom = prom_ref;
        prom.value(r#"count_over_time(up{job="iocd"}[1m]) and up{job="iocd"} == 1"#)
            .await
            .is_some_and(|n| n >= 3.0)
    })
    .await;

    let second = second_batch();
    send(&publisher, &daemon.prefix, &second).await;
    for (i, f) in [Fate::Accepted, Fate::Duplicate, Fate::Rejected]
        .into_iter()
        .enumerate()
    {
        counts[i] += second.count(f);
    }
    wait_counted(&daemon, counts[0], counts[1], counts[2]).await;
    let total = f64::from(u32::try_from(counts.iter().sum::<usize>()).expect("small"));
    wait_for_within("Prometheus to scrape the second batch", TIMEOUT, || async move {
        let prom = prom_ref;
        let q = "sum(iocd_events_total) + sum(iocd_events_duplicate_total) + sum(iocd_events_rejected_total)";
        prom.value(q).await == Some(total)
    })
    .await;

    // The duty officer takes one of the firing alerts: the handling panels have data.
    let (_, alerts) = daemon.get("/api/v1/alerts").await;
    let alerts: Value = serde_json::from_str(&alerts).expect("JSON");
    let id = alerts["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["rule"] == "dossier_overdue"))
        .and_then(|a| a["id"].as_str())
        .expect("an overdue alert fires")
        .to_owned();
    let resp = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/alerts/{id}/acknowledge",
            daemon.addr
        ))
        .body(r#"{"comment": "Đã gọi đơn vị"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    wait_for_within(
        "Prometheus to scrape the acknowledgement",
        TIMEOUT,
        || async move {
            let prom = prom_ref;
            prom.value("sum(increase(iocd_alert_acknowledge_seconds_count[1d]))")
                .await
                .is_some_and(|n| n > 0.0)
        },
    )
    .await;

    let text = metrics(&daemon).await;
    let alerts_exported = has_metric(&text, "iocd_alerts_firing");
    check_metric_names(&text, alerts_exported);
    check_panel_queries(&prom, alerts_exported).await;
    check_on_time_by_agency(&prom).await;
    check_names_by_agency(&prom).await;
    check_rules(&prom).await;

    drop(prom);
    drop(publisher);
    tokio::time::timeout(Duration::from_secs(10), daemon.stop())
        .await
        .expect("the daemon stops within 10 s")
        .expect("the daemon stops cleanly");
    drop(broker);
}

/// Two replicas on one broker, scraped by one Prometheus with a `replica` label each (as
/// `dashboards/prometheus.yml`): the dashboard's province figures are the same with both up
/// as with one (not doubled), and every panel still has data with replica b down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_the_dashboard_counts_once_and_works_with_one_down() {
    let (Some(prometheus_bin), Some(_)) = (tool("prometheus"), tool("promtool")) else {
        return;
    };
    let broker = TestBroker::start();
    let mut sa = daemon_settings(&broker);
    sa.ha.replica = "a".into();
    let mut sb = daemon_settings(&broker);
    sb.mqtt.prefix.clone_from(&sa.mqtt.prefix);
    sb.ha.replica = "b".into();
    let a = Box::pin(spawn_app(sa)).await;
    let b = Box::pin(spawn_app(sb)).await;
    let publisher = TestClient::connect(&broker, &[]).await;
    let first = first_batch();
    send(&publisher, &a.prefix, &first).await;
    let counts = [Fate::Accepted, Fate::Duplicate, Fate::Rejected].map(|f| first.count(f));
    for daemon in [&a, &b] {
        wait_counted(daemon, counts[0], counts[1], counts[2]).await;
        wait_for_domain_state(daemon).await;
    }
    let prom =
        Prometheus::start_replicas(&prometheus_bin, &[(a.addr, Some("a")), (b.addr, Some("b"))])
            .await;
    let prom_ref = &prom;
    wait_for_within("three scrapes of both replicas", TIMEOUT, || async move {
        prom_ref
            .value(r#"count(count_over_time(up{job="iocd"}[1m]) >= 3 and up{job="iocd"} == 1)"#)
            .await
            == Some(2.0)
    })
    .await;

    // Events after the first scrapes, for the panels of rates and increases.
    let second = second_batch();
    send(&publisher, &a.prefix, &second).await;
    let mut counts = counts;
    for (i, f) in [Fate::Accepted, Fate::Duplicate, Fate::Rejected]
        .into_iter()
        .enumerate()
    {
        counts[i] += second.count(f);
    }
    for daemon in [&a, &b] {
        wait_counted(daemon, counts[0], counts[1], counts[2]).await;
    }
    let total = f64::from(u32::try_from(counts.iter().sum::<usize>()).expect("small"));
    wait_for_within("Prometheus to scrape the second batch", TIMEOUT, || async move {
        let q = "count(sum by (instance) (iocd_events_total) + sum by (instance) (iocd_events_duplicate_total) + sum by (instance) (iocd_events_rejected_total) == scalar(vector(TOTAL)))".replace("TOTAL", &total.to_string());
        prom_ref.value(&q).await == Some(2.0)
    })
    .await;

    // An officer takes an alert on replica a: the handling panels have data.
    let (_, alerts) = a.get("/api/v1/alerts").await;
    let alerts: Value = serde_json::from_str(&alerts).expect("JSON");
    let id = alerts["alerts"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["rule"] == "dossier_overdue"))
        .and_then(|x| x["id"].as_str())
        .expect("an overdue alert fires")
        .to_owned();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/v1/alerts/{id}/acknowledge", a.addr))
        .body(r#"{"comment": "Đã gọi đơn vị"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    wait_for_within(
        "Prometheus to scrape the acknowledgement",
        TIMEOUT,
        || async move {
            prom_ref
                .value("count(increase(iocd_alert_acknowledge_seconds_count[1d]) > 0)")
                .await
                .is_some_and(|n| n >= 1.0)
        },
    )
    .await;

    // The figures of the panels that show the province's state now (no rate, no clock).
    let queries: Vec<(String, String)> = panel_queries(&read_dashboard())
        .into_iter()
        .filter(|(_, e)| {
            !["rate(", "increase(", "time()", "_over_time", "iocd_alerts_"]
                .iter()
                .any(|f| e.contains(f))
        })
        .collect();
    assert!(queries.len() >= 10, "gauge panels: {queries:?}");
    let both = province_figures(&prom, &queries).await;
    assert!(both.len() >= 10, "{both:?}");

    // Replica b stops: Prometheus sees it down, and the figures stay.
    b.stop().await.expect("replica b stops");
    wait_for_within("Prometheus to see replica b down", TIMEOUT, || async move {
        prom_ref.value(r#"up{job="iocd", replica="b"}"#).await == Some(0.0)
    })
    .await;
    let one = province_figures(&prom, &queries).await;
    assert_eq!(
        both, one,
        "the province's figures with one replica are those with two"
    );
    let text = metrics(&a).await;
    check_panel_queries(&prom, has_metric(&text, "iocd_alerts_firing")).await;

    drop(prom);
    drop(publisher);
    a.stop().await.expect("the daemon stops cleanly");
}

/// The results of `queries` (title, expression), but those with a series per instance
/// (panels of one daemon's health, not province figures).
async fn province_figures(
    prom: &Prometheus,
    queries: &[(String, String)],
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (title, expr) in queries {
        let result = prom.vector(&substitute(expr)).await;
        if result.iter().any(|s| s["metric"].get("instance").is_some()) {
            continue;
        }
        let mut values: Vec<String> = result
            .iter()
            .map(|s| format!("{} {}", s["metric"], s["value"][1]))
            .collect();
        values.sort();
        out.insert(format!("{title}: {expr}"), values);
    }
    out
}

/// Waits until the time-dependent gauges show what the first batch sets up.
async fn wait_for_domain_state(daemon: &TestApp) {
    let gauges = |body: String| -> BTreeMap<&str, f64> {
        [
            "iocd_onestop_dossiers_overdue",
            "iocd_onestop_dossiers_due_soon",
            "iocd_onestop_dossiers_stalled",
            "iocd_vc_endpoints_connected",
            "iocd_vc_endpoints_missing",
            "iocd_vc_endpoints_poor_quality",
            "iocd_soc_incidents_unacknowledged",
            "iocd_soc_systems_silent",
        ]
        .into_iter()
        .map(|m| (m, metric_sum(&body, m)))
        .collect()
    };
    let want: BTreeMap<&str, f64> = [
        ("iocd_onestop_dossiers_overdue", 2.0),
        ("iocd_onestop_dossiers_due_soon", 1.0),
        ("iocd_onestop_dossiers_stalled", 1.0),
        ("iocd_vc_endpoints_connected", 3.0),
        ("iocd_vc_endpoints_missing", 1.0),
        ("iocd_vc_endpoints_poor_quality", 1.0),
        ("iocd_soc_incidents_unacknowledged", 1.0),
        ("iocd_soc_systems_silent", 1.0),
    ]
    .into_iter()
    .collect();
    let got = poll_until(
        TIMEOUT,
        || async { gauges(metrics(daemon).await) },
        |got| *got == want,
    )
    .await;
    assert!(
        got == want,
        "gauges in /metrics: {got:?}, expected {want:?}"
    );
}

/// Every metric the rules and the dashboard name is in `/metrics`. Two may be absent:
/// `iocd_mqtt_publish_dropped_total` has no series until something is dropped, and
/// `iocd_alerts_firing` until the alert engine exports it.
fn check_metric_names(metrics: &str, alerts_exported: bool) {
    let rules = fs::read_to_string(dashboards_dir().join("iocd.rules.yml")).expect("read rules");
    let dashboard =
        fs::read_to_string(dashboards_dir().join("grafana-iocd.json")).expect("read dashboard");
    let mut missing = Vec::new();
    for (file, text) in [
        ("iocd.rules.yml", &rules),
        ("grafana-iocd.json", &dashboard),
    ] {
        for name in metric_names(text) {
            let may_be_absent = name == "iocd_mqtt_publish_dropped_total"
                || (name == "iocd_alerts_firing" && !alerts_exported);
            if !may_be_absent && !has_metric(metrics, &name) {
                missing.push(format!("{file}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named in dashboards/ but not in /metrics: {missing:?}"
    );
}

/// Runs every panel query: valid, non-empty, and at least one finite value.
async fn check_panel_queries(prom: &Prometheus, alerts_exported: bool) {
    let queries = panel_queries(&read_dashboard());
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for (title, expr) in &queries {
        let q = substitute(expr);
        let (status, body) = prom.query(&q).await;
        let result = body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let finite: Vec<f64> = result
            .iter()
            .filter_map(sample_value)
            .filter(|v| v.is_finite())
            .collect();
        let first = finite
            .first()
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
        table.push(format!(
            "{:>3} series {:>3} finite  first {first:>12}  {q}",
            result.len(),
            finite.len(),
        ));
        let tolerated = expr.contains("iocd_alerts_firing") && !alerts_exported;
        if status != 200 || body["status"] != "success" {
            failures.push(format!("{title}: {q}: HTTP {status} {body}"));
        } else if (result.is_empty() || finite.is_empty()) && !tolerated {
            failures.push(format!(
                "{title}: {q}: no data ({} series, none finite)",
                result.len()
            ));
        }
    }
    println!(
        "{} panel queries against a real Prometheus (series, finite values, first value, query):\n{}",
        queries.len(),
        table.join("\n")
    );
    if !alerts_exported {
        println!("NOTE: iocd_alerts_firing is not exported yet; its panel was allowed to be empty");
    }
    assert!(
        failures.is_empty(),
        "panel queries without data:\n{}",
        failures.join("\n")
    );
}

/// The per-agency on-time panel shows the worst agency too: A2 resolved only late in the
/// second batch, so its ratio is 0 (a plain division would drop it, having no non-late series).
async fn check_on_time_by_agency(prom: &Prometheus) {
    let dashboard = read_dashboard();
    let (_, expr) = panel_queries(&dashboard)
        .into_iter()
        .find(|(title, _)| title.ends_with("Lowest on-time ratio by agency, 30 days"))
        .expect("the per-agency on-time panel");
    let got: BTreeMap<String, f64> = prom
        .vector(&substitute(&expr))
        .await
        .iter()
        .filter_map(|s| Some((s["metric"]["agency"].as_str()?.to_owned(), sample_value(s)?)))
        .collect();
    let want: BTreeMap<String, f64> = [(A1, 1.0), (A2, 0.0), (A3, 1.0)]
        .into_iter()
        .map(|(a, v)| (a.to_owned(), v))
        .collect();
    assert_eq!(got, want, "on-time ratio by agency");
}

/// The per-agency panels name each agency through `iocd_agency_info`: the overdue top 10
/// carries the short name of the directory for A1 and A2, and keeps its value.
async fn check_names_by_agency(prom: &Prometheus) {
    let dashboard = read_dashboard();
    let (_, expr) = panel_queries(&dashboard)
        .into_iter()
        .find(|(title, _)| title.ends_with("Overdue by agency, top 10"))
        .expect("the overdue top-10 panel");
    let got: BTreeMap<String, (String, f64)> = prom
        .vector(&substitute(&expr))
        .await
        .iter()
        .filter_map(|s| {
            let agency = s["metric"]["agency"].as_str()?.to_owned();
            let name = s["metric"]["short_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Some((agency, (name, sample_value(s)?)))
        })
        .collect();
    let example =
        iocd::directory::Directory::read(&dashboards_dir().join("../config/agencies-example.toml"))
            .expect("the example directory is valid");
    for agency in [A1, A2] {
        let (name, value) = got
            .get(agency)
            .unwrap_or_else(|| panic!("{agency} in {got:?}"));
        assert_eq!(name.as_str(), example.short_name_of(agency), "{got:?}");
        assert!(*value > 0.0, "{got:?}");
    }
}

/// The rules, loaded into the real Prometheus, evaluate without error on real metrics, are
/// active (pending: their `for:` has not passed) exactly where the data says so, and render
/// their annotations with every label they name.
async fn check_rules(prom: &Prometheus) {
    let expect_active: BTreeMap<&str, (&str, BTreeSet<&str>)> = [
        ("IocdDossiersOverdue", ("agency", [A1, A2].into())),
        ("IocdDossiersStalled", ("agency", [A1].into())),
        (
            "IocdSocIncidentUnacknowledged",
            ("incident_severity", ["high"].into()),
        ),
        ("IocdSocSystemsSilent", ("job", ["iocd"].into())),
    ]
    .into_iter()
    .collect();
    let expect_inactive = [
        "IocdDown",
        "IocdNotReady",
        "IocdMqttFlapping",
        "IocdBrokerSessionLost",
        "IocdIngestBackpressure",
        "IocdIngestDropped",
        "IocdDeadLettersDropped",
        "IocdStateEvicted",
        "IocdFeedSilent",
        "IocdFeedNeverSeen",
    ];
    // Wait until every rule has been evaluated since the data arrived.
    let rules = poll_until(
        TIMEOUT,
        || prom.rules(),
        |rules| {
            !rules.is_empty()
                && rules.iter().all(|r| r["health"] == "ok")
                && expect_active.keys().all(|name| {
                    rules
                        .iter()
                        .any(|r| r["name"] == *name && r["state"] != "inactive")
                })
        },
    )
    .await;
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for r in &rules {
        let name = r["name"].as_str().unwrap_or_default();
        let alerts = r["alerts"].as_array().cloned().unwrap_or_default();
        report.push(format!(
            "{name:<32} {:<8} {} alerts",
            r["state"].as_str().unwrap_or("?"),
            alerts.len()
        ));
        if r["health"] != "ok" {
            failures.push(format!(
                "{name}: health {} ({})",
                r["health"], r["lastError"]
            ));
        }
        if let Some((label, values)) = expect_active.get(name) {
            let got: BTreeSet<&str> = alerts
                .iter()
                .filter_map(|a| a["labels"][*label].as_str())
                .collect();
            if got != *values {
                failures.push(format!(
                    "{name}: active for {label} {got:?}, expected {values:?}"
                ));
            }
        } else if expect_inactive.contains(&name) && !alerts.is_empty() {
            failures.push(format!("{name}: active, expected inactive: {alerts:?}"));
        }
        for a in &alerts {
            let rendered = a["annotations"].to_string();
            if rendered.contains("<no value>") || rendered.contains("{{") {
                failures.push(format!("{name}: annotation not rendered: {rendered}"));
            }
            if a["labels"]["severity"].as_str().is_none() {
                failures.push(format!("{name}: alert without a severity label"));
            }
        }
    }
    println!(
        "rules in the real Prometheus (state, active alerts):\n{}",
        report.join("\n")
    );
    assert_eq!(rules.len(), 15, "every rule of iocd.rules.yml is loaded");
    assert!(failures.is_empty(), "rules:\n{}", failures.join("\n"));
}

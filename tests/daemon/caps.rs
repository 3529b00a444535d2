//! Memory caps (`[state] max_*`, issue 11.5) end to end: the `iocd` binary with small caps
//! against a real Mosquitto; at a cap the item whose latest event is oldest is evicted,
//! counted in `iocd_state_evicted_total{kind}`, logged in one WARN line, and its source shows
//! a possible gap in the snapshot.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use iocd_testkit as tk;

use crate::helpers::process::{Reaper, config_file, iocd, stop_with};
use crate::helpers::{
    TIMEOUT, TestClient, broker::TestBroker, canon, free_port, http_get, http_get_json,
    parse_metrics, poll_until, wait_for,
};

/// The start of the eviction WARN line (`EvictionLog` in `src/pipeline.rs`).
const CAPS_LINE: &str = "Memory caps reached";

/// The topic prefix `config_file` wrote into `config`.
fn prefix_of(config: &Path) -> String {
    std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("prefix = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned()
}

/// `/metrics` of the daemon at `base`, by series in `canon` form (empty when it does not
/// answer).
async fn metrics(base: &str) -> HashMap<String, f64> {
    http_get(&format!("{base}/metrics"))
        .await
        .map(|(_, body)| parse_metrics(&body))
        .unwrap_or_default()
}

/// One series of `m` (0 when absent).
fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(&canon(series)).copied().unwrap_or(0.0)
}

fn evicted(kind: &str) -> String {
    format!(r#"iocd_state_evicted_total{{kind="{kind}"}}"#)
}

const DOSSIERS_HELD: &str = "iocd_state_dossiers";
const RECEIVED: &str = r#"iocd_events_total{source="onestop",type="received"}"#;
const HEARTBEATS: &str = r#"iocd_events_total{source="soc",type="system_heartbeat"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_caps_the_oldest_are_evicted_counted_logged_once_and_shown_as_a_gap() {
    let broker = TestBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "reconnect_min_ms = 50\nreconnect_max_ms = 500\n\
         [state]\nmax_dossiers = 3\nmax_systems = 2\n",
    );
    let prefix = prefix_of(&config);
    let log_path = dir.path().join("stderr.log");
    let port = free_port();
    let mut child = Reaper(
        iocd()
            .args(["run", "--config"])
            .arg(&config)
            .args(["--mqtt", &broker.url(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn,iocd=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for("iocd to be ready", || {
        let url = format!("{base}/readyz");
        async move { http_get(&url).await.is_ok_and(|(s, _)| s == 200) }
    })
    .await;
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Dossiers D1..D5 received 50, 40, …, 10 s ago (D1 the oldest); systems S1..S3 heard
    // 50, 40, 30 s ago.
    let dossier = |i: i64| {
        tk::received(&format!("D{i}"))
            .id(format!("caps-d{i}"))
            .ago(60 - 10 * i)
    };
    let system = |i: i64| {
        tk::system_heartbeat(&format!("S{i}"))
            .id(format!("caps-s{i}"))
            .ago(60 - 10 * i)
    };
    let onestop = format!("{prefix}/onestop/caps");
    let soc = format!("{prefix}/soc/caps");
    let client = TestClient::connect(&broker, &[]).await;

    // Up to the caps: nothing evicted.
    for i in 1..=3 {
        client.publish(&onestop, dossier(i).bytes()).await;
    }
    for i in 1..=2 {
        client.publish(&soc, system(i).bytes()).await;
    }
    let m = poll_until(
        TIMEOUT,
        || metrics(&base),
        |m| get(m, RECEIVED) == 3.0 && get(m, HEARTBEATS) == 2.0,
    )
    .await;
    assert_eq!(
        (get(&m, RECEIVED), get(&m, HEARTBEATS)),
        (3.0, 2.0),
        "daemon log:\n{}",
        log()
    );
    assert_eq!(get(&m, DOSSIERS_HELD), 3.0);
    for kind in ["dossier", "meeting", "endpoint", "system", "incident"] {
        assert_eq!(
            get(&m, &evicted(kind)),
            0.0,
            "{kind} at the cap, not over it"
        );
    }

    // Over the caps: D4 evicts D1, S3 evicts S1, D5 evicts D2. Published back to back, so
    // that the evictions of both kinds fall before the same tick and are written in the one
    // line (the next would come a minute later).
    client.publish(&onestop, dossier(4).bytes()).await;
    client.publish(&soc, system(3).bytes()).await;
    client.publish(&onestop, dossier(5).bytes()).await;
    let m = poll_until(
        TIMEOUT,
        || metrics(&base),
        |m| get(m, RECEIVED) == 5.0 && get(m, HEARTBEATS) == 3.0,
    )
    .await;
    assert_eq!(
        (get(&m, RECEIVED), get(&m, HEARTBEATS)),
        (5.0, 3.0),
        "daemon log:\n{}",
        log()
    );
    let counts: Vec<(&str, f64)> = ["dossier", "meeting", "endpoint", "system", "incident"]
        .into_iter()
        .map(|kind| (kind, get(&m, &evicted(kind))))
        .collect();
    assert_eq!(
        counts,
        [
            ("dossier", 2.0),
            ("meeting", 0.0),
            ("endpoint", 0.0),
            ("system", 1.0),
            ("incident", 0.0)
        ]
    );
    assert_eq!(get(&m, DOSSIERS_HELD), 3.0);

    // The sources of the evicted kinds show a possible gap; VC lost nothing.
    let (status, snap) = http_get_json(&format!("{base}/api/v1/snapshot"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let sources = &snap["sources"];
    assert_eq!(sources["onestop"]["possible_gap"], true, "{sources}");
    assert_eq!(sources["soc"]["possible_gap"], true, "{sources}");
    assert_eq!(sources["vc"]["possible_gap"], false, "{sources}");

    // The two oldest dossiers are gone, the three newest listed.
    let (status, listed) = http_get_json(&format!("{base}/api/v1/onestop/dossiers"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(listed["total"], 3, "{listed}");
    let mut ids: Vec<&str> = listed["dossiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dossier_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["D3", "D4", "D5"], "{listed}");

    // One WARN line, naming both kinds.
    poll_until(TIMEOUT, || async { log() }, |l| l.contains(CAPS_LINE)).await;
    let (status, _) = stop_with(&mut child.0, "-TERM", Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}; log:\n{}", log());
    let logged = log();
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains(CAPS_LINE)).collect();
    assert_eq!(lines.len(), 1, "{logged}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("2 dossier, 1 system"),
        "{}",
        lines[0]
    );
}

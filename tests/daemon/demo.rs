//! `iocd demo` as a newcomer runs it: nothing but the binary. It must serve a snapshot with
//! all three sources live within 60 seconds, and a taken port is a clear error naming the
//! port and the flag to change it.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::process::{Reaper, iocd, stop_with};
use crate::helpers::{free_port, http_get, http_get_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_all_three_sources_within_a_minute() {
    let (http, mqtt) = (free_port(), free_port());
    let mut reaper = Reaper(
        iocd()
            .args([
                "demo",
                "--listen",
                &format!("127.0.0.1:{http}"),
                "--mqtt-listen",
                &format!("127.0.0.1:{mqtt}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut reaper.0;
    let start = Instant::now();
    let url = format!("http://127.0.0.1:{http}/api/v1/snapshot");
    let snap: Value = loop {
        if let Ok((_, v)) = http_get_json(&url).await {
            {
                let live = ["onestop", "vc", "soc"]
                    .iter()
                    .all(|s| v["sources"][s]["last_event_at"].is_string());
                let positive = |x: &Value| x.as_u64().unwrap_or(0) > 0;
                let full = positive(&v["onestop"]["today"]["received"])
                    && positive(&v["onestop"]["stalled"])
                    && positive(&v["onestop"]["due_soon"])
                    && positive(&v["vc"]["endpoints_missing"])
                    && positive(&v["vc"]["endpoints_poor_quality"])
                    && positive(&v["soc"]["systems_silent"])
                    && v["onestop"]["overdue"].as_u64().unwrap_or(0) > 0
                    && v["vc"]["meetings_active"].as_u64().unwrap_or(0) > 0
                    && v["soc"]["incidents_unacknowledged"]["critical"]
                        .as_u64()
                        .unwrap_or(0)
                        > 0
                    && v["alerts"].as_array().is_some_and(|a| a.len() >= 3);
                if live && full {
                    break v;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the demo did not fill the wall within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("demo: every panel filled after {:?}", start.elapsed());
    for figure in [
        &snap["onestop"]["today"]["received"],
        &snap["onestop"]["stalled"],
        &snap["onestop"]["due_soon"],
        &snap["vc"]["endpoints_missing"],
        &snap["vc"]["endpoints_poor_quality"],
        &snap["soc"]["systems_silent"],
    ] {
        assert!(figure.as_u64().unwrap_or(0) > 0, "{snap}");
    }
    // Every agency on the wall's list is named from the example directory, and no code the
    // simulator sends is missing from it.
    let worst = &snap["onestop"]["worst_agencies"];
    assert!(
        worst
            .as_array()
            .is_some_and(|w| !w.is_empty() && w.iter().all(|r| r["name"].is_string())),
        "{worst}"
    );
    let (_, ready) = http_get_json(&format!("http://127.0.0.1:{http}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready["directory"]["unknown_agencies"], 0, "{ready}");
    assert!(
        ready["directory"]["agencies"].as_u64().unwrap_or(0) > 150,
        "{ready}"
    );
    let (status, ()) = (
        http_get(&format!("http://127.0.0.1:{http}/"))
            .await
            .unwrap()
            .0,
        (),
    );
    assert_eq!(status, 200, "the wall page is served");
    let (status, _) = stop_with(child, "-TERM", Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}

#[test]
fn a_taken_port_names_the_port_and_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (flag, other) in [("--listen", "--mqtt-listen"), ("--mqtt-listen", "--listen")] {
        let out = iocd()
            .args([
                "demo",
                flag,
                &format!("127.0.0.1:{port}"),
                other,
                &format!("127.0.0.1:{}", free_port()),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&port.to_string()) && stderr.contains(flag),
            "{flag}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        let said = stderr
            .lines()
            .filter(|l| l.contains(&port.to_string()))
            .count();
        assert_eq!(said, 1, "said once: {stderr}");
    }
}

/// Holds `addr` for the test when it is free; when something else holds it, it is taken
/// already, which is what the test needs.
fn hold(addr: &str) -> Option<TcpListener> {
    TcpListener::bind(addr).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_1883_and_8080_taken_the_demo_moves_says_so_and_runs_20_s_without_a_warning() {
    let _mqtt = hold("127.0.0.1:1883");
    let _http = hold("127.0.0.1:8080");
    let mut reaper = Reaper(
        iocd()
            .arg("demo")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = reaper.0.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stderr_thread = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    let field = |name: &str| {
        lines.lock().unwrap().iter().find_map(|l| {
            l.trim_start()
                .strip_prefix(name)
                .map(|v| v.trim().to_owned())
        })
    };
    let start = Instant::now();
    while field("try:").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no start block: {:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = lines.lock().unwrap().join("\n");
    let moved: Vec<&str> = all.lines().filter(|l| l.contains("is taken")).collect();
    assert_eq!(moved.len(), 1, "one line says what moved: {all}");
    assert!(
        moved[0].contains("1883") && moved[0].contains("8080"),
        "{all}"
    );
    let wall = field("wall:").unwrap();
    let wall = wall
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/');
    assert!(!wall.ends_with(":8080"), "{all}");
    let broker = field("broker:").unwrap();
    assert!(
        broker.starts_with("mqtt://127.0.0.1:") && !broker.contains(":1883 "),
        "{all}"
    );

    // The printed line works as it is: the dossier it sends is accepted and due soon.
    let try_line = field("try:").unwrap();
    let id = try_line
        .split("\"dossier_id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let out = Command::new("sh").args(["-c", &try_line]).output().unwrap();
    assert!(out.status.success(), "{try_line}: {out:?}");
    let url = format!("{wall}/api/v1/onestop/dossiers?status=due_soon&limit=1000");
    let found = loop {
        if let Ok((_, body)) = http_get(&url).await
            && body.contains(&id)
        {
            break true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(found, "{id} is not among the dossiers due soon");

    // A healthy demo says nothing alarming: 20 s of it, no WARN or ERROR line.
    let quiet_from = Instant::now();
    while quiet_from.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(reaper.0.try_wait().unwrap().is_none(), "the demo stopped");
    }
    stop_with(&mut reaper.0, "-TERM", Duration::from_secs(5)).await;
    stderr_thread.join().unwrap();
    let all = lines.lock().unwrap().join("\n");
    let alarming: Vec<&str> = all
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(alarming.is_empty(), "warnings or errors: {alarming:#?}");
    eprintln!("demo stderr:\n{all}");
}

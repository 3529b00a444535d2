//! `iocd demo` as a newcomer runs it: nothing but the binary. It must serve a snapshot with
//! all three sources live within 60 seconds, and a taken port is a clear error naming the
//! port and the flag to change it.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn iocd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iocd"))
}

/// Kills the demo if the test fails before stopping it.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
        if let Ok(resp) = reqwest::get(&url).await {
            if let Ok(v) = resp.json::<Value>().await {
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
    let (status, _) = (
        reqwest::get(format!("http://127.0.0.1:{http}/"))
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(status, 200, "the wall page is served");
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "the demo did not stop within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    }
}

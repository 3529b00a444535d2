//! The `iocd` binary as an operator runs it: signals, exit statuses, bad configuration,
//! JSON logs.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ExitStatus, Output, Stdio};
use std::time::Duration;

use crate::helpers::process::{config_file, iocd};
use crate::helpers::{broker::TestBroker, free_port, http_get, http_get_json, wait_for};

/// Starts `iocd run` against `broker` and waits until `/readyz` answers 200.
async fn start(broker: &TestBroker, extra: &[&str]) -> (Child, u16) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "");
    let child = iocd()
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--mqtt",
            &broker.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
    wait_for("iocd to be ready", || {
        let url = url.clone();
        async move { http_get(&url).await.is_ok_and(|(status, _)| status == 200) }
    })
    .await;
    (child, port)
}

/// What `child` wrote to its (piped) standard error, once it has exited.
fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// Sends `signal` and returns the exit status and how long the stop took (at most 10 s).
async fn stop_with(child: &mut Child, signal: &str) -> (ExitStatus, Duration) {
    crate::helpers::process::stop_with(child, signal, Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_the_daemon_cleanly_within_5_seconds() {
    let broker = TestBroker::start();
    for signal in ["-TERM", "-INT"] {
        let (mut child, _) = start(&broker, &[]).await;
        let (status, took) = stop_with(&mut child, signal).await;
        assert!(status.success(), "{signal}: exit status {status}");
        assert!(took < Duration::from_secs(5), "{signal}: took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let broker = TestBroker::start();
    let (mut child, _) = start(&broker, &["--log-format", "json"]).await;
    let (status, _) = stop_with(&mut child, "-TERM").await;
    assert!(status.success());
    let stderr = stderr_of(&mut child);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

/// `iocd run --config config`, to its exit.
fn run_with_config(config: &Path) -> Output {
    iocd()
        .args(["run", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn a_bad_config_file_exits_non_zero_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[mqtt]\nkeepalive_secs = \"ten\"\n").unwrap();
    let out = run_with_config(&config);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("mqtt.keepalive_secs"),
        "{stderr}"
    );

    std::fs::write(&config, "[onestop]\nstaled_hours = 3\n").unwrap();
    let out = run_with_config(&config);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("staled_hours"));
}

#[test]
fn a_taken_listen_port_is_a_clear_error_naming_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = iocd()
        .args([
            "run",
            "--mqtt",
            "mqtt://127.0.0.1:1",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&port.to_string()) && stderr.contains("--listen"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_data_dir_readyz_is_ready_but_says_it_is_not_durable() {
    let broker = TestBroker::start();
    let (mut child, port) = start(&broker, &["--log-format", "json"]).await;
    let (status, body) = http_get_json(&format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["durable"], false, "{body}");
    let reason = body["durable_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("--data-dir"), "{body}");
    let (status, _) = stop_with(&mut child, "-TERM").await;
    assert!(status.success());
    let stderr = stderr_of(&mut child);
    let start_line = stderr
        .lines()
        .find(|l| l.contains("Starting iocd."))
        .unwrap_or_else(|| panic!("no start line in {stderr}"));
    assert!(start_line.contains("in memory only"), "{start_line}");
}

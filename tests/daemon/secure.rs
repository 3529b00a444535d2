//! A broker that requires TLS and a login, as production brokers do: the daemon connects
//! with `mqtts://`, the configured CA file, a username and a password; a wrong password
//! keeps it not ready (and running, retrying) instead of crashing.

use std::path::Path;
use std::process::Command;

use iocd::config::Settings;
use iocd_testkit as tk;

use crate::helpers::process::iocd;
use crate::helpers::{TIMEOUT, broker::TestBroker, http_get, spawn_app, test_settings, wait_for};

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `localhost` / 127.0.0.1, made with openssl.
fn make_certs(dir: &Path) {
    let p = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=iocd test CA",
        ])
        .args(["-keyout"])
        .arg(p("ca.key"))
        .args(["-out"])
        .arg(p("ca.crt")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-keyout"])
        .arg(p("server.key"))
        .args(["-out"])
        .arg(p("server.csr")));
    std::fs::write(p("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .args(["-in"])
        .arg(p("server.csr"))
        .args(["-CA"])
        .arg(p("ca.crt"))
        .args(["-CAkey"])
        .arg(p("ca.key"))
        .args(["-out"])
        .arg(p("server.crt"))
        .args(["-extfile"])
        .arg(p("ext.cnf")));
}

fn secure_broker(dir: &Path) -> TestBroker {
    make_certs(dir);
    let pw = dir.join("passwd");
    run(Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&pw)
        .args(["iocd", "s3cret"]));
    run(Command::new("mosquitto_passwd")
        .args(["-b"])
        .arg(&pw)
        .args(["vendor", "v3ndor"]));
    let d = |f: &str| dir.join(f).display().to_string();
    TestBroker::start_with(&format!(
        "allow_anonymous false\npassword_file {}\ncafile {}\ncertfile {}\nkeyfile {}\n",
        pw.display(),
        d("ca.crt"),
        d("server.crt"),
        d("server.key")
    ))
}

/// Settings for a daemon logging in to `broker` as `iocd` with `password`, over TLS with the
/// CA of `dir`.
fn tls_settings(broker: &TestBroker, dir: &Path, password: &str) -> Settings {
    let mut settings = test_settings(broker);
    settings.mqtt.url = format!("mqtts://localhost:{}", broker.port)
        .parse()
        .expect("a broker URL");
    settings.mqtt.ca_file = dir.join("ca.crt").display().to_string();
    settings.mqtt.username = "iocd".into();
    settings.mqtt.password = password.into();
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_ingests_over_tls_with_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secure_broker(dir.path());
    let settings = tls_settings(&broker, dir.path(), "s3cret");
    let app = spawn_app(settings).await;
    let payload = tk::heartbeat(tk::VC).id("t1");
    run(Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &broker.port.to_string(), "-q", "1"])
        .args(["--cafile"])
        .arg(dir.path().join("ca.crt"))
        .args(["-u", "vendor", "-P", "v3ndor"])
        .args([
            "-t",
            &format!("{}/vc/hb", app.prefix),
            "-m",
            &payload.to_string(),
        ]));
    app.wait_metric(r#"iocd_events_total{source="vc",type="heartbeat"}"#, 1.0)
        .await;
    app.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_keeps_the_daemon_running_but_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secure_broker(dir.path());
    let settings = tls_settings(&broker, dir.path(), "wrong");
    let app = iocd::app::App::build(settings, None).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let metrics = format!("http://{addr}/metrics");
    wait_for("several refused connection attempts", || {
        let url = metrics.clone();
        async move {
            let (_, body) = http_get(&url).await.unwrap();
            crate::helpers::parse_metrics(&body)
                .get("iocd_mqtt_connection_errors_total")
                .copied()
                .unwrap_or(0.0)
                >= 3.0
        }
    })
    .await;
    let (status, _) = http_get(&format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(status, 503);
    // The broker refused the login (CONNACK), and the counter of disconnects says so.
    let (_, body) = http_get(&metrics).await.unwrap();
    let refused = crate::helpers::parse_metrics(&body)
        .get(r#"iocd_mqtt_disconnects_total{cause="refused"}"#)
        .copied()
        .unwrap_or(0.0);
    assert!(refused >= 3.0, "refusals counted by cause: {refused}");
    assert!(!task.is_finished(), "a broker error never stops the daemon");
    let _ = stop.send(());
    tokio::time::timeout(TIMEOUT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_logs_in_to_a_hardened_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secure_broker(dir.path());
    let settings = tls_settings(&broker, dir.path(), "s3cret");
    let app = spawn_app(settings).await;
    let out = iocd()
        .args([
            "simulate",
            "--mqtt",
            &format!("mqtts://localhost:{}", broker.port),
        ])
        .args(["--prefix", &app.prefix, "--rate", "50", "--duration", "2s"])
        .args(["--username", "vendor", "--password-env", "VENDOR_PASSWORD"])
        .arg("--ca-file")
        .arg(dir.path().join("ca.crt"))
        .env("VENDOR_PASSWORD", "v3ndor")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_for("simulated events to arrive over TLS", || async {
        app.metrics()
            .await
            .iter()
            .filter(|(k, _)| k.starts_with("iocd_events_total{"))
            .map(|(_, v)| v)
            .sum::<f64>()
            > 0.0
    })
    .await;
    // Without the variable, the simulator refuses to start and says which one to set.
    let out = iocd()
        .args([
            "simulate",
            "--mqtt",
            &format!("mqtts://localhost:{}", broker.port),
        ])
        .args(["--username", "vendor", "--duration", "1s"])
        .env_remove("IOCD_MQTT_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("IOCD_MQTT_PASSWORD"));
    app.stop().await.expect("clean stop");
}

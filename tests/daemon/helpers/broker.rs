//! A real Mosquitto per test, on a free local port, with a generated configuration and its
//! persistence in a temporary directory. Killed on `Drop`. The one way the tests start a
//! broker.

// Not every test uses every accessor (`dir`, `is_running`).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use iocd_testkit::free_port;

/// How long [`TestBroker::start`] waits for the port to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often it tries.
const STARTUP_POLL: Duration = Duration::from_millis(20);

/// The default configuration, one `key value` per line. Lines given to
/// [`TestBroker::start_with`] replace the default line with the same key, or are appended.
///
/// - `max_inflight_messages` and `max_queued_messages`: Mosquitto silently drops QoS 1
///   messages for a client whose queue is full (MQTT.md); large values keep tests that stall
///   the consumer lossless.
/// - `max_packet_size 135168`: twice the daemon's default payload limit of 65,536 bytes plus
///   4 KiB for topic and headers, so that tests can publish oversized payloads (which the
///   decoder rejects as `too_large`) and the daemon can publish their dead letters (base64
///   of the cut payload plus JSON, about 90 KiB). A test that needs more overrides it.
/// - persistence with `autosave_on_changes true` and `autosave_interval 1`: every change is
///   saved, so a killed broker comes back with the sessions (MQTT.md: the default autosave
///   of 30 minutes lost a session on `kill -9`).
/// - `user root`: run as root (CI containers), Mosquitto would otherwise switch to the
///   `mosquitto` user, which cannot write the persistence file into our temporary
///   directory. Ignored when the tests do not run as root.
const DEFAULT_CONFIG: &[&str] = &[
    "allow_anonymous true",
    "max_inflight_messages 1000",
    "max_queued_messages 1000000",
    "max_packet_size 135168",
    "persistence true",
    "autosave_on_changes true",
    "autosave_interval 1",
    "user root",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
];

/// A running Mosquitto on `127.0.0.1:port`.
pub struct TestBroker {
    /// The port it listens on (kept across [`TestBroker::restart`]).
    pub port: u16,
    dir: tempfile::TempDir,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl TestBroker {
    /// Starts a broker with the default configuration.
    ///
    /// # Panics
    /// When `mosquitto` is not installed or does not come up within 10 seconds (with its
    /// log in the message).
    #[must_use]
    pub fn start() -> TestBroker {
        Self::start_with("")
    }

    /// Starts a broker with extra configuration lines; a line whose key (first word) is a
    /// default key replaces that default (`"persistence false"`, `"max_packet_size 262144"`).
    ///
    /// # Panics
    /// As [`TestBroker::start`].
    #[must_use]
    pub fn start_with(extra_config_lines: &str) -> TestBroker {
        let dir = tempfile::tempdir().expect("create a temporary directory for mosquitto");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let text = config_text(port, dir.path(), extra_config_lines);
        fs::write(&conf, text).expect("write mosquitto.conf");
        let log = dir.path().join("mosquitto.log");
        let mut broker = TestBroker {
            port,
            dir,
            conf,
            log,
            child: None,
        };
        broker.spawn();
        broker
    }

    /// `mqtt://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The temporary directory holding the configuration, the log and the persistence file.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL, as a crash) and waits for it to exit. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker, then starts it again on the same port with the same configuration
    /// and persistence directory, and waits until it accepts connections.
    ///
    /// # Panics
    /// As [`TestBroker::start`].
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Publishes every line of `payloads` (one message each, no newline inside) on `topic` at
    /// `qos` with `mosquitto_pub -l`, a C client that sends as fast as the broker reads (a
    /// flat-out feed), and waits until it has sent them all and disconnected.
    ///
    /// # Panics
    /// When `mosquitto_pub` is missing or fails.
    pub async fn publish_lines(&self, topic: &str, qos: u8, payloads: Vec<u8>) {
        let mut child = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", topic])
            .args(["-q", &qos.to_string(), "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub runs (apt-get install mosquitto-clients; .ci/run does it)");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let done = tokio::task::spawn_blocking(move || {
            stdin.write_all(&payloads).expect("write to mosquitto_pub");
            drop(stdin);
            child.wait_with_output().expect("mosquitto_pub exits")
        })
        .await
        .expect("the publishing thread joins");
        assert!(
            done.status.success(),
            "mosquitto_pub failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr)
        );
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the mosquitto log file");
        let stderr = log.try_clone().expect("clone the mosquitto log handle");
        let child = Command::new(mosquitto_path())
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        self.wait_until_listening();
    }

    /// Blocks the calling thread (at most [`STARTUP_TIMEOUT`]): the helper is synchronous so
    /// that it works from any test. On a current-thread runtime, other tasks pause for the
    /// broker's startup (typically 20-60 ms), which only delays them.
    #[allow(
        clippy::disallowed_methods,
        reason = "a synchronous helper; the wait is short and bounded"
    )]
    fn wait_until_listening(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, STARTUP_POLL).is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                self.stop();
                panic!(
                    "mosquitto did not come up on port {} (exit: {exited:?}); its log:\n{}",
                    self.port,
                    self.log()
                );
            }
            thread::sleep(STARTUP_POLL);
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `mosquitto` from `PATH`, else `/usr/sbin/mosquitto` (Debian installs it there, outside
/// a normal user's `PATH`).
fn mosquitto_path() -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("mosquitto"))
            .find(|p| p.is_file())
    });
    let path = in_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/mosquitto"));
    assert!(
        path.is_file(),
        "mosquitto is not installed (apt-get install mosquitto; .ci/run does it)"
    );
    path
}

fn config_text(port: u16, dir: &Path, extra: &str) -> String {
    let extra: Vec<&str> = extra
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let key = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    let overridden: Vec<String> = extra.iter().map(|l| key(l)).collect();
    let mut text = String::new();
    let _ = writeln!(text, "listener {port} 127.0.0.1");
    let _ = writeln!(text, "persistence_location {}/", dir.display());
    for line in DEFAULT_CONFIG
        .iter()
        .filter(|l| !overridden.contains(&key(l)))
    {
        let _ = writeln!(text, "{line}");
    }
    for line in extra {
        let _ = writeln!(text, "{line}");
    }
    text
}

//! WebSocket fan-out: `cargo bench --bench ws_fanout` (about one minute).
//!
//! Starts the `iocd` binary as a separate process (so that its CPU and memory are measured
//! alone) with the embedded MQTT broker, connects 1,000 WebSocket clients on loopback from
//! this process, and while events flow measures the delay from an event's publication to
//! its appearance in the clients' frames, and the daemon's CPU and resident memory.
//!
//! 1. The daemon runs with a generated config: `[mqtt] embedded = true` on a free port, a
//!    unique prefix, `persistent_session = false`, `[http] listen` on a free port,
//!    `[ws] max_clients = 2000`, `push_interval_ms = 500` (the default). Ready = `/readyz`
//!    answers 200.
//! 2. `VmRSS` of the daemon at rest; then 1,000 clients connect (50 handshakes at a time),
//!    each reading frames continuously in its own task; once every client has its first
//!    snapshot and a few seconds have passed, `VmRSS` again: (after − before) / 1,000 is the
//!    memory per idle client.
//! 3. For 30 s a publisher (rumqttc, QoS 1, its own connection) publishes a marker every
//!    100 ms (at a random point of each 100 ms slot, so that markers meet the daemon's
//!    500 ms tick at every phase): a `vc` `heartbeat` whose `occurred_at` is the publication time to the
//!    millisecond, which becomes the snapshot's `sources.vc.last_event_at` (formatted by
//!    `Ts::to_rfc3339` in `Asia/Ho_Chi_Minh`, exactly like the daemon). A second connection
//!    publishes 300 `received` dossier events a second as background load, so every
//!    snapshot changes. Each client notes the arrival instant of every frame whose
//!    `sources.vc.last_event_at` changed. A marker counts as seen by a client at the first
//!    frame showing it or a later marker (snapshots are pushed at most every
//!    `push_interval`, so several markers can be coalesced into one frame); delay = that
//!    arrival − the marker's publication instant, over all (client, marker) pairs.
//! 4. The daemon's CPU (`utime + stime` of `/proc/<pid>/stat`) over the flow, in % of one
//!    core, and its `VmRSS` sampled during the flow.
//!
//! Targets (the issue): p99 delay ≤ `push_interval` + 50 ms; ≤ 10 KB of daemon memory per
//! idle client. Both clients and daemon share this machine, so on a small machine the
//! clients' own work (1,000 sockets reading every frame) competes with the daemon for CPU;
//! the bench reports its own CPU too.
//!
//! Without `--bench` (`cargo test --bench '*'` runs benches once as tests, as `.ci/run` does) it
//! makes a short smoke run: 50 clients, 3 s of flow, no targets. `IOCD_WS_FANOUT_CLIENTS` and
//! `IOCD_WS_FANOUT_SECS` override the client count and the flow duration. Figures are in
//! `docs/performance.md`.

// The numeric casts allowed in Cargo.toml ([workspace.lints], with the reason), repeated
// here so that `cargo clippy -- -W clippy::pedantic` on the command line keeps them allowed.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]
// A test or a bench reads as one script, top to bottom: no line cap.
#![allow(clippy::too_many_lines)]

use std::fmt::Write as _;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use iocd::time::Ts;
use iocd_testkit::free_port;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, QoS};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// `[ws] push_interval_ms` given to the daemon (its default).
const PUSH_INTERVAL_MS: u64 = 500;
/// Time between two markers.
const MARKER_EVERY: Duration = Duration::from_millis(100);
/// Background dossier events per second.
const BACKGROUND_PER_SEC: u64 = 300;
/// Background events are sent in bursts this often.
const BACKGROUND_STEP: Duration = Duration::from_millis(10);
/// Concurrent WebSocket handshakes while connecting.
const CONNECT_CONCURRENCY: usize = 50;
/// Idle time between the last first-snapshot and the memory reading.
const SETTLE: Duration = Duration::from_secs(3);
/// Time left after the last marker for it to reach every client.
const DRAIN: Duration = Duration::from_secs(2);
/// Target: daemon memory per idle client.
const TARGET_BYTES_PER_CLIENT: f64 = 10_000.0;
/// Centrifugo's figure, for reference.
const CENTRIFUGO_BYTES_PER_CLIENT: f64 = 27_000.0;
/// Target margin over `push_interval` for the p99 delay.
const TARGET_MARGIN_MS: u64 = 50;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter argument other than ours means another bench.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .iter()
        .any(|a| !a.starts_with('-') && !"ws_fanout".contains(a.as_str()))
    {
        return ExitCode::SUCCESS;
    }
    let full = args.iter().any(|a| a == "--bench");
    let plan = Plan::new(full);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ws_fanout: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_fanout: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What to run.
struct Plan {
    clients: usize,
    flow: Duration,
    /// Full run (`cargo bench`): targets are judged.
    full: bool,
}

impl Plan {
    fn new(full: bool) -> Plan {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let (clients, secs) = if full { (1000, 30) } else { (50, 3) };
        Plan {
            clients: env("IOCD_WS_FANOUT_CLIENTS").map_or(clients, |n| n.max(1) as usize),
            flow: Duration::from_secs(env("IOCD_WS_FANOUT_SECS").map_or(secs, |s| s.max(1))),
            full,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The daemon process
// ---------------------------------------------------------------------------------------

/// The running daemon; killed when dropped.
struct Daemon {
    child: Child,
    http: String,
    mqtt_port: u16,
    prefix: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's stderr so far (its last 2,000 characters).
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    async fn start() -> anyhow::Result<Daemon> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let mqtt_port = free_port();
        let http_port = free_port();
        let tag = format!("wsbench{}", std::process::id());
        let prefix = format!("{tag}/v1");
        let config = dir.path().join("iocd.toml");
        std::fs::write(
            &config,
            format!(
                "[mqtt]\nembedded = true\nembedded_listen = \"127.0.0.1:{mqtt_port}\"\n\
                 client_id = \"{tag}\"\nprefix = \"{prefix}\"\npersistent_session = false\n\
                 [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
                 [ws]\nmax_clients = 2000\npush_interval_ms = {PUSH_INTERVAL_MS}\n\
                 [log]\nlevel = \"warn\"\n"
            ),
        )
        .context("writing the config file")?;
        let log = dir.path().join("iocd.log");
        let stderr = std::fs::File::create(&log).context("creating the log file")?;
        let child = Command::new(env!("CARGO_BIN_EXE_iocd"))
            .args(["run", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting target/release/iocd")?;
        let mut daemon = Daemon {
            child,
            http: format!("127.0.0.1:{http_port}"),
            mqtt_port,
            prefix,
            log,
            _dir: dir,
        };
        let url = format!("http://{}/readyz", daemon.http);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                bail!(
                    "iocd exited at start ({status}); its log:\n{}",
                    daemon.log_tail()
                );
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                return Ok(daemon);
            }
            if Instant::now() > deadline {
                bail!(
                    "iocd was not ready within 30 s; its log:\n{}",
                    daemon.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/metrics` as text ("" when unreachable).
    async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.http);
        let Ok(http) = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
        else {
            return String::new();
        };
        match http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// A value of `/proc/<pid>/status` in kB (`VmRSS`, `RssAnon`, …), in bytes.
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS").unwrap_or(0)
}

/// Busy CPU ticks of the whole machine, all cores (`/proc/stat`: everything but idle
/// and iowait).
fn machine_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    v.iter().take(8).sum::<u64>() - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0)
}

/// CPU ticks of every process now: pid → (command name, `utime + stime`).
fn all_cpu_ticks() -> std::collections::HashMap<u32, (String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return std::collections::HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
            Some((pid, (name, cpu_ticks(&pid.to_string()))))
        })
        .collect()
}

/// The processes other than `exclude` that used the most CPU between two readings of
/// [`all_cpu_ticks`], by command name: (name, ticks), most first; and their total.
fn other_cpu(
    before: &std::collections::HashMap<u32, (String, u64)>,
    after: &std::collections::HashMap<u32, (String, u64)>,
    exclude: &[u32],
) -> (Vec<(String, u64)>, u64) {
    let mut by_name: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (pid, (name, ticks)) in after.iter().filter(|(pid, _)| !exclude.contains(pid)) {
        let earlier = before.get(pid).map_or(0, |(_, t)| *t);
        *by_name.entry(name.as_str()).or_default() += ticks.saturating_sub(earlier);
    }
    let total = by_name.values().sum();
    let mut top: Vec<(String, u64)> = by_name
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .map(|(n, t)| (n.to_owned(), t))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (top, total)
}

/// `utime + stime` of a process, in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) may hold spaces; the fields after it start at field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The soft limit on open files of this process (the daemon inherits it).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// A counter or gauge of the exposition: the sum over the series of `name` whose labels
/// contain every one of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------------
// WebSocket clients
// ---------------------------------------------------------------------------------------

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    connected: bool,
    frames: u64,
    bytes: u64,
    /// Arrival instant and value of each frame whose `sources.vc.last_event_at` changed.
    changes: Vec<(Instant, String)>,
    /// For each snapshot frame after the first: its arrival (wall clock) − its `at`, the
    /// instant the daemon built the view: the daemon's fan-out time alone.
    fanout: Vec<Duration>,
    /// Why the connection ended before the bench stopped it.
    ended: Option<String>,
}

/// `at` of a snapshot frame: the instant the daemon built its view (RFC 3339, ms).
fn snapshot_at(frame: &str) -> Option<Ts> {
    let rest = frame.strip_prefix(r#"{"type":"snapshot","seq":"#)?;
    let rest = &rest[rest.find(r#","at":""#)? + r#","at":""#.len()..];
    iocd::time::parse_rfc3339(&rest[..rest.find('"')?]).ok()
}

/// `sources.vc.last_event_at` of a snapshot frame (`None` for other frames or `null`).
///
/// `sources` is the last member of a snapshot frame (src/outputs/snapshot.rs), so only that
/// small tail is parsed; the whole frame is parsed if that ever fails.
fn vc_last_event_at(frame: &str) -> Option<String> {
    if !frame.starts_with(r#"{"type":"snapshot""#) {
        return None;
    }
    let from_tail = frame.rfind(r#""sources":"#).and_then(|i| {
        let tail = frame.get(i + r#""sources":"#.len()..frame.len() - 1)?;
        serde_json::from_str::<serde_json::Value>(tail).ok()
    });
    let sources = match from_tail {
        Some(v) => v,
        None => serde_json::from_str::<serde_json::Value>(frame)
            .ok()?
            .get("sources")?
            .clone(),
    };
    sources
        .get("vc")?
        .get("last_event_at")?
        .as_str()
        .map(str::to_owned)
}

/// Connects (within `handshakes`) and reads frames until `stop`.
async fn client(
    url: String,
    handshakes: Arc<Semaphore>,
    first: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> ClientLog {
    let mut log = ClientLog::default();
    let connected = {
        let Ok(_permit) = handshakes.acquire().await else {
            return log;
        };
        tokio::time::timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(url),
        )
        .await
    };
    let mut ws = match connected {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            log.ended = Some(format!("connect: {e}"));
            return log;
        }
        Err(_) => {
            log.ended = Some("connect: timed out after 20 s".into());
            return log;
        }
    };
    log.connected = true;
    let mut last: Option<String> = None;
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            msg = ws.next() => msg,
        };
        let arrival = Instant::now();
        match msg {
            Some(Ok(Message::Text(text))) => {
                log.frames += 1;
                log.bytes += text.len() as u64;
                if log.frames > 1
                    && let Some(at) = snapshot_at(text.as_str())
                {
                    let late = Ts::now().0.saturating_sub(at.0).max(0);
                    log.fanout.push(Duration::from_nanos(late as u64));
                }
                if log.frames == 1 {
                    first.fetch_add(1, Ordering::Relaxed);
                }
                let value = vc_last_event_at(text.as_str());
                if value.is_some() && value != last {
                    log.changes
                        .push((arrival, value.clone().unwrap_or_default()));
                    last = value;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                log.ended = Some(format!("closed by the daemon: {frame:?}"));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                log.ended = Some(format!("read: {e}"));
                break;
            }
            None => {
                log.ended = Some("connection ended".into());
                break;
            }
        }
    }
    log
}

// ---------------------------------------------------------------------------------------
// MQTT publishers
// ---------------------------------------------------------------------------------------

/// Connects a rumqttc client to the embedded broker and waits for its CONNACK; the event
/// loop keeps running in a task until `stop`.
async fn publisher(port: u16, id: &str, stop: CancellationToken) -> anyhow::Result<AsyncClient> {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_inflight(1000);
    opts.set_clean_session(true);
    let (client, eventloop) = AsyncClient::new(opts, 10_000);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(drive(eventloop, ready_tx, stop));
    match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
        Ok(Ok(())) => Ok(client),
        _ => bail!(
            "MQTT publisher {id} got no CONNACK from the embedded broker on port {port} within 10 s"
        ),
    }
}

async fn drive(
    mut eventloop: EventLoop,
    ready: tokio::sync::oneshot::Sender<()>,
    stop: CancellationToken,
) {
    let mut ready = Some(ready);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Publishes a marker heartbeat every 100 ms for `flow`; returns each marker's
/// `occurred_at` as the daemon formats it, and its publication instant.
async fn publish_markers(
    client: AsyncClient,
    topic: String,
    flow: Duration,
    tz: jiff::tz::TimeZone,
) -> Vec<(String, Instant)> {
    let mut markers = Vec::new();
    let start = tokio::time::Instant::now();
    let mut last_ms = 0;
    for slot in 0u32.. {
        // One marker at a random point of each 100 ms slot: a fixed period would meet the
        // daemon's 500 ms tick at only five phases and make the percentiles discrete.
        let slot_start = start + MARKER_EVERY * slot;
        if slot_start >= start + flow {
            break;
        }
        let jitter = Duration::from_micros(rand::random_range(0..MARKER_EVERY.as_micros() as u64));
        tokio::time::sleep_until(slot_start + jitter).await;
        let ms = Ts::now().0 / 1_000_000;
        if ms == last_ms {
            continue; // two markers in one millisecond would be indistinguishable
        }
        last_ms = ms;
        let occurred_at = Ts(ms * 1_000_000).to_rfc3339(&tz);
        let payload = format!(
            r#"{{"event_id":"marker-{}","type":"heartbeat","occurred_at":"{occurred_at}"}}"#,
            markers.len()
        );
        let published = Instant::now();
        if client
            .publish(&topic, QoS::AtLeastOnce, false, payload)
            .await
            .is_err()
        {
            break;
        }
        markers.push((occurred_at, published));
    }
    markers
}

/// Publishes `received` dossier events at `BACKGROUND_PER_SEC` for `flow`; returns how
/// many were published.
async fn publish_background(
    client: AsyncClient,
    topic: String,
    flow: Duration,
    tz: jiff::tz::TimeZone,
) -> u64 {
    let per_step = BACKGROUND_PER_SEC * BACKGROUND_STEP.as_millis() as u64 / 1000;
    let mut tick = tokio::time::interval(BACKGROUND_STEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut sent = 0u64;
    let run = std::process::id();
    let mut payload = String::with_capacity(400);
    while start.elapsed() < flow {
        tick.tick().await;
        let now = Ts::now();
        let occurred_at = now.to_rfc3339(&tz);
        let due_at = now.plus_secs(10 * 86_400).to_rfc3339(&tz);
        for _ in 0..per_step {
            payload.clear();
            let _ = write!(
                payload,
                r#"{{"event_id":"bg-{run}-{sent}","type":"received","occurred_at":"{occurred_at}","dossier_id":"000.00.{:02}.H42-{run}-{sent:06}","agency":"000.00.{:02}.H42","procedure":"1.{:06}","channel":"{}","due_at":"{due_at}"}}"#,
                sent % 50,
                sent % 50,
                sent % 2000,
                if sent.is_multiple_of(8) {
                    "direct"
                } else {
                    "online"
                },
            );
            if client
                .publish(&topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .is_err()
            {
                return sent;
            }
            sent += 1;
        }
    }
    sent
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Delays of every (client, marker) pair, and how many pairs were never seen.
fn delays(logs: &[ClientLog], markers: &[(String, Instant)]) -> (Vec<Duration>, u64) {
    let index: std::collections::HashMap<&str, usize> = markers
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.as_str(), i))
        .collect();
    let mut all = Vec::with_capacity(logs.len() * markers.len());
    let mut unseen = 0u64;
    for log in logs.iter().filter(|l| l.connected) {
        let mut next = 0; // first marker not yet seen by this client
        for (arrival, value) in &log.changes {
            let Some(&shown) = index.get(value.as_str()) else {
                continue;
            };
            while next <= shown {
                all.push(arrival.saturating_duration_since(markers[next].1));
                next += 1;
            }
        }
        unseen += (markers.len() - next) as u64;
    }
    all.sort_unstable();
    (all, unseen)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn run(plan: &Plan) -> anyhow::Result<()> {
    let needed = plan.clients as u64 * 2 + 100;
    match open_files_limit() {
        Some(limit) if limit < needed => bail!(
            "the open-files limit is {limit}; {} clients need at least {needed} (one socket each \
             in this process and in the daemon). Raise it, e.g. `ulimit -n 4096`, and run again.",
            plan.clients
        ),
        Some(_) => {}
        None => {
            eprintln!("ws_fanout: could not read /proc/self/limits; assuming enough open files");
        }
    }
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").context("time zone Asia/Ho_Chi_Minh")?;
    let tck = clock_ticks_per_sec();
    let load_start = loadavg();
    println!(
        "ws_fanout: {} clients, {} s of flow, push_interval {PUSH_INTERVAL_MS} ms, load average at start {load_start}",
        plan.clients,
        plan.flow.as_secs(),
    );

    let daemon = Daemon::start().await?;
    let pid = daemon.pid();
    let me = std::process::id().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_rest = rss(pid);
    let anon_rest = status_bytes(pid, "RssAnon").unwrap_or(0);

    // Connect the clients.
    let stop = CancellationToken::new();
    let first = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let url = format!("ws://{}/ws", daemon.http);
    let connect_start = Instant::now();
    let tasks: Vec<_> = (0..plan.clients)
        .map(|_| {
            tokio::spawn(client(
                url.clone(),
                Arc::clone(&handshakes),
                Arc::clone(&first),
                stop.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.load(Ordering::Relaxed) < plan.clients && Instant::now() < deadline {
        if tasks.iter().all(tokio::task::JoinHandle::is_finished) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let with_snapshot = first.load(Ordering::Relaxed);
    let connect_time = connect_start.elapsed();
    if with_snapshot == 0 {
        stop.cancel();
        bail!(
            "no client received a snapshot; the daemon's log:\n{}",
            daemon.log_tail()
        );
    }
    let idle_cpu0 = cpu_ticks(&pid.to_string());
    tokio::time::sleep(SETTLE).await;
    let idle_cpu = cpu_ticks(&pid.to_string()) - idle_cpu0;
    let rss_idle = rss(pid);
    let anon_idle = status_bytes(pid, "RssAnon").unwrap_or(0);
    let per_client = rss_idle.saturating_sub(rss_rest) as f64 / with_snapshot as f64;
    let per_client_anon = anon_idle.saturating_sub(anon_rest) as f64 / with_snapshot as f64;

    // Let events flow.
    let flow_stop = CancellationToken::new();
    let markers_client = publisher(
        daemon.mqtt_port,
        &format!("wsbench-markers-{me}"),
        flow_stop.clone(),
    )
    .await?;
    let load_client = publisher(
        daemon.mqtt_port,
        &format!("wsbench-load-{me}"),
        flow_stop.clone(),
    )
    .await?;
    let cpu0 = (cpu_ticks(&pid.to_string()), cpu_ticks(&me));
    let others0 = all_cpu_ticks();
    let machine0 = machine_busy_ticks();
    let flow_start = Instant::now();
    let markers = tokio::spawn(publish_markers(
        markers_client,
        format!("{}/vc/bench", daemon.prefix),
        plan.flow,
        tz.clone(),
    ));
    let background = tokio::spawn(publish_background(
        load_client,
        format!("{}/onestop/bench", daemon.prefix),
        plan.flow,
        tz.clone(),
    ));
    let mut rss_peak = 0u64;
    while !markers.is_finished() {
        rss_peak = rss_peak.max(rss(pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let markers = markers.await.context("marker publisher")?;
    let background = background.await.context("background publisher")?;
    let flow_time = flow_start.elapsed();
    let cpu1 = (cpu_ticks(&pid.to_string()), cpu_ticks(&me));
    let others1 = all_cpu_ticks();
    let machine1 = machine_busy_ticks();
    tokio::time::sleep(DRAIN).await;
    rss_peak = rss_peak.max(rss(pid));
    let rss_end = rss(pid);
    stop.cancel();
    let mut logs = Vec::with_capacity(tasks.len());
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(log)) => logs.push(log),
            _ => logs.push(ClientLog::default()),
        }
    }
    let metrics = daemon.metrics().await;
    flow_stop.cancel();
    let load_end = loadavg();
    drop(daemon);

    // Figures.
    let connected = logs.iter().filter(|l| l.connected).count();
    let dropped: Vec<&String> = logs
        .iter()
        .filter(|l| l.connected)
        .filter_map(|l| l.ended.as_ref())
        .collect();
    let failed: Vec<&String> = logs
        .iter()
        .filter(|l| !l.connected)
        .filter_map(|l| l.ended.as_ref())
        .collect();
    let frames: u64 = logs.iter().map(|l| l.frames).sum();
    let bytes: u64 = logs.iter().map(|l| l.bytes).sum();
    let (all, unseen) = delays(&logs, &markers);
    let mut fanout: Vec<Duration> = logs.iter().flat_map(|l| l.fanout.iter().copied()).collect();
    fanout.sort_unstable();
    let secs = |ticks: u64| ticks as f64 / tck as f64;
    let daemon_cpu = secs(cpu1.0 - cpu0.0) / flow_time.as_secs_f64() * 100.0;
    let bench_cpu = secs(cpu1.1 - cpu0.1) / flow_time.as_secs_f64() * 100.0;
    let idle_cpu_pct = secs(idle_cpu) / SETTLE.as_secs_f64() * 100.0;
    let p50 = percentile(&all, 50.0);
    let p90 = percentile(&all, 90.0);
    let p99 = percentile(&all, 99.0);
    let max = all.last().copied().unwrap_or_default();
    let target_ms = PUSH_INTERVAL_MS + TARGET_MARGIN_MS;
    let heartbeats = metric(
        &metrics,
        "iocd_events_total",
        &[r#"source="vc""#, r#"type="heartbeat""#],
    );
    let received = metric(&metrics, "iocd_events_total", &[r#"source="onestop""#]);
    let rejected = metric(&metrics, "iocd_events_rejected_total", &[]);
    let lagged = metric(&metrics, "iocd_ws_lagged_total", &[]);
    let slow = metric(&metrics, "iocd_ws_slow_disconnects_total", &[]);

    println!();
    println!(
        "WebSocket fan-out ({} mode)",
        if plan.full { "bench" } else { "smoke" }
    );
    println!(
        "  clients connected / with a first snapshot   {connected} / {with_snapshot} of {} ({:.1} s)",
        plan.clients,
        connect_time.as_secs_f64()
    );
    println!(
        "  connections failed / dropped during the run {} / {}",
        failed.len(),
        dropped.len()
    );
    for reason in failed.iter().chain(dropped.iter()).take(3) {
        println!("    e.g. {reason}");
    }
    println!("  push_interval                               {PUSH_INTERVAL_MS} ms");
    println!(
        "  flow                                        {:.1} s: {} markers (vc heartbeat every 100 ms), {} background dossier events ({:.0}/s)",
        flow_time.as_secs_f64(),
        markers.len(),
        background,
        background as f64 / flow_time.as_secs_f64()
    );
    println!(
        "  daemon accepted                             {heartbeats} vc heartbeats, {received} onestop events, {rejected} rejected"
    );
    println!(
        "  frames received                             {frames} ({:.1} per client, {:.0} bytes each on average)",
        frames as f64 / connected.max(1) as f64,
        bytes as f64 / frames.max(1) as f64
    );
    println!("  daemon: lagged clients / slow disconnects   {lagged} / {slow}");
    println!(
        "  publication → frame delay, {} (client, marker) pairs:",
        all.len()
    );
    println!(
        "    median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max)
    );
    println!("    pairs never seen                          {unseen}");
    println!(
        "  daemon fan-out alone (frame arrival − its `at`), {} frames: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        fanout.len(),
        ms(percentile(&fanout, 50.0)),
        ms(percentile(&fanout, 99.0)),
        ms(fanout.last().copied().unwrap_or_default())
    );
    println!(
        "  daemon RSS at rest                          {:.1} MiB",
        mib(rss_rest)
    );
    println!(
        "  daemon RSS with {with_snapshot} idle clients              {:.1} MiB (+{:.1} MiB)",
        mib(rss_idle),
        mib(rss_idle.saturating_sub(rss_rest))
    );
    println!(
        "  daemon memory per idle client               {per_client:.0} bytes (RssAnon: {per_client_anon:.0} bytes)"
    );
    println!("  daemon CPU, idle clients                    {idle_cpu_pct:.1} % of one core");
    println!("  daemon CPU during flow                      {daemon_cpu:.1} % of one core");
    println!("  bench process CPU during flow (clients)     {bench_cpu:.1} % of one core");
    let (top, others) = other_cpu(&others0, &others1, &[pid, std::process::id()]);
    let pct = |ticks: u64| secs(ticks) / flow_time.as_secs_f64() * 100.0;
    let top: Vec<String> = top
        .iter()
        .take(4)
        .map(|(name, t)| format!("{name} {:.0} %", pct(*t)))
        .collect();
    println!(
        "  whole machine busy during flow              {:.0} % of one core ({} cores)",
        pct(machine1.saturating_sub(machine0)),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    println!(
        "  other processes during flow                 {:.0} % of one core (still running at the end: {})",
        pct(others),
        top.join(", ")
    );
    println!(
        "  daemon RSS during flow                      peak {:.1} MiB, after the flow {:.1} MiB",
        mib(rss_peak),
        mib(rss_end)
    );
    println!("  load average at start / end                 {load_start} / {load_end}");
    println!();
    if plan.full {
        let p99_ok = ms(p99) <= target_ms as f64 && unseen == 0;
        let mem_ok = per_client <= TARGET_BYTES_PER_CLIENT;
        println!("Targets");
        println!(
            "  p99 delay ≤ push_interval + {TARGET_MARGIN_MS} ms = {target_ms} ms, every marker seen: {:.1} ms, {unseen} unseen  {}",
            ms(p99),
            verdict(p99_ok)
        );
        println!(
            "  ≤ {:.0} KB per idle client (Centrifugo ≈ {:.0} KB): {:.1} KB  {}",
            TARGET_BYTES_PER_CLIENT / 1000.0,
            CENTRIFUGO_BYTES_PER_CLIENT / 1000.0,
            per_client / 1000.0,
            verdict(mem_ok)
        );
    } else if all.is_empty() || connected == 0 {
        bail!("the smoke run saw no marker in any frame");
    }
    Ok(())
}

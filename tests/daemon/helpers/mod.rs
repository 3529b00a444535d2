//! The one set of test helpers: a real broker per test ([`broker::TestBroker`]), the real
//! daemon in-process on a free port ([`spawn_app`]) or as a process ([`process`]), a
//! publisher, a dead-letter collector, `/metrics` parsing, and [`wait_for`]. No sleeps as
//! synchronisation: everything waits on something observable, with a timeout. Event
//! payloads come from `iocd_testkit`.

pub mod broker;
pub mod nats;
pub mod openapi;
pub mod process;

pub use iocd_testkit::free_port;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use broker::TestBroker;
use iocd::app::App;
use iocd::config::Settings;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous: covers a broker restart plus the reconnect backoff.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Test logs only when `TEST_LOG` is set.
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("iocd=debug,info")
                .with_test_writer()
                .try_init();
        }
    });
}

/// A name no other test or run uses.
pub fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The daemon, running in this process.
pub struct TestApp {
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// Its topic prefix (unique per test).
    pub prefix: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), iocd::app::AppError>>>,
    http: reqwest::Client,
}

/// The first of `names` installed (on `PATH`, or in `/usr/bin` or `/usr/sbin`). When none
/// is: `None` with a note (the test is skipped), or a failure under `CI`, where `.ci/run`
/// installs the Debian package `package`.
pub fn installed(names: &[&str], package: &str) -> Option<std::path::PathBuf> {
    let dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let found = names.iter().find_map(|name| {
        dirs.iter()
            .map(std::path::PathBuf::as_path)
            .chain([
                std::path::Path::new("/usr/bin"),
                std::path::Path::new("/usr/sbin"),
            ])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is required in CI (.ci/run installs the package {package})",
            names.join(" or ")
        );
        eprintln!(
            "NOTE: {} not installed (apt-get install --no-install-recommends {package}); test skipped outside CI",
            names.join(" or ")
        );
    }
    found
}

/// Settings for a test daemon against `broker`: port 0, unique client id and prefix, fast
/// reconnects.
pub fn test_settings(broker: &TestBroker) -> Settings {
    let mut s = Settings::default();
    s.mqtt.url = broker.url().parse().expect("a broker URL");
    s.mqtt.client_id = unique("iocd");
    s.mqtt.prefix = format!("{}/v1", unique("ioc"));
    s.mqtt.reconnect_min = Duration::from_millis(50);
    s.mqtt.reconnect_max = Duration::from_millis(500);
    s.mqtt.keepalive = Duration::from_secs(5);
    s.http.listen = ([127, 0, 0, 1], 0).into();
    // One alert per agency from one dossier, no province digest: the tests follow one
    // agency's alert (the shipped grouping is tested in the alert engine's tests).
    s.alerts.dossier_overdue.min_count = 1;
    s.alerts.dossier_stalled.min_count = 1;
    s.alerts.dossier_digest = false;
    s
}

/// Builds and runs the daemon with `settings`, and waits until it is ready.
pub async fn spawn_app(settings: Settings) -> TestApp {
    Box::pin(spawn_app_in(settings, None)).await
}

/// [`spawn_app`] with a data directory (durable mode) when one is given.
pub async fn spawn_app_in(settings: Settings, data_dir: Option<std::path::PathBuf>) -> TestApp {
    init_logs();
    let prefix = settings.mqtt.prefix.clone();
    let app = Box::pin(App::build(settings, data_dir))
        .await
        .expect("app builds");
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let app = TestApp {
        addr,
        prefix,
        stop: Some(stop),
        task: Some(task),
        http: reqwest::Client::new(),
    };
    app.wait_ready().await;
    app
}

impl TestApp {
    /// `GET path`, returning the status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(&format!("http://{}{path}", self.addr))
            .await
            .expect("request")
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let http = self.http.clone();
        let url = format!("http://{}/readyz", self.addr);
        wait_for("the daemon to be ready", || {
            let http = http.clone();
            let url = url.clone();
            async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
    }

    /// Scrapes `/metrics` into `series → value` (series as printed, with labels).
    pub async fn metrics(&self) -> HashMap<String, f64> {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        parse_metrics(&body)
    }

    /// One series' value (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .await
            .get(&canon(series))
            .copied()
            .unwrap_or(0.0)
    }

    /// Waits until `series` reads `value`.
    pub async fn wait_metric(&self, series: &str, value: f64) {
        let start = Instant::now();
        loop {
            let got = self.metric(series).await;
            if (got - value).abs() < 1e-9 {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "{series} is {got}, expected {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the daemon as a signal would, and returns how it ended.
    pub async fn stop(mut self) -> Result<(), iocd::app::AppError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .take()
            .expect("running")
            .await
            .expect("task joins")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Parses the Prometheus text format into `series → value`, series in [`canon`] form.
pub fn parse_metrics(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((canon(series), value.parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of metric `name` (exact name, any labels) in a text exposition.
pub fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            if series.split('{').next() == Some(name) {
                value.parse::<f64>().ok()
            } else {
                None
            }
        })
        .sum()
}

/// Whether a text exposition has at least one sample of metric `name`.
pub fn has_metric(body: &str, name: &str) -> bool {
    body.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(['{', ' ']))
    })
}

/// A series with its labels sorted by name, so `{b="1",a="2"}` and `{a="2",b="1"}` match.
/// (Label values in these tests hold no commas.)
pub fn canon(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_owned();
    };
    let mut labels: Vec<&str> = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|l| !l.is_empty())
        .collect();
    labels.sort_unstable();
    format!("{name}{{{}}}", labels.join(","))
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after [`TIMEOUT`].
pub async fn wait_for<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for_within(what, TIMEOUT, cond).await;
}

/// [`wait_for`], failing after `limit` instead of [`TIMEOUT`].
pub async fn wait_for_within<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Probes every 50 ms until `done` holds for what `probe` returns or `limit` has passed, and
/// returns the last value either way: for waits whose assertions afterwards say what is wrong.
pub async fn poll_until<T, F, Fut>(limit: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let start = Instant::now();
    loop {
        let value = probe().await;
        if done(&value) || start.elapsed() >= limit {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message a [`TestClient`] received: topic and payload.
pub type Received = (String, Vec<u8>);

/// An MQTT client for tests: publishes, and collects what arrives on its subscriptions.
pub struct TestClient {
    client: AsyncClient,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl TestClient {
    /// Connects to `broker`, subscribed to `filters` (QoS 1), and waits for the SUBACKs.
    pub async fn connect(broker: &TestBroker, filters: &[String]) -> TestClient {
        Self::connect_port(broker.port, filters).await
    }

    /// [`TestClient::connect`] to any broker on `127.0.0.1:port` (a NATS node's MQTT port).
    pub async fn connect_port(port: u16, filters: &[String]) -> TestClient {
        let mut opts = MqttOptions::new(unique("test"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        opts.set_inflight(1000);
        let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed_rx) = oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let mut pending = filters.len();
        for f in filters {
            client
                .subscribe(f, QoS::AtLeastOnce)
                .await
                .expect("subscribe queued");
        }
        if pending == 0
            && let Some(tx) = subscribed_tx.take()
        {
            let _ = tx.send(());
        }
        let sink = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        sink.lock()
                            .unwrap()
                            .push((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        pending = pending.saturating_sub(1);
                        if pending == 0
                            && let Some(tx) = subscribed_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // A clean session loses its subscriptions and what was queued for it:
                        // say so, or a test's missing messages have no explanation.
                        eprintln!("test client: connection error: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        tokio::time::timeout(TIMEOUT, subscribed_rx)
            .await
            .expect("subscribed in time")
            .expect("subscribed");
        TestClient {
            client,
            received,
            task,
        }
    }

    /// Publishes `payload` on `topic` at QoS 1.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish queued");
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<(String, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET url` on an iocd listener: the status and the body, after checking that the answer
/// is one `docs/openapi.json` documents (path, status and JSON body). Every HTTP answer the
/// end-to-end tests read goes through here, so the document cannot drift from the code.
pub async fn http_get(url: &str) -> Result<(u16, String), reqwest::Error> {
    let resp = reqwest::get(url).await?;
    let status = resp.status().as_u16();
    let body = resp.text().await?;
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    openapi::assert_matches_openapi(path, status, &body);
    Ok((status, body))
}

/// [`http_get`], with the body parsed as JSON.
pub async fn http_get_json(url: &str) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let (status, body) = http_get(url).await?;
    let value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {url}: the body is not JSON ({e}): {body}"));
    Ok((status, value))
}

//! `iocd demo`: everything in one process on a machine with nothing installed.
//!
//! With the embedded broker ([`broker`]) and the simulator, it is left out of a build
//! without the `demo` cargo feature (on by default), which has no rumqttd in it. An
//! embedded MQTT broker, the simulated source systems (in demo mode: a replayed history
//! plus a scripted scene, so that every panel and several alerts show within the first
//! seconds), and the daemon serving the wall display.

pub mod broker;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use tracing::{info, warn};

use crate::app::{App, AppError};
use crate::config::{BrokerUrl, Settings};
use crate::simulate::model::CENTRE;
use crate::simulate::{self, SimError, SimOptions};
use crate::time::Ts;

/// Where the wall is served when `--listen` is not given.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Where the embedded broker listens when `--mqtt-listen` is not given.
pub const DEFAULT_MQTT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);

/// Why the demo could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A default port is taken and the system gave no free one.
    #[error("port {port} is taken and no free port was found")]
    NoFreePort {
        /// The taken default port.
        port: u16,
        /// Why no free port was found.
        source: std::io::Error,
    },
    /// A default address cannot be bound for another reason than being taken.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The simulator's options are not usable (`--faults`).
    #[error(transparent)]
    Simulator(#[from] SimError),
    /// The daemon could not be built.
    #[error("cannot start the demo")]
    Start(#[source] AppError),
    /// The daemon's listen address cannot be read back.
    #[error("cannot read the listen address")]
    LocalAddr(#[source] std::io::Error),
    /// The daemon failed while running.
    #[error(transparent)]
    Run(AppError),
}

/// What the demo listens on.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The HTTP listener (wall, WebSocket, API, metrics). `None`: [`DEFAULT_LISTEN`], or a
    /// free port when that one is taken.
    pub listen: Option<SocketAddr>,
    /// The embedded broker; vendors' test feeds can publish here too. `None`:
    /// [`DEFAULT_MQTT_LISTEN`], or a free port when that one is taken.
    pub mqtt_listen: Option<SocketAddr>,
    /// Seed of the simulation.
    pub seed: u64,
    /// Share of simulated events sent with a fault. None by default: a healthy demo logs no
    /// warning, and each rejected payload would log one.
    pub faults: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            listen: None,
            mqtt_listen: None,
            seed: 2026,
            faults: 0.0,
        }
    }
}

/// An address the demo will listen on, and whether it replaces a taken default.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chosen {
    addr: SocketAddr,
    /// The default port that was taken, when a free port replaces it.
    replaces: Option<u16>,
}

/// The address given by the user as it is (a taken one fails later with a clear message),
/// or `default` when it can be bound, or else a free port on the same host.
fn choose(given: Option<SocketAddr>, default: SocketAddr) -> Result<Chosen, DemoError> {
    if let Some(addr) = given {
        return Ok(Chosen {
            addr,
            replaces: None,
        });
    }
    match TcpListener::bind(default) {
        Ok(probe) => {
            drop(probe);
            Ok(Chosen {
                addr: default,
                replaces: None,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // Ask the system for a free port; it is released just before the broker or
            // the HTTP server binds it, a window no other program is likely to hit.
            let free = TcpListener::bind(SocketAddr::new(default.ip(), 0))
                .and_then(|l| l.local_addr())
                .map_err(|source| DemoError::NoFreePort {
                    port: default.port(),
                    source,
                })?;
            Ok(Chosen {
                addr: free,
                replaces: Some(default.port()),
            })
        }
        Err(source) => Err(DemoError::Listen {
            addr: default,
            source,
        }),
    }
}

/// The settings of the demo daemon: the defaults with the embedded broker.
#[must_use]
pub fn settings(options: &DemoOptions) -> Settings {
    let mut s = Settings::default();
    s.mqtt.embedded = true;
    s.mqtt.embedded_listen = options.mqtt_listen.unwrap_or(DEFAULT_MQTT_LISTEN);
    s.mqtt.client_id = "iocd-demo".into();
    s.http.listen = options.listen.unwrap_or(DEFAULT_LISTEN);
    // The example directory of the simulated province, built in so that the demo names
    // every agency wherever it is started from. It is valid (a unit test reads it).
    if let Ok(d) = crate::directory::Directory::parse(EXAMPLE_DIRECTORY, EXAMPLE_ORIGIN) {
        s.directory.directory = std::sync::Arc::new(d);
    }
    s
}

/// `config/agencies-example.toml`, the directory of the simulated province.
const EXAMPLE_DIRECTORY: &str = include_str!("../../config/agencies-example.toml");
const EXAMPLE_ORIGIN: &str = "config/agencies-example.toml (built into the demo)";

/// `host:port` to connect to for a listen address (`0.0.0.0` means this machine).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// The block printed on stderr at start: where the wall is, where to publish, and one
/// `mosquitto_pub` line to try, stamped now so that it is accepted and counts today (a
/// dossier received now, due in 20 hours: it shows among the "due soon").
fn banner(
    wall: SocketAddr,
    broker: SocketAddr,
    prefix: &str,
    now: Ts,
    tz: &jiff::tz::TimeZone,
) -> String {
    let wall = reachable(wall);
    let broker = reachable(broker);
    let occurred = now.to_rfc3339(tz);
    let due = Ts(now.0.saturating_add(20 * 3_600 * 1_000_000_000)).to_rfc3339(tz);
    let id = now.0 / 1_000_000_000;
    let payload = format!(
        r#"{{"event_id":"try-{id}","type":"received","occurred_at":"{occurred}","dossier_id":"TRY-{id}","agency":"{CENTRE}","procedure":"1.001757","channel":"online","due_at":"{due}"}}"#
    );
    format!(
        "iocd demo is running. Stop it with Ctrl-C.\n  \
         wall:    http://{wall}/   (English: http://{wall}/?lang=en)\n  \
         766:     http://{wall}/scorecard   (the Decision 766 indicators, estimated)\n  \
         duty:    http://{wall}/ops   (acknowledge, assign, silence)\n  \
         broker:  mqtt://{broker}   publish to {prefix}/onestop/..., {prefix}/vc/..., {prefix}/soc/...\n  \
         try:     mosquitto_pub -h {host} -p {port} -q 1 -t {prefix}/onestop/demo -m '{payload}'\n  \
         metrics: http://{wall}/metrics",
        host = broker.ip(),
        port = broker.port(),
    )
}

/// Runs the demo until `stop` completes (the binary passes SIGINT/SIGTERM).
///
/// # Errors
/// [`DemoError`] when a port given explicitly is taken (the message names it and the flag
/// to change it) or the daemon fails.
pub async fn run(
    options: DemoOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    SimOptions {
        faults: options.faults,
        ..SimOptions::default()
    }
    .validate()?;
    let http = choose(options.listen, DEFAULT_LISTEN)?;
    let mqtt = choose(options.mqtt_listen, DEFAULT_MQTT_LISTEN)?;
    let chosen = DemoOptions {
        listen: Some(http.addr),
        mqtt_listen: Some(mqtt.addr),
        ..options
    };
    let settings = settings(&chosen);
    let prefix = settings.mqtt.prefix.clone();
    let tz = settings.state.timezone.clone();
    let broker_addr = settings.mqtt.embedded_listen;
    let app = App::build(settings, None).await.map_err(DemoError::Start)?;
    let addr = app.local_addr().map_err(DemoError::LocalAddr)?;
    let moved: Vec<String> = [("MQTT", &mqtt), ("HTTP", &http)]
        .into_iter()
        .filter_map(|(what, c)| {
            c.replaces
                .map(|port| format!("{what} port {port} is taken, using {} instead", c.addr))
        })
        .collect();
    if !moved.is_empty() {
        eprintln!("iocd demo: {}.", moved.join("; "));
    }
    eprintln!("{}", banner(addr, broker_addr, &prefix, Ts::now(), &tz));
    let broker = BrokerUrl::from(reachable(broker_addr));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut sim_stop = stop_rx.clone();
    let sim = SimOptions {
        progress: false,
        faults: options.faults,
        ..SimOptions::demo(broker, &prefix, options.seed)
    };
    let simulator = tokio::spawn(async move {
        let stopped = async move {
            let _ = sim_stop.wait_for(|s| *s).await;
        };
        match simulate::run_until(sim, stopped).await {
            Ok(report) => info!(sent = report.sent(), "Simulator stopped."),
            Err(e) => warn!(error = %crate::telemetry::Chain(&e), "Simulator stopped on an error."),
        }
    });
    let result = app
        .run_until_stopped(async move {
            stop.await;
            let _ = stop_tx.send(true);
        })
        .await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), simulator).await;
    result.map_err(DemoError::Run)
}

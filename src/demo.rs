//! `iocd demo`: everything in one process on a machine with nothing installed. An
//! embedded MQTT broker, the simulated source systems (in demo mode: a replayed history
//! plus a scripted scene, so that every panel and several alerts show within the first
//! seconds), and the daemon serving the wall display.

use std::future::Future;

use anyhow::Context as _;
use tracing::{info, warn};

use crate::app::App;
use crate::config::Settings;
use crate::simulate::{self, SimOptions};

/// What the demo listens on.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The HTTP listener (wall, WebSocket, API, metrics).
    pub listen: String,
    /// The embedded broker; vendors' test feeds can publish here too.
    pub mqtt_listen: String,
    /// Seed of the simulation.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            mqtt_listen: "127.0.0.1:1883".into(),
            seed: 2026,
        }
    }
}

/// The settings of the demo daemon: the defaults with the embedded broker.
///
/// # Errors
/// When an address is not an IP address and port (the message names the flag).
pub fn settings(options: &DemoOptions) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    s.mqtt.embedded = true;
    s.mqtt.embedded_listen.clone_from(&options.mqtt_listen);
    s.mqtt.client_id = "iocd-demo".into();
    s.http.listen.clone_from(&options.listen);
    if let Err(problems) = s.validate() {
        let list: Vec<String> = problems
            .into_iter()
            .map(|(key, problem)| {
                let flag = match key.as_str() {
                    "http.listen" => "--listen",
                    "mqtt.embedded_listen" => "--mqtt-listen",
                    _ => key.as_str(),
                };
                format!("{flag}: {problem}")
            })
            .collect();
        anyhow::bail!("{}", list.join("; "));
    }
    Ok(s)
}

/// Runs the demo until `stop` completes (the binary passes SIGINT/SIGTERM).
///
/// # Errors
/// When a port is taken (the message names it and the flag to change it) or the daemon
/// fails.
pub async fn run(
    options: DemoOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = settings(&options)?;
    let prefix = settings.mqtt.prefix.clone();
    let app = App::build(settings, None)
        .await
        .context("cannot start the demo")?;
    let addr = app.local_addr().context("cannot read the listen address")?;
    let broker = format!(
        "mqtt://{}",
        options.mqtt_listen.replace("0.0.0.0", "127.0.0.1")
    );
    println!(
        "iocd demo: the IOC wall is live at http://{addr}/  (English: http://{addr}/?lang=en)"
    );
    println!("           MQTT broker for test feeds: {broker}, topics {prefix}/onestop|vc|soc/...");
    println!("           metrics: http://{addr}/metrics — stop with Ctrl-C");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut sim_stop = stop_rx.clone();
    let sim = SimOptions {
        progress: false,
        ..SimOptions::demo(&broker, &prefix, options.seed)
    };
    let simulator = tokio::spawn(async move {
        let stopped = async move {
            let _ = sim_stop.wait_for(|s| *s).await;
        };
        match simulate::run_until(sim, stopped).await {
            Ok(report) => info!(sent = report.sent(), "Simulator stopped."),
            Err(e) => warn!(error = format!("{e:#}"), "Simulator stopped on an error."),
        }
    });
    let result = app
        .run_until_stopped(async move {
            stop.await;
            let _ = stop_tx.send(true);
        })
        .await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), simulator).await;
    result
}

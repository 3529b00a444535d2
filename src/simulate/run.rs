//! The publisher: connects to the broker with its own `rumqttc` client (`QoS` 1, up to 100
//! publishes in flight), asks the generator every 100 ms for the messages due by the wall
//! clock and publishes them, a replayed history (demo) first, current picture first. It stops after `duration` or on the stop
//! signal, waits (at most 10 s) for the broker to acknowledge what was sent, disconnects
//! and returns a [`SimReport`].
//!
//! One task only polls the event loop (counting acknowledgements, backing off after
//! errors); the pacing loop awaits `publish`, so a slow or absent broker pushes back on the
//! generator instead of piling messages up in memory.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, Transport};
use tokio_util::sync::CancellationToken;

use super::{Generator, SimError, SimMessage, SimOptions, SimReport};
use crate::decode::Source;
use crate::time::Ts;

/// How often the generator is asked for due messages.
const TICK: Duration = Duration::from_millis(100);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How long to wait for the broker's acknowledgements at the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Publishes in flight to the broker, and queued in the client.
const INFLIGHT: u16 = 100;
const CLIENT_QUEUE: usize = 1000;

/// Runs the simulator until `options.duration` has passed or SIGINT/SIGTERM arrives.
///
/// # Errors
/// [`SimError`] when the CA file is unusable or the client cannot queue a publish (its
/// event loop ended). An unreachable broker is not an error: the client keeps retrying
/// with backoff.
pub async fn run(options: SimOptions) -> Result<SimReport, SimError> {
    run_until(options, crate::shutdown::signal()).await
}

/// Runs the simulator until `options.duration` has passed or `stop` completes.
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    options: SimOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<SimReport, SimError> {
    let mqtt = mqtt_options(&options)?;
    let (client, eventloop) = AsyncClient::new(mqtt, CLIENT_QUEUE);
    let cancel = CancellationToken::new();
    let stopped = CancellationToken::new();
    let on_stop = stopped.clone();
    tokio::spawn(async move {
        stop.await;
        on_stop.cancel();
    });
    let acks = Arc::new(AtomicU64::new(0));
    let poller = tokio::spawn(poll(eventloop, Arc::clone(&acks), cancel.clone()));
    let mut pacer = Pacer::new(&options, client.clone()).await?;
    let result = pacer.run(&stopped).await;
    pacer.drain(&acks).await;
    let _ = client.try_disconnect();
    // The poller returns once the disconnect is written; do not wait on a dead broker.
    let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
    cancel.cancel();
    let mut report = pacer.report;
    report.unacknowledged = report.sent().saturating_sub(acks.load(Ordering::Relaxed));
    if options.progress {
        let elapsed = pacer.began.elapsed().as_secs_f64();
        say(&format!("simulate: done after {elapsed:.1} s: {report}"));
        if report.unacknowledged > 0 {
            say(&format!(
                "simulate: {} publishes were not acknowledged by the broker",
                report.unacknowledged
            ));
        }
    }
    result.map(|()| report)
}

/// The pacing loop's state.
struct Pacer {
    generator: Generator,
    client: AsyncClient,
    began: Instant,
    start: Ts,
    duration: Option<Duration>,
    progress: bool,
    report: SimReport,
    last_progress: Instant,
    sent_at_last_progress: u64,
    /// Messages generated but not yet published (the history, at first).
    pending: Vec<SimMessage>,
}

impl Pacer {
    /// Builds the generator and its history (up to a few seconds of work for the backlog)
    /// off the async threads.
    async fn new(options: &SimOptions, client: AsyncClient) -> Result<Self, SimError> {
        let start = Ts::now();
        let opts = options.clone();
        let (generator, history) = tokio::task::spawn_blocking(move || {
            let mut generator = Generator::new(&opts, start);
            let history = replay_order(generator.generate(start));
            (generator, history)
        })
        .await
        .map_err(SimError::Build)?;
        if options.progress {
            let rate = options
                .rate
                .map_or_else(|| "the province's own".to_owned(), |r| format!("{r}/s"));
            say(&format!(
                "simulate: seed {}, publishing to {} under {}/, rate {rate}, faults {}{}",
                options.seed,
                options.mqtt_url,
                options.prefix.trim_end_matches('/'),
                options.faults,
                if options.demo { ", demo" } else { "" }
            ));
        }
        let now = Instant::now();
        Ok(Self {
            generator,
            client,
            began: now,
            start,
            duration: options.duration,
            progress: options.progress,
            report: SimReport::default(),
            last_progress: now,
            sent_at_last_progress: 0,
            pending: history,
        })
    }

    /// Publishes due messages every tick until the duration has passed or `stopped`.
    async fn run(&mut self, stopped: &CancellationToken) -> Result<(), SimError> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopped.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let elapsed = self.began.elapsed();
            let last = self.duration.is_some_and(|d| elapsed >= d);
            let span = self.duration.map_or(elapsed, |d| elapsed.min(d));
            let until = Ts(self
                .start
                .0
                .saturating_add(i64::try_from(span.as_nanos()).unwrap_or(i64::MAX)));
            let mut due = std::mem::take(&mut self.pending);
            due.extend(self.generator.generate(until));
            for msg in due {
                let (source, fault) = (msg.source, msg.fault);
                let ty = super::accepted_type(&msg);
                let publish = self
                    .client
                    .publish(msg.topic, QoS::AtLeastOnce, false, msg.payload);
                tokio::select! {
                    biased;
                    () = stopped.cancelled() => return Ok(()),
                    sent = publish => sent.map_err(SimError::ClientStopped)?,
                }
                self.report.count(source, fault);
                if let Some(ty) = ty {
                    self.report.count_type(source, ty);
                }
            }
            self.progress_line();
            if last {
                return Ok(());
            }
        }
    }

    fn progress_line(&mut self) {
        if !self.progress || self.last_progress.elapsed() < PROGRESS_EVERY {
            return;
        }
        let window = self.last_progress.elapsed().as_secs_f64();
        let sent = self.report.sent();
        let rate = (sent - self.sent_at_last_progress) as f64 / window;
        self.last_progress = Instant::now();
        self.sent_at_last_progress = sent;
        say(&format!(
            "[{:>5.0}s] {rate:.1} msg/s, scale {:.2}; {}",
            self.began.elapsed().as_secs_f64(),
            self.generator.scale(),
            self.report
        ));
    }

    /// Waits until the broker has acknowledged every publish, at most [`DRAIN_TIMEOUT`].
    async fn drain(&self, acks: &AtomicU64) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while acks.load(Ordering::Relaxed) < self.report.sent() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The order in which a replayed history (demo) is published: first the current picture
/// (the latest event of each dossier, and the meetings and SOC newest first), then the
/// older dossier events, newest first. The wall is right within a second, and the
/// contract's order independence makes the end state the same as in time order.
fn replay_order(mut history: Vec<SimMessage>) -> Vec<SimMessage> {
    #[derive(serde::Deserialize)]
    struct Dossier<'a> {
        #[serde(borrow)]
        dossier_id: std::borrow::Cow<'a, str>,
    }
    history.reverse();
    let mut seen = HashSet::new();
    let (mut now, mut past) = (Vec::new(), Vec::new());
    for msg in history {
        let current = msg.source != Source::Onestop
            || (msg.fault.is_none()
                && serde_json::from_slice::<Dossier<'_>>(&msg.payload)
                    .is_ok_and(|d| seen.insert(d.dossier_id.into_owned())));
        if current {
            now.push(msg);
        } else {
            past.push(msg);
        }
    }
    now.extend(past);
    now
}

/// Polls the event loop: counts acknowledgements, backs off after errors, ends after the
/// disconnect or on `cancel`.
async fn poll(mut eventloop: EventLoop, acks: Arc<AtomicU64>, cancel: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if failing {
                    tracing::info!("Simulator connected to the broker again.");
                }
                backoff = BACKOFF_MIN;
                failing = false;
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(err) => {
                if failing {
                    tracing::debug!(error = %err, "Simulator still cannot reach the broker.");
                } else {
                    tracing::warn!(error = %err, "Simulator cannot reach the broker; retrying.");
                }
                failing = true;
                let jitter = Duration::from_millis(rand::random_range(0..100));
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff + jitter) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Client options for the broker URL, the login and the CA file.
fn mqtt_options(options: &SimOptions) -> Result<MqttOptions, SimError> {
    let url = &options.mqtt_url;
    let id = options
        .client_id
        .clone()
        .unwrap_or_else(|| format!("iocd-sim-{:08x}", rand::random::<u32>()));
    let mut mqtt = MqttOptions::new(id, url.connect_host(), url.port());
    mqtt.set_keep_alive(Duration::from_secs(10));
    mqtt.set_clean_session(true);
    mqtt.set_inflight(INFLIGHT);
    mqtt.set_max_packet_size(1 << 20, 1 << 20);
    if let Some(user) = &options.username {
        let password = options.password.as_ref().map_or("", |p| p.expose());
        mqtt.set_credentials(user.clone(), password);
    }
    match (url.tls(), &options.ca_file) {
        (true, ca) => {
            let ca = ca.as_deref().unwrap_or("");
            let config = crate::ingest::mqtt::tls_config(ca).map_err(SimError::Tls)?;
            mqtt.set_transport(Transport::tls_with_config(config));
        }
        (false, Some(_)) => return Err(SimError::CaFileWithoutTls),
        (false, None) => {}
    }
    Ok(mqtt)
}

/// Prints a line on stdout (never panics on a closed pipe).
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_history_shows_the_current_picture_first() {
        let msg = |source, id: &str, secs| SimMessage {
            topic: String::new(),
            payload: format!(r#"{{"dossier_id":"{id}","meeting_id":"{id}"}}"#).into_bytes(),
            fault: None,
            source,
            at: Ts::from_secs(secs),
        };
        let history = vec![
            msg(Source::Onestop, "A", 1),
            msg(Source::Onestop, "B", 2),
            msg(Source::Vc, "M", 3),
            msg(Source::Onestop, "B", 4),
        ];
        let order: Vec<i64> = replay_order(history)
            .iter()
            .map(|m| m.at.0 / 1_000_000_000)
            .collect();
        // B's latest, the meeting, A's only event; then B's past.
        assert_eq!(order, [4, 3, 1, 2]);
    }

    #[test]
    fn urls_give_host_port_and_transport() {
        let url = |text: &str| text.parse::<crate::config::BrokerUrl>();
        let o = |text: &str| SimOptions {
            mqtt_url: url(text).unwrap(),
            ..SimOptions::default()
        };
        assert_eq!(
            mqtt_options(&o("mqtt://127.0.0.1:1884"))
                .unwrap()
                .broker_address(),
            ("127.0.0.1".into(), 1884)
        );
        assert_eq!(
            mqtt_options(&o("mqtt://localhost:1999"))
                .unwrap()
                .broker_address(),
            ("localhost".into(), 1999)
        );
        // An IPv6 broker keeps its brackets next to the port, as rumqttc connects to
        // `host:port`.
        assert_eq!(
            mqtt_options(&o("mqtt://[::1]:1885"))
                .unwrap()
                .broker_address(),
            ("[::1]".into(), 1885)
        );
        assert_eq!(url("mqtts://broker").map(|u| u.port()), Ok(8883));
        assert!(url("http://x").is_err());
        // Credentials go in --username and --password-env, never in the URL.
        assert!(url("mqtt://u:p@localhost:1999").is_err());
        let with_ca = SimOptions {
            ca_file: Some("ca.pem".into()),
            ..o("mqtt://localhost")
        };
        assert!(matches!(
            mqtt_options(&with_ca),
            Err(SimError::CaFileWithoutTls)
        ));
    }
}

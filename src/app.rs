//! The application: builds every part from the settings, runs them as tasks, and owns
//! shutdown.
//!
//! Shutdown goes in data-flow order under one deadline: `/readyz` turns not-ready and the
//! MQTT task disconnects; the ingest queue's sender is dropped with it, so the pipeline
//! applies what is queued and ends; then the HTTP server stops. `/metrics` is served until
//! the end.

mod params;
pub mod reload;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::decode::DecodeLimits;
use crate::derive::alerts::Engine;
use crate::derive::snapshot::Snapshot;
use crate::derive::{Deriver, Transition, View};
use crate::ingest::deadletter::{DeadLetterSender, DeadLetters};
use crate::ingest::{Acks, LinkStatus, MqttIngest, Publisher};
use crate::outputs::api::Api;
use crate::outputs::auth::Access;
use crate::outputs::http::{Durability, HttpState, router};
use crate::outputs::ws::{ALERT_BUFFER, WsHub};
use crate::outputs::{mqtt, prometheus};
use crate::pipeline::{Outputs, Pipeline};
use crate::state::State;
use crate::store::Journal;
use crate::telemetry::{Chain, SelfMetrics};
use crate::time::Ts;

/// Read queries waiting for the pipeline; more get 503.
const QUERY_QUEUE: usize = 64;
/// Everything must have stopped this long after the signal (README, Operations: within 5 s).
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(4500);

/// Why the daemon could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The HTTP listen address cannot be bound.
    #[error(
        "cannot listen on {addr}: {error} (choose another address with --listen or [http] listen)"
    )]
    Listen {
        /// The address.
        addr: String,
        /// Why (in the message, so that the flag to change comes last).
        error: std::io::Error,
    },
    /// The embedded broker did not start.
    #[cfg(feature = "demo")]
    #[error(transparent)]
    EmbeddedBroker(#[from] crate::demo::broker::BrokerError),
    /// The configuration cannot be used as it is (the broker password's variable).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The working calendar cannot be built from the settings.
    #[error("calendar")]
    Calendar(#[from] crate::time::workcal::CalendarError),
    /// The MQTT settings cannot be used.
    #[error("cannot set up the MQTT connection")]
    Mqtt(#[source] crate::ingest::IngestError),
    /// The data directory holds a state that cannot be loaded.
    #[error("cannot load the saved state from {dir}")]
    Recovery {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: crate::store::StoreError,
    },
    /// The domain metrics could not be registered.
    #[error("cannot register the domain metrics")]
    Metrics(#[source] ::prometheus::Error),
    /// A task (recovery, pipeline, MQTT, HTTP) panicked or was cancelled.
    #[error("the {task} task panicked")]
    Panicked {
        /// Which task.
        task: &'static str,
        /// The panic.
        source: tokio::task::JoinError,
    },
    /// A core task ended while the daemon was running.
    #[error("the {task} task stopped unexpectedly")]
    Ended {
        /// Which task.
        task: &'static str,
    },
    /// A core task failed while the daemon was running.
    #[error("the {task} task failed")]
    Failed {
        /// Which task.
        task: &'static str,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Shutdown took longer than its deadline.
    #[error("shutdown did not finish within {0:?}")]
    ShutdownDeadline(Duration),
}

/// What a finished task's join handle gives, as the daemon's reason to stop.
fn task_failure<E>(
    task: &'static str,
    joined: Result<Result<(), E>, tokio::task::JoinError>,
) -> AppError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match joined {
        Ok(Ok(())) => AppError::Ended { task },
        Ok(Err(e)) => AppError::Failed {
            task,
            source: Box::new(e),
        },
        Err(source) => AppError::Panicked { task, source },
    }
}

/// What publishes alert transitions and dead letters on MQTT, until it runs.
struct MqttOutputs {
    transitions: broadcast::Receiver<Arc<Transition>>,
    publisher: Publisher,
    metrics: SelfMetrics,
    dead_letters: DeadLetterSender,
    /// Posts alerts to Alertmanager, when `[alertmanager] url` names one, with its own
    /// subscription to the transitions.
    alertmanager: Option<(
        crate::outputs::alertmanager::Notifier,
        broadcast::Receiver<Arc<Transition>>,
    )>,
    /// `[ha] replica`, named in each alert publication.
    replica: Option<String>,
}

/// What the pollers need to run.
struct Pollers {
    mappings: watch::Receiver<Arc<crate::decode::mapping::Mappings>>,
    tx: mpsc::Sender<crate::ingest::push::Request>,
    data_dir: Option<PathBuf>,
    metrics: SelfMetrics,
    tz: jiff::tz::TimeZone,
}

/// A built, not yet running daemon.
pub struct App {
    listener: TcpListener,
    ingest: MqttIngest,
    pipeline: Pipeline,
    mqtt_out: MqttOutputs,
    http: HttpState,
    views: watch::Receiver<Arc<View>>,
    /// Reloads the agency directory.
    reloader: reload::Reloader,
    /// Reloads the mappings.
    mapping_reloader: reload::MappingReloader,
    /// Runs the mappings' pollers.
    pollers: Pollers,
    /// Fires at shutdown so WebSocket clients close cleanly.
    ws_shutdown: CancellationToken,
}

impl App {
    /// Builds every part: binds the HTTP listener, prepares the MQTT connection (it
    /// connects once running), the state and the pipeline.
    ///
    /// # Errors
    /// When the listen address cannot be bound (the message names it and the flag to
    /// change it), the broker password cannot be read, or the MQTT settings are unusable.
    #[allow(clippy::too_many_lines)] // the wiring of every part, read best in one place
    pub async fn build(settings: Settings, data_dir: Option<PathBuf>) -> Result<App, AppError> {
        let listener = TcpListener::bind(settings.http.listen)
            .await
            .map_err(|error| AppError::Listen {
                addr: settings.http.listen.to_string(),
                error,
            })?;
        #[cfg(feature = "demo")]
        let settings = with_embedded_broker(settings).await?;
        let metrics = SelfMetrics::new();
        let password = settings.mqtt_password()?;
        let (tx, rx) = mpsc::channel(settings.mqtt.queue_capacity);
        let limits = DecodeLimits {
            max_payload_bytes: settings.ingest.max_payload_bytes,
            max_future_skew_secs: crate::time::whole_secs(settings.ingest.max_future_skew),
        };
        // With a data directory a message is acknowledged once it is in the log.
        let acks = if data_dir.is_some() {
            Acks::AfterLogging
        } else {
            Acks::OnReceipt
        };
        let (mut ingest, publisher, link) = MqttIngest::new(
            &settings.mqtt,
            password.as_ref(),
            limits.max_payload_bytes,
            acks,
            tx,
            metrics.clone(),
        )
        .map_err(AppError::Mqtt)?;
        let params = params::params(&settings)?;
        let cal = params.cal.clone();
        let (state, journal, durable, alert_since, resumed) = match &data_dir {
            Some(dir) => {
                let every = settings.store.checkpoint_interval;
                // Reading the checkpoint and replaying the log is disk work: off the runtime.
                let (dir, prefix) = (dir.clone(), settings.mqtt.prefix.clone());
                let (journal, recovery, durable) = tokio::task::spawn_blocking(move || {
                    Journal::open(&dir, params, &limits, &prefix, every)
                        .map_err(|source| AppError::Recovery { dir, source })
                })
                .await
                .map_err(|source| AppError::Panicked {
                    task: "recovery",
                    source,
                })??;
                (
                    recovery.state,
                    Some(journal),
                    Durability::Disk(durable),
                    recovery.alert_since,
                    recovery.resumed,
                )
            }
            None => (
                State::new(params, Ts::now()),
                None,
                Durability::Memory,
                Vec::new(),
                false,
            ),
        };
        ingest.set_resumes_state(resumed);
        if settings.ha.is_replicated() {
            ingest.read_replica_alerts(&settings.mqtt.prefix);
        }
        let (view_tx, views) = watch::channel(Arc::new(state.view(Ts::now())));
        prometheus::register(&metrics.registry, views.clone()).map_err(AppError::Metrics)?;
        let (snapshot_tx, snapshots) = watch::channel(Arc::new(Snapshot::default()));
        let (alerts_tx, _) = broadcast::channel(ALERT_BUFFER);
        let (query_tx, queries) = mpsc::channel(QUERY_QUEUE);
        let ws_shutdown = CancellationToken::new();
        let hub = WsHub::new(
            snapshots.clone(),
            alerts_tx.clone(),
            settings.ws.clone(),
            metrics.clone(),
            ws_shutdown.clone(),
        );
        let provisional = provisional_days(&settings, &cal);
        let (reloader, mut directory, directory_problem) =
            reload::Reloader::new(&settings.directory, metrics.clone());
        // The directory read at load is news to the pipeline: it names from its first tick.
        directory.mark_changed();
        let (mapping_reloader, mappings, mappings_problem) = reload::MappingReloader::new(
            &settings.mappings,
            &settings.mqtt.prefix,
            metrics.clone(),
        );
        ingest.set_mappings(mappings.clone());
        let (push_tx, push_rx) = mpsc::channel(crate::ingest::push::QUEUE);
        // The MTTA series exist from the start at 0, one per rule at its severity.
        for rule in crate::derive::alerts::Rule::ALL {
            let severity = rule.severity_in(&settings.alerts);
            metrics
                .alert_acknowledge_seconds
                .with_label_values(&[rule.as_str(), severity.as_str()]);
        }
        let mut engine = Engine::new(settings.alerts.clone(), cal.clone());
        engine.restore_since(alert_since);
        let (dead_letters, dead_letter_sender) = DeadLetters::new(publisher.clone(), cal.clone());
        // Subscribed before anything runs, so that no transition is missed.
        let mqtt_out = MqttOutputs {
            transitions: alerts_tx.subscribe(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            dead_letters: dead_letter_sender,
            alertmanager: crate::outputs::alertmanager::Notifier::new(
                &settings.alertmanager,
                (cal.clone(), settings.alerts.language),
                metrics.alertmanager_posts.clone(),
            )
            .map(|n| (n, alerts_tx.subscribe())),
            replica: settings
                .ha
                .is_replicated()
                .then(|| settings.ha.replica.clone()),
        };
        let mut pipeline = Pipeline::new(
            rx,
            state,
            limits,
            settings.mqtt.prefix.clone(),
            dead_letters,
            Outputs {
                views: view_tx,
                snapshots: snapshot_tx,
                queries,
                deriver: Deriver::new(engine),
                alerts: alerts_tx,
                link: link.clone(),
                directory,
            },
            settings.ws.push_interval,
            metrics.clone(),
        );
        if settings.ha.is_replicated() {
            pipeline.set_replica(settings.ha.replica.clone());
        }
        pipeline.set_intake(
            mappings.clone(),
            push_rx,
            settings.mappings.max_payload_bytes,
        );
        let horizon = crate::time::whole_secs(settings.alerts.audit_retention);
        if let Some(dir) = &data_dir {
            let history = crate::store::history::History::open(
                dir,
                crate::pipeline::HISTORY_MAX,
                horizon,
                Ts::now(),
            )
            .map_err(|source| AppError::Recovery {
                dir: dir.clone(),
                source: crate::store::StoreError::Io {
                    op: "read the alert history in",
                    path: dir.join("history"),
                    source,
                },
            })?;
            pipeline.set_history(history);
        } else {
            pipeline.set_history(crate::store::history::History::in_memory(
                crate::pipeline::HISTORY_MAX,
                horizon,
            ));
        }
        let http = HttpState {
            registry: metrics.registry.clone(),
            link,
            access: Access::from_settings(&settings.http).with_origins(settings.ha.peer_origins()),
            ws: hub,
            api: Api {
                snapshots,
                views: views.clone(),
                queries: query_tx,
                cal,
            },
            metrics,
            durability: durable,
            directory_problem,
            calendar: crate::outputs::http::CalendarStatus {
                enabled: settings.calendar.enabled,
                provisional_days: provisional.into(),
            },
            ingest: crate::ingest::http::HttpIngest {
                tx: push_tx.clone(),
                mappings: mappings.clone(),
            },
            mappings_problem,
            ingest_max_body_bytes: settings.http.ingest_max_body_bytes,
            publisher: Some(publisher.clone()),
            ha: settings.ha.clone(),
        };
        let pollers = Pollers {
            mappings,
            tx: push_tx,
            data_dir: data_dir.clone(),
            metrics: http.metrics.clone(),
            tz: settings.state.timezone.clone(),
        };
        ingest.set_broker_stats(!settings.mqtt.embedded);
        if let Some(mut journal) = journal {
            journal.set_acker(ingest.acker());
            pipeline.set_journal(journal);
        }
        Ok(App {
            listener,
            ingest,
            pipeline,
            mqtt_out,
            http,
            views,
            reloader,
            mapping_reloader,
            pollers,
            ws_shutdown,
        })
    }

    /// The address the HTTP listener is bound to (useful with port 0).
    ///
    /// # Errors
    /// When the socket's address cannot be read.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The broker link status.
    #[must_use]
    pub fn link(&self) -> watch::Receiver<LinkStatus> {
        self.http.link.clone()
    }

    /// The latest view, replaced every tick.
    #[must_use]
    pub fn views(&self) -> watch::Receiver<Arc<View>> {
        self.views.clone()
    }

    /// Runs until `signal` completes or a core task fails, then shuts down.
    ///
    /// # Errors
    /// When a core task fails, or shutdown misses its deadline.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), AppError> {
        let cancel = CancellationToken::new();
        let ws_shutdown = self.ws_shutdown.clone();
        let mut ingest = tokio::spawn(self.ingest.run(cancel.child_token()));
        let mut pipeline = spawn_pipeline(self.pipeline);
        let MqttOutputs {
            transitions,
            publisher,
            metrics,
            dead_letters,
            alertmanager,
            replica,
        } = self.mqtt_out;
        let alert_out = tokio::spawn(mqtt::publish_alerts(
            transitions,
            publisher,
            metrics,
            replica,
        ));
        let alertmanager_out = alertmanager.map(|(notifier, transitions)| {
            tokio::spawn(notifier.run(transitions, self.views.clone()))
        });
        let dead_letter_out = tokio::spawn(dead_letters.run());
        let reloader = tokio::spawn(self.reloader.run(cancel.child_token()));
        let mapping_reloader = tokio::spawn(self.mapping_reloader.run(cancel.child_token()));
        let p = self.pollers;
        let pollers = tokio::spawn(crate::ingest::poll::run(
            p.mappings,
            p.tx,
            p.data_dir,
            p.metrics,
            p.tz,
            cancel.child_token(),
        ));
        let http_cancel = CancellationToken::new();
        let server = axum::serve(self.listener, router(self.http))
            .with_graceful_shutdown(http_cancel.clone().cancelled_owned());
        let mut http: JoinHandle<std::io::Result<()>> = tokio::spawn(server.into_future());
        info!("iocd is running.");

        let failure = tokio::select! {
            () = signal => None,
            r = &mut ingest => Some(task_failure("MQTT", r)),
            r = &mut pipeline => Some(task_failure("pipeline", r.map(|r| r.map(drop)))),
            r = &mut http => Some(task_failure("HTTP", r)),
        };
        if let Some(e) = &failure {
            error!(error = %Chain(e), "A core task failed; shutting down.");
        }
        cancel.cancel();
        let stopped = tokio::time::timeout(SHUTDOWN_DEADLINE, async {
            if !ingest.is_finished() {
                let _ = (&mut ingest).await;
            }
            if !pipeline.is_finished() {
                let _ = (&mut pipeline).await;
            }
            ws_shutdown.cancel();
            http_cancel.cancel();
            if !http.is_finished() {
                let _ = (&mut http).await;
            }
        })
        .await;
        if stopped.is_err() {
            warn!(
                ingest = !ingest.is_finished(),
                pipeline = !pipeline.is_finished(),
                http = !http.is_finished(),
                "Shutdown deadline passed; these tasks were still running."
            );
            return Err(AppError::ShutdownDeadline(SHUTDOWN_DEADLINE));
        }
        alert_out.abort();
        if let Some(task) = alertmanager_out {
            task.abort();
        }
        dead_letter_out.abort();
        reloader.abort();
        mapping_reloader.abort();
        pollers.abort();
        failure.map_or(Ok(()), Err)
    }
}

/// With the working calendar on, its provisional entries (`YYYY-MM-DD`, name) from a month
/// ago to a year ahead, logged once here: days off the Government has not confirmed yet,
/// on which "stalled" and "due soon" rely all the same.
fn provisional_days(settings: &Settings, cal: &crate::time::Calendar) -> Vec<(String, String)> {
    if !settings.calendar.enabled {
        return Vec::new();
    }
    let today = i64::from(cal.day(Ts::now()));
    let days: Vec<(String, String)> = settings
        .calendar
        .holidays
        .provisional_between(today - 31, today + 366)
        .map(|(date, name)| (date.to_owned(), name.to_owned()))
        .collect();
    if !days.is_empty() {
        let list: Vec<String> = days.iter().map(|(d, n)| format!("{d} ({n})")).collect();
        warn!(
            days = %list.join(", "),
            "The working calendar uses provisional days off or make-up days that no published notice confirms yet; check them against the Government's schedule and update the holidays file."
        );
    }
    days
}

/// With `[mqtt] embedded`, starts the embedded broker and points the daemon at it.
#[cfg(feature = "demo")]
async fn with_embedded_broker(mut settings: Settings) -> Result<Settings, AppError> {
    if !settings.mqtt.embedded {
        return Ok(settings);
    }
    let addr = settings.mqtt.embedded_listen;
    let max_packet = settings
        .ingest
        .max_payload_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    let hint = "--mqtt-listen or [mqtt] embedded_listen";
    crate::demo::broker::EmbeddedBroker::start(addr, max_packet, hint).await?;
    let ip = if addr.ip().is_unspecified() {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        addr.ip()
    };
    settings.mqtt.url = SocketAddr::new(ip, addr.port()).into();
    Ok(settings)
}

/// Runs the pipeline, the state's single writer, on a thread of its own with a
/// single-threaded runtime: its disk work (the log's fsync per group, checkpoints) blocks
/// only itself, never the runtime that serves MQTT, HTTP and the WebSocket clients.
fn spawn_pipeline(pipeline: Pipeline) -> JoinHandle<std::io::Result<State>> {
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("iocd-pipeline")
            .build()?;
        Ok(runtime.block_on(pipeline.run()))
    })
}

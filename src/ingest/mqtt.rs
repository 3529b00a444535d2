//! The MQTT connection. One task ([`MqttIngest::run`]) owns rumqttc's event loop and does
//! nothing but poll it: it subscribes to the input topics on every connection that has no
//! session, hands each input message to the pipeline over a bounded queue (waiting when the
//! queue is full, never dropping), reconnects with capped exponential backoff and full
//! jitter, and reports the link's state through a `watch` channel ([`LinkStatus`]).
//! [`Publisher`] is the cheap, cloneable handle the outputs use to publish dead letters and
//! alerts through the same connection; it never blocks.
//!
//! # Acknowledgements and connection epochs
//!
//! This version uses rumqttc's automatic acknowledgements: a QoS 1 message is acknowledged
//! when it is read off the socket, before the pipeline sees it, so a crash can lose the
//! messages in flight (MQTT.md). The loop is built so that manual acknowledgements can be
//! added without reshaping it: every CONNACK starts a new *connection epoch*
//! (`MqttIngest::epoch`), and a message handed to the pipeline would carry its epoch and
//! packet id, so that an acknowledgement coming back for an older epoch is dropped instead
//! of acknowledging a different message under a reused packet id. One subtlety for that
//! change: rumqttc keeps packets read in a batch in `MqttState::events` across a
//! reconnection and yields them after the next CONNACK, so the epoch of a message must be
//! taken when the packet is read, not when it is yielded.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;
use rand::Rng as _;
use rumqttc::tokio_rustls::rustls;
use rumqttc::{
    AsyncClient, ConnAck, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Outgoing,
    Publish, QoS, SubAck, SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use crate::config::MqttSettings;
use crate::ingest::RawMessage;
use crate::telemetry::SelfMetrics;
use crate::time::Ts;

/// Mosquitto's count of QoS 1 messages dropped because a client's queue was full.
const SYS_DROPPED: &str = "$SYS/broker/publish/messages/dropped";

/// The input sources, as the topic level right under the prefix (CONTRACT section 1).
const SOURCES: [&str; 3] = ["onestop", "vc", "soc"];

/// Capacity of rumqttc's request channel (outgoing publishes, subscribe, disconnect).
///
/// It holds the dead letters and alerts produced while the link is down or slow: 1024 is
/// minutes of a bad-payload storm at realistic rates, and bounded memory (a dead letter is
/// usually well under 1 KiB). When it is full, [`Publisher::try_publish`] drops and counts.
const REQUEST_CHANNEL_CAPACITY: usize = 1024;

/// The largest packet MQTT 3.1.1 can express (remaining length of 268,435,455 bytes).
///
/// Used as the *incoming* limit. A packet over rumqttc's limit is a connection error, and
/// with a persistent session the broker redelivers it after every reconnect, so the stream
/// halts for good (MQTT.md). The daemon cannot know the broker's `max_packet_size`
/// (Mosquitto's default is unlimited), so the only limit that can never halt it is the
/// protocol's. Oversized payloads reach the decoder, which rejects them as `too_large`.
/// Memory per packet is bounded by the broker's `max_packet_size`, which production brokers
/// should set (the daemon's `max_payload_bytes` plus headroom).
const MQTT_MAX_PACKET_BYTES: usize = 268_435_455;

/// Headroom of an outgoing packet over its payload: fixed header, topic (at most 65,535
/// bytes plus its length) and packet id.
const OUTGOING_HEADROOM_BYTES: usize = 70 * 1024;

/// How long the shutdown waits for the DISCONNECT packet to be written.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// The state of the link to the broker, as published on the `watch` channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkStatus {
    /// A CONNACK was received and the connection has not failed since.
    pub connected: bool,
    /// The input subscriptions are in place on the current connection.
    pub subscribed: bool,
    /// Reconnections on which the broker had lost the persistent session (a possible gap).
    pub sessions_lost: u64,
}

/// A problem with the local MQTT setup, found before connecting.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A setting cannot be used as it is.
    #[error("mqtt.{key}: {reason}")]
    Setting {
        /// The key under `[mqtt]`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read.
    #[error("mqtt.ca_file: cannot read {path}: {source}")]
    CaFileUnreadable {
        /// The configured path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("mqtt.ca_file: {path} holds no usable PEM certificate: {reason}")]
    CaFileInvalid {
        /// The configured path.
        path: String,
        /// Why no certificate could be used.
        reason: String,
    },
    /// `mqtts://` without a CA file, and the system's root certificates could not be loaded.
    #[error("mqtt.ca_file is empty and no system root certificate could be loaded: {0}")]
    NoSystemRoots(String),
}

/// Why an outgoing publish was not queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// The client's request queue is full (the link is down or slow); the message was
    /// dropped and counted in `publish_dropped{kind}`.
    #[error("the MQTT request queue is full")]
    QueueFull,
    /// The MQTT task has stopped (shutdown).
    #[error("the MQTT connection task has stopped")]
    Closed,
    /// The payload is over the outgoing limit. It is refused here because a packet the
    /// client refuses to write breaks the connection and is retried on every reconnect.
    #[error("the payload of {bytes} bytes is over the outgoing limit of {max} bytes")]
    TooLarge {
        /// The payload's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The topic is empty, too long, or holds a wildcard or a NUL character.
    #[error("{0:?} is not a valid topic to publish on")]
    BadTopic(String),
}

/// The broker's address, parsed from `mqtt.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BrokerAddr {
    host: String,
    port: u16,
    tls: bool,
}

/// The MQTT connection task: owns rumqttc's event loop. Built by [`MqttIngest::new`],
/// driven by [`MqttIngest::run`].
pub struct MqttIngest {
    eventloop: EventLoop,
    client: AsyncClient,
    /// `host:port`, for the tracing span.
    broker: String,
    /// `{prefix}/onestop/#` and the others.
    filters: Vec<String>,
    /// `{prefix}/onestop` and the others: a topic is an input when it is one of these or
    /// lies under one.
    inputs: Vec<String>,
    persistent: bool,
    tx: mpsc::Sender<RawMessage>,
    link: Link,
    backoff: Backoff,
    metrics: SelfMetrics,
    /// Connection epoch: CONNACKs received so far by this process.
    epoch: u64,
    /// The epoch, shared with [`Acker`]s so they drop acknowledgements of older connections.
    shared_epoch: Arc<AtomicU64>,
    /// Whether messages are acknowledged by the pipeline (after they are durable) rather
    /// than by rumqttc as they are read.
    manual_acks: bool,
    /// Whether to read the broker's `$SYS` dropped-message counter (Mosquitto). Off for
    /// the embedded rumqttd, which disconnects a client subscribing to `$SYS`.
    broker_stats: bool,
    /// Failures since the last CONNACK (the first is logged at WARN).
    failures: u64,
    /// A subscribe is due but the request queue was full; retried on every event.
    subscribe_due: bool,
    /// Tells the publishers the task has stopped, when dropped.
    _open: OpenGuard,
}

/// Cloneable handle for outgoing publishes (dead letters, alerts) over the ingest
/// connection. It never blocks.
#[derive(Clone)]
pub struct Publisher {
    client: AsyncClient,
    prefix: Arc<str>,
    max_payload_bytes: usize,
    open: Arc<AtomicBool>,
    dropped: IntCounterVec,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("prefix", &self.prefix)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Queues a QoS 1, not retained publish. Never blocks.
    ///
    /// # Errors
    /// [`PublishError::QueueFull`] when the request queue is full (the message is dropped and
    /// counted in `publish_dropped{kind}`), [`PublishError::Closed`] after the MQTT task has
    /// stopped, [`PublishError::TooLarge`] and [`PublishError::BadTopic`] for a message that
    /// could never be sent.
    pub fn try_publish(
        &self,
        kind: &'static str,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), PublishError> {
        if !self.open.load(Ordering::Acquire) {
            return Err(PublishError::Closed);
        }
        if payload.len() > self.max_payload_bytes {
            return Err(PublishError::TooLarge {
                bytes: payload.len(),
                max: self.max_payload_bytes,
            });
        }
        if !is_publishable_topic(&topic) {
            return Err(PublishError::BadTopic(topic));
        }
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
        {
            Ok(()) => Ok(()),
            // rumqttc reports "full" and "receiver gone" alike; the flag tells them apart.
            Err(_) if !self.open.load(Ordering::Acquire) => Err(PublishError::Closed),
            Err(_) => {
                self.dropped.with_label_values(&[kind]).inc();
                Err(PublishError::QueueFull)
            }
        }
    }

    /// The configured topic prefix (`ioc/v1` by default), for building output topics.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The largest payload [`Publisher::try_publish`] accepts, in bytes.
    #[must_use]
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }
}

/// Sets the shared "open" flag to false when the ingest task is dropped.
struct OpenGuard(Arc<AtomicBool>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Whether the loop goes on.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// What an event from the event loop means to ingest.
#[derive(Debug)]
enum Action {
    Connected(ConnAck),
    Subscribed(SubAck),
    Forward(Publish),
    BrokerDropped(Publish),
    Foreign(String),
    Nothing,
}

/// Sorts an event from rumqttc into what ingest does with it.
fn classify(event: Event, inputs: &[String]) -> Action {
    match event {
        Event::Incoming(Incoming::ConnAck(ack)) => Action::Connected(ack),
        Event::Incoming(Incoming::SubAck(ack)) => Action::Subscribed(ack),
        Event::Incoming(Incoming::Publish(p)) if is_input(&p.topic, inputs) => Action::Forward(p),
        Event::Incoming(Incoming::Publish(p)) if p.topic == SYS_DROPPED => Action::BrokerDropped(p),
        Event::Incoming(Incoming::Publish(p)) => Action::Foreign(p.topic),
        Event::Incoming(_) | Event::Outgoing(_) => Action::Nothing,
    }
}

/// Whether `topic` is one of `inputs` or lies under one (what `{input}/#` matches).
fn is_input(topic: &str, inputs: &[String]) -> bool {
    inputs.iter().any(|input| {
        topic
            .strip_prefix(input.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether a topic can be published on (MQTT 3.1.1 section 4.7).
fn is_publishable_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= usize::from(u16::MAX) && !topic.contains(['+', '#', '\0'])
}

impl MqttIngest {
    /// Builds the connection task, the publisher handle and the link status receiver. Does
    /// not connect: [`MqttIngest::run`] does.
    ///
    /// `password` is used when `settings.username` is not empty. `max_payload_bytes` is the
    /// decoder's limit; the outgoing limit is derived from it (see [`outgoing_payload_limit`]).
    ///
    /// # Errors
    /// [`IngestError`] for an unusable URL, client id, prefix, keepalive or inflight value,
    /// an unreadable or empty CA file, or missing system root certificates.
    pub fn new(
        settings: &MqttSettings,
        password: Option<String>,
        max_payload_bytes: usize,
        tx: mpsc::Sender<RawMessage>,
        metrics: SelfMetrics,
    ) -> Result<(MqttIngest, Publisher, watch::Receiver<LinkStatus>), IngestError> {
        let broker = parse_url(&settings.url)
            .map_err(|reason| IngestError::Setting { key: "url", reason })?;
        let filters = input_filters(&settings.prefix)?;
        let max_out = outgoing_payload_limit(max_payload_bytes);
        let options = mqtt_options(settings, &broker, password, max_out)?;
        let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
        let open = Arc::new(AtomicBool::new(true));
        let (status_tx, status_rx) = watch::channel(LinkStatus::default());
        metrics.mqtt_connected.set(0);
        metrics.mqtt_subscribed.set(0);
        let publisher = Publisher {
            client: client.clone(),
            prefix: Arc::from(settings.prefix.as_str()),
            max_payload_bytes: max_out,
            open: Arc::clone(&open),
            dropped: metrics.publish_dropped.clone(),
        };
        let ingest = MqttIngest {
            eventloop,
            client,
            broker: format!("{}:{}", broker.host, broker.port),
            inputs: filters
                .iter()
                .map(|f| f.trim_end_matches("/#").to_owned())
                .collect(),
            filters,
            persistent: settings.persistent_session,
            tx,
            link: Link {
                status: LinkStatus::default(),
                tx: status_tx,
                metrics: metrics.clone(),
            },
            backoff: Backoff::new(settings.reconnect_min_ms, settings.reconnect_max_ms),
            metrics,
            epoch: 0,
            shared_epoch: Arc::new(AtomicU64::new(0)),
            manual_acks: false,
            broker_stats: true,
            failures: 0,
            subscribe_due: false,
            _open: OpenGuard(open),
        };
        Ok((ingest, publisher, status_rx))
    }

    /// Runs the connection until `cancel` fires or the pipeline's queue is closed, then
    /// sends DISCONNECT (waiting at most 500 ms for it to go out).
    ///
    /// Broker errors never end it: every failure is counted and retried with backoff.
    ///
    /// # Errors
    /// None today: every problem found at run time comes from the broker or the network and
    /// is retried; local setup problems are reported by [`MqttIngest::new`].
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), IngestError> {
        let span = info_span!("mqtt", broker = %self.broker);
        async move {
            info!(filters = ?self.filters, "MQTT ingest started.");
            while self.step(&cancel).await == Flow::Continue {}
            self.disconnect().await;
            info!("MQTT ingest stopped.");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// One poll of the event loop and what follows from it.
    async fn step(&mut self, cancel: &CancellationToken) -> Flow {
        let polled = tokio::select! {
            biased;
            () = cancel.cancelled() => return Flow::Stop,
            polled = self.eventloop.poll() => polled,
        };
        match polled {
            Ok(event) => self.on_event(event, cancel).await,
            Err(err) => self.on_error(&err, cancel).await,
        }
    }

    async fn on_event(&mut self, event: Event, cancel: &CancellationToken) -> Flow {
        if self.subscribe_due {
            self.subscribe();
        }
        match classify(event, &self.inputs) {
            Action::Connected(ack) => self.on_connack(&ack),
            Action::Subscribed(ack) if ack.return_codes.len() == 1 => self.on_sys_suback(&ack),
            Action::Subscribed(ack) => self.on_suback(&ack),
            Action::BrokerDropped(p) => {
                if let Some(n) = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|t| t.trim().parse::<i64>().ok())
                {
                    self.metrics.broker_messages_dropped.set(n);
                }
            }
            Action::Forward(publish) => return self.forward(publish, cancel).await,
            Action::Foreign(topic) => {
                debug!(%topic, "Ignored a message outside the input topics.");
            }
            Action::Nothing => {}
        }
        Flow::Continue
    }

    fn on_connack(&mut self, ack: &ConnAck) {
        self.epoch += 1;
        self.shared_epoch.store(self.epoch, Ordering::Release);
        self.failures = 0;
        self.backoff.reset();
        self.metrics.mqtt_connects.inc();
        let first = self.epoch == 1;
        let lost = self.persistent && !first && !ack.session_present;
        if lost {
            self.metrics.mqtt_sessions_lost.inc();
            warn!(
                epoch = self.epoch,
                "The broker lost the persistent session; messages published while disconnected may be missing."
            );
        }
        self.link.update(|s| {
            s.connected = true;
            s.sessions_lost += u64::from(lost);
        });
        info!(
            epoch = self.epoch,
            session_present = ack.session_present,
            "Connected to the broker."
        );
        // The first connection subscribes even when the broker kept a session: the stored
        // subscriptions may be those of another prefix (a configuration change).
        if first || !ack.session_present {
            self.link.update(|s| s.subscribed = false);
            self.subscribe();
        } else {
            self.link.update(|s| s.subscribed = true);
            info!(
                epoch = self.epoch,
                "The broker kept the session; the subscriptions stand."
            );
        }
    }

    /// Queues the SUBSCRIBE without waiting; if the request queue is full, it is retried on
    /// the next event (the queue drains as the loop runs).
    fn subscribe(&mut self) {
        let filters = self
            .filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        self.subscribe_due = self.client.try_subscribe_many(filters).is_err();
        if self.subscribe_due {
            debug!("The request queue is full; the subscription will be retried.");
        }
    }

    fn on_suback(&mut self, ack: &SubAck) {
        let refused = ack
            .return_codes
            .iter()
            .filter(|c| matches!(c, SubscribeReasonCode::Failure))
            .count();
        if refused > 0 {
            self.link.update(|s| s.subscribed = false);
            error!(
                refused,
                filters = ?self.filters,
                "The broker refused subscriptions; no input arrives on those topics. Check the broker's ACLs."
            );
            return;
        }
        if ack
            .return_codes
            .contains(&SubscribeReasonCode::Success(QoS::AtMostOnce))
        {
            warn!(codes = ?ack.return_codes, "The broker granted QoS 0 only; messages can be lost.");
        }
        self.link.update(|s| s.subscribed = true);
        info!(filters = ?self.filters, "Subscribed to the input topics.");
        // Mosquitto counts the QoS 1 messages it dropped for full client queues here; a
        // broker whose ACL forbids it answers with a failure, which only means no figure.
        if self.broker_stats {
            let _ = self.client.try_subscribe(SYS_DROPPED, QoS::AtMostOnce);
        }
    }

    /// The answer to the single-filter `$SYS` subscription (the inputs are three filters).
    fn on_sys_suback(&mut self, ack: &SubAck) {
        if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
            debug!(
                "The broker does not allow reading its dropped-message counter; iocd_broker_messages_dropped stays unset."
            );
        }
    }

    /// Hands an input message to the pipeline; when the queue is full, waits (backpressure)
    /// and counts the time waited. Stops when the queue is closed or on cancel.
    async fn forward(&mut self, publish: Publish, cancel: &CancellationToken) -> Flow {
        self.metrics.mqtt_messages_received.inc();
        let msg = self.raw_message(publish);
        let msg = match self.tx.try_send(msg) {
            Ok(()) => {
                self.metrics.pipeline_enqueued.inc();
                return Flow::Continue;
            }
            Err(TrySendError::Closed(_)) => return queue_closed(),
            Err(TrySendError::Full(msg)) => msg,
        };
        let started = Instant::now();
        let sent = tokio::select! {
            biased;
            sent = self.tx.send(msg) => Some(sent),
            () = cancel.cancelled() => None,
        };
        self.metrics
            .ingest_queue_wait_seconds
            .inc_by(started.elapsed().as_secs_f64());
        match sent {
            Some(Ok(())) => {
                self.metrics.pipeline_enqueued.inc();
                Flow::Continue
            }
            Some(Err(_)) => queue_closed(),
            None => {
                warn!(
                    "Shutdown came while waiting for room in the pipeline queue; one message was not handed over."
                );
                Flow::Stop
            }
        }
    }

    async fn on_error(&mut self, err: &ConnectionError, cancel: &CancellationToken) -> Flow {
        self.metrics.mqtt_connection_errors.inc();
        self.subscribe_due = false;
        self.link.update(|s| {
            s.connected = false;
            s.subscribed = false;
        });
        self.failures += 1;
        let delay = self.backoff.next_delay();
        let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        if self.failures == 1 {
            warn!(error = %err, retry_in_ms, "The MQTT connection failed; retrying with backoff.");
        } else {
            debug!(error = %err, failures = self.failures, retry_in_ms, "The MQTT connection failed again.");
        }
        tokio::select! {
            () = cancel.cancelled() => Flow::Stop,
            () = tokio::time::sleep(delay) => Flow::Continue,
        }
    }

    /// Sends DISCONNECT and polls until it is written, at most [`DISCONNECT_GRACE`].
    /// Input messages read meanwhile are handed over if the queue has room.
    async fn disconnect(&mut self) {
        if !self.link.status.connected {
            return;
        }
        if self.client.try_disconnect().is_ok() {
            let deadline = tokio::time::sleep(DISCONNECT_GRACE);
            tokio::pin!(deadline);
            loop {
                let polled = tokio::select! {
                    () = &mut deadline => {
                        debug!("DISCONNECT was not written within the grace period.");
                        break;
                    }
                    polled = self.eventloop.poll() => polled,
                };
                match polled {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                        info!("Disconnected from the broker.");
                        break;
                    }
                    Ok(event) => self.forward_at_shutdown(event),
                    Err(_) => break,
                }
            }
        }
        self.link.update(|s| {
            s.connected = false;
            s.subscribed = false;
        });
    }

    fn forward_at_shutdown(&mut self, event: Event) {
        let Action::Forward(publish) = classify(event, &self.inputs) else {
            return;
        };
        self.metrics.mqtt_messages_received.inc();
        let msg = self.raw_message(publish);
        if self.tx.try_send(msg).is_ok() {
            self.metrics.pipeline_enqueued.inc();
        } else {
            warn!("A message read during shutdown could not be handed over.");
        }
    }
}

impl MqttIngest {
    /// Switches to manual acknowledgements: QoS 1 messages then carry an [`Ack`] that the
    /// pipeline sends back through an [`Acker`] once the message is durable. Call before
    /// [`MqttIngest::run`].
    pub fn set_manual_acks(&mut self, on: bool) {
        self.manual_acks = on;
        self.eventloop.mqtt_options.set_manual_acks(on);
        // The event loop copied the flag into its state when it was built.
        self.eventloop.state.manual_acks = on;
    }

    /// Whether to read the broker's `$SYS` dropped-message counter (on by default; the
    /// embedded broker refuses `$SYS` by dropping the connection).
    pub fn set_broker_stats(&mut self, on: bool) {
        self.broker_stats = on;
    }

    /// A handle that acknowledges messages of the current connection.
    #[must_use]
    pub fn acker(&self) -> Acker {
        Acker {
            client: self.client.clone(),
            epoch: Arc::clone(&self.shared_epoch),
        }
    }

    /// The raw message of a publish, tagged with the current epoch when it must be acked.
    fn raw_message(&self, publish: Publish) -> RawMessage {
        let ack = (self.manual_acks && publish.qos != QoS::AtMostOnce).then_some(Ack {
            epoch: self.epoch,
            pkid: publish.pkid,
            qos: publish.qos,
        });
        RawMessage {
            topic: publish.topic,
            payload: publish.payload,
            received_at: Ts::now(),
            ack,
        }
    }
}

/// What is needed to acknowledge one QoS 1 message: its packet id and the connection
/// epoch it arrived on (packet ids are reused across connections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The connection epoch the message arrived on.
    pub epoch: u64,
    /// Its packet id on that connection.
    pub pkid: u16,
    /// Its QoS.
    pub qos: QoS,
}

/// Sends acknowledgements, in the order given, for messages of the current connection.
#[derive(Clone)]
pub struct Acker {
    client: AsyncClient,
    epoch: Arc<AtomicU64>,
}

/// Why an acknowledgement was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum AckError {
    /// rumqttc's request queue is full: retry later, in the same order.
    Full,
}

impl Acker {
    /// Queues the acknowledgement of `ack`. An ack for an older connection is dropped (the
    /// broker redelivers that message on the new connection, and dedupe ignores it).
    ///
    /// # Errors
    /// [`AckError::Full`] when the request queue is full; nothing was queued.
    pub fn try_ack(&self, ack: Ack) -> Result<(), AckError> {
        if ack.epoch != self.epoch.load(Ordering::Acquire) {
            debug!(
                pkid = ack.pkid,
                epoch = ack.epoch,
                "Stale acknowledgement dropped."
            );
            return Ok(());
        }
        // rumqttc builds the PUBACK from the packet id and QoS alone.
        let mut publish = Publish::new("", ack.qos, Vec::new());
        publish.pkid = ack.pkid;
        self.client.try_ack(&publish).map_err(|_| AckError::Full)
    }
}

fn queue_closed() -> Flow {
    info!("The pipeline queue is closed; MQTT ingest stops.");
    Flow::Stop
}

/// The link status, its `watch` sender and the gauges that mirror it.
struct Link {
    status: LinkStatus,
    tx: watch::Sender<LinkStatus>,
    metrics: SelfMetrics,
}

impl Link {
    /// Applies `change`; publishes the status and sets the gauges when it changed.
    fn update(&mut self, change: impl FnOnce(&mut LinkStatus)) {
        let before = self.status.clone();
        change(&mut self.status);
        if self.status != before {
            self.metrics
                .mqtt_connected
                .set(i64::from(self.status.connected));
            self.metrics
                .mqtt_subscribed
                .set(i64::from(self.status.subscribed));
            self.tx.send_replace(self.status.clone());
        }
    }
}

/// Capped exponential backoff with full jitter: the n-th delay after a success is uniform
/// in `[0, min(min × 2ⁿ⁻¹, max)]`.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(min_ms: u64, max_ms: u64) -> Self {
        let min = Duration::from_millis(min_ms.max(1));
        let max = Duration::from_millis(max_ms).max(min);
        Self { min, max, cap: min }
    }

    fn reset(&mut self) {
        self.cap = self.min;
    }

    fn next_delay(&mut self) -> Duration {
        let cap = self.cap;
        self.cap = cap.saturating_mul(2).min(self.max);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=cap_ms))
    }
}

/// The largest outgoing payload: a dead letter of a `max_payload_bytes` payload.
///
/// The payload is cut to the limit, then written as JSON text or base64 (4/3); JSON
/// escaping of control characters can take 6 bytes per input byte (`\u0001`), so the limit
/// is 6 × `max_payload_bytes` plus 64 KiB for the other fields (topic, detail, times).
/// The broker's `max_packet_size` must allow it, or the broker drops the connection.
#[must_use]
pub fn outgoing_payload_limit(max_payload_bytes: usize) -> usize {
    max_payload_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024)
        .min(MQTT_MAX_PACKET_BYTES - OUTGOING_HEADROOM_BYTES)
}

/// Builds rumqttc's options from the settings (STYLE section 7: in one place).
fn mqtt_options(
    settings: &MqttSettings,
    broker: &BrokerAddr,
    password: Option<String>,
    max_out_payload: usize,
) -> Result<MqttOptions, IngestError> {
    let client_id = client_id(settings)?;
    let keepalive = keepalive(settings.keepalive_secs)?;
    if settings.inflight == 0 {
        let reason = "must be at least 1".to_owned();
        return Err(IngestError::Setting {
            key: "inflight",
            reason,
        });
    }
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options
        .set_clean_session(!settings.persistent_session)
        .set_keep_alive(keepalive)
        .set_inflight(settings.inflight)
        .set_manual_acks(false)
        .set_request_channel_capacity(REQUEST_CHANNEL_CAPACITY)
        .set_max_packet_size(
            MQTT_MAX_PACKET_BYTES,
            max_out_payload + OUTGOING_HEADROOM_BYTES,
        );
    if !settings.username.is_empty() {
        options.set_credentials(settings.username.clone(), password.unwrap_or_default());
    }
    if broker.tls {
        options.set_transport(Transport::tls_with_config(tls_config(&settings.ca_file)?));
    }
    Ok(options)
}

/// The configured client id; with a clean session and none configured, `iocd-` and a
/// random suffix so that two daemons never take over each other's connection.
fn client_id(settings: &MqttSettings) -> Result<String, IngestError> {
    let id = settings.client_id.trim();
    if !id.is_empty() {
        return Ok(id.to_owned());
    }
    if settings.persistent_session {
        let reason = "must not be empty with a persistent session".to_owned();
        return Err(IngestError::Setting {
            key: "client_id",
            reason,
        });
    }
    Ok(format!("iocd-{:016x}", rand::random::<u64>()))
}

fn keepalive(secs: u64) -> Result<Duration, IngestError> {
    if (1..=u64::from(u16::MAX)).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        let reason = format!("{secs} is outside 1..=65535 seconds");
        Err(IngestError::Setting {
            key: "keepalive_secs",
            reason,
        })
    }
}

/// `{prefix}/onestop/#`, `{prefix}/vc/#`, `{prefix}/soc/#`.
fn input_filters(prefix: &str) -> Result<Vec<String>, IngestError> {
    if prefix.is_empty() || prefix.ends_with('/') || !is_publishable_topic(prefix) {
        let reason =
            format!("{prefix:?} must be a non-empty topic without wildcards or a trailing '/'");
        return Err(IngestError::Setting {
            key: "prefix",
            reason,
        });
    }
    Ok(SOURCES.iter().map(|s| format!("{prefix}/{s}/#")).collect())
}

/// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (default ports 1883 and 8883; an
/// IPv6 address in brackets).
fn parse_url(url: &str) -> Result<BrokerAddr, String> {
    let (tls, rest) = match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err(format!("{url:?} must start with mqtt:// or mqtts://")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{url:?} must be scheme://host[:port], without user, path or query"
        ));
    }
    let (host, port) = split_host_port(rest).map_err(|e| format!("{url:?}: {e}"))?;
    if host.is_empty() || host == "[]" {
        return Err(format!("{url:?} has no host"));
    }
    let port = match port {
        None if tls => 8883,
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("{url:?} has a bad port {p:?}")),
        },
    };
    Ok(BrokerAddr {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// Splits `host[:port]` or `[v6][:port]`; the brackets stay on the host.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    if s.starts_with('[') {
        let end = s.find(']').ok_or("unclosed '[' in the host")?;
        let (host, after) = s.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or("expected ':' after ']'"),
        };
    }
    match s.split_once(':') {
        Some((_, p)) if p.contains(':') => Err("an IPv6 address needs brackets"),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

/// rustls configuration: the CA file's certificates, or the system's roots (`ca_file`
/// empty). Shared with `iocd simulate`.
///
/// # Errors
/// When the CA file cannot be read or holds no usable certificate, or no system root can
/// be loaded.
pub fn tls_config(ca_file: &str) -> Result<TlsConfiguration, IngestError> {
    let roots = if ca_file.is_empty() {
        system_roots()?
    } else {
        file_roots(ca_file)?
    };
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

fn file_roots(path: &str) -> Result<rustls::RootCertStore, IngestError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let pem = std::fs::read(path).map_err(|source| IngestError::CaFileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| IngestError::CaFileInvalid {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid(format!(
            "{ignored} certificate(s) found, none usable"
        )));
    }
    Ok(roots)
}

fn system_roots() -> Result<rustls::RootCertStore, IngestError> {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        warn!(error = %err, "A system root certificate could not be loaded.");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let reason = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(IngestError::NoSystemRoots(reason));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(host: &str, port: u16, tls: bool) -> BrokerAddr {
        BrokerAddr {
            host: host.to_owned(),
            port,
            tls,
        }
    }

    #[test]
    fn urls_with_and_without_ports_parse() {
        assert_eq!(
            parse_url("mqtt://localhost"),
            Ok(broker("localhost", 1883, false))
        );
        assert_eq!(
            parse_url("mqtts://broker.example"),
            Ok(broker("broker.example", 8883, true))
        );
        assert_eq!(
            parse_url("mqtt://10.0.0.1:1884/"),
            Ok(broker("10.0.0.1", 1884, false))
        );
        assert_eq!(
            parse_url("mqtts://[::1]:8884"),
            Ok(broker("[::1]", 8884, true))
        );
        assert_eq!(parse_url("mqtt://[::1]"), Ok(broker("[::1]", 1883, false)));
    }

    #[test]
    fn malformed_urls_are_refused() {
        for bad in [
            "",
            "tcp://host:1883",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://host:0",
            "mqtt://host:65536",
            "mqtt://host:x",
            "mqtt://user@host",
            "mqtt://host/path",
            "mqtt://host?x=1",
            "mqtt://::1",
            "mqtt://[::1",
            "mqtt://[]:1883",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn input_topics_match_the_subscriptions_only() {
        let inputs: Vec<String> = ["p/onestop", "p/vc", "p/soc"].map(String::from).to_vec();
        assert!(is_input("p/onestop", &inputs));
        assert!(is_input("p/onestop/agency-1", &inputs));
        assert!(is_input("p/soc/x/y", &inputs));
        assert!(!is_input("p/onestopX/a", &inputs));
        assert!(!is_input("p/deadletter/vc", &inputs));
        assert!(!is_input("q/vc/a", &inputs));
    }

    #[test]
    fn prefixes_with_wildcards_are_refused() {
        assert_eq!(input_filters("ioc/v1").map(|f| f.len()).ok(), Some(3));
        for bad in ["", "ioc/+", "ioc/#", "ioc/"] {
            assert!(input_filters(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(100, 1000);
        let caps: Vec<u128> = (0..6)
            .map(|_| {
                let cap = b.cap;
                assert!(b.next_delay() <= cap);
                cap.as_millis()
            })
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.cap, Duration::from_millis(100));
    }

    #[test]
    fn a_persistent_session_needs_a_client_id() {
        let mut s = MqttSettings {
            client_id: String::new(),
            ..MqttSettings::default()
        };
        assert!(client_id(&s).is_err());
        s.persistent_session = false;
        assert!(client_id(&s).is_ok_and(|id| id.starts_with("iocd-")));
    }

    #[test]
    fn an_unreadable_ca_file_is_named_in_the_error() {
        let err = file_roots("/nonexistent/ca.pem")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("/nonexistent/ca.pem")));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("temporary directory")
        };
        let path = dir.path().join("ca.pem");
        assert!(std::fs::write(&path, "not a certificate\n").is_ok());
        let path = path.to_string_lossy().into_owned();
        let err = file_roots(&path).err();
        assert!(matches!(&err, Some(IngestError::CaFileInvalid { path: p, .. }) if *p == path));
    }

    #[test]
    fn link_changes_reach_the_watch_and_the_gauges() {
        let metrics = SelfMetrics::new();
        let (tx, mut rx) = watch::channel(LinkStatus::default());
        let mut link = Link {
            status: LinkStatus::default(),
            tx,
            metrics: metrics.clone(),
        };
        link.update(|s| s.connected = true);
        assert!(rx.has_changed().unwrap_or(false));
        assert!(rx.borrow_and_update().connected);
        assert_eq!(metrics.mqtt_connected.get(), 1);
        link.update(|s| s.connected = true);
        assert!(!rx.has_changed().unwrap_or(true));
    }

    #[test]
    fn oversized_or_wildcard_publishes_are_refused_before_queueing() {
        let metrics = SelfMetrics::new();
        let (tx, _rx) = mpsc::channel(1);
        let settings = MqttSettings::default();
        let built = MqttIngest::new(&settings, None, 10, tx, metrics);
        let Ok((_ingest, publisher, _status)) = built else {
            panic!("settings are valid")
        };
        let max = publisher.max_payload_bytes();
        let too_big = publisher.try_publish("deadletter", "ioc/v1/x".into(), vec![0; max + 1]);
        assert_eq!(
            too_big,
            Err(PublishError::TooLarge {
                bytes: max + 1,
                max
            })
        );
        let wildcard = publisher.try_publish("deadletter", "ioc/v1/#".into(), vec![1]);
        assert!(matches!(wildcard, Err(PublishError::BadTopic(_))));
        assert_eq!(
            publisher.try_publish("deadletter", "ioc/v1/x".into(), vec![1]),
            Ok(())
        );
    }

    #[test]
    fn publishing_after_the_task_is_gone_reports_closed() {
        let (tx, _rx) = mpsc::channel(1);
        let built = MqttIngest::new(&MqttSettings::default(), None, 10, tx, SelfMetrics::new());
        let Ok((ingest, publisher, _status)) = built else {
            panic!("settings are valid")
        };
        drop(ingest);
        assert_eq!(
            publisher.try_publish("alert", "ioc/v1/a".into(), vec![1]),
            Err(PublishError::Closed)
        );
    }
}

//! The MQTT connection. One task ([`MqttIngest::run`]) owns rumqttc's event loop and does
//! nothing but poll it: it subscribes to the input topics on every connection that has no
//! session, hands each input message to the pipeline over a bounded queue, reconnects with
//! capped exponential backoff and full jitter, and reports the link's state through a `watch`
//! channel ([`LinkStatus`]).
//!
//! The loop never waits for the pipeline, so keepalive pings go on under any load: when the
//! queue is full, QoS 1 messages wait unacknowledged (the broker's in-flight window stops the
//! flow, and the broker holds the rest), and QoS 0 messages are held up to [`HOLD_MAX_BYTES`],
//! then dropped and counted (`iocd_ingest_dropped_total`). The reasoning is in `handoff`.
//!
//! - `handoff`: the queue to the pipeline, the messages held while it is full, the acks.
//! - `options`: settings → rumqttc's options (URL, TLS, client id, filters), checked once.
//! - `publish`: [`Publisher`], the cheap, cloneable handle the outputs use to publish dead
//!   letters and alerts through the same connection; it never blocks.
//! - `ack`: [`Acker`], how the journal acknowledges messages once they are durable.
//! - `link`: the link status and the reconnect backoff.
//!
//! # Acknowledgements and connection epochs
//!
//! Acknowledgements are always manual (rumqttc never acknowledges by itself): a QoS 1
//! message is acknowledged once it is in the pipeline queue, or, with a data directory, once
//! it is in the event log (the message then carries its [`Ack`] to the journal). Every
//! CONNACK starts a new *connection epoch* (`MqttIngest::epoch`); an acknowledgement coming
//! back for an older epoch is dropped instead of acknowledging a different message under a
//! reused packet id (the broker redelivers the message, and dedupe ignores it). rumqttc keeps
//! packets read in a batch across a reconnection and yields them after the next CONNACK, so
//! those are given the epoch they were read on (`MqttIngest::stale`).

mod ack;
mod handoff;
mod link;
mod options;
mod publish;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnAck, ConnectionError, Event, EventLoop, Incoming, Publish, QoS, SubAck,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

pub use ack::{Ack, AckError, Acker};
pub use handoff::{HELD_OVERHEAD_BYTES, HOLD_MAX_BYTES};
pub use link::LinkStatus;
pub use options::{IngestError, tls_config};
pub use publish::{PublishError, Publisher, outgoing_payload_limit};

use crate::config::{MqttSettings, Secret};
use crate::ingest::RawMessage;
use crate::telemetry::SelfMetrics;
use handoff::{Handoff, queue_closed};
use link::{Backoff, Link};
use options::{REQUEST_CHANNEL_CAPACITY, input_filters, mqtt_options};
use publish::OpenGuard;

/// Mosquitto's count of QoS 1 messages dropped because a client's queue was full.
const SYS_DROPPED: &str = "$SYS/broker/publish/messages/dropped";

/// How long the shutdown waits for the DISCONNECT packet to be written.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// When QoS 1 messages are acknowledged to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// By ingest, as soon as the message is in the pipeline queue (no data directory: nothing
    /// else to wait for). Not on reading: a message that waits for room in the queue stays
    /// unacknowledged, so the broker's in-flight window holds the flow back.
    OnReceipt,
    /// By the journal through an [`Acker`], once the message is in the event log: each
    /// message then carries its [`Ack`].
    AfterLogging,
}

/// The MQTT connection task: owns rumqttc's event loop. Built by [`MqttIngest::new`],
/// driven by [`MqttIngest::run`].
#[allow(clippy::struct_excessive_bools)] // independent switches of the connection
pub struct MqttIngest {
    eventloop: EventLoop,
    client: AsyncClient,
    /// `host:port`, for the tracing span.
    broker: String,
    /// The options to reach each broker URL (`mqtt.url`, then `mqtt.other_urls`); after a
    /// failure the next one is tried.
    nodes: Vec<rumqttc::MqttOptions>,
    /// Which of `nodes` the event loop connects to.
    node: usize,
    /// `{prefix}/onestop/#` and the others, then the mappings' filters.
    filters: Vec<String>,
    /// The mappings' MQTT filters (their messages are inputs too).
    mapped: Vec<String>,
    /// The mappings, reloaded while running: a change of their filters is subscribed at once.
    mappings: Option<watch::Receiver<Arc<crate::decode::mapping::Mappings>>>,
    /// Whether the input subscriptions are in place (a change of filters resubscribes).
    subscribed: bool,
    /// `{prefix}/onestop` and the others: a topic is an input when it is one of these or
    /// lies under one.
    inputs: Vec<String>,
    persistent: bool,
    /// The pipeline queue, and the messages waiting for room in it.
    handoff: Handoff,
    link: Link,
    backoff: Backoff,
    metrics: SelfMetrics,
    /// Connection epoch: CONNACKs received so far by this process.
    epoch: u64,
    /// The epoch, shared with [`Acker`]s so they drop acknowledgements of older connections.
    shared_epoch: Arc<AtomicU64>,
    /// Who acknowledges QoS 1 messages: ingest, or the journal once they are durable.
    acks: Acks,
    /// Publishes rumqttc still holds from the connection before the last CONNACK (read in
    /// the batch that ended with an error), and the epoch they were read on.
    stale: (usize, u64),
    /// Whether to read the broker's `$SYS` dropped-message counter (Mosquitto). Off for
    /// the embedded rumqttd, which disconnects a client subscribing to `$SYS`.
    broker_stats: bool,
    /// Failures since the last CONNACK (the first is logged at WARN).
    failures: u64,
    /// A subscribe is due but the request queue was full; retried on every event.
    subscribe_due: bool,
    /// The data directory held state from an earlier run, so the broker should still hold
    /// that run's session: a first CONNACK without it is a lost session too.
    resumes_state: bool,
    /// Tells the publishers the task has stopped, when dropped.
    _open: OpenGuard,
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
    Foreign(Publish),
    Nothing,
}

/// Sorts an event from rumqttc into what ingest does with it.
fn classify(event: Event, inputs: &[String], mapped: &[String]) -> Action {
    match event {
        Event::Incoming(Incoming::ConnAck(ack)) => Action::Connected(ack),
        Event::Incoming(Incoming::SubAck(ack)) => Action::Subscribed(ack),
        Event::Incoming(Incoming::Publish(p))
            if is_input(&p.topic, inputs)
                || mapped
                    .iter()
                    .any(|f| crate::decode::mapping::set::topic_matches(f, &p.topic)) =>
        {
            Action::Forward(p)
        }
        Event::Incoming(Incoming::Publish(p)) if p.topic == SYS_DROPPED => Action::BrokerDropped(p),
        Event::Incoming(Incoming::Publish(p)) => Action::Foreign(p),
        Event::Incoming(_) | Event::Outgoing(_) => Action::Nothing,
    }
}

/// The mappings' filters changed: takes them into `filters` (after the contract's) and
/// `mapped`; when `subscribed`, unsubscribes the filters no mapping names any more and
/// subscribes to the new set (the contract filters with them, so that a SUBACK of one
/// filter is never taken for the `$SYS` one). Returns whether the subscribe is due still
/// (the request queue was full).
fn refilter(
    client: &AsyncClient,
    (filters, current): (&mut Vec<String>, &mut Vec<String>),
    mappings: Option<&mut watch::Receiver<Arc<crate::decode::mapping::Mappings>>>,
    subscribed: bool,
) -> bool {
    let Some(mappings) = mappings else {
        return false;
    };
    let mapped = mappings.borrow_and_update().mqtt_filters();
    if mapped == *current {
        return false;
    }
    let gone: Vec<String> = current
        .iter()
        .filter(|f| !mapped.contains(f))
        .cloned()
        .collect();
    let contract = filters.len() - current.len();
    filters.truncate(contract);
    filters.extend(mapped.iter().cloned());
    *current = mapped;
    if !subscribed {
        return false;
    }
    info!(filters = ?filters, gone = ?gone, "The mappings' topics changed: subscribing again.");
    for filter in gone {
        let _ = client.try_unsubscribe(filter);
    }
    let all = filters
        .iter()
        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
    client.try_subscribe_many(all).is_err()
}

/// The next change of the mappings, when they are watched.
async fn mappings_changed(
    rx: &mut Option<watch::Receiver<Arc<crate::decode::mapping::Mappings>>>,
) -> Option<()> {
    match rx {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
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

impl MqttIngest {
    /// Builds the connection task, the publisher handle and the link status receiver. Does
    /// not connect: [`MqttIngest::run`] does.
    ///
    /// `password` is used when `settings.username` is not empty. `max_payload_bytes` is the
    /// decoder's limit; the outgoing limit is derived from it (see [`outgoing_payload_limit`]).
    ///
    /// # Errors
    /// [`IngestError`] for an unusable client id or prefix, an unreadable or empty CA file,
    /// or missing system root certificates (the URL, keepalive and inflight come typed).
    pub fn new(
        settings: &MqttSettings,
        password: Option<&Secret>,
        max_payload_bytes: usize,
        acks: Acks,
        tx: mpsc::Sender<RawMessage>,
        metrics: SelfMetrics,
    ) -> Result<(MqttIngest, Publisher, watch::Receiver<LinkStatus>), IngestError> {
        let filters = input_filters(&settings.prefix)?;
        let max_out = outgoing_payload_limit(max_payload_bytes);
        let nodes = mqtt_options(settings, password, max_out)?;
        let first = nodes.first().cloned().ok_or(IngestError::Setting {
            key: "url",
            reason: "no broker URL".to_owned(),
        })?;
        let (client, eventloop) = AsyncClient::new(first, REQUEST_CHANNEL_CAPACITY);
        let shared_epoch = Arc::new(AtomicU64::new(0));
        let acker = Acker {
            client: client.clone(),
            epoch: Arc::clone(&shared_epoch),
        };
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
            broker: format!("{}:{}", settings.url.connect_host(), settings.url.port()),
            nodes,
            node: 0,
            inputs: filters
                .iter()
                .map(|f| f.trim_end_matches("/#").to_owned())
                .collect(),
            filters,
            mapped: Vec::new(),
            mappings: None,
            subscribed: false,
            persistent: settings.persistent_session,
            handoff: Handoff::new(tx, acker, &metrics),
            link: Link {
                status: LinkStatus::default(),
                tx: status_tx,
                metrics: metrics.clone(),
            },
            backoff: Backoff::new(settings.reconnect_min, settings.reconnect_max),
            metrics,
            epoch: 0,
            shared_epoch,
            acks,
            stale: (0, 0),
            broker_stats: true,
            failures: 0,
            subscribe_due: false,
            resumes_state: false,
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

    /// One poll of the event loop and what follows from it. While the poll is pending, held
    /// messages move into the pipeline queue as it gets room; the poll itself is never
    /// dropped for that (only on cancel), so no packet rumqttc is reading or writing is cut.
    async fn step(&mut self, cancel: &CancellationToken) -> Flow {
        let polled = {
            let poll = self.eventloop.poll();
            tokio::pin!(poll);
            loop {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Flow::Stop,
                    polled = &mut poll => break polled,
                    room = self.handoff.room(), if self.handoff.is_holding() => {
                        if room.and_then(|()| self.handoff.drain()).is_err() {
                            return queue_closed();
                        }
                    }
                    Some(()) = mappings_changed(&mut self.mappings) => {
                        let due = refilter(
                            &self.client,
                            (&mut self.filters, &mut self.mapped),
                            self.mappings.as_mut(),
                            self.subscribed,
                        );
                        self.subscribe_due |= due;
                    }
                }
            }
        };
        match polled {
            Ok(event) => self.on_event(event),
            Err(err) => self.on_error(&err, cancel).await,
        }
    }

    /// The connection epoch an event was read on: the current one, except for publishes
    /// rumqttc read before the last CONNACK and yields after it.
    fn epoch_of(&mut self, event: &Event) -> u64 {
        if self.stale.0 > 0 && matches!(event, Event::Incoming(Incoming::Publish(_))) {
            self.stale.0 -= 1;
            return self.stale.1;
        }
        self.epoch
    }

    fn on_event(&mut self, event: Event) -> Flow {
        if self.subscribe_due {
            self.subscribe();
        }
        let epoch = self.epoch_of(&event);
        let flow = self.act(event, epoch);
        self.handoff.send_acks();
        flow
    }

    fn act(&mut self, event: Event, epoch: u64) -> Flow {
        match classify(event, &self.inputs, &self.mapped) {
            Action::Connected(ack) => self.on_connack(&ack),
            Action::Subscribed(ack) if ack.return_codes.len() == 1 => Self::on_sys_suback(&ack),
            Action::Subscribed(ack) => self.on_suback(&ack),
            Action::BrokerDropped(p) => {
                if let Some(n) = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|t| t.trim().parse::<i64>().ok())
                {
                    self.metrics.broker_messages_dropped.set(n);
                }
            }
            Action::Forward(publish) => return self.forward(publish, epoch),
            Action::Foreign(publish) => {
                debug!(topic = %publish.topic, "Ignored a message outside the input topics.");
                self.ack_ignored(&publish, epoch);
            }
            Action::Nothing => {}
        }
        Flow::Continue
    }

    fn on_connack(&mut self, ack: &ConnAck) {
        let stale = self
            .eventloop
            .state
            .events
            .iter()
            .filter(|e| matches!(e, Event::Incoming(Incoming::Publish(_))))
            .count();
        self.stale = (stale, self.epoch);
        self.epoch += 1;
        self.shared_epoch.store(self.epoch, Ordering::Release);
        self.failures = 0;
        self.backoff.reset();
        self.metrics.mqtt_connects.inc();
        let first = self.epoch == 1;
        let lost = self.persistent && !ack.session_present && (!first || self.resumes_state);
        if lost {
            self.metrics.mqtt_sessions_lost.inc();
            if first {
                warn!(
                    epoch = self.epoch,
                    "The broker no longer holds the session of iocd's earlier run; messages published while iocd was stopped may be missing."
                );
            } else {
                warn!(
                    epoch = self.epoch,
                    "The broker lost the persistent session; messages published while disconnected may be missing."
                );
            }
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
            self.subscribed = true;
            self.link.update(|s| s.subscribed = true);
            info!(
                epoch = self.epoch,
                "The broker kept the session; the subscriptions stand."
            );
        }
    }

    /// Takes the MQTT filters of `mappings` as inputs too, and their changes on reload.
    pub fn set_mappings(
        &mut self,
        mappings: watch::Receiver<Arc<crate::decode::mapping::Mappings>>,
    ) {
        self.mappings = Some(mappings);
        refilter(
            &self.client,
            (&mut self.filters, &mut self.mapped),
            self.mappings.as_mut(),
            false,
        );
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
        self.subscribed = true;
        info!(filters = ?self.filters, "Subscribed to the input topics.");
        // Mosquitto counts the QoS 1 messages it dropped for full client queues here; a
        // broker whose ACL forbids it answers with a failure, which only means no figure.
        if self.broker_stats {
            let _ = self.client.try_subscribe(SYS_DROPPED, QoS::AtMostOnce);
        }
    }

    /// The answer to the single-filter `$SYS` subscription (the inputs are three filters).
    fn on_sys_suback(ack: &SubAck) {
        if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
            debug!(
                "The broker does not allow reading its dropped-message counter; iocd_broker_messages_dropped stays unset."
            );
        }
    }

    async fn on_error(&mut self, err: &ConnectionError, cancel: &CancellationToken) -> Flow {
        self.metrics.mqtt_connection_errors.inc();
        self.metrics
            .mqtt_disconnects
            .with_label_values(&[disconnect_cause(err)])
            .inc();
        self.subscribe_due = false;
        self.subscribed = false;
        self.link.update(|s| {
            s.connected = false;
            s.subscribed = false;
        });
        self.failures += 1;
        // A clustered broker: the next node, which holds the same session.
        if self.nodes.len() > 1 {
            self.node = (self.node + 1) % self.nodes.len();
            if let Some(next) = self.nodes.get(self.node) {
                self.eventloop.mqtt_options = next.clone();
                let (host, port) = next.broker_address();
                info!(broker = %format!("{host}:{port}"), "Trying the next broker node.");
            }
        }
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
}

impl MqttIngest {
    /// Whether to read the broker's `$SYS` dropped-message counter (on by default; the
    /// embedded broker refuses `$SYS` by dropping the connection).
    pub fn set_broker_stats(&mut self, on: bool) {
        self.broker_stats = on;
    }

    /// How many bytes of QoS 0 messages ingest holds while the pipeline queue is full before
    /// it drops them ([`HOLD_MAX_BYTES`] unless set; each message counts its payload, its
    /// topic and [`HELD_OVERHEAD_BYTES`]). For tests that fill it.
    pub fn set_hold_max_bytes(&mut self, bytes: usize) {
        self.handoff.hold_max_bytes = bytes;
    }

    /// Reads the alerts the replicas publish (`{prefix}/alerts/#`) too, when this one runs
    /// beside others (`[ha] replica`): they set each alert's earliest `since`. Call before
    /// [`MqttIngest::run`].
    pub fn read_replica_alerts(&mut self, prefix: &str) {
        let input = format!("{prefix}/alerts");
        if !self.inputs.contains(&input) {
            // Among the contract's filters, before the mappings' (which `refilter` replaces).
            let at = self.filters.len() - self.mapped.len();
            self.filters.insert(at, format!("{input}/#"));
            self.inputs.push(input);
        }
    }

    /// Says that the data directory held state from an earlier run (`Recovery::resumed`),
    /// so that a first CONNACK without a session counts as a lost session.
    pub fn set_resumes_state(&mut self, resumed: bool) {
        self.resumes_state = resumed;
    }

    /// A handle that acknowledges messages of the current connection.
    #[must_use]
    pub fn acker(&self) -> Acker {
        Acker {
            client: self.client.clone(),
            epoch: Arc::clone(&self.shared_epoch),
        }
    }
}

/// Why a connection ended or could not be made, as the `cause` label of
/// `iocd_mqtt_disconnects_total`: `keepalive` (iocd's own ping went unanswered: it was too
/// busy, or the link is dead), `peer_closed` (the broker closed or reset the connection),
/// `timeout` (connect or flush timed out), `refused` (CONNACK refused: login, ACL),
/// `tls`, `io` (any other network error, such as a refused TCP connection), `protocol`.
#[must_use]
pub fn disconnect_cause(err: &ConnectionError) -> &'static str {
    use rumqttc::StateError;
    use std::io::ErrorKind;
    let io_cause = |e: &std::io::Error| match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            "peer_closed"
        }
        ErrorKind::TimedOut => "timeout",
        _ => "io",
    };
    match err {
        ConnectionError::MqttState(StateError::AwaitPingResp) => "keepalive",
        ConnectionError::MqttState(StateError::ConnectionAborted) => "peer_closed",
        ConnectionError::MqttState(StateError::Io(e)) | ConnectionError::Io(e) => io_cause(e),
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => "timeout",
        ConnectionError::ConnectionRefused(_) => "refused",
        ConnectionError::Tls(_) => "tls",
        _ => "protocol",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnects_are_sorted_by_cause() {
        use rumqttc::{ConnectReturnCode, StateError};
        use std::io::{Error, ErrorKind};
        let cases = [
            (StateError::AwaitPingResp.into(), "keepalive"),
            (StateError::ConnectionAborted.into(), "peer_closed"),
            (
                Error::from(ErrorKind::ConnectionReset).into(),
                "peer_closed",
            ),
            (Error::from(ErrorKind::ConnectionRefused).into(), "io"),
            (ConnectionError::NetworkTimeout, "timeout"),
            (
                ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                "refused",
            ),
            (StateError::WrongPacket.into(), "protocol"),
        ];
        for (err, cause) in cases {
            assert_eq!(disconnect_cause(&err), cause, "{err}");
            assert!(crate::telemetry::metrics::DISCONNECT_CAUSES.contains(&cause));
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
}

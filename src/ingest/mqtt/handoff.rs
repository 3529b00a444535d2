//! Handing input messages to the pipeline without ever pausing the event loop.
//!
//! # Why the loop never waits for the pipeline (issue 11, point 2)
//!
//! rumqttc sends the keepalive PINGREQ and reads the PINGRESP only while its `poll()` is
//! being called. A loop that awaits room in a full pipeline queue polls nothing: no ping goes
//! out, and the PINGRESP, queued by the broker behind the flood, is not read. After one
//! keepalive interval rumqttc reports "Last pingreq isn't acked" (or the broker drops the
//! silent client at 1.5 times it), the connection is cut, and the broker discards every QoS 0
//! message it had queued for iocd: a stall of the pipeline became a loss of half a flood
//! (issue 11 measured 52 %), silently. So the loop keeps polling, always, and backpressure is
//! applied per QoS instead:
//!
//! - **QoS 1: the broker holds the messages.** rumqttc never acknowledges by itself (manual
//!   acks). A message is acknowledged once it is in the pipeline queue (`Acks::OnReceipt`),
//!   or once it is in the event log (`Acks::AfterLogging`, by the journal). Unacknowledged
//!   messages fill the broker's in-flight window (`max_inflight_messages`, Mosquitto's default
//!   20; at most 65,535 by the protocol's packet ids), then the broker stops sending and queues
//!   the rest for the session, as before. The loop goes on polling, so pings go on. A QoS 1
//!   message read while the queue is full is *held* here, in order, and is never dropped: the
//!   window bounds how many there can be.
//! - **QoS 0: held up to a bound, then dropped and counted.** The broker cannot be made to
//!   wait for a QoS 0 message without iocd stopping reading, which is the starvation above. So
//!   while the pipeline queue is full, QoS 0 messages are held too, up to [`HOLD_MAX_BYTES`]
//!   (64 MiB, counting payload, topic and [`HELD_OVERHEAD_BYTES`] per message: some 150,000
//!   messages of 300 bytes, seconds of a flat-out flood). Past that, an arriving QoS 0 message
//!   is dropped, counted in `iocd_ingest_dropped_total` and logged at ERROR (at most one line
//!   per 10 s, with the count since the previous line).
//!
//! This loses the least a sender at QoS 0 can be offered. Before, the broker's queue for iocd
//! was the buffer: bounded too (`max_queued_messages`, Mosquitto's default 1,000, counted only
//! in its `$SYS`), and when it was deep enough to outlast the keepalive, the starved
//! connection was cut and all of it lost. Now iocd's own memory is the buffer, bounded in
//! bytes, larger than a default broker's, with the connection kept and every loss counted.
//! Feeds that must not lose an event publish at QoS 1 (docs/contract.md), where nothing is
//! dropped.
//!
//! Messages leave the holding area oldest first, whenever the queue has room, so the pipeline
//! sees them in the order they were read. At shutdown, what is still held after a short grace
//! is left: QoS 1 messages unacknowledged (the broker delivers them again), QoS 0 messages
//! counted as dropped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use prometheus::{Counter, IntCounter};
use rumqttc::{Event, Outgoing, Publish, QoS};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, error, info, warn};

use super::{Ack, AckError, Acker, Acks, Action, DISCONNECT_GRACE, Flow, MqttIngest, classify};
use crate::ingest::RawMessage;
use crate::telemetry::SelfMetrics;
use crate::time::Ts;

/// At shutdown, how long held messages may wait for room before DISCONNECT is sent.
const HANDOVER_GRACE: Duration = Duration::from_millis(200);

/// QoS 0 messages are dropped rather than held past this many bytes (see the module docs).
pub const HOLD_MAX_BYTES: usize = 64 << 20;

/// What a held message costs besides its payload and topic bytes: the `RawMessage`, its slot
/// in the holding queue and the topic's allocation, rounded up.
pub const HELD_OVERHEAD_BYTES: usize = 128;

/// At most one log line about dropped QoS 0 messages this often.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// The pipeline queue is closed: the pipeline has stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Closed;

/// A message read while the pipeline queue was full.
#[derive(Debug)]
struct Held {
    msg: RawMessage,
    /// The acknowledgement ingest sends once the message is in the queue.
    ack: Option<Ack>,
    qos: QoS,
}

/// The ingest end of the pipeline queue, with the messages waiting for room in it.
pub(super) struct Handoff {
    tx: mpsc::Sender<RawMessage>,
    /// Messages read while the queue was full, oldest first.
    held: VecDeque<Held>,
    /// What `held` costs, in [`held_cost`] bytes.
    held_bytes: usize,
    /// A QoS 0 message is dropped rather than take `held_bytes` past this.
    pub(super) hold_max_bytes: usize,
    acker: Acker,
    /// Acknowledgements not queued yet (rumqttc's request queue was full), in order.
    unsent_acks: VecDeque<Ack>,
    /// `iocd_pipeline_enqueued_total`, `iocd_ingest_dropped_total`,
    /// `iocd_ingest_queue_wait_seconds_total`.
    enqueued: IntCounter,
    dropped: IntCounter,
    waited: Counter,
    /// Since when messages have been held (counted into `ingest_queue_wait_seconds`).
    holding_since: Option<Instant>,
    drops: DropLog,
}

impl Handoff {
    /// The handoff onto `tx`, holding QoS 0 messages up to [`HOLD_MAX_BYTES`].
    pub(super) fn new(tx: mpsc::Sender<RawMessage>, acker: Acker, metrics: &SelfMetrics) -> Self {
        Self {
            tx,
            held: VecDeque::new(),
            held_bytes: 0,
            hold_max_bytes: HOLD_MAX_BYTES,
            acker,
            unsent_acks: VecDeque::new(),
            enqueued: metrics.pipeline_enqueued.clone(),
            dropped: metrics.ingest_dropped.clone(),
            waited: metrics.ingest_queue_wait_seconds.clone(),
            holding_since: None,
            drops: DropLog::default(),
        }
    }

    /// Whether messages are waiting for room in the queue.
    pub(super) fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Hands `msg` to the pipeline, or holds it while the queue is full; a QoS 0 message is
    /// dropped (and counted) rather than take the held bytes past `hold_max_bytes`. `ack` is
    /// sent once the message is in the queue.
    ///
    /// # Errors
    /// [`Closed`] when the pipeline has stopped.
    pub(super) fn offer(
        &mut self,
        msg: RawMessage,
        ack: Option<Ack>,
        qos: QoS,
    ) -> Result<(), Closed> {
        self.drain()?;
        let msg = if self.held.is_empty() {
            match self.tx.try_send(msg) {
                Ok(()) => {
                    self.handed_over(ack);
                    return Ok(());
                }
                Err(TrySendError::Closed(_)) => return Err(Closed),
                Err(TrySendError::Full(msg)) => msg,
            }
        } else {
            msg
        };
        let cost = held_cost(&msg);
        if qos == QoS::AtMostOnce && self.held_bytes + cost > self.hold_max_bytes {
            self.dropped.inc();
            self.drops.note(self.held.len());
            return Ok(());
        }
        if self.held.is_empty() {
            self.holding_since = Some(Instant::now());
        }
        self.held_bytes += cost;
        self.held.push_back(Held { msg, ack, qos });
        Ok(())
    }

    /// Moves held messages into the queue, oldest first, while it has room.
    ///
    /// # Errors
    /// [`Closed`] when the pipeline has stopped.
    pub(super) fn drain(&mut self) -> Result<(), Closed> {
        if self.held.is_empty() {
            return Ok(());
        }
        while let Some(Held { msg, ack, qos }) = self.held.pop_front() {
            let cost = held_cost(&msg);
            match self.tx.try_send(msg) {
                Ok(()) => {
                    self.held_bytes -= cost;
                    self.handed_over(ack);
                }
                Err(TrySendError::Full(msg)) => {
                    self.held.push_front(Held { msg, ack, qos });
                    break;
                }
                Err(TrySendError::Closed(_)) => return Err(Closed),
            }
        }
        if let Some(since) = self.holding_since {
            let now = Instant::now();
            self.waited.inc_by(now.duration_since(since).as_secs_f64());
            self.holding_since = self.is_holding().then_some(now);
        }
        Ok(())
    }

    /// Waits until the queue has room for one message (cancel-safe: nothing is taken).
    ///
    /// # Errors
    /// [`Closed`] when the pipeline has stopped.
    pub(super) async fn room(&self) -> Result<(), Closed> {
        // The permit is given back at once: the held message goes in with `try_send`, and
        // no other task sends on this queue.
        self.tx.reserve().await.map(drop).map_err(|_| Closed)
    }

    /// Queues the acknowledgement of a message (after those not queued yet, in order).
    pub(super) fn ack(&mut self, ack: Ack) {
        self.unsent_acks.push_back(ack);
        self.send_acks();
    }

    /// Queues the acknowledgements not queued yet, until rumqttc's request queue is full.
    pub(super) fn send_acks(&mut self) {
        while let Some(&ack) = self.unsent_acks.front() {
            match self.acker.try_ack(ack) {
                Ok(()) => {
                    self.unsent_acks.pop_front();
                }
                Err(AckError::Full) => break,
            }
        }
    }

    fn handed_over(&mut self, ack: Option<Ack>) {
        self.enqueued.inc();
        if let Some(ack) = ack {
            self.ack(ack);
        }
    }

    /// At shutdown: waits (at most until `deadline`) for room for the held messages.
    async fn hand_over_until(&mut self, deadline: tokio::time::Instant) {
        while self.is_holding() {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                room = self.room() => {
                    if room.and_then(|()| self.drain()).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// At shutdown, after the last chance: gives up what is still held. QoS 1 messages stay
    /// unacknowledged (the broker delivers them again); QoS 0 messages are counted as dropped.
    fn abandon(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let qos0 = self
            .held
            .iter()
            .filter(|h| h.qos == QoS::AtMostOnce)
            .count();
        let qos1 = self.held.len() - qos0;
        self.dropped.inc_by(qos0 as u64);
        self.held.clear();
        self.held_bytes = 0;
        warn!(
            qos0_dropped = qos0,
            qos1_left = qos1,
            "Shutdown came while the pipeline queue was full: QoS 0 messages not handed over are dropped (iocd_ingest_dropped_total); the broker delivers the QoS 1 ones again."
        );
    }
}

/// What holding `msg` costs, in bytes: payload, topic and [`HELD_OVERHEAD_BYTES`].
fn held_cost(msg: &RawMessage) -> usize {
    msg.payload.len() + msg.topic.len() + HELD_OVERHEAD_BYTES
}

/// The log of dropped QoS 0 messages: one line at the first drop, then at most one per
/// [`DROP_LOG_EVERY`], with the count since the previous line.
#[derive(Debug, Default)]
struct DropLog {
    since_logged: u64,
    logged_at: Option<Instant>,
}

impl DropLog {
    fn note(&mut self, held: usize) {
        self.since_logged += 1;
        let now = Instant::now();
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < DROP_LOG_EVERY)
        {
            return;
        }
        error!(
            dropped = self.since_logged,
            held,
            "The pipeline is behind and ingest holds 64 MiB of messages for it: QoS 0 messages are dropped (iocd_ingest_dropped_total). Publish at QoS 1 to have the broker hold them instead."
        );
        self.since_logged = 0;
        self.logged_at = Some(now);
    }
}

impl MqttIngest {
    /// Hands an input message to the pipeline, or holds it while the queue is full (see the
    /// module documentation). Never waits.
    pub(super) fn forward(&mut self, publish: Publish, epoch: u64) -> Flow {
        self.metrics.mqtt_messages_received.inc();
        let qos = publish.qos;
        let ack = (qos != QoS::AtMostOnce).then_some(Ack {
            epoch,
            pkid: publish.pkid,
            qos,
        });
        // With `AfterLogging` the journal acknowledges, after the fsync; else ingest does,
        // once the message is in the queue.
        let (in_message, by_ingest) = match self.acks {
            Acks::AfterLogging => (ack, None),
            Acks::OnReceipt => (None, ack),
        };
        let msg = RawMessage {
            topic: publish.topic,
            payload: publish.payload,
            received_at: Ts::now(),
            ack: in_message,
        };
        match self.handoff.offer(msg, by_ingest, qos) {
            Ok(()) => Flow::Continue,
            Err(Closed) => queue_closed(),
        }
    }

    /// Acknowledges a QoS 1 message that is not handed over (outside the input topics, such
    /// as an old prefix's subscription kept in the session): unacknowledged, it would hold a
    /// place in the broker's in-flight window for good.
    pub(super) fn ack_ignored(&mut self, publish: &Publish, epoch: u64) {
        if publish.qos != QoS::AtMostOnce {
            self.handoff.ack(Ack {
                epoch,
                pkid: publish.pkid,
                qos: publish.qos,
            });
        }
    }

    /// Hands over what is held (waiting at most [`HANDOVER_GRACE`] for room), then sends
    /// DISCONNECT and polls until it is written, at most [`DISCONNECT_GRACE`]. Input messages
    /// read meanwhile are handed over if the queue has room; what is left is given up
    /// ([`Handoff::abandon`]).
    pub(super) async fn disconnect(&mut self) {
        self.handoff
            .hand_over_until(tokio::time::Instant::now() + HANDOVER_GRACE)
            .await;
        if self.link.status.connected {
            self.handoff.send_acks();
            if self.client.try_disconnect().is_ok() {
                self.poll_until_disconnected().await;
            }
        }
        self.handoff.abandon();
        self.link.update(|s| {
            s.connected = false;
            s.subscribed = false;
        });
    }

    async fn poll_until_disconnected(&mut self) {
        let deadline = tokio::time::sleep(DISCONNECT_GRACE);
        tokio::pin!(deadline);
        loop {
            let polled = tokio::select! {
                () = &mut deadline => {
                    debug!("DISCONNECT was not written within the grace period.");
                    return;
                }
                polled = self.eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    info!("Disconnected from the broker.");
                    return;
                }
                Ok(event) => {
                    let epoch = self.epoch_of(&event);
                    if let Action::Forward(publish) = classify(event, &self.inputs, &self.mapped) {
                        let _ = self.forward(publish, epoch);
                    }
                }
                Err(_) => return,
            }
        }
    }
}

pub(super) fn queue_closed() -> Flow {
    info!("The pipeline queue is closed; MQTT ingest stops.");
    Flow::Stop
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use rumqttc::{AsyncClient, EventLoop, MqttOptions};
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    fn msg(n: u32) -> RawMessage {
        RawMessage {
            topic: "p/onestop/x".into(),
            payload: Bytes::from(n.to_string()),
            received_at: Ts::now(),
            ack: None,
        }
    }

    fn ack(pkid: u16) -> Ack {
        Ack {
            epoch: 1,
            pkid,
            qos: QoS::AtLeastOnce,
        }
    }

    /// A handoff onto a queue of `capacity`, acknowledging into a request queue of
    /// `requests` that nothing reads (0: every ack stays in `unsent_acks`, where the test
    /// sees it). The event loop is returned to keep the request queue open.
    fn handoff(
        capacity: usize,
        requests: usize,
    ) -> (Handoff, mpsc::Receiver<RawMessage>, SelfMetrics, EventLoop) {
        let (tx, rx) = mpsc::channel(capacity);
        let options = MqttOptions::new("t", "localhost", 1883);
        let (client, eventloop) = AsyncClient::new(options, requests);
        let acker = Acker {
            client,
            epoch: Arc::new(AtomicU64::new(1)),
        };
        let metrics = SelfMetrics::new();
        let mut handoff = Handoff::new(tx, acker, &metrics);
        // Room for two of the test's messages.
        handoff.hold_max_bytes = 2 * held_cost(&msg(0));
        (handoff, rx, metrics, eventloop)
    }

    fn payloads(rx: &mut mpsc::Receiver<RawMessage>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect()
    }

    fn unsent(h: &Handoff) -> Vec<u16> {
        h.unsent_acks.iter().map(|a| a.pkid).collect()
    }

    #[test]
    fn held_messages_go_in_first_and_in_order() {
        let (mut h, mut rx, metrics, _el) = handoff(2, 0);
        for n in 0..4 {
            assert_eq!(h.offer(msg(n), None, QoS::AtMostOnce), Ok(()));
        }
        assert!(h.is_holding());
        assert_eq!(payloads(&mut rx), ["0", "1"]);
        // Room for two: the two held go in first; the new one waits behind them.
        assert_eq!(h.offer(msg(4), None, QoS::AtMostOnce), Ok(()));
        assert_eq!(payloads(&mut rx), ["2", "3"]);
        assert_eq!(h.drain(), Ok(()));
        assert_eq!(payloads(&mut rx), ["4"]);
        assert!(!h.is_holding());
        assert_eq!(metrics.pipeline_enqueued.get(), 5);
        assert_eq!(metrics.ingest_dropped.get(), 0);
        assert!(metrics.ingest_queue_wait_seconds.get() > 0.0);
    }

    #[test]
    fn qos0_past_the_bound_is_dropped_and_counted_and_qos1_never_is() {
        let (mut h, mut rx, metrics, _el) = handoff(2, 0);
        for n in 0..4 {
            h.offer(msg(n), None, QoS::AtMostOnce).unwrap();
        }
        // Two queued, two held: the bound (two messages' worth) is reached.
        h.offer(msg(4), None, QoS::AtMostOnce).unwrap();
        assert_eq!(metrics.ingest_dropped.get(), 1);
        h.offer(msg(5), Some(ack(7)), QoS::AtLeastOnce).unwrap();
        assert_eq!(
            metrics.ingest_dropped.get(),
            1,
            "QoS 1 is held past the bound"
        );
        assert!(
            unsent(&h).is_empty(),
            "a held QoS 1 message is not acknowledged"
        );
        assert_eq!(payloads(&mut rx), ["0", "1"]);
        h.drain().unwrap();
        assert_eq!(payloads(&mut rx), ["2", "3"]);
        h.drain().unwrap();
        assert_eq!(payloads(&mut rx), ["5"]);
        assert_eq!(unsent(&h), [7], "acknowledged once in the queue");
        assert_eq!(metrics.pipeline_enqueued.get(), 5);
    }

    #[test]
    fn acks_that_do_not_fit_the_request_queue_wait_in_order() {
        let (mut h, _rx, _, _el) = handoff(16, 4);
        for pkid in 1..=6 {
            h.offer(msg(u32::from(pkid)), Some(ack(pkid)), QoS::AtLeastOnce)
                .unwrap();
        }
        assert_eq!(unsent(&h), [5, 6]);
        h.ack(ack(9));
        h.send_acks();
        assert_eq!(unsent(&h), [5, 6, 9]);
    }

    #[test]
    fn a_closed_queue_is_reported() {
        let (mut h, rx, _, _el) = handoff(1, 0);
        drop(rx);
        assert_eq!(h.offer(msg(0), None, QoS::AtMostOnce), Err(Closed));
    }

    #[test]
    fn shutdown_counts_the_held_qos0_messages_as_dropped() {
        let (mut h, _rx, metrics, _el) = handoff(1, 0);
        h.offer(msg(0), None, QoS::AtMostOnce).unwrap();
        h.offer(msg(1), None, QoS::AtMostOnce).unwrap();
        h.offer(msg(2), Some(ack(3)), QoS::AtLeastOnce).unwrap();
        h.abandon();
        assert!(!h.is_holding());
        assert_eq!(metrics.ingest_dropped.get(), 1);
        assert!(
            unsent(&h).is_empty(),
            "the QoS 1 one is left unacknowledged"
        );
    }

    #[test]
    fn drops_are_logged_at_once_then_once_per_interval_with_the_count() {
        let mut log = DropLog::default();
        log.note(1);
        assert_eq!(log.since_logged, 0, "the first drop is logged at once");
        log.note(1);
        log.note(1);
        assert_eq!(log.since_logged, 2, "later ones wait for the interval");
    }
}

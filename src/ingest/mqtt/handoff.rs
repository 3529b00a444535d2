//! Handing input messages to the pipeline: over the bounded queue, waiting when it is full
//! (backpressure: the broker holds the rest), and at shutdown only what fits.

use std::time::Instant;

use rumqttc::{Event, Outgoing, Publish, QoS};
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Ack, Action, DISCONNECT_GRACE, Flow, MqttIngest, classify};
use crate::ingest::RawMessage;
use crate::time::Ts;

impl MqttIngest {
    /// Hands an input message to the pipeline; when the queue is full, waits (backpressure)
    /// and counts the time waited. Stops when the queue is closed or on cancel.
    pub(super) async fn forward(&mut self, publish: Publish, cancel: &CancellationToken) -> Flow {
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

    /// Sends DISCONNECT and polls until it is written, at most [`DISCONNECT_GRACE`].
    /// Input messages read meanwhile are handed over if the queue has room.
    pub(super) async fn disconnect(&mut self) {
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

    /// The raw message of a publish, tagged with the current epoch when it must be acked.
    pub(super) fn raw_message(&self, publish: Publish) -> RawMessage {
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

pub(super) fn queue_closed() -> Flow {
    info!("The pipeline queue is closed; MQTT ingest stops.");
    Flow::Stop
}

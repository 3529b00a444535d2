//! Acknowledgements of QoS 1 messages, sent once they are durable, for the current
//! connection only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rumqttc::{AsyncClient, Publish, QoS};
use tracing::debug;

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
    pub(super) client: AsyncClient,
    pub(super) epoch: Arc<AtomicU64>,
}

/// Why an acknowledgement was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// rumqttc's request queue is full: retry later, in the same order.
    #[error("the MQTT request queue is full; the acknowledgement waits")]
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

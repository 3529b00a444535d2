//! Ingest: the MQTT connection. Receives PUBLISH packets on the input topics and hands
//! them, untouched, to the pipeline over a bounded queue; publishes dead letters and
//! alerts for the outputs. Decoding is not done here.

pub mod deadletter;
pub mod http;
pub mod mqtt;
pub mod poll;
pub mod push;

use bytes::Bytes;

use crate::time::Ts;

pub use mqtt::{
    Ack, AckError, Acker, Acks, IngestError, LinkStatus, MqttIngest, PublishError, Publisher,
};

/// One message as it came off the wire.
#[derive(Clone, Debug)]
pub struct RawMessage {
    /// The topic it was published on.
    pub topic: String,
    /// The payload bytes, unchecked.
    pub payload: Bytes,
    /// The daemon's clock when it was read off the connection.
    pub received_at: Ts,
    /// With manual acknowledgements, what acknowledges it once it is durable.
    pub ack: Option<Ack>,
}

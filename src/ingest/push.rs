//! Items taken in by request rather than read off the broker: HTTP push
//! (`POST /api/v1/ingest/...`) and the pollers. Each request goes to the pipeline whole,
//! over a bounded queue (full: the caller answers 429), and is answered per item once
//! everything accepted is durable, as an MQTT acknowledgement is.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::decode::Source;
use crate::decode::mapping::Mapping;

/// Requests waiting for the pipeline; more are refused with 429.
pub const QUEUE: usize = 16;

/// How an item came in, for `iocd_ingest_items_total{transport}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Read off the broker.
    Mqtt,
    /// Pushed over HTTP.
    Http,
    /// Fetched by a poller.
    Poll,
}

impl Transport {
    /// Its label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Mqtt => "mqtt",
            Transport::Http => "http",
            Transport::Poll => "poll",
        }
    }

    /// Index into per-transport arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// What the items of a request are.
#[derive(Clone, Debug)]
pub enum Items {
    /// Contract events of one source.
    Contract(Source),
    /// Payloads for a mapping.
    Mapped(Arc<Mapping>),
    /// Operator actions (their JSON documents), from the HTTP API.
    Actions,
}

/// One request: its items, where they came from, and where the answer goes.
#[derive(Debug)]
pub struct Request {
    /// What they are.
    pub items: Items,
    /// Each item's bytes (a contract event, or a mapping's payload).
    pub payloads: Vec<Bytes>,
    /// HTTP push or a poller.
    pub transport: Transport,
    /// The route or the poller's URL: the dead letters' `topic`.
    pub origin: String,
    /// The answer, sent once every accepted item is durable.
    pub reply: oneshot::Sender<Vec<ItemOutcome>>,
}

/// What became of one item (one contract event, or one record of a mapped payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemOutcome {
    /// The item's position in the request (payloads in order; a mapped payload's records
    /// share their payload's index and are told apart by `record`).
    pub item: usize,
    /// The record within a mapped payload. A record that makes several events (its own and
    /// its mapping's `[[also]]` ones) has an entry for each, told apart by `type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<usize>,
    /// The contract type of the event a mapped record made.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<&'static str>,
    /// `accepted`, `duplicate`, `rejected`, or `skipped` (a mapped record with no contract
    /// type: counted, nothing applied).
    pub status: Status,
    /// The event id, when the item had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The rejection reason (the contract's codes, or `mapping_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// What exactly was wrong, or why a record was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ItemOutcome {
    /// An outcome of `status` and nothing else; the caller fills in its place and what it
    /// knows (`..ItemOutcome::of(status)`).
    #[must_use]
    pub fn of(status: Status) -> Self {
        Self {
            item: 0,
            record: None,
            event_type: None,
            status,
            event_id: None,
            reason: None,
            detail: None,
        }
    }

    /// A mapped record skipped (its type has no contract event), and why.
    #[must_use]
    pub fn skipped(why: String) -> Self {
        Self {
            detail: Some(why),
            ..Self::of(Status::Skipped)
        }
    }
}

/// The status of an [`ItemOutcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Applied (and durable when the answer came).
    Accepted,
    /// Already seen: changed nothing.
    Duplicate,
    /// Refused, counted and dead-lettered.
    Rejected,
    /// A mapped record with no contract type.
    Skipped,
}

//! The WebSocket push (`GET /ws`, docs/contract.md §4): a snapshot on connect, a new one
//! when the figures change (at most every `push_interval`), alert frames at once, `seq` +1
//! per frame, and `subscribe` filtering.
//!
//! Isolation: each client runs in its own task and reads snapshots from a `watch`
//! channel, which keeps only the newest, so a slow client skips straight to the latest
//! snapshot and never makes the pipeline or other clients wait. Alert frames come through
//! a bounded `broadcast`; a client that falls behind it gets a fresh snapshot (which lists
//! the firing alerts) instead. A client whose socket takes nothing for `max_behind_secs` is
//! disconnected. Connections are capped by a semaphore (503 beyond `max_clients`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info_span};

use crate::config::WsSettings;
use crate::derive::Transition;
use crate::derive::snapshot::{Snapshot, Topics, UnknownTopic, alert_frame, error_frame};
use crate::telemetry::SelfMetrics;

/// Alert frames buffered per client before it counts as lagging.
pub const ALERT_BUFFER: usize = 256;
/// Per-connection read buffer: clients only send small `subscribe` messages.
const READ_BUFFER_BYTES: usize = 512;

/// Everything a client task needs; cheap to clone.
#[derive(Clone)]
pub struct WsHub {
    /// The latest snapshot; replaced by the pipeline when the figures change.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Alert transitions, at each change of an alert's state or count.
    pub alerts: broadcast::Sender<Arc<Transition>>,
    slots: Arc<Semaphore>,
    settings: WsSettings,
    metrics: SelfMetrics,
    /// Fires at shutdown: clients send a Close frame and end.
    shutdown: CancellationToken,
}

impl WsHub {
    /// A hub over these channels.
    #[must_use]
    pub fn new(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        alerts: broadcast::Sender<Arc<Transition>>,
        settings: WsSettings,
        metrics: SelfMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            snapshots,
            alerts,
            slots: Arc::new(Semaphore::new(settings.max_clients)),
            settings,
            metrics,
            shutdown,
        }
    }

    /// Accepts an upgrade if a slot is free, else answers 503.
    pub fn upgrade(&self, ws: WebSocketUpgrade) -> Response {
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.metrics
                .ws_rejected
                .with_label_values(&["max_clients"])
                .inc();
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many WebSocket clients\n",
            )
                .into_response();
        };
        let hub = self.clone();
        let max = self.settings.max_message_bytes;
        ws.read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0)
            .max_message_size(max)
            .max_frame_size(max)
            .on_upgrade(move |socket| hub.serve(socket, permit))
    }

    async fn serve(self, socket: WebSocket, permit: OwnedSemaphorePermit) {
        self.metrics.ws_clients.inc();
        let span = info_span!(
            "ws",
            client = self.settings.max_clients - self.slots.available_permits()
        );
        Client::new(self.clone(), socket)
            .run()
            .instrument(span)
            .await;
        self.metrics.ws_clients.dec();
        drop(permit);
    }
}

/// Why a client's loop ended.
enum End {
    /// The client closed or the connection failed.
    Gone,
    /// Its socket took nothing for `max_behind_secs`.
    Slow,
    /// It answered no ping for two intervals.
    Silent,
    /// The daemon is stopping.
    Shutdown,
}

struct Client {
    hub: WsHub,
    socket: Option<WebSocket>,
    seq: u64,
    topics: Topics,
}

impl Client {
    fn new(hub: WsHub, socket: WebSocket) -> Self {
        Self {
            hub,
            socket: Some(socket),
            seq: 0,
            topics: Topics::ALL,
        }
    }

    async fn run(mut self) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        let (mut sink, mut stream) = socket.split();
        let mut snapshots = self.hub.snapshots.clone();
        let mut alerts = self.hub.alerts.subscribe();
        let ping_every = self.hub.settings.ping_interval;
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        let mut heard = Instant::now();
        let shutdown = self.hub.shutdown.clone();

        let first = snapshots.borrow_and_update().clone();
        let mut end = self.send_snapshot(&mut sink, &first).await.err();
        while end.is_none() {
            end = tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(msg)) => {
                        heard = Instant::now();
                        self.on_message(&mut sink, msg, &snapshots).await.err()
                    }
                    Some(Err(_)) | None => Some(End::Gone),
                },
                alert = alerts.recv() => match alert {
                    Ok(alert) if self.topics.alerts => {
                        let frame = alert_frame(self.next_seq(), &alert.json);
                        self.send(&mut sink, frame).await.err()
                    }
                    Ok(_) => None,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.hub.metrics.ws_lagged.inc();
                        let snap = snapshots.borrow_and_update().clone();
                        self.send_snapshot(&mut sink, &snap).await.err()
                    }
                    Err(broadcast::error::RecvError::Closed) => Some(End::Shutdown),
                },
                changed = snapshots.changed() => match changed {
                    Ok(()) => {
                        let snap = snapshots.borrow_and_update().clone();
                        self.send_snapshot(&mut sink, &snap).await.err()
                    }
                    Err(_) => Some(End::Shutdown),
                },
                _ = ping.tick() => {
                    if heard.elapsed() > ping_every * 2 {
                        Some(End::Silent)
                    } else {
                        self.send_raw(&mut sink, Message::Ping(Vec::new().into())).await.err()
                    }
                }
                () = shutdown.cancelled() => Some(End::Shutdown),
            };
        }
        match end {
            Some(End::Slow) => {
                self.hub.metrics.ws_slow_disconnects.inc();
                debug!("Client took nothing for max_behind_secs; disconnected.");
            }
            Some(End::Silent) => debug!("Client answered no ping; disconnected."),
            Some(End::Shutdown) => {
                let close = Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: axum::extract::ws::close_code::AWAY,
                    reason: "iocd is stopping".into(),
                }));
                let _ = tokio::time::timeout(Duration::from_millis(200), sink.send(close)).await;
            }
            Some(End::Gone) | None => {}
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Handles one client message: `subscribe` (answered with a snapshot at once), control
    /// frames, or an error frame for anything else.
    async fn on_message(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        msg: Message,
        snapshots: &watch::Receiver<Arc<Snapshot>>,
    ) -> Result<(), End> {
        match msg {
            Message::Text(text) => match parse_subscribe(text.as_str()) {
                Ok(topics) => {
                    self.topics = topics;
                    let snap = snapshots.borrow().clone();
                    self.send_snapshot(sink, &snap).await
                }
                Err(e) => {
                    let frame = error_frame(self.next_seq(), &e.to_string());
                    self.send(sink, frame).await
                }
            },
            Message::Binary(_) => {
                let frame = error_frame(
                    self.next_seq(),
                    "binary messages are not understood; send JSON text",
                );
                self.send(sink, frame).await
            }
            Message::Close(_) => Err(End::Gone),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn send_snapshot(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        snap: &Snapshot,
    ) -> Result<(), End> {
        let frame = snap.frame(self.next_seq(), self.topics);
        self.send(sink, frame).await
    }

    async fn send(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        frame: String,
    ) -> Result<(), End> {
        self.send_raw(sink, Message::Text(frame.into())).await?;
        self.hub.metrics.ws_frames_sent.inc();
        Ok(())
    }

    async fn send_raw(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        msg: Message,
    ) -> Result<(), End> {
        let limit = self.hub.settings.max_behind;
        match tokio::time::timeout(limit, sink.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Slow),
        }
    }
}

/// Why a client's message was refused (answered with an error frame).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum BadMessage {
    /// Not the shape of a subscribe message.
    #[error("expected {{\"type\": \"subscribe\", \"topics\": [...]}}: {0}")]
    Shape(String),
    /// Another message type.
    #[error("unknown message type `{0}`; only `subscribe` is understood")]
    Type(String),
    /// A topic that does not exist.
    #[error(transparent)]
    Topic(#[from] UnknownTopic),
}

/// Parses `{"type": "subscribe", "topics": [...]}`.
fn parse_subscribe(text: &str) -> Result<Topics, BadMessage> {
    #[derive(serde::Deserialize)]
    struct Subscribe<'a> {
        r#type: &'a str,
        #[serde(borrow)]
        topics: Vec<&'a str>,
    }
    let msg: Subscribe<'_> =
        serde_json::from_str(text).map_err(|e| BadMessage::Shape(e.to_string()))?;
    if msg.r#type != "subscribe" {
        return Err(BadMessage::Type(msg.r#type.to_owned()));
    }
    Ok(Topics::parse(msg.topics)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_messages_are_parsed_strictly() {
        assert_eq!(
            parse_subscribe(r#"{"type":"subscribe","topics":["vc","alerts"]}"#),
            Ok(Topics {
                onestop: false,
                vc: true,
                soc: false,
                alerts: true
            })
        );
        assert!(parse_subscribe(r#"{"type":"subscribe","topics":["tv"]}"#).is_err());
        assert!(parse_subscribe(r#"{"type":"hello","topics":[]}"#).is_err());
        assert!(parse_subscribe("not json").is_err());
    }
}

//! The one HTTP listener: `/metrics` (Prometheus text format), `/healthz` (the process
//! runs) and `/readyz` (the broker is connected and the subscriptions are in place).
//! Later outputs (`/ws`, `/api/*`, `/`) join this router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;

use crate::ingest::LinkStatus;
use crate::outputs::prometheus;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Self-metrics plus the domain collector.
    pub registry: ::prometheus::Registry,
    /// The broker link, for `/readyz`.
    pub link: watch::Receiver<LinkStatus>,
}

/// Requests that take longer than this are answered 408 (no handler here should).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The router with every endpoint of this listener.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(state))
        .layer(axum::middleware::from_fn(timeout))
}

async fn timeout(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

async fn metrics(State(s): State<Arc<HttpState>>) -> Response {
    match prometheus::encode(&s.registry) {
        Ok(body) => ([(header::CONTENT_TYPE, ::prometheus::TEXT_FORMAT)], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response(),
    }
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

async fn readyz(State(s): State<Arc<HttpState>>) -> Response {
    let link = s.link.borrow().clone();
    let ready = link.connected && link.subscribed;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "broker_connected": link.connected,
        "subscribed": link.subscribed,
        "sessions_lost": link.sessions_lost,
    });
    (status, axum::Json(body)).into_response()
}

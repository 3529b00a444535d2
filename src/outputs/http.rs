//! The one HTTP listener: the wall display (`/`), the WebSocket (`/ws`), the read API
//! (`/api/v1/*`), `/metrics`, `/healthz` and `/readyz`, with access control applied per
//! route as docs/contract.md §4 says (health endpoints never need a token).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query as QueryParams, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::watch;

use super::api::Api;
use super::auth::Access;
use super::wall;
use super::ws::WsHub;
use crate::ingest::LinkStatus;
use crate::outputs::prometheus;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Self-metrics plus the domain collector.
    pub registry: ::prometheus::Registry,
    /// The broker link, for `/readyz`.
    pub link: watch::Receiver<LinkStatus>,
    /// Tokens and origins.
    pub access: Access,
    /// The WebSocket hub.
    pub ws: WsHub,
    /// The read API.
    pub api: Api,
    /// Self-metrics, for counting refusals.
    pub metrics: crate::telemetry::SelfMetrics,
    /// Where accepted events are kept, for `/readyz`.
    pub durability: Durability,
    /// Why the last reload of the agency directory was refused, for `/readyz` (still ready:
    /// the previous directory stays in use).
    pub directory_problem: watch::Receiver<Option<Arc<str>>>,
    /// The working calendar, for `/readyz`.
    pub calendar: CalendarStatus,
    /// HTTP push ingest.
    pub ingest: crate::ingest::http::HttpIngest,
    /// Why the last reload of the mappings was refused, for `/readyz`.
    pub mappings_problem: watch::Receiver<Option<Arc<str>>>,
    /// `[http] ingest_max_body_bytes`.
    pub ingest_max_body_bytes: usize,
    /// Publishes operator actions on `{prefix}/ops/actions` for the other replicas;
    /// `None` in tests without a broker.
    pub publisher: Option<crate::ingest::Publisher>,
    /// `[ha]`: this replica's name and its peers, for `GET /api/v1/replicas`.
    pub ha: crate::config::HaSettings,
}

/// What `/readyz` says of the working calendar.
#[derive(Clone, Debug, Default)]
pub struct CalendarStatus {
    /// Whether "stalled" and "due soon" count working hours.
    pub enabled: bool,
    /// Provisional entries of the holidays file in use (`YYYY-MM-DD`, name), from a month
    /// ago to a year ahead, as found at start.
    pub provisional_days: Arc<[(String, String)]>,
}

/// Where accepted events are kept: what `/readyz` reports as `durable`.
#[derive(Clone, Debug)]
pub enum Durability {
    /// No data directory: state is in memory only and lost at restart. Still ready (a
    /// deliberate choice for a demo or a lab), but `/readyz` says so.
    Memory,
    /// The event log in a data directory; the value turns false when it cannot be written,
    /// and then iocd is not ready.
    Disk(watch::Receiver<bool>),
}

impl Durability {
    /// `(durable, reason when not, whether that blocks readiness)`.
    fn status(&self) -> (bool, Option<&'static str>, bool) {
        match self {
            Durability::Memory => (
                false,
                Some(
                    "no data directory (--data-dir): state is kept in memory only, events are \
                     acknowledged on receipt, and a restart loses them",
                ),
                false,
            ),
            Durability::Disk(ok) if *ok.borrow() => (true, None, false),
            Durability::Disk(_) => (
                false,
                Some("the data directory cannot be written; see the log"),
                true,
            ),
        }
    }
}

/// Requests that take longer than this are answered 408 (none should; `/ws` is exempt
/// once upgraded).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The router with every endpoint of this listener.
pub fn router(state: HttpState) -> Router {
    let timed = Router::new()
        .route("/", get(wall::index))
        .route("/wall.js", get(wall::script))
        .route("/i18n.js", get(wall::i18n))
        .route("/wall.css", get(wall::style))
        .route("/agency/{code}", get(wall::agency))
        .route("/agency.js", get(wall::agency_script))
        .route("/ops", get(wall::ops))
        .route("/ops.js", get(wall::ops_script))
        .route("/scorecard", get(wall::scorecard))
        .route("/scorecard.js", get(wall::scorecard_script))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/snapshot", get(snapshot))
        .route("/api/v1/replicas", get(replicas))
        .route("/api/v1/onestop/dossiers", get(dossiers))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/agencies", get(agencies))
        .route("/api/v1/scorecard", get(scorecard))
        .route("/api/v1/agencies/{code}", get(agency))
        .route("/api/v1/alerts/{id}/history", get(super::ops::history))
        .route(
            "/api/v1/alerts/{id}/{action}",
            post(super::ops::alert_action),
        )
        .route(
            "/api/v1/silences",
            get(super::ops::silences).post(super::ops::silence),
        )
        .route("/api/v1/silences/{id}/expire", post(super::ops::unsilence))
        .route("/api/v1/audit", get(super::ops::audit))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(timeout));
    let ingest = Router::new()
        .route("/api/v1/ingest/{source}", post(ingest_contract))
        .route("/api/v1/ingest/mapped/{mapping}", post(ingest_mapped))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.ingest_max_body_bytes,
        ))
        .layer(axum::middleware::from_fn(timeout));
    Router::new()
        .merge(ingest)
        .route("/ws", get(ws))
        .merge(timed)
        .with_state(Arc::new(state))
}

async fn timeout(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

fn refuse(status: StatusCode) -> Response {
    let message = if status == StatusCode::UNAUTHORIZED {
        "a valid access token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)"
    } else {
        "this origin may not open the WebSocket"
    };
    let mut resp = (status, axum::Json(json!({"error": message}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

async fn ws(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(status) = s.access.check_token(&headers, q.as_deref()) {
        s.metrics
            .ws_rejected
            .with_label_values(&["unauthorized"])
            .inc();
        return refuse(status);
    }
    if let Err(status) = s.access.check_origin(&headers) {
        s.metrics.ws_rejected.with_label_values(&["origin"]).inc();
        return refuse(status);
    }
    s.ws.upgrade(upgrade)
}

async fn ingest_contract(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    axum::extract::Path(source): axum::extract::Path<String>,
    body: bytes::Bytes,
) -> Response {
    if let Err(status) = s.access.check_ingest(&headers, q.as_deref()) {
        return refuse_ingest(status);
    }
    s.ingest.contract(&source, &headers, body).await
}

async fn ingest_mapped(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    axum::extract::Path(mapping): axum::extract::Path<String>,
    body: bytes::Bytes,
) -> Response {
    if let Err(status) = s.access.check_ingest(&headers, q.as_deref()) {
        return refuse_ingest(status);
    }
    s.ingest.mapped(&mapping, &headers, body).await
}

fn refuse_ingest(status: StatusCode) -> Response {
    if status == StatusCode::FORBIDDEN {
        let message = "HTTP ingest is closed: access tokens are configured but no ingest token ([http] ingest_tokens)";
        return (status, axum::Json(json!({"error": message}))).into_response();
    }
    let message = "a valid ingest token is required (Authorization: Bearer TOKEN); access tokens cannot ingest";
    let mut resp = (status, axum::Json(json!({"error": message}))).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

async fn snapshot(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(status) = s.access.check_token(&headers, q.as_deref()) {
        return refuse(status);
    }
    s.api.snapshot()
}

/// This replica's name and its peers (`[ha]`): where a wall goes when this one stops
/// answering.
async fn replicas(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(status) = s.access.check_token(&headers, q.as_deref()) {
        return refuse(status);
    }
    let body = serde_json::json!({
        "replica": s.ha.is_replicated().then_some(s.ha.replica.as_str()),
        "peers": s.ha.peers,
    });
    axum::Json(body).into_response()
}

async fn alerts(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    params: Params,
) -> Response {
    let api = &s.api;
    with_params(&s, &headers, q.as_deref(), params, |p| async move {
        api.alerts(&p)
    })
    .await
}

/// The query string of an API request, or the 400 answer for a malformed one.
type Params =
    Result<QueryParams<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// Checks the token, then answers with `answer` of the parsed query parameters (400 with
/// `{"error"}` when the query string does not parse): what every paged API route shares.
async fn with_params<F: Future<Output = Response>>(
    s: &HttpState,
    headers: &HeaderMap,
    q: Option<&str>,
    params: Params,
    answer: impl FnOnce(HashMap<String, String>) -> F,
) -> Response {
    if let Err(status) = s.access.check_token(headers, q) {
        return refuse(status);
    }
    match params {
        Ok(QueryParams(params)) => answer(params).await,
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e.body_text()})),
        )
            .into_response(),
    }
}

async fn dossiers(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    params: Params,
) -> Response {
    let api = &s.api;
    with_params(&s, &headers, q.as_deref(), params, |p| async move {
        api.dossiers(&p).await
    })
    .await
}

async fn agencies(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    params: Params,
) -> Response {
    let api = &s.api;
    with_params(&s, &headers, q.as_deref(), params, |p| async move {
        api.agencies(&p).await
    })
    .await
}

async fn scorecard(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    params: Params,
) -> Response {
    let api = &s.api;
    with_params(&s, &headers, q.as_deref(), params, |p| async move {
        api.scorecard(&p).await
    })
    .await
}

async fn agency(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Response {
    if let Err(status) = s.access.check_token(&headers, q.as_deref()) {
        return refuse(status);
    }
    s.api.agency(code).await
}

async fn metrics(
    State(s): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if s.access.protect_metrics
        && let Err(status) = s.access.check_token(&headers, q.as_deref())
    {
        return refuse(status);
    }
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
    let (durable, reason, blocks) = s.durability.status();
    let ready = link.connected && link.subscribed && !blocks;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "ready": ready,
        "broker_connected": link.connected,
        "subscribed": link.subscribed,
        "sessions_lost": link.sessions_lost,
        "durable": durable,
    });
    if let (Some(reason), Some(map)) = (reason, body.as_object_mut()) {
        map.insert("durable_reason".into(), reason.into());
    }
    let view = s.api.views.borrow().clone();
    if let Some(map) = body.as_object_mut() {
        let problem = s.directory_problem.borrow().clone();
        let directory = &view.directory;
        map.insert(
            "directory".into(),
            json!({
                "file": (!directory.origin().is_empty()).then(|| directory.origin()),
                "agencies": directory.len(),
                "reload_refused": problem.as_deref(),
                "unknown_agencies": view.agencies_unknown,
                "unknown_agency_codes": view.unknown_agency_codes,
            }),
        );
        let provisional: Vec<serde_json::Value> = s
            .calendar
            .provisional_days
            .iter()
            .map(|(date, name)| json!({"date": date, "name": name}))
            .collect();
        let mappings = s.ingest.mappings.borrow().clone();
        let names: Vec<&str> = mappings.all().iter().map(|m| m.name.as_str()).collect();
        map.insert(
            "mappings".into(),
            json!({
                "dir": (!mappings.origin().is_empty()).then(|| mappings.origin()),
                "loaded": names,
                "reload_refused": s.mappings_problem.borrow().as_deref(),
            }),
        );
        map.insert(
            "calendar".into(),
            json!({"working_hours": s.calendar.enabled, "provisional_days": provisional}),
        );
    }
    (status, axum::Json(body)).into_response()
}

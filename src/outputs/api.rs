//! The read API (docs/contract.md §4): `GET /api/v1/snapshot`, `GET /api/v1/alerts` and
//! `GET /api/v1/onestop/dossiers`. Bad parameters get 400 with `{"error": "…"}`.
//!
//! The snapshot and the alerts are read from what the derive stage published. Dossier
//! queries need the whole state, which only the pipeline holds: they reach it over a small
//! bounded queue, and when that is full the API answers 503 rather than queueing without
//! bound behind ingestion.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::derive::View;
use crate::derive::snapshot::{Snapshot, Topics};
use crate::state::query::{AgencySort, DossierFilter, Query};
use crate::time::{Calendar, Ts};

/// Most dossiers one request may list.
pub const MAX_LIMIT: usize = 1000;
/// Dossiers listed when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `offset` (paging): beyond it a list is better filtered than paged.
pub const MAX_OFFSET: usize = 1_000_000;

/// What the API handlers read.
#[derive(Clone)]
pub struct Api {
    /// The latest snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The latest view (its `alerts_api` is the alert list).
    pub views: watch::Receiver<Arc<View>>,
    /// Queries to the pipeline.
    pub queries: mpsc::Sender<Query>,
    /// For formatting times.
    pub cal: Calendar,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The `level` parameter, when given, must be a directory level (or `unknown`).
fn check_level(params: &HashMap<String, String>) -> Result<(), String> {
    match params.get("level").map(String::as_str) {
        None | Some("province" | "commune" | "district" | "unknown") => Ok(()),
        Some(level) => Err(format!(
            "unknown level `{level}`; expected province, commune, district or unknown"
        )),
    }
}

/// `limit` (0 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]) and `offset` (0 to
/// [`MAX_OFFSET`], default 0) of a paged list, or what is wrong with them (for a 400).
pub(super) fn page(params: &HashMap<String, String>) -> Result<(usize, usize), String> {
    let number = |key: &str, default: usize, max: usize| match params.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            Ok(n) => Err(format!("{key} {n} is over the maximum of {max}")),
            Err(_) => Err(format!("{key} must be a whole number from 0 to {max}")),
        },
    };
    Ok((
        number("limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        number("offset", 0, MAX_OFFSET)?,
    ))
}

impl Api {
    /// `GET /api/v1/snapshot`: the snapshot document; `seq` is the snapshot's version.
    #[must_use]
    pub fn snapshot(&self) -> Response {
        let snap = self.snapshots.borrow().clone();
        let body = snap.frame(snap.version, Topics::ALL);
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }

    /// `GET /api/v1/alerts?limit=…&offset=…`: a page of the firing alerts (newest first),
    /// each with its members (bounded), and `total`, how many fire.
    #[must_use]
    pub fn alerts(&self, params: &HashMap<String, String>) -> Response {
        if let Some(unknown) = params
            .keys()
            .find(|k| !matches!(k.as_str(), "limit" | "offset" | "token"))
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown parameter `{unknown}`; expected limit or offset"),
            );
        }
        let (limit, offset) = match page(params) {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let items = Arc::clone(&self.views.borrow().alerts_api);
        let page: Vec<&str> = items
            .iter()
            .skip(offset)
            .take(limit)
            .map(String::as_str)
            .collect();
        let body = format!(
            r#"{{"total":{},"alerts":[{}]}}"#,
            items.len(),
            page.join(",")
        );
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }

    /// `GET /api/v1/agencies?level=…&parent=…&sort=…&limit=…&offset=…`: every agency the
    /// state has seen or the directory lists, with its figures and the roll-ups.
    pub async fn agencies(&self, params: &HashMap<String, String>) -> Response {
        if let Some(unknown) = params.keys().find(|k| {
            !matches!(
                k.as_str(),
                "level" | "parent" | "sort" | "limit" | "offset" | "token"
            )
        }) {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown parameter `{unknown}`; expected level, parent, sort, limit or offset"
                ),
            );
        }
        let sort = match AgencySort::parse(params.get("sort").map(String::as_str)) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        if let Err(e) = check_level(params) {
            return error(StatusCode::BAD_REQUEST, e);
        }
        let (limit, offset) = match page(params) {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let (reply, answer) = oneshot::channel();
        let query = Query::Agencies {
            level: params.get("level").cloned(),
            parent: params.get("parent").cloned(),
            sort,
            limit,
            offset,
            reply,
        };
        self.ask(query, answer).await
    }

    /// `GET /api/v1/scorecard?period=week|month|year&level=…&agency=…`: the Decision 766
    /// indicators iocd estimates, per agency (ranked), per level and for the province, beside
    /// the period before.
    pub async fn scorecard(&self, params: &HashMap<String, String>) -> Response {
        if let Some(unknown) = params
            .keys()
            .find(|k| !matches!(k.as_str(), "period" | "level" | "agency" | "token"))
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown parameter `{unknown}`; expected period, level or agency"),
            );
        }
        let period = params.get("period").map_or("month", String::as_str);
        if crate::derive::scorecard::Span::parse(period).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown period `{period}`; expected week, month or year"),
            );
        }
        if let Err(e) = check_level(params) {
            return error(StatusCode::BAD_REQUEST, e);
        }
        let (reply, answer) = oneshot::channel();
        let query = Query::Scorecard {
            period: period.to_owned(),
            level: params.get("level").cloned(),
            agency: params.get("agency").cloned(),
            reply,
        };
        self.ask(query, answer).await
    }

    /// `GET /api/v1/agencies/{code}`: one agency across the three systems; 404 when neither
    /// the state nor the directory knows it.
    pub async fn agency(&self, code: String) -> Response {
        let (reply, answer) = oneshot::channel();
        let shown = code.clone();
        match self.ask_raw(Query::Agency { code, reply }, answer).await {
            Ok(Some(v)) => Json(v).into_response(),
            Ok(None) => error(
                StatusCode::NOT_FOUND,
                format!("no agency `{shown}`: not in the directory and never seen in an event"),
            ),
            Err(resp) => resp,
        }
    }

    /// Sends `query` to the pipeline and answers with its JSON reply.
    async fn ask(&self, query: Query, answer: oneshot::Receiver<Value>) -> Response {
        match self.ask_raw(query, answer).await {
            Ok(v) => Json(v).into_response(),
            Err(resp) => resp,
        }
    }

    /// Sends `query` to the pipeline and waits for its reply; 503 when it is busy or stopping.
    async fn ask_raw<T>(&self, query: Query, answer: oneshot::Receiver<T>) -> Result<T, Response> {
        if self.queries.try_send(query).is_err() {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is busy; try again",
            ));
        }
        answer
            .await
            .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping"))
    }

    /// `GET /api/v1/onestop/dossiers?status=…&agency=…&limit=…&offset=…`.
    pub async fn dossiers(&self, params: &HashMap<String, String>) -> Response {
        if let Some(unknown) = params.keys().find(|k| {
            !matches!(
                k.as_str(),
                "status" | "agency" | "limit" | "offset" | "token"
            )
        }) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown parameter `{unknown}`; expected status, agency, limit or offset"),
            );
        }
        let filter = match DossierFilter::parse(params.get("status").map(String::as_str)) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let (limit, offset) = match page(params) {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let (reply, answer) = oneshot::channel();
        let query = Query::Dossiers {
            filter,
            agency: params.get("agency").cloned(),
            limit,
            offset,
            reply,
        };
        if self.queries.try_send(query).is_err() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is busy; try again",
            );
        }
        let Ok((total, rows)) = answer.await else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
        };
        let time =
            |t: Option<Ts>| t.map_or(Value::Null, |t| Value::String(t.to_rfc3339(self.cal.tz())));
        let directory = Arc::clone(&self.views.borrow().directory);
        let dossiers: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                let name = directory.get(&r.agency).map(|a| &*a.name);
                json!({"dossier_id": r.dossier_id, "agency": r.agency, "agency_name": name, "status": r.status, "channel": r.channel,
                    "procedure": r.procedure, "received_at": time(r.received_at), "due_at": time(r.due_at),
                    "last_event_at": time(Some(r.last_event_at))})
            })
            .collect();
        Json(json!({"total": total, "dossiers": dossiers})).into_response()
    }
}

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
use crate::state::query::{DossierFilter, Query};
use crate::time::{Calendar, Ts};

/// Most dossiers one request may list.
pub const MAX_LIMIT: usize = 1000;
/// Dossiers listed when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

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

    /// `GET /api/v1/alerts`: the firing alerts, each with its members (bounded).
    #[must_use]
    pub fn alerts(&self) -> Response {
        let body = Arc::clone(&self.views.borrow().alerts_api);
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    /// `GET /api/v1/onestop/dossiers?status=…&agency=…&limit=…`.
    pub async fn dossiers(&self, params: &HashMap<String, String>) -> Response {
        if let Some(unknown) = params
            .keys()
            .find(|k| !matches!(k.as_str(), "status" | "agency" | "limit" | "token"))
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown parameter `{unknown}`; expected status, agency or limit"),
            );
        }
        let filter = match DossierFilter::parse(params.get("status").map(String::as_str)) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if n <= MAX_LIMIT => n,
            Some(Ok(n)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("limit {n} is over the maximum of {MAX_LIMIT}"),
                );
            }
            Some(Err(_)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "limit must be a whole number from 0 to 1000",
                );
            }
        };
        let (reply, answer) = oneshot::channel();
        let query = Query::Dossiers {
            filter,
            agency: params.get("agency").cloned(),
            limit,
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
        let dossiers: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                json!({"dossier_id": r.dossier_id, "agency": r.agency, "status": r.status, "channel": r.channel,
                    "procedure": r.procedure, "received_at": time(r.received_at), "due_at": time(r.due_at),
                    "last_event_at": time(Some(r.last_event_at))})
            })
            .collect();
        Json(json!({"total": total, "dossiers": dossiers})).into_response()
    }
}

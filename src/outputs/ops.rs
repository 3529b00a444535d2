//! The operators' API (contract 1.1 §8): acknowledge, unacknowledge, assign and comment on
//! an alert, silence a rule (or one subject of it) and end a silence; read an alert's
//! history, the silences and the audit trail.
//!
//! An action is checked here against where the alert stands (404 for an id that never
//! fired, 409 for one that is not firing or already in the state asked for), built with a
//! new id, the daemon's time and the caller's token name and role, and handed to the
//! pipeline like an HTTP-pushed event: logged, applied, and answered once durable. Then it
//! is published on `{prefix}/ops/actions` (QoS 1) for the other replicas; this one gets it
//! back as a duplicate.

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tracing::warn;

use super::http::HttpState;
use crate::decode::action::{
    Action, ActionKind, Actor, MAX_NAME_CHARS, MAX_TEXT_CHARS, Role, Silence,
};
use crate::derive::alerts::Rule;
use crate::ingest::push::{Items, Status};
use crate::state::query::{AlertLookup, Query};
use crate::time::{Ts, parse_rfc3339};

/// How long the publication of an action on MQTT may wait for room in the client.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// The longest silence, in days.
pub const MAX_SILENCE_DAYS: i64 = 90;

/// Why a request is refused: a status and the message of `{"error": "…"}`, or an answer
/// made elsewhere (HTTP ingest's 429 and 503, with `Retry-After`).
pub enum Refusal {
    /// A status and its message.
    Error(StatusCode, String),
    /// A whole answer.
    Answer(Box<Response>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Error(status, message) => {
                (status, Json(json!({"error": message}))).into_response()
            }
            Refusal::Answer(resp) => *resp,
        }
    }
}

/// What a handler answers.
type Answer = Result<Response, Refusal>;

fn error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal::Error(status, message.into())
}

/// The refusal of a caller without the right token or role.
fn refuse(status: StatusCode) -> Refusal {
    let message = if status == StatusCode::FORBIDDEN {
        "this token may only read: acting on alerts needs a token with the operator role ([[http.tokens]] role = \"operator\")"
    } else {
        "a valid token is required (Authorization: Bearer TOKEN)"
    };
    let mut resp = error(status, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    Refusal::Answer(Box::new(resp))
}

/// The request body as a JSON object (an empty body is an empty object).
fn body_object(body: &Bytes) -> Result<Map<String, Value>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// A string member of the body, checked for length.
fn string(
    body: &Map<String, Value>,
    key: &str,
    max_chars: usize,
    required: bool,
) -> Result<Option<String>, Refusal> {
    match body.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is required"),
        )),
        Some(Value::String(s)) if s.chars().count() > max_chars => Err(error(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is longer than {max_chars} characters"),
        )),
        Some(Value::String(s)) if required && s.trim().is_empty() => {
            Err(error(StatusCode::BAD_REQUEST, format!("`{key}` is empty")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("`{key}` must be a string"),
        )),
    }
}

/// A new action id: 128 random bits in hex.
fn new_id() -> Box<str> {
    format!("{:032x}", rand::random::<u128>()).into()
}

/// The rule of an alert id `{rule}:{subject}`, or the 400 for a malformed one.
fn rule_of(id: &str) -> Result<Rule, Refusal> {
    let rule = id.split_once(':').map(|(r, _)| r);
    rule.and_then(|r| Rule::ALL.into_iter().find(|x| x.as_str() == r))
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!(
                    "`{id}` is not an alert id: expected {{rule}}:{{subject}} with one of the rules {}",
                    Rule::ALL.map(Rule::as_str).join(", ")
                ),
            )
        })
}

impl HttpState {
    async fn lookup(&self, id: &str) -> Result<AlertLookup, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.ask(
            Query::Alert {
                id: id.to_owned(),
                reply,
            },
            answer,
        )
        .await
    }

    async fn ask<T>(&self, query: Query, answer: oneshot::Receiver<T>) -> Result<T, Refusal> {
        if self.api.queries.try_send(query).is_err() {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is busy; try again",
            ));
        }
        answer
            .await
            .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping"))
    }

    /// Takes `action` in (durable when this returns `Ok`), publishes it for the other
    /// replicas, and answers 200 with it.
    async fn take(&self, action: &Action, origin: String) -> Answer {
        let json = action.to_json(self.api.cal.tz());
        let outcomes = self
            .ingest
            .outcomes(Items::Actions, vec![Bytes::from(json.clone())], origin)
            .await
            .map_err(|resp| Refusal::Answer(Box::new(resp)))?;
        if let Some(o) = outcomes.first()
            && o.status == Status::Rejected
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the action was refused: {}",
                    o.detail.as_deref().unwrap_or("invalid")
                ),
            ));
        }
        let mut published = false;
        if let Some(publisher) = &self.publisher {
            let topic = format!("{}/{}", publisher.prefix(), crate::state::ACTIONS_LEVEL);
            match publisher
                .publish_waiting("action", topic, json.clone().into_bytes(), PUBLISH_WAIT)
                .await
            {
                Ok(()) => published = true,
                Err(e) => {
                    warn!(action = %action.id, error = %e, "Operator action applied here but not published for the other replicas.");
                }
            }
        }
        let action: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        Ok(Json(json!({"action": action, "published": published})).into_response())
    }

    /// Checks the caller (operator or admin) and the alert, then takes an action of `kind`
    /// on alert `id` with the body's comment (and assignee).
    async fn act(
        &self,
        (headers, query): (&HeaderMap, Option<&str>),
        kind: ActionKind,
        id: &str,
        body: &Bytes,
    ) -> Answer {
        let by = self
            .access
            .check_role(headers, query, Role::Operator)
            .map_err(refuse)?;
        let body = body_object(body)?;
        rule_of(id)?;
        let comment = string(
            &body,
            "comment",
            MAX_TEXT_CHARS,
            kind == ActionKind::Comment,
        )?;
        let assignee = if kind == ActionKind::Assign {
            let assignee = string(&body, "assignee", MAX_NAME_CHARS, false)?;
            Some(assignee.ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "`assignee` is required (a person or a unit; \"\" clears the assignment)",
                )
            })?)
        } else {
            None
        };
        let lookup = self.lookup(id).await?;
        conflict(&lookup, id, kind)?;
        let action = Action {
            id: new_id(),
            kind,
            at: Ts::now(),
            by,
            alert_id: Some(id.into()),
            comment: comment.map(Into::into),
            assignee: assignee.map(Into::into),
            silence: None,
            silence_id: None,
        };
        self.take(&action, format!("/api/v1/alerts/{id}/{}", kind.as_str()))
            .await
    }
}

/// 404 or 409 when `kind` cannot act on the alert as it stands.
fn conflict(l: &AlertLookup, id: &str, kind: ActionKind) -> Result<(), Refusal> {
    if !l.firing {
        if !l.known {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!(
                    "no alert `{id}`: it is not firing and has not fired within the history's horizon"
                ),
            ));
        }
        if kind != ActionKind::Comment {
            return Err(error(
                StatusCode::CONFLICT,
                format!(
                    "alert `{id}` is resolved: only a firing alert can be {}",
                    match kind {
                        ActionKind::Acknowledge => "acknowledged",
                        ActionKind::Unacknowledge => "unacknowledged",
                        _ => "assigned",
                    }
                ),
            ));
        }
    }
    match (kind, &l.acknowledged_by) {
        (ActionKind::Acknowledge, Some(by)) => Err(error(
            StatusCode::CONFLICT,
            format!("alert `{id}` is already acknowledged by {by}"),
        )),
        (ActionKind::Unacknowledge, None) if l.firing => Err(error(
            StatusCode::CONFLICT,
            format!("alert `{id}` is not acknowledged"),
        )),
        _ => Ok(()),
    }
}

/// `POST /api/v1/alerts/{id}/{action}`: `acknowledge`, `unacknowledge`, `assign`, `comment`.
pub(super) async fn alert_action(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    axum::extract::Path((id, action)): axum::extract::Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let kind = match action.as_str() {
        "acknowledge" => ActionKind::Acknowledge,
        "unacknowledge" => ActionKind::Unacknowledge,
        "assign" => ActionKind::Assign,
        "comment" => ActionKind::Comment,
        other => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!(
                    "no action `{other}` on an alert; expected acknowledge, unacknowledge, assign or comment"
                ),
            ));
        }
    };
    s.act((&headers, q.as_deref()), kind, &id, &body).await
}

/// `GET /api/v1/alerts/{id}/history`.
pub(super) async fn history(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Answer {
    s.access
        .check_token(&headers, q.as_deref())
        .map_err(refuse)?;
    rule_of(&id)?;
    let (reply, answer) = oneshot::channel();
    match s
        .ask(
            Query::History {
                id: id.clone(),
                reply,
            },
            answer,
        )
        .await?
    {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no alert `{id}` within the history's horizon"),
        )),
    }
}

/// `GET /api/v1/silences`.
pub(super) async fn silences(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Answer {
    s.access
        .check_token(&headers, q.as_deref())
        .map_err(refuse)?;
    let (reply, answer) = oneshot::channel();
    Ok(Json(s.ask(Query::Silences { reply }, answer).await?).into_response())
}

/// `POST /api/v1/silences`: `{"rule", "subject"?, "starts_at"?, "ends_at" or
/// "duration_minutes", "reason"}`.
pub(super) async fn silence(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    body: Bytes,
) -> Answer {
    let by: Actor = s
        .access
        .check_role(&headers, q.as_deref(), Role::Operator)
        .map_err(refuse)?;
    let body = body_object(&body)?;
    let silence = silence_of(&body, Ts::now())?;
    let action = Action {
        id: new_id(),
        kind: ActionKind::Silence,
        at: Ts::now(),
        by,
        alert_id: None,
        comment: None,
        assignee: None,
        silence: Some(silence),
        silence_id: None,
    };
    s.take(&action, "/api/v1/silences".into()).await
}

/// The silence a body asks for, at `now`.
fn silence_of(body: &Map<String, Value>, now: Ts) -> Result<Silence, Refusal> {
    let rule = string(body, "rule", MAX_NAME_CHARS, true)?.unwrap_or_default();
    if !Rule::ALL.iter().any(|r| r.as_str() == rule) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown rule `{rule}`; expected one of {}",
                Rule::ALL.map(Rule::as_str).join(", ")
            ),
        ));
    }
    let subject = string(body, "subject", MAX_NAME_CHARS, false)?.filter(|s| !s.is_empty());
    let reason = string(body, "reason", MAX_TEXT_CHARS, true)?.unwrap_or_default();
    let time = |key: &str| -> Result<Option<Ts>, Refusal> {
        match string(body, key, 64, false)? {
            None => Ok(None),
            Some(t) => parse_rfc3339(&t).map(Some).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("`{key}` is not an RFC 3339 time: {t:?}"),
                )
            }),
        }
    };
    let starts = time("starts_at")?.unwrap_or(now);
    let ends = match (time("ends_at")?, body.get("duration_minutes")) {
        (Some(end), None) => end,
        (None, Some(Value::Number(n))) => match n.as_i64() {
            Some(m) if m > 0 && m <= MAX_SILENCE_DAYS * 24 * 60 => starts.plus_secs(m * 60),
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "`duration_minutes` must be a whole number from 1 to {}",
                        MAX_SILENCE_DAYS * 24 * 60
                    ),
                ));
            }
        },
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "give either `ends_at` (RFC 3339) or `duration_minutes`",
            ));
        }
    };
    if ends <= starts || ends <= now {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "the silence must end after it starts, and in the future",
        ));
    }
    if ends > starts.plus_secs(MAX_SILENCE_DAYS * 86_400) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("a silence lasts at most {MAX_SILENCE_DAYS} days"),
        ));
    }
    Ok(Silence {
        rule: rule.into(),
        subject: subject.map(Into::into),
        starts,
        ends,
        reason: reason.into(),
    })
}

/// `POST /api/v1/silences/{id}/expire`: ends a silence now.
pub(super) async fn unsilence(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> Answer {
    let by = s
        .access
        .check_role(&headers, q.as_deref(), Role::Operator)
        .map_err(refuse)?;
    let body = body_object(&body)?;
    let comment = string(&body, "comment", MAX_TEXT_CHARS, false)?;
    let (reply, answer) = oneshot::channel();
    let list = s.ask(Query::Silences { reply }, answer).await?;
    let found = list["silences"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["silence_id"] == id.as_str()));
    match found {
        None => {
            return Err(error(StatusCode::NOT_FOUND, format!("no silence `{id}`")));
        }
        Some(x) if x["ended_early"] == true => {
            return Err(error(
                StatusCode::CONFLICT,
                format!("silence `{id}` has already been ended"),
            ));
        }
        Some(x) if x["active"] != true && x["ends_at"].as_str().is_some() => {
            let upcoming = x["starts_at"]
                .as_str()
                .and_then(|t| parse_rfc3339(t).ok())
                .is_some_and(|t| t > Ts::now());
            if !upcoming {
                return Err(error(
                    StatusCode::CONFLICT,
                    format!("silence `{id}` has already ended"),
                ));
            }
        }
        Some(_) => {}
    }
    let action = Action {
        id: new_id(),
        kind: ActionKind::Unsilence,
        at: Ts::now(),
        by,
        alert_id: None,
        comment: comment.map(Into::into),
        assignee: None,
        silence: None,
        silence_id: Some(id.as_str().into()),
    };
    s.take(&action, format!("/api/v1/silences/{id}/expire"))
        .await
}

/// `GET /api/v1/audit?since=…&until=…&who=…&limit=…&offset=…`: the operator actions,
/// newest first (`since` and `until` RFC 3339; the last 24 hours by default).
pub(super) async fn audit(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    params: Result<
        axum::extract::Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Answer {
    s.access
        .check_token(&headers, q.as_deref())
        .map_err(refuse)?;
    let axum::extract::Query(params) =
        params.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    if let Some(unknown) = params.keys().find(|k| {
        !matches!(
            k.as_str(),
            "since" | "until" | "who" | "limit" | "offset" | "token"
        )
    }) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("unknown parameter `{unknown}`; expected since, until, who, limit or offset"),
        ));
    }
    let now = Ts::now();
    let time = |key: &str, default: Ts| match params.get(key) {
        None => Ok(default),
        Some(t) => parse_rfc3339(t).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                format!("`{key}` is not an RFC 3339 time: {t:?}"),
            )
        }),
    };
    let since = time("since", now.minus_secs(86_400))?;
    let until = time("until", Ts::MAX)?;
    let (limit, offset) =
        super::api::page(&params).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let (reply, answer) = oneshot::channel();
    let query = Query::Audit {
        since,
        until,
        who: params.get("who").cloned(),
        limit,
        offset,
        reply,
    };
    Ok(Json(s.ask(query, answer).await?).into_response())
}

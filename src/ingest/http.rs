//! HTTP push ingest (contract 1.1): `POST /api/v1/ingest/{source}` takes contract events
//! (one object, an array, or NDJSON), `POST /api/v1/ingest/mapped/{mapping}` takes a
//! vendor's payload (or NDJSON of payloads) for a mapping that allows HTTP.
//!
//! The request goes to the pipeline whole ([`super::push`]); the answer comes once every
//! accepted item is durable, item by item. A full queue is 429 with `Retry-After`, a body
//! over `[http] ingest_max_body_bytes` 413 (axum's body limit), an answer not durable in
//! time 503: the sender retries, and dedupe makes the retry safe.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};

use super::push::{ItemOutcome, Items, Request, Status, Transport};
use crate::decode::Source;
use crate::decode::mapping::Mappings;

/// How long a request waits for its items to be durable before 503.
const DURABLE_WAIT: Duration = Duration::from_secs(8);

/// What the HTTP ingest routes need.
#[derive(Clone)]
pub struct HttpIngest {
    /// Requests to the pipeline.
    pub tx: mpsc::Sender<Request>,
    /// The mappings, for `/mapped/{mapping}`.
    pub mappings: watch::Receiver<Arc<Mappings>>,
}

impl HttpIngest {
    /// Contract events of `source` (its name as in the route).
    pub async fn contract(&self, source: &str, headers: &HeaderMap, body: Bytes) -> Response {
        let Some(source) = Source::ALL.into_iter().find(|s| s.as_str() == source) else {
            return error(
                StatusCode::NOT_FOUND,
                &format!("unknown source {source:?}; the sources are onestop, vc and soc"),
            );
        };
        let payloads = match split(&body, headers) {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        };
        let origin = format!("/api/v1/ingest/{}", source.as_str());
        self.submit(Items::Contract(source), payloads, origin).await
    }

    /// Payloads for the mapping `name`.
    pub async fn mapped(&self, name: &str, headers: &HeaderMap, body: Bytes) -> Response {
        let mapping = self.mappings.borrow().get(name).cloned();
        let Some(mapping) = mapping.filter(|m| m.input.http) else {
            return error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no mapping named {name:?} takes HTTP pushes (its file needs [input] http = true); see GET /readyz for the mappings loaded"
                ),
            );
        };
        let payloads = if is_ndjson(headers) {
            lines(&body)
        } else {
            vec![body]
        };
        let origin = format!("/api/v1/ingest/mapped/{name}");
        self.submit(Items::Mapped(mapping), payloads, origin).await
    }

    async fn submit(&self, items: Items, payloads: Vec<Bytes>, origin: String) -> Response {
        match self.outcomes(items, payloads, origin).await {
            Ok(outcomes) => answer_of(&outcomes),
            Err(resp) => resp,
        }
    }

    /// Hands `payloads` to the pipeline and waits until every accepted item is durable:
    /// each item's outcome, or the answer to give instead (400 for no item, 429 when the
    /// queue is full, 503 when stopping or not durable in time).
    ///
    /// # Errors
    /// The response to send when the items were not all taken and made durable.
    pub async fn outcomes(
        &self,
        items: Items,
        payloads: Vec<Bytes>,
        origin: String,
    ) -> Result<Vec<ItemOutcome>, Response> {
        if payloads.is_empty() {
            return Err(error(StatusCode::BAD_REQUEST, "the body holds no item"));
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            items,
            payloads,
            transport: Transport::Http,
            origin,
            reply,
        };
        match self.tx.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let mut resp = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "iocd is taking in as fast as it can; retry after the delay",
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Err(resp);
            }
            Err(TrySendError::Closed(_)) => {
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, "iocd is stopping"));
            }
        }
        if let Ok(Ok(outcomes)) = tokio::time::timeout(DURABLE_WAIT, answer).await {
            return Ok(outcomes);
        }
        let mut resp = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the items were taken but are not durable yet (the data directory is slow or cannot be written); retry: duplicates are recognised",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        Err(resp)
    }
}

/// 200 with the counts and each item's outcome.
fn answer_of(outcomes: &[ItemOutcome]) -> Response {
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let body = json!({
        "accepted": count(Status::Accepted),
        "duplicate": count(Status::Duplicate),
        "rejected": count(Status::Rejected),
        "skipped": count(Status::Skipped),
        "items": outcomes,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.split(';').next().unwrap_or("").trim();
            ct.eq_ignore_ascii_case("application/x-ndjson")
                || ct.eq_ignore_ascii_case("application/jsonl")
                || ct.eq_ignore_ascii_case("application/json-seq")
        })
}

/// The non-blank lines of `body`.
fn lines(body: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in body
        .iter()
        .enumerate()
        .chain(std::iter::once((body.len(), &b'\n')))
    {
        if b == b'\n' {
            let line = body.slice(start..i);
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                out.push(line);
            }
            start = i + 1;
        }
    }
    out
}

/// The contract events of a body: NDJSON (by its content type, or several lines that are
/// each JSON), a JSON array, or one item (which decoding then accepts or rejects).
///
/// # Errors
/// A body that starts as an array but is not valid JSON: its items cannot be told apart.
fn split(body: &Bytes, headers: &HeaderMap) -> Result<Vec<Bytes>, String> {
    if is_ndjson(headers) {
        return Ok(lines(body));
    }
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body)
            .map_err(|e| format!("the body is not a JSON array of events: {e}"))?;
        return Ok(items
            .into_iter()
            .map(|raw| Bytes::copy_from_slice(raw.get().as_bytes()))
            .collect());
    }
    let several = lines(body);
    let each_json = several.len() > 1
        && several
            .first()
            .is_some_and(|l| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok());
    if each_json {
        return Ok(several);
    }
    Ok(vec![body.clone()])
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ct(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn a_body_is_one_event_an_array_or_ndjson() {
        let none = HeaderMap::new();
        let one = Bytes::from_static(b"{\"event_id\": \"a\",\n \"type\": \"x\"}");
        assert_eq!(split(&one, &none).unwrap(), vec![one.clone()]);
        let array = Bytes::from_static(b" [{\"a\": 1}, {\"b\": [2, 3]}]");
        assert_eq!(
            split(&array, &none).unwrap(),
            vec![
                Bytes::from_static(b"{\"a\": 1}"),
                Bytes::from_static(b"{\"b\": [2, 3]}")
            ]
        );
        let nd = Bytes::from_static(b"{\"a\":1}\n\n{\"b\":2}\r\n{oops\n");
        let items = split(&nd, &none).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2], Bytes::from_static(b"{oops"));
        assert_eq!(split(&nd, &ct("application/x-ndjson")).unwrap().len(), 3);
        // Not JSON at all: one item, which decoding rejects as invalid_json.
        let junk = Bytes::from_static(b"hello");
        assert_eq!(split(&junk, &none).unwrap(), vec![junk.clone()]);
        assert!(split(&Bytes::from_static(b"[1, 2"), &none).is_err());
    }
}

//! Pollers (issue 13 point 4): for systems that can only be asked, a mapping with
//! `[input.poll]` has its endpoint fetched for the records changed since a watermark, page
//! by page, and each page taken in through the mapping like an HTTP push.
//!
//! **Neither skipping nor double counting across a restart.** Within one poll the `since`
//! of every page is the watermark the poll started from. Once every page is durable (the
//! pipeline's answer comes after the log's fsync), the greatest watermark field of the
//! records becomes the new watermark and is written to `{data-dir}/poll/{mapping}.json`
//! (a temporary file, fsynced, renamed). A crash before that write polls the same pages
//! again: their records are duplicates (the mapping's event ids are stable), never new
//! counts; nothing after the saved watermark was skipped, since it is saved only after.
//! Records whose watermark equals the saved one come again at the next poll, as
//! duplicates, when the endpoint's filter is `>=`.
//!
//! Errors (network, status, a body that is not JSON) are counted in `iocd_poll_errors_total`
//! and retried with a backoff from 1 s to the poll interval (at most 5 minutes); the
//! watermark does not move. A reload of the mappings starts, stops or restarts pollers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::push::{Items, Request, Transport};
use crate::decode::mapping::{Mapping, Mappings, PollSpec, lazy};
use crate::telemetry::SelfMetrics;

/// The longest wait between two attempts after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Most pages in one poll (a runaway endpoint that always returns a full page).
const MAX_PAGES: u32 = 10_000;

/// Runs a poller for each mapping with `[input.poll]`, following reloads, until `cancel`.
pub async fn run(
    mut mappings: watch::Receiver<Arc<Mappings>>,
    tx: mpsc::Sender<Request>,
    data_dir: Option<PathBuf>,
    metrics: SelfMetrics,
    tz: jiff::tz::TimeZone,
    cancel: CancellationToken,
) {
    let client = match reqwest::Client::builder().timeout(FETCH_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "The pollers' HTTP client cannot be built; no poller runs.");
            return;
        }
    };
    // Each running poller: its mapping as started, and what stops it.
    let mut running: HashMap<String, (Arc<Mapping>, CancellationToken)> = HashMap::new();
    loop {
        let current = mappings.borrow_and_update().clone();
        let wanted: HashMap<&str, &Arc<Mapping>> = current
            .all()
            .iter()
            .filter(|m| m.input.poll.is_some())
            .map(|m| (m.name.as_str(), m))
            .collect();
        running.retain(|name, (mapping, stop)| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|m| Arc::ptr_eq(m, mapping) || same_poll(m, mapping));
            if !keep {
                info!(mapping = %name, "Poller stopped (its mapping changed or went away).");
                stop.cancel();
                // Its series go with it (a restarted poller sets them again).
                let _ = metrics.poll_last_success.remove_label_values(&[name]);
                let _ = metrics.poll_lag_seconds.remove_label_values(&[name]);
                let _ = metrics.poll_errors.remove_label_values(&[name]);
            }
            keep
        });
        for (name, mapping) in wanted {
            if running.contains_key(name) {
                continue;
            }
            let stop = cancel.child_token();
            let poller = Poller {
                mapping: Arc::clone(mapping),
                tx: tx.clone(),
                file: data_dir
                    .as_ref()
                    .map(|d| d.join("poll").join(format!("{name}.json"))),
                metrics: metrics.clone(),
                client: client.clone(),
                tz: tz.clone(),
            };
            tokio::spawn(poller.run(stop.clone()));
            running.insert(name.to_owned(), (Arc::clone(mapping), stop));
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = mappings.changed() => if changed.is_err() { return },
        }
    }
}

/// Whether two versions of a mapping poll the same way (a reload that changed only the
/// field mapping keeps its poller, which takes the new mapping at its next page).
fn same_poll(a: &Mapping, b: &Mapping) -> bool {
    format!("{:?}", a.input.poll) == format!("{:?}", b.input.poll) && a.records == b.records
}

/// One mapping's poller.
struct Poller {
    mapping: Arc<Mapping>,
    tx: mpsc::Sender<Request>,
    /// Where the watermark is kept; `None` without a data directory (memory only).
    file: Option<PathBuf>,
    metrics: SelfMetrics,
    client: reqwest::Client,
    tz: jiff::tz::TimeZone,
}

/// Why a poll stopped short.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("fetching {url}: {error}")]
    Fetch { url: String, error: reqwest::Error },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url} did not answer JSON: {error}")]
    Json {
        url: String,
        error: serde_json::Error,
    },
    #[error("the pipeline is stopping or did not make the page durable")]
    NotTaken,
    #[error("cannot save the watermark: {0}")]
    Save(crate::store::StoreError),
}

impl Poller {
    async fn run(self, stop: CancellationToken) {
        let Some(spec) = self.mapping.input.poll.clone() else {
            return;
        };
        let name = self.mapping.name.clone();
        let mut since = self.load(&spec);
        self.metrics.poll_errors.with_label_values(&[&name]);
        info!(mapping = %name, url = %spec.url, since = %since, "Poller started.");
        if self.file.is_none() {
            warn!(mapping = %name, "No data directory: this poller's watermark is kept in memory only; a restart polls again from `since`.");
        }
        let every = Duration::from_secs(spec.every_secs);
        let mut backoff = Duration::from_secs(1);
        let mut failures = 0u64;
        loop {
            let wait = match self.poll(&spec, &since).await {
                Ok(next) => {
                    if failures > 0 {
                        info!(mapping = %name, failures, "Poller recovered.");
                    }
                    failures = 0;
                    backoff = Duration::from_secs(1);
                    since = next;
                    let now = jiff::Timestamp::now().as_second();
                    self.metrics
                        .poll_last_success
                        .with_label_values(&[&name])
                        .set(now);
                    if let Some(at) = watermark_time(&since, &self.tz) {
                        self.metrics
                            .poll_lag_seconds
                            .with_label_values(&[&name])
                            .set((now - at).max(0));
                    }
                    every
                }
                Err(e) => {
                    failures += 1;
                    self.metrics.poll_errors.with_label_values(&[&name]).inc();
                    let wait = backoff;
                    backoff = (backoff * 2)
                        .min(every.max(Duration::from_secs(1)))
                        .min(MAX_BACKOFF);
                    if failures == 1 {
                        warn!(mapping = %name, error = %e, retry_in_s = wait.as_secs(), "Poll failed; retrying with backoff (the watermark stays).");
                    } else {
                        debug!(mapping = %name, error = %e, failures, "Poll failed again.");
                    }
                    wait
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One poll: every page since `since`, each made durable; returns the new watermark
    /// (saved).
    async fn poll(&self, spec: &PollSpec, since: &str) -> Result<String, PollError> {
        let mut next = since.to_owned();
        for page in 1..=MAX_PAGES {
            let url = spec
                .url
                .replace("{since}", &encode(since))
                .replace("{page}", &page.to_string());
            let mut req = self.client.get(&url);
            if let Some(var) = &spec.token_env
                && let Ok(token) = std::env::var(var)
            {
                req = req.bearer_auth(token);
            }
            let resp = req.send().await.map_err(|error| PollError::Fetch {
                url: url.clone(),
                error,
            })?;
            if !resp.status().is_success() {
                return Err(PollError::Status {
                    url,
                    status: resp.status(),
                });
            }
            let body = resp.bytes().await.map_err(|error| PollError::Fetch {
                url: url.clone(),
                error,
            })?;
            let parsed: &RawValue =
                serde_json::from_slice(&body).map_err(|error| PollError::Json {
                    url: url.clone(),
                    error,
                })?;
            let records = records(&self.mapping, parsed);
            for r in &records {
                if let Some(w) = lazy::pointer(r, &spec.watermark) {
                    let w = lazy::scalar(w).text();
                    if later(&w, &next) {
                        next = w;
                    }
                }
            }
            let count = records.len();
            if count > 0 {
                self.take(body, url).await?;
            }
            match spec.page_size {
                Some(size) if count >= size => {}
                _ => break,
            }
        }
        if next != since {
            self.save(&next)?;
        }
        Ok(next)
    }

    /// Hands one page to the pipeline and waits until it is durable.
    async fn take(&self, body: Bytes, url: String) -> Result<(), PollError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            items: Items::Mapped(Arc::clone(&self.mapping)),
            payloads: vec![body],
            transport: Transport::Poll,
            origin: url,
            reply,
        };
        // Waits for room: a poller can be patient, unlike an HTTP client.
        self.tx
            .send(request)
            .await
            .map_err(|_| PollError::NotTaken)?;
        answer.await.map(drop).map_err(|_| PollError::NotTaken)
    }

    /// The saved watermark, or the mapping's `since`.
    fn load(&self, spec: &PollSpec) -> String {
        let saved = self.file.as_deref().and_then(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            v.get("since").and_then(Value::as_str).map(str::to_owned)
        });
        saved.unwrap_or_else(|| spec.since.clone())
    }

    /// Saves the watermark durably (temporary file, fsync, rename, directory fsync).
    fn save(&self, since: &str) -> Result<(), PollError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let body = serde_json::json!({ "since": since, "mapping": self.mapping.name });
        crate::store::write_atomically(file, body.to_string().as_bytes()).map_err(PollError::Save)
    }
}

/// The records of a page, as the mapping finds them; a page without the mapping's array
/// has none (a poll's answer is a list, never a single record).
fn records<'a>(mapping: &Mapping, page: &'a RawValue) -> Vec<&'a RawValue> {
    if let Some(pointer) = &mapping.records
        && lazy::pointer(page, pointer).is_none()
    {
        return Vec::new();
    }
    mapping.records_of(page).unwrap_or_default()
}

/// Whether watermark `a` comes after `b`: as numbers when both are, else as text (the
/// formats the sources use, `yyyyMMddHHmmss` and RFC 3339 in one offset, sort as text).
fn later(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

/// The watermark as Unix seconds, when it is a time: `yyyyMMddHHmmss` (local, in `tz`),
/// RFC 3339, or epoch seconds or milliseconds.
fn watermark_time(w: &str, tz: &jiff::tz::TimeZone) -> Option<i64> {
    if w.len() == 14 && w.bytes().all(|b| b.is_ascii_digit()) {
        let dt = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", w).ok()?;
        return tz.to_timestamp(dt).ok().map(jiff::Timestamp::as_second);
    }
    if let Ok(t) = w.parse::<jiff::Timestamp>() {
        return Some(t.as_second());
    }
    let n: i64 = w.parse().ok()?;
    // Epoch milliseconds are past 1e12 (2001) — seconds will not be for 30,000 years.
    Some(if n > 1_000_000_000_000 { n / 1000 } else { n })
}

/// Percent-encodes a watermark for a query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_compare_as_numbers_or_as_text_and_read_as_times() {
        assert!(later("20261206090000", "20261206085959"));
        assert!(later("1700000000001", "999999999999"));
        assert!(later(
            "2026-12-06T09:00:00+07:00",
            "2026-12-06T08:59:59+07:00"
        ));
        assert!(!later("20261206085959", "20261206090000"));
        let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").ok();
        let tz = tz.unwrap_or(jiff::tz::TimeZone::UTC);
        let compact = watermark_time("20261206090000", &tz);
        let rfc = watermark_time("2026-12-06T09:00:00+07:00", &tz);
        assert_eq!(compact, rfc);
        assert_eq!(watermark_time("1765000000000", &tz), Some(1_765_000_000));
        assert_eq!(watermark_time("1765000000", &tz), Some(1_765_000_000));
        assert_eq!(watermark_time("abc", &tz), None);
        assert_eq!(
            encode("2026-12-06T09:00:00+07:00"),
            "2026-12-06T09%3A00%3A00%2B07%3A00"
        );
    }
}

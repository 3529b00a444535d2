//! `[http]` and `[ws]`: the one HTTP listener, who may use it, and the WebSocket push.
//!
//! In: the two tables as written. Out: [`HttpSettings`] (a `SocketAddr`, [`Secret`] tokens)
//! and [`WsSettings`] (`Duration`s), or the problems keyed `http.*` and `ws.*`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::check::{Problems, Unit, listen_addr};
use super::secret::Secret;

/// `[http]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    listen: String,
    access_tokens: Vec<String>,
    protect_metrics: bool,
    allowed_origins: Vec<String>,
    ingest_tokens: Vec<String>,
    ingest_max_body_bytes: usize,
    tokens: Vec<TokenFile>,
}

/// One of `[[http.tokens]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    name: String,
    role: String,
    token: String,
}

/// A named access token with a role: who acts, for the audit trail.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedToken {
    /// Who holds it ("Trực ban ca 1", "Phòng An toàn thông tin"): recorded with each action.
    pub name: String,
    /// What it may do.
    pub role: crate::decode::action::Role,
    /// The token.
    pub token: Secret,
}

/// `[http]`: the one listener for `/`, `/ws`, `/api/*`, `/metrics`, `/healthz`, `/readyz`,
/// and who may use it.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer tokens accepted on `/ws` and `/api/*` (and `/metrics` with `protect_metrics`);
    /// empty: no token needed.
    pub access_tokens: Vec<Secret>,
    /// Whether `/metrics` needs a token too (when tokens are configured).
    pub protect_metrics: bool,
    /// Origins (`https://wall.example`) allowed to open `/ws` besides the daemon's own.
    pub allowed_origins: Vec<String>,
    /// Bearer tokens of the `ingest` scope: `POST /api/v1/ingest/...` only.
    pub ingest_tokens: Vec<Secret>,
    /// Largest HTTP ingest body, in bytes (413 above).
    pub ingest_max_body_bytes: usize,
    /// Named tokens with a role (`viewer`, `operator`, `admin`); they open what
    /// `access_tokens` open, and operators may act on alerts.
    pub tokens: Vec<NamedToken>,
}

impl HttpFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<HttpSettings> {
        let listen = p.ok("http.listen", listen_addr(&self.listen, "127.0.0.1:8080"));
        for (key, tokens) in [
            ("access_tokens", &self.access_tokens),
            ("ingest_tokens", &self.ingest_tokens),
        ] {
            for (i, token) in tokens.iter().enumerate() {
                if token.len() < 16 {
                    p.add(
                        format!("http.{key}[{i}]"),
                        "must have at least 16 characters",
                    );
                }
                if key == "ingest_tokens" && self.access_tokens.contains(token) {
                    p.add(
                        format!("http.{key}[{i}]"),
                        "is also an access token; a token has one scope",
                    );
                }
            }
        }
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for (i, t) in self.tokens.into_iter().enumerate() {
            let key = format!("http.tokens[{i}]");
            if t.token.len() < 16 {
                p.add(format!("{key}.token"), "must have at least 16 characters");
            }
            if self.access_tokens.contains(&t.token) || self.ingest_tokens.contains(&t.token) {
                p.add(
                    format!("{key}.token"),
                    "is also in access_tokens or ingest_tokens; a token has one role",
                );
            }
            let name = t.name.trim();
            if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
                p.add(
                    format!("{key}.name"),
                    "must be 1 to 128 characters without control characters",
                );
            }
            let role = crate::decode::action::Role::parse(&t.role);
            if role.is_none() {
                p.add(
                    format!("{key}.role"),
                    format!("must be viewer, operator or admin (got `{}`)", t.role),
                );
            }
            if let Some(role) = role {
                tokens.push(NamedToken {
                    name: name.to_owned(),
                    role,
                    token: Secret::from(t.token),
                });
            }
        }
        let ingest_max_body_bytes = p.within(
            "http.ingest_max_body_bytes",
            self.ingest_max_body_bytes,
            1024,
            268_435_455,
        );
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                p.add(
                    format!("http.allowed_origins[{i}]"),
                    format!(
                        "must look like https://host[:port] without a trailing slash (got \
                         `{origin}`)"
                    ),
                );
            }
        }
        Some(HttpSettings {
            listen: listen?,
            access_tokens: self.access_tokens.into_iter().map(Secret::from).collect(),
            protect_metrics: self.protect_metrics,
            allowed_origins: self.allowed_origins,
            ingest_tokens: self.ingest_tokens.into_iter().map(Secret::from).collect(),
            ingest_max_body_bytes: ingest_max_body_bytes?,
            tokens,
        })
    }
}

/// `[ws]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WsFile {
    push_interval_ms: u64,
    max_clients: usize,
    max_message_bytes: usize,
    ping_interval_secs: u64,
    max_behind_secs: u64,
}

/// `[ws]`: the WebSocket push to the wall displays.
#[derive(Clone, Debug, PartialEq)]
pub struct WsSettings {
    /// `push_interval_ms`: at most one snapshot per client this often (also the view
    /// refresh).
    pub push_interval: Duration,
    /// Most WebSocket clients at once; more are refused with 503.
    pub max_clients: usize,
    /// Largest message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// `ping_interval_secs`: ping idle clients this often; a client silent for two
    /// intervals is dropped.
    pub ping_interval: Duration,
    /// `max_behind_secs`: a client whose socket accepts nothing for this long is
    /// disconnected.
    pub max_behind: Duration,
}

impl WsFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<WsSettings> {
        let push_interval = p.duration(
            "ws.push_interval_ms",
            self.push_interval_ms,
            (50, 60_000),
            Unit::Millis,
        );
        let max_clients = p.within("ws.max_clients", self.max_clients, 1, 1_000_000);
        let max_message_bytes =
            p.within("ws.max_message_bytes", self.max_message_bytes, 64, 1 << 20);
        let ping_interval = p.duration(
            "ws.ping_interval_secs",
            self.ping_interval_secs,
            (1, 3600),
            Unit::Secs,
        );
        let max_behind = p.duration(
            "ws.max_behind_secs",
            self.max_behind_secs,
            (1, 3600),
            Unit::Secs,
        );
        Some(WsSettings {
            push_interval: push_interval?,
            max_clients: max_clients?,
            max_message_bytes: max_message_bytes?,
            ping_interval: ping_interval?,
            max_behind: max_behind?,
        })
    }
}

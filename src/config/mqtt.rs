//! `[mqtt]`: the broker connection, topics and the embedded broker.
//!
//! In: the `[mqtt]` table as written (strings and numbers). Out: [`MqttSettings`] with a
//! parsed [`BrokerUrl`], a [`Secret`] password, `Duration`s and a `SocketAddr`, or the
//! problems keyed `mqtt.*`. The password variable (`password_env`) is read when asked
//! ([`MqttSettings::password`]), not here.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::broker::BrokerUrl;
use super::check::{Problems, Unit, listen_addr};
use super::secret::Secret;

/// Largest ingest queue; tokio's bounded channel panics on absurd capacities.
const MAX_QUEUE_CAPACITY: usize = 1_000_000;
/// Keepalive limits in seconds; the one place they are checked.
const KEEPALIVE_SECS: (u64, u64) = (1, 3600);

/// `[mqtt]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MqttFile {
    url: String,
    other_urls: Vec<String>,
    client_id: String,
    persistent_session: bool,
    username: String,
    password: String,
    password_env: String,
    ca_file: String,
    prefix: String,
    keepalive_secs: u64,
    reconnect_min_ms: u64,
    reconnect_max_ms: u64,
    queue_capacity: usize,
    inflight: u16,
    embedded: bool,
    embedded_listen: String,
}

/// `[mqtt]`: the broker.
#[derive(Clone, Debug, PartialEq)]
pub struct MqttSettings {
    /// `url`: where the broker is.
    pub url: BrokerUrl,
    /// `other_urls`: the other nodes of a clustered broker, tried in turn after `url` when
    /// the connection fails (docs/ha.md).
    pub other_urls: Vec<BrokerUrl>,
    /// Client id; stable so the broker keeps the session.
    pub client_id: String,
    /// Keep the broker session across reconnects (clean session off).
    pub persistent_session: bool,
    /// Username; empty for anonymous.
    pub username: String,
    /// Password in the file (discouraged); empty for none.
    pub password: Secret,
    /// Name of an environment variable holding the password; wins over `password`.
    pub password_env: String,
    /// PEM file with the CA certificates for `mqtts://`; empty for the system's roots.
    pub ca_file: String,
    /// Topic prefix: not empty, no wildcards, no leading or trailing `/`.
    pub prefix: String,
    /// `keepalive_secs`: a dead link is noticed within twice this (1 s to 1 h).
    pub keepalive: Duration,
    /// `reconnect_min_ms`: first reconnect delay after a failure.
    pub reconnect_min: Duration,
    /// `reconnect_max_ms`: cap of the exponential reconnect delay.
    pub reconnect_max: Duration,
    /// Capacity of the ingest → pipeline queue, in messages.
    pub queue_capacity: usize,
    /// Maximum `QoS` 1/2 messages in flight from iocd to the broker.
    pub inflight: NonZeroU16,
    /// Run an embedded MQTT broker (rumqttd) instead of connecting to `url`.
    pub embedded: bool,
    /// Where the embedded broker listens; the daemon connects to it there.
    pub embedded_listen: SocketAddr,
}

impl MqttFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<MqttSettings> {
        let url = p.ok("mqtt.url", self.url.parse::<BrokerUrl>());
        let other_urls = p.each("mqtt.other_urls", &self.other_urls, str::parse::<BrokerUrl>);
        // The nodes of one cluster: all TLS or none, so that credentials never go in clear
        // to a node after a failover.
        if let (Some(url), Some(others)) = (&url, &other_urls)
            && others.iter().any(|o| o.tls() != url.tls())
        {
            p.add(
                "mqtt.other_urls",
                "must all be mqtts:// when mqtt.url is, and mqtt:// when it is",
            );
        }
        if self.client_id.is_empty() {
            p.add("mqtt.client_id", "must not be empty");
        }
        // MQTT 3.1.1 §3.1.2.9: a password may only be sent together with a user name.
        if self.username.is_empty() && !(self.password.is_empty() && self.password_env.is_empty()) {
            p.add(
                "mqtt.username",
                "must be set when mqtt.password or mqtt.password_env is",
            );
        }
        let prefix = p.ok("mqtt.prefix", check_prefix(&self.prefix));
        let keepalive = p.duration(
            "mqtt.keepalive_secs",
            self.keepalive_secs,
            KEEPALIVE_SECS,
            Unit::Secs,
        );
        let reconnect_min = p
            .at_least("mqtt.reconnect_min_ms", self.reconnect_min_ms, 1)
            .map(Duration::from_millis);
        if self.reconnect_max_ms < self.reconnect_min_ms {
            p.add(
                "mqtt.reconnect_max_ms",
                format!(
                    "must be at least mqtt.reconnect_min_ms ({}) (got {})",
                    self.reconnect_min_ms, self.reconnect_max_ms
                ),
            );
        }
        let queue_capacity = p.within(
            "mqtt.queue_capacity",
            self.queue_capacity,
            1,
            MAX_QUEUE_CAPACITY,
        );
        let inflight = p
            .at_least("mqtt.inflight", self.inflight, 1)
            .and_then(NonZeroU16::new);
        if self.embedded && !cfg!(feature = "demo") {
            p.add(
                "mqtt.embedded",
                "this iocd was built without the embedded broker (cargo feature `demo`); \
                 connect to a broker with mqtt.url",
            );
        }
        let embedded_listen = p.ok(
            "mqtt.embedded_listen",
            listen_addr(&self.embedded_listen, "127.0.0.1:1883"),
        );
        prefix?;
        Some(MqttSettings {
            url: url?,
            other_urls: other_urls?,
            client_id: self.client_id,
            persistent_session: self.persistent_session,
            username: self.username,
            password: Secret::from(self.password),
            password_env: self.password_env,
            ca_file: self.ca_file,
            prefix: self.prefix,
            keepalive: keepalive?,
            reconnect_min: reconnect_min?,
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
            queue_capacity: queue_capacity?,
            inflight: inflight?,
            embedded: self.embedded,
            embedded_listen: embedded_listen?,
        })
    }
}

impl MqttSettings {
    /// The broker password: the environment variable named by `password_env` when that is
    /// set, else `password` when non-empty, else `None`.
    ///
    /// # Errors
    /// [`ConfigError::PasswordEnv`] when `password_env` names a variable that is unset or
    /// not Unicode.
    pub fn password(&self) -> Result<Option<Secret>, ConfigError> {
        self.password_with(|name| std::env::var(name))
    }

    /// The password, reading environment variables through `lookup` (tests pass their own).
    pub(super) fn password_with(
        &self,
        lookup: impl FnOnce(&str) -> Result<String, std::env::VarError>,
    ) -> Result<Option<Secret>, ConfigError> {
        if !self.password_env.is_empty() {
            return lookup(&self.password_env)
                .map(|p| Some(Secret::from(p)))
                .map_err(|reason| ConfigError::PasswordEnv {
                    var: self.password_env.clone(),
                    reason,
                });
        }
        Ok((!self.password.is_empty()).then(|| self.password.clone()))
    }
}

/// A topic prefix: non-empty, no wildcards, no NUL, no leading or trailing `/`.
pub(super) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        Err("must not be empty".to_owned())
    } else if prefix.contains(['#', '+', '\0']) {
        Err(format!(
            "must not contain the wildcards `#` or `+` (got `{prefix}`)"
        ))
    } else if prefix.starts_with('/') || prefix.ends_with('/') {
        Err(format!("must not start or end with `/` (got `{prefix}`)"))
    } else {
        Ok(())
    }
}

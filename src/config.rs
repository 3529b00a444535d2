//! Settings: the structs behind `config/iocd.toml`, their defaults (which equal the shipped
//! file), loading with errors that name the file and the key, and `validate()`.
//!
//! In: a TOML file path (or none, for the built-in defaults). Out: a [`Settings`] whose
//! values have all been checked, or a [`ConfigError`] listing every problem at once. This
//! module reads no environment variable except the one `mqtt.password_env` names, and
//! never panics on bad input.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything the daemon can be configured with. Defaults equal `config/iocd.toml`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Broker connection and topics.
    pub mqtt: MqttSettings,
    /// The HTTP listener and access control.
    pub http: HttpSettings,
    /// WebSocket push.
    pub ws: WsSettings,
    /// Decoding and dedupe.
    pub ingest: IngestSettings,
    /// In-memory state: time zone, retention, label limits.
    pub state: StateSettings,
    /// One-stop thresholds.
    pub onestop: OnestopSettings,
    /// Video-conferencing thresholds.
    pub vc: VcSettings,
    /// SOC thresholds and the monitored systems.
    pub soc: SocSettings,
    /// Feed silence.
    pub sources: SourcesSettings,
    /// Logging.
    pub log: LogSettings,
    /// The working calendar for "stalled".
    pub calendar: CalendarSettings,
    /// The alert rules.
    pub alerts: AlertSettings,
    /// The event log and checkpoints in `--data-dir`.
    pub store: StoreSettings,
}

/// `[mqtt]`: the broker. `Debug` is written by hand so the password never reaches a log.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSettings {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// Client id; stable so the broker keeps the session.
    pub client_id: String,
    /// Keep the broker session across reconnects (clean session off).
    pub persistent_session: bool,
    /// Username; empty for anonymous.
    pub username: String,
    /// Password in the file (discouraged); empty for none.
    pub password: String,
    /// Name of an environment variable holding the password; wins over `password`.
    pub password_env: String,
    /// PEM file with the CA certificates for `mqtts://`; empty for the system's roots.
    pub ca_file: String,
    /// Topic prefix.
    pub prefix: String,
    /// MQTT keepalive in seconds; a dead link is noticed within twice this.
    pub keepalive_secs: u64,
    /// First reconnect delay after a failure, in milliseconds.
    pub reconnect_min_ms: u64,
    /// Cap of the exponential reconnect delay, in milliseconds.
    pub reconnect_max_ms: u64,
    /// Capacity of the ingest → pipeline queue, in messages.
    pub queue_capacity: usize,
    /// Maximum `QoS` 1/2 messages in flight from iocd to the broker.
    pub inflight: u16,
    /// Run an embedded MQTT broker (rumqttd) instead of connecting to `url`.
    pub embedded: bool,
    /// Where the embedded broker listens; the daemon connects to it there.
    pub embedded_listen: String,
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "iocd".into(),
            persistent_session: true,
            username: String::new(),
            password: String::new(),
            password_env: String::new(),
            ca_file: String::new(),
            prefix: "ioc/v1".into(),
            keepalive_secs: 10,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            queue_capacity: 4096,
            inflight: 100,
            embedded: false,
            embedded_listen: "127.0.0.1:1883".into(),
        }
    }
}

/// `[http]`: the one listener for `/`, `/ws`, `/api/*`, `/metrics`, `/healthz`, `/readyz`,
/// and who may use it.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on.
    pub listen: String,
    /// Bearer tokens accepted on `/ws` and `/api/*` (and `/metrics` with `protect_metrics`);
    /// empty: no token needed.
    pub access_tokens: Vec<String>,
    /// Whether `/metrics` needs a token too (when tokens are configured).
    pub protect_metrics: bool,
    /// Origins (`https://wall.example`) allowed to open `/ws` besides the daemon's own.
    pub allowed_origins: Vec<String>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("listen", &self.listen)
            .field(
                "access_tokens",
                &format_args!("<{} redacted>", self.access_tokens.len()),
            )
            .field("protect_metrics", &self.protect_metrics)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            access_tokens: Vec::new(),
            protect_metrics: false,
            allowed_origins: Vec::new(),
        }
    }
}

/// `[ws]`: the WebSocket push to the wall displays.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WsSettings {
    /// At most one snapshot per client this often, in milliseconds (also the view refresh).
    pub push_interval_ms: u64,
    /// Most WebSocket clients at once; more are refused with 503.
    pub max_clients: usize,
    /// Largest message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Ping idle clients this often, in seconds; a client silent for two intervals is dropped.
    pub ping_interval_secs: u64,
    /// A client whose socket accepts nothing for this long is disconnected, in seconds.
    pub max_behind_secs: u64,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            push_interval_ms: 500,
            max_clients: 10_000,
            max_message_bytes: 4096,
            ping_interval_secs: 20,
            max_behind_secs: 10,
        }
    }
}

/// `[ingest]`: decoding and dedupe.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Largest accepted payload in bytes; larger ones are rejected as `too_large`.
    pub max_payload_bytes: usize,
    /// How far `occurred_at` may be ahead of now, in seconds, before `future_timestamp`.
    pub max_future_skew_secs: i64,
    /// How long a seen `(source, event_id)` is remembered, in hours.
    pub dedupe_horizon_hours: i64,
    /// At most this many ids are remembered; the oldest are forgotten first.
    pub dedupe_max_ids: usize,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_payload_bytes: 65_536,
            max_future_skew_secs: 300,
            dedupe_horizon_hours: 72,
            dedupe_max_ids: 1_000_000,
        }
    }
}

/// `[state]`: the in-memory model.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StateSettings {
    /// IANA time zone of "today" and local minutes.
    pub timezone: String,
    /// Hours a closed dossier, ended meeting or resolved incident stays in memory.
    pub closed_retention_hours: i64,
    /// Only the first this many distinct agencies get their own Prometheus label.
    pub agency_label_limit: usize,
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            timezone: "Asia/Ho_Chi_Minh".into(),
            closed_retention_hours: 24,
            agency_label_limit: 1000,
        }
    }
}

/// `[onestop]`: dossier thresholds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OnestopSettings {
    /// "Due soon" = `due_at` at most this many hours ahead.
    pub due_soon_hours: i64,
    /// "Stalled" = latest event older than this many hours.
    pub stalled_hours: i64,
}

impl Default for OnestopSettings {
    fn default() -> Self {
        Self {
            due_soon_hours: 24,
            stalled_hours: 48,
        }
    }
}

/// `[vc]`: link quality and missing endpoints.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VcSettings {
    /// Poor quality above this packet loss, in percent.
    pub poor_packet_loss_pct: f64,
    /// Poor quality above this jitter, in ms.
    pub poor_jitter_ms: f64,
    /// Poor quality above this round-trip time, in ms.
    pub poor_rtt_ms: f64,
    /// An expected endpoint is missing once its meeting is older than this, in seconds.
    pub missing_after_secs: i64,
}

impl Default for VcSettings {
    fn default() -> Self {
        Self {
            poor_packet_loss_pct: 1.0,
            poor_jitter_ms: 30.0,
            poor_rtt_ms: 300.0,
            missing_after_secs: 300,
        }
    }
}

/// `[soc]`: monitored systems.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SocSettings {
    /// A system is silent after this many seconds without alert or heartbeat.
    pub system_silent_secs: i64,
    /// Systems monitored even before they are heard from.
    pub systems: Vec<String>,
}

impl Default for SocSettings {
    fn default() -> Self {
        Self {
            system_silent_secs: 600,
            systems: Vec::new(),
        }
    }
}

/// `[sources]`: feed silence.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesSettings {
    /// A source is silent after this many seconds without an accepted event.
    pub silent_after_secs: i64,
}

impl Default for SourcesSettings {
    fn default() -> Self {
        Self {
            silent_after_secs: 300,
        }
    }
}

/// `[store]`: durability in `--data-dir` (used only when a data directory is given).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// A checkpoint of the whole state is written this often, in seconds; the log before
    /// the older of the two kept checkpoints is deleted.
    pub checkpoint_interval_secs: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 60,
        }
    }
}

/// `[calendar]`: working days and hours, and the holiday file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarSettings {
    /// When on, "stalled" counts working hours instead of calendar hours.
    pub enabled: bool,
    /// Working weekdays: `mon` … `sun`.
    pub working_days: Vec<String>,
    /// Working hours of a working day, local time, `HH:MM-HH:MM`.
    pub working_hours: Vec<String>,
    /// Holiday file; empty for the shipped `config/holidays-vn.toml` (embedded).
    pub holidays_file: String,
}

impl Default for CalendarSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            working_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            working_hours: vec!["07:30-11:30".into(), "13:30-17:00".into()],
            holidays_file: String::new(),
        }
    }
}

impl CalendarSettings {
    /// The working calendar, when enabled.
    ///
    /// # Errors
    /// A message naming the unreadable file or the bad entry.
    pub fn build(&self) -> Result<Option<crate::state::workcal::WorkCalendar>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let text = if self.holidays_file.is_empty() {
            crate::state::workcal::DEFAULT_HOLIDAYS.to_owned()
        } else {
            std::fs::read_to_string(&self.holidays_file)
                .map_err(|e| format!("cannot read {}: {e}", self.holidays_file))?
        };
        let file: crate::state::workcal::HolidayFile = toml::from_str(&text).map_err(|e| {
            format!(
                "{}: {e}",
                if self.holidays_file.is_empty() {
                    "config/holidays-vn.toml"
                } else {
                    &self.holidays_file
                }
            )
        })?;
        crate::state::workcal::WorkCalendar::new(&self.working_days, &self.working_hours, &file)
            .map(Some)
    }
}

/// Alert severities (docs/contract.md §5.2).
#[derive(
    Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

impl AlertSeverity {
    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

/// One rule's switch, severity and minimum count.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Whether the rule is evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: AlertSeverity,
    /// Fires when at least this many members match (dossiers, endpoints; 1 otherwise).
    #[serde(default = "one")]
    pub min_count: u64,
}

fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}

impl RuleSettings {
    fn on(severity: AlertSeverity) -> Self {
        Self {
            enabled: true,
            severity,
            min_count: 1,
        }
    }
}

/// `[alerts]`: the built-in rules of docs/contract.md §5.2.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Language of the summaries: `vi` or `en`.
    pub language: String,
    /// An agency has overdue dossiers.
    pub dossier_overdue: RuleSettings,
    /// An agency has stalled dossiers.
    pub dossier_stalled: RuleSettings,
    /// A source is silent.
    pub feed_silent: RuleSettings,
    /// A meeting has missing endpoints.
    pub endpoint_missing: RuleSettings,
    /// A meeting has endpoints with poor quality.
    pub endpoint_poor_quality: RuleSettings,
    /// A high or critical incident is unacknowledged for too long.
    pub incident_unacknowledged: RuleSettings,
    /// Seconds an incident may stay unacknowledged.
    pub incident_unacknowledged_after_secs: i64,
    /// Lowest incident severity the rule watches (`high` by default).
    pub incident_min_severity: String,
    /// A monitored system is silent.
    pub soc_system_silent: RuleSettings,
    /// Dossier ids (or other members) listed per alert by the API.
    pub max_members: usize,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            language: "vi".into(),
            dossier_overdue: RuleSettings::on(AlertSeverity::Warning),
            dossier_stalled: RuleSettings::on(AlertSeverity::Warning),
            feed_silent: RuleSettings::on(AlertSeverity::Critical),
            endpoint_missing: RuleSettings::on(AlertSeverity::Warning),
            endpoint_poor_quality: RuleSettings::on(AlertSeverity::Info),
            incident_unacknowledged: RuleSettings::on(AlertSeverity::Critical),
            incident_unacknowledged_after_secs: 900,
            incident_min_severity: "high".into(),
            soc_system_silent: RuleSettings::on(AlertSeverity::Warning),
            max_members: 100,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`: logging.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `iocd=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// The shipped `config/iocd.toml`, embedded so `iocd print-default-config` can print it and
/// a test can check that it parses to exactly [`Settings::default()`].
pub const DEFAULT_CONFIG: &str = include_str!("../config/iocd.toml");

/// How errors name the configuration when no file was given.
const DEFAULTS_ORIGIN: &str = "built-in defaults";

/// Longest accepted duration in hours (10 years): keeps nanosecond arithmetic from overflowing.
const MAX_HOURS: i64 = 87_600;
/// Longest accepted duration in seconds (10 years), for the same reason.
const MAX_SECS: i64 = MAX_HOURS * 3600;
/// Largest ingest queue; tokio's bounded channel panics on absurd capacities.
const MAX_QUEUE_CAPACITY: usize = 1_000_000;

/// A configuration that cannot be used.
///
/// `Display` names the file (or `built-in defaults`), the key and what is wrong, e.g.
/// `config/x.toml: mqtt.keepalive_secs: invalid type: string "ten", expected u64`. Where
/// there is an underlying error (I/O) it is the `source`, not repeated in the message, so
/// print the whole chain (`{:#}` through anyhow).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, no permission, not UTF-8).
    #[error("{}: cannot read the configuration file", path.display())]
    Unreadable {
        /// The file as given.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("{origin}: {}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Parse {
        /// The file (or other origin) being parsed.
        origin: String,
        /// Dotted key path such as `mqtt.keepalive_secs`; empty for a TOML syntax error.
        key: String,
        /// What is wrong; a syntax error starts with its line and column.
        message: String,
    },
    /// The values parsed but some are out of range or inconsistent; lists every problem.
    #[error("{origin}: {}", list_problems(problems))]
    Invalid {
        /// The file, or `command line` for values given by flags.
        origin: String,
        /// `(key, problem)` pairs in the order of the file's sections.
        problems: Vec<(String, String)>,
    },
    /// `mqtt.password_env` names an environment variable that cannot be read.
    #[error("mqtt.password_env: environment variable {var} {}", match reason {
        std::env::VarError::NotPresent => "is not set",
        std::env::VarError::NotUnicode(_) => "is not valid Unicode",
    })]
    PasswordEnv {
        /// The variable's name.
        var: String,
        /// Unset or not Unicode (kept out of `source`: the message already says it).
        reason: std::env::VarError,
    },
}

/// One problem on one line; several as an indented list, one per line.
fn list_problems(problems: &[(String, String)]) -> String {
    if let [(key, problem)] = problems {
        return format!("{key}: {problem}");
    }
    let mut out = format!("{} invalid values:", problems.len());
    for (key, problem) in problems {
        out.push_str("\n  ");
        out.push_str(key);
        out.push_str(": ");
        out.push_str(problem);
    }
    out
}

impl Settings {
    /// Loads the settings: the built-in defaults without a path, else the file at `path`
    /// over the defaults (a key left out keeps its default). Either way the result is
    /// validated.
    ///
    /// # Errors
    /// [`ConfigError::Unreadable`] when the file cannot be read; [`ConfigError::Parse`] for
    /// bad TOML, an unknown key or a wrong type; [`ConfigError::Invalid`] listing every
    /// value out of range.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let Some(path) = path else {
            let settings = Settings::default();
            settings
                .validate()
                .map_err(|problems| ConfigError::Invalid {
                    origin: DEFAULTS_ORIGIN.to_owned(),
                    problems,
                })?;
            return Ok(settings);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors (usually the file path).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the key path for an unknown key or a wrong type (or the
    /// line and column for a syntax error); [`ConfigError::Invalid`] listing every problem
    /// [`Settings::validate`] finds.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let settings: Settings = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = match err.path().to_string() {
                root if root == "." => String::new(),
                key => key,
            };
            let inner = err.into_inner();
            // toml's messages may span lines ("invalid string\nexpected ..."): keep one line.
            let mut message = inner.message().trim_end().replace('\n', "; ");
            if key.is_empty() {
                if let Some(span) = inner.span() {
                    let (line, column) = line_column(text, span.start);
                    message = format!("line {line}, column {column}: {message}");
                }
            }
            ConfigError::Parse {
                origin: origin.to_owned(),
                key,
                message,
            }
        })?;
        settings
            .validate()
            .map_err(|problems| ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            })?;
        Ok(settings)
    }

    /// Checks every value and the relations between them, and returns every problem at
    /// once as `(key, problem)` pairs, e.g. `("mqtt.keepalive_secs", "must be between 1
    /// and 3600 (got 0)")`.
    ///
    /// # Errors
    /// The list of problems, never empty, when anything is wrong.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut p = Problems::default();
        self.mqtt.check(&mut p);
        if let Err(err) = self.http.listen.parse::<SocketAddr>() {
            p.add(
                "http.listen",
                format!(
                    "must be an IP address and port such as 127.0.0.1:8080 (got `{}`: {err})",
                    self.http.listen
                ),
            );
        }
        if self.mqtt.embedded && !cfg!(feature = "demo") {
            p.add(
                "mqtt.embedded",
                "this iocd was built without the embedded broker (cargo feature `demo`); \
                 connect to a broker with mqtt.url"
                    .to_owned(),
            );
        }
        if let Err(err) = self.mqtt.embedded_listen.parse::<SocketAddr>() {
            p.add(
                "mqtt.embedded_listen",
                format!(
                    "must be an IP address and port such as 127.0.0.1:1883 (got `{}`: {err})",
                    self.mqtt.embedded_listen
                ),
            );
        }
        for (i, token) in self.http.access_tokens.iter().enumerate() {
            if token.len() < 16 {
                p.add(
                    format!("http.access_tokens[{i}]"),
                    "must have at least 16 characters".to_owned(),
                );
            }
        }
        for (i, origin) in self.http.allowed_origins.iter().enumerate() {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                p.add(
                    format!("http.allowed_origins[{i}]"),
                    format!("must look like https://host[:port] without a trailing slash (got `{origin}`)"),
                );
            }
        }
        p.within("ws.push_interval_ms", self.ws.push_interval_ms, 50, 60_000);
        p.within("ws.max_clients", self.ws.max_clients, 1, 1_000_000);
        p.within(
            "ws.max_message_bytes",
            self.ws.max_message_bytes,
            64,
            1 << 20,
        );
        p.within("ws.ping_interval_secs", self.ws.ping_interval_secs, 1, 3600);
        p.within("ws.max_behind_secs", self.ws.max_behind_secs, 1, 3600);
        self.ingest.check(&mut p);
        self.state.check(&mut p);
        p.within(
            "onestop.due_soon_hours",
            self.onestop.due_soon_hours,
            0,
            MAX_HOURS,
        );
        p.within(
            "onestop.stalled_hours",
            self.onestop.stalled_hours,
            1,
            MAX_HOURS,
        );
        self.vc.check(&mut p);
        self.soc.check(&mut p);
        p.within(
            "sources.silent_after_secs",
            self.sources.silent_after_secs,
            1,
            MAX_SECS,
        );
        self.log.check(&mut p);
        if let Err(e) = self.calendar.build() {
            p.add("calendar", e);
        }
        if !matches!(self.alerts.language.as_str(), "vi" | "en") {
            p.add(
                "alerts.language",
                format!("must be `vi` or `en` (got `{}`)", self.alerts.language),
            );
        }
        if !matches!(
            self.alerts.incident_min_severity.as_str(),
            "low" | "medium" | "high" | "critical"
        ) {
            p.add(
                "alerts.incident_min_severity",
                format!(
                    "must be low, medium, high or critical (got `{}`)",
                    self.alerts.incident_min_severity
                ),
            );
        }
        p.within(
            "alerts.incident_unacknowledged_after_secs",
            self.alerts.incident_unacknowledged_after_secs,
            0,
            MAX_SECS,
        );
        p.within("alerts.max_members", self.alerts.max_members, 1, 10_000);
        p.within(
            "store.checkpoint_interval_secs",
            self.store.checkpoint_interval_secs,
            1,
            86_400,
        );
        if p.0.is_empty() { Ok(()) } else { Err(p.0) }
    }

    /// The broker password: the environment variable named by `mqtt.password_env` when that
    /// is set, else `mqtt.password` when non-empty, else `None`.
    ///
    /// # Errors
    /// [`ConfigError::PasswordEnv`] when `mqtt.password_env` names a variable that is unset
    /// or not Unicode.
    pub fn mqtt_password(&self) -> Result<Option<String>, ConfigError> {
        self.mqtt.password_with(|name| std::env::var(name))
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Collects `(key, problem)` pairs so that `validate` reports every problem, not the first.
#[derive(Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.0.push((key.into(), problem.into()));
    }

    fn at_least<T: Copy + PartialOrd + fmt::Display>(&mut self, key: &str, value: T, min: T) {
        if value < min {
            self.add(key, format!("must be at least {min} (got {value})"));
        }
    }

    fn within<T: Copy + PartialOrd + fmt::Display>(&mut self, key: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.add(
                key,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    fn finite_non_negative(&mut self, key: &str, value: f64) {
        if !value.is_finite() || value < 0.0 {
            self.add(
                key,
                format!("must be a finite number of at least 0 (got {value})"),
            );
        }
    }
}

/// Where the broker is, as parsed from `mqtt.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port; 1883 or 8883 when the URL has none.
    pub port: u16,
    /// `mqtts://`: connect with TLS.
    pub tls: bool,
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl MqttSettings {
    /// Parses `url` as `mqtt://host[:port]` or `mqtts://host[:port]` (default ports 1883
    /// and 8883; IPv6 hosts in brackets).
    ///
    /// # Errors
    /// A sentence saying what is wrong with the URL.
    pub fn broker(&self) -> Result<BrokerAddr, String> {
        let url = self.url.as_str();
        let shape =
            || format!("must look like mqtt://host:port or mqtts://host:port (got `{url}`)");
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(shape());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
            return Err(format!("{}: only a host and a port are allowed", shape()));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, tail) = bracketed.split_once(']').ok_or_else(shape)?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(format!("`{host}` is not an IPv6 address"));
            }
            match tail {
                "" => (host, default_port),
                _ => (host, parse_port(tail.strip_prefix(':').ok_or_else(shape)?)?),
            }
        } else {
            match rest.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(format!("{}: put an IPv6 address in brackets", shape()));
                }
                Some((host, port)) => (host, parse_port(port)?),
                None => (rest, default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{}: the host is missing", shape()));
        }
        Ok(BrokerAddr {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// The password, reading environment variables through `lookup` (tests pass their own).
    fn password_with(
        &self,
        lookup: impl FnOnce(&str) -> Result<String, std::env::VarError>,
    ) -> Result<Option<String>, ConfigError> {
        if !self.password_env.is_empty() {
            return lookup(&self.password_env).map(Some).map_err(|reason| {
                ConfigError::PasswordEnv {
                    var: self.password_env.clone(),
                    reason,
                }
            });
        }
        Ok((!self.password.is_empty()).then(|| self.password.clone()))
    }

    fn check(&self, p: &mut Problems) {
        if let Err(problem) = self.broker() {
            p.add("mqtt.url", problem);
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
        if let Err(problem) = check_prefix(&self.prefix) {
            p.add("mqtt.prefix", problem);
        }
        p.within("mqtt.keepalive_secs", self.keepalive_secs, 1, 3600);
        p.at_least("mqtt.reconnect_min_ms", self.reconnect_min_ms, 1);
        if self.reconnect_max_ms < self.reconnect_min_ms {
            p.add(
                "mqtt.reconnect_max_ms",
                format!(
                    "must be at least mqtt.reconnect_min_ms ({}) (got {})",
                    self.reconnect_min_ms, self.reconnect_max_ms
                ),
            );
        }
        p.within(
            "mqtt.queue_capacity",
            self.queue_capacity,
            1,
            MAX_QUEUE_CAPACITY,
        );
        p.at_least("mqtt.inflight", self.inflight, 1);
    }
}

/// A port from 1 to 65535.
fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("`{text}` is not a port (1 to 65535)")),
    }
}

/// A topic prefix: non-empty, no wildcards, no NUL, no leading or trailing `/`.
fn check_prefix(prefix: &str) -> Result<(), String> {
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

impl IngestSettings {
    fn check(&self, p: &mut Problems) {
        p.within(
            "ingest.max_payload_bytes",
            self.max_payload_bytes,
            16,
            268_435_455,
        );
        p.within(
            "ingest.max_future_skew_secs",
            self.max_future_skew_secs,
            0,
            MAX_SECS,
        );
        p.within(
            "ingest.dedupe_horizon_hours",
            self.dedupe_horizon_hours,
            1,
            MAX_HOURS,
        );
        p.at_least("ingest.dedupe_max_ids", self.dedupe_max_ids, 1);
    }
}

impl StateSettings {
    /// The local calendar of `timezone`. Falls back to [`Calendar::default`]
    /// (`Asia/Ho_Chi_Minh`) if the zone is unknown, which `validate()` already refuses.
    ///
    /// [`Calendar::default`]: crate::time::Calendar
    #[must_use]
    pub fn calendar(&self) -> crate::time::Calendar {
        jiff::tz::TimeZone::get(&self.timezone).map_or_else(
            |_| crate::time::Calendar::default(),
            crate::time::Calendar::new,
        )
    }

    fn check(&self, p: &mut Problems) {
        if let Err(err) = jiff::tz::TimeZone::get(&self.timezone) {
            p.add(
                "state.timezone",
                format!("`{}` is not a known IANA time zone ({err})", self.timezone),
            );
        }
        p.within(
            "state.closed_retention_hours",
            self.closed_retention_hours,
            0,
            MAX_HOURS,
        );
        p.at_least("state.agency_label_limit", self.agency_label_limit, 1);
    }
}

impl VcSettings {
    fn check(&self, p: &mut Problems) {
        p.finite_non_negative("vc.poor_packet_loss_pct", self.poor_packet_loss_pct);
        p.finite_non_negative("vc.poor_jitter_ms", self.poor_jitter_ms);
        p.finite_non_negative("vc.poor_rtt_ms", self.poor_rtt_ms);
        p.within(
            "vc.missing_after_secs",
            self.missing_after_secs,
            0,
            MAX_SECS,
        );
    }
}

impl SocSettings {
    fn check(&self, p: &mut Problems) {
        p.within(
            "soc.system_silent_secs",
            self.system_silent_secs,
            1,
            MAX_SECS,
        );
        for (i, system) in self.systems.iter().enumerate() {
            let chars = system.chars().count();
            if !(1..=128).contains(&chars) {
                p.add(
                    format!("soc.systems[{i}]"),
                    format!("must be 1 to 128 characters (got {chars})"),
                );
            }
        }
    }
}

impl LogSettings {
    fn check(&self, p: &mut Problems) {
        if self.level.trim().is_empty() {
            p.add(
                "log.level",
                "must not be empty (use \"off\" to silence logging)",
            );
        } else if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            p.add(
                "log.level",
                format!("`{}` is not a valid log filter: {err}", self.level),
            );
        }
    }
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so a new field cannot be forgotten here.
        let Self {
            url,
            client_id,
            persistent_session,
            username,
            password,
            password_env,
            ca_file,
            prefix,
            keepalive_secs,
            reconnect_min_ms,
            reconnect_max_ms,
            queue_capacity,
            inflight,
            embedded,
            embedded_listen,
        } = self;
        let password = if password.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("MqttSettings")
            .field("url", url)
            .field("client_id", client_id)
            .field("persistent_session", persistent_session)
            .field("username", username)
            .field("password", &password)
            .field("password_env", password_env)
            .field("ca_file", ca_file)
            .field("prefix", prefix)
            .field("keepalive_secs", keepalive_secs)
            .field("reconnect_min_ms", reconnect_min_ms)
            .field("reconnect_max_ms", reconnect_max_ms)
            .field("queue_capacity", queue_capacity)
            .field("inflight", inflight)
            .field("embedded", embedded)
            .field("embedded_listen", embedded_listen)
            .finish()
    }
}

#[cfg(test)]
// A failed unwrap is a failed test; until clippy.toml sets `allow-unwrap-in-tests`.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems_of(text: &str) -> Vec<(String, String)> {
        match Settings::from_toml_str(text, "x.toml") {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected invalid values, got {other:?}"),
        }
    }

    fn keys(problems: &[(String, String)]) -> Vec<&str> {
        problems.iter().map(|(key, _)| key.as_str()).collect()
    }

    #[test]
    fn the_shipped_file_equals_the_defaults() {
        let shipped = Settings::from_toml_str(DEFAULT_CONFIG, "config/iocd.toml").unwrap();
        assert_eq!(shipped, Settings::default());
    }

    #[test]
    fn loading_without_a_path_gives_the_defaults() {
        assert_eq!(Settings::load(None).unwrap(), Settings::default());
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(
            Settings::from_toml_str("", "x.toml").unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn a_key_left_out_keeps_its_default() {
        let s = Settings::from_toml_str("[mqtt]\nkeepalive_secs = 30\n", "x.toml").unwrap();
        assert_eq!(s.mqtt.keepalive_secs, 30);
        assert_eq!(s.mqtt.url, MqttSettings::default().url);
        assert_eq!(s.http, HttpSettings::default());
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let err = Settings::from_toml_str("[mqtt]\nkeepalive = 5\n", "config/x.toml").unwrap_err();
        let ConfigError::Parse { key, message, .. } = &err else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!(key, "mqtt.keepalive");
        assert!(
            message.contains("unknown field `keepalive`"),
            "message {message:?}"
        );
        let shown = err.to_string();
        assert!(shown.starts_with("config/x.toml: mqtt"), "{shown}");
    }

    #[test]
    fn a_misspelt_section_is_an_error_naming_it() {
        let err = Settings::from_toml_str("[mqt]\nurl = \"mqtt://a\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("unknown field `mqt`"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_key_path() {
        let err = Settings::from_toml_str("[mqtt]\nkeepalive_secs = \"ten\"\n", "config/x.toml")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "config/x.toml: mqtt.keepalive_secs: invalid type: string \"ten\", expected u64"
        );
    }

    #[test]
    fn a_wrong_type_in_a_list_names_the_index() {
        let err = Settings::from_toml_str("[soc]\nsystems = [\"a\", 2]\n", "x.toml").unwrap_err();
        assert!(
            err.to_string().starts_with("x.toml: soc.systems[1]: "),
            "{err}"
        );
    }

    #[test]
    fn a_syntax_error_names_the_line_and_column() {
        let err = Settings::from_toml_str("[mqtt]\nurl = \n", "x.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("x.toml: line 2, column 7: "), "{shown}");
        assert!(!shown.contains('\n'), "{shown}");
    }

    #[test]
    fn several_invalid_values_are_all_listed() {
        let problems = problems_of(
            "[mqtt]\nurl = \"http://broker\"\nkeepalive_secs = 0\nprefix = \"ioc/#\"\n\
             reconnect_min_ms = 5000\nreconnect_max_ms = 100\n\
             [http]\nlisten = \"localhost\"\n\
             [state]\ntimezone = \"Mars/Olympus_Mons\"\n\
             [vc]\npoor_rtt_ms = nan\n\
             [soc]\nsystems = [\"\"]\n\
             [log]\nlevel = \"iocd=loud\"\n",
        );
        assert_eq!(
            keys(&problems),
            [
                "mqtt.url",
                "mqtt.prefix",
                "mqtt.keepalive_secs",
                "mqtt.reconnect_max_ms",
                "http.listen",
                "state.timezone",
                "vc.poor_rtt_ms",
                "soc.systems[0]",
                "log.level",
            ]
        );
    }

    #[test]
    fn the_invalid_values_error_shows_file_key_and_problem() {
        let err = Settings::from_toml_str("[mqtt]\nkeepalive_secs = 0\n", "x.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.toml: mqtt.keepalive_secs: must be between 1 and 3600 (got 0)"
        );
        let err = Settings::from_toml_str("[mqtt]\nkeepalive_secs = 0\ninflight = 0\n", "x.toml")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.toml: 2 invalid values:\n  mqtt.keepalive_secs: must be between 1 and 3600 (got 0)\n  \
             mqtt.inflight: must be at least 1 (got 0)"
        );
    }

    #[test]
    fn lower_bounds_are_inclusive() {
        let text = "[ingest]\nmax_payload_bytes = 16\nmax_future_skew_secs = 0\n\
                    [state]\nclosed_retention_hours = 0\n[onestop]\ndue_soon_hours = 0\n\
                    [vc]\npoor_packet_loss_pct = 0.0\nmissing_after_secs = 0\n";
        Settings::from_toml_str(text, "x.toml").unwrap();
        let problems = problems_of("[ingest]\nmax_payload_bytes = 15\ndedupe_horizon_hours = 0\n");
        assert_eq!(
            keys(&problems),
            ["ingest.max_payload_bytes", "ingest.dedupe_horizon_hours"]
        );
    }

    #[test]
    fn a_password_without_a_user_name_is_refused() {
        let problems = problems_of("[mqtt]\npassword_env = \"X\"\n");
        assert_eq!(keys(&problems), ["mqtt.username"]);
    }

    #[test]
    fn broker_urls_take_default_ports_and_bracketed_ipv6() {
        let broker = |url: &str| {
            MqttSettings {
                url: url.into(),
                ..MqttSettings::default()
            }
            .broker()
        };
        let addr = |host: &str, port, tls| BrokerAddr {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            broker("mqtt://example.org"),
            Ok(addr("example.org", 1883, false))
        );
        assert_eq!(
            broker("mqtts://example.org"),
            Ok(addr("example.org", 8883, true))
        );
        assert_eq!(
            broker("mqtts://10.0.0.5:8884/"),
            Ok(addr("10.0.0.5", 8884, true))
        );
        assert_eq!(broker("mqtt://[::1]:1884"), Ok(addr("::1", 1884, false)));
        assert_eq!(broker("mqtt://[::1]"), Ok(addr("::1", 1883, false)));
        assert_eq!(addr("::1", 1884, false).to_string(), "mqtt://[::1]:1884");
        for bad in [
            "tcp://host:1883",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://host:0",
            "mqtt://host:70000",
            "mqtt://host:x",
            "mqtt://host/topic",
            "mqtt://user@host",
            "mqtt://::1",
            "mqtt://[::1",
            "mqtt://[nope]:1",
        ] {
            assert!(broker(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_prefix_with_wildcards_or_edge_slashes_is_refused() {
        for bad in ["", "ioc/#", "ioc/+/x", "/ioc", "ioc/"] {
            assert!(check_prefix(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_prefix("ioc/v1").is_ok());
    }

    #[test]
    fn the_password_comes_from_the_named_environment_variable() {
        let mqtt = MqttSettings {
            username: "iocd".into(),
            password: "in-file".into(),
            password_env: "IOCD_MQTT_PASSWORD".into(),
            ..MqttSettings::default()
        };
        let password = mqtt
            .password_with(|name| {
                assert_eq!(name, "IOCD_MQTT_PASSWORD");
                Ok("from-env".into())
            })
            .unwrap();
        assert_eq!(password.as_deref(), Some("from-env"));
    }

    #[test]
    fn the_password_comes_from_the_real_environment() {
        // Cargo sets CARGO_PKG_NAME for the test process; setting a variable ourselves would
        // need `unsafe` (edition 2024), which the crate forbids.
        let mut settings = Settings::default();
        settings.mqtt.password_env = "CARGO_PKG_NAME".into();
        if std::env::var_os("CARGO_PKG_NAME").is_some() {
            assert_eq!(settings.mqtt_password().unwrap().as_deref(), Some("iocd"));
        }
    }

    #[test]
    fn an_unset_password_variable_is_an_error_naming_key_and_variable() {
        let mut settings = Settings::default();
        settings.mqtt.password_env = "IOCD_TEST_SURELY_UNSET_7F3A".into();
        let err = settings.mqtt_password().unwrap_err();
        assert_eq!(
            err.to_string(),
            "mqtt.password_env: environment variable IOCD_TEST_SURELY_UNSET_7F3A is not set"
        );
    }

    #[test]
    fn without_a_variable_the_password_is_the_file_one_or_none() {
        let mut mqtt = MqttSettings::default();
        assert_eq!(mqtt.password_with(|_| unreachable!()).unwrap(), None);
        mqtt.password = "in-file".into();
        assert_eq!(
            mqtt.password_with(|_| unreachable!()).unwrap().as_deref(),
            Some("in-file")
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let mut settings = Settings::default();
        settings.mqtt.password = "hunter2".into();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.toml");
        let err = Settings::load(Some(&path)).unwrap_err();
        assert!(matches!(err, ConfigError::Unreadable { .. }));
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }

    #[test]
    fn the_calendar_uses_the_configured_time_zone() {
        let state = StateSettings {
            timezone: "Europe/Paris".into(),
            ..StateSettings::default()
        };
        assert_eq!(state.calendar().tz().iana_name(), Some("Europe/Paris"));
        let bad = StateSettings {
            timezone: "Nowhere/None".into(),
            ..StateSettings::default()
        };
        assert_eq!(bad.calendar().tz().iana_name(), Some("Asia/Ho_Chi_Minh"));
    }

    #[test]
    fn every_toml_file_in_config_loads_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_holidays = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("holidays"));
            if is_holidays {
                let text = std::fs::read_to_string(&path).unwrap();
                let file: crate::state::workcal::HolidayFile = toml::from_str(&text).unwrap();
                let cal = CalendarSettings {
                    enabled: true,
                    holidays_file: path.display().to_string(),
                    ..CalendarSettings::default()
                };
                assert!(cal.build().unwrap().is_some(), "{}", path.display());
                assert!(
                    file.day.iter().all(|d| !d.source.is_empty()),
                    "every entry names its source"
                );
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                if let Err(err) = Settings::load(Some(&path)) {
                    panic!("{err}");
                }
                seen += 1;
            }
        }
        assert!(seen >= 1, "no *.toml in {}", dir.display());
    }
}

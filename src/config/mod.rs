//! Settings: `config/iocd.toml` parsed once into types.
//!
//! In: a TOML file path (or none, for the built-in defaults). Out: a [`Settings`] whose
//! values are typed and checked — a [`BrokerUrl`], `SocketAddr`s, a `jiff` time zone,
//! `Duration`s, enums for severities and the language, [`Secret`]s for the password and the
//! tokens, the working calendar's days, hours and holidays — or a [`ConfigError`] naming the
//! file and every bad key at once. This module reads no environment variable except the one
//! `mqtt.password_env` names (when asked), reads the holiday file once, and never panics on
//! bad input.
//!
//! Loading goes in two steps: the file is read over the shipped defaults into plain
//! structs that mirror the TOML (`*File`, private to each section's module; a misspelt key
//! or a wrong type stops here, naming the key), then every section turns its plain values
//! into typed ones, collecting every problem (`(key, problem)` pairs).
//!
//! **Defaults come from one place: the shipped `config/iocd.toml`** ([`DEFAULT_CONFIG`],
//! embedded). A user's file is laid over it key by key, and [`Settings::default()`] is the
//! shipped file loaded. The file, not an `impl Default`, is the source because it is what
//! operators read (`iocd print-default-config` prints it, comments and all): with it as the
//! source, the documented default and the real one cannot drift apart, and there is no
//! second list to keep equal by hand. The plain structs have no serde defaults, so a key
//! missing from the shipped file fails its test instead of quietly taking a Rust value.
//!
//! Sections: [`mqtt`](MqttSettings), [`http` and `ws`](HttpSettings), [`ingest`, `state`
//! and `store`](StateSettings), [`onestop`, `vc`, `soc` and `sources`](VcSettings),
//! [`log`](LogSettings), [`calendar`](CalendarSettings), [`directory`](DirectorySettings),
//! [`mappings`](MappingSettings),
//! [`alerts`](AlertSettings).

mod alertmanager;
mod alerts;
mod broker;
mod calendar;
mod check;
mod directory;
mod ha;
mod http;
mod limits;
mod log;
mod mappings;
mod mqtt;
mod secret;
#[cfg(test)]
mod tests;
mod thresholds;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::Deserialize;

pub use alertmanager::AlertmanagerSettings;
pub use alerts::{AlertSettings, AlertSeverity, Lang, RuleSettings, UnknownLang};
pub use broker::{BrokerUrl, BrokerUrlError};
pub use calendar::CalendarSettings;
pub use check::{ListenAddrError, listen_addr};
pub use directory::DirectorySettings;
pub use ha::{HaSettings, Peer, valid_name as valid_replica_name};
pub use http::{HttpSettings, NamedToken, WsSettings};
pub use limits::{IngestSettings, MaxItems, StateSettings, StoreSettings};
pub use log::{LogFormat, LogSettings};
pub use mappings::MappingSettings;
pub use mqtt::MqttSettings;
pub use secret::Secret;
pub use thresholds::{OnestopSettings, SocSettings, SourcesSettings, VcSettings};

use check::{Problems, list_problems};

/// The shipped `config/iocd.toml`: the defaults of every key, embedded so that
/// `iocd print-default-config` can print it.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/iocd.toml");

/// How errors name the configuration when no file was given.
const DEFAULTS_ORIGIN: &str = "built-in defaults";

/// Everything the daemon can be configured with, typed and checked.
#[derive(Clone, Debug, PartialEq)]
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
    /// The agency directory.
    pub directory: DirectorySettings,
    /// The mapped inputs.
    pub mappings: MappingSettings,
    /// The alert rules.
    pub alerts: AlertSettings,
    /// Where alerts go for notification.
    pub alertmanager: AlertmanagerSettings,
    /// This replica's name and its peers (several side by side).
    pub ha: HaSettings,
    /// The event log and checkpoints in `--data-dir`.
    pub store: StoreSettings,
}

/// The whole file as written (over the shipped defaults): every key present.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    mqtt: mqtt::MqttFile,
    http: http::HttpFile,
    ws: http::WsFile,
    ingest: limits::IngestFile,
    state: limits::StateFile,
    onestop: thresholds::OnestopFile,
    vc: thresholds::VcFile,
    soc: thresholds::SocFile,
    sources: thresholds::SourcesFile,
    log: LogSettings,
    calendar: calendar::CalendarFile,
    directory: directory::DirectoryFile,
    mappings: mappings::MappingsFile,
    alerts: alerts::AlertFile,
    alertmanager: alertmanager::AlertmanagerFile,
    ha: ha::HaFile,
    store: limits::StoreFile,
}

impl SettingsFile {
    /// Every section's values typed, in the order of the file's sections; `None` when any
    /// problem was recorded.
    fn check(self, p: &mut Problems) -> Option<Settings> {
        let mqtt = self.mqtt.check(p);
        let http = self.http.check(p);
        let ws = self.ws.check(p);
        let ingest = self.ingest.check(p);
        let state = self.state.check(p);
        let onestop = self.onestop.check(p);
        let vc = self.vc.check(p);
        let soc = self.soc.check(p);
        let sources = self.sources.check(p);
        let log = self.log.check(p);
        let calendar = self.calendar.check(p);
        let directory = self.directory.check(p);
        let prefix = mqtt.as_ref().map(|m| m.prefix.as_str());
        let mappings = self.mappings.check(prefix, p);
        let alerts = self.alerts.check(p);
        let alertmanager = self.alertmanager.check(p);
        let ha = self.ha.check(p);
        let store = self.store.check(p);
        Some(Settings {
            mqtt: mqtt?,
            http: http?,
            ws: ws?,
            ingest: ingest?,
            state: state?,
            onestop: onestop?,
            vc: vc?,
            soc: soc?,
            sources: sources?,
            log: log?,
            calendar: calendar?,
            directory: directory?,
            mappings: mappings?,
            alerts: alerts?,
            alertmanager: alertmanager?,
            ha: ha?,
            store: store?,
        })
        .filter(|_| p.0.is_empty())
    }
}

/// A configuration that cannot be used.
///
/// `Display` names the file (or `built-in defaults`), the key and what is wrong, e.g.
/// `config/x.toml: mqtt.keepalive_secs: invalid type: string "ten", expected u64`. Where
/// there is an underlying error (I/O) it is the `source`, not repeated in the message, so
/// print the whole chain (as `main` does).
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
    /// The values parsed but some are out of range, inconsistent or not what their key
    /// wants (a URL, an address, a time zone, …); lists every problem.
    #[error("{origin}: {}", list_problems(problems))]
    Invalid {
        /// The file, or `built-in defaults`.
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

/// The shipped file loaded once, for [`Settings::default`].
static DEFAULTS: LazyLock<Settings> = LazyLock::new(|| {
    Settings::from_toml_str("", DEFAULTS_ORIGIN)
        .unwrap_or_else(|err| panic!("the shipped config/iocd.toml must load: {err}"))
});

/// The shipped `config/iocd.toml`, loaded. Panics only if the shipped file is broken, which
/// `the_shipped_file_loads_and_names_every_key` catches.
impl Default for Settings {
    fn default() -> Self {
        DEFAULTS.clone()
    }
}

/// Each section's default is its part of the shipped file.
macro_rules! section_defaults {
    ($($section:ident: $ty:ty),* $(,)?) => {$(
        impl Default for $ty {
            fn default() -> Self {
                DEFAULTS.$section.clone()
            }
        }
    )*};
}

section_defaults!(
    mqtt: MqttSettings,
    http: HttpSettings,
    ws: WsSettings,
    ingest: IngestSettings,
    state: StateSettings,
    onestop: OnestopSettings,
    vc: VcSettings,
    soc: SocSettings,
    sources: SourcesSettings,
    log: LogSettings,
    calendar: CalendarSettings,
    directory: DirectorySettings,
    mappings: MappingSettings,
    alerts: AlertSettings,
    alertmanager: AlertmanagerSettings,
    ha: HaSettings,
    store: StoreSettings,
);

impl Settings {
    /// Loads the settings: the built-in defaults without a path, else the file at `path`
    /// over the defaults (a key left out keeps its default).
    ///
    /// # Errors
    /// [`ConfigError::Unreadable`] when the file cannot be read; [`ConfigError::Parse`] for
    /// bad TOML, an unknown key or a wrong type; [`ConfigError::Invalid`] listing every
    /// value that cannot be used.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let Some(path) = path else {
            return Self::from_toml_str("", DEFAULTS_ORIGIN);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses TOML text over the shipped defaults and types every value; `origin` names it
    /// in errors (usually the file path).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the key path for an unknown key or a wrong type (or the
    /// line and column for a syntax error); [`ConfigError::Invalid`] listing every value
    /// that cannot be used.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let user = parse_table(text, origin)?;
        let mut merged = parse_table(DEFAULT_CONFIG, "config/iocd.toml (built in)")?;
        overlay(&mut merged, user);
        let file: SettingsFile = serde_path_to_error::deserialize(merged).map_err(|err| {
            let key = match err.path().to_string() {
                root if root == "." => String::new(),
                key => key,
            };
            ConfigError::Parse {
                origin: origin.to_owned(),
                key,
                message: one_line(err.into_inner().message()),
            }
        })?;
        let mut problems = Problems::default();
        file.check(&mut problems)
            .ok_or_else(|| ConfigError::Invalid {
                origin: origin.to_owned(),
                problems: problems.0,
            })
    }

    /// The broker password (see [`MqttSettings::password`]).
    ///
    /// # Errors
    /// [`ConfigError::PasswordEnv`] when `mqtt.password_env` names a variable that is unset
    /// or not Unicode.
    pub fn mqtt_password(&self) -> Result<Option<Secret>, ConfigError> {
        self.mqtt.password()
    }
}

/// TOML text as a table; a syntax error names its line and column.
fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|err| {
        let mut message = one_line(err.message());
        if let Some(span) = err.span() {
            let (line, column) = line_column(text, span.start);
            message = format!("line {line}, column {column}: {message}");
        }
        ConfigError::Parse {
            origin: origin.to_owned(),
            key: String::new(),
            message,
        }
    })
}

/// Lays `user` over `base`: tables merge key by key, anything else replaces.
fn overlay(base: &mut toml::Table, user: toml::Table) {
    for (key, value) in user {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => overlay(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// toml's messages may span lines ("invalid string\nexpected ..."): keep one line.
fn one_line(message: &str) -> String {
    message.trim_end().replace('\n', "; ")
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

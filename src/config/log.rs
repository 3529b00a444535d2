//! `[log]`: the log format and filter.
//!
//! In: the `[log]` table as written. Out: [`LogSettings`] whose `level` is a valid
//! `tracing` filter, or the problem keyed `log.level`.

use serde::Deserialize;

use super::check::Problems;

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

/// `[log]`: logging. The file's table and the typed settings are the same.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `iocd=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl LogSettings {
    pub(super) fn check(self, p: &mut Problems) -> Option<LogSettings> {
        if self.level.trim().is_empty() {
            p.add(
                "log.level",
                "must not be empty (use \"off\" to silence logging)",
            );
            return None;
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            p.add(
                "log.level",
                format!("`{}` is not a valid log filter: {err}", self.level),
            );
            return None;
        }
        Some(self)
    }
}

//! Logging setup (`tracing`) and iocd's own metrics.
//!
//! [`init_logging`] installs the process-wide subscriber once, early in `main`: logs go to
//! stderr as text or JSON lines, filtered by `RUST_LOG` or the configured level. The
//! self-metrics live in [`metrics`]; domain metrics are built elsewhere at scrape time.

pub mod metrics;

pub use metrics::SelfMetrics;

use std::io::IsTerminal;

use anyhow::{anyhow, bail};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Sends `tracing` events (and `log` records of dependencies such as rumqttc) to stderr.
///
/// `level` is a filter such as `info` or `iocd=debug,info` (`log.level`); the `RUST_LOG`
/// environment variable wins when it is set and not empty, as operators expect. Text is
/// coloured only when stderr is a terminal; JSON puts one object per line with the event's
/// fields at the top level, for log collectors.
///
/// If a global subscriber is already installed (a second call, as tests make), that one
/// stays and this returns `Ok`.
///
/// # Errors
/// When `RUST_LOG` or `level` is not a valid filter, or `RUST_LOG` is not Unicode.
pub fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    // The filter's parse error repeats itself in its `source()`, so it is formatted here
    // rather than chained, to print it once.
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec)
            .map_err(|err| anyhow!("RUST_LOG `{spec}` is not a valid log filter: {err}"))?,
        Err(std::env::VarError::NotUnicode(_)) => bail!("RUST_LOG is not valid Unicode"),
        _ => EnvFilter::try_new(level)
            .map_err(|err| anyhow!("log.level `{level}` is not a valid log filter: {err}"))?,
    };
    // The embedded broker (rumqttd) logs every connection at INFO; keep its warnings only,
    // unless the filter names it.
    let filter = if format!("{filter}").contains("rumqttd") {
        filter
    } else {
        filter.add_directive("rumqttd=warn".parse().map_err(|e| anyhow!("{e}"))?)
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // The only failure left is "a global subscriber is already set": keep that one.
    drop(installed);
    Ok(())
}

#[cfg(test)]
// A failed unwrap is a failed test; until clippy.toml sets `allow-unwrap-in-tests`.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn initialising_twice_is_not_an_error() {
        init_logging(LogFormat::Json, "info").unwrap();
        init_logging(LogFormat::Text, "debug").unwrap();
    }
}

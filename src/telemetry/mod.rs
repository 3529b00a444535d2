//! Logging setup (`tracing`) and iocd's own metrics.
//!
//! [`init_logging`] installs the process-wide subscriber once, early in `main`: logs go to
//! stderr as text or JSON lines, filtered by `RUST_LOG` or the configured level. The
//! self-metrics live in [`metrics`]; domain metrics are built elsewhere at scrape time.

pub mod metrics;

pub use metrics::SelfMetrics;

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` or `log.level` is not a valid `tracing` filter.
    #[error("{origin} `{spec}` is not a valid log filter: {reason}")]
    InvalidFilter {
        /// `RUST_LOG` or `log.level`.
        origin: &'static str,
        /// The filter as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `RUST_LOG` holds bytes that are not UTF-8.
    #[error("RUST_LOG is not valid Unicode")]
    NotUnicode,
}

/// A filter that does not parse. The parse error repeats itself in its `source()`, so it
/// is kept as text, to be said once.
fn invalid(
    origin: &'static str,
    spec: &str,
    err: &tracing_subscriber::filter::ParseError,
) -> LoggingError {
    LoggingError::InvalidFilter {
        origin,
        spec: spec.to_owned(),
        reason: err.to_string(),
    }
}

/// Displays an error with its causes, `outer: inner: innermost`, for log fields (a `%e`
/// field shows only the outermost message).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The format of the installed subscriber, once [`init_logging`] has installed one.
static INSTALLED: OnceLock<LogFormat> = OnceLock::new();

/// Whether logs go out as JSON lines, so that a last error must be one too (a plain line
/// would break a log collector's parsing).
#[must_use]
pub fn logs_are_json() -> bool {
    matches!(INSTALLED.get(), Some(LogFormat::Json))
}

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
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| invalid("RUST_LOG", &spec, &e))?
        }
        Err(std::env::VarError::NotUnicode(_)) => return Err(LoggingError::NotUnicode),
        _ => EnvFilter::try_new(level).map_err(|e| invalid("log.level", level, &e))?,
    };
    // The embedded broker (rumqttd) logs routine connects and disconnects at INFO, WARN
    // and even ERROR ("no-connection id 2 is already gone" when a client leaves). Unless
    // the filter names it, its events are re-logged at DEBUG under `iocd::embedded_broker`
    // (so `iocd=debug` shows them) and never at their own level.
    let names_broker = format!("{filter}").contains("rumqttd");
    let filter = if names_broker {
        filter
    } else {
        let off = "rumqttd=off";
        filter.add_directive(
            off.parse()
                .map_err(|e| invalid("a built-in filter", off, &e))?,
        )
    };
    let output = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .boxed(),
    };
    let broker = (!names_broker).then(|| {
        EmbeddedBrokerToDebug.with_filter(Targets::new().with_target("rumqttd", Level::INFO))
    });
    let installed = tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(broker)
        .try_init();
    // The only failure left is "a global subscriber is already set": keep that one.
    if installed.is_ok() {
        let _ = INSTALLED.set(format);
    }
    Ok(())
}

/// Re-logs the embedded broker's events at DEBUG (see [`init_logging`]).
struct EmbeddedBrokerToDebug;

impl<S: Subscriber> Layer<S> for EmbeddedBrokerToDebug {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = BrokerMessage::default();
        event.record(&mut text);
        let meta = event.metadata();
        tracing::debug!(
            target: "iocd::embedded_broker",
            origin = meta.target(),
            broker_level = %meta.level(),
            fields = %text.fields,
            "{}",
            text.message
        );
    }
}

/// The message and the other fields of a broker event, as text.
#[derive(Default)]
struct BrokerMessage {
    message: String,
    fields: String,
}

impl Visit for BrokerMessage {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let sep = if self.fields.is_empty() { "" } else { " " };
            let _ = write!(self.fields, "{sep}{}={value:?}", field.name());
        }
    }
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

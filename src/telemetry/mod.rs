//! Logging setup (`tracing`) and iocd's own metrics.
//!
//! [`init_logging`] installs the process-wide subscriber once, early in `main`: logs go to
//! stderr as text or JSON lines, filtered by `RUST_LOG` or the configured level. The
//! self-metrics live in [`metrics`]; domain metrics are built elsewhere at scrape time.
//! [`huge_pages`] says at start whether the heap can get huge pages.

pub mod huge_pages;
pub mod metrics;

pub use metrics::SelfMetrics;

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
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
        LogFormat::Text => text_layer(std::io::stderr, std::io::stderr().is_terminal()).boxed(),
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

/// The text log: `tracing_subscriber`'s usual line, its fields written by [`EscapedFields`].
fn text_layer<S, W>(writer: W, ansi: bool) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(EscapedFields::default())
        .with_writer(writer)
        .with_ansi(ansi)
}

/// The text log's field formatter: `tracing_subscriber`'s default, with every control
/// character of a message or value written as an escape (`\n`, `\u{1b}`), so that a value
/// from outside (an agency, a topic) can neither start a forged log line nor drive the
/// terminal. JSON lines need nothing: serde escapes them. Field names lose their italics.
#[derive(Debug, Default)]
struct EscapedFields(DefaultFields);

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut escaping = EscapeControls(&mut writer);
        self.0.format_fields(Writer::new(&mut escaping), fields)
    }
}

/// Writes through to the inner writer, every control character escaped.
struct EscapeControls<'a, W>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for EscapeControls<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut clean = 0;
        for (i, c) in s.char_indices() {
            if !c.is_control() {
                continue;
            }
            self.0.write_str(s.get(clean..i).unwrap_or_default())?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            clean = i + c.len_utf8();
        }
        self.0.write_str(s.get(clean..).unwrap_or_default())
    }
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

    /// A `MakeWriter` into a shared buffer, to read what the layer wrote.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the text layer writes for the events `log` emits, as text.
    fn text_log(ansi: bool, log: impl FnOnce()) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber =
            tracing_subscriber::registry().with(text_layer(move || writer.clone(), ansi));
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_forged_agency_cannot_make_a_second_text_log_line() {
        let forged = "X\n2026-01-01T00:00:00Z  INFO iocd: forged\r\u{1b}[2K\u{85}";
        for ansi in [false, true] {
            let out = text_log(ansi, || {
                let span = tracing::info_span!("dossier", agency = %forged);
                let _entered = span.enter();
                tracing::warn!(
                    agency = %forged,
                    detail = forged,
                    error = &std::io::Error::other(forged) as &(dyn std::error::Error + 'static),
                    "rejected a dossier of {forged}"
                );
            });
            assert_eq!(out.matches('\n').count(), 1, "{out}");
            assert!(out.ends_with('\n'), "{out}");
            assert!(!out.contains('\r') && !out.contains('\u{85}'), "{out}");
            // The message, the Display field and the span field, each escaped once.
            assert!(
                out.matches(r"X\n2026-01-01T00:00:00Z  INFO iocd: forged\r")
                    .count()
                    >= 4,
                "{out}"
            );
            // The value's escape sequence is inert; only the formatter's own colours remain.
            assert!(!out.contains("\u{1b}[2K"), "{out}");
            if !ansi {
                assert!(!out.contains('\u{1b}'), "{out}");
            }
        }
    }

    #[test]
    fn ordinary_values_are_logged_unchanged() {
        let out = text_log(false, || {
            tracing::info!(
                agency = "Sở Tư pháp",
                count = 3,
                "ingest connected to {}",
                "mqtt://b:1883"
            );
        });
        assert!(
            out.ends_with("ingest connected to mqtt://b:1883 agency=\"Sở Tư pháp\" count=3\n"),
            "{out}"
        );
    }

    #[test]
    fn initialising_twice_is_not_an_error() {
        init_logging(LogFormat::Json, "info").unwrap();
        init_logging(LogFormat::Text, "debug").unwrap();
    }
}

//! Turning the file's raw values into typed ones while collecting every problem.
//!
//! In: a value as written (a number, a string) and its dotted key. Out: the typed value
//! (a `Duration` in the key's unit, a `SocketAddr`, …), or `None` with a `(key, problem)`
//! pair recorded, so that one load reports every bad value at once.

use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::time::Duration;

/// Longest accepted duration in hours (10 years): keeps nanosecond arithmetic from overflowing.
pub(super) const MAX_HOURS: i64 = 87_600;
/// Longest accepted duration in seconds (10 years), for the same reason.
pub(super) const MAX_SECS: i64 = MAX_HOURS * 3600;

/// The unit a key's number is in (its name says it: `_ms`, `_secs`, `_hours`).
#[derive(Clone, Copy)]
pub(super) enum Unit {
    Millis,
    Secs,
    Hours,
    Days,
}

/// A listen address that is not an IP address and port.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be an IP address and port such as {example} (got `{text}`: {reason})")]
pub struct ListenAddrError {
    /// What was given.
    pub text: String,
    /// A valid address of the same kind.
    pub example: &'static str,
    /// What the address parser says (in the message; kept out of `source`).
    pub reason: AddrParseError,
}

/// Parses a listen address (`127.0.0.1:8080`, `[::1]:1883`); `example` shows the shape.
///
/// # Errors
/// [`ListenAddrError`], a sentence with the example.
pub fn listen_addr(text: &str, example: &'static str) -> Result<SocketAddr, ListenAddrError> {
    text.parse().map_err(|reason| ListenAddrError {
        text: text.to_owned(),
        example,
        reason,
    })
}

/// Collects `(key, problem)` pairs so that a load reports every problem, not the first.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<(String, String)>);

impl Problems {
    pub(super) fn add(&mut self, key: impl Into<String>, problem: impl fmt::Display) {
        self.0.push((key.into(), problem.to_string()));
    }

    /// Records the error of `result` under `key`; the value when there is none.
    pub(super) fn ok<T, E: fmt::Display>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(key, e)).ok()
    }

    pub(super) fn at_least<T: Copy + PartialOrd + fmt::Display>(
        &mut self,
        key: &str,
        value: T,
        min: T,
    ) -> Option<T> {
        if value < min {
            self.add(key, format!("must be at least {min} (got {value})"));
            return None;
        }
        Some(value)
    }

    pub(super) fn within<T: Copy + PartialOrd + fmt::Display>(
        &mut self,
        key: &str,
        value: T,
        min: T,
        max: T,
    ) -> Option<T> {
        if value < min || value > max {
            self.add(
                key,
                format!("must be between {min} and {max} (got {value})"),
            );
            return None;
        }
        Some(value)
    }

    /// A number of `unit`s from `min` to `max` (both at least 0) as a `Duration`.
    pub(super) fn duration<T>(
        &mut self,
        key: &str,
        value: T,
        (min, max): (T, T),
        unit: Unit,
    ) -> Option<Duration>
    where
        T: Copy + PartialOrd + fmt::Display + Into<i128>,
    {
        let n = u64::try_from(self.within(key, value, min, max)?.into()).ok()?;
        Some(match unit {
            Unit::Millis => Duration::from_millis(n),
            Unit::Secs => Duration::from_secs(n),
            Unit::Hours => Duration::from_secs(n.saturating_mul(3600)),
            Unit::Days => Duration::from_secs(n.saturating_mul(86_400)),
        })
    }

    pub(super) fn finite_non_negative(&mut self, key: &str, value: f64) -> Option<f64> {
        if !value.is_finite() || value < 0.0 {
            self.add(
                key,
                format!("must be a finite number of at least 0 (got {value})"),
            );
            return None;
        }
        Some(value)
    }

    /// Every item of a list through `parse`, the problems keyed `key[i]`.
    pub(super) fn each<T, E: fmt::Display>(
        &mut self,
        key: &str,
        items: &[String],
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<Vec<T>> {
        let parsed: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.ok(&format!("{key}[{i}]"), parse(item)))
            .collect();
        parsed.into_iter().collect()
    }
}

/// One problem on one line; several as an indented list, one per line.
pub(super) fn list_problems(problems: &[(String, String)]) -> String {
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

/// An error and its sources on one line, `: `-separated (a problem is one line of text).
pub(super) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

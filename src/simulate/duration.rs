//! `--duration`: a human duration for the command line.
//!
//! In: text such as `30s`, `10m`, `1h30m`, `250ms`, `2d` or a bare number of seconds. Out:
//! a `Duration`, or a [`DurationError`] that clap shows next to the flag.

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing given.
    #[error("empty duration")]
    Empty,
    /// A unit without a number before it.
    #[error("`{text}`: expected a number before `{unit}`")]
    NoNumber {
        /// The whole duration as given.
        text: String,
        /// The unit that has no number.
        unit: String,
    },
    /// A unit other than ms, s, m, min, h, d.
    #[error("`{text}`: unknown unit `{unit}` (use ms, s, m, h, d)")]
    UnknownUnit {
        /// The whole duration as given.
        text: String,
        /// The unknown unit.
        unit: String,
    },
}

/// Parses a duration such as `500ms`, `30s`, `10m`, `1h`, `1h30m` or `2d` (a bare number
/// is seconds).
///
/// # Errors
/// [`DurationError`], naming what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: u64 = num.parse().map_err(|_| DurationError::NoNumber {
            text: text.to_owned(),
            unit: unit.to_owned(),
        })?;
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                });
            }
        };
        total = total.saturating_add(part);
        rest = next;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(
            parse_duration("10x").unwrap_err().to_string(),
            "`10x`: unknown unit `x` (use ms, s, m, h, d)"
        );
    }
}

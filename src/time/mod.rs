//! Time as iocd sees it: a UTC instant in nanoseconds, a strict RFC 3339 parser for the
//! hot path, and the local calendar (days and minutes in the IOC's time zone).
//!
//! Event times are kept as [`Ts`] (an `i64` of nanoseconds since the Unix epoch) so that
//! ordering keys, windows and durations are plain integer arithmetic. Time-zone rules come
//! from `jiff`; this module never hard-codes an offset.
//!
//! - [`workcal`]: the working calendar (working days and hours, holidays) for "stalled".

pub mod workcal;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NANOS_PER_MIN: i64 = 60 * NANOS_PER_SEC;
/// Nanoseconds in one hour.
pub const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MIN;

/// A UTC instant, nanoseconds since the Unix epoch (1677-09-21 to 2262-04-11: [`Ts::MIN`],
/// [`Ts::MAX`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ts(pub i64);

impl Ts {
    /// The earliest instant a timestamp is read as (1677-09-21): earlier ones are clamped
    /// to it. `i64::MIN` itself stays free, as the "none" marker of compact storage.
    pub const MIN: Ts = Ts(i64::MIN + 1);
    /// The latest instant a timestamp is read as (2262-04-11): later ones are clamped to it.
    pub const MAX: Ts = Ts(i64::MAX);

    /// The daemon's clock now.
    #[must_use]
    pub fn now() -> Self {
        let ts = jiff::Timestamp::now();
        Self(ts.as_nanosecond().try_into().unwrap_or(i64::MAX))
    }

    /// The instant of the grid of `step` (multiples of `step` since the epoch) at or before
    /// `self`: replicas whose clocks agree evaluate their alerts at the same instants, so a
    /// condition that turns true between two of them gets the same `since` on each
    /// (docs/ha.md). A zero `step` leaves `self` as it is.
    #[must_use]
    pub fn floor_to(self, step: std::time::Duration) -> Self {
        let step = i64::try_from(step.as_nanos()).unwrap_or(i64::MAX);
        if step <= 0 {
            return self;
        }
        Self(self.0 - self.0.rem_euclid(step))
    }

    /// How long from `self` until the next instant of the grid of `step` (see
    /// [`Ts::floor_to`]); `step` itself when `self` is on the grid.
    #[must_use]
    pub fn until_next(self, step: std::time::Duration) -> std::time::Duration {
        let on = self.floor_to(step);
        let into = u64::try_from(self.0.saturating_sub(on.0)).unwrap_or(0);
        step.saturating_sub(std::time::Duration::from_nanos(into))
    }

    /// Builds a timestamp from whole seconds since the epoch.
    #[must_use]
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// Unix time in (fractional) seconds, as Prometheus wants it.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// `self + secs` seconds, saturating.
    #[must_use]
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(NANOS_PER_SEC)))
    }

    /// `self - secs` seconds, saturating.
    #[must_use]
    pub const fn minus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_sub(secs.saturating_mul(NANOS_PER_SEC)))
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn secs_since(self, earlier: Ts) -> f64 {
        (self.0.saturating_sub(earlier.0)) as f64 / NANOS_PER_SEC as f64
    }

    /// Formats as RFC 3339 in the given zone, with milliseconds (`2026-11-24T08:15:02.123+07:00`).
    #[must_use]
    pub fn to_rfc3339(self, tz: &jiff::tz::TimeZone) -> String {
        match jiff::Timestamp::from_nanosecond(i128::from(self.0)) {
            Ok(ts) => ts
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
            Err(_) => String::from("1970-01-01T00:00:00.000Z"),
        }
    }
}

/// Whole seconds of a duration as the `i64` that [`Ts`] arithmetic uses (saturating; the
/// settings cap durations at 10 years, far below).
#[must_use]
pub fn whole_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339(&jiff::tz::TimeZone::UTC))
    }
}

/// Why a timestamp string was refused. Always reported as `invalid_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTimestamp;

/// Parses a strict RFC 3339 timestamp with an offset (`Z`, `z` or `±hh:mm`).
///
/// Strict means: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, a real calendar date in the
/// years 0001 to 9999, `T` or `t` as separator, 1 to 9 fraction digits (more are accepted
/// and truncated). A leap second (`:60`) is accepted where RFC 3339 puts it, at 23:59 UTC,
/// and read as the last nanosecond of 23:59:59 (same day, same minute, never after the
/// next second). An instant outside what [`Ts`] holds is clamped to [`Ts::MIN`] or
/// [`Ts::MAX`] (docs/decisions.md). This runs once per event, so it is hand-written and
/// allocation-free.
///
/// # Errors
/// [`BadTimestamp`] when the text is not such a timestamp.
pub fn parse_rfc3339(s: &str) -> Result<Ts, BadTimestamp> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(BadTimestamp);
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(BadTimestamp);
    }
    if year < 1
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(BadTimestamp);
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(BadTimestamp);
        }
    }
    let offset_secs: i64 = match b.get(i..) {
        Some([b'Z' | b'z']) => 0,
        Some([sign @ (b'+' | b'-'), rest @ ..]) if rest.len() == 5 && rest[2] == b':' => {
            let oh = digits(rest, 0, 2)?;
            let om = digits(rest, 3, 2)?;
            if oh > 23 || om > 59 {
                return Err(BadTimestamp);
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return Err(BadTimestamp),
    };
    let days = days_from_civil(year, month, day);
    let mut secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    if second == 60 {
        // Only the last minute of a UTC day may have a 61st second.
        secs -= 1;
        if secs.rem_euclid(86_400) != 86_399 {
            return Err(BadTimestamp);
        }
        nanos = NANOS_PER_SEC - 1;
    }
    // Years 0001-9999 span about ±2.5e11 s: no overflow in i128 nanoseconds.
    let ns = i128::from(secs) * i128::from(NANOS_PER_SEC) + i128::from(nanos);
    Ok(Ts(
        ns.clamp(i128::from(Ts::MIN.0), i128::from(Ts::MAX.0)) as i64
    ))
}

fn digits(b: &[u8], at: usize, n: usize) -> Result<i64, BadTimestamp> {
    let mut v = 0i64;
    for &c in b.get(at..at + n).ok_or(BadTimestamp)? {
        if !c.is_ascii_digit() {
            return Err(BadTimestamp);
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Ok(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
#[must_use]
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day number since 1970-01-01
/// (Howard Hinnant's algorithm): the inverse of [`days_from_civil`], a few integer
/// operations, cheap enough per event.
#[must_use]
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day number `day` since 1970-01-01 as an ISO date, `2026-12-07`.
#[must_use]
pub fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The IOC's local calendar: maps instants to local days and minutes.
///
/// A local day is numbered as days since 1970-01-01 *in local time*, a local minute as
/// minutes since the local epoch; both are plain integers so they can key windows.
/// Offsets are looked up per instant, so zones with daylight saving work too.
#[derive(Clone, Debug)]
pub struct Calendar {
    tz: jiff::tz::TimeZone,
    /// The offset in seconds the zone keeps from an instant on (Unix ns), when it has no
    /// change after it (before 2200): looked up once, not in the tz database per event
    /// (`Asia/Ho_Chi_Minh`: +07:00 since 1975-06-13).
    settled: Option<(i64, i64)>,
}

impl Calendar {
    /// A calendar in the given zone.
    #[must_use]
    pub fn new(tz: jiff::tz::TimeZone) -> Self {
        let settled = settled_offset(&tz);
        Self { tz, settled }
    }

    /// The zone this calendar uses.
    #[must_use]
    pub fn tz(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }

    /// The local UTC offset in seconds at `ts`.
    #[must_use]
    pub fn offset_secs(&self, ts: Ts) -> i64 {
        if let Some((since, off)) = self.settled
            && ts.0 >= since
        {
            return off;
        }
        match jiff::Timestamp::from_nanosecond(i128::from(ts.0)) {
            Ok(t) => i64::from(self.tz.to_offset(t).seconds()),
            Err(_) => 0,
        }
    }

    /// Local seconds since the local epoch at `ts`.
    fn local_secs(&self, ts: Ts) -> i64 {
        ts.0.div_euclid(NANOS_PER_SEC) + self.offset_secs(ts)
    }

    /// The local day number of `ts`.
    #[must_use]
    pub fn day(&self, ts: Ts) -> i32 {
        i32::try_from(self.local_secs(ts).div_euclid(86_400)).unwrap_or(i32::MAX)
    }

    /// The local minute number of `ts`.
    #[must_use]
    pub fn minute(&self, ts: Ts) -> i64 {
        self.local_secs(ts).div_euclid(60)
    }
}

impl Default for Calendar {
    fn default() -> Self {
        let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh")
            .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(7)));
        Self::new(tz)
    }
}

/// The zone's offset when it is the same at every instant from 1970 to 2200, else `None`.
/// The offset (seconds) the zone has from its last change before 2200 on, and the instant
/// of that change (Unix ns; `i64::MIN` for a zone that never changes); `None` when it
/// still changes after 2200 (daylight saving time).
fn settled_offset(tz: &jiff::tz::TimeZone) -> Option<(i64, i64)> {
    let end = jiff::Timestamp::from_second(7_258_118_400).ok()?; // 2200-01-01
    let off = tz.to_offset(end);
    if tz.following(end).next().is_some_and(|t| t.offset() != off) {
        return None;
    }
    let mut since = i64::MIN;
    for t in tz.preceding(end) {
        if t.offset() != off {
            break;
        }
        since = i64::try_from(t.timestamp().as_nanosecond()).ok()?;
    }
    Some((since, i64::from(off.seconds())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_floors_to_multiples_of_the_step_since_the_epoch() {
        let step = std::time::Duration::from_millis(500);
        assert_eq!(
            Ts(1_700_000_000_250_000_000).floor_to(step),
            Ts(1_700_000_000_000_000_000)
        );
        assert_eq!(
            Ts(1_700_000_000_500_000_000).floor_to(step),
            Ts(1_700_000_000_500_000_000)
        );
        // Before the epoch too: down, not towards zero.
        assert_eq!(Ts(-1).floor_to(step), Ts(-500_000_000));
        assert_eq!(Ts(7).floor_to(std::time::Duration::ZERO), Ts(7));
        assert_eq!(
            Ts(1_700_000_000_100_000_000).until_next(step),
            std::time::Duration::from_millis(400)
        );
        assert_eq!(Ts(1_700_000_000_000_000_000).until_next(step), step);
    }

    #[test]
    fn the_settled_offset_is_used_only_after_the_zone_settled() {
        let hcm = Calendar::new(jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap());
        let since = hcm.settled.expect("settled since 1975").0;
        let at = |s: &str| {
            Ts(i64::try_from(s.parse::<jiff::Timestamp>().unwrap().as_nanosecond()).unwrap())
        };
        assert_eq!(since, at("1975-06-12T16:00:00Z").0);
        assert_eq!(hcm.offset_secs(at("1975-06-01T00:00:00Z")), 8 * 3600);
        assert_eq!(hcm.offset_secs(at("2026-11-24T01:00:00Z")), 7 * 3600);
        let utc = Calendar::new(jiff::tz::TimeZone::UTC);
        assert_eq!(utc.settled, Some((i64::MIN, 0)));
        let paris = Calendar::new(jiff::tz::TimeZone::get("Europe/Paris").unwrap());
        assert_eq!(paris.settled, None);
        assert_eq!(paris.offset_secs(at("2026-07-01T00:00:00Z")), 2 * 3600);
        assert_eq!(paris.offset_secs(at("2026-12-01T00:00:00Z")), 3600);
    }

    #[test]
    fn parses_offsets_and_fractions_to_the_same_instant() {
        let a = parse_rfc3339("2026-11-24T08:15:02.123+07:00").unwrap();
        let b = parse_rfc3339("2026-11-24T01:15:02.123Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0 % NANOS_PER_SEC, 123_000_000);
        let j: jiff::Timestamp = "2026-11-24T01:15:02.123Z".parse().unwrap();
        assert_eq!(i128::from(a.0), j.as_nanosecond());
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T08:15:02",
            "2026-11-24 08:15:02Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T08:15:60Z",
            "2026-11-24T08:15:02.Z",
            "2026-11-24T08:15:02+0700",
            "2026-11-24T08:15:02+07:00 ",
            "20261124T081502Z",
            "0000-01-01T00:00:00Z",
            "2016-12-31T23:59:60+07:00",
            "2016-12-31T23:58:60Z",
            "2016-12-31T23:59:61Z",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(BadTimestamp), "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00z").is_ok());
    }

    #[test]
    fn the_whole_rfc_3339_range_is_read_and_clamped_to_what_ts_holds() {
        let max = parse_rfc3339("9999-12-31T23:59:59.999999999Z").unwrap();
        assert_eq!(max, Ts::MAX);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59-23:59").unwrap(), Ts::MAX);
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z").unwrap(), Ts::MIN);
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00+23:59").unwrap(), Ts::MIN);
        assert_ne!(Ts::MIN.0, i64::MIN, "i64::MIN is storage's `none` marker");
        // The edges of `Ts` themselves, to the nanosecond, and one past them.
        let last: jiff::Timestamp = "2262-04-11T23:47:16.854775807Z".parse().unwrap();
        assert_eq!(last.as_nanosecond(), i128::from(i64::MAX));
        assert_eq!(
            parse_rfc3339("2262-04-11T23:47:16.854775807Z").unwrap(),
            Ts::MAX
        );
        assert_eq!(
            parse_rfc3339("2262-04-11T23:47:16.854775806Z").unwrap(),
            Ts(i64::MAX - 1)
        );
        assert_eq!(
            parse_rfc3339("1677-09-21T00:12:43.145224193Z").unwrap(),
            Ts::MIN
        );
        assert_eq!(
            parse_rfc3339("1677-09-21T00:12:43.145224194Z").unwrap(),
            Ts(i64::MIN + 2)
        );
        assert_eq!(
            parse_rfc3339("1677-09-21T00:12:43.145224192Z").unwrap(),
            Ts::MIN
        );
        // Far edges stay ordered against ordinary instants and format without failing.
        let now = parse_rfc3339("2026-11-24T08:15:02Z").unwrap();
        assert!(Ts::MIN < now && now < Ts::MAX);
        assert_eq!(Ts::MAX.to_string(), "2262-04-11T23:47:16.854+00:00");
        assert_eq!(Calendar::default().day(Ts::MIN), -106_752);
    }

    #[test]
    fn a_leap_second_is_the_last_nanosecond_of_the_minute_it_ends() {
        let leap = parse_rfc3339("2016-12-31T23:59:60Z").unwrap();
        let before = parse_rfc3339("2016-12-31T23:59:59.999999999Z").unwrap();
        let next = parse_rfc3339("2017-01-01T00:00:00Z").unwrap();
        assert_eq!(leap, before);
        assert_eq!(leap.0 + 1, next.0);
        // The fraction of the leap second does not move it past the next minute.
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60.75Z").unwrap(), leap);
        // Written in another zone, it is the same UTC instant.
        assert_eq!(parse_rfc3339("2017-01-01T06:59:60+07:00").unwrap(), leap);
        assert_eq!(parse_rfc3339("2016-12-31T23:29:60-00:30").unwrap(), leap);
        // Any month's last minute may carry one: RFC 3339 leaves the list to IERS.
        assert!(parse_rfc3339("2026-06-30T23:59:60Z").is_ok());
        let cal = Calendar::default();
        assert_eq!(cal.minute(leap), cal.minute(before));
    }

    #[test]
    fn local_days_follow_the_configured_zone() {
        let cal = Calendar::default();
        let before = parse_rfc3339("2026-11-24T23:59:59.999+07:00").unwrap();
        let after = parse_rfc3339("2026-11-25T00:00:00+07:00").unwrap();
        assert_eq!(cal.day(before) + 1, cal.day(after));
        // 16:59:59Z is still the 24th in Vietnam, 17:00Z the 25th.
        assert_eq!(
            cal.day(parse_rfc3339("2026-11-24T16:59:59Z").unwrap()),
            cal.day(before)
        );
        assert_eq!(
            cal.day(parse_rfc3339("2026-11-24T17:00:00Z").unwrap()),
            cal.day(after)
        );
    }

    #[test]
    fn formatting_round_trips() {
        let cal = Calendar::default();
        let t = parse_rfc3339("2026-11-24T08:15:02.123+07:00").unwrap();
        assert_eq!(t.to_rfc3339(cal.tz()), "2026-11-24T08:15:02.123+07:00");
    }
}

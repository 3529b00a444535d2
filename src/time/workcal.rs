//! The working calendar: which local hours are working hours, so that "stalled for 48
//! working hours" does not fire over a weekend or Tết.
//!
//! In: working weekdays, working hours (`HH:MM-HH:MM`) and a holiday file, as the
//! `[calendar]` settings give them. Out: a [`WorkCalendar`] answering "working seconds
//! between two instants", or a [`CalendarError`] / [`HolidayError`] naming the bad value.
//!
//! A day is a working day when its weekday is a working weekday and it is not a public
//! holiday or compensatory day off, or when it is a make-up working day (a Saturday worked
//! in exchange for a bridge day off). Holidays come from a data file the operator edits
//! (`config/holidays-vn.toml`); lunar dates are never computed here. The file is read once,
//! by [`Holidays::read`], when the settings are loaded.
//!
//! For speed, the calendar keeps the cumulative working seconds at the start of every local
//! day from 2000 to 2100, so the working time between two instants is two lookups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::civil::Weekday;
use serde::Deserialize;

use crate::time::{Calendar, NANOS_PER_SEC, Ts};

/// First local day of the table (2000-01-01 as days since 1970-01-01).
const FIRST_DAY: i64 = 10_957;
/// Days in the table (2000-01-01 to 2100-12-31).
const DAYS: usize = 36_890;

/// What a dated entry of the holiday file does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A public holiday: no work.
    Holiday,
    /// A compensatory or bridge day off: no work.
    DayOff,
    /// A make-up working day (typically a Saturday): work.
    Workday,
}

/// One entry of the holiday file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayEntry {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// What the day is.
    pub kind: DayKind,
    /// Its name (Tết Nguyên đán, Giỗ Tổ Hùng Vương, …).
    pub name: String,
    /// The document that decides it.
    pub source: String,
    /// Not yet confirmed by a published notice (a schedule the Government has not announced):
    /// used all the same, and shown in the log and `/readyz` while it is near.
    #[serde(default)]
    pub provisional: bool,
}

/// The holiday file as written: `[[day]]` entries.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayFile {
    /// The dated entries.
    #[serde(default)]
    pub day: Vec<DayEntry>,
}

/// The shipped holiday file, used when no other is configured.
pub const DEFAULT_HOLIDAYS: &str = include_str!("../../config/holidays-vn.toml");
/// How errors name the shipped holiday file.
pub const DEFAULT_HOLIDAYS_NAME: &str = "config/holidays-vn.toml";

/// A working weekday, working hours or their combination that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not one of `mon` … `sun`.
    #[error("`{0}` is not one of mon, tue, wed, thu, fri, sat, sun")]
    Weekday(String),
    /// Not `HH:MM-HH:MM` with the start before the end.
    #[error("`{0}` is not HH:MM-HH:MM with the start before the end")]
    Interval(String),
    /// Two intervals of working hours overlap.
    #[error("working hours overlap")]
    Overlap,
}

/// A holiday file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HolidayError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file as configured.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or not `[[day]]` entries with `date`, `kind`, `name` and `source`.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// What the TOML parser says, on one line.
        message: String,
    },
    /// An entry's date is not a date.
    #[error("{origin}: `{date}` ({name}) is not a YYYY-MM-DD date")]
    Date {
        /// The file.
        origin: String,
        /// The date as written.
        date: String,
        /// The entry's name.
        name: String,
    },
}

/// The holidays, compensatory days off and make-up working days of a holiday file, with
/// their dates parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holidays {
    /// Local day number (days since 1970-01-01) and what the day is, in file order.
    days: Vec<(i64, DayKind)>,
    /// The provisional entries: local day number, `YYYY-MM-DD` and name, in file order.
    provisional: Vec<(i64, String, String)>,
}

impl Holidays {
    /// The shipped `config/holidays-vn.toml`, built into the binary.
    ///
    /// # Errors
    /// [`HolidayError`] if the shipped file is broken (a test keeps it valid).
    pub fn shipped() -> Result<Self, HolidayError> {
        Self::parse(DEFAULT_HOLIDAYS, DEFAULT_HOLIDAYS_NAME)
    }

    /// Reads and parses the holiday file at `path`.
    ///
    /// # Errors
    /// [`HolidayError`] naming the file: unreadable, not TOML, or a bad date.
    pub fn read(path: &Path) -> Result<Self, HolidayError> {
        let text = std::fs::read_to_string(path).map_err(|source| HolidayError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a holiday file; `origin` names it in errors.
    ///
    /// # Errors
    /// [`HolidayError::Syntax`] or [`HolidayError::Date`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, HolidayError> {
        let file: HolidayFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().replace('\n', "; ");
            let line = e.span().map(|span| {
                let end = span.start.min(text.len());
                text.get(..end).unwrap_or(text).matches('\n').count() + 1
            });
            HolidayError::Syntax {
                origin: origin.to_owned(),
                message: line.map_or(message.clone(), |line| format!("line {line}: {message}")),
            }
        })?;
        let days = file
            .day
            .iter()
            .map(|e| {
                parse_date(&e.date)
                    .map(|day| (day, e.kind))
                    .ok_or_else(|| HolidayError::Date {
                        origin: origin.to_owned(),
                        date: e.date.clone(),
                        name: e.name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let provisional = file
            .day
            .iter()
            .zip(&days)
            .filter(|(e, _)| e.provisional)
            .map(|(e, (day, _))| (*day, e.date.clone(), e.name.clone()))
            .collect();
        Ok(Self { days, provisional })
    }

    /// The provisional entries (`YYYY-MM-DD`, name) whose local day is from `from` to `to`
    /// (days since 1970-01-01, both included): what the calendar relies on unconfirmed.
    pub fn provisional_between(&self, from: i64, to: i64) -> impl Iterator<Item = (&str, &str)> {
        self.provisional
            .iter()
            .filter(move |(day, _, _)| (from..=to).contains(day))
            .map(|(_, date, name)| (date.as_str(), name.as_str()))
    }

    /// How many dated entries there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// Working hours and days, with the cumulative table.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkCalendar {
    /// Working intervals of a working day, as local seconds since midnight.
    hours: Vec<(i64, i64)>,
    /// Cumulative working seconds at the start of each table day.
    cumulative: Vec<i64>,
    /// Whether each table day is a working day.
    working: Vec<bool>,
}

/// Parses `HH:MM-HH:MM` into local seconds since midnight.
///
/// # Errors
/// [`CalendarError::Interval`].
pub fn parse_interval(s: &str) -> Result<(i64, i64), CalendarError> {
    let hm = |t: &str| -> Option<i64> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60)
            .then_some(h * 3600 + m * 60)
    };
    let bad = || CalendarError::Interval(s.to_owned());
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    match (hm(a), hm(b)) {
        (Some(a), Some(b)) if a < b => Ok((a, b)),
        _ => Err(bad()),
    }
}

/// Parses a weekday name (`mon` … `sun`, any case).
///
/// # Errors
/// [`CalendarError::Weekday`].
pub fn parse_weekday(s: &str) -> Result<Weekday, CalendarError> {
    const NAMES: [(&str, Weekday); 7] = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|&(_, day)| day)
        .ok_or_else(|| CalendarError::Weekday(s.to_owned()))
}

/// The working intervals sorted by start.
///
/// # Errors
/// [`CalendarError::Overlap`] when two of them overlap.
pub fn sorted_hours(hours: &[(i64, i64)]) -> Result<Vec<(i64, i64)>, CalendarError> {
    let mut sorted = hours.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err(CalendarError::Overlap);
    }
    Ok(sorted)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_date(s: &str) -> Option<i64> {
    let ts = crate::time::parse_rfc3339(&format!("{s}T00:00:00Z")).ok()?;
    Some(ts.0.div_euclid(86_400 * NANOS_PER_SEC))
}

impl WorkCalendar {
    /// Builds the calendar from typed working days, working hours (local seconds since
    /// midnight) and holidays.
    ///
    /// # Errors
    /// [`CalendarError::Overlap`] when working hours overlap.
    pub fn new(
        weekdays: &[Weekday],
        hours: &[(i64, i64)],
        holidays: &Holidays,
    ) -> Result<Self, CalendarError> {
        let mut work_weekday = [false; 7];
        for d in weekdays {
            work_weekday[usize::try_from(d.to_monday_zero_offset()).unwrap_or(0)] = true;
        }
        let intervals = sorted_hours(hours)?;
        let special: HashMap<i64, DayKind> = holidays.days.iter().copied().collect();
        let per_day: i64 = intervals.iter().map(|(a, b)| b - a).sum();
        let mut cumulative = Vec::with_capacity(DAYS + 1);
        let mut working = Vec::with_capacity(DAYS);
        let mut total = 0i64;
        for i in 0..DAYS {
            let day = FIRST_DAY + i as i64;
            // 1970-01-01 was a Thursday (index 3).
            let weekday = usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0);
            let works = match special.get(&day) {
                Some(DayKind::Holiday | DayKind::DayOff) => false,
                Some(DayKind::Workday) => true,
                None => work_weekday[weekday],
            };
            cumulative.push(total);
            working.push(works);
            if works {
                total += per_day;
            }
        }
        cumulative.push(total);
        Ok(Self {
            hours: intervals,
            cumulative,
            working,
        })
    }

    /// Working seconds from the table's start to `ts` (clamped to the table).
    #[must_use]
    pub fn working_secs_at(&self, cal: &Calendar, ts: Ts) -> i64 {
        let local = ts.0.div_euclid(NANOS_PER_SEC) + cal.offset_secs(ts);
        let day = local.div_euclid(86_400) - FIRST_DAY;
        let Ok(i) = usize::try_from(day) else {
            return 0;
        };
        if i >= DAYS {
            return self.cumulative[DAYS];
        }
        let into = local.rem_euclid(86_400);
        let today: i64 = if self.working[i] {
            self.hours
                .iter()
                .map(|&(a, b)| (into.min(b) - a).max(0))
                .sum()
        } else {
            0
        };
        self.cumulative[i] + today
    }

    /// Working seconds between `from` and `to` (0 when `to` is not later).
    #[must_use]
    pub fn working_secs_between(&self, cal: &Calendar, from: Ts, to: Ts) -> i64 {
        (self.working_secs_at(cal, to) - self.working_secs_at(cal, from)).max(0)
    }

    /// Whether the local day of `ts` is a working day.
    #[must_use]
    pub fn is_working_day(&self, cal: &Calendar, ts: Ts) -> bool {
        usize::try_from(i64::from(cal.day(ts)) - FIRST_DAY)
            .ok()
            .and_then(|i| self.working.get(i))
            .copied()
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn vn() -> WorkCalendar {
        let days = ["mon", "tue", "wed", "thu", "fri"].map(|d| parse_weekday(d).unwrap());
        let hours = [
            parse_interval("07:30-11:30").unwrap(),
            parse_interval("13:30-17:00").unwrap(),
        ];
        WorkCalendar::new(&days, &hours, &Holidays::shipped().unwrap()).unwrap()
    }

    fn t(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    const H: i64 = 3600;

    #[test]
    fn a_working_day_has_seven_and_a_half_hours_without_the_lunch_break() {
        let c = vn();
        let cal = Calendar::default();
        // Tuesday 24 November 2026.
        assert_eq!(
            c.working_secs_between(
                &cal,
                t("2026-11-24T00:00:00+07:00"),
                t("2026-11-25T00:00:00+07:00")
            ),
            7 * H + H / 2
        );
        assert_eq!(
            c.working_secs_between(
                &cal,
                t("2026-11-24T11:00:00+07:00"),
                t("2026-11-24T14:00:00+07:00")
            ),
            H
        );
    }

    #[test]
    fn a_weekend_counts_no_working_time() {
        let c = vn();
        let cal = Calendar::default();
        // Friday 17:00 to Monday 07:30.
        assert_eq!(
            c.working_secs_between(
                &cal,
                t("2026-11-27T17:00:00+07:00"),
                t("2026-11-30T07:30:00+07:00")
            ),
            0
        );
        assert!(!c.is_working_day(&cal, t("2026-11-28T10:00:00+07:00")));
    }

    #[test]
    fn national_day_2026_swaps_monday_31_august_with_saturday_22_august() {
        let c = vn();
        let cal = Calendar::default();
        for (at, working, what) in [
            ("2026-08-22T09:00:00+07:00", true, "the make-up Saturday"),
            ("2026-08-31T09:00:00+07:00", false, "the bridge Monday"),
            ("2026-09-01T09:00:00+07:00", false, "the adjacent day"),
            ("2026-09-02T09:00:00+07:00", false, "Quốc khánh"),
            ("2026-09-03T09:00:00+07:00", true, "the Thursday after"),
        ] {
            assert_eq!(c.is_working_day(&cal, t(at)), working, "{what}");
        }
    }

    #[test]
    fn provisional_entries_are_listed_by_date_range() {
        let h = Holidays::shipped().expect("the shipped file parses");
        let day = |s: &str| i64::from(Calendar::default().day(t(s)));
        let in_2026: Vec<(&str, &str)> = h
            .provisional_between(
                day("2026-01-01T12:00:00+07:00"),
                day("2026-12-31T12:00:00+07:00"),
            )
            .collect();
        assert!(in_2026.is_empty(), "2026 is published: {in_2026:?}");
        let in_2027: Vec<&str> = h
            .provisional_between(
                day("2027-01-01T12:00:00+07:00"),
                day("2027-12-31T12:00:00+07:00"),
            )
            .map(|(date, _)| date)
            .collect();
        assert!(in_2027.contains(&"2027-02-05"), "{in_2027:?}");
        assert!(
            !in_2027.contains(&"2027-09-02"),
            "a fixed statutory day: {in_2027:?}"
        );
    }

    #[test]
    fn tet_2026_is_nine_days_off() {
        let c = vn();
        let cal = Calendar::default();
        // Friday 13 February 17:00 to Monday 23 February 07:30: Tết Bính Ngọ.
        assert_eq!(
            c.working_secs_between(
                &cal,
                t("2026-02-13T17:00:00+07:00"),
                t("2026-02-23T07:30:00+07:00")
            ),
            0
        );
        assert!(
            !c.is_working_day(&cal, t("2026-02-16T10:00:00+07:00")),
            "a Monday within Tết"
        );
    }

    #[test]
    fn intervals_and_weekdays_are_validated() {
        assert_eq!(parse_interval("07:30-11:30"), Ok((27_000, 41_400)));
        assert!(parse_interval("11:30-07:30").is_err());
        assert!(parse_interval("7-11").is_err());
        assert!(parse_weekday("Mon").is_ok());
        assert!(parse_weekday("monday").is_err());
        assert_eq!(
            parse_weekday("monday").unwrap_err().to_string(),
            "`monday` is not one of mon, tue, wed, thu, fri, sat, sun"
        );
        assert_eq!(
            sorted_hours(&[(40_000, 50_000), (27_000, 41_400)]),
            Err(CalendarError::Overlap)
        );
    }

    #[test]
    fn a_bad_holiday_date_or_file_is_named() {
        let text =
            "[[day]]\ndate = \"2026-02-30\"\nkind = \"holiday\"\nname = \"X\"\nsource = \"Y\"\n";
        let err = Holidays::parse(text, "h.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.toml: `2026-02-30` (X) is not a YYYY-MM-DD date"
        );
        let err = Holidays::read(Path::new("/nonexistent/h.toml")).unwrap_err();
        assert!(matches!(err, HolidayError::Unreadable { .. }), "{err}");
        let err = Holidays::parse("[[day]]\ndate = 1\n", "h.toml").unwrap_err();
        assert!(err.to_string().starts_with("h.toml: line 2: "), "{err}");
    }
}

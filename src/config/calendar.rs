//! `[calendar]`: working days and hours, and the holiday file, for "stalled" in working time.
//!
//! In: the `[calendar]` table as written. Out: [`CalendarSettings`] with the weekdays and
//! hours parsed and, when the calendar is on, the holiday file read (once, here), or the
//! problems keyed `calendar.*`. The calendar itself lives with time
//! ([`crate::time::workcal`]); [`CalendarSettings::build`] makes it.

use std::path::PathBuf;

use jiff::civil::Weekday;
use serde::Deserialize;

use super::check::{Problems, chain};
use crate::time::workcal::{
    CalendarError, Holidays, WorkCalendar, parse_interval, parse_weekday, sorted_hours,
};

/// `[calendar]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CalendarFile {
    enabled: bool,
    working_days: Vec<String>,
    working_hours: Vec<String>,
    holidays_file: String,
}

/// `[calendar]`: working days and hours, and the holidays.
#[derive(Clone, Debug, PartialEq)]
pub struct CalendarSettings {
    /// When on, "stalled" counts working hours instead of calendar hours.
    pub enabled: bool,
    /// Working weekdays.
    pub working_days: Vec<Weekday>,
    /// Working hours of a working day, as local seconds since midnight, without overlap.
    pub working_hours: Vec<(i64, i64)>,
    /// `holidays_file` as configured; `None` for the shipped `config/holidays-vn.toml`.
    pub holidays_file: Option<PathBuf>,
    /// The holidays: those of `holidays_file`, read at load when the calendar is on;
    /// otherwise the shipped ones (the file is not read while the calendar is off).
    pub holidays: Holidays,
}

impl CalendarSettings {
    /// The working calendar, when enabled.
    ///
    /// # Errors
    /// [`CalendarError::Overlap`] when working hours overlap (refused at load already).
    pub fn build(&self) -> Result<Option<WorkCalendar>, CalendarError> {
        if !self.enabled {
            return Ok(None);
        }
        WorkCalendar::new(&self.working_days, &self.working_hours, &self.holidays).map(Some)
    }
}

impl CalendarFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<CalendarSettings> {
        let working_days = p.each("calendar.working_days", &self.working_days, parse_weekday);
        let working_hours = p.each(
            "calendar.working_hours",
            &self.working_hours,
            parse_interval,
        );
        if let Some(hours) = &working_hours {
            p.ok("calendar.working_hours", sorted_hours(hours));
        }
        let holidays_file =
            (!self.holidays_file.is_empty()).then(|| PathBuf::from(&self.holidays_file));
        let holidays = match (&holidays_file, self.enabled) {
            (Some(path), true) => Holidays::read(path),
            _ => Holidays::shipped(),
        };
        let holidays = p.ok("calendar.holidays_file", holidays.map_err(|e| chain(&e)));
        Some(CalendarSettings {
            enabled: self.enabled,
            working_days: working_days?,
            working_hours: working_hours?,
            holidays_file,
            holidays: holidays?,
        })
    }
}

//! The simulated province's sense of time: local days, office hours with the lunch break,
//! working-day deadlines, and the intensity of citizen activity over the day and the week.
//!
//! Desk work (receiving, transferring, resolving) is scheduled in *office seconds*, a clock
//! that only runs Monday to Friday, 07:30–11:30 and 13:30–17:00 local time, so that a delay
//! of "two working hours" lands after the lunch break or on Monday as a real office would.
//! In [`Rhythm::Busy`] every instant is office time (load tests and the demo). The zone is
//! the IOC default, `Asia/Ho_Chi_Minh` (UTC+07:00 since 1975, no daylight saving); public
//! holidays are not modelled.

use crate::time::{Calendar, Ts, civil_from_days};

/// Seconds in a day.
pub const DAY_SECS: i64 = 86_400;
/// Office seconds in a working day (7 h 30 min).
pub const OFFICE_DAY_SECS: i64 = 27_000;
/// Morning window, seconds after local midnight: 07:30–11:30.
const MORNING: (i64, i64) = (7 * 3600 + 1800, 11 * 3600 + 1800);
/// Afternoon window: 13:30–17:00.
const AFTERNOON: (i64, i64) = (13 * 3600 + 1800, 17 * 3600);
/// Deadlines fall at 17:00 local on their day.
const DUE_TIME_SECS: i64 = AFTERNOON.1;

/// How activity is spread over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rhythm {
    /// The real week: office hours with the lunch break, quiet nights and weekends.
    Daily,
    /// Always a busy weekday office hour: steady load tests and a lively demo at any time.
    Busy,
}

/// Local time arithmetic for the simulation.
#[derive(Clone, Debug)]
pub struct Clock {
    rhythm: Rhythm,
    offset_secs: i64,
    /// In the busy rhythm, how much faster than real time office time runs (1: not).
    compression: i64,
}

impl Clock {
    /// A clock in the IOC's default zone, with its UTC offset as of `at` (the zone's
    /// offset history matters: Saigon was UTC+08:00 until 1975).
    #[must_use]
    pub fn new(rhythm: Rhythm, at: Ts) -> Self {
        Self {
            rhythm,
            offset_secs: Calendar::default().offset_secs(at),
            compression: 1,
        }
    }

    /// The same clock with office time running `factor` times faster than real time in
    /// the busy rhythm: desk work and deadlines shrink, everything else keeps real time.
    #[must_use]
    pub fn compressed(mut self, factor: u32) -> Self {
        if self.rhythm == Rhythm::Busy {
            self.compression = i64::from(factor.max(1));
        }
        self
    }

    /// Office seconds per real second while the office is open.
    #[must_use]
    pub fn office_speed(&self) -> f64 {
        self.compression as f64
    }

    /// The rhythm in force.
    #[must_use]
    pub fn rhythm(&self) -> Rhythm {
        self.rhythm
    }

    /// The local UTC offset in seconds.
    #[must_use]
    pub fn offset_secs(&self) -> i64 {
        self.offset_secs
    }

    /// Local day number (days since 1970-01-01 local) and seconds since local midnight.
    #[must_use]
    pub fn local(&self, ts: Ts) -> (i64, i64) {
        let secs = ts.0.div_euclid(crate::time::NANOS_PER_SEC) + self.offset_secs;
        (secs.div_euclid(DAY_SECS), secs.rem_euclid(DAY_SECS))
    }

    /// The instant of `secs` after local midnight of `day`.
    #[must_use]
    pub fn at_local(&self, day: i64, secs: i64) -> Ts {
        Ts::from_secs(day * DAY_SECS + secs - self.offset_secs)
    }

    /// Whether the local `day` is Monday to Friday.
    #[must_use]
    pub fn is_working_day(day: i64) -> bool {
        weekday(day) < 5
    }

    /// Whether `ts` is inside office hours.
    #[must_use]
    pub fn in_office(&self, ts: Ts) -> bool {
        if self.rhythm == Rhythm::Busy {
            return true;
        }
        let (day, tod) = self.local(ts);
        Self::is_working_day(day)
            && ((MORNING.0..MORNING.1).contains(&tod) || (AFTERNOON.0..AFTERNOON.1).contains(&tod))
    }

    /// Office seconds elapsed at `ts` (a clock that only runs in office hours). Outside
    /// office hours it reads the value of the last office instant before `ts`.
    #[must_use]
    pub fn office_secs(&self, ts: Ts) -> i64 {
        if self.rhythm == Rhythm::Busy {
            let nanos = i128::from(ts.0) * i128::from(self.compression);
            return i64::try_from(nanos.div_euclid(i128::from(crate::time::NANOS_PER_SEC)))
                .unwrap_or(i64::MAX);
        }
        let (day, tod) = self.local(ts);
        let before = working_days_before(day) * OFFICE_DAY_SECS;
        if !Self::is_working_day(day) {
            return before;
        }
        let within = match tod {
            t if t < MORNING.0 => 0,
            t if t < MORNING.1 => t - MORNING.0,
            t if t < AFTERNOON.0 => MORNING.1 - MORNING.0,
            t if t < AFTERNOON.1 => (MORNING.1 - MORNING.0) + t - AFTERNOON.0,
            _ => OFFICE_DAY_SECS,
        };
        before + within
    }

    /// The instant at which the office clock reads `x` (always inside office hours).
    #[must_use]
    pub fn from_office_secs(&self, x: i64) -> Ts {
        if self.rhythm == Rhythm::Busy {
            let nanos = i128::from(x) * i128::from(crate::time::NANOS_PER_SEC);
            let c = i128::from(self.compression);
            // Rounded up, so that the office clock reads at least `x` there.
            return Ts(i64::try_from((nanos + c - 1).div_euclid(c)).unwrap_or(i64::MAX));
        }
        let index = x.div_euclid(OFFICE_DAY_SECS);
        let rem = x.rem_euclid(OFFICE_DAY_SECS);
        let day = nth_working_day(index);
        let morning = MORNING.1 - MORNING.0;
        let tod = if rem < morning {
            MORNING.0 + rem
        } else {
            AFTERNOON.0 + rem - morning
        };
        self.at_local(day, tod)
    }

    /// The instant `office_secs` of office time after `ts` (or after the next opening when
    /// `ts` is outside office hours).
    #[must_use]
    pub fn after_office(&self, ts: Ts, office_secs: i64) -> Ts {
        self.from_office_secs(self.office_secs(ts) + office_secs.max(1))
    }

    /// The deadline of a procedure with a limit of `working_days` received at `received`:
    /// 17:00 local on the `working_days`-th working day after the day of receipt (weekends
    /// skipped; the one-stop system, not iocd, computes this in real life). In the busy
    /// rhythm every day counts, so that deadlines fall due at any time of the week; with
    /// compression a working day is a compressed day after receipt.
    #[must_use]
    pub fn due_at(&self, received: Ts, working_days: u32) -> Ts {
        if self.compression > 1 {
            let days = i64::from(working_days.max(1));
            return self.from_office_secs(self.office_secs(received) + days * DAY_SECS);
        }
        let (mut day, _) = self.local(received);
        let mut left = working_days.max(1);
        while left > 0 {
            day += 1;
            if self.rhythm == Rhythm::Busy || Self::is_working_day(day) {
                left -= 1;
            }
        }
        self.at_local(day, DUE_TIME_SECS)
    }

    /// Relative intensity (0 to 1) of citizens filing online at `ts`: office hours at 1,
    /// evenings still busy, nights quiet, weekends at about a third.
    #[must_use]
    pub fn citizen_weight(&self, ts: Ts) -> f64 {
        if self.rhythm == Rhythm::Busy {
            return 1.0;
        }
        let (day, tod) = self.local(ts);
        let hour = usize::try_from(tod / 3600).unwrap_or(0).min(23);
        let w = CITIZEN_BY_HOUR[hour];
        if Self::is_working_day(day) {
            w
        } else {
            w * WEEKEND_FACTOR
        }
    }

    /// The citizen weight of the real week integrated over one week, in weight-hours:
    /// divides a weekly volume into a peak hourly rate (the same in both rhythms).
    #[must_use]
    pub fn citizen_week_hours() -> f64 {
        let day: f64 = CITIZEN_BY_HOUR.iter().sum();
        day * (5.0 + 2.0 * WEEKEND_FACTOR)
    }

    /// Office seconds in one working day: 7 h 30 min in the real week; a whole day in the
    /// busy rhythm, where every second is office time and every day a working day.
    #[must_use]
    pub fn workday_secs(&self) -> f64 {
        match self.rhythm {
            Rhythm::Daily => OFFICE_DAY_SECS as f64,
            Rhythm::Busy => DAY_SECS as f64,
        }
    }

    /// RFC 3339 with milliseconds, in local time (`2026-11-24T08:15:02.123+07:00`) or UTC
    /// (`2026-11-24T01:15:02.123Z`, as SIEMs write it).
    #[must_use]
    pub fn rfc3339(&self, ts: Ts, utc: bool) -> String {
        let offset = if utc { 0 } else { self.offset_secs };
        let nanos = crate::time::NANOS_PER_SEC;
        let secs = ts.0.div_euclid(nanos) + offset;
        let ms = ts.0.rem_euclid(nanos) / 1_000_000;
        let (y, mo, d) = civil_from_days(secs.div_euclid(DAY_SECS));
        let tod = secs.rem_euclid(DAY_SECS);
        let (h, mi, s) = (tod / 3600, tod / 60 % 60, tod % 60);
        let zone = if utc {
            "Z".to_owned()
        } else {
            let sign = if offset < 0 { '-' } else { '+' };
            format!(
                "{sign}{:02}:{:02}",
                offset.abs() / 3600,
                offset.abs() / 60 % 60
            )
        };
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}{zone}")
    }

    /// `yymmdd` of the local day of `ts`, as one-stop dossier numbers carry it.
    #[must_use]
    pub fn yymmdd(&self, ts: Ts) -> u32 {
        let (day, _) = self.local(ts);
        let (y, m, d) = civil_from_days(day);
        u32::try_from((y.rem_euclid(100)) * 10_000 + m * 100 + d).unwrap_or(0)
    }

    /// The calendar year of the local day of `ts`.
    #[must_use]
    pub fn year(&self, ts: Ts) -> i64 {
        civil_from_days(self.local(ts).0).0
    }
}

/// Citizens filing online, per local hour, relative to a weekday morning.
const CITIZEN_BY_HOUR: [f64; 24] = [
    0.04, 0.02, 0.02, 0.02, 0.03, 0.08, 0.25, 0.6, 1.0, 1.0, 1.0, 0.8, 0.5, 0.6, 0.9, 0.95, 0.85,
    0.6, 0.45, 0.5, 0.55, 0.45, 0.25, 0.1,
];
/// Weekend activity relative to a weekday.
const WEEKEND_FACTOR: f64 = 0.35;

/// Weekday of a local day number, 0 = Monday (1970-01-01 was a Thursday).
#[must_use]
pub fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Working days (Monday to Friday) in local days `[0, day)`, relative to a fixed origin;
/// only differences and [`nth_working_day`] use it.
fn working_days_before(day: i64) -> i64 {
    let m = day + 3; // days since the Monday before the epoch
    m.div_euclid(7) * 5 + m.rem_euclid(7).min(5)
}

/// The local day whose [`working_days_before`] is `n` and which is a working day.
fn nth_working_day(n: i64) -> i64 {
    n.div_euclid(5) * 7 + n.rem_euclid(5) - 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn office_seconds_skip_lunch_nights_and_weekends() {
        let c = Clock::new(Rhythm::Daily, t("2026-11-24T00:00:00Z"));
        // Tuesday 24 Nov 2026, 11:00 + 1 office hour = 14:00 (lunch skipped).
        let x = c.after_office(t("2026-11-24T11:00:00+07:00"), 3600);
        assert_eq!(x, t("2026-11-24T14:00:00+07:00"));
        // Friday 16:30 + 1 office hour = Monday 08:00.
        let x = c.after_office(t("2026-11-27T16:30:00+07:00"), 3600);
        assert_eq!(x, t("2026-11-30T08:00:00+07:00"));
        // Saturday night reads as Friday's close.
        let sat = c.office_secs(t("2026-11-28T22:00:00+07:00"));
        assert_eq!(sat, c.office_secs(t("2026-11-27T17:00:00+07:00")));
        for s in ["2026-11-24T07:30:00+07:00", "2026-11-24T13:30:00+07:00"] {
            assert_eq!(c.from_office_secs(c.office_secs(t(s))), t(s));
        }
    }

    #[test]
    fn deadlines_skip_weekends_and_fall_at_five_pm() {
        let c = Clock::new(Rhythm::Daily, t("2026-11-24T00:00:00Z"));
        let due = c.due_at(t("2026-11-26T09:00:00+07:00"), 3); // Thursday + 3 working days
        assert_eq!(due, t("2026-12-01T17:00:00+07:00"));
        assert_eq!(c.yymmdd(due), 261_201);
    }

    #[test]
    fn compression_shrinks_office_time_in_the_busy_rhythm() {
        let c = Clock::new(Rhythm::Busy, t("2026-11-24T00:00:00Z")).compressed(96);
        let t0 = t("2026-11-28T22:00:00+07:00");
        assert_eq!(c.after_office(t0, 86_400), t0.plus_secs(900));
        assert_eq!(c.due_at(t0, 2), t0.plus_secs(1800));
        assert_eq!(c.from_office_secs(c.office_secs(t0)), t0);
    }

    #[test]
    fn timestamps_format_as_rfc3339_and_parse_back() {
        let c = Clock::new(Rhythm::Daily, t("2026-11-24T00:00:00Z"));
        let ts = t("2026-11-24T08:15:02.123+07:00");
        assert_eq!(c.rfc3339(ts, false), "2026-11-24T08:15:02.123+07:00");
        assert_eq!(c.rfc3339(ts, true), "2026-11-24T01:15:02.123Z");
        assert_eq!(parse_rfc3339(&c.rfc3339(ts, true)).unwrap(), ts);
    }
}

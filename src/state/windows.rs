//! Rolling windows by event time: per local minute (the last 60 minutes), per local day
//! ("today") and the 30-day on-time ratio. Pure arithmetic over integers: no clock, no I/O.
//!
//! Every count can be moved as well as added, because an out-of-order event can change
//! *when* a dossier counts (its earliest `received` or `resolved`). Buckets older than what
//! any view reads are pruned by [`Windows::prune`]; a move out of a pruned bucket is a no-op,
//! which is exact since that bucket can never be read again.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::{Deserialize, Serialize};

use crate::decode::Severity;
use crate::time::{Calendar, NANOS_PER_MIN, Ts};

/// Counts of one local minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// Dossiers received in this minute.
    pub received: u32,
    /// Dossiers resolved in this minute.
    pub resolved: u32,
    /// SOC alerts by severity.
    pub alerts: [u32; 4],
}

/// Counts of one local day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Dossiers received that day.
    pub received: u32,
    /// Of which online.
    pub received_online: u32,
    /// Dossiers resolved that day.
    pub resolved: u32,
}

/// Resolutions of one minute for the 30-day on-time ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolutions {
    /// Resolved early or on time.
    pub in_time: u32,
    /// All resolved.
    pub total: u32,
}

/// Minutes kept past the 60 shown, so that a skewed clock never reads a pruned bucket.
const MINUTE_SLACK: i64 = 5;
/// Days kept for per-day figures.
pub const DAYS_KEPT: i32 = 35;
/// Width of the on-time ratio window: 30 × 24 hours.
pub const RATIO_WINDOW_MINUTES: i64 = 30 * 24 * 60;

/// All rolling windows. Keys are local minute and day numbers from [`Calendar`], except
/// the on-time buckets, which are UTC minutes (the window is 30 × 24 hours, not days).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    minutes: BTreeMap<i64, MinuteCounts>,
    days: BTreeMap<i32, DayCounts>,
    on_time: BTreeMap<i64, Resolutions>,
}

/// Changes the bucket at `key` with `change`, creating it if needed, and removes it once
/// all its counts are back to zero, so that a moved count leaves nothing behind: the same
/// events give equal windows in any order. One search of the map.
fn update<K: Ord, V: Default + PartialEq>(
    map: &mut BTreeMap<K, V>,
    key: K,
    change: impl FnOnce(&mut V),
) {
    match map.entry(key) {
        Entry::Occupied(mut bucket) => {
            change(bucket.get_mut());
            if *bucket.get() == V::default() {
                bucket.remove();
            }
        }
        Entry::Vacant(slot) => {
            let mut bucket = V::default();
            change(&mut bucket);
            if bucket != V::default() {
                slot.insert(bucket);
            }
        }
    }
}

/// The local minute and day of `ts` with one time-zone lookup: both count from the local
/// epoch (see [`Calendar`]), so the day is the minute divided by 1,440, rounded down.
fn minute_and_day(cal: &Calendar, ts: Ts) -> (i64, i32) {
    let minute = cal.minute(ts);
    (
        minute,
        i32::try_from(minute.div_euclid(24 * 60)).unwrap_or(i32::MAX),
    )
}

/// Adds `delta` (±1) to a `u32` count without wrapping.
fn bump(v: &mut u32, delta: i32) {
    *v = v.saturating_add_signed(delta);
}

impl Windows {
    /// Counts (or, with `delta = -1`, uncounts) a dossier received at `ts`.
    pub fn received(&mut self, cal: &Calendar, ts: Ts, online: bool, delta: i32) {
        let (minute, day) = minute_and_day(cal, ts);
        update(&mut self.minutes, minute, |m| bump(&mut m.received, delta));
        update(&mut self.days, day, |day| {
            bump(&mut day.received, delta);
            if online {
                bump(&mut day.received_online, delta);
            }
        });
    }

    /// Counts (or uncounts) a dossier resolved at `ts`, early or on time when `in_time`.
    pub fn resolved(&mut self, cal: &Calendar, ts: Ts, in_time: bool, delta: i32) {
        let (minute, day) = minute_and_day(cal, ts);
        update(&mut self.minutes, minute, |m| bump(&mut m.resolved, delta));
        update(&mut self.days, day, |day| bump(&mut day.resolved, delta));
        update(
            &mut self.on_time,
            ts.0.div_euclid(NANOS_PER_MIN),
            |bucket| {
                bump(&mut bucket.total, delta);
                if in_time {
                    bump(&mut bucket.in_time, delta);
                }
            },
        );
    }

    /// Counts a SOC alert at `ts`.
    pub fn alert(&mut self, cal: &Calendar, ts: Ts, severity: Severity) {
        bump(
            &mut self.minutes.entry(cal.minute(ts)).or_default().alerts[severity as usize],
            1,
        );
    }

    /// Drops buckets that no view at `now` or later can read.
    pub fn prune(&mut self, cal: &Calendar, now: Ts) {
        let oldest_minute = cal.minute(now) - 60 - MINUTE_SLACK;
        self.minutes = self.minutes.split_off(&oldest_minute);
        let oldest_day = cal.day(now) - DAYS_KEPT;
        self.days = self.days.split_off(&oldest_day);
        let oldest_ratio = now.0.div_euclid(NANOS_PER_MIN) - RATIO_WINDOW_MINUTES - 1;
        self.on_time = self.on_time.split_off(&oldest_ratio);
    }

    /// The 60 minutes ending with the current one, oldest first. Events stamped ahead of
    /// now (within the accepted skew) count in the current minute.
    #[must_use]
    pub fn last_60_minutes(&self, cal: &Calendar, now: Ts) -> [MinuteCounts; 60] {
        let current = cal.minute(now);
        let mut out = [MinuteCounts::default(); 60];
        for (&minute, counts) in self.minutes.range(current - 59..) {
            let i = usize::try_from((minute - (current - 59)).min(59)).unwrap_or(59);
            let slot = &mut out[i];
            slot.received += counts.received;
            slot.resolved += counts.resolved;
            for (a, b) in slot.alerts.iter_mut().zip(counts.alerts) {
                *a += b;
            }
        }
        out
    }

    /// Counts of the local day of `now`.
    #[must_use]
    pub fn today(&self, cal: &Calendar, now: Ts) -> DayCounts {
        self.days.get(&cal.day(now)).copied().unwrap_or_default()
    }

    /// Counts per local day, oldest first (at most [`DAYS_KEPT`] days).
    #[must_use]
    pub fn days(&self) -> &BTreeMap<i32, DayCounts> {
        &self.days
    }

    /// Early plus on time over all resolved, for resolutions in the 30 × 24 hours before
    /// `now` (whole UTC minutes; future-stamped resolutions within the skew included);
    /// `None` when none were resolved.
    #[must_use]
    pub fn on_time_ratio_30d(&self, now: Ts) -> Option<f64> {
        let current = now.0.div_euclid(NANOS_PER_MIN);
        let (ok, total) = self
            .on_time
            .range(current - RATIO_WINDOW_MINUTES + 1..)
            .fold((0u64, 0u64), |(ok, total), (_, r)| {
                (ok + u64::from(r.in_time), total + u64::from(r.total))
            });
        #[allow(clippy::cast_precision_loss)]
        (total > 0).then(|| ok as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn a_moved_count_leaves_its_old_minute_and_day() {
        let cal = Calendar::default();
        let mut w = Windows::default();
        let now = t("2026-11-24T10:00:30+07:00");
        w.received(&cal, t("2026-11-24T09:59:10+07:00"), true, 1);
        w.received(&cal, t("2026-11-24T09:59:10+07:00"), true, -1);
        w.received(&cal, t("2026-11-24T09:30:00+07:00"), true, 1);
        let m = w.last_60_minutes(&cal, now);
        assert_eq!(m[58].received, 0);
        assert_eq!(m[29].received, 1);
        assert_eq!(w.today(&cal, now).received, 1);
        assert_eq!(w.today(&cal, now).received_online, 1);
    }

    #[test]
    fn the_day_derived_from_the_minute_is_the_calendar_s_day() {
        let cal = Calendar::default();
        let start = t("1969-12-31T16:58:00Z").0;
        for i in 0..3 * 24 * 60 + 7 {
            let ts = Ts(start + i * 59_999_999_937);
            assert_eq!(
                minute_and_day(&cal, ts),
                (cal.minute(ts), cal.day(ts)),
                "{ts}"
            );
        }
    }

    #[test]
    fn today_is_the_local_day_around_midnight() {
        let cal = Calendar::default();
        let mut w = Windows::default();
        w.received(&cal, t("2026-11-24T16:59:59Z"), false, 1); // 23:59:59 on the 24th in Hà Nội
        w.received(&cal, t("2026-11-24T17:00:00Z"), false, 1); // 00:00 on the 25th
        assert_eq!(w.today(&cal, t("2026-11-24T23:00:00+07:00")).received, 1);
        assert_eq!(w.today(&cal, t("2026-11-25T00:00:01+07:00")).received, 1);
        assert_eq!(
            w.today(&cal, t("2026-11-25T00:00:01+07:00"))
                .received_online,
            0
        );
    }

    #[test]
    fn the_last_minute_is_the_current_one_and_future_events_count_in_it() {
        let cal = Calendar::default();
        let mut w = Windows::default();
        let now = t("2026-11-24T10:00:30+07:00");
        w.resolved(&cal, t("2026-11-24T10:00:00+07:00"), true, 1);
        w.resolved(&cal, t("2026-11-24T10:03:00+07:00"), true, 1);
        w.resolved(&cal, t("2026-11-24T09:01:00+07:00"), true, 1);
        w.resolved(&cal, t("2026-11-24T09:00:59+07:00"), true, 1); // 60 minutes ago: out
        let m = w.last_60_minutes(&cal, now);
        assert_eq!(m[59].resolved, 2);
        assert_eq!(m[0].resolved, 1);
        assert_eq!(m.iter().map(|c| c.resolved).sum::<u32>(), 3);
    }

    #[test]
    fn the_on_time_ratio_covers_30_times_24_hours() {
        let cal = Calendar::default();
        let mut w = Windows::default();
        let now = t("2026-11-24T10:00:00Z");
        assert_eq!(w.on_time_ratio_30d(now), None);
        w.resolved(&cal, t("2026-11-24T09:00:00Z"), true, 1);
        w.resolved(&cal, t("2026-10-26T10:01:00Z"), false, 1); // inside: 29 days 23:59 ago
        w.resolved(&cal, t("2026-10-25T10:00:00Z"), false, 1); // outside
        assert_eq!(w.on_time_ratio_30d(now), Some(0.5));
    }

    #[test]
    fn pruning_keeps_everything_a_view_reads() {
        let cal = Calendar::default();
        let mut w = Windows::default();
        let now = t("2026-11-24T10:00:00+07:00");
        w.resolved(&cal, t("2026-11-24T09:01:00+07:00"), true, 1);
        w.resolved(&cal, t("2026-11-01T09:01:00+07:00"), true, 1);
        w.resolved(&cal, t("2026-09-01T09:01:00+07:00"), true, 1);
        let before = (
            w.last_60_minutes(&cal, now),
            w.today(&cal, now),
            w.on_time_ratio_30d(now),
        );
        w.prune(&cal, now);
        assert_eq!(
            before,
            (
                w.last_60_minutes(&cal, now),
                w.today(&cal, now),
                w.on_time_ratio_30d(now)
            )
        );
        assert!(w.days().len() <= 2);
    }
}

//! Period tallies of the one-stop system: per agency, what was received and closed on each
//! local day, month and year. They are what the month-to-date and year-to-date ("lũy kế")
//! figures provinces publish are read from (see [`crate::derive::periods`]).
//!
//! Each dossier contributes what it is now (its [`Contribution`]): it was received in the
//! period of its earliest `received`, by channel; it is open; it closed in the period of its
//! closing (resolved early, on time or late, or closed without a result), received before
//! that period began ("carried over") or not. When an event changes what a dossier
//! contributes (an earlier `received` re-dates it, a transfer moves it to another agency, it
//! closes), its old contribution is taken out and the new one put in. So the tallies are a
//! function of the set of events, whatever their order, as the rolling windows are.
//!
//! A dossier forgotten after its retention keeps its contribution: the tallies are history.
//! One evicted at the memory cap keeps what it was received and closed as, but no longer
//! counts as open. Days are kept [`DAYS_KEPT`], months [`MONTHS_KEPT`], years
//! [`YEARS_KEPT`]; at most [`MAX_AGENCIES`] agencies have tallies of their own, the rest
//! share one under [`OTHER`], so a flood of agency codes cannot grow them without bound.

use hashbrown::HashMap;

use serde::{Deserialize, Serialize};

use crate::time::{Calendar, Ts, civil_from_days, days_from_civil};

/// Local days kept (the current one and the 39 before).
pub const DAYS_KEPT: i32 = 40;
/// Local months kept (the current one and the 24 before).
pub const MONTHS_KEPT: i32 = 25;
/// Local years kept (the current one and the 2 before).
pub const YEARS_KEPT: i32 = 3;
/// Agencies (by interned id) with tallies of their own.
pub const MAX_AGENCIES: u32 = 5_000;
/// The agency id the tallies of agencies beyond [`MAX_AGENCIES`] are kept under.
pub const OTHER: u32 = u32::MAX;

/// The agency id tallies are kept under: its own below [`MAX_AGENCIES`], else [`OTHER`].
fn bounded(agency: u32) -> u32 {
    if agency < MAX_AGENCIES { agency } else { OTHER }
}

/// Closing outcomes, in the order of [`Tally::closed`].
pub const EARLY: u8 = 0;
/// Resolved on the due day, not after the deadline (or without one).
pub const ON_TIME: u8 = 1;
/// Resolved after the deadline.
pub const LATE: u8 = 2;
/// Closed without a result (rejected, withdrawn, cancelled), or with a result whose timing
/// is not known (`returned` without a `resolved`): not in the progress estimate.
pub const WITHOUT_RESULT: u8 = 3;

/// Channels, in the order of [`Tally::received`]: those of `Channel::ALL` (online, direct,
/// postal), then not carried.
pub const CHANNELS: usize = 4;

/// A local calendar period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Period {
    /// A local day, as its day number since 1970-01-01.
    Day(i32),
    /// A local month, as `year × 12 + month − 1`.
    Month(i32),
    /// A local year.
    Year(i32),
}

impl Period {
    /// The day, month and year of local day `day`.
    #[must_use]
    pub fn of_day(day: i32) -> [Period; 3] {
        let (y, m, _) = civil_from_days(i64::from(day));
        let y = i32::try_from(y).unwrap_or(i32::MAX / 12);
        let m = i32::try_from(m).unwrap_or(1);
        [
            Period::Day(day),
            Period::Month(y.saturating_mul(12).saturating_add(m - 1)),
            Period::Year(y),
        ]
    }

    /// The day, month and year that contain `now`.
    #[must_use]
    pub fn current(cal: &Calendar, now: Ts) -> [Period; 3] {
        Self::of_day(cal.day(now))
    }

    /// The first local day of the period.
    #[must_use]
    pub fn first_day(self) -> i32 {
        let day = |y: i32, m: i32| {
            i32::try_from(days_from_civil(i64::from(y), i64::from(m), 1)).unwrap_or(i32::MIN)
        };
        match self {
            Period::Day(d) => d,
            Period::Month(k) => day(k.div_euclid(12), k.rem_euclid(12) + 1),
            Period::Year(y) => day(y, 1),
        }
    }
}

/// What one agency received and closed in one period. Signed: a count taken out of a
/// period whose tally was pruned reads as negative until that period is pruned again, and
/// readers clamp at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Received, by channel (online, direct, postal, not carried).
    pub received: [i32; CHANNELS],
    /// Closed: resolved early, on time, late; closed without a result.
    pub closed: [i32; 4],
    /// Closed in the period and received before it began.
    pub closed_carried: i32,
    /// Received in the period and open now (months and years only).
    pub open: i32,
}

impl Tally {
    fn is_zero(&self) -> bool {
        *self == Tally::default()
    }

    /// Adds `other` to this tally.
    pub fn add(&mut self, other: &Tally) {
        for (a, b) in self.received.iter_mut().zip(other.received) {
            *a += b;
        }
        for (a, b) in self.closed.iter_mut().zip(other.closed) {
            *a += b;
        }
        self.closed_carried += other.closed_carried;
        self.open += other.open;
    }
}

/// What one dossier contributes to the tallies, from what it is now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contribution {
    /// Its agency (interned id).
    pub agency: u32,
    /// Its procedure (interned id, with its sector).
    pub procedure: u32,
    /// Its earliest `received` (Unix ns) and channel index.
    pub received: Option<(i64, u8)>,
    /// Open now.
    pub open: bool,
    /// When it closed (Unix ns) and how ([`EARLY`] … [`WITHOUT_RESULT`]).
    pub closed: Option<(i64, u8)>,
}

/// The tallies of every agency and period kept, and of late resolutions by procedure.
/// Saved as lists (JSON keys must be strings), in key order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "Saved", from = "Saved")]
pub struct Periods {
    /// By agency and period.
    tallies: HashMap<(u32, Period), Tally>,
    /// Open and received, whenever received, by agency: "open now" for the carried-over
    /// figure of a period (those received before it began).
    open_received: HashMap<u32, i32>,
    /// Resolved late, by month or year and procedure (interned with its sector). Ordered, so
    /// that a derive reads one period's counts without scanning the others: changed only by
    /// late resolutions, read every tick.
    late: std::collections::BTreeMap<(Period, u32), i32>,
}

/// The saved form of [`Periods`].
#[derive(Serialize, Deserialize)]
struct Saved {
    tallies: Vec<(u32, Period, Tally)>,
    open_received: Vec<(u32, i32)>,
    late: Vec<(Period, u32, i32)>,
}

impl From<Periods> for Saved {
    fn from(p: Periods) -> Self {
        let mut saved = Saved {
            tallies: p.tallies.into_iter().map(|((a, q), t)| (a, q, t)).collect(),
            open_received: p.open_received.into_iter().collect(),
            late: p
                .late
                .into_iter()
                .map(|((q, proc), n)| (q, proc, n))
                .collect(),
        };
        // In key order: the same tallies save to the same bytes.
        saved.tallies.sort_unstable_by_key(|&(a, q, _)| (a, q));
        saved.open_received.sort_unstable();
        saved.late.sort_unstable();
        saved
    }
}

impl From<Saved> for Periods {
    fn from(s: Saved) -> Self {
        Periods {
            tallies: s.tallies.into_iter().map(|(a, q, t)| ((a, q), t)).collect(),
            open_received: s.open_received.into_iter().collect(),
            late: s
                .late
                .into_iter()
                .map(|(q, proc, n)| ((q, proc), n))
                .collect(),
        }
    }
}

impl Periods {
    /// Takes `before` out and puts `after` in (either may be absent). Each of the three
    /// parts of a contribution (received, open, closed) is moved only when it changed: most
    /// events change one part or none, and each part touches three tallies.
    pub fn moved(
        &mut self,
        cal: &Calendar,
        before: Option<&Contribution>,
        after: Option<&Contribution>,
    ) {
        if before == after {
            return;
        }
        let received = |c: Option<&Contribution>| {
            c.and_then(|c| {
                c.received
                    .map(|(at, channel)| (bounded(c.agency), at, channel))
            })
        };
        let (old, new) = (received(before), received(after));
        if old != new {
            for (part, sign) in [(old, -1), (new, 1)] {
                if let Some((agency, at, channel)) = part {
                    for p in Period::of_day(cal.day(Ts(at))) {
                        self.change(agency, p, |t| {
                            t.received[usize::from(channel).min(CHANNELS - 1)] += sign;
                        });
                    }
                }
            }
        }
        let open = |c: Option<&Contribution>| {
            c.filter(|c| c.open)
                .and_then(|c| c.received.map(|(at, _)| (bounded(c.agency), at)))
        };
        let (old, new) = (open(before), open(after));
        if old != new {
            for (part, sign) in [(old, -1), (new, 1)] {
                if let Some((agency, at)) = part {
                    // Months and years only: a day's table shows what was received and
                    // resolved that day, never what is carried over into it.
                    for p in &Period::of_day(cal.day(Ts(at)))[1..] {
                        self.change(agency, *p, |t| t.open += sign);
                    }
                    let n = self.open_received.entry(agency).or_default();
                    *n += sign;
                    if *n == 0 {
                        self.open_received.remove(&agency);
                    }
                }
            }
        }
        let closed = |c: Option<&Contribution>| {
            c.and_then(|c| {
                c.closed.map(|(at, how)| {
                    let received = c.received.map(|(r, _)| r);
                    (bounded(c.agency), c.procedure, received, at, how)
                })
            })
        };
        let (old, new) = (closed(before), closed(after));
        if old != new {
            for (part, sign) in [(old, -1), (new, 1)] {
                if let Some((agency, procedure, received, at, how)) = part {
                    self.count_closed(cal, (agency, procedure), received, (at, how), sign);
                }
            }
        }
    }

    fn count_closed(
        &mut self,
        cal: &Calendar,
        (agency, procedure): (u32, u32),
        received: Option<i64>,
        (at, how): (i64, u8),
        sign: i32,
    ) {
        let received_day = received.map(|r| cal.day(Ts(r)));
        for p in Period::of_day(cal.day(Ts(at))) {
            let carried = received_day.is_some_and(|r| r < p.first_day());
            self.change(agency, p, |t| {
                t.closed[usize::from(how).min(3)] += sign;
                if carried {
                    t.closed_carried += sign;
                }
            });
            if how == LATE && !matches!(p, Period::Day(_)) {
                let n = self.late.entry((p, procedure)).or_default();
                *n += sign;
                if *n == 0 {
                    self.late.remove(&(p, procedure));
                }
            }
        }
    }

    fn change(&mut self, agency: u32, p: Period, f: impl FnOnce(&mut Tally)) {
        let t = self.tallies.entry((agency, p)).or_default();
        f(t);
        if t.is_zero() {
            self.tallies.remove(&(agency, p));
        }
    }

    /// A dossier evicted at the memory cap: it no longer counts as open.
    pub fn evicted(&mut self, cal: &Calendar, c: &Contribution) {
        if c.open {
            let closed_unknown = Contribution { open: false, ..*c };
            self.moved(cal, Some(c), Some(&closed_unknown));
        }
    }

    /// Drops the periods that ended before the kept ones (at housekeeping): their cost
    /// is the agencies times the periods kept.
    pub fn prune(&mut self, cal: &Calendar, now: Ts) {
        let [Period::Day(day), Period::Month(month), Period::Year(year)] =
            Period::current(cal, now)
        else {
            return;
        };
        let keep = |p: &Period| match *p {
            Period::Day(d) => d > day - DAYS_KEPT,
            Period::Month(m) => m > month - MONTHS_KEPT,
            Period::Year(y) => y > year - YEARS_KEPT,
        };
        self.tallies.retain(|(_, p), _| keep(p));
        self.late.retain(|(p, _), _| keep(p));
    }

    /// The tally of `agency` in `p` (zero when none).
    #[must_use]
    pub fn tally(&self, agency: u32, p: Period) -> Tally {
        self.tallies.get(&(agency, p)).copied().unwrap_or_default()
    }

    /// Open and received dossiers of `agency`, whenever received.
    #[must_use]
    pub fn open_received(&self, agency: u32) -> i32 {
        self.open_received.get(&agency).copied().unwrap_or(0)
    }

    /// Resolved late in `p` (a month or a year) by procedure id: costs what it returns.
    pub fn late_in(&self, p: Period) -> impl Iterator<Item = (u32, i32)> + '_ {
        self.late
            .range((p, 0)..=(p, u32::MAX))
            .map(|((_, procedure), n)| (*procedure, *n))
    }

    /// Entries held (tallies and late counts), for the state-size gauges.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tallies.len() + self.late.len() + self.open_received.len()
    }

    /// Whether nothing is tallied.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn ts(s: &str) -> i64 {
        parse_rfc3339(s).unwrap().0
    }

    #[test]
    fn a_period_starts_on_its_first_local_day() {
        let cal = Calendar::default();
        let [d, m, y] = Period::current(&cal, Ts(ts("2026-03-15T23:30:00+07:00")));
        assert_eq!(d.first_day(), cal.day(Ts(ts("2026-03-15T00:00:00+07:00"))));
        assert_eq!(m, Period::Month(2026 * 12 + 2));
        assert_eq!(m.first_day(), cal.day(Ts(ts("2026-03-01T00:00:00+07:00"))));
        assert_eq!(y.first_day(), cal.day(Ts(ts("2026-01-01T00:00:00+07:00"))));
        // 23:30 in Hà Nội on the last day of a month is already the next day in UTC+0.
        let [_, m, _] = Period::current(&cal, Ts(ts("2026-02-28T18:30:00Z")));
        assert_eq!(m, Period::Month(2026 * 12 + 2));
    }

    #[test]
    fn a_contribution_moved_and_moved_back_leaves_nothing() {
        let cal = Calendar::default();
        let mut p = Periods::default();
        let open = Contribution {
            agency: 3,
            procedure: 7,
            received: Some((ts("2026-02-27T09:00:00+07:00"), 1)),
            open: true,
            closed: None,
        };
        let late = Contribution {
            open: false,
            closed: Some((ts("2026-03-02T10:00:00+07:00"), LATE)),
            ..open
        };
        p.moved(&cal, None, Some(&open));
        p.moved(&cal, Some(&open), Some(&late));
        let march = Period::Month(2026 * 12 + 2);
        let t = p.tally(3, march);
        assert_eq!(
            (t.closed[usize::from(LATE)], t.closed_carried, t.open),
            (1, 1, 0)
        );
        assert_eq!(
            p.tally(3, Period::Month(2026 * 12 + 1)).received,
            [0, 1, 0, 0]
        );
        assert_eq!(p.late_in(march).collect::<Vec<_>>(), vec![(7, 1)]);
        assert_eq!(p.open_received(3), 0);
        p.moved(&cal, Some(&late), None);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn pruning_keeps_the_current_periods_and_agencies_beyond_the_cap_share_one() {
        let cal = Calendar::default();
        let mut p = Periods::default();
        let old = Contribution {
            agency: MAX_AGENCIES + 9,
            received: Some((ts("2022-01-10T09:00:00+07:00"), 0)),
            ..Contribution::default()
        };
        let new = Contribution {
            received: Some((ts("2026-12-01T09:00:00+07:00"), 0)),
            ..old
        };
        p.moved(&cal, None, Some(&old));
        p.moved(&cal, None, Some(&new));
        p.prune(&cal, Ts(ts("2026-12-06T12:00:00+07:00")));
        let mut kept: Vec<Period> = p
            .tallies
            .keys()
            .map(|(a, q)| {
                assert_eq!(*a, OTHER);
                *q
            })
            .collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            Period::of_day(cal.day(Ts(ts("2026-12-01T09:00:00+07:00")))).to_vec()
        );
    }
}

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
    /// A local week, Monday to Sunday, as (its Monday's day number + 3) / 7, day 0 being a
    /// Thursday (the Decision 766 scorecard's week; only its tallies use weeks).
    Week(i32),
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
            Period::Week(w) => w.saturating_mul(7).saturating_sub(3),
        }
    }

    /// The week, month and year of local day `day`: the periods of the 766 scorecard.
    #[must_use]
    pub fn scored(day: i32) -> [Period; 3] {
        let [_, month, year] = Self::of_day(day);
        // Day 0 (1970-01-01) was a Thursday: Monday-based weeks start at day −3.
        [Period::Week((day + 3).div_euclid(7)), month, year]
    }

    /// The period of the same kind just before this one.
    #[must_use]
    pub fn previous(self) -> Period {
        match self {
            Period::Day(d) => Period::Day(d - 1),
            Period::Week(w) => Period::Week(w - 1),
            Period::Month(m) => Period::Month(m - 1),
            Period::Year(y) => Period::Year(y - 1),
        }
    }

    /// The first local day after the period.
    #[must_use]
    pub fn end_day(self) -> i32 {
        match self {
            Period::Day(d) => d + 1,
            Period::Week(_) => self.first_day() + 7,
            Period::Month(m) => Period::Month(m + 1).first_day(),
            Period::Year(y) => Period::Year(y + 1).first_day(),
        }
    }
}

/// Weeks kept for the scorecard (the current one and the 14 before).
pub const WEEKS_KEPT: i32 = 15;

/// What one agency counts towards the Decision 766 indicators in one period (week, month,
/// year): by the period of receipt, and by the period of resolution. Open dossiers at the
/// period's end are not here: live for the current period (the tracker), and taken at the
/// boundary for the one before ([`Periods::open_at_end`]). Signed, as [`Tally`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// Received in the period.
    pub received: i32,
    /// Of those, online.
    pub received_online: i32,
    /// Of those, carrying fees (`fee_required` true): indicator 3.6's denominator.
    pub fee_required: i32,
    /// Of those, paid online (latest `paid` through either portal): 3.6's numerator.
    pub fee_paid_online: i32,
    /// Received with `reused_data` known: 4.3's denominator.
    pub reuse_known: i32,
    /// Of those, with reused data: 4.3's numerator.
    pub reused: i32,
    /// Resolved in the period (early, on time or late).
    pub resolved: i32,
    /// Of those, in time by the 766 rules (not late, at most one supplement request).
    pub resolved_in_time: i32,
    /// Resolved, with a paper result, the electronic result known: 4.1's denominator.
    pub paper_known: i32,
    /// Of those, with an electronic result: 4.1's numerator.
    pub paper_electronic: i32,
    /// Resolved, digitisation and electronic result both known: 4.2's denominator.
    pub digitised_known: i32,
    /// Of those, digitised and with an electronic result: 4.2's numerator.
    pub digitised_electronic: i32,
    /// Resolved, rated unsatisfied or with a complaint (latest `rated`): part of 5.4.
    pub unsatisfied: i32,
}

impl Score {
    fn is_zero(&self) -> bool {
        *self == Score::default()
    }

    /// Adds `other` to this score.
    pub fn add(&mut self, o: &Score) {
        self.received += o.received;
        self.received_online += o.received_online;
        self.fee_required += o.fee_required;
        self.fee_paid_online += o.fee_paid_online;
        self.reuse_known += o.reuse_known;
        self.reused += o.reused;
        self.resolved += o.resolved;
        self.resolved_in_time += o.resolved_in_time;
        self.paper_known += o.paper_known;
        self.paper_electronic += o.paper_electronic;
        self.digitised_known += o.digitised_known;
        self.digitised_electronic += o.digitised_electronic;
        self.unsatisfied += o.unsatisfied;
    }
}

/// Open dossiers of one agency at the end of a past period, as they stood at the first
/// housekeeping of the next: handled (received and open) and late by the 766 rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAtEnd {
    /// Open and received.
    pub open: i32,
    /// Of those, late by the 766 rules.
    pub late: i32,
}

/// What a dossier contributes to the 766 scores, beside its [`Contribution`]'s received and
/// closed parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // independent facts of one dossier
pub struct Scored {
    /// Received: carrying fees (known true).
    pub fee_required: bool,
    /// Received: paid online.
    pub paid_online: bool,
    /// Received: `reused_data`, when known.
    pub reused: Option<bool>,
    /// Resolved: in time by the 766 rules.
    pub in_time: bool,
    /// Resolved with a paper result: its electronic result, when known.
    pub paper_electronic: Option<bool>,
    /// Resolved: digitised and electronic, when both are known.
    pub digitised_electronic: Option<bool>,
    /// Resolved: rated unsatisfied or with a complaint.
    pub unsatisfied: bool,
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
    /// What it counts towards the 766 scores.
    pub scored: Scored,
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
    /// The 766 scores by agency and period (weeks, months, years).
    scores: HashMap<(u32, Period), Score>,
    /// Open dossiers at the end of past periods, by agency (taken at the boundary).
    open_at_end: HashMap<(u32, Period), OpenAtEnd>,
    /// The week, month and year the boundary snapshots were last taken in.
    last_scored: Option<[Period; 3]>,
}

/// The saved form of [`Periods`].
#[derive(Serialize, Deserialize)]
struct Saved {
    tallies: Vec<(u32, Period, Tally)>,
    open_received: Vec<(u32, i32)>,
    late: Vec<(Period, u32, i32)>,
    scores: Vec<(u32, Period, Score)>,
    open_at_end: Vec<(u32, Period, OpenAtEnd)>,
    last_scored: Option<[Period; 3]>,
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
            scores: p.scores.into_iter().map(|((a, q), t)| (a, q, t)).collect(),
            open_at_end: p
                .open_at_end
                .into_iter()
                .map(|((a, q), t)| (a, q, t))
                .collect(),
            last_scored: p.last_scored,
        };
        // In key order: the same tallies save to the same bytes.
        saved.tallies.sort_unstable_by_key(|&(a, q, _)| (a, q));
        saved.open_received.sort_unstable();
        saved.late.sort_unstable();
        saved.scores.sort_unstable_by_key(|&(a, q, _)| (a, q));
        saved.open_at_end.sort_unstable_by_key(|&(a, q, _)| (a, q));
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
            scores: s.scores.into_iter().map(|(a, q, t)| ((a, q), t)).collect(),
            open_at_end: s
                .open_at_end
                .into_iter()
                .map(|(a, q, t)| ((a, q), t))
                .collect(),
            last_scored: s.last_scored,
        }
    }
}

/// [`Periods`] as checkpoint formats 2 to 4 saved them: before the 766 scores.
#[derive(Deserialize)]
#[serde(rename = "Saved")]
struct Saved4 {
    tallies: Vec<(u32, Period, Tally)>,
    open_received: Vec<(u32, i32)>,
    late: Vec<(Period, u32, i32)>,
}

/// [`Periods`] of checkpoint formats 2 to 4: the scores are rebuilt from the dossiers held
/// (see `state::StateOlder`).
pub(crate) struct Periods4(pub(crate) Periods);

impl<'de> Deserialize<'de> for Periods4 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Saved4::deserialize(d)?;
        Ok(Self(Periods::from(Saved {
            tallies: s.tallies,
            open_received: s.open_received,
            late: s.late,
            scores: Vec::new(),
            open_at_end: Vec::new(),
            last_scored: None,
        })))
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
        self.scores_moved(cal, before, after);
    }

    /// The 766 scores' part of [`Periods::moved`]: by the period of receipt, and of
    /// resolution (only dossiers with a result's timing).
    pub fn scores_moved(
        &mut self,
        cal: &Calendar,
        before: Option<&Contribution>,
        after: Option<&Contribution>,
    ) {
        let received = |c: Option<&Contribution>| {
            c.and_then(|c| {
                c.received.map(|(at, channel)| {
                    let s = &c.scored;
                    (
                        bounded(c.agency),
                        at,
                        channel,
                        (s.fee_required, s.paid_online, s.reused),
                    )
                })
            })
        };
        let (old, new) = (received(before), received(after));
        if old != new {
            for (part, sign) in [(old, -1), (new, 1)] {
                if let Some((agency, at, channel, (fee, paid, reused))) = part {
                    let online = i32::from(usize::from(channel) == 0);
                    for p in Period::scored(cal.day(Ts(at))) {
                        self.score(agency, p, |s| {
                            s.received += sign;
                            s.received_online += sign * online;
                            s.fee_required += sign * i32::from(fee);
                            s.fee_paid_online += sign * i32::from(fee && paid);
                            s.reuse_known += sign * i32::from(reused.is_some());
                            s.reused += sign * i32::from(reused == Some(true));
                        });
                    }
                }
            }
        }
        let resolved = |c: Option<&Contribution>| {
            c.and_then(|c| {
                c.closed
                    .filter(|&(_, how)| how != WITHOUT_RESULT)
                    .map(|(at, _)| (bounded(c.agency), at, c.scored))
            })
        };
        let (old, new) = (resolved(before), resolved(after));
        if old != new {
            for (part, sign) in [(old, -1), (new, 1)] {
                if let Some((agency, at, s)) = part {
                    for p in Period::scored(cal.day(Ts(at))) {
                        self.score(agency, p, |t| {
                            t.resolved += sign;
                            t.resolved_in_time += sign * i32::from(s.in_time);
                            t.paper_known += sign * i32::from(s.paper_electronic.is_some());
                            t.paper_electronic +=
                                sign * i32::from(s.paper_electronic == Some(true));
                            t.digitised_known += sign * i32::from(s.digitised_electronic.is_some());
                            t.digitised_electronic +=
                                sign * i32::from(s.digitised_electronic == Some(true));
                            t.unsatisfied += sign * i32::from(s.unsatisfied);
                        });
                    }
                }
            }
        }
    }

    fn score(&mut self, agency: u32, p: Period, f: impl FnOnce(&mut Score)) {
        let t = self.scores.entry((agency, p)).or_default();
        f(t);
        if t.is_zero() {
            self.scores.remove(&(agency, p));
        }
    }

    /// For the checkpoint upgrade tests: the tallies without the 766 scores.
    #[cfg(test)]
    pub(crate) fn without_scores(&mut self) {
        self.scores.clear();
        self.open_at_end.clear();
        self.last_scored = None;
    }

    /// The 766 score of `agency` in `p` (a week, month or year; zero when none).
    #[must_use]
    pub fn score_of(&self, agency: u32, p: Period) -> Score {
        self.scores.get(&(agency, p)).copied().unwrap_or_default()
    }

    /// Open dossiers of `agency` at the end of the past period `p`, if taken.
    #[must_use]
    pub fn open_at_end(&self, agency: u32, p: Period) -> OpenAtEnd {
        self.open_at_end
            .get(&(agency, p))
            .copied()
            .unwrap_or_default()
    }

    /// At housekeeping: when the week, month or year has changed since the last call, takes
    /// the open dossiers of each agency (from `open`: agency, handled and open, late by the
    /// 766 rules) as those at the end of the period that ended. Costs the agencies, once per
    /// period boundary.
    pub fn take_open_at_end(
        &mut self,
        cal: &Calendar,
        now: Ts,
        open: impl Iterator<Item = (u32, OpenAtEnd)>,
    ) {
        let current = Period::scored(cal.day(now));
        let Some(last) = self.last_scored.replace(current) else {
            return;
        };
        let ended: Vec<Period> = last
            .into_iter()
            .zip(current)
            .filter(|(l, c)| l != c)
            .map(|(l, _)| l)
            .collect();
        if ended.is_empty() {
            return;
        }
        // A snapshot replaces any earlier one of the same periods (the clock went back across
        // the boundary and forward again): it is never added twice.
        self.open_at_end.retain(|(_, p), _| !ended.contains(p));
        for (agency, o) in open {
            if o == OpenAtEnd::default() {
                continue;
            }
            for p in &ended {
                let t = self.open_at_end.entry((bounded(agency), *p)).or_default();
                t.open += o.open;
                t.late += o.late;
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
        let Period::Week(week) = Period::scored(day)[0] else {
            return;
        };
        let keep = |p: &Period| match *p {
            Period::Day(d) => d > day - DAYS_KEPT,
            Period::Week(w) => w > week - WEEKS_KEPT,
            Period::Month(m) => m > month - MONTHS_KEPT,
            Period::Year(y) => y > year - YEARS_KEPT,
        };
        self.tallies.retain(|(_, p), _| keep(p));
        self.late.retain(|(p, _), _| keep(p));
        self.scores.retain(|(_, p), _| keep(p));
        self.open_at_end.retain(|(_, p), _| keep(p));
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
        self.tallies.len()
            + self.late.len()
            + self.open_received.len()
            + self.scores.len()
            + self.open_at_end.len()
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
            scored: Scored::default(),
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

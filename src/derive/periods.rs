//! The month-to-date and year-to-date ("lũy kế") one-stop figures provinces publish, and
//! iocd's live estimates of two Decision 766 indicators, from the period tallies of
//! [`crate::state::periods`] and the open figures now.
//!
//! The table of a period, as provinces report it:
//! - carried over (tồn kỳ trước): received before the period began and not closed before it,
//!   that is those open now and received before it, plus those closed in it and received
//!   before it;
//! - received in the period, by channel;
//! - resolved in the period: early, on time, late; closed without a result;
//! - open within time and open overdue: now (the same for every period).
//!
//! The estimates, labelled as estimates everywhere (the official scores come from the
//! national portal, days later, over its own data):
//! - **progress** (766 group 2, "tiến độ giải quyết"): resolved early or on time in the period
//!   plus open and within time, over resolved in the period plus open. iocd knows neither
//!   the pauses that stop the clock nor the supplement requests that the national rules
//!   count, so this is the share the events it received show;
//! - **online share** at receipt (766 group 3.3): received online over received, in the period.

use serde::Serialize;

use crate::state::dossiers::AgencyGauges;
use crate::state::periods::{EARLY, LATE, ON_TIME, Period, Periods, Tally, WITHOUT_RESULT};
use crate::time::{Calendar, Ts};

/// The tallies of one agency (or a sum of agencies) for today, the month and the year that
/// contain an instant, with its open-and-received count whenever received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgencyPeriods {
    /// Today (local day).
    pub today: Tally,
    /// This month, to date.
    pub month: Tally,
    /// This year, to date.
    pub year: Tally,
    /// Open and received, whenever received.
    pub open_received: i64,
}

impl AgencyPeriods {
    /// The tallies of `agency` at `now`.
    #[must_use]
    pub fn of(periods: &Periods, cal: &Calendar, agency: u32, now: Ts) -> Self {
        let [day, month, year] = Period::current(cal, now);
        Self {
            today: periods.tally(agency, day),
            month: periods.tally(agency, month),
            year: periods.tally(agency, year),
            open_received: i64::from(periods.open_received(agency)),
        }
    }

    /// Adds `other` (a roll-up).
    pub fn add(&mut self, other: &AgencyPeriods) {
        self.today.add(&other.today);
        self.month.add(&other.month);
        self.year.add(&other.year);
        self.open_received += other.open_received;
    }
}

/// One period's table (see the module).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    /// Received before the period and not closed before it began.
    pub carried_over: u64,
    /// Received in the period, by channel.
    pub received: Received,
    /// Resolved in the period, by timing.
    pub resolved: Resolved,
    /// Closed in the period without a result (rejected, withdrawn, cancelled) or without a
    /// known timing.
    pub closed_without_result: u64,
    /// Open now (received, not closed) and not overdue.
    pub open_within_time: u64,
    /// Open now and overdue.
    pub open_overdue: u64,
    /// The Decision 766 progress estimate (see the module); `None` when nothing was handled.
    pub progress_estimate: Option<f64>,
    /// Received online over received; `None` when none was received.
    pub online_share_estimate: Option<f64>,
}

/// Received, by channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Received {
    /// Online.
    pub online: u64,
    /// At a desk.
    pub direct: u64,
    /// By post.
    pub postal: u64,
    /// Without a channel.
    pub unknown: u64,
    /// All of them.
    pub total: u64,
}

/// Resolved, by timing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// On a local day before the due day.
    pub early: u64,
    /// On the due day, not after the deadline (or without one).
    pub on_time: u64,
    /// After the deadline.
    pub late: u64,
    /// All of them.
    pub total: u64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(0)
}

/// `num / den`; `None` without a denominator (no items: no value, never zero). The one
/// ratio of the derived figures (the view, the period tables, the 766 scorecard).
#[allow(clippy::cast_precision_loss)]
#[must_use]
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The table of the period tallied in `t`, with the open figures now (`gauges`) and the
/// open-and-received count whenever received.
#[must_use]
pub fn table(t: &Tally, open_received: i64, gauges: &AgencyGauges) -> Table {
    let received = Received {
        online: count(t.received[0].into()),
        direct: count(t.received[1].into()),
        postal: count(t.received[2].into()),
        unknown: count(t.received[3].into()),
        total: count(t.received.iter().map(|&n| i64::from(n)).sum()),
    };
    let closed = |how: u8| count(i64::from(t.closed[usize::from(how)]));
    let resolved = Resolved {
        early: closed(EARLY),
        on_time: closed(ON_TIME),
        late: closed(LATE),
        total: closed(EARLY) + closed(ON_TIME) + closed(LATE),
    };
    // Open now: in progress, waiting for the citizen, paused (submitted ones are not
    // received yet).
    let open: u64 = gauges.open[1..].iter().sum();
    let open_overdue = gauges.overdue.min(open);
    let open_within_time = open - open_overdue;
    let carried_over =
        count(open_received - i64::from(t.open)) + count(i64::from(t.closed_carried));
    Table {
        carried_over,
        received,
        resolved,
        closed_without_result: closed(WITHOUT_RESULT),
        open_within_time,
        open_overdue,
        progress_estimate: ratio(
            resolved.early + resolved.on_time + open_within_time,
            resolved.total + open,
        ),
        online_share_estimate: ratio(received.online, received.total),
    }
}

/// The figures of one agency (or roll-up) at an instant, as the API writes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Received and resolved today.
    pub today: Today,
    /// This month to date.
    pub month: Table,
    /// This year to date (lũy kế).
    pub year: Table,
}

/// Received and resolved today.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Today {
    /// Received today.
    pub received: u64,
    /// Resolved today (early, on time or late).
    pub resolved: u64,
}

/// The figures of `p` with the open figures now.
#[must_use]
pub fn figures(p: &AgencyPeriods, gauges: &AgencyGauges) -> Figures {
    let today = table(&p.today, p.open_received, gauges);
    Figures {
        today: Today {
            received: today.received.total,
            resolved: today.resolved.total,
        },
        month: table(&p.month, p.open_received, gauges),
        year: table(&p.year, p.open_received, gauges),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_carries_over_what_was_open_before_the_period_and_estimates_progress() {
        // This month: 10 received (6 online), of them 3 still open; 5 resolved (2 early, 2 on
        // time, 1 late), 2 of which were received before the month; 1 rejected. Open now
        // and received: 7 (so 4 from before the month), 2 of them overdue.
        let month = Tally {
            received: [6, 3, 1, 0],
            closed: [2, 2, 1, 1],
            closed_carried: 2,
            open: 3,
        };
        let gauges = AgencyGauges {
            open: [1, 5, 1, 1],
            overdue: 2,
            ..AgencyGauges::default()
        };
        let t = table(&month, 7, &gauges);
        assert_eq!(t.carried_over, 4 + 2);
        assert_eq!((t.received.total, t.received.online), (10, 6));
        assert_eq!((t.resolved.total, t.resolved.late), (5, 1));
        assert_eq!(t.closed_without_result, 1);
        assert_eq!((t.open_within_time, t.open_overdue), (5, 2));
        // (2 + 2 + 5) / (5 + 7)
        assert_eq!(t.progress_estimate, Some(9.0 / 12.0));
        assert_eq!(t.online_share_estimate, Some(0.6));
        let empty = table(&Tally::default(), 0, &AgencyGauges::default());
        assert_eq!(
            (empty.progress_estimate, empty.online_share_estimate),
            (None, None)
        );
    }
}

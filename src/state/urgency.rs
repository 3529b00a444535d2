//! What is urgent or silent at an instant: a dossier overdue, due soon or stalled, a
//! monitored system silent. The one place these tests are written; the view, the alert
//! rules and the API's filters all ask here.

use super::dossiers::Dossier;
use super::{Params, StalledTest, State};
use crate::decode::DossierStatus;
use crate::time::Ts;

/// The urgency tests at one instant, built once per pass (see [`Params::urgency_at`]).
pub struct Urgency<'a> {
    now: Ts,
    due_soon: DueSoonTest<'a>,
    stalled: StalledTest<'a>,
}

/// How far ahead "due soon" looks: calendar time, or working time when the working calendar
/// is on (a deadline on Monday morning is then due soon from Friday afternoon, not from
/// Sunday morning when nobody can act on it).
enum DueSoonTest<'a> {
    /// Due soon when `due_at` is at most this instant.
    Calendar { limit: Ts },
    /// Due soon when the working seconds left until `due_at` are at most `secs`.
    Working {
        work: &'a crate::time::workcal::WorkCalendar,
        cal: &'a crate::time::Calendar,
        /// Working seconds at `now`.
        now: i64,
        secs: i64,
    },
}

impl Params {
    /// The urgency tests at `now`: build once, apply to every dossier.
    #[must_use]
    pub fn urgency_at(&self, now: Ts) -> Urgency<'_> {
        let due_soon = match &self.work {
            None => DueSoonTest::Calendar {
                limit: now.plus_secs(self.due_soon_secs),
            },
            Some(work) => DueSoonTest::Working {
                work,
                cal: &self.cal,
                now: work.working_secs_at(&self.cal, now),
                secs: self.due_soon_secs,
            },
        };
        Urgency {
            now,
            due_soon,
            stalled: self.stalled_at(now),
        }
    }
}

impl Urgency<'_> {
    /// Overdue (quá hạn): in progress and `due_at` before now. A dossier waiting for the
    /// citizen or paused is never overdue.
    #[must_use]
    pub fn is_overdue(&self, d: &Dossier) -> bool {
        in_progress(d) && d.due_at().is_some_and(|due| due < self.now)
    }

    /// Late by the 766 rules while open and past submission: more than one supplement
    /// request, stopped (waiting for the citizen, paused) after its deadline, or overdue.
    #[must_use]
    pub fn is_late_766(&self, d: &Dossier) -> bool {
        matches!(d.open_index(), Some(1..)) && (d.late_766_by_events() || self.is_overdue(d))
    }

    /// Due soon (sắp đến hạn): in progress, not overdue, and `due_at` within the horizon,
    /// counted in calendar time or, with the working calendar on, in working time.
    #[must_use]
    pub fn is_due_soon(&self, d: &Dossier) -> bool {
        in_progress(d)
            && d.due_at().is_some_and(|due| {
                due >= self.now
                    && match &self.due_soon {
                        DueSoonTest::Calendar { limit } => due <= *limit,
                        DueSoonTest::Working {
                            work,
                            cal,
                            now,
                            secs,
                        } => work.working_secs_at(cal, due) - now <= *secs,
                    }
            })
    }

    /// Stalled (chậm luân chuyển): in progress and no event for longer than the threshold, in
    /// calendar or working time.
    #[must_use]
    pub fn is_stalled(&self, d: &Dossier) -> bool {
        in_progress(d) && self.stalled.is_stalled(d.last_event_at())
    }
}

fn in_progress(d: &Dossier) -> bool {
    d.status() == DossierStatus::InProgress
}

impl State {
    /// Monitored systems (heard from or configured) silent at `now`.
    pub fn silent_systems(&self, now: Ts) -> impl Iterator<Item = &str> {
        let p = &self.params;
        let heard = self.soc.systems.keys().map(String::as_str);
        let listed = p
            .systems
            .iter()
            .map(String::as_str)
            .filter(|s| !self.soc.systems.contains_key(*s));
        heard.chain(listed).filter(move |s| {
            self.soc
                .system_silent(s, p.system_silent_secs, self.started_at, now)
        })
    }
}

//! The dossier figures that depend on "now" (open, overdue, due soon, stalled per agency, and
//! the overdue and stalled dossiers the alert rules list), kept up to date as events apply
//! and as time passes, so that a tick costs what changed since the last one, not what is
//! held (issue 11).
//!
//! The tracker holds these figures at one instant, `at`. An event reclassifies its dossier
//! at `at` (its figures before and after). Every in-progress dossier has a timer at the next
//! instant its class could change (it enters "due soon", becomes overdue or stalled);
//! [`Dossiers::advance`] moves `at` forward and reclassifies only the dossiers whose timers
//! fired. Timers are lazy: a dossier whose next change moves later keeps its earlier timer,
//! which then finds nothing changed and re-arms; one whose next change moves earlier gets
//! a new timer and its old entry is skipped. Stale entries are compacted away when they
//! outnumber the dossiers.
//!
//! Closed dossiers wait in a second lazy queue, ordered by their latest event, to be
//! forgotten after the retention (housekeeping), and every dossier in a third, for eviction
//! at the memory cap: both cost what expires, not what is held.
//!
//! The tracker is a cache of figures derived from the dossiers, not state: it is excluded
//! from equality and checkpoints and rebuilt (one pass) at the first `advance` after a load,
//! or when the clock goes back.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use serde::Serialize;

use super::{Contribution, Dossier, Dossiers};
use crate::decode::DossierStatus;
use crate::state::Params;
use crate::state::urgency::Urgency;
use crate::time::{NANOS_PER_SEC, Ts};

/// Dossier gauges of one agency (or label, or all agencies together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AgencyGauges {
    /// Dossiers in each open status: submitted, in progress, waiting for the citizen, paused.
    pub open: [u64; 4],
    /// In progress and past `due_at`.
    pub overdue: u64,
    /// In progress, not overdue, due within the due-soon horizon.
    pub due_soon: u64,
    /// In progress, no event for longer than the stalled threshold.
    pub stalled: u64,
    /// Open and received (in progress, waiting for the citizen or paused) and late by the
    /// rules of the 766 progress indicator: past its deadline in progress, its clock stopped
    /// after it, or more than one supplement request (`Dossier::late_766_by_events`).
    #[serde(skip)]
    pub late_766: u64,
}

impl AgencyGauges {
    /// The dossiers handled and open now (in progress, waiting for the citizen, paused; not
    /// those only submitted), and of them late by the 766 rules: what the scorecard counts
    /// open at a period's end.
    #[must_use]
    pub fn open_766(&self) -> crate::state::periods::OpenAtEnd {
        let n = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        crate::state::periods::OpenAtEnd {
            open: n(self.open[1] + self.open[2] + self.open[3]),
            late: n(self.late_766),
        }
    }

    /// Adds `other` to these gauges.
    pub fn add(&mut self, other: &AgencyGauges) {
        for (a, b) in self.open.iter_mut().zip(other.open) {
            *a += b;
        }
        self.overdue += other.overdue;
        self.due_soon += other.due_soon;
        self.stalled += other.stalled;
        self.late_766 += other.late_766;
    }

    fn count(&mut self, c: &Class, add: bool) {
        let step = |v: &mut u64| {
            *v = if add { *v + 1 } else { v.saturating_sub(1) };
        };
        if let Some(i) = c.open {
            step(&mut self.open[i]);
        }
        if c.overdue.is_some() {
            step(&mut self.overdue);
        }
        if c.due_soon {
            step(&mut self.due_soon);
        }
        if c.stalled.is_some() {
            step(&mut self.stalled);
        }
        if c.late_766 {
            step(&mut self.late_766);
        }
    }
}

/// Overdue or stalled dossiers of one agency, most urgent first: `(due_at or latest event,
/// slot in the store)`. Slots keep the entries small (no copy of the id); ties are put in
/// dossier id order when the members are listed ([`Dossiers::most_urgent`]).
pub type Members = BTreeSet<(i64, u32)>;

/// How one dossier counts at an instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Class {
    agency: u32,
    procedure: u32,
    /// Index of its open status.
    open: Option<usize>,
    /// Overdue, with its `due_at`.
    overdue: Option<i64>,
    due_soon: bool,
    /// Stalled, with its latest event.
    stalled: Option<i64>,
    /// Closed (not open): waits to be forgotten after the retention.
    closed: bool,
    /// Open, received and late by the 766 rules.
    late_766: bool,
}

impl Class {
    /// The class of `d` under the tests `u`.
    pub(super) fn of(d: &Dossier, u: &Urgency<'_>) -> Self {
        Self {
            agency: d.agency(),
            procedure: d.procedure().unwrap_or(u32::MAX),
            open: d.open_index(),
            overdue: u.is_overdue(d).then(|| d.due_at().map_or(0, |t| t.0)),
            due_soon: u.is_due_soon(d),
            stalled: u.is_stalled(d).then(|| d.last_event_at().0),
            closed: d.is_closed(),
            late_766: u.is_late_766(d),
        }
    }
}

/// No timer armed.
pub(super) const UNARMED: i64 = i64::MAX;

/// The figures at one instant, and the timers that move them.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    /// The instant the figures hold at; `None` until the first `advance` (after a load).
    at: Option<Ts>,
    /// Gauges by interned agency id.
    gauges: Vec<AgencyGauges>,
    /// Overdue dossiers by interned agency id.
    overdue: Vec<Members>,
    /// Stalled dossiers by interned agency id.
    stalled: Vec<Members>,
    /// `(instant, slot)`: reclassify the dossier at `slot` at that instant.
    timers: Lazy,
    /// `(latest event, slot)` of closed dossiers, to forget after the retention.
    closed: Lazy,
    /// The agencies whose overdue or stalled members changed, in order.
    changes: crate::state::ChangeLog<u32>,
    /// Overdue dossiers by interned procedure id (which carries the sector); those without
    /// a procedure are not counted.
    overdue_procedures: Vec<u64>,
}

fn slot_of(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, agency: u32) -> &mut T {
    let i = agency as usize;
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    &mut v[i]
}

/// Stale entries a lazy queue may hold beyond half the dossiers before it is compacted.
const STALE_MARGIN: usize = 4096;

/// A queue of `(instant, slot)` with stale entries (a later timer, a moved slot) left in
/// place until a compaction: the dossier tracker's timers and retention queue, and the
/// eviction order.
type Lazy = BinaryHeap<Reverse<(i64, u32)>>;

/// Entries a lazy queue may hold for `n` dossiers before it is compacted: one per dossier
/// and half as many stale ones.
fn stale_bound(n: usize) -> usize {
    n + n / 2 + STALE_MARGIN
}

/// Pushes onto a lazy queue, growing its buffer by a quarter at a time rather than doubling,
/// so that at the bound it holds little more than the bound.
fn push(queue: &mut Lazy, at: i64, slot: u32) {
    if queue.len() == queue.capacity() {
        queue.reserve_exact(queue.len() / 4 + 1024);
    }
    queue.push(Reverse((at, slot)));
}

/// Replaces the entries of `queue` with `entries`, in its own buffer: compactions reuse the
/// memory the queue grew to instead of allocating (and freeing) a buffer each time, so that
/// resident memory stays put once the queue has reached its bound.
fn refill(queue: &mut Lazy, entries: impl IntoIterator<Item = (i64, u32)>) {
    let mut v = std::mem::take(queue).into_vec();
    v.clear();
    v.extend(entries.into_iter().map(Reverse));
    *queue = BinaryHeap::from(v);
}

impl Tracker {
    /// The instant the figures hold at, once tracking.
    #[must_use]
    pub fn at(&self) -> Option<Ts> {
        self.at
    }

    /// Gauges by interned agency id (shorter than the interner when the last agencies have
    /// no dossier).
    #[must_use]
    pub fn gauges(&self) -> &[AgencyGauges] {
        &self.gauges
    }

    /// The number of overdue dossiers by interned procedure id.
    #[must_use]
    pub fn overdue_by_procedure(&self) -> &[u64] {
        &self.overdue_procedures
    }

    /// Overdue dossiers by interned agency id (empty sets for agencies without any).
    #[must_use]
    pub fn overdue_of(&self) -> &[Members] {
        &self.overdue
    }

    /// Stalled dossiers by interned agency id.
    #[must_use]
    pub fn stalled_of(&self) -> &[Members] {
        &self.stalled
    }

    /// The agencies whose overdue or stalled dossiers changed, in order (see
    /// [`crate::state::ChangeLog`]); a rebuild restarts it, so that every reader reads everything again.
    #[must_use]
    pub fn changes(&self) -> &crate::state::ChangeLog<u32> {
        &self.changes
    }

    /// Moves a dossier from class `before` to `after` (`None`: absent).
    fn update(&mut self, slot: u32, before: Option<Class>, after: Option<Class>) {
        if before == after {
            return;
        }
        if let Some(b) = &before {
            grow(&mut self.gauges, b.agency).count(b, false);
        }
        if let Some(a) = &after {
            grow(&mut self.gauges, a.agency).count(a, true);
        }
        for (c, add) in [(&before, false), (&after, true)] {
            if let Some(c) = c
                && c.overdue.is_some()
                && c.procedure != u32::MAX
            {
                let n = grow(&mut self.overdue_procedures, c.procedure);
                *n = if add { *n + 1 } else { n.saturating_sub(1) };
            }
        }
        let key = |c: &Option<Class>, f: fn(&Class) -> Option<i64>| {
            c.as_ref().and_then(|c| f(c).map(|k| (c.agency, k)))
        };
        for (sets, f) in [
            (
                &mut self.overdue,
                (|c: &Class| c.overdue) as fn(&Class) -> Option<i64>,
            ),
            (&mut self.stalled, |c: &Class| c.stalled),
        ] {
            let (old, new) = (key(&before, f), key(&after, f));
            if old == new {
                continue;
            }
            if let Some((agency, k)) = old {
                grow(sets, agency).remove(&(k, slot));
            }
            if let Some((agency, k)) = new {
                grow(sets, agency).insert((k, slot));
            }
            for (agency, _) in old.into_iter().chain(new) {
                self.changes.push(agency);
            }
        }
    }
}

/// The next instant after `at` at which the class of `d` can change, if any: for an
/// in-progress dossier, when it enters "due soon", becomes overdue, or stalls.
fn next_change(p: &Params, d: &Dossier, at: Ts) -> Option<i64> {
    if d.status() != DossierStatus::InProgress {
        return None;
    }
    let mut next = UNARMED;
    let mut consider = |t: i64| {
        if t > at.0 {
            next = next.min(t);
        }
    };
    if let Some(due) = d.due_at() {
        match &p.work {
            None => consider(
                due.0
                    .saturating_sub(p.due_soon_secs.saturating_mul(NANOS_PER_SEC)),
            ),
            Some(work) => {
                // Due soon once the working seconds left fall to the horizon; they shrink by
                // at most one a second, so not before `ahead` seconds from `at` (the timer
                // then checks again).
                let ahead = work.working_secs_at(&p.cal, due)
                    - work.working_secs_at(&p.cal, at)
                    - p.due_soon_secs;
                if ahead > 0 {
                    consider(at.0.saturating_add(ahead.saturating_mul(NANOS_PER_SEC)));
                }
            }
        }
        consider(due.0.saturating_add(1));
    }
    let last = d.last_event_at().0;
    match &p.work {
        None => consider(
            last.saturating_add(p.stalled_secs.saturating_mul(NANOS_PER_SEC))
                .saturating_add(1),
        ),
        Some(work) => {
            // Stalled once the working seconds at "now" exceed those at the latest event by
            // more than the threshold; they grow by at most one a second, so not before
            // `remaining` seconds from `at` (the timer then checks again).
            let remaining = work.working_secs_at(&p.cal, Ts(last)) + p.stalled_secs
                - work.working_secs_at(&p.cal, at);
            if remaining >= 0 {
                consider(
                    at.0.saturating_add(remaining.saturating_mul(NANOS_PER_SEC))
                        .max(at.0.saturating_add(1)),
                );
            }
        }
    }
    (next != UNARMED).then_some(next)
}

impl Dossiers {
    /// The figures at the tracker's instant.
    #[must_use]
    pub fn tracker(&self) -> &Tracker {
        &self.track
    }

    /// Stops tracking until the next [`Dossiers::advance`], which rebuilds the figures (after
    /// the thresholds changed).
    pub fn untrack(&mut self) {
        let mut changes = std::mem::take(&mut self.track.changes);
        changes.restart();
        self.track = Tracker {
            changes,
            ..Tracker::default()
        };
        for d in self.slab.iter_mut() {
            d.armed.0 = UNARMED;
        }
    }

    /// Moves the figures to `now`: reclassifies the dossiers whose timers fired since the
    /// last call. The first call (after a start or a load), or a clock gone back, rebuilds
    /// them in one pass.
    pub fn advance(&mut self, p: &Params, now: Ts) {
        let Some(prev) = self.track.at.filter(|at| *at <= now) else {
            self.rebuild(p, now);
            return;
        };
        self.track.at = Some(now);
        let (before, after) = (p.urgency_at(prev), p.urgency_at(now));
        while let Some(&Reverse((t, slot))) = self.track.timers.peek() {
            if t > now.0 {
                break;
            }
            self.track.timers.pop();
            let Some(d) = self.slab.get_mut(slot as usize) else {
                continue;
            };
            if d.armed.0 != t {
                continue;
            }
            d.armed.0 = UNARMED;
            let (old, new) = (Class::of(d, &before), Class::of(d, &after));
            if old != new {
                self.track.update(slot, Some(old), Some(new));
            }
            self.arm(p, slot as usize, now);
        }
    }

    /// Classifies every dossier at `now` and arms its timer.
    fn rebuild(&mut self, p: &Params, now: Ts) {
        let u = p.urgency_at(now);
        let mut changes = std::mem::take(&mut self.track.changes);
        changes.restart();
        self.track = Tracker {
            at: Some(now),
            changes,
            ..Tracker::default()
        };
        for i in 0..self.slab.len() {
            let class = Class::of(&self.slab[i], &u);
            self.track.update(slot_of(i), None, Some(class));
            self.slab[i].armed.0 = UNARMED;
            self.arm(p, i, now);
            if class.closed {
                let last = self.slab[i].last_event_at().0;
                push(&mut self.track.closed, last, slot_of(i));
            }
        }
    }

    /// Arms the timer of the dossier at `i` for its next change after `at`, unless an
    /// earlier one is armed.
    ///
    /// Reads first and writes only when the timer moves earlier: most events move a
    /// dossier's next change later (its latest event is newer), and a write would cost the
    /// chunk's copy-on-write check (an atomic operation) for nothing.
    fn arm(&mut self, p: &Params, i: usize, at: Ts) {
        let d = &self.slab[i];
        if let Some(t) = next_change(p, d, at)
            && t < d.armed.0
        {
            self.slab[i].armed.0 = t;
            push(&mut self.track.timers, t, slot_of(i));
            if self.track.timers.len() > stale_bound(self.slab.len()) {
                self.compact();
            }
        }
    }

    /// Drops the stale timer and retention entries: one entry per armed or closed dossier,
    /// each queue refilled in its own buffer.
    fn compact(&mut self) {
        let slab = &self.slab;
        let armed = slab
            .iter()
            .enumerate()
            .filter(|(_, d)| d.armed.0 != UNARMED)
            .map(|(i, d)| (d.armed.0, slot_of(i)));
        refill(&mut self.track.timers, armed);
        let closed = slab
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_closed())
            .map(|(i, d)| (d.last_event_at().0, slot_of(i)));
        refill(&mut self.track.closed, closed);
    }

    /// The class of the dossier at `i` at the tracker's instant, when tracking.
    pub(super) fn class_at(&self, p: &Params, i: usize) -> Option<Class> {
        let at = self.track.at?;
        Some(Class::of(&self.slab[i], &p.urgency_at(at)))
    }

    /// After an event changed the dossier at `i` from class `before` (`None`: new): updates
    /// the figures, arms its timer, and queues it for retention when it closed.
    pub(super) fn changed(&mut self, p: &Params, i: usize, before: Option<Class>, was_new: bool) {
        let Some(at) = self.track.at else {
            return;
        };
        let after = Class::of(&self.slab[i], &p.urgency_at(at));
        if before != Some(after) {
            self.track.update(slot_of(i), before, Some(after));
        }
        self.arm(p, i, at);
        if after.closed && (was_new || before.is_some_and(|b| !b.closed)) {
            let last = self.slab[i].last_event_at().0;
            push(&mut self.track.closed, last, slot_of(i));
            if self.track.closed.len() > stale_bound(self.slab.len()) {
                self.compact();
            }
        }
    }

    /// Forgets the closed dossiers whose latest event is before `cutoff`, telling `removed`
    /// about each; returns how many. Costs what expires: closed dossiers wait in order of
    /// their latest event (a dossier whose latest event moved on is re-queued when its old
    /// place comes up).
    pub fn forget_closed_before(
        &mut self,
        p: &Params,
        cutoff: Ts,
        mut removed: impl FnMut(&Dossier),
    ) -> usize {
        let mut n = 0;
        if self.track.at.is_none() {
            return self.remove_where(p, |d| d.is_closed() && d.last_event_at() < cutoff, removed);
        }
        while let Some(&Reverse((t, slot))) = self.track.closed.peek() {
            if t >= cutoff.0 {
                break;
            }
            self.track.closed.pop();
            let i = slot as usize;
            let Some(d) = self.slab.get(i) else {
                continue;
            };
            if !d.is_closed() {
                continue;
            }
            let last = d.last_event_at().0;
            if last < cutoff.0 {
                removed(d);
                self.remove(p, i);
                n += 1;
            } else {
                push(&mut self.track.closed, last, slot);
            }
        }
        n
    }

    /// Evicts the dossier whose latest event is oldest (at the memory cap, see
    /// [`crate::state::evict`]); returns what it contributed to the period tallies, if one
    /// was evicted.
    pub fn evict_oldest(&mut self, p: &Params) -> Option<Contribution> {
        if !self.oldest.1 {
            let all = self
                .slab
                .iter()
                .enumerate()
                .map(|(i, d)| (d.last_event_at().0, slot_of(i)));
            refill(&mut self.oldest.0, all);
            self.oldest.1 = true;
        }
        while let Some(Reverse((t, slot))) = self.oldest.0.pop() {
            let Some(last) = self.slab.get(slot as usize).map(|d| d.last_event_at().0) else {
                continue;
            };
            if last == t {
                let contributed = self.slab.get(slot as usize).map(Dossier::contribution);
                self.remove(p, slot as usize);
                return contributed;
            }
            push(&mut self.oldest.0, last, slot);
        }
        None
    }

    /// Queues the new dossier at `i` for eviction.
    pub(super) fn queue_new(&mut self, i: usize) {
        if !self.oldest.1 {
            return;
        }
        if self.oldest.0.len() > stale_bound(self.slab.len()) {
            // Mostly stale: rebuilt (in its buffer) at the next eviction.
            self.oldest.1 = false;
            return;
        }
        let last = self.slab[i].last_event_at().0;
        push(&mut self.oldest.0, last, slot_of(i));
    }

    /// The ids of the `k` most urgent of `members`: in order of their key, ties by
    /// dossier id.
    #[must_use]
    pub fn most_urgent(&self, members: &Members, k: usize) -> Vec<&str> {
        let mut taken: Vec<(i64, &str)> = Vec::with_capacity(k);
        let mut boundary = None;
        for &(t, slot) in members {
            if taken.len() >= k && boundary != Some(t) {
                break;
            }
            if let Some(d) = self.slab.get(slot as usize) {
                taken.push((t, d.id()));
                boundary = Some(t);
            }
        }
        taken.sort_unstable();
        taken.truncate(k);
        taken.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes the dossier at `i` from the store and the figures.
    pub(super) fn remove(&mut self, p: &Params, i: usize) {
        let before = self.class_at(p, i);
        if let Some(b) = before {
            self.track.update(slot_of(i), Some(b), None);
        }
        let last = self.slab.len() - 1;
        self.remove_at(i);
        if i != last && self.oldest.1 {
            let moved = self.slab[i].last_event_at().0;
            push(&mut self.oldest.0, moved, slot_of(i));
        }
        if i != last
            && let Some(moved) = self.class_at(p, i)
        {
            // The former last dossier moved to `i`: its entries follow it.
            for (sets, key) in [
                (&mut self.track.overdue, moved.overdue),
                (&mut self.track.stalled, moved.stalled),
            ] {
                if let Some(k) = key {
                    let set = grow(sets, moved.agency);
                    set.remove(&(k, slot_of(last)));
                    set.insert((k, slot_of(i)));
                }
            }
            let d = &self.slab[i];
            if d.armed.0 != UNARMED {
                push(&mut self.track.timers, d.armed.0, slot_of(i));
            }
            if d.is_closed() {
                let last = d.last_event_at().0;
                push(&mut self.track.closed, last, slot_of(i));
            }
        }
    }
}

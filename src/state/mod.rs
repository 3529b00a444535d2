//! State: everything iocd knows, changed only by [`State::apply`].
//!
//! `apply` is deterministic: given the same inputs with the same arrival times it builds
//! the same state, and for a set of events it builds the same state whatever their order
//! (docs/contract.md §3.1's order-independence rule; see the property test in `tests.rs`). Time-based
//! figures (overdue, silent, windows) are not stored: [`State::view`] derives them for a
//! given `now`. The whole state is serde-serialisable for checkpoints and replay.

pub mod counters;
pub mod cow;
pub mod dedupe;
pub mod dossiers;
pub mod evict;
pub mod forgotten;
pub mod intern;
pub mod ops;
pub mod periods;
pub mod process;
pub mod query;
pub mod soc;
pub mod urgency;
pub mod vc;
pub mod windows;

use arrayvec::ArrayVec;
use serde::{Deserialize, Serialize};

use crate::decode::action::Action;
use crate::decode::{Body, Event, Reason, Source};
use crate::time::workcal::WorkCalendar;
use crate::time::{Calendar, Ts};
pub use counters::{Counters, Timing};
use dedupe::Dedupe;
use dossiers::{Ctx, Dossiers};
use intern::Interner;
pub use process::{ACTIONS_LEVEL, GROUP, Message, Processed, is_actions_topic};
use soc::SocState;
use vc::{VcState, VcThresholds};
use windows::Windows;

/// An ordering key: "latest" is the greatest `(occurred_at, event_id)`, "earliest" the
/// smallest (docs/contract.md §3.1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    /// `occurred_at`.
    pub ts: Ts,
    /// `event_id`, breaking ties in byte order.
    pub id: Box<str>,
}

impl Key {
    /// The key of an event.
    #[must_use]
    pub fn of(ev: &Event<'_>) -> Self {
        Self {
            ts: ev.occurred_at,
            id: ev.event_id.as_ref().into(),
        }
    }
}

/// Entries a [`ChangeLog`] keeps; a reader further behind recomputes from the whole part.
pub const CHANGE_LOG_MAX: usize = 1 << 16;

/// What changed in one part of the state, in order, for a reader that follows the changes
/// (the derive stage) instead of rescanning the part: a bounded log with sequence numbers.
/// A reader that fell behind its start has missed entries and recomputes from the whole
/// part. A cache, not state: equal whatever it holds, and never saved.
#[derive(Clone, Debug)]
pub struct ChangeLog<T> {
    entries: std::collections::VecDeque<T>,
    /// Sequence number of the first entry.
    start: u64,
}

impl<T> Default for ChangeLog<T> {
    fn default() -> Self {
        Self {
            entries: std::collections::VecDeque::new(),
            start: 0,
        }
    }
}

impl<T> PartialEq for ChangeLog<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> ChangeLog<T> {
    /// Records a change, dropping the oldest entry when full.
    pub fn push(&mut self, change: T) {
        if self.entries.len() >= CHANGE_LOG_MAX {
            self.entries.pop_front();
            self.start += 1;
        }
        self.entries.push_back(change);
    }

    /// The sequence number the next entry will have: where a reader that has read
    /// everything stands.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.start + self.entries.len() as u64
    }

    /// The entries from sequence number `seq` on, or `None` when some of them were
    /// dropped, or the log was [restarted](ChangeLog::restart) since (the reader must
    /// recompute from the whole part).
    #[must_use]
    pub fn since(&self, seq: u64) -> Option<impl Iterator<Item = &T>> {
        if seq > self.end() {
            return None;
        }
        let skip = usize::try_from(seq.checked_sub(self.start)?).ok()?;
        Some(self.entries.iter().skip(skip))
    }

    /// Drops every entry and moves past them, so that every reader recomputes (after the
    /// part was rebuilt).
    pub fn restart(&mut self) {
        self.start = self.end() + 1;
        self.entries.clear();
    }
}

/// Thresholds and limits the state and its views use, in the state's own units.
///
/// The state knows nothing of the settings: `app::params` builds these from them, and also
/// gives `Params` its `Default` (the shipped configuration's values), so that the defaults
/// are written once, in `config/iocd.toml`.
#[derive(Clone, Debug)]
pub struct Params {
    /// The local calendar.
    pub cal: Calendar,
    /// Dedupe horizon in seconds.
    pub dedupe_horizon_secs: i64,
    /// Dedupe capacity.
    pub dedupe_max_ids: usize,
    /// How long closed things stay, in seconds.
    pub retention_secs: i64,
    /// Agencies with their own label.
    pub agency_label_limit: usize,
    /// Due-soon horizon in seconds.
    pub due_soon_secs: i64,
    /// Stalled threshold in seconds (working seconds when `work` is set).
    pub stalled_secs: i64,
    /// The working calendar, when enabled: "stalled" then counts working time.
    pub work: Option<std::sync::Arc<WorkCalendar>>,
    /// Video-conferencing thresholds.
    pub vc: VcThresholds,
    /// SOC system silence threshold in seconds.
    pub system_silent_secs: i64,
    /// Configured monitored systems.
    pub systems: Vec<String>,
    /// The most items of each kind held.
    pub caps: evict::Caps,
    /// Feed silence threshold in seconds.
    pub source_silent_secs: i64,
    /// How long operator actions are kept (the audit horizon), in seconds.
    pub ops_horizon_secs: i64,
    /// The most operator actions kept.
    pub ops_max_actions: usize,
}

impl Params {
    /// The "stalled" test at `now`: whether a dossier whose latest event is at `last` has
    /// been without progress for longer than the threshold, in calendar time or, with a
    /// working calendar, in working time.
    #[must_use]
    pub fn stalled_at(&self, now: Ts) -> StalledTest<'_> {
        match &self.work {
            None => StalledTest::Calendar {
                before: now.minus_secs(self.stalled_secs),
            },
            Some(work) => StalledTest::Working {
                work,
                cal: &self.cal,
                latest: work.working_secs_at(&self.cal, now) - self.stalled_secs,
            },
        }
    }
}

/// See [`Params::stalled_at`].
pub enum StalledTest<'a> {
    /// Calendar time: stalled when the latest event is before this instant.
    Calendar {
        /// `now` minus the threshold.
        before: Ts,
    },
    /// Working time: stalled when the working seconds at the latest event are below this.
    Working {
        /// The working calendar.
        work: &'a WorkCalendar,
        /// The local calendar.
        cal: &'a Calendar,
        /// Working seconds at `now` minus the threshold.
        latest: i64,
    },
}

impl StalledTest<'_> {
    /// Whether a dossier whose latest event is at `last` is stalled.
    #[must_use]
    pub fn is_stalled(&self, last: Ts) -> bool {
        match self {
            StalledTest::Calendar { before } => last < *before,
            StalledTest::Working { work, cal, latest } => work.working_secs_at(cal, last) < *latest,
        }
    }
}

/// One input to the state machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<'a> {
    /// A decoded, valid event.
    Event(Event<'a>),
    /// A payload that failed decoding.
    Rejected {
        /// Its source.
        source: Source,
        /// Why.
        reason: Reason,
    },
    /// An operator action (acknowledge, assign, silence…), applied at its own `at`.
    Action(Action),
    /// Housekeeping at this instant: prune windows and forget closed things past retention.
    Tick,
}

/// What `apply` did with an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The event changed state and counters.
    Applied,
    /// The event was a duplicate and changed nothing but the duplicate counter.
    Duplicate,
    /// A rejection was counted.
    Rejected,
    /// Housekeeping ran.
    Ticked,
}

/// Everything iocd knows. Serialises as its [`FrozenState`] does.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct State {
    #[serde(skip)]
    params: Params,
    /// When the daemon first started with this data (for "silent since start").
    pub started_at: Ts,
    /// Counters and histograms.
    pub counters: Counters,
    dedupe: Dedupe,
    windows: Windows,
    /// Agency codes.
    pub agencies: Interner,
    /// Procedure codes.
    pub procedures: Interner,
    /// Dossiers.
    pub dossiers: Dossiers,
    /// Dossiers forgotten after their retention, so late events do not revive them.
    pub forgotten: forgotten::Forgotten,
    /// Meetings and endpoints.
    pub vc: VcState,
    /// Incidents and systems.
    pub soc: SocState,
    /// `occurred_at` of each source's latest accepted event.
    pub last_event: [Option<Ts>; 3],
    /// One-stop tallies by agency and local day, month and year.
    pub periods: periods::Periods,
    /// Operator actions: the audit trail, acknowledgements, assignments, silences.
    pub ops: ops::Ops,
    /// Items evicted at the caps since the process started (not saved).
    #[serde(skip)]
    pub evictions: evict::Evictions,
    /// Events for forgotten dossiers since the process started (not saved).
    #[serde(skip)]
    pub forgotten_hits: forgotten::Hits,
}

/// The state frozen at one instant, for a checkpoint written on another thread while the
/// pipeline goes on applying events: the large parts (dossiers, dedupe memory, tombstones)
/// shared copy-on-write ([`cow`]), the small ones cloned. Its fields, in this order, are
/// the checkpoint's encoding of [`State`] (the `Deserialize` of `State` reads them back).
#[derive(Clone, Debug, Serialize)]
pub struct FrozenState {
    started_at: Ts,
    counters: Counters,
    dedupe: dedupe::FrozenDedupe,
    windows: Windows,
    agencies: Interner,
    procedures: Interner,
    dossiers: cow::Frozen<dossiers::Dossier, cow::Chunk<dossiers::Dossier>>,
    forgotten: forgotten::FrozenForgotten,
    vc: vc::VcSaved,
    soc: soc::SocSaved,
    last_event: [Option<Ts>; 3],
    periods: periods::Periods,
    ops: ops::Ops,
}

/// The state as an older checkpoint format wrote it, read into the current [`State`]:
/// format 1 (iocd 0.1, before the period tallies: they are rebuilt from the dossiers it
/// holds, open ones and closed ones within their retention, so an upgrade keeps every other
/// figure and the month so far counts what is still in memory) and format 2 (before the
/// rejection reason `mapping_failed`: its counts start at zero), format 3 (before the
/// operator actions: none) and format 4 (before contract 1.2: no payment, rating or facts
/// of 1.2 on any dossier, and no counts of `paid` and `rated`).
pub struct StateOlder<const FORMAT: u32>(pub State);

/// The fields of the state in formats 1 to 4, in their order. `J`: the rejections of one
/// source (nine reasons in formats 1 and 2). `P`: the period tallies (format 1 has none,
/// `()`, which postcard writes as nothing). `O`: the operator actions (only format 4).
#[derive(Deserialize)]
#[serde(rename = "State")]
struct Before12<J, P, O> {
    started_at: Ts,
    counters: counters::CountersBefore12<J>,
    dedupe: Dedupe,
    windows: Windows,
    agencies: Interner,
    procedures: Interner,
    dossiers: dossiers::Dossiers4,
    forgotten: forgotten::Forgotten,
    vc: VcState,
    soc: SocState,
    last_event: [Option<Ts>; 3],
    periods: P,
    ops: O,
}

/// Rejections of one source in formats 1 and 2, and in 3 and 4.
type Nine = [u64; 9];
type AllReasons = [u64; crate::decode::Reason::COUNT];

impl<J: AsRef<[u64]>, P, O> Before12<J, P, O> {
    /// The state, its tallies and actions made from the format's by `periods` and `ops`.
    fn into_state(
        self,
        periods: impl FnOnce(P) -> periods::Periods,
        ops: impl FnOnce(O) -> ops::Ops,
    ) -> State {
        State {
            params: Params::default(),
            started_at: self.started_at,
            counters: self.counters.into(),
            dedupe: self.dedupe,
            windows: self.windows,
            agencies: self.agencies,
            procedures: self.procedures,
            dossiers: self.dossiers.0,
            forgotten: self.forgotten,
            vc: self.vc,
            soc: self.soc,
            last_event: self.last_event,
            periods: periods(self.periods),
            ops: ops(self.ops),
            evictions: evict::Evictions::default(),
            forgotten_hits: forgotten::Hits::default(),
        }
    }
}

impl<'de> Deserialize<'de> for StateOlder<1> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Before12::<Nine, (), ()>::deserialize(d)?;
        let mut state = form.into_state(|()| periods::Periods::default(), |()| ops::Ops::default());
        for d in state.dossiers.iter() {
            state
                .periods
                .moved(&state.params.cal, None, Some(&d.contribution()));
        }
        Ok(Self(state))
    }
}

impl<'de> Deserialize<'de> for StateOlder<2> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Before12::<Nine, periods::Periods4, ()>::deserialize(d)?;
        Ok(Self(
            form.into_state(|p| p.0, |()| ops::Ops::default())
                .with_scores_rebuilt(),
        ))
    }
}

impl<'de> Deserialize<'de> for StateOlder<3> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Before12::<AllReasons, periods::Periods4, ()>::deserialize(d)?;
        Ok(Self(
            form.into_state(|p| p.0, |()| ops::Ops::default())
                .with_scores_rebuilt(),
        ))
    }
}

impl<'de> Deserialize<'de> for StateOlder<4> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Before12::<AllReasons, periods::Periods4, ops::Ops>::deserialize(d)?;
        Ok(Self(form.into_state(|p| p.0, |o| o).with_scores_rebuilt()))
    }
}

impl State {
    /// A state of checkpoint formats 2 to 4 (before the 766 scores) with its scores built
    /// from the dossiers it holds: after such an upgrade the week, month and year so far
    /// count the dossiers still in memory, not those forgotten before.
    fn with_scores_rebuilt(mut self) -> State {
        for d in self.dossiers.iter() {
            self.periods
                .scores_moved(&self.params.cal, None, Some(&d.contribution()));
        }
        self
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.freeze().serialize(s)
    }
}

impl State {
    /// The state as it is now, frozen: cheap to take (the large parts are shared, not
    /// copied), `Send`, and unchanged by what is applied afterwards.
    #[must_use]
    pub fn freeze(&self) -> FrozenState {
        FrozenState {
            started_at: self.started_at,
            counters: self.counters.clone(),
            dedupe: self.dedupe.freeze(),
            windows: self.windows.clone(),
            agencies: self.agencies.clone(),
            procedures: self.procedures.clone(),
            dossiers: self.dossiers.freeze(),
            forgotten: self.forgotten.freeze(),
            vc: self.vc.saved(),
            soc: self.soc.saved(),
            last_event: self.last_event,
            periods: self.periods.clone(),
            ops: self.ops.clone(),
        }
    }
}

impl PartialEq for Params {
    /// Params are configuration, not state: never part of state equality.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl State {
    /// The rolling windows (per minute, per day, on-time figures).
    #[must_use]
    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    /// An empty state, as of a first start at `started_at`.
    #[must_use]
    pub fn new(params: Params, started_at: Ts) -> Self {
        Self {
            dedupe: Dedupe::new(params.dedupe_horizon_secs, params.dedupe_max_ids),
            params,
            started_at,
            counters: Counters::default(),
            windows: Windows::default(),
            agencies: Interner::default(),
            procedures: Interner::default(),
            dossiers: Dossiers::default(),
            forgotten: forgotten::Forgotten::default(),
            vc: VcState::default(),
            soc: SocState::default(),
            last_event: [None; 3],
            periods: periods::Periods::default(),
            ops: ops::Ops::default(),
            evictions: evict::Evictions::default(),
            forgotten_hits: forgotten::Hits::default(),
        }
    }

    /// The parameters in force.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Replaces the parameters (after loading a saved state).
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
        // The tracked figures were for the old thresholds: rebuilt at the next `advance`.
        self.dossiers.untrack();
    }

    /// Moves the figures that depend on "now" to `now` (see [`dossiers::Tracker`]): a
    /// cache of what the dossiers are at that instant, not a change of state, so it is not
    /// an input; the pipeline calls it every tick, before deriving.
    pub fn advance(&mut self, now: Ts) {
        self.dossiers.advance(&self.params, now);
    }

    /// Ids in the dedupe memory.
    #[must_use]
    pub fn dedupe_len(&self) -> usize {
        self.dedupe.len()
    }

    /// Looks up, without changing anything, what applying the first [`GROUP`] of `events`
    /// will look up first: each one's id in the dedupe memory and a dossier event's
    /// dossier. The lookups of different events do not depend on each other, so made back
    /// to back (the hashes first, then the probes) their cache misses overlap, where within
    /// one `apply` each waits for the one before ([`State::process_all`]). Returns how many
    /// were found, only so that the lookups are not optimised away.
    pub(crate) fn prefetch<'e, 'a: 'e>(
        &self,
        events: impl Iterator<Item = &'e Event<'a>>,
    ) -> usize {
        let mut ids: ArrayVec<u128, GROUP> = ArrayVec::new();
        let mut dossiers: ArrayVec<(u64, &str), GROUP> = ArrayVec::new();
        for ev in events.take(GROUP) {
            ids.push(Dedupe::key_of(ev.source, &ev.event_id));
            if let Body::Dossier(d) = &ev.body {
                dossiers.push((Dossiers::hash_of(&d.dossier_id), &d.dossier_id));
            }
        }
        let found = ids.iter().filter(|&&k| self.dedupe.holds(k)).count()
            + dossiers
                .iter()
                .filter(|(h, id)| self.dossiers.get_hashed(*h, id).is_some())
                .count();
        std::hint::black_box(found)
    }

    /// Applies one input that arrived at `arrival`. The only way state changes.
    pub fn apply(&mut self, input: &Input<'_>, arrival: Ts) -> Outcome {
        match input {
            Input::Event(ev) => self.apply_event(ev, arrival),
            Input::Rejected { source, reason } => {
                self.counters.rejected(*source, *reason);
                Outcome::Rejected
            }
            Input::Action(action) => {
                let horizon = arrival.minus_secs(self.params.ops_horizon_secs);
                match self.ops.apply(action, self.params.ops_max_actions, horizon) {
                    ops::Applied::New => Outcome::Applied,
                    ops::Applied::Duplicate | ops::Applied::TooOld => Outcome::Duplicate,
                }
            }
            Input::Tick => {
                self.housekeeping(arrival);
                Outcome::Ticked
            }
        }
    }

    fn apply_event(&mut self, ev: &Event<'_>, arrival: Ts) -> Outcome {
        if self
            .dedupe
            .check_and_insert(ev.source, &ev.event_id, arrival)
        {
            self.counters.duplicates[ev.source.index()] += 1;
            return Outcome::Duplicate;
        }
        self.counters.event(ev);
        let last = &mut self.last_event[ev.source.index()];
        *last = Some(last.map_or(ev.occurred_at, |t| t.max(ev.occurred_at)));
        match &ev.body {
            Body::Heartbeat => {}
            Body::Dossier(d) if self.forgotten.contains(&d.dossier_id) => {
                self.forgotten_hits.count(d.kind);
            }
            Body::Dossier(d) => {
                if self.dossiers.len() >= self.params.caps.dossiers
                    && self.dossiers.get(&d.dossier_id).is_none()
                    && let Some(evicted) = self.dossiers.evict_oldest(&self.params)
                {
                    self.periods.evicted(&self.params.cal, &evicted);
                    self.evictions.record(evict::Kind::Dossier, arrival);
                }
                let mut ctx = Ctx {
                    params: &self.params,
                    cal: &self.params.cal,
                    agencies: &mut self.agencies,
                    procedures: &mut self.procedures,
                    windows: &mut self.windows,
                    counters: &mut self.counters,
                    periods: &mut self.periods,
                };
                self.dossiers
                    .apply(d, ev.occurred_at, &ev.event_id, &mut ctx);
            }
            Body::Vc(v) => {
                for kind in self.vc.make_room(v, &self.params.caps) {
                    self.evictions.record(kind, arrival);
                }
                self.vc.apply(v, &Key::of(ev));
            }
            Body::Soc(s) => {
                if let crate::decode::SocEvent::Alert { severity, .. } = s {
                    self.windows
                        .alert(&self.params.cal, ev.occurred_at, *severity);
                }
                for kind in self.soc.make_room(s, &self.params.caps) {
                    self.evictions.record(kind, arrival);
                }
                self.soc.apply(s, &Key::of(ev), &mut self.counters);
            }
        }
        Outcome::Applied
    }

    /// Prunes windows and forgets closed dossiers, ended meetings and resolved incidents
    /// whose latest event is older than the retention.
    fn housekeeping(&mut self, now: Ts) {
        self.windows.prune(&self.params.cal, now);
        self.periods.prune(&self.params.cal, now);
        // At a week's, month's or year's end: the open dossiers of each agency then, for the
        // 766 progress of the period that ended (the tracker is brought to now first).
        self.dossiers.advance(&self.params, now);
        let open = self
            .dossiers
            .tracker()
            .gauges()
            .iter()
            .enumerate()
            .map(|(agency, g)| (u32::try_from(agency).unwrap_or(u32::MAX), g.open_766()));
        self.periods.take_open_at_end(&self.params.cal, now, open);
        let cutoff = now.minus_secs(self.params.retention_secs);
        let forgotten = &mut self.forgotten;
        let max = self.params.caps.dossiers;
        forgotten.prune(now);
        self.dossiers
            .forget_closed_before(&self.params, cutoff, |d| {
                forgotten.insert(d.id(), now, max);
            });
        self.vc.prune(cutoff);
        self.soc.prune(cutoff);
        self.ops
            .prune(now.minus_secs(self.params.ops_horizon_secs), now);
    }
}

#[cfg(test)]
mod tests;

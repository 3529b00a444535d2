//! Derive: the state at an instant → what every output shows. Once per tick the pipeline
//! calls [`Deriver::derive`]: one pass over the dossiers builds the [`View`] (every figure,
//! gauge and counter) and collects what the alert rules group; the alert engine
//! ([`alerts`]) turns the matches into transitions; the snapshot document ([`snapshot`]) is
//! rebuilt. The pipeline publishes the result as immutable values that the outputs read
//! without asking it.
//!
//! Nothing here does I/O or reads the clock: `now` is given, so a replay derives the same.

pub mod alerts;
pub mod snapshot;
pub mod view;

use std::sync::Arc;

pub use view::View;

use crate::decode::Source;
use crate::state::State;
use crate::state::vc::VcSummary;
use crate::time::Ts;
use alerts::{Alert, Engine};
use snapshot::Snapshot;
use view::{MeetingRow, SocSummary};

/// How long a source stays marked as a possible gap after the broker lost iocd's session
/// or items of the source were evicted at the memory caps.
pub const POSSIBLE_GAP_SECS: i64 = 3600;

/// What one pass derives.
pub struct Derived {
    /// Every figure at `now`, with the firing alerts' counts and the API's alert list.
    pub view: View,
    /// The snapshot document, when its content differs from the previous one.
    pub snapshot: Option<Snapshot>,
    /// Alerts that started firing, changed or resolved, in that order, by id.
    pub transitions: Vec<Alert>,
}

/// An alert transition as the outputs take it: the alert, and its JSON object rendered once.
#[derive(Debug)]
pub struct Transition {
    /// The alert after the transition.
    pub alert: Alert,
    /// Its JSON object (without members), as the WebSocket and MQTT send it.
    pub json: Arc<str>,
}

/// The derive stage's own state: the alert engine (what is firing, since when), the latest
/// API alert list and snapshot alert array, rebuilt only when they change, and the VC and
/// SOC figures, recomputed only when those parts of the state changed or a threshold passed.
pub struct Deriver {
    engine: Engine,
    alerts_api: Arc<[String]>,
    firing_json: String,
    vc: Cached<(VcSummary, Vec<MeetingRow>)>,
    soc: Cached<(SocSummary, Vec<String>)>,
}

/// Figures derived from one part of the state, with the generation of that part they were
/// computed from and the instant until which they hold.
struct Cached<T> {
    value: Option<(u64, Ts, Ts, T)>,
}

impl<T: Clone> Cached<T> {
    /// The figures at `now`: the cached ones when `generation` is the same, `now` is not
    /// before they were computed and their `until` has not passed; else `compute`d anew.
    fn get(&mut self, generation: u64, now: Ts, compute: impl FnOnce() -> (T, Ts)) -> T {
        if let Some((g, at, until, v)) = &self.value
            && *g == generation
            && *at <= now
            && now < *until
        {
            return v.clone();
        }
        let (v, until) = compute();
        self.value = Some((generation, now, until, v.clone()));
        v
    }
}

impl Deriver {
    /// A derive stage around `engine`.
    #[must_use]
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            alerts_api: Arc::from(Vec::new()),
            firing_json: "[]".to_owned(),
            vc: Cached { value: None },
            soc: Cached { value: None },
        }
    }

    /// The alert engine (for checkpoints of `since`).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Derives everything at `now`, which `state` must have been advanced to
    /// ([`State::advance`]). `previous` is the snapshot last published (its version is
    /// continued); `possible_gap` marks every source after a lost session; a source whose
    /// items were evicted at the memory caps is marked for [`POSSIBLE_GAP_SECS`] too.
    ///
    /// Costs what changed since the last call: dossier figures are tracked by the state,
    /// VC and SOC figures and each alert rule are recomputed only when their part of the
    /// state changed or a threshold passed; the rest is bounded by the number of agencies
    /// and the lists the wall shows.
    pub fn derive(
        &mut self,
        state: &State,
        now: Ts,
        possible_gap: bool,
        previous: &Snapshot,
    ) -> Derived {
        let p = state.params();
        let vc = self.vc.get(state.vc.generation.get(), now, || {
            let until = state.vc.next_missing(&p.vc, now).unwrap_or(Ts::MAX);
            (state.vc_figures(now), until)
        });
        let soc = self.soc.get(state.soc.generation.get(), now, || {
            let until = state.next_system_silence(now).unwrap_or(Ts::MAX);
            (state.soc_figures(now), until)
        });
        let mut view = state.assemble(now, state.dossiers.tracker().gauges(), vc, soc);
        let transitions = self.engine.evaluate(state, now);
        if self.engine.take_changed() {
            self.alerts_api = Arc::from(self.engine.api_items());
            self.firing_json = self.engine.firing_json();
        }
        view.alerts_firing = self
            .engine
            .firing_counts()
            .into_iter()
            .map(|(rule, severity, n)| (rule.as_str(), severity.as_str(), n))
            .collect();
        view.alerts_api = Arc::clone(&self.alerts_api);
        let gaps = Source::ALL.map(|s| {
            possible_gap
                || state.evictions.last_at[s.index()]
                    .is_some_and(|at| now < at.plus_secs(POSSIBLE_GAP_SECS))
        });
        let mut snap = Snapshot::build(&view, self.firing_json.clone(), gaps, &p.cal);
        let snapshot = (!snap.same_content(previous)).then(|| {
            snap.version = previous.version + 1;
            snap
        });
        Derived {
            view,
            snapshot,
            transitions,
        }
    }
}

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

use crate::state::State;
use crate::time::Ts;
use alerts::{Alert, Engine};
use snapshot::Snapshot;
use view::DossierGroups;

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

/// The derive stage's own state: the alert engine (what is firing, since when) and the
/// latest API alert list, rebuilt only when it changes.
pub struct Deriver {
    engine: Engine,
    alerts_api: Arc<[String]>,
}

impl Deriver {
    /// A derive stage around `engine`.
    #[must_use]
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            alerts_api: Arc::from(Vec::new()),
        }
    }

    /// The alert engine (for checkpoints of `since`).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Derives everything at `now`. `previous` is the snapshot last published (its
    /// version is continued); `possible_gap` marks the sources after a lost session.
    pub fn derive(
        &mut self,
        state: &State,
        now: Ts,
        possible_gap: bool,
        previous: &Snapshot,
    ) -> Derived {
        let mut groups = DossierGroups::default();
        let mut view = state.scan(now, Some(&mut groups));
        let transitions = self.engine.evaluate_with(state, groups, now);
        if self.engine.take_changed() {
            self.alerts_api = Arc::from(self.engine.api_items());
        }
        view.alerts_firing = self
            .engine
            .firing_counts()
            .into_iter()
            .map(|(rule, severity, n)| (rule.as_str(), severity.as_str(), n))
            .collect();
        view.alerts_api = Arc::clone(&self.alerts_api);
        let mut snap = Snapshot::build(
            &view,
            self.engine.firing_json(),
            possible_gap,
            &state.params().cal,
        );
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

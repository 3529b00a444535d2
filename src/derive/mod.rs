//! Derive: the state at an instant → what every output shows. Once per tick the pipeline
//! calls [`Deriver::derive`]: one pass over the dossiers builds the [`View`] (every figure,
//! gauge and counter) and collects what the alert rules group; the alert engine
//! ([`alerts`]) turns the matches into transitions; the snapshot document ([`snapshot`]) is
//! rebuilt. The pipeline publishes the result as immutable values that the outputs read
//! without asking it.
//!
//! Nothing here does I/O or reads the clock: `now` is given, so a replay derives the same.

pub mod agencies;
pub mod alerts;
pub mod periods;
pub mod scorecard;
pub mod snapshot;
pub mod track;
pub mod view;

use std::sync::Arc;

pub use view::View;

use crate::decode::Source;
use crate::directory::Directory;
use crate::state::State;
use crate::time::Ts;
use alerts::{Alert, Engine};
use snapshot::Snapshot;
use track::{SocTrack, VcTrack};
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
    /// Alerts acknowledged since the last derive: rule, severity, seconds from firing.
    pub acknowledged: Vec<(alerts::Rule, crate::config::AlertSeverity, f64)>,
}

/// An alert transition as the outputs take it: the alert, and its JSON object rendered once.
#[derive(Debug)]
pub struct Transition {
    /// The alert after the transition.
    pub alert: Alert,
    /// Its JSON object (without members), as the WebSocket and MQTT send it.
    pub json: Arc<str>,
}

/// The derive stage's own state: the alert engine (what is firing, since when), the VC and
/// SOC figures kept per meeting, system and incident ([`track`]), and the latest API alert
/// list and snapshot alert array, rebuilt only when they change.
pub struct Deriver {
    engine: Engine,
    vc: VcTrack,
    soc: SocTrack,
    alerts_api: Arc<[String]>,
    firing_json: String,
    directory: Arc<Directory>,
    unknown: Unknown,
}

/// The agency codes seen in the state (since the start) that the directory lacks, found
/// incrementally: the interner only grows, so each tick looks at the codes interned since
/// the last one.
#[derive(Default)]
struct Unknown {
    /// Interned agencies looked at so far.
    checked: usize,
    count: u64,
    listed: Vec<String>,
}

impl Unknown {
    fn update(&mut self, state: &State, directory: &Directory) {
        if directory.is_empty() {
            return;
        }
        self.checked = self.checked.max(1); // id 0 is `unknown`: a dossier without an agency
        while self.checked < state.agencies.len() {
            let code = state
                .agencies
                .name(u32::try_from(self.checked).unwrap_or(u32::MAX));
            self.checked += 1;
            if directory.get(code).is_none() {
                self.count += 1;
                if self.listed.len() < view::UNKNOWN_LISTED {
                    self.listed.push(code.to_owned());
                }
            }
        }
    }
}

impl Deriver {
    /// A derive stage around `engine`.
    #[must_use]
    pub fn new(engine: Engine) -> Self {
        let after = crate::time::whole_secs(engine.settings().incident_unacknowledged_after);
        Self {
            engine,
            vc: VcTrack::default(),
            soc: SocTrack::new(after),
            alerts_api: Arc::from(Vec::new()),
            firing_json: "[]".to_owned(),
            directory: Arc::default(),
            unknown: Unknown::default(),
        }
    }

    /// Names agencies from `directory` from the next derive on: alert sentences are put into
    /// words again, the snapshot and the view carry the new names.
    pub fn set_directory(&mut self, directory: Arc<Directory>) {
        self.engine.reword();
        self.directory = directory;
        self.unknown = Unknown::default();
    }

    /// The agency directory it names agencies from.
    #[must_use]
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The alert engine (for checkpoints of `since`).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Another replica's publication of an alert ([`Engine::take_peer`]).
    pub fn take_peer(
        &mut self,
        alert: (&str, &str),
        since: Option<Ts>,
        ops: &crate::state::ops::Ops,
        now: Ts,
    ) -> alerts::PeerSince {
        self.engine.take_peer(alert, since, ops, now)
    }

    /// Derives everything at `now`, which `state` must have been advanced to
    /// ([`State::advance`]). `previous` is the snapshot last published (its version is
    /// continued); `possible_gap` marks every source after a lost session; a source whose
    /// items were evicted at the memory caps is marked for [`POSSIBLE_GAP_SECS`] too.
    ///
    /// Costs what changed since the last call: dossier figures are tracked by the state,
    /// VC and SOC figures per meeting, system and incident here, and the alert rules look
    /// only at the subjects that changed; the rest is bounded by the number of agencies
    /// and the lists the wall shows.
    pub fn derive(
        &mut self,
        state: &State,
        now: Ts,
        possible_gap: bool,
        previous: &Snapshot,
    ) -> Derived {
        let p = state.params();
        let meetings = self.vc.update(state, now);
        let soc_touched = self.soc.update(state, now);
        let t = alerts::Tracked {
            vc: &self.vc,
            soc: &self.soc,
            meetings: &meetings,
            soc_touched: &soc_touched,
            directory: &self.directory,
        };
        let transitions = self.engine.evaluate_tracked(state, &t, now);
        let mut view = state.assemble(
            now,
            state.dossiers.tracker().gauges(),
            (self.vc.totals(), self.meeting_rows(state)),
            self.soc_figures(),
        );
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
        view.alerts_unacknowledged = self
            .engine
            .unacknowledged_counts()
            .into_iter()
            .map(|(rule, severity, n)| (rule.as_str(), severity.as_str(), n))
            .collect();
        view.alerts_api = Arc::clone(&self.alerts_api);
        self.unknown.update(state, &self.directory);
        view.directory = Arc::clone(&self.directory);
        view.agencies_unknown = self.unknown.count;
        view.unknown_agency_codes.clone_from(&self.unknown.listed);
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
            acknowledged: self.engine.take_acknowledged(),
        }
    }

    /// The meetings the wall lists: the most recently started active ones.
    fn meeting_rows(&self, state: &State) -> Vec<MeetingRow> {
        self.vc
            .on_air()
            .take(view::MEETINGS_LISTED)
            .filter_map(|id| {
                let m = state.vc.meetings.get(id)?;
                let f = self.vc.figures(id)?;
                Some(MeetingRow {
                    meeting_id: id.to_owned(),
                    title: m.title.clone(),
                    level: m.level_label().as_str(),
                    started_at: f.started_at,
                    expected: m.expected.len() as u64,
                    connected: f.connected,
                    missing: f.missing.clone(),
                    poor: f.poor.clone(),
                })
            })
            .collect()
    }

    /// The SOC figures (without the alerts of the last hour, from the windows) and the
    /// silent systems listed.
    fn soc_figures(&self) -> (SocSummary, Vec<String>) {
        let (open, unacknowledged) = self.soc.incidents();
        let silent = self.soc.silent();
        let summary = SocSummary {
            alerts_60m: [0; 4],
            incidents_open: open,
            incidents_unacknowledged: unacknowledged,
            systems_silent: silent.len() as u64,
        };
        let listed = silent.iter().take(view::SYSTEMS_LISTED).cloned().collect();
        (summary, listed)
    }
}

//! `iocd simulate`: the three source systems of a real province, publishing over MQTT.
//!
//! The one-stop system files and handles dossiers through their whole lifecycle (online
//! share, office hours with the lunch break, working-day deadlines, supplements, fee
//! pauses, late and stalled dossiers); the video-conferencing system runs meetings with
//! dozens of endpoints, some missing and some on poor links; the SOC sends alerts, bursts,
//! incidents waiting for acknowledgement and heartbeats of 75 systems, some of which go
//! silent. A small share of faults (duplicates, out-of-order, malformed payloads, each
//! malformed one with the exact reason the daemon gives it) is mixed in.
//!
//! - [`generator`]: the pure, deterministic simulation ([`Generator`], [`SimMessage`]).
//! - [`run`](fn@run): the MQTT publisher pacing it at the wall clock ([`SimReport`]).
//! - [`model`] and [`clock`]: the province's tables and its sense of time.

pub mod clock;
mod demo;
mod dossiers;
mod duration;
mod faults;
pub mod generator;
mod meetings;
pub mod model;
mod run;
mod soc;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use duration::{DurationError, parse_duration};
pub use generator::{Fault, Generator, SimMessage};
pub use run::{run, run_until};

use crate::config::{BrokerUrl, Secret};
use crate::decode::{Reason, Source};
use clock::Rhythm;

/// Messages per second of the province at scale 1 in the busy rhythm, in steady state
/// (about 3.5 dossier events, 4 link statistics, 0.7 heartbeats and alerts). `--rate N`
/// starts from the scale `N / STEADY_RATE` and steers the dossier filings every two
/// seconds (meetings and the SOC keep the initial scale).
const STEADY_RATE: f64 = 8.5;
/// Under `--rate`, dossier lifecycles run this many times faster than real time (a working
/// day in 15 minutes), so that the one-stop mix is steady within minutes and the backlog of
/// open dossiers stays bounded.
const LOAD_COMPRESSION: u32 = 96;

/// What to simulate and where to publish it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimOptions {
    /// Broker URL, `mqtt://host:port` or `mqtts://host:port`.
    pub mqtt_url: BrokerUrl,
    /// Topic prefix (`ioc/v1`).
    pub prefix: String,
    /// Target messages per second. `None`: the province's own, varying rate over the real
    /// week (a few per second at night, tens in office hours during meetings). `Some(n)`:
    /// for load tests, the mix of a busy office hour scaled so that the output averages `n`
    /// messages per second at any time of day; dossier lifecycles then run 96 times faster
    /// (deadlines minutes away, so nothing stalls), meetings and the SOC in real time.
    pub rate: Option<f64>,
    /// How long to run (wall clock); `None`: until SIGINT or SIGTERM.
    pub duration: Option<Duration>,
    /// Seed of the simulation: the same seed and start give the same messages.
    pub seed: u64,
    /// Share (0 to 1) of events that come with a fault.
    pub faults: f64,
    /// A share of its own for each kind of fault, replacing `faults` and its usual mix
    /// (35 % duplicates, 20 % out of order, 45 % malformed), for tests that need exact
    /// proportions (the soak: 1 % poison, 1 % duplicates).
    pub fault_mix: Option<FaultMix>,
    /// Demo mode for `iocd demo`: the busy rhythm, and a replayed history (five days of
    /// dossiers at a small scale, the last 40 minutes of meetings and SOC, about 20,000
    /// messages published in the first seconds) plus a scripted
    /// scene, so that on the first second there are overdue, stalled and due-soon dossiers,
    /// a meeting on air for 20 minutes with missing and poor endpoints, a critical incident
    /// unacknowledged for 25 minutes and a SOC system silent for 12 minutes; then live.
    pub demo: bool,
    /// Print a summary line every 10 seconds and at the end (stdout).
    pub progress: bool,
    /// MQTT client id; `None`: `iocd-sim-` and a random suffix.
    pub client_id: Option<String>,
    /// Login name at the broker.
    pub username: Option<String>,
    /// The password for `username`, read from an environment variable by the caller.
    pub password: Option<Secret>,
    /// PEM file of the CA that signed the broker's certificate (`mqtts://`); `None`: the
    /// system's roots.
    pub ca_file: Option<String>,
}

/// Per-event shares of each kind of fault (each 0 to 1, together at most 1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultMix {
    /// Events sent a second time, a little later, with the same `event_id`: duplicates.
    pub duplicate: f64,
    /// Events held back and sent after later ones: accepted.
    pub out_of_order: f64,
    /// Events followed by a corrupted copy (poison): rejected and dead-lettered.
    pub malformed: f64,
}

impl FaultMix {
    /// The three shares, in the fault injector's order.
    pub(crate) fn shares(&self) -> [f64; 3] {
        [self.duplicate, self.out_of_order, self.malformed]
    }
}

/// Why the simulator cannot run as asked.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `--faults` outside 0 to 1.
    #[error("--faults {0}: expected a share from 0 to 1")]
    Faults(f64),
    /// A fault mix with a share outside 0 to 1, or shares adding up to more than 1.
    #[error("fault mix {0:?}: expected shares from 0 to 1, together at most 1")]
    FaultMix(FaultMix),
    /// `--rate` not a positive number.
    #[error("--rate: expected a positive number of messages per second")]
    Rate,
    /// `--ca-file` with a plain `mqtt://` broker.
    #[error("--ca-file needs an mqtts:// broker URL")]
    CaFileWithoutTls,
    /// The CA file or the system's roots cannot be used.
    #[error("--ca-file: cannot set up TLS")]
    Tls(#[source] crate::ingest::IngestError),
    /// Building the simulation's history panicked.
    #[error("cannot build the simulation")]
    Build(#[source] tokio::task::JoinError),
    /// The MQTT client's event loop ended, so nothing more can be published.
    #[error("the MQTT client stopped")]
    ClientStopped(#[source] rumqttc::ClientError),
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            mqtt_url: BrokerUrl::from(std::net::SocketAddr::from(([127, 0, 0, 1], 1883))),
            prefix: "ioc/v1".to_owned(),
            rate: None,
            duration: None,
            seed: 0,
            faults: 0.01,
            fault_mix: None,
            demo: false,
            progress: false,
            client_id: None,
            username: None,
            password: None,
            ca_file: None,
        }
    }
}

impl SimOptions {
    /// The demo preset (see [`SimOptions::demo`]), publishing to `mqtt_url` under `prefix`.
    #[must_use]
    pub fn demo(mqtt_url: BrokerUrl, prefix: &str, seed: u64) -> Self {
        Self {
            mqtt_url,
            prefix: prefix.to_owned(),
            seed,
            demo: true,
            ..Self::default()
        }
    }
}

impl SimOptions {
    /// Checks the options a user gives: the fault share and the rate (the broker URL is
    /// typed already).
    ///
    /// # Errors
    /// The first problem, naming the flag.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&self.faults) {
            return Err(SimError::Faults(self.faults));
        }
        if let Some(mix) = self.fault_mix {
            let shares = mix.shares();
            if shares.iter().any(|s| !(0.0..=1.0).contains(s)) || shares.iter().sum::<f64>() > 1.0 {
                return Err(SimError::FaultMix(mix));
            }
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(SimError::Rate);
        }
        Ok(())
    }
}

/// The simulation's shape, derived from the options.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Profile {
    /// Office hours and citizen activity.
    pub rhythm: Rhythm,
    /// Intensity multiplier of the live part.
    pub live_scale: f64,
    /// Initial intensity multiplier of live dossier filings (steered with a target rate).
    pub filing_scale: f64,
    /// How much faster than real time dossier lifecycles run (busy rhythm only).
    pub compression: u32,
    /// Intensity multiplier of the history.
    pub history_scale: f64,
    /// How far back dossiers start arriving (the backlog of open dossiers).
    pub dossier_history_secs: i64,
    /// How far back meetings start (those still on air at the start are announced then
    /// when history is not published).
    pub vc_history_secs: i64,
    /// How far back the SOC and the feed heartbeats start.
    pub soc_history_secs: i64,
    /// Whether history is published (backdated) or only builds the backlog silently.
    pub emit_history: bool,
    /// Steer the live scale to this many messages per second.
    pub target_rate: Option<f64>,
    /// Add the demo's scripted scene.
    pub demo: bool,
}

const DAY: i64 = 86_400;

impl Profile {
    pub(crate) fn of(o: &SimOptions) -> Self {
        if o.demo {
            return Self {
                rhythm: Rhythm::Busy,
                live_scale: 0.5,
                filing_scale: 0.5,
                compression: 1,
                history_scale: 0.03,
                dossier_history_secs: 5 * DAY,
                vc_history_secs: 40 * 60,
                soc_history_secs: 40 * 60,
                emit_history: true,
                target_rate: o.rate,
                demo: true,
            };
        }
        match o.rate {
            // Real week: three weeks of silent history make the backlog of open dossiers
            // (their later steps are published as they come, carrying their agency).
            None => Self {
                rhythm: Rhythm::Daily,
                live_scale: 1.0,
                filing_scale: 1.0,
                compression: 1,
                history_scale: 1.0,
                dossier_history_secs: 21 * DAY,
                vc_history_secs: 4 * 3600,
                soc_history_secs: 0,
                emit_history: false,
                target_rate: None,
                demo: false,
            },
            // Load test: the busy mix, dossier lifecycles compressed; three compressed days
            // of silent history make the backlog.
            Some(rate) => {
                let live = (rate / STEADY_RATE).max(1e-3);
                Self {
                    rhythm: Rhythm::Busy,
                    live_scale: live,
                    filing_scale: live,
                    compression: LOAD_COMPRESSION,
                    history_scale: live,
                    dossier_history_secs: 3 * DAY / i64::from(LOAD_COMPRESSION),
                    vc_history_secs: 4 * 3600,
                    soc_history_secs: 0,
                    emit_history: false,
                    target_rate: Some(rate),
                    demo: false,
                }
            }
        }
    }
}

/// What a run published, for the summary and for tests that check the daemon's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimReport {
    /// Messages published per source (indexed by [`Source::index`]), faults included.
    pub sent_per_source: [u64; 3],
    /// Malformed payloads: the daemon rejects exactly these.
    pub malformed: u64,
    /// Malformed payloads per reason (indexed by [`Reason::index`]).
    pub malformed_by_reason: [u64; Reason::COUNT],
    /// Malformed payloads per source and reason (`iocd_events_rejected_total{source,reason}`).
    pub malformed_by_source_reason: [[u64; 9]; 3],
    /// Repeated events: the daemon counts exactly these as duplicates.
    pub duplicates: u64,
    /// Repeated events per source (`iocd_events_duplicate_total{source}`).
    pub duplicates_per_source: [u64; 3],
    /// Events sent late, out of order (accepted).
    pub out_of_order: u64,
    /// Events the daemon accepts: everything but the malformed and duplicate ones.
    pub accepted_expected: u64,
    /// Accepted events per source.
    pub accepted_per_source: [u64; 3],
    /// Accepted events per source and `type` (`iocd_events_total{source,type}`); filled by
    /// [`SimReport::record`] and by the publisher.
    pub accepted_per_type: BTreeMap<(Source, String), u64>,
    /// Publishes the broker had not acknowledged when the run ended (0 after a clean run).
    pub unacknowledged: u64,
}

impl SimReport {
    /// Counts one published message, with its `type` when it is accepted.
    pub fn record(&mut self, msg: &SimMessage) {
        self.count(msg.source, msg.fault);
        if let Some(ty) = accepted_type(msg) {
            self.count_type(msg.source, ty);
        }
    }

    /// Counts one accepted event of `source` and type `ty` (the per-type tally only).
    pub fn count_type(&mut self, source: Source, ty: String) {
        *self.accepted_per_type.entry((source, ty)).or_default() += 1;
    }

    /// Counts one published message of `source` carrying `fault`.
    pub fn count(&mut self, source: Source, fault: Option<Fault>) {
        let s = source.index();
        self.sent_per_source[s] += 1;
        match fault {
            Some(Fault::Malformed(reason)) => {
                self.malformed += 1;
                self.malformed_by_reason[reason.index()] += 1;
                self.malformed_by_source_reason[s][reason.index()] += 1;
            }
            Some(Fault::Duplicate) => {
                self.duplicates += 1;
                self.duplicates_per_source[s] += 1;
            }
            Some(Fault::OutOfOrder) | None => {
                if fault.is_some() {
                    self.out_of_order += 1;
                }
                self.accepted_expected += 1;
                self.accepted_per_source[s] += 1;
            }
        }
    }

    /// All messages published.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent_per_source.iter().sum()
    }
}

/// The `type` of a message the daemon accepts (neither malformed nor a duplicate); `None`
/// for the others.
pub(crate) fn accepted_type(msg: &SimMessage) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        ty: std::borrow::Cow<'a, str>,
    }
    match msg.fault {
        Some(Fault::Malformed(_) | Fault::Duplicate) => None,
        Some(Fault::OutOfOrder) | None => serde_json::from_slice::<Typed<'_>>(&msg.payload)
            .ok()
            .map(|t| t.ty.into_owned()),
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [os, vc, soc] = self.sent_per_source;
        write!(
            f,
            "sent {} (onestop {os}, vc {vc}, soc {soc}); faults: malformed {}",
            self.sent(),
            self.malformed
        )?;
        let reasons: Vec<String> = Reason::ALL
            .iter()
            .filter(|r| self.malformed_by_reason[r.index()] > 0)
            .map(|r| format!("{} {}", r.as_str(), self.malformed_by_reason[r.index()]))
            .collect();
        if !reasons.is_empty() {
            write!(f, " [{}]", reasons.join(", "))?;
        }
        write!(
            f,
            ", duplicate {}, out-of-order {}; accepted expected {}",
            self.duplicates, self.out_of_order, self.accepted_expected
        )
    }
}

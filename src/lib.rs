//! # iocd
//!
//! A real-time monitoring daemon for a provincial Intelligent Operations Centre (IOC). It
//! subscribes over MQTT to the one-stop system (dossiers), the video-conferencing system
//! (meetings and endpoints) and the security operations centre (alerts, incidents,
//! systems), keeps their state and rolling metrics in memory, and serves them to
//! Prometheus, to the wall displays and to the alert engine.
//!
//! # Data flow
//!
//! ```text
//! broker ─► ingest ─bounded queue─► pipeline: decode ─► state::State::apply (the one writer)
//!   ▲         │                        │ rejected                │ every tick
//!   │         └── deadletter ◄─────────┘                         ▼
//!   │                              derive: View + alert matches (one pass) + snapshot
//!   │                                        │ watch (view, snapshot), broadcast (transitions)
//!   └──── outputs::mqtt (alerts) ◄───────────┤
//!         outputs::{prometheus, ws, api, http} ◄┘
//! ```
//!
//! Nothing imports upward: `state` knows nothing of `derive`, and neither `pipeline` nor
//! `derive` imports `outputs`; outputs read only what derive published.
//!
//! # Layout
//!
//! - [`config`]: the settings, parsed once into types (broker URL, addresses, time zone,
//!   durations, enums, secrets) with errors naming the file and the key.
//! - [`time`]: instants, the local calendar and the working calendar ([`time::workcal`]).
//! - [`ingest`]: the MQTT connection; hands raw messages on, applies backpressure;
//!   republishes rejected payloads as dead letters.
//! - [`decode`]: payload → validated [`decode::Event`] or a [`decode::DecodeError`] with its
//!   reason code.
//! - [`state`]: the deterministic model (`apply`, `process`), and what is urgent or silent
//!   at an instant ([`state::urgency`]).
//! - [`derive`](mod@derive): once per tick, the [`derive::View`], the alert engine's transitions and the
//!   snapshot document.
//! - [`pipeline`]: the single loop that drives decode → apply → derive → publish.
//! - [`outputs`]: Prometheus exposition, HTTP endpoints and API, WebSocket, alerts on MQTT.
//! - [`telemetry`]: logging and iocd's own metrics.
//! - [`app`]: wires it all together and owns shutdown; the one place that turns the
//!   settings into the state's parameters (`config` and `state` do not know each other).
//! - [`store`]: the durable event log and checkpoints; [`store::journal`]: how the pipeline
//!   uses them (log before ack, group commit, checkpoints, recovery).
//! - `simulate` and `demo` (cargo feature `demo`): realistic traffic of the three source
//!   systems (`iocd simulate`), and embedded broker + simulator + daemon in one process
//!   (`iocd demo`).

// The numeric casts allowed in Cargo.toml ([workspace.lints], with the reason), repeated
// here so that `cargo clippy -- -W clippy::pedantic` on the command line keeps them allowed.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

pub mod app;
pub mod config;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod derive;
pub mod directory;
pub mod ingest;
pub mod outputs;
pub mod pipeline;
pub mod shutdown;
#[cfg(feature = "demo")]
pub mod simulate;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod time;

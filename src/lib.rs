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
//! broker ──► ingest::mqtt ──bounded queue──► pipeline ──► decode ──► state::State::apply
//!   ▲             (poll loop only)              │                         │
//!   └── deadletter ◄── outputs::deadletter ◄────┘        refresh(now) ──► state::View
//!                                                                        │
//!                                         outputs::http (/metrics, /healthz, /readyz)
//! ```
//!
//! # Layout
//!
//! - [`config`]: settings and their validation.
//! - [`ingest`]: the MQTT connection; hands raw messages on, applies backpressure.
//! - [`decode`]: payload → validated [`decode::Event`] or a [`decode::DecodeError`] with its reason code.
//! - [`state`]: the deterministic model (`apply`) and the read-only [`state::View`] built from it.
//! - [`pipeline`]: the single loop that drives decode → apply → publish.
//! - [`outputs`]: Prometheus exposition, HTTP endpoints, dead-letter republishing.
//! - [`telemetry`]: logging and iocd's own metrics.
//! - [`app`]: wires it all together and owns shutdown.
//! - [`simulate`]: realistic traffic of the three source systems (`iocd simulate`).
//! - [`demo`]: embedded broker + simulator + daemon in one process (`iocd demo`).
//! - [`store`]: the durable event log and checkpoints; [`store::journal`]: how the pipeline
//!   uses them (log before ack, group commit, checkpoints, recovery).

pub mod app;
pub mod config;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
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

//! Test and bench support for iocd, shared by the unit tests, the integration tests and the
//! benches (a dev-dependency: it never ships).
//!
//! In: what a test wants to send. Out: contract events (docs/contract.md §2) as JSON payloads.
//!
//! - [`Payload`] and its constructors ([`received`], [`meeting_started`], [`incident_opened`],
//!   …): one event of the contract with sensible defaults (a fresh `event_id`, `occurred_at`
//!   now, the required fields of its type), every field overridable. For tests, where
//!   clarity matters more than speed.
//! - [`corpus`]: the fast, deterministic pieces the benches build large corpora from
//!   (`SplitMix64`, UUID-shaped ids, local timestamps, agency and procedure codes).
//! - [`free_port`]: a local TCP port for a broker, a daemon or a browser under test.
//!
//! It knows the contract's JSON, not iocd's types: a unit test decodes a payload with
//! `iocd::decode` like any message.

// The numeric casts allowed in Cargo.toml ([workspace.lints], with the reason), repeated
// here so that `cargo clippy -- -W clippy::pedantic` on the command line keeps them allowed.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

pub mod corpus;
mod payload;

pub use payload::{
    ONESTOP, Payload, SOC, VC, alert, at, dossier, endpoint_joined, endpoint_left, endpoint_stats,
    event, heartbeat, incident_acknowledged, incident_opened, incident_resolved, meeting_ended,
    meeting_started, received, resolved, submitted, system_heartbeat, transferred,
};

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
///
/// # Panics
/// When no local port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

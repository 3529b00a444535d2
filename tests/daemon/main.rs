//! End-to-end tests of the daemon: a real Mosquitto per test, the real daemon over real
//! sockets. One binary, one module per area (STYLE §10).

// Helpers outside `#[test]` functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod helpers;

mod alerts;
mod demo;
mod durability;
mod embedded;

mod ingest;
mod process;
mod secure;
mod wall;
mod websocket;

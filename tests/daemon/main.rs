//! The integration tests, in one binary: a real Mosquitto per test, the real daemon over real
//! sockets (in-process or as the `iocd` binary), the ingest link alone, the simulator, the
//! dashboards against a real Prometheus, the wall in real Chromium. One module per area
//! (STYLE §10), one set of helpers (`helpers/`), event payloads from `iocd_testkit`.

// Helpers outside `#[test]` functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod helpers;

mod alerts;
mod dashboards;
mod demo;
mod durability;
mod embedded;
mod ingest;
mod ingest_mqtt;
mod process;
mod secure;
mod simulate;
mod wall;
mod websocket;

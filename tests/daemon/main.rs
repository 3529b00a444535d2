//! The integration tests, in one binary: a real Mosquitto per test, the real daemon over real
//! sockets (in-process or as the `iocd` binary), the ingest link alone, the simulator, the
//! dashboards against a real Prometheus, the wall in real Chromium. One module per area
//! (STYLE §10), one set of helpers (`helpers/`), event payloads from `iocd_testkit`.

// The numeric casts allowed in Cargo.toml ([workspace.lints], with the reason), repeated
// here so that `cargo clippy -- -W clippy::pedantic` on the command line keeps them allowed.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]
// A test or a bench reads as one script, top to bottom: no line cap.
#![allow(clippy::too_many_lines)]
// Helpers outside `#[test]` functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]
// Metric values read back from `/metrics` are exact counts: comparing them exactly is the
// point (pedantic `float_cmp`).
#![allow(clippy::float_cmp)]
// Short names for the JSON documents the dashboards tests walk (`d`, `p`, `q`, …).
#![allow(clippy::many_single_char_names)]

mod helpers;

mod alertmanager;
mod alerts;
mod caps;
mod dashboards;
mod demo;
mod directory;
mod durability;
mod embedded;
mod flood;
mod ha;
mod ingest;
mod ingest_mqtt;
mod mapped;
mod mapping;
mod ops;
mod process;
mod scorecard;
mod secure;
mod simulate;
mod soak;
mod wall;
mod websocket;

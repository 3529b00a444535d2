//! End-to-end tests of the daemon: a real Mosquitto per test, the real daemon over real
//! sockets. One binary, one module per area (STYLE §10).

mod helpers;

mod alerts;

mod ingest;
mod process;
mod secure;
mod websocket;

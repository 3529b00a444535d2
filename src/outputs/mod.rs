//! Outputs: what iocd shows the world. `snapshot` builds the shared snapshot document,
//! `ws` pushes it to the wall displays, `api` answers read queries, `prometheus` turns the
//! latest view into the exposition format at scrape time, `http` serves them all (with
//! `auth` and the embedded `wall` page), and `deadletter` republishes rejected payloads.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod deadletter;
pub mod http;
pub mod prometheus;
pub mod snapshot;
pub mod wall;
pub mod ws;

//! Outputs: what iocd shows the world, read from what `derive` published. `ws` pushes the
//! snapshot to the wall displays, `api` answers read queries, `prometheus` turns the latest
//! view into the exposition format at scrape time, `http` serves them all (with `auth` and
//! the embedded `wall` page), and `mqtt` publishes alert transitions on the broker.

pub mod alertmanager;
pub mod api;
pub mod auth;
pub mod http;
pub mod mqtt;
pub mod ops;
pub mod prometheus;
pub mod wall;
pub mod ws;

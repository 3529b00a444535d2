//! Outputs: what iocd shows the world. `prometheus` turns the latest view into the
//! exposition format at scrape time, `http` serves it with the health endpoints, and
//! `deadletter` republishes rejected payloads with their reason.

pub mod deadletter;
pub mod http;
pub mod prometheus;

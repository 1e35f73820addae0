//! storefront-loadtest: an open-loop HTTP load generator with HDR histograms.
//!
//! Open-loop mode schedules every request at a fixed rate and measures latency from the
//! *intended* send time, so a stalled server is charged for the requests it delayed (no
//! coordinated omission, as in wrk2). Closed-loop mode runs N connections flat out to find the
//! maximum throughput. Scenarios are TOML files of weighted steps whose URLs are filled from
//! the running server's catalog.

pub mod catalog;
pub mod client;
pub mod compare;
pub mod hello;
pub mod plot;
pub mod report;
pub mod runner;
pub mod scenario;

pub use runner::{run, Mode, RunSettings};

//! shoal-bench: cassandra-stress-like workloads against Shoal or any CQL cluster.
//!
//! The pure parts (key distributions, schedules, summaries, JSON and SVG output) live in
//! their own modules so they can be unit-tested without a server; `runner` holds the
//! driver-facing loop.

pub mod dist;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod workload;

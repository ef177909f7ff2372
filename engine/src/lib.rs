//! Shoal's storage engine.
//!
//! A log-structured store: every write goes to the commit log and a memtable; memtables
//! are flushed to immutable SSTables; compaction merges SSTables; start-up replays the
//! commit log. The engine knows partitions, clustering keys and cells, not CQL: see
//! [`model`] for the contract and `docs/formats/` for every file it writes.

pub mod error;
pub mod model;

pub use error::{EngineError, Result};
pub use model::*;

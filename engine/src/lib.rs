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

// TEMPORARY stub so the CQL layer compiles before the engine branch lands.
pub struct Engine;
pub struct ReadResult {
    pub partitions: Vec<PartitionData>,
    pub tombstones_scanned: usize,
    pub warnings: Vec<String>,
}
impl Engine {
    pub fn create_table(&self, _id: TableId, _o: TableOptions) -> Result<()> { Ok(()) }
    pub fn drop_table(&self, _id: TableId) -> Result<()> { Ok(()) }
    pub fn truncate(&self, _id: TableId) -> Result<()> { Ok(()) }
    pub fn apply(&self, _m: Vec<Mutation>, _f: Box<dyn FnOnce(Result<()>) + Send>) -> Result<()> { Ok(()) }
    pub fn read(&self, _c: &ReadCommand) -> Result<ReadResult> { Ok(ReadResult { partitions: vec![], tombstones_scanned: 0, warnings: vec![] }) }
}

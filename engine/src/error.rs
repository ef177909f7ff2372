//! Engine errors.

use std::path::PathBuf;

/// Errors the engine reports. None of them leaves acknowledged data half-applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An I/O operation failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checksum or structural check failed: the bytes at `offset` of `path` are not data.
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The table is not (or no longer) known to the engine.
    #[error("unknown table {0:?}")]
    UnknownTable(crate::model::TableId),
    /// A read met more tombstones than tombstone_failure_threshold.
    #[error(
        "Scanned over {scanned} tombstones during query; query aborted (see tombstone_failure_threshold)"
    )]
    TombstoneOverwhelming { scanned: usize },
    /// A mutation is too large to be logged as one commit-log entry
    /// (larger than a segment; raise commitlog_segment_size).
    #[error("mutation of {size} bytes exceeds the maximum of {max} bytes")]
    MutationTooLarge { size: u64, max: u64 },
    /// The engine is shutting down or failed earlier and refuses new work.
    #[error("storage engine is closed: {0}")]
    Closed(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

//! The seam between lightweight transactions and the consensus that orders them.
//!
//! A conditional write is a read, a decision on what was read, and a write that must not
//! be interleaved with any other conditional write of the same partition. The statement
//! side (`executor::lwt`) knows how to decide; a [`Cas`] implementation knows how to
//! serialise. The node crate implements it with Paxos across the partition's replicas
//! (Cassandra's `StorageProxy.cas`); without one, [`local_cas`] serialises on this node
//! with a striped lock, running the very same decision closure, so there is one code path
//! for condition evaluation.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use shoal_engine::{Mutation, PartitionData, ReadCommand, ReadResult, TableId};

use crate::coordinator::BoxFuture;
use crate::error::{Consistency, CqlError, CqlResult};
use crate::executor::Executor;
use crate::schema::Schema;

/// Decides a conditional write from the partition's current state.
///
/// Called with what was read (an empty partition when nothing exists) and the ballot's
/// timestamp in µs, which is the timestamp the proposed mutations must carry, as Cassandra
/// writes an accepted proposal at its ballot's time. Returns the mutations to propose, or
/// `None` when the conditions do not hold (nothing is written). It may be called more than
/// once when a Paxos round is pre-empted and retried; the last call's answer is the outcome.
pub type Decide<'a> =
    Box<dyn FnMut(&PartitionData, i64) -> CqlResult<Option<Vec<Mutation>>> + Send + 'a>;

/// One compare-and-set on one partition.
pub struct CasRequest<'a> {
    pub table: TableId,
    pub token: i64,
    pub key: Bytes,
    /// The read the conditions need (one partition: `key`).
    pub read: ReadCommand,
    /// SERIAL or LOCAL_SERIAL: the quorum the Paxos phases need.
    pub serial: Consistency,
    /// The consistency of the commit (ANY allowed), and of the read under SERIAL.
    pub commit: Consistency,
    pub decide: Decide<'a>,
}

/// Serialises conditional writes and serial reads per partition.
pub trait Cas: Send + Sync + 'static {
    /// Runs one compare-and-set: a Paxos round whose proposal is what `req.decide` returns.
    /// Resolves once the proposal is committed at `req.commit` (or at once when the
    /// conditions did not hold). Contention past the CAS timeout is a WriteTimeout of
    /// write type CAS.
    fn cas<'a>(&'a self, schema: Arc<Schema>, req: CasRequest<'a>) -> BoxFuture<'a, CqlResult<()>>;

    /// A SELECT at SERIAL / LOCAL_SERIAL: completes any in-progress proposal of the
    /// partition first, so the read sees every write that may already have been seen.
    fn serial_read(
        &self,
        schema: Arc<Schema>,
        cmd: ReadCommand,
        serial: Consistency,
    ) -> BoxFuture<'_, CqlResult<ReadResult>>;
}

/// The serial consistency a conditional write or serial read asks for, checked as
/// Cassandra's `ConsistencyLevel.validateForCas`.
pub fn check_serial(serial: Consistency) -> CqlResult<Consistency> {
    match serial {
        Consistency::Serial | Consistency::LocalSerial => Ok(serial),
        _ => Err(CqlError::invalid(
            "Invalid consistency for conditional update. Must be one of SERIAL or LOCAL_SERIAL",
        )),
    }
}

/// The commit consistency of a conditional write, checked as Cassandra's
/// `ConsistencyLevel.validateForCasCommit`.
pub fn check_commit(commit: Consistency) -> CqlResult<Consistency> {
    match commit {
        Consistency::Serial | Consistency::LocalSerial => Err(CqlError::invalid(format!(
            "{} is not supported as conditional update commit consistency. Use ANY if you mean \
             \"make sure it is accepted but I don't care how many replicas commit it for \
             non-SERIAL reads\"",
            commit.name()
        ))),
        other => Ok(other),
    }
}

/// An empty partition: what a decision sees when nothing was read.
pub fn empty_partition(token: i64, key: &Bytes) -> PartitionData {
    PartitionData {
        token,
        key: key.clone(),
        partition_deletion: None,
        range_tombstones: Vec::new(),
        static_row: None,
        rows: Vec::new(),
    }
}

const STRIPES: usize = 256;

/// The stripe serialising one partition's conditional writes on this node.
fn stripe(table: TableId, key: &Bytes) -> &'static tokio::sync::Mutex<()> {
    static LOCKS: OnceLock<Vec<tokio::sync::Mutex<()>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(|| (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    table.hash(&mut h);
    key.hash(&mut h);
    &locks[(h.finish() as usize) % STRIPES]
}

/// A compare-and-set on this node alone: a node that is its own only replica needs no
/// Paxos round, only a serial order per partition. The lock is held while the state is
/// read, decided on and written; the "ballot" is the node's next write timestamp, which is
/// strictly increasing, as a ballot would be.
pub async fn local_cas(ex: &Executor, mut req: CasRequest<'_>) -> CqlResult<()> {
    let _serial = stripe(req.table, &req.key).lock().await;
    let result = ex.read_local(&req.read)?;
    let current = result
        .partitions
        .into_iter()
        .next()
        .unwrap_or_else(|| empty_partition(req.token, &req.key));
    if let Some(mutations) = (req.decide)(&current, ex.next_timestamp())? {
        ex.apply_local(mutations).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_levels_are_checked_as_cassandra() {
        assert!(check_serial(Consistency::Serial).is_ok());
        assert!(check_serial(Consistency::LocalSerial).is_ok());
        let e = check_serial(Consistency::Quorum).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Invalid consistency for conditional update")
        );
        assert!(check_commit(Consistency::Any).is_ok());
        let e = check_commit(Consistency::Serial).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("SERIAL is not supported as conditional update commit consistency")
        );
    }
}

//! The seam between statement execution and where data lives.
//!
//! The executor turns statements into engine mutations and read commands; a
//! [`Coordinator`] decides which nodes apply or answer them and how many must agree (the
//! consistency level). The node binary installs a cluster-aware coordinator; without one,
//! the executor applies and reads on its own engine, which is what a single node does.
//!
//! The cql crate knows nothing of gossip sessions or sockets: the node crate implements
//! this trait on top of its ring and internode messaging, and calls back into
//! [`crate::executor::Executor::apply_local`] / [`crate::executor::Executor::read_local`]
//! for the replicas it is itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use shoal_engine::{Mutation, ReadCommand, ReadResult, TableId};

use crate::error::{Consistency, CqlResult, WriteType};
use crate::schema::Schema;

/// A boxed, sendable future (the trait is object-safe so the executor can hold `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one write asks of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    pub consistency: Consistency,
    /// Reported in WriteTimeout / WriteFailure errors, as drivers read it to decide retries.
    pub write_type: WriteType,
}

/// Applies writes and answers reads across the replicas of the data.
pub trait Coordinator: Send + Sync + 'static {
    /// Applies `mutations` (any tables, any keyspaces of `schema`) on their replicas and
    /// resolves once `options.consistency` replicas acknowledged each of them. Errors are
    /// CQL errors (Unavailable, WriteTimeout, ...) ready for the client.
    fn write(
        &self,
        schema: Arc<Schema>,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> BoxFuture<'_, CqlResult<()>>;

    /// Answers one read command at `consistency`: live data only (unless the command asks
    /// for tombstones), reconciled across the replicas consulted, at most `row_limit` rows
    /// and never fewer than the replicas together hold (short reads are retried).
    fn read(
        &self,
        schema: Arc<Schema>,
        cmd: ReadCommand,
        consistency: Consistency,
    ) -> BoxFuture<'_, CqlResult<ReadResult>>;

    /// TRUNCATE on every node holding the table; fails if one is down, as Cassandra does.
    fn truncate(&self, schema: Arc<Schema>, table: TableId) -> BoxFuture<'_, CqlResult<()>>;
}

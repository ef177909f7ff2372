//! The acceptor on this node: Paxos state kept durably in `system.paxos` (the table
//! Cassandra 4.0 keeps it in, same columns), one row per (partition key, table id).
//!
//! Requests of one partition are serialised by a striped mutex: each loads the row,
//! applies the pure transition of [`super::state`] and saves the whole row before
//! answering, so a promise or acceptance is on disk (under the commit-log sync mode)
//! before the proposer counts it. Every save rewrites every column at a fresh, strictly
//! increasing timestamp; absent values are written as empty blobs rather than tombstones,
//! so nothing a compaction purges (the table has gc_grace_seconds 0) can resurrect an
//! older state (a SELECT of system.paxos shows those as empty values). Like Cassandra's,
//! the row expires: its TTL is the partition's table's gc_grace_seconds, at least 3 h, so
//! partitions no longer written to stop costing space.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use shoal_cql::executor::Executor;
use shoal_cql::schema::TableDef;
use shoal_cql::types::bytecomp;
use shoal_engine::{
    Cell, CellValue, ClusteringBound, ClusteringRange, ColumnId, LivenessInfo, Mutation,
    PartitionRange, ReadCommand, Row, Ttl, decode_mutations, encode_mutations,
};

use super::ballot::Ballot;
use super::codec::{Request, Response};
use super::state::{AcceptorState, Commit, PartitionRef};

const STRIPES: usize = 1024;

/// Why the acceptor could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AcceptorError {
    #[error("system.paxos is not in the schema")]
    NoTable,
    #[error("system.paxos has no column {0}")]
    NoColumn(&'static str),
    #[error("corrupt paxos state: {0}")]
    Corrupt(String),
    #[error("paxos state storage: {0}")]
    Storage(#[from] shoal_cql::CqlError),
}

/// Column ids of system.paxos.
#[derive(Debug)]
struct Columns {
    in_progress_ballot: ColumnId,
    proposal_ballot: ColumnId,
    proposal: ColumnId,
    proposal_version: ColumnId,
    most_recent_commit_at: ColumnId,
    most_recent_commit: ColumnId,
    most_recent_commit_version: ColumnId,
}

/// This node's acceptor.
pub struct Acceptor {
    ex: Arc<Executor>,
    table: Arc<TableDef>,
    cols: Columns,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Acceptor {
    pub fn new(ex: Arc<Executor>) -> Result<Acceptor, AcceptorError> {
        let table = ex
            .schema()
            .table("system", "paxos")
            .cloned()
            .ok_or(AcceptorError::NoTable)?;
        let id = |name: &'static str| {
            table
                .column(name)
                .map(|c| c.id)
                .ok_or(AcceptorError::NoColumn(name))
        };
        let cols = Columns {
            in_progress_ballot: id("in_progress_ballot")?,
            proposal_ballot: id("proposal_ballot")?,
            proposal: id("proposal")?,
            proposal_version: id("proposal_version")?,
            most_recent_commit_at: id("most_recent_commit_at")?,
            most_recent_commit: id("most_recent_commit")?,
            most_recent_commit_version: id("most_recent_commit_version")?,
        };
        Ok(Acceptor {
            ex,
            table,
            cols,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        })
    }

    fn stripe(&self, part: &PartitionRef) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        part.table.hash(&mut h);
        part.key.hash(&mut h);
        &self.stripes[(h.finish() as usize) % STRIPES]
    }

    /// Answers one Paxos request.
    pub async fn handle(&self, req: Request) -> Result<Response, AcceptorError> {
        match req {
            Request::Prepare { part, ballot } => {
                let _g = self.stripe(&part).lock().await;
                let mut s = self.load(&part)?;
                let (resp, changed) = s.prepare(ballot);
                if changed {
                    self.save(&part, &s).await?;
                }
                Ok(Response::Prepare(resp))
            }
            Request::Propose { part, proposal } => {
                let _g = self.stripe(&part).lock().await;
                let mut s = self.load(&part)?;
                let accepted = s.propose(&proposal);
                if accepted {
                    self.save(&part, &s).await?;
                }
                Ok(Response::Propose { accepted })
            }
            Request::Commit { part, commit } => {
                // The data first: once the state says committed, a proposer may skip
                // sending this commit here again.
                self.ex.apply_local(commit.update.clone()).await?;
                let _g = self.stripe(&part).lock().await;
                let mut s = self.load(&part)?;
                if s.commit(&commit) {
                    self.save(&part, &s).await?;
                }
                Ok(Response::Commit)
            }
        }
    }

    fn row_key(&self, part: &PartitionRef) -> Result<(i64, Bytes, Bytes), AcceptorError> {
        // row_key is the table's partition key (one blob component: its bytes as they
        // are); cf_id is the table id, the clustering column.
        let token = shoal_gossip::partitioner::token(&part.key);
        let clustering =
            bytecomp::encode_key(&self.table.clustering_types(), &[&part.table.0[..]])?;
        Ok((token, part.key.clone(), Bytes::from(clustering)))
    }

    /// The stored state of one partition (the default when none was stored).
    pub fn load(&self, part: &PartitionRef) -> Result<AcceptorState, AcceptorError> {
        let (token, key, clustering) = self.row_key(part)?;
        let cmd = ReadCommand {
            table: self.table.engine_id(),
            partitions: PartitionRange::Single { token, key },
            slices: vec![ClusteringRange {
                start: ClusteringBound {
                    prefix: clustering.clone(),
                    inclusive: true,
                },
                end: ClusteringBound {
                    prefix: clustering.clone(),
                    inclusive: true,
                },
            }],
            reversed: false,
            start_after_row: None,
            row_limit: 1,
            per_partition_limit: 1,
            partition_limit: 1,
            include_tombstones: false,
            now: (super::proposer::now_micros() / 1_000_000) as i32,
        };
        let result = self.ex.read_local(&cmd)?;
        let Some(row) = result
            .partitions
            .into_iter()
            .next()
            .and_then(|p| p.rows.into_iter().find(|r| r.clustering == clustering))
        else {
            return Ok(AcceptorState::default());
        };
        let values: HashMap<ColumnId, Bytes> = row
            .cells
            .into_iter()
            .filter_map(|c| match c.value {
                CellValue::Live { value, .. } if !value.is_empty() => Some((c.column, value)),
                _ => None,
            })
            .collect();
        let ballot = |col: ColumnId| -> Result<Option<Ballot>, AcceptorError> {
            match values.get(&col) {
                None => Ok(None),
                Some(v) => {
                    let arr: [u8; 16] = v
                        .as_ref()
                        .try_into()
                        .map_err(|_| AcceptorError::Corrupt("ballot is not 16 bytes".into()))?;
                    Ballot::from_uuid(&arr)
                        .map(Some)
                        .ok_or_else(|| AcceptorError::Corrupt("ballot is not a time UUID".into()))
                }
            }
        };
        let commit = |b: ColumnId, u: ColumnId| -> Result<Option<Commit>, AcceptorError> {
            let Some(ballot) = ballot(b)? else {
                return Ok(None);
            };
            let update = match values.get(&u) {
                Some(v) => {
                    decode_mutations(v).map_err(|e| AcceptorError::Corrupt(e.to_string()))?
                }
                None => Vec::new(),
            };
            Ok(Some(Commit { ballot, update }))
        };
        Ok(AcceptorState {
            promised: ballot(self.cols.in_progress_ballot)?,
            accepted: commit(self.cols.proposal_ballot, self.cols.proposal)?,
            most_recent_commit: commit(
                self.cols.most_recent_commit_at,
                self.cols.most_recent_commit,
            )?,
        })
    }

    async fn save(&self, part: &PartitionRef, s: &AcceptorState) -> Result<(), AcceptorError> {
        let (token, key, clustering) = self.row_key(part)?;
        let ts = self.ex.next_timestamp();
        // Cassandra's `paxosTtlSec`: max(3 h, the table's gc_grace_seconds).
        let gc_grace = self
            .ex
            .schema()
            .table_by_engine_id(part.table)
            .map_or(0, |t| t.params.gc_grace_seconds.max(0) as u32);
        let ttl_secs = gc_grace.max(3 * 3600);
        let now_secs = (ts / 1_000_000) as i32;
        let ttl = Some(Ttl {
            ttl: ttl_secs,
            local_expiration_time: now_secs.saturating_add(ttl_secs as i32),
        });
        let version =
            Bytes::copy_from_slice(&i32::from(shoal_engine::MUTATION_FORMAT_VERSION).to_be_bytes());
        let ballot_bytes =
            |b: Option<Ballot>| b.map_or_else(Bytes::new, |b| Bytes::copy_from_slice(&b.to_uuid()));
        let update_bytes = |c: &Option<Commit>| match c {
            Some(c) => {
                let mut out = Vec::new();
                encode_mutations(&c.update, &mut out);
                Bytes::from(out)
            }
            None => Bytes::new(),
        };
        let mut cells: Vec<(ColumnId, Bytes)> = vec![
            (self.cols.in_progress_ballot, ballot_bytes(s.promised)),
            (
                self.cols.proposal_ballot,
                ballot_bytes(s.accepted.as_ref().map(|c| c.ballot)),
            ),
            (self.cols.proposal, update_bytes(&s.accepted)),
            (self.cols.proposal_version, version.clone()),
            (
                self.cols.most_recent_commit_at,
                ballot_bytes(s.most_recent_commit.as_ref().map(|c| c.ballot)),
            ),
            (
                self.cols.most_recent_commit,
                update_bytes(&s.most_recent_commit),
            ),
            (self.cols.most_recent_commit_version, version),
        ];
        cells.sort_by_key(|(c, _)| *c);
        let row = Row {
            clustering,
            liveness: Some(LivenessInfo { timestamp: ts, ttl }),
            deletion: None,
            complex_deletions: Vec::new(),
            cells: cells
                .into_iter()
                .map(|(column, value)| Cell {
                    column,
                    path: None,
                    timestamp: ts,
                    value: CellValue::Live { value, ttl },
                })
                .collect(),
        };
        let m = Mutation {
            table: self.table.engine_id(),
            token,
            key,
            partition_deletion: None,
            range_tombstones: Vec::new(),
            static_row: None,
            rows: vec![row],
        };
        self.ex.apply_local(vec![m]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_cql::executor::NodeInfo;
    use shoal_cql::schema::persist::SchemaStore;
    use shoal_engine::{Engine, EngineConfig, TableId};
    use std::path::Path;

    fn open(dir: &Path) -> Arc<Executor> {
        let store = SchemaStore::new(dir.join("system"));
        let schema = Executor::load_schema(&store).unwrap();
        let tables = Executor::engine_tables(&schema);
        let engine = Engine::open(
            EngineConfig {
                data_dir: dir.join("data"),
                commitlog_dir: dir.join("commitlog"),
                ..Default::default()
            },
            tables,
        )
        .unwrap();
        let node = NodeInfo {
            cluster_name: "test".into(),
            host_id: uuid::Uuid::nil(),
            tokens: vec![0],
            listen_address: "127.0.0.1".parse().unwrap(),
            broadcast_address: "127.0.0.1".parse().unwrap(),
            rpc_address: "127.0.0.1".parse().unwrap(),
            native_port: 9042,
            storage_port: 7000,
            dc: "datacenter1".into(),
            rack: "rack1".into(),
            snitch: "org.apache.cassandra.locator.SimpleSnitch".into(),
            gossip_generation: 1,
        };
        Arc::new(Executor::new(Arc::new(engine), node, store, schema))
    }

    fn part() -> PartitionRef {
        PartitionRef {
            table: TableId([5; 16]),
            token: 1,
            key: Bytes::from_static(b"pk"),
        }
    }

    #[tokio::test]
    async fn acceptor_state_is_stored_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let b = |m| Ballot::new(m, 1);
        // An update to a table the engine does not know would fail to apply: commit
        // empty updates here, the state is what is under test.
        let commit = |m| Commit {
            ballot: b(m),
            update: Vec::new(),
        };
        let expected = {
            let ex = open(dir.path());
            let a = Acceptor::new(ex.clone()).unwrap();
            let promised = |r| matches!(r, Response::Prepare(p) if p.promised);
            assert!(promised(
                a.handle(Request::Prepare {
                    part: part(),
                    ballot: b(10)
                })
                .await
                .unwrap()
            ));
            assert!(!promised(
                a.handle(Request::Prepare {
                    part: part(),
                    ballot: b(9)
                })
                .await
                .unwrap()
            ));
            let r = a
                .handle(Request::Propose {
                    part: part(),
                    proposal: commit(10),
                })
                .await
                .unwrap();
            assert_eq!(r, Response::Propose { accepted: true });
            a.handle(Request::Commit {
                part: part(),
                commit: commit(10),
            })
            .await
            .unwrap();
            a.handle(Request::Prepare {
                part: part(),
                ballot: b(20),
            })
            .await
            .unwrap();
            a.handle(Request::Propose {
                part: part(),
                proposal: commit(20),
            })
            .await
            .unwrap();
            let s = a.load(&part()).unwrap();
            assert_eq!(s.promised, Some(b(20)));
            assert_eq!(s.accepted, Some(commit(20)));
            assert_eq!(s.most_recent_commit, Some(commit(10)));
            // Another partition of the same table has its own state.
            let other = PartitionRef {
                key: Bytes::from_static(b"other"),
                ..part()
            };
            assert_eq!(a.load(&other).unwrap(), AcceptorState::default());
            // The row expires after max(3 h, gc_grace_seconds of the table): 3 h here,
            // the table being unknown to the schema.
            let all = ex
                .read_local(&ReadCommand {
                    table: a.table.engine_id(),
                    partitions: PartitionRange::Range {
                        start: None,
                        end: None,
                    },
                    slices: Vec::new(),
                    reversed: false,
                    start_after_row: None,
                    row_limit: usize::MAX,
                    per_partition_limit: usize::MAX,
                    partition_limit: usize::MAX,
                    include_tombstones: false,
                    now: 0,
                })
                .unwrap();
            let row = &all.partitions[0].rows[0];
            assert_eq!(
                row.liveness.and_then(|l| l.ttl).map(|t| t.ttl),
                Some(3 * 3600)
            );
            ex.engine().shutdown().unwrap();
            s
        };
        // The commit log is replayed on open: the state is back.
        let ex = open(dir.path());
        let a = Acceptor::new(ex.clone()).unwrap();
        assert_eq!(a.load(&part()).unwrap(), expected);
        ex.engine().shutdown().unwrap();
    }
}

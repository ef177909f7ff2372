//! The engine's data model: partitions ordered by token, rows ordered by clustering key,
//! cells with write timestamps and TTLs, and tombstones at every level.
//!
//! The engine is schema-free. Callers (the CQL layer) hand it:
//! - a partition key as the serialized bytes Cassandra hashes, plus its Murmur3 token;
//! - clustering keys already encoded in a *byte-comparable* form, so the engine orders rows
//!   with `memcmp` and never needs a type comparator (see `docs/formats/clustering-key.md`);
//! - cells keyed by a numeric column id that the schema assigns once and never reuses, so a
//!   dropped-and-re-added column never sees the old column's data.
//!
//! Reconciliation follows Cassandra: the highest timestamp wins; on equal timestamps a
//! tombstone beats a live cell, and between two live cells the greater value wins; an expired
//! cell behaves as a tombstone written at its expiry.

use bytes::Bytes;

/// Microseconds since the Unix epoch, as CQL write timestamps are.
pub type Timestamp = i64;
/// Seconds since the Unix epoch (Cassandra's "local deletion time").
pub type LocalTime = i32;
/// A column's stable id inside its table.
pub type ColumnId = u32;

/// A table's identity: the UUID the schema gave it at creation (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(pub [u8; 16]);

/// A deletion: everything written at or before `marked_for_delete_at` is shadowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeletionTime {
    pub marked_for_delete_at: Timestamp,
    /// When the deletion was made (seconds); gc_grace_seconds counts from here.
    pub local_deletion_time: LocalTime,
}

/// A TTL attached to a cell or a row marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    /// The TTL in seconds as given by the client.
    pub ttl: u32,
    /// When it expires (seconds since epoch) = local write time + ttl.
    pub local_expiration_time: LocalTime,
}

/// The primary-key liveness ("row marker") that INSERT writes and UPDATE does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessInfo {
    pub timestamp: Timestamp,
    pub ttl: Option<Ttl>,
}

/// What a cell holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CellValue {
    /// A live value, possibly expiring.
    Live { value: Bytes, ttl: Option<Ttl> },
    /// A cell tombstone.
    Tombstone { local_deletion_time: LocalTime },
    /// A counter delta/total. Counters merge by summing per-writer shards (cluster issue);
    /// on one node a single shard is enough. `value` is the running total contribution.
    Counter { value: i64 },
}

/// One cell of a row. `path` addresses an element of a non-frozen collection or a field of a
/// non-frozen UDT (byte-comparable encoded by the caller); it is `None` for simple columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub column: ColumnId,
    pub path: Option<Bytes>,
    pub timestamp: Timestamp,
    pub value: CellValue,
}

/// A clustering key in byte-comparable form. The empty key is the only row of a table
/// without clustering columns.
pub type Clustering = Bytes;

/// A row: its clustering key, marker, deletion, per-column collection deletions and cells.
/// `cells` is sorted by `(column, path)` with at most one cell per `(column, path)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub clustering: Clustering,
    pub liveness: Option<LivenessInfo>,
    pub deletion: Option<DeletionTime>,
    /// Whole-collection deletions ("complex deletion"): shadows every element cell of that
    /// column written at or before the deletion. Sorted by column.
    pub complex_deletions: Vec<(ColumnId, DeletionTime)>,
    pub cells: Vec<Cell>,
}

/// One end of a clustering range, on byte-comparable clustering *prefixes*.
///
/// Because every component encoding is prefix-free, a prefix of clustering components is a
/// byte prefix of every key that starts with those components. A bound on prefix `P`:
/// - `Start { inclusive: true }` admits keys `k >= P` (all keys starting with `P` included);
/// - `Start { inclusive: false }` admits keys `k > P` that do not start with `P`;
/// - `End { inclusive: true }` admits keys `k <= P` or starting with `P`;
/// - `End { inclusive: false }` admits keys `k < P`.
///
/// An empty prefix is unbounded on that side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusteringBound {
    pub prefix: Bytes,
    pub inclusive: bool,
}

/// A half-open or closed range of clustering keys, in storage order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusteringRange {
    pub start: ClusteringBound,
    pub end: ClusteringBound,
}

impl ClusteringRange {
    /// Every row of the partition.
    pub fn all() -> Self {
        ClusteringRange {
            start: ClusteringBound {
                prefix: Bytes::new(),
                inclusive: true,
            },
            end: ClusteringBound {
                prefix: Bytes::new(),
                inclusive: true,
            },
        }
    }
}

/// A deletion of every row within a clustering range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeTombstone {
    pub range: ClusteringRange,
    pub deletion: DeletionTime,
}

/// All the changes to one partition of one table: the unit that is logged and applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    pub table: TableId,
    /// Murmur3 token of `key`, computed by the caller.
    pub token: i64,
    /// Serialized partition key (the bytes Cassandra hashes).
    pub key: Bytes,
    pub partition_deletion: Option<DeletionTime>,
    pub range_tombstones: Vec<RangeTombstone>,
    /// The partition's static row (clustering key empty), if touched.
    pub static_row: Option<Row>,
    /// Rows, sorted by clustering key, unique.
    pub rows: Vec<Row>,
}

/// Which partitions a read touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionRange {
    /// Exactly one partition.
    Single { token: i64, key: Bytes },
    /// Partitions whose position (token, key) lies between the bounds, in ring order.
    /// `None` is unbounded. Tokens wrap-around is the caller's job (split into two reads).
    Range {
        start: Option<PartitionPosition>,
        end: Option<PartitionPosition>,
    },
}

/// A position in ring order, used for range reads and paging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionPosition {
    pub token: i64,
    /// `None` means "the token itself" (before or after every key with that token,
    /// depending on `inclusive`).
    pub key: Option<Bytes>,
    pub inclusive: bool,
}

/// What a read asks for.
#[derive(Clone, Debug)]
pub struct ReadCommand {
    pub table: TableId,
    pub partitions: PartitionRange,
    /// Clustering ranges in storage order, sorted and non-overlapping; empty = all rows.
    pub slices: Vec<ClusteringRange>,
    /// Walk rows in reverse storage order (ORDER BY opposite to the clustering order).
    pub reversed: bool,
    /// Resume a page: in the first partition only, skip rows up to and including this key
    /// (in the walk direction). The static row is not returned again when set.
    pub start_after_row: Option<Clustering>,
    /// Stop after this many live rows in total (a partition with no live rows but a live
    /// static row counts as one row).
    pub row_limit: usize,
    /// Stop after this many live rows per partition.
    pub per_partition_limit: usize,
    /// Stop after this many partitions with live data.
    pub partition_limit: usize,
    /// Return tombstones and shadowed-free raw data instead of only live data (digest reads,
    /// read repair, LWT). Live rows are still merged.
    pub include_tombstones: bool,
    /// The read's "now" in seconds, to expire TTLs.
    pub now: LocalTime,
}

/// The merged result for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionData {
    pub token: i64,
    pub key: Bytes,
    pub partition_deletion: Option<DeletionTime>,
    /// Only with `include_tombstones`.
    pub range_tombstones: Vec<RangeTombstone>,
    pub static_row: Option<Row>,
    /// In walk order (reversed when the command is reversed).
    pub rows: Vec<Row>,
}

/// How the commit log is synced, as cassandra.yaml's `commitlog_sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitLogSync {
    /// Acknowledge at once; fsync every `period`.
    Periodic { period_ms: u64 },
    /// Acknowledge only after the entry is fsynced; concurrent writers share an fsync.
    Batch,
    /// Acknowledge after fsync; fsyncs happen at most once per `window`.
    Group { window_ms: u64 },
}

/// Per-table options that matter to the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct TableOptions {
    pub gc_grace_seconds: u32,
    pub default_time_to_live: u32,
    /// The `compaction` map as given in CQL (class and sub-options).
    pub compaction: Vec<(String, String)>,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            gc_grace_seconds: 864_000,
            default_time_to_live: 0,
            compaction: vec![(
                "class".into(),
                "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy".into(),
            )],
        }
    }
}

//! In-memory, concurrently writable partitions of one table.
//!
//! Partitions live in a lock-free skip list ordered by (token, key), so writers to different
//! partitions never contend and range reads walk in ring order; each partition's content sits
//! behind its own mutex because a mutation touches several of its structures at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::model::*;
use crate::reconcile::{deletion_supersedes, max_deletion, merge_row, normalize_cells};
use crate::rowmap::RowMap;

/// A partition's position in ring order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub token: i64,
    pub key: Bytes,
}

/// The merged, unfiltered content of one partition: what a memtable holds and what every
/// future data source (SSTables) yields before reads filter it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionState {
    pub deletion: Option<DeletionTime>,
    /// Distinct ranges, each with its strongest deletion.
    pub range_tombstones: Vec<RangeTombstone>,
    pub static_row: Option<Row>,
    pub rows: RowMap,
}

impl PartitionState {
    /// Merges a mutation's content in.
    pub fn apply(&mut self, m: Mutation) {
        self.deletion = max_deletion(self.deletion, m.partition_deletion);
        for rt in m.range_tombstones {
            self.add_range_tombstone(rt);
        }
        if let Some(s) = m.static_row {
            self.merge_static(s);
        }
        for row in m.rows {
            self.merge_row(row);
        }
    }

    /// A copy of the partition-level data only (no rows).
    pub fn clone_header(&self) -> PartitionState {
        PartitionState {
            deletion: self.deletion,
            range_tombstones: self.range_tombstones.clone(),
            static_row: self.static_row.clone(),
            rows: RowMap::new(),
        }
    }

    /// Merges another state in (used to combine data sources).
    pub fn merge(&mut self, other: PartitionState) {
        self.deletion = max_deletion(self.deletion, other.deletion);
        for rt in other.range_tombstones {
            self.add_range_tombstone(rt);
        }
        if let Some(s) = other.static_row {
            self.merge_static(s);
        }
        for row in other.rows {
            self.merge_row(row);
        }
    }

    fn add_range_tombstone(&mut self, rt: RangeTombstone) {
        match self
            .range_tombstones
            .iter_mut()
            .find(|x| x.range == rt.range)
        {
            Some(x) => {
                if deletion_supersedes(&rt.deletion, &x.deletion) {
                    x.deletion = rt.deletion;
                }
            }
            None => self.range_tombstones.push(rt),
        }
    }

    fn merge_static(&mut self, mut s: Row) {
        s.clustering = Bytes::new();
        match &mut self.static_row {
            Some(cur) => merge_row(cur, s),
            None => {
                normalize_row(&mut s);
                self.static_row = Some(s);
            }
        }
    }

    fn merge_row(&mut self, mut row: Row) {
        match self.rows.get_mut(&row.clustering) {
            Some(cur) => merge_row(cur, row),
            None => {
                normalize_row(&mut row);
                self.rows.insert(row);
            }
        }
    }
}

fn normalize_row(row: &mut Row) {
    normalize_cells(&mut row.cells);
    if !row.complex_deletions.is_sorted_by_key(|(c, _)| *c) {
        let mut cds = std::mem::take(&mut row.complex_deletions);
        cds.sort_by_key(|(c, _)| *c);
        for (c, d) in cds {
            match row.complex_deletions.last_mut() {
                Some((lc, ld)) if *lc == c => {
                    if deletion_supersedes(&d, ld) {
                        *ld = d;
                    }
                }
                _ => row.complex_deletions.push((c, d)),
            }
        }
    }
}

/// Heap a row adds to a memtable: the row slot, its cells and the bytes they point to.
fn row_size(r: &Row) -> u64 {
    let cells: usize = r
        .cells
        .iter()
        .map(|c| {
            let v = match &c.value {
                CellValue::Live { value, .. } => value.len(),
                _ => 0,
            };
            size_of::<Cell>() + v + c.path.as_ref().map_or(0, |p| p.len())
        })
        .sum();
    (size_of::<Row>()
        + r.clustering.len()
        + cells
        + size_of::<(ColumnId, DeletionTime)>() * r.complex_deletions.len()) as u64
}

/// Heap a new partition costs before its rows: the skip-list node (key, state, mutex and
/// an average tower of pointers) and the key's bytes.
const PARTITION_OVERHEAD: u64 =
    (size_of::<PartitionKey>() + size_of::<Mutex<PartitionState>>() + 48) as u64;

/// Heap footprint of a mutation applied to a memtable, for the memtable space accounting
/// (which decides when to flush and when to throttle writes, so it must not flatter: an
/// earlier estimate counted a quarter of the real size). A partition the memtable already
/// holds is counted again, as are rows that replace older ones: the total is an upper
/// bound, like Cassandra's allocation-based accounting. `memtable_footprint` in the
/// engine's tests measures it against a counting allocator.
pub fn mutation_size(m: &Mutation) -> u64 {
    PARTITION_OVERHEAD
        + m.key.len() as u64
        + m.range_tombstones
            .iter()
            .map(|rt| {
                (size_of::<RangeTombstone>()
                    + rt.range.start.prefix.len()
                    + rt.range.end.prefix.len()) as u64
            })
            .sum::<u64>()
        + m.static_row.as_ref().map_or(0, row_size)
        + m.rows.iter().map(row_size).sum::<u64>()
}

/// One table's memtable.
#[derive(Default)]
pub struct Memtable {
    pub partitions: SkipMap<PartitionKey, Mutex<PartitionState>>,
    bytes: AtomicU64,
}

impl Memtable {
    /// Merges `m` in and returns the bytes it added to the accounting.
    pub fn apply(&self, m: Mutation) -> u64 {
        let size = mutation_size(&m);
        let pk = PartitionKey {
            token: m.token,
            key: m.key.clone(),
        };
        let entry = self
            .partitions
            .get_or_insert_with(pk, || Mutex::new(PartitionState::default()));
        entry
            .value()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(m);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        size
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }
}

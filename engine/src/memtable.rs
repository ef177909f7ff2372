//! In-memory, concurrently writable partitions of one table.
//!
//! Partitions live in a lock-free skip list ordered by (token, key), so writers to different
//! partitions never contend and range reads walk in ring order; each partition's content sits
//! behind its own mutex because a mutation touches several of its structures at once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::model::*;
use crate::reconcile::{deletion_supersedes, max_deletion, merge_row, normalize_cells};

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
    pub rows: BTreeMap<Bytes, Row>,
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
            rows: BTreeMap::new(),
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
        for (_, row) in other.rows {
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
                self.rows.insert(row.clustering.clone(), row);
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

/// Rough heap footprint of a mutation, for the memtable space accounting.
pub fn mutation_size(m: &Mutation) -> u64 {
    fn row_size(r: &Row) -> u64 {
        let cells: u64 = r
            .cells
            .iter()
            .map(|c| {
                let v = match &c.value {
                    CellValue::Live { value, .. } => value.len(),
                    _ => 0,
                };
                64 + v as u64 + c.path.as_ref().map_or(0, |p| p.len() as u64)
            })
            .sum();
        96 + r.clustering.len() as u64 + cells + 16 * r.complex_deletions.len() as u64
    }
    128 + m.key.len() as u64
        + m.range_tombstones
            .iter()
            .map(|rt| 64 + (rt.range.start.prefix.len() + rt.range.end.prefix.len()) as u64)
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
    pub fn apply(&self, m: Mutation) {
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
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }
}

//! In-memory, concurrently writable partitions of one table.
//!
//! Partitions live in B-trees ordered by (token, key), one per slice of the ring, so range
//! reads and flushes walk in ring order and writers to different slices never contend; each
//! partition's content sits behind its own mutex because a mutation touches several of its
//! structures at once, and readers hold it after letting go of the B-tree.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

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

/// Heap a new partition costs before its rows: its slot in a B-tree leaf (key and pointer,
/// at the two-thirds fill random inserts leave), the shared partition state it points to
/// (with the `Arc` counts and the allocator's rounding), and the key's bytes.
const PARTITION_OVERHEAD: u64 = ((size_of::<PartitionKey>() + size_of::<Partition>()) * 3 / 2
    + 16
    + size_of::<Mutex<PartitionState>>()
    + 16) as u64;

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

/// A partition's content, shared so that readers can let go of the shard it lives in.
pub type Partition = Arc<Mutex<PartitionState>>;

/// Shards by the top bits of the token: a B-tree per shard keeps each insert's search
/// within a few cache lines (a skip list over 250k partitions chased about twenty
/// pointers, 12% of a write's CPU), and the shard lock is held for one insert only.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

/// The shard of a token. Flipping the sign bit maps signed order onto unsigned order, so
/// shard order is ring order and walking the shards in turn walks the ring.
fn shard_of(token: i64) -> usize {
    ((token as u64 ^ (1 << 63)) >> (64 - SHARD_BITS)) as usize
}

type Shard = RwLock<BTreeMap<PartitionKey, Partition>>;

/// One table's memtable.
pub struct Memtable {
    shards: Box<[Shard]>,
    count: AtomicUsize,
    bytes: AtomicU64,
}

impl Default for Memtable {
    fn default() -> Memtable {
        Memtable {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            count: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Memtable {
    fn shard(&self, token: i64) -> &Shard {
        &self.shards[shard_of(token)]
    }

    /// Merges `m` in and returns the bytes it added to the accounting.
    pub fn apply(&self, m: Mutation) -> u64 {
        let size = mutation_size(&m);
        let pk = PartitionKey {
            token: m.token,
            key: m.key.clone(),
        };
        // One search under the write lock: most writes of a large table create a
        // partition, so a read-locked lookup first would search twice.
        let mut shard = self
            .shard(m.token)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let p = shard.entry(pk).or_insert_with(|| {
            self.count.fetch_add(1, Ordering::Relaxed);
            Partition::default()
        });
        p.lock().unwrap_or_else(|p| p.into_inner()).apply(m);
        drop(shard);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        size
    }

    /// The partition at `pk`, if the memtable holds it.
    pub fn get(&self, pk: &PartitionKey) -> Option<Partition> {
        self.shard(pk.token)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(pk)
            .cloned()
    }

    pub fn contains(&self, pk: &PartitionKey) -> bool {
        self.shard(pk.token)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(pk)
    }

    /// Partitions from `from` on, in ring order. The iterator takes a shard's lock for a
    /// batch at a time, so writers are not held up while a reader works through them; it
    /// sees writes made behind its position, as a skip list's would.
    pub fn range_from(&self, from: Bound<PartitionKey>) -> Range<'_> {
        let shard = match &from {
            Bound::Included(k) | Bound::Excluded(k) => shard_of(k.token),
            Bound::Unbounded => 0,
        };
        Range {
            mt: self,
            shard,
            from,
            batch: Vec::new().into_iter(),
        }
    }

    /// Calls `f` on every partition in ring order, stopping at the first error. Holds one
    /// shard's read lock at a time, so it is meant for memtables no longer written (flush).
    pub fn for_each<E>(
        &self,
        mut f: impl FnMut(&PartitionKey, &PartitionState) -> Result<(), E>,
    ) -> Result<(), E> {
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            for (k, p) in shard.iter() {
                f(k, &p.lock().unwrap_or_else(|p| p.into_inner()))?;
            }
        }
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn partition_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

/// Partitions taken from a shard per lock.
const RANGE_BATCH: usize = 64;

/// See [`Memtable::range_from`].
pub struct Range<'a> {
    mt: &'a Memtable,
    shard: usize,
    /// Where the next batch starts.
    from: Bound<PartitionKey>,
    batch: std::vec::IntoIter<(PartitionKey, Partition)>,
}

impl Iterator for Range<'_> {
    type Item = (PartitionKey, Partition);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.batch.next() {
                return Some(x);
            }
            let shard = self.mt.shards.get(self.shard)?;
            let batch: Vec<_> = shard
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .range((self.from.clone(), Bound::Unbounded))
                .take(RANGE_BATCH)
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect();
            match batch.last() {
                Some((k, _)) if batch.len() == RANGE_BATCH => {
                    self.from = Bound::Excluded(k.clone());
                }
                _ => {
                    self.shard += 1;
                    self.from = Bound::Unbounded;
                }
            }
            self.batch = batch.into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mutation(token: i64, key: u8) -> Mutation {
        Mutation {
            table: TableId([0; 16]),
            token,
            key: Bytes::from(vec![key]),
            partition_deletion: None,
            range_tombstones: vec![],
            static_row: None,
            rows: vec![Row {
                cells: vec![Cell {
                    column: 0,
                    path: None,
                    timestamp: 1,
                    value: CellValue::Live {
                        value: Bytes::from_static(b"v"),
                        ttl: None,
                    },
                }],
                ..Row::default()
            }],
        }
    }

    /// Tokens from a few shards only, so shards hold more than a range batch, and keys
    /// from a small set, so distinct partitions share tokens.
    fn token() -> impl Strategy<Value = i64> {
        (
            prop::sample::select(vec![0u64, 1, 2, 127, 128, 255]),
            0u64..200,
        )
            .prop_map(|(shard, low)| ((shard << 56) | low) as i64 ^ i64::MIN)
    }

    proptest! {
        /// Ring-order walks (whole and from any bound) agree with a sorted model.
        #[test]
        fn walks_match_a_sorted_model(
            writes in prop::collection::vec((token(), 0u8..3), 0..600),
            from in (token(), 0u8..3, 0u8..3),
        ) {
            let mt = Memtable::default();
            let mut model = std::collections::BTreeSet::new();
            for (t, k) in &writes {
                mt.apply(mutation(*t, *k));
                model.insert(PartitionKey { token: *t, key: Bytes::from(vec![*k]) });
            }
            prop_assert_eq!(mt.partition_count(), model.len());
            let mut walked = Vec::new();
            mt.for_each(|k, _| {
                walked.push(k.clone());
                Ok::<(), ()>(())
            })
            .unwrap();
            prop_assert_eq!(&walked, &model.iter().cloned().collect::<Vec<_>>());
            let all: Vec<_> = mt.range_from(Bound::Unbounded).map(|(k, _)| k).collect();
            prop_assert_eq!(&all, &walked);
            let pk = PartitionKey { token: from.0, key: Bytes::from(vec![from.1]) };
            let bound = match from.2 {
                0 => Bound::Included(pk),
                1 => Bound::Excluded(pk),
                _ => Bound::Unbounded,
            };
            let got: Vec<_> = mt.range_from(bound.clone()).map(|(k, _)| k).collect();
            let want: Vec<_> = model.range((bound, Bound::Unbounded)).cloned().collect();
            prop_assert_eq!(got, want);
            for k in &model {
                prop_assert!(mt.contains(k));
                prop_assert!(mt.get(k).is_some());
            }
        }
    }

    #[test]
    fn shards_follow_ring_order() {
        let tokens = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for w in tokens.windows(2) {
            assert!(shard_of(w[0]) <= shard_of(w[1]), "{w:?}");
        }
        assert_eq!(shard_of(i64::MIN), 0);
        assert_eq!(shard_of(i64::MAX), SHARDS - 1);
    }
}

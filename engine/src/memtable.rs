//! In-memory, concurrently writable partitions of one table.
//!
//! Partitions live in B-trees ordered by (token, key), one per slice of the ring, so range
//! reads and flushes walk in ring order and writers to different slices never contend.
//!
//! A partition written once (most partitions of a large table) is kept *packed*: encoded
//! as the chunk an SSTable would hold for it, in one allocation, with the statistics it
//! adds to its SSTable. A flush copies such chunks as they are, and freeing the memtable
//! frees one buffer per partition rather than a tree of rows, cells and values. A second
//! write to a packed partition *opens* it: it is decoded into a [`PartitionState`], behind
//! its own mutex because a mutation touches several of its structures at once, and readers
//! hold that after letting go of the B-tree.

use std::collections::{BTreeMap, btree_map};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use crate::codec::{
    DecodeError, MutationParts, decode_mutations_shared, encode_chunk_start, encode_row,
};
use crate::model::*;
use crate::reconcile::{deletion_supersedes, max_deletion, merge_row, normalize_cells};
use crate::rowmap::RowMap;
use crate::sstable::PartitionBounds;

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
    /// Nothing at all: no deletion, range tombstone, static row or row.
    pub fn is_empty(&self) -> bool {
        self.deletion.is_none()
            && self.range_tombstones.is_empty()
            && self.static_row.is_none()
            && self.rows.is_empty()
    }

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

/// Heap a B-tree slot costs, at the two-thirds fill random inserts leave.
const SLOT: usize = (size_of::<PartitionKey>() + size_of::<Partition>()) * 3 / 2;

/// Heap an open partition costs before its rows: its slot, the shared partition state it
/// points to (with the `Arc` counts and the allocator's rounding), and the rounding of the
/// key's own allocation.
const OPEN_OVERHEAD: u64 = (SLOT + 16 + size_of::<Mutex<PartitionState>>() + 16 + 16) as u64;

/// Heap a packed partition costs besides its key's and chunk's bytes: its slot and the
/// rounding of those two allocations.
const PACKED_OVERHEAD: u64 = (SLOT + 16 + 16) as u64;

/// Partitions whose chunk would be larger stay open: a chunk goes into one SSTable block
/// whole, and this keeps blocks near their target size.
pub const PACK_MAX: usize = 1024;

/// Heap footprint of a mutation applied to a memtable as an open partition, for the
/// memtable space accounting (which decides when to flush and when to throttle writes, so
/// it must not flatter: an earlier estimate counted a quarter of the real size). A
/// partition the memtable already holds is counted again, as are rows that replace older
/// ones: the total is an upper bound, like Cassandra's allocation-based accounting.
/// `memtable_footprint` in the engine's tests measures it against a counting allocator.
pub fn mutation_size(m: &Mutation) -> u64 {
    content_size(
        &m.key,
        &m.range_tombstones,
        m.static_row.as_ref(),
        m.rows.iter(),
    )
}

/// [`mutation_size`] of a whole open partition (a new one, or what opening a packed one
/// allocates).
fn state_size(key: &[u8], st: &PartitionState) -> u64 {
    content_size(
        key,
        &st.range_tombstones,
        st.static_row.as_ref(),
        st.rows.values(),
    )
}

fn content_size<'a>(
    key: &[u8],
    range_tombstones: &[RangeTombstone],
    static_row: Option<&Row>,
    rows: impl Iterator<Item = &'a Row>,
) -> u64 {
    OPEN_OVERHEAD
        + key.len() as u64
        + range_tombstones
            .iter()
            .map(|rt| {
                (size_of::<RangeTombstone>()
                    + rt.range.start.prefix.len()
                    + rt.range.end.prefix.len()) as u64
            })
            .sum::<u64>()
        + static_row.map_or(0, row_size)
        + rows.map(row_size).sum::<u64>()
}

/// A partition kept as the SSTable chunk that holds it (see the module's documentation).
#[derive(Clone, Debug)]
pub struct Packed {
    /// One mutation in the commit log's and SSTables' mutation encoding.
    chunk: Bytes,
    bounds: PartitionBounds,
}

impl Packed {
    /// Encodes `st` (not empty) if its chunk is at most [`PACK_MAX`] bytes.
    fn pack(table: TableId, pk: &PartitionKey, st: &PartitionState) -> Option<Packed> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            let parts = MutationParts {
                table,
                token: pk.token,
                key: &pk.key,
                partition_deletion: st.deletion.as_ref(),
                range_tombstones: &st.range_tombstones,
                static_row: st.static_row.as_ref(),
            };
            encode_chunk_start(buf, parts, st.rows.len());
            for row in st.rows.values() {
                encode_row(row, buf);
                if buf.len() > PACK_MAX {
                    return None;
                }
            }
            // An exact-size copy: the scratch buffer's spare capacity stays behind.
            Some(Packed {
                chunk: Bytes::copy_from_slice(buf),
                bounds: PartitionBounds::of(st),
            })
        })
    }

    /// The encoded partition, as an SSTable block would hold it.
    pub fn chunk(&self) -> &Bytes {
        &self.chunk
    }

    pub fn bounds(&self) -> &PartitionBounds {
        &self.bounds
    }

    /// Decodes the partition. Its values share the chunk's memory.
    pub fn unpack(&self) -> Result<PartitionState, DecodeError> {
        let mut ms = decode_mutations_shared(&self.chunk, 0..self.chunk.len())?;
        let (Some(m), None) = (ms.pop(), ms.pop()) else {
            return Err(DecodeError("a packed partition holds one mutation".into()));
        };
        let mut st = PartitionState::default();
        st.apply(m);
        Ok(st)
    }
}

/// A memtable's partition: packed until its second write, open after. Cloning it is cheap,
/// so that readers can let go of the shard it lives in.
#[derive(Clone, Debug)]
pub enum Partition {
    Packed(Packed),
    Open(Arc<Mutex<PartitionState>>),
}

impl Partition {
    /// Calls `f` on the partition's content (decoded first if it is packed).
    pub fn read<R>(&self, f: impl FnOnce(&PartitionState) -> R) -> Result<R, DecodeError> {
        match self {
            Partition::Packed(p) => Ok(f(&p.unpack()?)),
            Partition::Open(p) => Ok(f(&p.lock().unwrap_or_else(|p| p.into_inner()))),
        }
    }

    /// A copy of the partition's content.
    pub fn to_state(&self) -> Result<PartitionState, DecodeError> {
        match self {
            Partition::Packed(p) => p.unpack(),
            Partition::Open(p) => Ok(p.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        }
    }
}

/// A packed partition that does not decode: our own encoder's bug, reported as corrupt
/// data rather than a panic where a read or a flush meets it.
pub(crate) fn memtable_corrupt(e: DecodeError) -> crate::EngineError {
    crate::EngineError::Corrupt {
        path: "<memtable>".into(),
        offset: 0,
        reason: e.0,
    }
}

/// A partition as a flush sees it: the chunk to copy, or the content to encode.
pub enum PartitionView<'a> {
    Packed(&'a Packed),
    Open(&'a PartitionState),
}

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
    /// Whether new partitions are packed (a memtable that only merges in memory and is
    /// read once, as a coordinator's reconciliation does, gains nothing from it).
    pack: bool,
}

impl Default for Memtable {
    fn default() -> Memtable {
        Memtable {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            count: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            pack: true,
        }
    }
}

impl Memtable {
    fn shard(&self, token: i64) -> &Shard {
        &self.shards[shard_of(token)]
    }

    /// A memtable that keeps every partition open (see [`Memtable`]'s `pack`).
    pub fn unpacked() -> Memtable {
        Memtable {
            pack: false,
            ..Memtable::default()
        }
    }

    /// Merges `m` in and returns the bytes it added to the accounting.
    pub fn apply(&self, m: Mutation) -> u64 {
        // A copy, not the caller's slice: that usually points into a request's buffer,
        // which a memtable key would otherwise keep alive until the flush.
        let pk = PartitionKey {
            token: m.token,
            key: Bytes::copy_from_slice(&m.key),
        };
        // One search under the write lock: most writes of a large table create a
        // partition, so a read-locked lookup first would search twice.
        let mut shard = self
            .shard(m.token)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let size = match shard.entry(pk) {
            btree_map::Entry::Vacant(v) => {
                self.count.fetch_add(1, Ordering::Relaxed);
                let table = m.table;
                let mut st = PartitionState::default();
                st.apply(m);
                let packed = if self.pack && !st.is_empty() {
                    Packed::pack(table, v.key(), &st)
                } else {
                    None
                };
                match packed {
                    Some(p) => {
                        let size = PACKED_OVERHEAD + (v.key().key.len() + p.chunk.len()) as u64;
                        v.insert(Partition::Packed(p));
                        size
                    }
                    None => {
                        let size = state_size(&v.key().key, &st);
                        v.insert(Partition::Open(Arc::new(Mutex::new(st))));
                        size
                    }
                }
            }
            btree_map::Entry::Occupied(mut o) => {
                let size = mutation_size(&m);
                match o.get_mut() {
                    Partition::Open(p) => {
                        p.lock().unwrap_or_else(|p| p.into_inner()).apply(m);
                        size
                    }
                    Partition::Packed(p) => {
                        // The chunk came from our own encoder and never left memory.
                        let mut st = p
                            .unpack()
                            .expect("a memtable's own packed partition decodes");
                        let opened = state_size(&o.key().key, &st);
                        st.apply(m);
                        *o.get_mut() = Partition::Open(Arc::new(Mutex::new(st)));
                        size + opened
                    }
                }
            }
        };
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
        mut f: impl FnMut(&PartitionKey, PartitionView<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            for (k, p) in shard.iter() {
                match p {
                    Partition::Packed(p) => f(k, PartitionView::Packed(p))?,
                    Partition::Open(p) => f(
                        k,
                        PartitionView::Open(&p.lock().unwrap_or_else(|p| p.into_inner())),
                    )?,
                }
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

    fn deletion() -> impl Strategy<Value = DeletionTime> {
        (1..20i64, 0..5i32).prop_map(|(t, l)| DeletionTime {
            marked_for_delete_at: t,
            local_deletion_time: 1000 + l,
        })
    }

    fn ttl() -> impl Strategy<Value = Option<Ttl>> {
        prop::option::weighted(
            0.3,
            (1..100u32).prop_map(|t| Ttl {
                ttl: t,
                local_expiration_time: 1000 + t as i32,
            }),
        )
    }

    fn cell() -> impl Strategy<Value = Cell> {
        (
            0..4u32,
            prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..3)),
            1..20i64,
            prop_oneof![
                4 => (prop::collection::vec(any::<u8>(), 0..40), ttl())
                    .prop_map(|(v, ttl)| CellValue::Live { value: Bytes::from(v), ttl }),
                1 => (1000..1005i32).prop_map(|l| CellValue::Tombstone { local_deletion_time: l }),
            ],
        )
            .prop_map(|(column, path, timestamp, value)| Cell {
                column,
                path: path.map(Bytes::from),
                timestamp,
                value,
            })
    }

    fn row(clustering: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Row> {
        (
            clustering,
            prop::option::weighted(0.5, (1..20i64, ttl())),
            prop::option::weighted(0.1, deletion()),
            prop::collection::vec((0..4u32, deletion()), 0..2),
            prop::collection::vec(cell(), 0..6),
        )
            .prop_map(|(ck, live, deletion, complex_deletions, cells)| Row {
                clustering: Bytes::from(ck),
                liveness: live.map(|(timestamp, ttl)| LivenessInfo { timestamp, ttl }),
                deletion,
                complex_deletions,
                cells,
            })
    }

    fn bound() -> impl Strategy<Value = ClusteringBound> {
        (prop::collection::vec(0..4u8, 0..2), any::<bool>()).prop_map(|(p, inclusive)| {
            ClusteringBound {
                prefix: Bytes::from(p),
                inclusive,
            }
        })
    }

    /// Mutations of every shape to a few partitions; rows by the dozen sometimes, so that
    /// some partitions are too large to pack.
    fn any_mutation() -> impl Strategy<Value = Mutation> {
        (
            0..6u8,
            prop::option::weighted(0.1, deletion()),
            prop::collection::vec(
                (bound(), bound(), deletion()).prop_map(|(start, end, deletion)| RangeTombstone {
                    range: ClusteringRange { start, end },
                    deletion,
                }),
                0..2,
            ),
            prop::option::weighted(0.2, row(Just(vec![]))),
            prop::collection::vec(row(prop::collection::vec(0..4u8, 1..3)), 0..4),
            prop::option::weighted(0.05, 10..40usize),
        )
            .prop_map(
                |(k, partition_deletion, range_tombstones, static_row, mut rows, wide)| {
                    if let Some(n) = wide {
                        rows = (0..n as u16)
                            .map(|i| Row {
                                clustering: Bytes::from(i.to_be_bytes().to_vec()),
                                cells: vec![Cell {
                                    column: 0,
                                    path: None,
                                    timestamp: 5,
                                    value: CellValue::Live {
                                        value: Bytes::from(vec![1; 60]),
                                        ttl: None,
                                    },
                                }],
                                ..Row::default()
                            })
                            .collect();
                    }
                    rows.sort_by(|a, b| a.clustering.cmp(&b.clustering));
                    rows.dedup_by(|a, b| a.clustering == b.clustering);
                    Mutation {
                        table: TableId([3; 16]),
                        token: (k / 2) as i64 * 1000,
                        key: Bytes::from(vec![k]),
                        partition_deletion,
                        range_tombstones,
                        static_row,
                        rows,
                    }
                },
            )
    }

    fn contents(mt: &Memtable) -> Vec<(PartitionKey, PartitionState)> {
        mt.range_from(Bound::Unbounded)
            .map(|(k, p)| (k, p.to_state().unwrap()))
            .collect()
    }

    proptest! {
        /// A packing memtable holds what one that never packs holds, whatever the order of
        /// first writes and rewrites; and flushing either gives the same SSTable content
        /// and statistics (the packed chunks' bounds are what encoding rows counts).
        #[test]
        fn packed_partitions_read_and_flush_as_open_ones(
            muts in prop::collection::vec(any_mutation(), 1..24),
        ) {
            let packed = Memtable::default();
            let open = Memtable::unpacked();
            for m in &muts {
                packed.apply(m.clone());
                open.apply(m.clone());
            }
            prop_assert_eq!(contents(&packed), contents(&open));
            for (k, _) in contents(&open) {
                let a = packed.get(&k).unwrap().to_state().unwrap();
                let b = open.get(&k).unwrap().to_state().unwrap();
                prop_assert_eq!(a, b);
            }
            let dir = tempfile::tempdir().unwrap();
            let flush = |mt: &Memtable, generation| {
                let mut w = crate::sstable::Writer::create(
                    dir.path(), TableId([3; 16]), generation, Default::default(), 8, 0.01, None,
                )
                .unwrap()
                .with_block_target(256);
                w.add_memtable(mt).unwrap();
                w.finish(0, Vec::new()).unwrap()
            };
            match (flush(&packed, 1), flush(&open, 2)) {
                (Some(a), Some(b)) => {
                    let scan = |t: &crate::sstable::SsTable| -> Vec<_> {
                        t.scan(None).map(|r| r.unwrap()).collect()
                    };
                    prop_assert_eq!(scan(&a), scan(&b));
                    let mut sa = a.stats.clone();
                    sa.uncompressed_bytes = b.stats.uncompressed_bytes;
                    prop_assert_eq!(&sa, &b.stats);
                }
                (None, None) => {}
                (a, b) => prop_assert!(false, "one flush wrote nothing: {:?} {:?}", a.is_some(), b.is_some()),
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

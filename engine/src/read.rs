//! The read path: walks partitions in ring order, applies deletions, expiry, slices and
//! limits, and renders either live data or the shadow-free raw state.

use std::borrow::Cow;
use std::ops::Bound;

use bytes::Bytes;

use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::memtable::{Memtable, PartitionKey, PartitionState, memtable_corrupt};
use crate::model::*;
use crate::reconcile::*;
use crate::rowmap::RowMap;
use crate::sstable::{PartitionSlice, SsTable, end_bound_upper, past_slice};

type RowIter<'s> = Box<dyn Iterator<Item = Result<Cow<'s, Row>>> + 's>;

/// The rows of one partition, walkable slice by slice without holding them all.
trait RowSource {
    /// Rows inside `slice` in walk order. `after` (start_after_row) is a seek hint: rows
    /// at or before it may still be yielded.
    fn rows<'s>(
        &'s self,
        slice: &'s ClusteringRange,
        reversed: bool,
        after: Option<&'s [u8]>,
    ) -> RowIter<'s>;
}

impl RowSource for PartitionState {
    fn rows<'s>(
        &'s self,
        slice: &'s ClusteringRange,
        reversed: bool,
        _after: Option<&'s [u8]>,
    ) -> RowIter<'s> {
        Box::new(slice_iter(&self.rows, slice, reversed).map(|r| Ok(Cow::Borrowed(r))))
    }
}

/// A partition merged from in-memory state and SSTable partitions, streamed: each SSTable
/// contributes one decoded block at a time.
struct MergedRows<'a> {
    memory: Option<PartitionState>,
    sstables: Vec<PartitionSlice<'a>>,
}

impl RowSource for MergedRows<'_> {
    fn rows<'s>(
        &'s self,
        slice: &'s ClusteringRange,
        reversed: bool,
        after: Option<&'s [u8]>,
    ) -> RowIter<'s> {
        let mut heads: Vec<std::iter::Peekable<RowIter<'s>>> = Vec::new();
        if let Some(m) = &self.memory {
            heads.push(m.rows(slice, reversed, after).peekable());
        }
        // Seek bounds in byte order, from the slice and the paging position.
        let mut lower: Option<Vec<u8>> =
            (!slice.start.prefix.is_empty()).then(|| slice.start.prefix.to_vec());
        let mut upper: Option<Vec<u8>> = end_bound_upper(&slice.end);
        if let Some(a) = after {
            if reversed {
                upper = Some(upper.map_or(a.to_vec(), |u| u.min(a.to_vec())));
            } else {
                lower = Some(lower.map_or(a.to_vec(), |l| l.max(a.to_vec())));
            }
        }
        for p in &self.sstables {
            let it = p
                .rows(lower.as_deref(), upper.as_deref(), reversed)
                .take_while(move |r| {
                    r.as_ref()
                        .map_or(true, |r| !past_slice(slice, &r.clustering, reversed))
                })
                .filter(move |r| {
                    r.as_ref()
                        .map_or(true, |r| range_admits(slice, &r.clustering))
                })
                .map(|r| r.map(Cow::Owned));
            let it: RowIter<'s> = Box::new(it);
            heads.push(it.peekable());
        }
        if heads.len() == 1 {
            // One source (the usual state of a partition on disk after compaction): nothing
            // to merge, so skip the per-row peek and key comparison.
            let only: RowIter<'s> = Box::new(heads.pop().expect("one head"));
            return only;
        }
        Box::new(MergeIter { heads, reversed })
    }
}

/// K-way merge of row streams sorted in walk order; equal keys are reconciled.
struct MergeIter<'s> {
    heads: Vec<std::iter::Peekable<RowIter<'s>>>,
    reversed: bool,
}

impl<'s> Iterator for MergeIter<'s> {
    type Item = Result<Cow<'s, Row>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<Bytes> = None;
        for h in self.heads.iter_mut() {
            match h.peek() {
                Some(Ok(r)) => {
                    let better = best.as_ref().is_none_or(|b| {
                        if self.reversed {
                            r.clustering[..] > b[..]
                        } else {
                            r.clustering[..] < b[..]
                        }
                    });
                    if better {
                        best = Some(r.clustering.clone());
                    }
                }
                Some(Err(_)) => return h.next(),
                None => {}
            }
        }
        let key = best?;
        let mut out: Option<Cow<'s, Row>> = None;
        for h in self.heads.iter_mut() {
            if matches!(h.peek(), Some(Ok(r)) if r.clustering == key)
                && let Some(Ok(r)) = h.next()
            {
                out = Some(match out {
                    None => r,
                    Some(mut acc) => {
                        merge_row(acc.to_mut(), r.into_owned());
                        acc
                    }
                });
            }
        }
        out.map(Ok)
    }
}

/// What a read returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadResult {
    pub partitions: Vec<PartitionData>,
    /// Tombstones (deleted or expired cells, row deletions, range and partition deletions)
    /// met while reading.
    pub tombstones_scanned: usize,
    pub warnings: Vec<String>,
}

/// Tombstone thresholds of a read.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub warn: usize,
    pub fail: usize,
}

/// Whether a partition lies after a range's start.
fn after_start(pk: &PartitionKey, start: &Option<PartitionPosition>) -> bool {
    let Some(p) = start else { return true };
    match &p.key {
        Some(k) => {
            let b = (p.token, &k[..]);
            let x = (pk.token, &pk.key[..]);
            if p.inclusive { x >= b } else { x > b }
        }
        None => {
            if p.inclusive {
                pk.token >= p.token
            } else {
                pk.token > p.token
            }
        }
    }
}

/// Whether a partition lies before a range's end.
fn before_end(pk: &PartitionKey, end: &Option<PartitionPosition>) -> bool {
    let Some(p) = end else { return true };
    match &p.key {
        Some(k) => {
            let b = (p.token, &k[..]);
            let x = (pk.token, &pk.key[..]);
            if p.inclusive { x <= b } else { x < b }
        }
        None => {
            if p.inclusive {
                pk.token <= p.token
            } else {
                pk.token < p.token
            }
        }
    }
}

/// Runs `cmd` against one memtable.
pub fn read_memtable(mt: &Memtable, cmd: &ReadCommand, th: Thresholds) -> Result<ReadResult> {
    let mut st = ReadState::new(cmd, th);
    match &cmd.partitions {
        PartitionRange::Single { token, key } => {
            let pk = PartitionKey {
                token: *token,
                key: key.clone(),
            };
            if let Some(p) = mt.get(&pk) {
                p.read(|s| st.partition(&pk, s))
                    .map_err(memtable_corrupt)??;
            }
        }
        PartitionRange::Range { start, end } => {
            // Seek to the smallest key of the start token: the filter below handles
            // exclusivity, so the seek only has to be at or before the first match.
            let lower = match start {
                None => Bound::Unbounded,
                Some(p) => Bound::Included(PartitionKey {
                    token: p.token,
                    key: Bytes::new(),
                }),
            };
            for (pk, p) in mt.range_from(lower) {
                if !before_end(&pk, end) {
                    break;
                }
                if !after_start(&pk, start) {
                    continue;
                }
                p.read(|s| st.partition(&pk, s))
                    .map_err(memtable_corrupt)??;
                if st.done() {
                    break;
                }
            }
        }
    }
    Ok(st.finish())
}

type Source<'a> =
    std::iter::Peekable<Box<dyn Iterator<Item = Result<(PartitionKey, PartitionState)>> + 'a>>;

/// Runs `cmd` against several data sources (memtables and SSTables), merging each
/// partition's versions before filtering.
pub fn read_sources(
    memtables: &[Arc<Memtable>],
    sstables: &[Arc<SsTable>],
    cmd: &ReadCommand,
    th: Thresholds,
) -> Result<ReadResult> {
    if let ([mt], []) = (memtables, sstables) {
        // The common case needs no copies: filter straight from the memtable.
        return read_memtable(mt, cmd, th);
    }
    let mut st = ReadState::new(cmd, th);
    match &cmd.partitions {
        PartitionRange::Single { token, key } => {
            let pk = PartitionKey {
                token: *token,
                key: key.clone(),
            };
            let mut memory: Option<PartitionState> = None;
            for mt in memtables {
                if let Some(p) = mt.get(&pk) {
                    let st = p.to_state().map_err(memtable_corrupt)?;
                    match &mut memory {
                        Some(m) => m.merge(st),
                        None => memory = Some(st),
                    }
                }
            }
            let mut slices = Vec::new();
            for t in sstables {
                if let Some(p) = t.partition_header(&pk)? {
                    slices.push(p);
                }
            }
            if memory.is_none() && slices.is_empty() {
                return Ok(st.finish());
            }
            // Partition-level data (deletion, range tombstones, static row) is small and
            // merged up front; rows stream.
            let mut header = PartitionState::default();
            if let Some(m) = &memory {
                header.merge(m.clone_header());
            }
            for p in &slices {
                header.merge(p.header.clone());
            }
            let rows = MergedRows {
                memory,
                sstables: slices,
            };
            st.partition_from(&pk, &header, &rows)?;
        }
        PartitionRange::Range { start, end } => {
            let from = start.as_ref().map(|p| PartitionKey {
                token: p.token,
                key: Bytes::new(),
            });
            let mut sources: Vec<Source<'_>> = Vec::new();
            for mt in memtables {
                let lower = match &from {
                    Some(k) => Bound::Included(k.clone()),
                    None => Bound::Unbounded,
                };
                let it = mt
                    .range_from(lower)
                    .map(|(pk, p)| Ok((pk, p.to_state().map_err(memtable_corrupt)?)));
                let it: Box<dyn Iterator<Item = _>> = Box::new(it);
                sources.push(it.peekable());
            }
            for t in sstables {
                // Key-range skipping: SSTables wholly outside the range are not opened.
                if from.as_ref().is_some_and(|f| t.stats.last_key < *f)
                    || !before_end(&t.stats.first_key, end)
                {
                    continue;
                }
                let it: Box<dyn Iterator<Item = _>> = Box::new(t.scan(from.clone()));
                sources.push(it.peekable());
            }
            loop {
                // The smallest key among the sources' heads; errors surface at once.
                let mut min: Option<PartitionKey> = None;
                for s in sources.iter_mut() {
                    match s.peek() {
                        Some(Ok((k, _))) if min.as_ref().is_none_or(|m| k < m) => {
                            min = Some(k.clone());
                        }
                        Some(Err(_)) => {
                            if let Some(Err(e)) = s.next() {
                                return Err(e);
                            }
                        }
                        _ => {}
                    }
                }
                let Some(pk) = min else { break };
                if !before_end(&pk, end) {
                    break;
                }
                let mut merged: Option<PartitionState> = None;
                for s in sources.iter_mut() {
                    if matches!(s.peek(), Some(Ok((k, _))) if *k == pk)
                        && let Some(Ok((_, state))) = s.next()
                    {
                        match &mut merged {
                            Some(m) => m.merge(state),
                            None => merged = Some(state),
                        }
                    }
                }
                if !after_start(&pk, start) {
                    continue;
                }
                if let Some(m) = merged {
                    st.partition(&pk, &m)?;
                }
                if st.done() {
                    break;
                }
            }
        }
    }
    Ok(st.finish())
}

struct ReadState<'a> {
    cmd: &'a ReadCommand,
    th: Thresholds,
    first: bool,
    rows_counted: usize,
    live_rows_returned: usize,
    partitions_counted: usize,
    tombstones: usize,
    out: Vec<PartitionData>,
    slices: Vec<ClusteringRange>,
}

impl<'a> ReadState<'a> {
    fn new(cmd: &'a ReadCommand, th: Thresholds) -> Self {
        let mut slices = if cmd.slices.is_empty() {
            vec![ClusteringRange::all()]
        } else {
            cmd.slices.clone()
        };
        if cmd.reversed {
            slices.reverse();
        }
        ReadState {
            cmd,
            th,
            first: true,
            rows_counted: 0,
            live_rows_returned: 0,
            partitions_counted: 0,
            tombstones: 0,
            out: Vec::new(),
            slices,
        }
    }

    fn done(&self) -> bool {
        self.rows_counted >= self.cmd.row_limit
            || self.partitions_counted >= self.cmd.partition_limit
    }

    fn check_failure(&self) -> Result<()> {
        if self.tombstones > self.th.fail {
            return Err(EngineError::TombstoneOverwhelming {
                scanned: self.tombstones,
            });
        }
        Ok(())
    }

    fn partition(&mut self, pk: &PartitionKey, st: &PartitionState) -> Result<()> {
        self.partition_from(pk, st, st)
    }

    /// Filters one partition: `st` gives the partition-level data (its rows are ignored),
    /// `source` the rows.
    fn partition_from(
        &mut self,
        pk: &PartitionKey,
        st: &PartitionState,
        source: &dyn RowSource,
    ) -> Result<()> {
        let first = std::mem::replace(&mut self.first, false);
        if self.done() {
            return Ok(());
        }
        let cmd = self.cmd;
        let now = cmd.now;
        let raw = cmd.include_tombstones;
        let pdel = st.deletion;
        if pdel.is_some() {
            self.tombstones += 1;
        }
        // Range tombstones shadowed by the partition deletion are irrelevant.
        let rts: Vec<&RangeTombstone> = st
            .range_tombstones
            .iter()
            .filter(|rt| !shadowed(rt.deletion.marked_for_delete_at, pdel))
            .collect();
        self.tombstones += rts.len();

        let skip_static = first && cmd.start_after_row.is_some();
        let mut static_row = None;
        let mut static_live = false;
        if !skip_static && let Some(s) = &st.static_row {
            let (r, live) = render_row(s, pdel, now, raw, &mut self.tombstones);
            static_live = live;
            static_row = r;
        }

        let limit = cmd
            .per_partition_limit
            .min(cmd.row_limit.saturating_sub(self.rows_counted));
        let mut rows = Vec::new();
        let mut live_rows = 0usize;
        let sar = if first {
            cmd.start_after_row.as_ref()
        } else {
            None
        };
        'slices: for slice in &self.slices {
            for row in source.rows(slice, cmd.reversed, sar.map(|b| &b[..])) {
                let row = row?;
                let key = &row.clustering;
                if let Some(sar) = sar {
                    let passed = if cmd.reversed {
                        key[..] >= sar[..]
                    } else {
                        key[..] <= sar[..]
                    };
                    if passed {
                        continue;
                    }
                }
                if live_rows >= limit {
                    break 'slices;
                }
                let mut outer = pdel;
                for rt in &rts {
                    if range_admits(&rt.range, key) {
                        outer = max_deletion(outer, Some(rt.deletion));
                    }
                }
                let (r, live) = match row {
                    Cow::Owned(row) if is_plain(&row, outer, now) => {
                        // Nothing to filter: the decoded row is the answer, moved not copied.
                        let live = row.liveness.is_some() || !row.cells.is_empty();
                        (live.then_some(row), live)
                    }
                    row => render_row(&row, outer, now, raw, &mut self.tombstones),
                };
                if live {
                    live_rows += 1;
                }
                if let Some(r) = r {
                    rows.push(r);
                }
                self.check_failure()?;
            }
        }
        self.check_failure()?;

        let has_live = live_rows > 0 || static_live;
        if !has_live {
            let anything = raw
                && (pdel.is_some() || !rts.is_empty() || static_row.is_some() || !rows.is_empty());
            if !anything {
                return Ok(());
            }
        } else {
            self.partitions_counted += 1;
            self.rows_counted += live_rows.max(1);
            self.live_rows_returned += live_rows;
        }
        self.out.push(PartitionData {
            token: pk.token,
            key: pk.key.clone(),
            partition_deletion: if raw { pdel } else { None },
            range_tombstones: if raw {
                rts.into_iter().cloned().collect()
            } else {
                Vec::new()
            },
            static_row,
            rows,
        });
        Ok(())
    }

    fn finish(self) -> ReadResult {
        let mut warnings = Vec::new();
        if self.tombstones > self.th.warn {
            warnings.push(format!(
                "Read {} live rows and {} tombstone cells for query {} (see tombstone_warn_threshold)",
                self.live_rows_returned,
                self.tombstones,
                describe(self.cmd)
            ));
        }
        ReadResult {
            partitions: self.out,
            tombstones_scanned: self.tombstones,
            warnings,
        }
    }
}

fn describe(cmd: &ReadCommand) -> String {
    let table: String = cmd.table.0.iter().map(|b| format!("{b:02x}")).collect();
    let parts = match &cmd.partitions {
        PartitionRange::Single { token, .. } => format!("partition token {token}"),
        PartitionRange::Range { start, end } => format!(
            "token range {:?}..{:?}",
            start.as_ref().map(|p| p.token),
            end.as_ref().map(|p| p.token)
        ),
    };
    format!("on table {table} {parts} LIMIT {}", cmd.row_limit)
}

/// Rows of `rows` inside `r`, in walk order.
fn slice_iter<'m>(
    rows: &'m RowMap,
    r: &'m ClusteringRange,
    reversed: bool,
) -> Box<dyn Iterator<Item = &'m Row> + 'm> {
    let lower: Bound<&[u8]> = if r.start.prefix.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(&r.start.prefix[..])
    };
    let succ;
    let upper: Bound<&[u8]> = if r.end.prefix.is_empty() {
        Bound::Unbounded
    } else if r.end.inclusive {
        succ = prefix_successor(&r.end.prefix);
        match &succ {
            Some(s) => Bound::Excluded(&s[..]),
            None => Bound::Unbounded,
        }
    } else {
        Bound::Excluded(&r.end.prefix[..])
    };
    let it = rows
        .range(lower, upper)
        .filter(move |row| range_admits(r, &row.clustering));
    if reversed {
        Box::new(it.rev())
    } else {
        Box::new(it)
    }
}

/// Renders a row under the deletion `outer` (partition and range deletions covering it).
/// Returns the row to emit (if any) and whether it is live.
/// A row `render_row` would return unchanged: no deletion above or in it, every cell and
/// the row marker live at `now`.
fn is_plain(row: &Row, outer: Option<DeletionTime>, now: LocalTime) -> bool {
    outer.is_none()
        && row.deletion.is_none()
        && row.complex_deletions.is_empty()
        && row.liveness.is_none_or(|l| ttl_live(&l.ttl, now))
        && row.cells.iter().all(|c| cell_live(c, now))
}

fn render_row(
    row: &Row,
    outer: Option<DeletionTime>,
    now: LocalTime,
    raw: bool,
    tombstones: &mut usize,
) -> (Option<Row>, bool) {
    let row_del = row
        .deletion
        .filter(|d| outer.is_none_or(|o| deletion_supersedes(d, &o)));
    if row_del.is_some() {
        *tombstones += 1;
    }
    let eff = max_deletion(outer, row.deletion);
    let liveness = row.liveness.filter(|l| !shadowed(l.timestamp, eff));
    let marker_live = liveness.is_some_and(|l| ttl_live(&l.ttl, now));
    let mut cells = Vec::new();
    let mut live_cells = 0;
    for c in &row.cells {
        let cdel = match row
            .complex_deletions
            .binary_search_by_key(&c.column, |(col, _)| *col)
        {
            Ok(i) => max_deletion(eff, Some(row.complex_deletions[i].1)),
            Err(_) => eff,
        };
        if shadowed(c.timestamp, cdel) {
            continue;
        }
        if cell_live(c, now) {
            live_cells += 1;
            cells.push(c.clone());
        } else {
            *tombstones += 1;
            if raw {
                cells.push(c.clone());
            }
        }
    }
    let live = marker_live || live_cells > 0;
    if raw {
        let complex_deletions: Vec<_> = row
            .complex_deletions
            .iter()
            .filter(|(_, d)| eff.is_none_or(|e| d.marked_for_delete_at > e.marked_for_delete_at))
            .copied()
            .collect();
        if liveness.is_none()
            && row_del.is_none()
            && complex_deletions.is_empty()
            && cells.is_empty()
        {
            return (None, false);
        }
        let out = Row {
            clustering: row.clustering.clone(),
            liveness,
            deletion: row_del,
            complex_deletions,
            cells,
        };
        return (Some(out), live);
    }
    if !live {
        return (None, false);
    }
    let out = Row {
        clustering: row.clustering.clone(),
        liveness: if marker_live { liveness } else { None },
        deletion: None,
        complex_deletions: Vec::new(),
        cells,
    };
    (Some(out), true)
}

/// The mutation that writes `p` back as it is: how a replica's raw read result becomes a
/// read-repair write, a hint-free merge input, or a wire payload.
pub fn partition_to_mutation(table: TableId, p: PartitionData) -> Mutation {
    let mut rows = p.rows;
    // Results of reversed reads list rows in reverse; mutations keep storage order.
    if rows.windows(2).any(|w| w[0].clustering > w[1].clustering) {
        rows.sort_by(|a, b| a.clustering.cmp(&b.clustering));
    }
    Mutation {
        table,
        token: p.token,
        key: p.key,
        partition_deletion: p.partition_deletion,
        range_tombstones: p.range_tombstones,
        static_row: p.static_row,
        rows,
    }
}

/// Merges several replicas' answers to `cmd` and renders the merge as the engine would have
/// answered `cmd` had it held all of them: reconciliation, deletions, expiry, slices and
/// limits are the engine's own code (an in-memory memtable is built from the inputs), so a
/// coordinator can never disagree with a replica about what a merge means.
///
/// The inputs must have been read with `include_tombstones` (otherwise a deletion one
/// replica knows of cannot shadow data another still has). Counter cells would be summed,
/// so callers must not merge counter tables' results across replicas.
pub fn reconcile_results(
    cmd: &ReadCommand,
    results: impl IntoIterator<Item = ReadResult>,
) -> ReadResult {
    let mt = Memtable::unpacked();
    let mut tombstones_scanned = 0;
    let mut warnings = Vec::new();
    for r in results {
        tombstones_scanned = tombstones_scanned.max(r.tombstones_scanned);
        warnings.extend(r.warnings);
        for p in r.partitions {
            mt.apply(partition_to_mutation(cmd.table, p));
        }
    }
    let th = Thresholds {
        warn: usize::MAX,
        fail: usize::MAX,
    };
    // Without thresholds the only error source (tombstone failure) cannot trigger.
    let mut out = read_memtable(&mt, cmd, th).unwrap_or_default();
    out.tombstones_scanned = tombstones_scanned;
    warnings.dedup();
    out.warnings = warnings;
    out
}

/// Live rows `r` holds as the engine counts them for `row_limit` (a partition with only a
/// live static row counts as one), and the number of partitions with live data.
pub fn live_counts(r: &ReadResult, now: LocalTime) -> (usize, usize) {
    let mut rows = 0;
    let mut parts = 0;
    for p in &r.partitions {
        let live = p
            .rows
            .iter()
            .filter(|row| row_is_live(row, p.partition_deletion, now))
            .count();
        let static_live = p
            .static_row
            .as_ref()
            .is_some_and(|s| row_is_live(s, p.partition_deletion, now));
        if live > 0 || static_live {
            parts += 1;
            rows += live.max(1);
        }
    }
    (rows, parts)
}

fn row_is_live(row: &Row, pdel: Option<DeletionTime>, now: LocalTime) -> bool {
    let del = max_deletion(pdel, row.deletion);
    row.liveness
        .is_some_and(|l| !shadowed(l.timestamp, del) && ttl_live(&l.ttl, now))
        || row
            .cells
            .iter()
            .any(|c| !shadowed(c.timestamp, del) && cell_live(c, now))
}

#[cfg(test)]
mod reconcile_tests {
    use super::*;

    fn cmd(raw: bool, row_limit: usize) -> ReadCommand {
        ReadCommand {
            table: TableId([1; 16]),
            partitions: PartitionRange::Single {
                token: 5,
                key: Bytes::from_static(b"k"),
            },
            slices: Vec::new(),
            reversed: false,
            start_after_row: None,
            row_limit,
            per_partition_limit: usize::MAX,
            partition_limit: usize::MAX,
            include_tombstones: raw,
            now: 100,
        }
    }

    fn row(ck: &'static [u8], ts: i64, v: &'static [u8]) -> Row {
        Row {
            clustering: Bytes::from_static(ck),
            liveness: Some(LivenessInfo {
                timestamp: ts,
                ttl: None,
            }),
            deletion: None,
            complex_deletions: Vec::new(),
            cells: vec![Cell {
                column: 1,
                path: None,
                timestamp: ts,
                value: CellValue::Live {
                    value: Bytes::from_static(v),
                    ttl: None,
                },
            }],
        }
    }

    fn result(rows: Vec<Row>, pdel: Option<DeletionTime>) -> ReadResult {
        ReadResult {
            partitions: vec![PartitionData {
                token: 5,
                key: Bytes::from_static(b"k"),
                partition_deletion: pdel,
                range_tombstones: Vec::new(),
                static_row: None,
                rows,
            }],
            tombstones_scanned: 0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn newest_value_and_deletions_win_and_limits_apply() {
        let a = result(vec![row(b"a", 10, b"old"), row(b"b", 10, b"x")], None);
        let b = result(vec![row(b"a", 20, b"new")], None);
        let merged = reconcile_results(&cmd(false, 10), [a.clone(), b.clone()]);
        let rows = &merged.partitions[0].rows;
        assert_eq!(rows.len(), 2);
        assert!(
            matches!(&rows[0].cells[0].value, CellValue::Live { value, .. } if &value[..] == b"new")
        );
        assert_eq!(live_counts(&merged, 100), (2, 1));
        // The limit is the command's, applied after the merge.
        let one = reconcile_results(&cmd(false, 1), [a.clone(), b.clone()]);
        assert_eq!(one.partitions[0].rows.len(), 1);
        // A partition deletion on one replica shadows older data of the other.
        let del = result(
            Vec::new(),
            Some(DeletionTime {
                marked_for_delete_at: 15,
                local_deletion_time: 1,
            }),
        );
        let m = reconcile_results(&cmd(false, 10), [a.clone(), del.clone()]);
        assert!(m.partitions.is_empty());
        let raw = reconcile_results(&cmd(true, 10), [a, b, del]);
        assert!(raw.partitions[0].partition_deletion.is_some());
        assert_eq!(
            raw.partitions[0].rows.len(),
            1,
            "only the row newer than the deletion"
        );
    }
}

//! Compaction: which SSTables to merge (pure picking functions, size-tiered and leveled) and
//! how a merged partition sheds what no read can see any more (shadowed data, and
//! tombstones past gc_grace_seconds that cannot shadow anything outside the compaction).
//! The I/O side (writing outputs, the transaction record, swapping the live set) is in
//! `lib.rs`; the protocol is described in `docs/formats/sstable.md`.

use crate::memtable::{PartitionKey, PartitionState};
use crate::model::*;
use crate::reconcile::{max_deletion, range_admits, shadowed};

const MIB: u64 = 1 << 20;

/// A table's compaction strategy, from its `compaction` option map.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    SizeTiered {
        min_threshold: usize,
        max_threshold: usize,
        bucket_low: f64,
        bucket_high: f64,
        /// SSTables smaller than this all share the smallest bucket.
        min_sstable_size: u64,
    },
    Leveled {
        sstable_size: u64,
        fanout: u64,
    },
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::SizeTiered {
            min_threshold: 4,
            max_threshold: 32,
            bucket_low: 0.5,
            bucket_high: 1.5,
            min_sstable_size: 50 * MIB,
        }
    }
}

impl Strategy {
    /// Reads CQL's `compaction` map. Unknown classes and unparsable values fall back to the
    /// defaults: the schema layer validates options, the engine only needs something sane.
    pub fn from_options(options: &[(String, String)]) -> Strategy {
        let get = |k: &str| {
            options
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<f64>().ok());
        let class = get("class").unwrap_or("");
        if class.ends_with("LeveledCompactionStrategy") {
            Strategy::Leveled {
                // Fractions of a MiB are accepted (tests); 64 KiB keeps outputs sane.
                sstable_size: ((num("sstable_size_in_mb").unwrap_or(160.0) * MIB as f64) as u64)
                    .max(64 << 10),
                fanout: num("fanout_size").unwrap_or(10.0).max(2.0) as u64,
            }
        } else {
            let Strategy::SizeTiered {
                min_threshold,
                max_threshold,
                bucket_low,
                bucket_high,
                min_sstable_size,
            } = Strategy::default()
            else {
                unreachable!("the default is size-tiered")
            };
            let min_t = num("min_threshold").map_or(min_threshold, |v| v.max(2.0) as usize);
            Strategy::SizeTiered {
                min_threshold: min_t,
                max_threshold: num("max_threshold")
                    .map_or(max_threshold, |v| v as usize)
                    .max(min_t),
                bucket_low: num("bucket_low").unwrap_or(bucket_low),
                bucket_high: num("bucket_high").unwrap_or(bucket_high),
                min_sstable_size: num("min_sstable_size")
                    .map_or(min_sstable_size, |v| v.max(0.0) as u64),
            }
        }
    }
}

/// What picking needs to know of an SSTable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SstableSummary {
    pub generation: u64,
    pub size: u64,
    pub level: u32,
    pub first: PartitionKey,
    pub last: PartitionKey,
}

/// A compaction to run: merge `inputs` into SSTables of `output_level`, each at most
/// `max_output_size` bytes (`u64::MAX` = one output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionTask {
    pub inputs: Vec<u64>,
    pub output_level: u32,
    pub max_output_size: u64,
}

fn overlaps(a: &SstableSummary, first: &PartitionKey, last: &PartitionKey) -> bool {
    a.first <= *last && *first <= a.last
}

/// Picks the next compaction, if any. `sstables` excludes those already being compacted.
pub fn pick(strategy: &Strategy, sstables: &[SstableSummary]) -> Option<CompactionTask> {
    match strategy {
        Strategy::SizeTiered {
            min_threshold,
            max_threshold,
            bucket_low,
            bucket_high,
            min_sstable_size,
        } => pick_stcs(
            sstables,
            *min_threshold,
            *max_threshold,
            *bucket_low,
            *bucket_high,
            *min_sstable_size,
        ),
        Strategy::Leveled {
            sstable_size,
            fanout,
        } => pick_lcs(sstables, *sstable_size, *fanout),
    }
}

fn pick_stcs(
    sstables: &[SstableSummary],
    min_threshold: usize,
    max_threshold: usize,
    bucket_low: f64,
    bucket_high: f64,
    min_sstable_size: u64,
) -> Option<CompactionTask> {
    let mut sorted: Vec<&SstableSummary> = sstables.iter().collect();
    sorted.sort_by_key(|s| (s.size, s.generation));
    // Cassandra's bucketing: walk by size; an SSTable joins the current bucket if it is
    // within [low, high] × the bucket's average, or both are below min_sstable_size.
    let mut buckets: Vec<Vec<&SstableSummary>> = Vec::new();
    for s in sorted {
        if let Some(b) = buckets.last_mut() {
            let avg = b.iter().map(|x| x.size as f64).sum::<f64>() / b.len() as f64;
            let size = s.size as f64;
            if (size >= avg * bucket_low && size <= avg * bucket_high)
                || (s.size < min_sstable_size && avg < min_sstable_size as f64)
            {
                b.push(s);
                continue;
            }
        }
        buckets.push(vec![s]);
    }
    // The bucket with the most SSTables wins (the most read amplification removed per
    // byte); ties go to the smaller SSTables (cheaper).
    let best = buckets
        .into_iter()
        .filter(|b| b.len() >= min_threshold)
        .max_by(|a, b| {
            let sa: u64 = a.iter().take(max_threshold).map(|s| s.size).sum();
            let sb: u64 = b.iter().take(max_threshold).map(|s| s.size).sum();
            a.len()
                .min(max_threshold)
                .cmp(&b.len().min(max_threshold))
                .then(sb.cmp(&sa))
        })?;
    let mut inputs: Vec<u64> = best
        .iter()
        .take(max_threshold)
        .map(|s| s.generation)
        .collect();
    inputs.sort_unstable();
    Some(CompactionTask {
        inputs,
        output_level: 0,
        max_output_size: u64::MAX,
    })
}

/// Leveled: L0 SSTables overlap each other; from L1 on, each level is a sorted run whose
/// target size is `fanout^L × sstable_size`.
fn pick_lcs(sstables: &[SstableSummary], sstable_size: u64, fanout: u64) -> Option<CompactionTask> {
    let level = |l: u32| -> Vec<&SstableSummary> {
        let mut v: Vec<_> = sstables.iter().filter(|s| s.level == l).collect();
        v.sort_by(|a, b| (&a.first, a.generation).cmp(&(&b.first, b.generation)));
        v
    };
    let max_level = sstables.iter().map(|s| s.level).max().unwrap_or(0);
    // L0 first, as Cassandra does: overlapping L0 files are what hurts reads most.
    let l0 = level(0);
    if l0.len() >= 4 {
        let l0: Vec<_> = l0.into_iter().take(32).collect();
        let first = l0.iter().map(|s| &s.first).min().expect("non-empty");
        let last = l0.iter().map(|s| &s.last).max().expect("non-empty");
        let mut inputs: Vec<u64> = l0.iter().map(|s| s.generation).collect();
        inputs.extend(
            level(1)
                .into_iter()
                .filter(|s| overlaps(s, first, last))
                .map(|s| s.generation),
        );
        inputs.sort_unstable();
        return Some(CompactionTask {
            inputs,
            output_level: 1,
            max_output_size: sstable_size,
        });
    }
    // The most over-full level (score = size / target) above 1.0.
    let mut best: Option<(f64, u32)> = None;
    for l in 1..=max_level {
        let size: u64 = level(l).iter().map(|s| s.size).sum();
        let target = sstable_size.saturating_mul(fanout.saturating_pow(l)) as f64;
        let score = size as f64 / target;
        if score > 1.0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, l));
        }
    }
    let (_, l) = best?;
    // The oldest SSTable of the level moves down, with what it overlaps there.
    let pick = level(l).into_iter().min_by_key(|s| s.generation)?;
    let mut inputs = vec![pick.generation];
    inputs.extend(
        level(l + 1)
            .into_iter()
            .filter(|s| overlaps(s, &pick.first, &pick.last))
            .map(|s| s.generation),
    );
    inputs.sort_unstable();
    Some(CompactionTask {
        inputs,
        output_level: l + 1,
        max_output_size: sstable_size,
    })
}

/// Drops from a merged partition what no read can observe:
/// 1. data shadowed by a deletion in the same partition (always safe: the deletion stays);
/// 2. tombstones and expired data whose local deletion time is before `gc_before`, but only
///    those with a timestamp below `max_purgeable`, the oldest timestamp that data for this
///    partition outside the compaction may carry (so no such data can resurrect).
///
/// Returns the number of tombstones purged.
///
/// `max_purgeable` is asked at most once, and only when some tombstone's grace period is
/// over: it probes other SSTables' Bloom filters, a cost most partitions (no tombstones)
/// should not pay.
pub fn purge(
    st: &mut PartitionState,
    gc_before: LocalTime,
    max_purgeable: impl FnOnce() -> Timestamp,
) -> u64 {
    let bound = std::cell::OnceCell::new();
    let max_purgeable = std::cell::Cell::new(Some(max_purgeable));
    let can_purge = |ts: Timestamp, ldt: LocalTime| {
        ldt < gc_before
            && ts < *bound.get_or_init(|| max_purgeable.take().map_or(i64::MIN, |f| f()))
    };
    let mut purged = 0u64;
    let pdel = st.deletion;
    st.range_tombstones
        .retain(|rt| !shadowed(rt.deletion.marked_for_delete_at, pdel));
    if let Some(s) = &mut st.static_row {
        clean_row(s, pdel, &can_purge, &mut purged);
    }
    if st.static_row.as_ref().is_some_and(row_empty) {
        st.static_row = None;
    }
    let rts = st.range_tombstones.clone();
    st.rows.retain(|row| {
        let mut outer = pdel;
        for rt in &rts {
            if range_admits(&rt.range, &row.clustering) {
                outer = max_deletion(outer, Some(rt.deletion));
            }
        }
        clean_row(row, outer, &can_purge, &mut purged);
        !row_empty(row)
    });
    let before = st.range_tombstones.len();
    st.range_tombstones.retain(|rt| {
        !can_purge(
            rt.deletion.marked_for_delete_at,
            rt.deletion.local_deletion_time,
        )
    });
    purged += (before - st.range_tombstones.len()) as u64;
    if st
        .deletion
        .is_some_and(|d| can_purge(d.marked_for_delete_at, d.local_deletion_time))
    {
        st.deletion = None;
        purged += 1;
    }
    purged
}

fn row_empty(r: &Row) -> bool {
    r.liveness.is_none()
        && r.deletion.is_none()
        && r.complex_deletions.is_empty()
        && r.cells.is_empty()
}

fn clean_row(
    row: &mut Row,
    outer: Option<DeletionTime>,
    can_purge: &impl Fn(Timestamp, LocalTime) -> bool,
    purged: &mut u64,
) {
    // A row deletion no stronger than the outer one adds nothing.
    if row
        .deletion
        .is_some_and(|d| outer.is_some_and(|o| d.marked_for_delete_at <= o.marked_for_delete_at))
    {
        row.deletion = None;
    }
    let eff = max_deletion(outer, row.deletion);
    if row.liveness.is_some_and(|l| shadowed(l.timestamp, eff)) {
        row.liveness = None;
    }
    row.complex_deletions
        .retain(|(_, d)| !shadowed(d.marked_for_delete_at, eff));
    let cds = row.complex_deletions.clone();
    row.cells.retain(|c| {
        let cdel = match cds.binary_search_by_key(&c.column, |(col, _)| *col) {
            Ok(i) => max_deletion(eff, Some(cds[i].1)),
            Err(_) => eff,
        };
        if shadowed(c.timestamp, cdel) {
            return false;
        }
        let gone = match &c.value {
            CellValue::Tombstone {
                local_deletion_time,
            } => can_purge(c.timestamp, *local_deletion_time),
            CellValue::Live { ttl: Some(t), .. } => can_purge(c.timestamp, t.local_expiration_time),
            _ => false,
        };
        if gone {
            *purged += 1;
        }
        !gone
    });
    if let Some(l) = row.liveness
        && let Some(t) = l.ttl
        && can_purge(l.timestamp, t.local_expiration_time)
    {
        row.liveness = None;
        *purged += 1;
    }
    let before = row.complex_deletions.len();
    row.complex_deletions
        .retain(|(_, d)| !can_purge(d.marked_for_delete_at, d.local_deletion_time));
    *purged += (before - row.complex_deletions.len()) as u64;
    if row
        .deletion
        .is_some_and(|d| can_purge(d.marked_for_delete_at, d.local_deletion_time))
    {
        row.deletion = None;
        *purged += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pk(t: i64) -> PartitionKey {
        PartitionKey {
            token: t,
            key: Bytes::from(format!("k{t}")),
        }
    }

    fn s(generation: u64, size: u64, level: u32, first: i64, last: i64) -> SstableSummary {
        SstableSummary {
            generation,
            size,
            level,
            first: pk(first),
            last: pk(last),
        }
    }

    fn stcs(min: usize, max: usize) -> Strategy {
        Strategy::SizeTiered {
            min_threshold: min,
            max_threshold: max,
            bucket_low: 0.5,
            bucket_high: 1.5,
            min_sstable_size: MIB,
        }
    }

    #[test]
    fn options_parse() {
        assert_eq!(Strategy::from_options(&[]), Strategy::default());
        let o = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            Strategy::from_options(&o(&[
                (
                    "class",
                    "org.apache.cassandra.db.compaction.LeveledCompactionStrategy"
                ),
                ("sstable_size_in_mb", "2"),
            ])),
            Strategy::Leveled {
                sstable_size: 2 * MIB,
                fanout: 10
            }
        );
        match Strategy::from_options(&o(&[
            ("class", "SizeTieredCompactionStrategy"),
            ("min_threshold", "2"),
            ("max_threshold", "1"),
        ])) {
            Strategy::SizeTiered {
                min_threshold,
                max_threshold,
                ..
            } => assert_eq!((min_threshold, max_threshold), (2, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stcs_needs_min_threshold_similar_sizes() {
        let st = stcs(4, 32);
        assert_eq!(pick(&st, &[]), None);
        let three: Vec<_> = (1..=3).map(|g| s(g, 10 * MIB, 0, 0, 9)).collect();
        assert_eq!(pick(&st, &three), None);
        // Sizes far apart never share a bucket.
        let spread = vec![
            s(1, 10 * MIB, 0, 0, 1),
            s(2, 40 * MIB, 0, 0, 1),
            s(3, 160 * MIB, 0, 0, 1),
            s(4, 640 * MIB, 0, 0, 1),
        ];
        assert_eq!(pick(&st, &spread), None);
        let mut four = three.clone();
        four.push(s(4, 12 * MIB, 0, 0, 9));
        four.push(s(5, 900 * MIB, 0, 0, 9));
        let t = pick(&st, &four).unwrap();
        assert_eq!(t.inputs, vec![1, 2, 3, 4]);
        assert_eq!(t.max_output_size, u64::MAX);
    }

    #[test]
    fn stcs_small_sstables_bucket_together_and_max_threshold_caps() {
        let st = stcs(4, 5);
        // Below min_sstable_size sizes do not matter.
        let v: Vec<_> = (1..=8).map(|g| s(g, g * 1000, 0, 0, 9)).collect();
        let t = pick(&st, &v).unwrap();
        assert_eq!(t.inputs, vec![1, 2, 3, 4, 5], "the smallest five");
    }

    #[test]
    fn stcs_prefers_the_fullest_bucket() {
        let st = stcs(2, 32);
        let v = vec![
            s(1, 10 * MIB, 0, 0, 1),
            s(2, 11 * MIB, 0, 0, 1),
            s(3, 100 * MIB, 0, 0, 1),
            s(4, 101 * MIB, 0, 0, 1),
            s(5, 102 * MIB, 0, 0, 1),
        ];
        assert_eq!(pick(&st, &v).unwrap().inputs, vec![3, 4, 5]);
    }

    #[test]
    fn lcs_l0_goes_to_l1_with_overlapping_l1() {
        let st = Strategy::Leveled {
            sstable_size: MIB,
            fanout: 10,
        };
        let mut v: Vec<_> = (1..=3).map(|g| s(g, MIB, 0, 10, 20)).collect();
        v.push(s(10, MIB, 1, 0, 5));
        v.push(s(11, MIB, 1, 15, 30));
        v.push(s(12, MIB, 1, 40, 50));
        assert_eq!(pick(&st, &v), None, "three L0 files are not enough");
        v.push(s(4, MIB, 0, 12, 18));
        let t = pick(&st, &v).unwrap();
        assert_eq!(t.inputs, vec![1, 2, 3, 4, 11]);
        assert_eq!(t.output_level, 1);
        assert_eq!(t.max_output_size, MIB);
    }

    #[test]
    fn lcs_overfull_level_moves_its_oldest_file_down() {
        let st = Strategy::Leveled {
            sstable_size: MIB,
            fanout: 2,
        };
        // L1 target = 2 MiB; three files make it over-full.
        let v = vec![
            s(7, MIB, 1, 0, 9),
            s(5, MIB, 1, 10, 19),
            s(6, MIB, 1, 20, 29),
            s(8, MIB, 2, 12, 14),
            s(9, MIB, 2, 25, 27),
        ];
        let t = pick(&st, &v).unwrap();
        assert_eq!(t.inputs, vec![5, 8]);
        assert_eq!(t.output_level, 2);
        // Within target: nothing to do.
        assert_eq!(pick(&st, &v[..2]), None);
    }

    #[test]
    fn purge_respects_gc_grace_and_max_purgeable() {
        let del = |ts, ldt| DeletionTime {
            marked_for_delete_at: ts,
            local_deletion_time: ldt,
        };
        let mut st = PartitionState::default();
        st.rows.insert(Row {
            clustering: Bytes::from_static(b"a"),
            deletion: Some(del(5, 100)),
            cells: vec![Cell {
                column: 1,
                path: None,
                timestamp: 3,
                value: CellValue::Live {
                    value: Bytes::from_static(b"old"),
                    ttl: None,
                },
            }],
            ..Row::default()
        });
        let mut young = st.clone();
        assert_eq!(purge(&mut young, 100, || i64::MAX), 0, "gc grace not over");
        assert!(young.rows[&b"a"[..]].cells.is_empty(), "shadowed data goes");
        let mut blocked = st.clone();
        assert_eq!(purge(&mut blocked, 101, || 5), 0, "older data elsewhere");
        assert!(blocked.rows[&b"a"[..]].deletion.is_some());
        let mut free = st;
        assert_eq!(purge(&mut free, 101, || 6), 1);
        assert!(free.rows.is_empty());
    }
}

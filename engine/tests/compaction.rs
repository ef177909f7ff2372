//! SSTables v2 and compaction: tombstone purging without resurrection, background and
//! forced compaction under both strategies, corruption detection, bounded reads of a large
//! partition.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use shoal_engine::*;

const NOW: i32 = 1_000_000;

fn tuning(clock: &Arc<AtomicI32>, background: bool) -> EngineTuning {
    EngineTuning {
        background_compaction: background,
        compaction_interval: Duration::from_millis(50),
        clock: Clock::manual(clock.clone()),
        ..EngineTuning::default()
    }
}

fn open_with(dir: &std::path::Path, t: EngineTuning, options: TableOptions) -> Engine {
    Engine::open_with(config(dir, CommitLogSync::Batch), t, vec![(T, options)]).unwrap()
}

fn opts(gc_grace: u32, compaction: &[(&str, &str)]) -> TableOptions {
    TableOptions {
        gc_grace_seconds: gc_grace,
        compaction: compaction
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        ..TableOptions::default()
    }
}

fn deletion_at(ts: i64, ldt: i32) -> DeletionTime {
    DeletionTime {
        marked_for_delete_at: ts,
        local_deletion_time: ldt,
    }
}

#[test]
fn old_tombstone_is_kept_while_older_data_lives_outside_the_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI32::new(NOW));
    let e = open_with(dir.path(), tuning(&clock, false), opts(10, &[]));
    // SSTable 1: the old value. SSTable 2: its deletion, long past gc_grace. SSTable 3:
    // unrelated data, so that 2 and 3 can be compacted without 1.
    e.apply_sync(vec![with_rows(
        "k",
        vec![row("a", vec![live(1, 1, "old")])],
    )])
    .unwrap();
    e.flush(T).unwrap();
    let mut m = with_rows(
        "k",
        vec![Row {
            clustering: b("a"),
            deletion: Some(deletion_at(5, NOW - 1000)),
            ..Row::default()
        }],
    );
    m.rows[0].cells.clear();
    e.apply_sync(vec![m]).unwrap();
    e.flush(T).unwrap();
    e.apply_sync(vec![with_rows(
        "other",
        vec![row("x", vec![live(1, 1, "y")])],
    )])
    .unwrap();
    e.flush(T).unwrap();
    let g = e.sstable_generations(T).unwrap();
    assert_eq!(g.len(), 3);
    e.compact_generations(T, &g[1..]).unwrap();
    assert_eq!(e.stats().tombstones_purged, 0, "the tombstone must stay");
    assert!(
        keys(&e.read(&single("k")).unwrap()).is_empty(),
        "resurrected"
    );
    // With everything in one compaction the tombstone and the value go together.
    e.major_compact(T).unwrap();
    assert_eq!(e.stats().tombstones_purged, 1);
    assert!(keys(&e.read(&single("k")).unwrap()).is_empty());
    let mut raw = single("k");
    raw.include_tombstones = true;
    assert!(e.read(&raw).unwrap().partitions.is_empty(), "fully purged");
    assert_eq!(e.sstable_generations(T).unwrap().len(), 1);
    // A young tombstone is never purged.
    e.apply_sync(vec![Mutation {
        partition_deletion: Some(deletion_at(9, NOW)),
        ..mutation("other")
    }])
    .unwrap();
    e.flush(T).unwrap();
    e.major_compact(T).unwrap();
    assert_eq!(e.stats().tombstones_purged, 1);
    let mut raw = single("other");
    raw.include_tombstones = true;
    assert!(
        e.read(&raw).unwrap().partitions[0]
            .partition_deletion
            .is_some()
    );
    // A memtable holding the partition also blocks the purge.
    clock.store(NOW + 100, Ordering::SeqCst);
    e.apply_sync(vec![with_rows(
        "other",
        vec![row("z", vec![live(1, 2, "w")])],
    )])
    .unwrap();
    e.major_compact(T).unwrap();
    assert_eq!(e.stats().tombstones_purged, 1);
    e.flush(T).unwrap();
    e.major_compact(T).unwrap();
    assert_eq!(e.stats().tombstones_purged, 2);
    assert_eq!(
        keys(&e.read(&single("other")).unwrap()),
        Vec::<String>::new()
    );
}

fn fill(e: &Engine, prefix: &str, n: usize) {
    for i in 0..n {
        e.apply_sync(vec![with_rows(
            &format!("{prefix}{i}"),
            vec![row("r", vec![live(1, 1, &"v".repeat(100))])],
        )])
        .unwrap();
    }
}

/// Incompressible values, so that sizes on disk are what the test means.
fn fill_random(e: &Engine, prefix: &str, n: usize) {
    use rand::Rng;
    let mut rng = rand::rng();
    for i in 0..n {
        let v: String = (0..100).map(|_| rng.random_range('a'..='z')).collect();
        e.apply_sync(vec![with_rows(
            &format!("{prefix}{i}"),
            vec![row("r", vec![live(1, 1, &v)])],
        )])
        .unwrap();
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn background_size_tiered_compaction_and_alter_to_leveled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI32::new(NOW));
    let e = open_with(
        dir.path(),
        tuning(&clock, true),
        opts(
            864_000,
            &[
                ("class", "SizeTieredCompactionStrategy"),
                ("min_threshold", "3"),
            ],
        ),
    );
    for round in 0..3 {
        fill(&e, &format!("s{round}-"), 50);
        e.flush(T).unwrap();
    }
    wait_for("size-tiered compaction", || {
        let s = e.stats();
        s.compactions_completed >= 1 && s.sstables == 1
    });
    let s = e.stats();
    assert_eq!(s.sstables_per_table, vec![(T, 1)]);
    assert!(s.bytes_compacted > 0 && s.sstable_bytes > 0);
    assert_eq!(e.read(&all()).unwrap().partitions.len(), 150);

    // Leveled with tiny SSTables: L0 goes to L1 in several files.
    let o = opts(
        864_000,
        &[
            ("class", "LeveledCompactionStrategy"),
            ("sstable_size_in_mb", "0.0625"),
        ],
    );
    e.alter_table(T, o).unwrap();
    for round in 0..4 {
        fill_random(&e, &format!("l{round}-"), 300);
        e.flush(T).unwrap();
    }
    wait_for("leveled compaction", || {
        e.stats().compactions_completed >= 2 && e.stats().pending_compactions == 0
    });
    let s = e.stats();
    assert!(
        s.sstables >= 2,
        "outputs split by sstable_size_in_mb: {s:?}"
    );
    assert_eq!(e.read(&all()).unwrap().partitions.len(), 1350);
    e.shutdown().unwrap();
    drop(e);
    let e = open_with(dir.path(), tuning(&clock, false), TableOptions::default());
    assert_eq!(e.read(&all()).unwrap().partitions.len(), 1350);
}

#[test]
fn flipped_byte_in_a_compressed_block_is_corrupt_never_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        fill(&e, "k", 300);
        e.flush(T).unwrap();
    }
    let tdir = shoal_engine::sstable::table_dir(&dir.path().join("data"), &T);
    let f = fs::read_dir(&tdir).unwrap().next().unwrap().unwrap().path();
    let good = fs::read(&f).unwrap();
    // Every byte of the first data block, after its 48-byte file header.
    let first_len = u32::from_le_bytes(good[48..52].try_into().unwrap()) as usize + 12;
    for at in (48..48 + first_len).step_by(7) {
        let mut buf = good.clone();
        buf[at] ^= 0x20;
        fs::write(&f, &buf).unwrap();
        let e = open(dir.path());
        let mut saw_corrupt = false;
        for i in 0..300 {
            match e.read(&single(&format!("k{i}"))) {
                Err(EngineError::Corrupt { path, offset, .. }) => {
                    assert_eq!(path, f);
                    assert_eq!(offset, 48, "names the block");
                    saw_corrupt = true;
                }
                Ok(r) => {
                    for p in r.partitions {
                        assert_eq!(p.rows[0].cells, vec![live(1, 1, &"v".repeat(100))]);
                    }
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(saw_corrupt, "flip at {at} went unnoticed");
        e.shutdown().unwrap();
    }
}

#[test]
fn paging_a_large_partition_reads_few_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI32::new(NOW));
    let mut cfg = config(dir.path(), CommitLogSync::Periodic { period_ms: 10_000 });
    cfg.memtable_space_bytes = 1 << 30;
    cfg.commitlog_segment_size = 32 << 20;
    let e = Engine::open_with(
        cfg,
        tuning(&clock, false),
        vec![(T, TableOptions::default())],
    )
    .unwrap();
    const ROWS: usize = 200_000;
    let ck = |i: usize| Bytes::from(format!("{i:08}"));
    for chunk in 0..ROWS / 1000 {
        let rows = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| Row {
                clustering: ck(i),
                cells: vec![live(1, 1, "0123456789")],
                ..Row::default()
            })
            .collect();
        e.apply(vec![with_rows("big", rows)], Box::new(|r| r.unwrap()))
            .unwrap();
    }
    e.flush(T).unwrap();
    assert_eq!(e.stats().memtable_partitions, 0);
    let before = e.stats().sstable_blocks_read;
    let mut cmd = single("big");
    cmd.row_limit = 100;
    let mut seen = 0;
    // First pages, pages from the middle, a reversed page: each touches a block or two.
    for start in [None, Some(ck(99_999)), Some(ck(150_000))] {
        cmd.start_after_row = start.clone();
        let r = e.read(&cmd).unwrap();
        let rows = &r.partitions[0].rows;
        assert_eq!(rows.len(), 100);
        let first = start.map_or(0, |s| {
            std::str::from_utf8(&s).unwrap().parse::<usize>().unwrap() + 1
        });
        assert_eq!(rows[0].clustering, ck(first));
        seen += 1;
    }
    cmd.start_after_row = None;
    cmd.reversed = true;
    let r = e.read(&cmd).unwrap();
    assert_eq!(r.partitions[0].rows[0].clustering, ck(ROWS - 1));
    seen += 1;
    let blocks = e.stats().sstable_blocks_read - before;
    assert!(
        blocks <= 4 * seen,
        "{seen} pages of 100 rows decoded {blocks} blocks"
    );
    // A slice in the middle.
    cmd.reversed = false;
    cmd.slices = vec![range("00123400", true, "00123409", true)];
    let before = e.stats().sstable_blocks_read;
    assert_eq!(e.read(&cmd).unwrap().partitions[0].rows.len(), 10);
    assert!(e.stats().sstable_blocks_read - before <= 3);
}

#[test]
fn writes_are_throttled_not_failed_when_flushes_fall_behind() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI32::new(NOW));
    let mut cfg = config(dir.path(), CommitLogSync::Periodic { period_ms: 10_000 });
    cfg.memtable_space_bytes = 64 << 10;
    let e = Engine::open_with(
        cfg,
        tuning(&clock, true),
        vec![(T, TableOptions::default())],
    )
    .unwrap();
    fill(&e, "t", 3000);
    let s = e.stats();
    assert!(s.flushes > 3, "{s:?}");
    assert!(s.memtable_bytes <= 3 * (64 << 10) + (64 << 10), "{s:?}");
    assert_eq!(e.read(&all()).unwrap().partitions.len(), 3000);
}

#[test]
fn row_index_seeks_agree_with_a_full_scan_on_tiny_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI32::new(NOW));
    let t = EngineTuning {
        sstable_block_bytes: 40,
        ..tuning(&clock, false)
    };
    let e = open_with(dir.path(), t, TableOptions::default());
    let cks: Vec<String> = (0..12).map(|i| format!("{i:02}")).collect();
    // Two SSTables and a memtable, interleaved, so merged walks cross block boundaries.
    for (n, ck) in cks.iter().enumerate() {
        e.apply_sync(vec![with_rows("k", vec![row(ck, vec![live(1, 1, ck)])])])
            .unwrap();
        if n % 5 == 4 {
            e.flush(T).unwrap();
        }
    }
    let blocks_before = e.stats().sstable_blocks_read;
    for reversed in [false, true] {
        for from in 0..=12usize {
            for to in from..=12usize {
                let mut cmd = single("k");
                cmd.reversed = reversed;
                cmd.slices = vec![range(
                    &format!("{from:02}"),
                    true,
                    &format!("{to:02}"),
                    false,
                )];
                let mut want: Vec<String> = cks[from..to].to_vec();
                if reversed {
                    want.reverse();
                }
                assert_eq!(
                    keys(&e.read(&cmd).unwrap()),
                    want,
                    "{from}..{to} {reversed}"
                );
                for (i, sar) in want.iter().enumerate() {
                    cmd.start_after_row = Some(b(sar));
                    cmd.row_limit = 2;
                    let page: Vec<String> = want[i + 1..].iter().take(2).cloned().collect();
                    assert_eq!(keys(&e.read(&cmd).unwrap()), page, "after {sar}");
                    cmd.row_limit = usize::MAX;
                }
            }
        }
    }
    assert!(e.stats().sstable_blocks_read > blocks_before);
    let g = e.sstable_generations(T).unwrap();
    assert_eq!(g.len(), 2);
}

/// Partitions one input holds, with nothing to purge, are copied undecoded; the rest are
/// merged. Either way the output reads the same, and its statistics count every row.
#[test]
fn compaction_copies_what_needs_no_merge_and_merges_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI32::new(NOW));
    let t = EngineTuning {
        sstable_block_bytes: 1024,
        ..tuning(&clock, false)
    };
    let e = open_with(dir.path(), t, opts(864_000, &[]));
    for round in 0..3 {
        // Distinct keys per flush (copied), one key in every flush (merged).
        for i in 0..100 {
            let rows = vec![row(&format!("r{round}"), vec![live(1, round, "v")])];
            e.apply_sync(vec![with_rows(&format!("k{round}-{i}"), rows)])
                .unwrap();
        }
        let rows = vec![row(&format!("r{round}"), vec![live(1, round, "v")])];
        e.apply_sync(vec![with_rows("shared", rows)]).unwrap();
        e.flush(T).unwrap();
    }
    // A partition spanning several blocks: its chunks are decoded and re-cut.
    let rows = (0..200)
        .map(|r| row(&format!("r{r:03}"), vec![live(1, 5, &"w".repeat(40))]))
        .collect();
    e.apply_sync(vec![with_rows("wide", rows)]).unwrap();
    e.flush(T).unwrap();
    // An SSTable with a tombstone (within its grace period): none of its partitions is
    // copied, and the tombstone stays.
    let mut t = tomb(1, 7);
    t.value = CellValue::Tombstone {
        local_deletion_time: NOW,
    };
    e.apply_sync(vec![with_rows("k9-0", vec![row("a", vec![t])])])
        .unwrap();
    e.apply_sync(vec![with_rows(
        "k9-1",
        vec![row("a", vec![live(1, 7, "x")])],
    )])
    .unwrap();
    e.flush(T).unwrap();
    let mut raw = all();
    raw.include_tombstones = true;
    let before = e.read(&raw).unwrap();
    e.major_compact(T).unwrap();
    let s = e.stats();
    assert_eq!(s.sstables, 1);
    assert_eq!(s.partitions_copied, 300, "{s:?}");
    assert_eq!(e.read(&raw).unwrap(), before);
    let g = e.sstable_generations(T).unwrap();
    let path = sstable::table_dir(&dir.path().join("data"), &T).join(sstable::file_name(g[0]));
    let out = sstable::SsTable::open(&path, g[0]).unwrap();
    assert_eq!(out.stats.partitions, 300 + 1 + 1 + 2);
    assert_eq!(out.stats.rows, 300 + 3 + 200 + 2);
    assert_eq!(out.stats.min_timestamp, 0);
    assert_eq!(out.stats.max_timestamp, 7);
    e.shutdown().unwrap();
    drop(e);
    let e = open_with(dir.path(), tuning(&clock, false), TableOptions::default());
    assert_eq!(e.read(&raw).unwrap(), before);
}

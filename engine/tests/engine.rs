//! Behaviour of the engine through its public API: reconciliation, deletions, reads,
//! truncation and restarts, and commit-log corruption handling.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use shoal_engine::commitlog::{SEGMENT_HEADER_SIZE, decode_entry, list_segments};
use shoal_engine::*;

fn cells_of(r: &ReadResult, ck: &str) -> Vec<Cell> {
    r.partitions[0]
        .rows
        .iter()
        .find(|r| r.clustering == b(ck))
        .map(|r| r.cells.clone())
        .unwrap_or_default()
}

#[test]
fn last_write_wins_and_tombstone_ties() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.apply_sync(vec![with_rows("k", vec![row("a", vec![live(1, 10, "x")])])])
        .unwrap();
    e.apply_sync(vec![with_rows(
        "k",
        vec![row("a", vec![live(1, 5, "zzz")])],
    )])
    .unwrap();
    assert_eq!(
        cells_of(&e.read(&single("k")).unwrap(), "a"),
        vec![live(1, 10, "x")]
    );
    // Equal timestamps: the greater value wins.
    e.apply_sync(vec![with_rows("k", vec![row("a", vec![live(1, 10, "y")])])])
        .unwrap();
    assert_eq!(
        cells_of(&e.read(&single("k")).unwrap(), "a"),
        vec![live(1, 10, "y")]
    );
    // Equal timestamps: the tombstone wins, and a row with nothing live disappears.
    e.apply_sync(vec![with_rows("k", vec![row("a", vec![tomb(1, 10)])])])
        .unwrap();
    assert!(e.read(&single("k")).unwrap().partitions.is_empty());
    e.apply_sync(vec![with_rows("k", vec![row("a", vec![live(1, 11, "z")])])])
        .unwrap();
    assert_eq!(
        cells_of(&e.read(&single("k")).unwrap(), "a"),
        vec![live(1, 11, "z")]
    );
}

#[test]
fn ttl_expiry_and_row_marker() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut r = row("a", vec![expiring(1, 10, "x", 60), live(2, 10, "y")]);
    r.liveness = Some(LivenessInfo {
        timestamp: 10,
        ttl: Some(Ttl {
            ttl: 10,
            local_expiration_time: 60,
        }),
    });
    e.apply_sync(vec![with_rows("k", vec![r])]).unwrap();
    let mut cmd = single("k");
    cmd.now = 59;
    let res = e.read(&cmd).unwrap();
    assert_eq!(res.partitions[0].rows[0].cells.len(), 2);
    assert!(res.partitions[0].rows[0].liveness.is_some());
    cmd.now = 60;
    let res = e.read(&cmd).unwrap();
    assert_eq!(res.partitions[0].rows[0].cells, vec![live(2, 10, "y")]);
    assert!(res.partitions[0].rows[0].liveness.is_none());
    assert_eq!(res.tombstones_scanned, 1);
    // A live row marker alone keeps the row.
    let mut m = row("b", vec![]);
    m.liveness = Some(LivenessInfo {
        timestamp: 1,
        ttl: None,
    });
    e.apply_sync(vec![with_rows("k", vec![m])]).unwrap();
    assert_eq!(keys(&e.read(&cmd).unwrap()), vec!["a", "b"]);
}

#[test]
fn row_range_partition_and_complex_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let rows: Vec<Row> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| row(k, vec![live(1, 10, "v"), live(2, 20, "w")]))
        .collect();
    e.apply_sync(vec![with_rows("k", rows)]).unwrap();
    // Row deletion at 10 shadows column 1 (ts 10) but not column 2 (ts 20).
    let mut rd = row("a", vec![]);
    rd.deletion = Some(del(10));
    e.apply_sync(vec![with_rows("k", vec![rd])]).unwrap();
    assert_eq!(
        cells_of(&e.read(&single("k")).unwrap(), "a"),
        vec![live(2, 20, "w")]
    );
    // Range tombstone [b, c] at 20 removes b and c entirely.
    let mut m = mutation("k");
    m.range_tombstones.push(RangeTombstone {
        range: range("b", true, "c", true),
        deletion: del(20),
    });
    e.apply_sync(vec![m]).unwrap();
    assert_eq!(keys(&e.read(&single("k")).unwrap()), vec!["a", "d"]);
    // Complex deletion shadows element cells of that column only.
    let mut cx = row("d", vec![]);
    cx.complex_deletions.push((2, del(25)));
    e.apply_sync(vec![with_rows("k", vec![cx])]).unwrap();
    assert_eq!(
        cells_of(&e.read(&single("k")).unwrap(), "d"),
        vec![live(1, 10, "v")]
    );
    // Tombstone view shows the deletions.
    let mut raw = single("k");
    raw.include_tombstones = true;
    let res = e.read(&raw).unwrap();
    assert_eq!(res.partitions[0].range_tombstones.len(), 1);
    assert!(
        res.partitions[0]
            .rows
            .iter()
            .any(|r| r.deletion == Some(del(10)))
    );
    // Partition deletion at 20 leaves nothing live.
    let mut pd = mutation("k");
    pd.partition_deletion = Some(del(20));
    e.apply_sync(vec![pd]).unwrap();
    assert!(e.read(&single("k")).unwrap().partitions.is_empty());
    let res = e.read(&raw).unwrap();
    assert_eq!(res.partitions[0].partition_deletion, Some(del(20)));
    // Newer data after the partition deletion is visible again.
    e.apply_sync(vec![with_rows("k", vec![row("e", vec![live(1, 21, "n")])])])
        .unwrap();
    assert_eq!(keys(&e.read(&single("k")).unwrap()), vec!["e"]);
}

#[test]
fn static_rows() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut m = mutation("k");
    m.static_row = Some(row("", vec![live(9, 10, "s")]));
    e.apply_sync(vec![m]).unwrap();
    // A partition with only a static row is returned, with no rows.
    let res = e.read(&single("k")).unwrap();
    assert_eq!(res.partitions.len(), 1);
    assert!(res.partitions[0].rows.is_empty());
    assert_eq!(
        res.partitions[0].static_row.as_ref().unwrap().cells.len(),
        1
    );
    // Range tombstones do not touch static rows; partition deletions do.
    let mut rt = mutation("k");
    rt.range_tombstones.push(RangeTombstone {
        range: ClusteringRange::all(),
        deletion: del(50),
    });
    e.apply_sync(vec![rt]).unwrap();
    assert_eq!(e.read(&single("k")).unwrap().partitions.len(), 1);
    let mut pd = mutation("k");
    pd.partition_deletion = Some(del(10));
    e.apply_sync(vec![pd]).unwrap();
    assert!(e.read(&single("k")).unwrap().partitions.is_empty());
    // Counted as one row toward the row limit.
    e.apply_sync(vec![Mutation {
        static_row: Some(row("", vec![live(9, 30, "s")])),
        ..mutation("k")
    }])
    .unwrap();
    e.apply_sync(vec![with_rows("j", vec![row("a", vec![live(1, 1, "x")])])])
        .unwrap();
    let mut cmd = all();
    cmd.row_limit = 1;
    assert_eq!(e.read(&cmd).unwrap().partitions.len(), 1);
    cmd.row_limit = 2;
    assert_eq!(e.read(&cmd).unwrap().partitions.len(), 2);
}

#[test]
fn counters_add_up_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        for i in 0..10 {
            e.apply_sync(vec![with_rows("c", vec![row("", vec![counter(1, i, 2)])])])
                .unwrap();
        }
        e.apply_sync(vec![with_rows("c", vec![row("", vec![counter(1, 3, -5)])])])
            .unwrap();
        assert_eq!(
            cells_of(&e.read(&single("c")).unwrap(), "")[0].value,
            CellValue::Counter { value: 15 }
        );
        e.shutdown().unwrap();
    }
    let e = open(dir.path());
    assert_eq!(
        cells_of(&e.read(&single("c")).unwrap(), "")[0].value,
        CellValue::Counter { value: 15 }
    );
}

fn abc_partition(e: &Engine) {
    let rows: Vec<Row> = ["a1", "a2", "b1", "b2", "c1"]
        .iter()
        .map(|k| row(k, vec![live(1, 1, k)]))
        .collect();
    e.apply_sync(vec![with_rows("k", rows)]).unwrap();
}

#[test]
fn slices_prefixes_reversal_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    abc_partition(&e);
    let q = |slices: Vec<ClusteringRange>, reversed: bool| {
        let mut c = single("k");
        c.slices = slices;
        c.reversed = reversed;
        keys(&e.read(&c).unwrap())
    };
    assert_eq!(
        q(vec![range("a", true, "b", true)], false),
        ["a1", "a2", "b1", "b2"]
    );
    assert_eq!(
        q(vec![range("a", false, "b", false)], false),
        Vec::<String>::new()
    );
    assert_eq!(q(vec![range("a", false, "c", false)], false), ["b1", "b2"]);
    assert_eq!(
        q(vec![range("a2", false, "", true)], false),
        ["b1", "b2", "c1"]
    );
    assert_eq!(q(vec![range("a2", true, "b1", false)], false), ["a2"]);
    assert_eq!(
        q(
            vec![range("a1", true, "a1", true), range("b", true, "b", true)],
            true
        ),
        ["b2", "b1", "a1"]
    );
    assert_eq!(
        q(vec![range("c", true, "a", true)], false),
        Vec::<String>::new()
    );
    let mut c = single("k");
    c.start_after_row = Some(b("a2"));
    c.per_partition_limit = 2;
    assert_eq!(keys(&e.read(&c).unwrap()), ["b1", "b2"]);
    c.reversed = true;
    c.start_after_row = Some(b("b2"));
    assert_eq!(keys(&e.read(&c).unwrap()), ["b1", "a2"]);
    c.row_limit = 1;
    assert_eq!(keys(&e.read(&c).unwrap()), ["b1"]);
}

#[test]
fn partition_ranges_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    // Keys with tokens 1, 1, 2, 3.
    for (tok, key) in [(1, "x"), (1, "y"), (2, "z"), (3, "w")] {
        let mut m = with_rows(
            key,
            vec![
                row("r1", vec![live(1, 1, "v")]),
                row("r2", vec![live(1, 1, "v")]),
            ],
        );
        m.token = tok;
        e.apply_sync(vec![m]).unwrap();
    }
    let run = |start: Option<PartitionPosition>, end: Option<PartitionPosition>| {
        let mut c = read_cmd(PartitionRange::Range { start, end });
        c.per_partition_limit = 1;
        e.read(&c)
            .unwrap()
            .partitions
            .iter()
            .map(|p| String::from_utf8(p.key.to_vec()).unwrap())
            .collect::<Vec<_>>()
    };
    let pos = |token, key: Option<&str>, inclusive| {
        Some(PartitionPosition {
            token,
            key: key.map(b),
            inclusive,
        })
    };
    assert_eq!(run(None, None), ["x", "y", "z", "w"]);
    assert_eq!(run(pos(1, None, true), pos(2, None, true)), ["x", "y", "z"]);
    assert_eq!(run(pos(1, None, false), None), ["z", "w"]);
    assert_eq!(
        run(pos(1, Some("x"), false), pos(3, None, false)),
        ["y", "z"]
    );
    assert_eq!(
        run(pos(1, Some("y"), true), pos(3, Some("w"), true)),
        ["y", "z", "w"]
    );
    assert_eq!(run(None, pos(1, Some("y"), false)), ["x"]);
    let mut c = all();
    c.partition_limit = 2;
    assert_eq!(e.read(&c).unwrap().partitions.len(), 2);
    c.partition_limit = usize::MAX;
    c.row_limit = 3;
    let r = e.read(&c).unwrap();
    assert_eq!(
        r.partitions
            .iter()
            .map(|p| p.rows.len())
            .collect::<Vec<_>>(),
        [2, 1]
    );
}

#[test]
fn tombstone_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), CommitLogSync::Batch);
    cfg.tombstone_warn_threshold = 5;
    cfg.tombstone_failure_threshold = 20;
    let e = Engine::open(cfg, vec![(T, TableOptions::default())]).unwrap();
    let rows = (0..10)
        .map(|i| row(&format!("r{i:02}"), vec![tomb(1, 1)]))
        .collect();
    e.apply_sync(vec![with_rows("k", rows)]).unwrap();
    let r = e.read(&single("k")).unwrap();
    assert_eq!(r.tombstones_scanned, 10);
    assert!(
        r.warnings[0].contains("10 tombstone cells"),
        "{:?}",
        r.warnings
    );
    let rows = (10..30)
        .map(|i| row(&format!("r{i:02}"), vec![tomb(1, 1)]))
        .collect();
    e.apply_sync(vec![with_rows("k", rows)]).unwrap();
    assert!(matches!(
        e.read(&single("k")),
        Err(EngineError::TombstoneOverwhelming { .. })
    ));
}

#[test]
fn unknown_tables_and_ddl() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let other = TableId([2; 16]);
    let mut m = mutation("k");
    m.table = other;
    assert!(matches!(
        e.apply_sync(vec![m.clone()]),
        Err(EngineError::UnknownTable(_))
    ));
    e.create_table(other, TableOptions::default()).unwrap();
    e.create_table(other, TableOptions::default()).unwrap();
    m.rows.push(row("a", vec![live(1, 1, "v")]));
    e.apply_sync(vec![m.clone()]).unwrap();
    let opts = TableOptions {
        gc_grace_seconds: 5,
        ..TableOptions::default()
    };
    e.alter_table(other, opts.clone()).unwrap();
    assert_eq!(e.table_options(other).unwrap(), opts);
    e.drop_table(other).unwrap();
    let mut c = single("k");
    c.table = other;
    assert!(matches!(e.read(&c), Err(EngineError::UnknownTable(_))));
    e.shutdown().unwrap();
    drop(e);
    // Recreated with the same id after a restart: the dropped data stays dead.
    let e = Engine::open(
        config(dir.path(), CommitLogSync::Batch),
        vec![
            (T, TableOptions::default()),
            (other, TableOptions::default()),
        ],
    )
    .unwrap();
    assert!(e.read(&c).unwrap().partitions.is_empty());
}

#[test]
fn truncate_survives_restart_and_sync_modes() {
    for sync in [
        CommitLogSync::Batch,
        CommitLogSync::Periodic { period_ms: 5 },
        CommitLogSync::Group { window_ms: 5 },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tables = || vec![(T, TableOptions::default())];
        {
            let e = Engine::open(config(dir.path(), sync), tables()).unwrap();
            e.apply_sync(vec![with_rows(
                "old",
                vec![row("a", vec![live(1, 1, "v")])],
            )])
            .unwrap();
            e.truncate(T).unwrap();
            assert!(e.read(&all()).unwrap().partitions.is_empty());
            e.apply_sync(vec![with_rows(
                "new",
                vec![row("a", vec![live(1, 1, "v")])],
            )])
            .unwrap();
            e.shutdown().unwrap();
            e.shutdown().unwrap();
            assert!(matches!(e.read(&all()), Err(EngineError::Closed(_))));
        }
        for _ in 0..2 {
            let e = Engine::open(config(dir.path(), sync), tables()).unwrap();
            let r = e.read(&all()).unwrap();
            assert_eq!(r.partitions.len(), 1, "{sync:?}");
            assert_eq!(r.partitions[0].key, b("new"));
        }
    }
}

#[test]
fn many_writers_share_fsyncs_and_segments_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), CommitLogSync::Batch);
    cfg.commitlog_segment_size = 64 << 10;
    let e =
        std::sync::Arc::new(Engine::open(cfg.clone(), vec![(T, TableOptions::default())]).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let big = "x".repeat(100);
                    e.apply_sync(vec![with_rows(
                        &format!("k{t}"),
                        vec![row(&format!("r{i:04}"), vec![live(1, 1, &big)])],
                    )])
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = e.stats();
    assert_eq!(s.writes, 1600);
    assert!(s.commitlog_syncs < 1600, "no group commit: {s:?}");
    assert!(s.commitlog_segments > 2, "{s:?}");
    // Huge mutations are refused up front.
    let huge = "x".repeat(70 << 10);
    assert!(matches!(
        e.apply_sync(vec![with_rows(
            "h",
            vec![row("a", vec![live(1, 1, &huge)])]
        )]),
        Err(EngineError::MutationTooLarge { .. })
    ));
    e.shutdown().unwrap();
    drop(e);
    let e = Engine::open(cfg, vec![(T, TableOptions::default())]).unwrap();
    let r = e.read(&all()).unwrap();
    assert_eq!(
        r.partitions.iter().map(|p| p.rows.len()).sum::<usize>(),
        1600
    );
}

// ---- Corruption ----

/// Writes `n` single-row partitions, one entry each, then closes the engine.
/// Periodic mode rotates without an inline fsync: the rotated-out segment is handed to the
/// sync thread, and spares are zero-filled (allocated blocks) before use. Everything
/// written is replayed, in order, after a sync and a reopen.
#[test]
fn periodic_rotation_hands_segments_to_the_sync_thread() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), CommitLogSync::Periodic { period_ms: 60_000 });
    cfg.commitlog_segment_size = 64 << 10;
    let e = Engine::open(cfg.clone(), vec![(T, TableOptions::default())]).unwrap();
    let big = "x".repeat(300);
    for i in 0..2000 {
        e.apply_sync(vec![with_rows(
            &format!("k{}", i % 7),
            vec![row(&format!("r{i:05}"), vec![live(1, 1, &big)])],
        )])
        .unwrap();
    }
    e.sync_commitlog().unwrap();
    let segs = list_segments(&cfg.commitlog_dir).unwrap();
    assert!(segs.len() > 5, "{segs:?}");
    // Every segment after the first was a spare: filled with zeros, so its blocks exist.
    for (_, p) in &segs[1..segs.len() - 1] {
        let m = fs::metadata(p).unwrap();
        assert!(
            m.blocks() * 512 >= m.len(),
            "{} is sparse: {m:?}",
            p.display()
        );
    }
    // The syncs cover every rotated-out segment (the period is a minute: none came from it).
    assert!(
        e.stats().commitlog_syncs >= segs.len() as u64 - 1,
        "{:?}",
        e.stats()
    );
    drop(e);
    let e = Engine::open(cfg, vec![(T, TableOptions::default())]).unwrap();
    let r = e.read(&all()).unwrap();
    assert_eq!(
        r.partitions.iter().map(|p| p.rows.len()).sum::<usize>(),
        2000
    );
}

fn write_entries(dir: &Path, n: usize) {
    let e = open(dir);
    for i in 0..n {
        e.apply_sync(vec![with_rows(
            &format!("k{i:03}"),
            vec![row("a", vec![live(1, 1, "value")])],
        )])
        .unwrap();
    }
    e.shutdown().unwrap();
}

fn only_segment(dir: &Path) -> PathBuf {
    let segs = list_segments(&dir.join("commitlog")).unwrap();
    assert_eq!(segs.len(), 1);
    segs[0].1.clone()
}

/// Offsets of the entries in a segment.
fn entry_offsets(seg: &Path) -> Vec<usize> {
    let buf = fs::read(seg).unwrap();
    let mut pos = SEGMENT_HEADER_SIZE as usize;
    let mut out = vec![];
    while let Ok((_, n)) = decode_entry(&buf[pos..]) {
        out.push(pos);
        pos += n;
    }
    out
}

fn present(e: &Engine) -> Vec<String> {
    e.read(&all())
        .unwrap()
        .partitions
        .iter()
        .map(|p| String::from_utf8(p.key.to_vec()).unwrap())
        .collect()
}

#[test]
fn corrupt_middle_fails_open_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 10);
    let seg = only_segment(dir.path());
    let offs = entry_offsets(&seg);
    assert_eq!(offs.len(), 10);
    let mut buf = fs::read(&seg).unwrap();
    let victim = offs[4] + 20;
    buf[victim] ^= 0x01;
    fs::write(&seg, &buf).unwrap();
    let err = Engine::open(
        config(dir.path(), CommitLogSync::Batch),
        vec![(T, TableOptions::default())],
    )
    .err()
    .expect("open must refuse a corrupt log");
    match &err {
        EngineError::Corrupt { path, offset, .. } => {
            assert_eq!(path, &seg);
            assert_eq!(*offset, offs[4] as u64);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(err.to_string().contains(&seg.display().to_string()));
    let mut cfg = config(dir.path(), CommitLogSync::Batch);
    cfg.skip_corrupt_commitlog_entries = true;
    let e = Engine::open(cfg, vec![(T, TableOptions::default())]).unwrap();
    let keys = present(&e);
    assert_eq!(keys.len(), 9);
    assert!(!keys.contains(&"k004".to_string()));
    assert_eq!(e.stats().replay_skipped_corrupt, 1);
}

#[test]
fn torn_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5);
    let seg = only_segment(dir.path());
    let offs = entry_offsets(&seg);
    let orig = fs::read(&seg).unwrap();
    let mut buf = orig.clone();
    let end = {
        let (_, n) = decode_entry(&buf[offs[4]..]).unwrap();
        offs[4] + n
    };
    // Cut the last entry short: its second half never reached the disk.
    for b in &mut buf[offs[4] + 10..end] {
        *b = 0;
    }
    fs::write(&seg, &buf).unwrap();
    let e = open(dir.path());
    assert_eq!(present(&e), ["k000", "k001", "k002", "k003"]);
    assert!(e.stats().replay_torn_tail);
    e.shutdown().unwrap();
    drop(e);
    // Garbage instead of zeros at the tail is also a torn tail.
    let mut buf = orig.clone();
    for (i, b) in buf[offs[4]..end].iter_mut().enumerate() {
        *b = i as u8;
    }
    fs::write(&seg, &buf).unwrap();
    let e = open(dir.path());
    assert_eq!(present(&e).len(), 4);
    // The tail was cut off: writing after it and reopening must not turn it into
    // "corruption in the middle".
    e.apply_sync(vec![with_rows(
        "after",
        vec![row("a", vec![live(1, 1, "value")])],
    )])
    .unwrap();
    e.shutdown().unwrap();
    drop(e);
    let e = open(dir.path());
    assert_eq!(present(&e).len(), 5);
    assert!(!e.stats().replay_torn_tail);
}

#[test]
fn segment_cut_short_at_creation_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 2);
    let segs = list_segments(&dir.path().join("commitlog")).unwrap();
    let last = segs.last().unwrap();
    // A crash between creating the next segment file and writing its header.
    let name = last
        .1
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .replace(&format!("{:016}", last.0), &format!("{:016}", last.0 + 1));
    fs::write(last.1.with_file_name(name), [0x5a; 10]).unwrap();
    let e = open(dir.path());
    assert_eq!(present(&e).len(), 2);
    e.apply_sync(vec![with_rows(
        "after",
        vec![row("a", vec![live(1, 1, "value")])],
    )])
    .unwrap();
    e.shutdown().unwrap();
    drop(e);
    assert_eq!(present(&open(dir.path())).len(), 3);
}

#[test]
fn corruption_in_an_earlier_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 3);
    // A second run writes a second segment.
    {
        let e = open(dir.path());
        e.apply_sync(vec![with_rows(
            "later",
            vec![row("a", vec![live(1, 1, "v")])],
        )])
        .unwrap();
    }
    let segs = list_segments(&dir.path().join("commitlog")).unwrap();
    assert!(segs.len() >= 2);
    let first = &segs[0].1;
    let offs = entry_offsets(first);
    let mut buf = fs::read(first).unwrap();
    // Damage the last entry of the first segment: later segments hold valid entries.
    buf[offs[2] + 12] ^= 0xff;
    fs::write(first, &buf).unwrap();
    match Engine::open(
        config(dir.path(), CommitLogSync::Batch),
        vec![(T, TableOptions::default())],
    ) {
        Err(EngineError::Corrupt { path, offset, .. }) => {
            assert_eq!(&path, first);
            assert_eq!(offset, offs[2] as u64);
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn every_single_byte_flip_is_detected_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 3);
    let seg = only_segment(dir.path());
    let orig = fs::read(&seg).unwrap();
    let offs = entry_offsets(&seg);
    let end = {
        let (_, n) = decode_entry(&orig[offs[2]..]).unwrap();
        offs[2] + n
    };
    let expected = ["k000", "k001", "k002"];
    for at in (0..end).step_by(3) {
        let mut buf = orig.clone();
        buf[at] ^= 0x40;
        for skip in [false, true] {
            // Open repairs torn tails and writes a fresh segment: start from the damaged
            // file alone each time.
            for (_, p) in list_segments(&dir.path().join("commitlog")).unwrap() {
                fs::remove_file(p).unwrap();
            }
            fs::write(&seg, &buf).unwrap();
            let mut cfg = config(dir.path(), CommitLogSync::Batch);
            cfg.skip_corrupt_commitlog_entries = skip;
            if let Ok(e) = Engine::open(cfg, vec![(T, TableOptions::default())]) {
                let r = e.read(&all()).unwrap();
                for p in &r.partitions {
                    // Never wrong data: every partition returned was written, intact.
                    let k = String::from_utf8(p.key.to_vec()).unwrap();
                    assert!(expected.contains(&k.as_str()), "flip at {at}: {k}");
                    assert_eq!(p.rows[0].cells, vec![live(1, 1, "value")]);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn decode_entry_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_entry(&bytes);
    }

    #[test]
    fn decode_entry_never_panics_on_damaged_entries(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let m = with_rows("k", vec![row("a", vec![live(1, 1, "v"), tomb(2, 3)])]);
        let mut payload = Vec::new();
        encode_mutations(&[m], &mut payload);
        // Damage the payload and re-frame it with valid checksums, so the mutation decoder
        // itself sees the garbage.
        for (at, x) in &flips {
            let i = at % payload.len();
            payload[i] ^= x;
        }
        let payload = &payload[..payload.len() - cut % payload.len()];
        let entry = shoal_engine::commitlog::encode_entry(payload);
        let _ = decode_entry(&entry);
    }
}

#[test]
fn replay_of_tens_of_megabytes_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), CommitLogSync::Periodic { period_ms: 1000 });
    cfg.commitlog_segment_size = 8 << 20;
    let tables = || vec![(T, TableOptions::default())];
    {
        let e = Engine::open(cfg.clone(), tables()).unwrap();
        let value = "v".repeat(2000);
        // 10 rows of 2 KB per entry: ~20 MB in 1000 entries.
        for i in 0..1000 {
            let rows = (0..10)
                .map(|r| row(&format!("r{r}"), vec![live(1, 1, &value)]))
                .collect();
            e.apply(
                vec![with_rows(&format!("k{i}"), rows)],
                Box::new(|r| r.unwrap()),
            )
            .unwrap();
        }
        e.shutdown().unwrap();
    }
    let started = std::time::Instant::now();
    let e = Engine::open(cfg, tables()).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(e.stats().replayed_entries, 1000);
    eprintln!("replayed ~20 MB in {elapsed:?} (unoptimised build)");
    assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
}

// ---- Flush ----

#[test]
fn flush_merges_with_memtable_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        e.apply_sync(vec![with_rows(
            "k",
            vec![row("a", vec![live(1, 1, "old"), counter(2, 1, 5)])],
        )])
        .unwrap();
        e.apply_sync(vec![with_rows("j", vec![row("a", vec![live(1, 1, "j")])])])
            .unwrap();
        e.flush(T).unwrap();
        assert_eq!(e.stats().sstables, 1);
        // Newer data in the memtable shadows and adds to the SSTable's.
        e.apply_sync(vec![with_rows(
            "k",
            vec![row("a", vec![live(1, 2, "new"), counter(2, 2, 3)])],
        )])
        .unwrap();
        let mut rd = row("a", vec![]);
        rd.deletion = Some(del(5));
        e.apply_sync(vec![with_rows("j", vec![rd])]).unwrap();
        let check = |e: &Engine| {
            let r = e.read(&all()).unwrap();
            assert_eq!(r.partitions.len(), 1, "{r:?}");
            assert_eq!(
                r.partitions[0].rows[0].cells,
                vec![live(1, 2, "new"), counter(2, 2, 8)]
            );
            assert_eq!(
                cells_of(&e.read(&single("k")).unwrap(), "a")[1],
                counter(2, 2, 8)
            );
            assert!(e.read(&single("j")).unwrap().partitions.is_empty());
        };
        check(&e);
        e.flush(T).unwrap();
        check(&e);
        e.shutdown().unwrap();
        drop(e);
        // Counters must not be counted twice: the log entries are below the flush floor.
        let e = open(dir.path());
        check(&e);
        assert_eq!(e.stats().sstables, 2);
        e.apply_sync(vec![with_rows("k", vec![row("a", vec![counter(2, 3, 1)])])])
            .unwrap();
        e.shutdown().unwrap();
    }
    let e = open(dir.path());
    assert_eq!(
        cells_of(&e.read(&single("k")).unwrap(), "a")[1],
        counter(2, 3, 9)
    );
}

#[test]
fn automatic_flush_discards_segments_and_truncate_removes_sstables() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), CommitLogSync::Periodic { period_ms: 100 });
    cfg.commitlog_segment_size = 64 << 10;
    cfg.memtable_space_bytes = 100 << 10;
    let tables = || vec![(T, TableOptions::default())];
    let e = Engine::open(cfg.clone(), tables()).unwrap();
    let value = "v".repeat(1000);
    for i in 0..1000 {
        e.apply_sync(vec![with_rows(
            &format!("k{i:04}"),
            vec![row("a", vec![live(1, 1, &value)])],
        )])
        .unwrap();
    }
    e.flush(T).unwrap();
    let s = e.stats();
    assert!(s.flushes >= 5, "{s:?}");
    assert!(s.commitlog_segments_discarded > 5, "{s:?}");
    assert!(s.commitlog_segments <= 2, "{s:?}");
    let mut c = all();
    c.row_limit = 10;
    c.partitions = PartitionRange::Range {
        start: Some(PartitionPosition {
            token: token_of("k0500"),
            key: Some(b("k0500")),
            inclusive: true,
        }),
        end: None,
    };
    let r = e.read(&c).unwrap();
    assert_eq!(r.partitions.len(), 10);
    assert_eq!(e.read(&all()).unwrap().partitions.len(), 1000);
    e.shutdown().unwrap();
    drop(e);
    let e = Engine::open(cfg.clone(), tables()).unwrap();
    assert_eq!(e.read(&all()).unwrap().partitions.len(), 1000);
    e.truncate(T).unwrap();
    assert_eq!(e.stats().sstables, 0);
    e.apply_sync(vec![with_rows(
        "after",
        vec![row("a", vec![live(1, 1, "x")])],
    )])
    .unwrap();
    e.shutdown().unwrap();
    drop(e);
    let e = Engine::open(cfg, tables()).unwrap();
    assert_eq!(present(&e), ["after"]);
}

#[test]
fn corrupt_sstable_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        e.apply_sync(vec![with_rows("k", vec![row("a", vec![live(1, 1, "v")])])])
            .unwrap();
        e.flush(T).unwrap();
    }
    let tdir = shoal_engine::sstable::table_dir(&dir.path().join("data"), &T);
    let f = fs::read_dir(&tdir).unwrap().next().unwrap().unwrap().path();
    let mut buf = fs::read(&f).unwrap();
    buf[60] ^= 1;
    fs::write(&f, &buf).unwrap();
    let e = open(dir.path());
    match e.read(&single("k")) {
        Err(EngineError::Corrupt { path, .. }) => assert_eq!(path, f),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn decode_block_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = shoal_engine::sstable::decode_block(&bytes);
    }

    #[test]
    fn decode_block_never_panics_on_damaged_blocks(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        compressible in any::<bool>(),
    ) {
        use shoal_engine::sstable::{
            BLOCK_HEADER_SIZE, CompressionProbe, decode_block, encode_block, frame_block,
        };
        // A repetitive value makes an LZ4 block; letters without repeats a stored block.
        let v: String = if compressible {
            "v".repeat(200)
        } else {
            (0..400u64)
                .map(|i| {
                    let z = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let z = (z ^ (z >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    (b'a' + ((z ^ (z >> 32)) % 26) as u8) as char
                })
                .collect()
        };
        let m = with_rows("k", vec![row("a", vec![live(1, 1, &v), tomb(2, 3)])]);
        let good = encode_block(std::slice::from_ref(&m), &mut CompressionProbe::default());
        let stored = u32::from_le_bytes([good[4], good[5], good[6], good[7]]) & (1 << 31) != 0;
        prop_assert_eq!(stored, !compressible);
        prop_assert_eq!(decode_block(&good).unwrap(), vec![m]);
        // Damage the compressed bytes and fix the checksum, so LZ4 and the mutation decoder
        // see the garbage; and separately check that the checksum catches any damage.
        let mut bad = good.clone();
        for (at, x) in &flips {
            let i = BLOCK_HEADER_SIZE + at % (bad.len() - BLOCK_HEADER_SIZE);
            bad[i] ^= x;
        }
        if bad != good {
            prop_assert!(decode_block(&bad).is_err());
        }
        let n = bad.len() - cut % (bad.len() - BLOCK_HEADER_SIZE);
        let field = u32::from_le_bytes([bad[4], bad[5], bad[6], bad[7]]);
        let _ = decode_block(&frame_block(field, &bad[BLOCK_HEADER_SIZE..n]));
    }
}

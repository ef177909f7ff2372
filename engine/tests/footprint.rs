//! Heap footprints measured with a counting allocator: the memtable's space accounting
//! against the heap it really takes (flushes and write throttling trust it; it once
//! underestimated 3.8 times over), and what an SSTable writer keeps while it writes. One
//! test in its own binary, because the allocator counts every thread.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use shoal_engine::commitlog::ReplayPosition;
use shoal_engine::memtable::{Memtable, PartitionKey};
use shoal_engine::sstable::Writer;
use shoal_engine::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn row(clustering: Bytes, columns: u32, value_len: usize) -> Row {
    Row {
        clustering,
        liveness: Some(LivenessInfo {
            timestamp: 1,
            ttl: None,
        }),
        deletion: None,
        complex_deletions: vec![],
        cells: (0..columns)
            .map(|c| Cell {
                column: c,
                path: None,
                timestamp: 1,
                value: CellValue::Live {
                    value: Bytes::from(vec![7u8; value_len]),
                    ttl: None,
                },
            })
            .collect(),
    }
}

fn mutation(p: u64, rows: Vec<Row>) -> Mutation {
    Mutation {
        table: TableId([0; 16]),
        token: (p as i64).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64),
        key: Bytes::from(format!("{p:010}").into_bytes()),
        partition_deletion: None,
        range_tombstones: vec![],
        static_row: None,
        rows,
    }
}

/// Real heap bytes per accounted byte after `fill` writes into a fresh memtable, and real
/// heap bytes per partition.
fn ratio(fill: impl Fn(&Memtable)) -> (f64, f64) {
    let m = Memtable::default();
    let before = LIVE.load(Ordering::Relaxed);
    fill(&m);
    let real = (LIVE.load(Ordering::Relaxed) - before) as f64;
    (real / m.bytes() as f64, real / m.partition_count() as f64)
}

type Fill = Box<dyn Fn(&Memtable)>;

#[test]
fn footprints() {
    memtable_accounting_tracks_the_real_heap();
    sstable_writer_does_not_pin_its_input();
}

fn memtable_accounting_tracks_the_real_heap() {
    let cases: [(&str, Fill); 4] = [
        (
            "standard1: one row of five 34-byte cells per partition",
            Box::new(|m| {
                for p in 0..100_000 {
                    m.apply(mutation(p, vec![row(Bytes::new(), 5, 34)]));
                }
            }),
        ),
        (
            "key-value: one 1 KiB cell per partition",
            Box::new(|m| {
                for p in 0..20_000 {
                    m.apply(mutation(p, vec![row(Bytes::new(), 1, 1024)]));
                }
            }),
        ),
        (
            "time series: 200 rows per partition, one write each",
            Box::new(|m| {
                for i in 0..100_000u64 {
                    let ck = Bytes::from((i / 500).to_be_bytes().to_vec());
                    m.apply(mutation(i % 500, vec![row(ck, 2, 8)]));
                }
            }),
        ),
        (
            "small partitions of 8 rows written together",
            Box::new(|m| {
                for p in 0..10_000 {
                    let rows = (0..8u8).map(|c| row(Bytes::from(vec![c]), 3, 16)).collect();
                    m.apply(mutation(p, rows));
                }
            }),
        ),
    ];
    for (name, fill) in cases {
        let (r, per_partition) = ratio(fill);
        println!("{name}: real/accounted = {r:.2}, {per_partition:.0} B per partition");
        assert!(
            (0.6..=1.3).contains(&r),
            "{name}: the memtable holds {r:.2} bytes per byte it accounts for"
        );
    }
}

/// A compaction feeds the writer partitions whose keys are slices of decoded input blocks.
/// Whatever the writer keeps until `finish` (its block index) must not hold those blocks.
fn sstable_writer_does_not_pin_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::create(
        dir.path(),
        TableId([0; 16]),
        1,
        ReplayPosition::default(),
        20_000,
        0.01,
        None,
    )
    .unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    for p in 0..20_000u64 {
        // A 4 KiB "decoded block" per partition, of which the key is a slice.
        let mut block = vec![0u8; 4096];
        block[..8].copy_from_slice(&p.to_be_bytes());
        let key = Bytes::from(block).slice(0..8);
        let (_, mut st) = shoal_engine::sstable::mutation_to_state(mutation(p, vec![]));
        st.rows.insert(row(Bytes::new(), 5, 34));
        let pk = PartitionKey {
            token: p as i64,
            key,
        };
        w.add(&pk, &st).unwrap();
    }
    let held = (LIVE.load(Ordering::Relaxed) - before) as f64;
    let per_partition = held / 20_000.0;
    println!("sstable writer: {per_partition:.0} B held per partition written");
    assert!(
        per_partition < 64.0,
        "the writer holds {per_partition:.0} B per partition: input blocks are pinned"
    );
    w.finish(0, Vec::new()).unwrap();
}

//! Micro-benchmarks of the engine's hot paths: memtable insert, point reads from a memtable
//! and from an SSTable, a page of rows from a large partition on disk, and writing an
//! SSTable (what flushes and compactions spend their time on).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use shoal_engine::*;

const T: TableId = TableId([7; 16]);

fn engine(dir: &std::path::Path) -> Engine {
    let cfg = EngineConfig {
        data_dir: dir.join("data"),
        commitlog_dir: dir.join("commitlog"),
        commitlog_sync: CommitLogSync::Periodic { period_ms: 10_000 },
        memtable_space_bytes: 1 << 30,
        ..EngineConfig::default()
    };
    let tuning = EngineTuning {
        background_compaction: false,
        // Compaction benches measure the merge, not the I/O throttle.
        compaction_throughput_bytes_per_sec: 0,
        clock: Clock::manual(Arc::new(AtomicI32::new(1_000_000))),
        ..EngineTuning::default()
    };
    Engine::open_with(cfg, tuning, vec![(T, TableOptions::default())]).unwrap()
}

fn key(i: u64) -> (i64, Bytes) {
    let token = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) as i64;
    (token, Bytes::from(i.to_be_bytes().to_vec()))
}

fn mutation(i: u64, rows: impl IntoIterator<Item = Row>) -> Mutation {
    let (token, key) = key(i);
    Mutation {
        table: T,
        token,
        key,
        partition_deletion: None,
        range_tombstones: vec![],
        static_row: None,
        rows: rows.into_iter().collect(),
    }
}

fn row(ck: Bytes, value: &Bytes) -> Row {
    Row {
        clustering: ck,
        cells: vec![Cell {
            column: 1,
            path: None,
            timestamp: 1,
            value: CellValue::Live {
                value: value.clone(),
                ttl: None,
            },
        }],
        ..Row::default()
    }
}

fn point(i: u64) -> ReadCommand {
    let (token, key) = key(i);
    ReadCommand {
        table: T,
        partitions: PartitionRange::Single { token, key },
        slices: vec![],
        reversed: false,
        start_after_row: None,
        row_limit: usize::MAX,
        per_partition_limit: usize::MAX,
        partition_limit: usize::MAX,
        include_tombstones: false,
        now: 1_000_000,
    }
}

/// 10k standard1-shaped partitions (five 34-byte random cells) written to an SSTable.
fn sstable_write(c: &mut Criterion) {
    use shoal_engine::memtable::{PartitionKey, PartitionState};
    use shoal_engine::sstable::Writer;
    let mut x = 1u64;
    let mut noise = |n: usize| -> Bytes {
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect::<Vec<u8>>()
            .into()
    };
    let mut parts: Vec<(PartitionKey, PartitionState)> = (0..10_000u64)
        .map(|i| {
            let (token, key) = key(i);
            let mut st = PartitionState::default();
            st.rows.insert(Row {
                liveness: Some(LivenessInfo {
                    timestamp: 1_700_000_000_000_000 + i as i64,
                    ttl: None,
                }),
                cells: (0..5)
                    .map(|c| Cell {
                        column: c,
                        path: None,
                        timestamp: 1_700_000_000_000_000 + i as i64,
                        value: CellValue::Live {
                            value: noise(34),
                            ttl: None,
                        },
                    })
                    .collect(),
                ..Row::default()
            });
            (PartitionKey { token, key }, st)
        })
        .collect();
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let dir = tempfile::tempdir().unwrap();
    let mut generation = 0;
    c.bench_function("sstable_write_10k_standard1", |b| {
        b.iter(|| {
            generation += 1;
            let mut w = Writer::create(
                dir.path(),
                T,
                generation,
                Default::default(),
                parts.len() as u64,
                0.01,
                None,
            )
            .unwrap();
            for (pk, st) in &parts {
                w.add(pk, st).unwrap();
            }
            let s = w.finish(0, Vec::new()).unwrap().unwrap();
            std::fs::remove_file(&s.path).unwrap();
        })
    });
}

fn benches(c: &mut Criterion) {
    let value = Bytes::from(vec![b'x'; 100]);
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let next = AtomicU64::new(1 << 40);
    c.bench_function("memtable_insert_100B", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            e.apply(
                vec![mutation(i, [row(Bytes::new(), &value)])],
                Box::new(|_| {}),
            )
            .unwrap();
        })
    });
    for i in 0..10_000 {
        e.apply(
            vec![mutation(i, [row(Bytes::new(), &value)])],
            Box::new(|_| {}),
        )
        .unwrap();
    }
    let mut n = 0u64;
    c.bench_function("point_read_memtable", |b| {
        b.iter(|| {
            n = (n + 7919) % 10_000;
            assert_eq!(e.read(&point(n)).unwrap().partitions.len(), 1);
        })
    });
    e.flush_all().unwrap();
    c.bench_function("point_read_sstable", |b| {
        b.iter(|| {
            n = (n + 7919) % 10_000;
            assert_eq!(e.read(&point(n)).unwrap().partitions.len(), 1);
        })
    });
    // One partition of 100k rows on disk; pages of 100 rows from random places.
    let big = 1u64 << 50;
    for chunk in 0..100u64 {
        let rows = (chunk * 1000..(chunk + 1) * 1000)
            .map(|r| row(Bytes::from(r.to_be_bytes().to_vec()), &value));
        e.apply(vec![mutation(big, rows)], Box::new(|_| {}))
            .unwrap();
    }
    e.flush_all().unwrap();
    let mut page = point(big);
    page.row_limit = 100;
    let mut r = 0u64;
    c.bench_function("partition_scan_page_100_rows", |b| {
        b.iter_batched(
            || {
                r = (r + 7919) % 99_000;
                let mut p = page.clone();
                p.start_after_row = Some(Bytes::from(r.to_be_bytes().to_vec()));
                p
            },
            |p| assert_eq!(e.read(&p).unwrap().partitions[0].rows.len(), 100),
            BatchSize::SmallInput,
        )
    });
}

/// The memtable's own structure, without the commit log: 250k standard1-shaped partitions
/// at random tokens (a flush's worth at the default memtable size) inserted into a fresh
/// memtable, then flushed to an SSTable and freed.
fn memtable_structure(c: &mut Criterion) {
    use shoal_engine::memtable::Memtable;
    const N: u64 = 250_000;
    let value = Bytes::from(vec![b'v'; 34]);
    let build = || -> Vec<Mutation> {
        (0..N)
            .map(|i| {
                let mut m = mutation(i, [row(Bytes::new(), &value)]);
                m.rows[0].cells = (0..5)
                    .map(|c| Cell {
                        column: c,
                        path: None,
                        timestamp: 1,
                        value: CellValue::Live {
                            value: value.clone(),
                            ttl: None,
                        },
                    })
                    .collect();
                m
            })
            .collect()
    };
    let mut g = c.benchmark_group("memtable");
    g.sample_size(10);
    g.bench_function("insert_250k_random", |b| {
        b.iter_batched(
            build,
            |ms| {
                let mt = Memtable::default();
                for m in ms {
                    mt.apply(m);
                }
                mt
            },
            BatchSize::PerIteration,
        )
    });
    // A flush: the memtable written to an SSTable in ring order, then freed.
    let dir = tempfile::tempdir().unwrap();
    let mut generation = 0;
    g.bench_function("flush_250k", |b| {
        b.iter_batched(
            || {
                let mt = Memtable::default();
                for m in build() {
                    mt.apply(m);
                }
                mt
            },
            |mt| {
                generation += 1;
                let mut w = shoal_engine::sstable::Writer::create(
                    dir.path(),
                    T,
                    generation,
                    Default::default(),
                    N,
                    0.01,
                    None,
                )
                .unwrap();
                w.add_memtable(&mt).unwrap();
                let s = w.finish(0, Vec::new()).unwrap().unwrap();
                drop(mt);
                std::fs::remove_file(&s.path).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A major compaction of four flushed SSTables of 50k standard1-shaped partitions each
/// (random 34-byte values, keys drawn from 500k, so a few partitions are in two inputs).
fn compaction(c: &mut Criterion) {
    let mut x = 7u64;
    let mut rand = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 11
    };
    let sets: Vec<Vec<Mutation>> = (0..4)
        .map(|_| {
            (0..50_000)
                .map(|_| {
                    let mut m = mutation(rand() % 500_000, []);
                    let cells = (0..5)
                        .map(|c| Cell {
                            column: c,
                            path: None,
                            timestamp: 1,
                            value: CellValue::Live {
                                value: (0..34).map(|_| rand() as u8).collect::<Vec<u8>>().into(),
                                ttl: None,
                            },
                        })
                        .collect();
                    m.rows.push(Row {
                        cells,
                        ..Row::default()
                    });
                    m
                })
                .collect()
        })
        .collect();
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10);
    g.bench_function("major_4x50k_standard1", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let e = engine(dir.path());
                for set in &sets {
                    for m in set {
                        e.apply(vec![m.clone()], Box::new(|_| {})).unwrap();
                    }
                    e.flush(T).unwrap();
                }
                (dir, e)
            },
            |(dir, e)| {
                e.major_compact(T).unwrap();
                (dir, e)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = engine_benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches, sstable_write, memtable_structure, compaction
}
criterion_main!(engine_benches);

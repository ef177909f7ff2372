//! Large-run engine benchmark: random inserts (a data set several times the memtable),
//! point reads, and pages of rows from large partitions, with per-operation latencies and
//! the longest single write (a stall behind a flush or compaction shows up there). With the
//! `rocksdb-compare` feature the same workload runs against RocksDB in the same invocation,
//! WAL on and unsynced per write on both sides (Shoal: periodic commit-log sync).
//!
//! `cargo run --release -p shoal-engine --bin engine-bench [--features rocksdb-compare] --
//!     [--keys N] [--reads N] [--values 100,1000] [--memtable-mib N] [--dir PATH]`

use std::sync::Arc;
use std::time::{Duration, Instant};

// As in the node binary. RocksDB's C++ allocations are not affected (they use the C++
// runtime's operator new).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bytes::Bytes;
use shoal_engine::*;

const T: TableId = TableId([9; 16]);
const NOW: LocalTime = 2_000_000_000;

struct Args {
    keys: u64,
    reads: u64,
    values: Vec<usize>,
    memtable_mib: u64,
    big_partitions: u64,
    rows_per_partition: u64,
    pages: u64,
    dir: std::path::PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        keys: 400_000,
        reads: 100_000,
        values: vec![100, 1000],
        memtable_mib: 32,
        big_partitions: 20,
        rows_per_partition: 10_000,
        pages: 5_000,
        dir: std::env::temp_dir().join("shoal-engine-bench"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        let num = || val.parse::<u64>().expect("a number");
        match v[i].as_str() {
            "--keys" => a.keys = num(),
            "--reads" => a.reads = num(),
            "--memtable-mib" => a.memtable_mib = num(),
            "--big-partitions" => a.big_partitions = num(),
            "--rows-per-partition" => a.rows_per_partition = num(),
            "--pages" => a.pages = num(),
            "--values" => a.values = val.split(',').map(|x| x.parse().expect("sizes")).collect(),
            "--dir" => a.dir = val.into(),
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    a
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn token(k: u64) -> i64 {
    let mut z = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}

#[derive(Default)]
struct Lat(Vec<u32>);

impl Lat {
    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.0
            .push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        r
    }

    fn report(&mut self, what: &str, system: &str, total: Duration, ops: u64) {
        self.0.sort_unstable();
        let p = |q: f64| {
            let i = ((self.0.len() as f64 * q) as usize).min(self.0.len().saturating_sub(1));
            self.0.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "| {what} | {system} | {:.0} | {:.1} | {:.1} | {:.1} |",
            ops as f64 / total.as_secs_f64(),
            p(0.50),
            p(0.99),
            self.0.last().copied().unwrap_or(0) as f64 / 1000.0,
        );
    }
}

fn value_of(k: u64, size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size);
    let mut r = Rng(k | 1);
    while v.len() < size {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

fn cell(v: Bytes) -> Cell {
    Cell {
        column: 1,
        path: None,
        timestamp: 1,
        value: CellValue::Live {
            value: v,
            ttl: None,
        },
    }
}

fn mutation(k: u64, rows: Vec<Row>) -> Mutation {
    Mutation {
        table: T,
        token: token(k),
        key: Bytes::from(k.to_be_bytes().to_vec()),
        partition_deletion: None,
        range_tombstones: vec![],
        static_row: None,
        rows,
    }
}

fn single(k: u64) -> ReadCommand {
    ReadCommand {
        table: T,
        partitions: PartitionRange::Single {
            token: token(k),
            key: Bytes::from(k.to_be_bytes().to_vec()),
        },
        slices: vec![],
        reversed: false,
        start_after_row: None,
        row_limit: usize::MAX,
        per_partition_limit: usize::MAX,
        partition_limit: usize::MAX,
        include_tombstones: false,
        now: NOW,
    }
}

/// A store under test: the same logical operations on Shoal and RocksDB.
trait Store {
    fn name(&self) -> &'static str;
    fn insert(&self, k: u64, v: Bytes);
    fn insert_rows(&self, k: u64, rows: &[(u64, Bytes)]);
    fn get(&self, k: u64) -> bool;
    /// Up to `n` rows of partition `k` after clustering `after`; returns how many.
    fn page(&self, k: u64, after: u64, n: usize) -> usize;
    fn flush(&self);
    fn settle(&self) {}
    fn describe(&self) -> String {
        String::new()
    }
}

struct Shoal(Engine);

impl Store for Shoal {
    fn name(&self) -> &'static str {
        "Shoal"
    }
    fn insert(&self, k: u64, v: Bytes) {
        let row = Row {
            clustering: Bytes::new(),
            cells: vec![cell(v)],
            ..Row::default()
        };
        self.0
            .apply(vec![mutation(k, vec![row])], Box::new(|r| r.unwrap()))
            .unwrap();
    }
    fn insert_rows(&self, k: u64, rows: &[(u64, Bytes)]) {
        let rows = rows
            .iter()
            .map(|(c, v)| Row {
                clustering: Bytes::from(c.to_be_bytes().to_vec()),
                cells: vec![cell(v.clone())],
                ..Row::default()
            })
            .collect();
        self.0
            .apply(vec![mutation(k, rows)], Box::new(|r| r.unwrap()))
            .unwrap();
    }
    fn get(&self, k: u64) -> bool {
        !self.0.read(&single(k)).unwrap().partitions.is_empty()
    }
    fn page(&self, k: u64, after: u64, n: usize) -> usize {
        let mut c = single(k);
        c.row_limit = n;
        c.start_after_row = Some(Bytes::from(after.to_be_bytes().to_vec()));
        self.0
            .read(&c)
            .unwrap()
            .partitions
            .first()
            .map_or(0, |p| p.rows.len())
    }
    fn flush(&self) {
        self.0.flush_all().unwrap();
    }
    fn settle(&self) {
        // Let background compaction catch up, so reads see the steady state.
        let t = Instant::now();
        while self.0.stats().pending_compactions > 0 && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn describe(&self) -> String {
        let s = self.0.stats();
        format!(
            "sstables {}, {} MiB on disk, {} flushes, {} compactions ({} MiB in), {} delayed and {} blocked writes",
            s.sstables,
            s.sstable_bytes >> 20,
            s.flushes,
            s.compactions_completed,
            s.bytes_compacted >> 20,
            s.delayed_writes,
            s.throttled_writes
        )
    }
}

#[cfg(feature = "rocksdb-compare")]
struct Rocks(rocksdb::DB);

#[cfg(feature = "rocksdb-compare")]
impl Rocks {
    fn key(k: u64, c: Option<u64>) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(&((token(k) as u64) ^ (1 << 63)).to_be_bytes());
        v.extend_from_slice(&k.to_be_bytes());
        if let Some(c) = c {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v
    }
}

#[cfg(feature = "rocksdb-compare")]
impl Store for Rocks {
    fn name(&self) -> &'static str {
        "RocksDB"
    }
    fn insert(&self, k: u64, v: Bytes) {
        // WAL on, no fsync per write: the same durability as Shoal's periodic sync.
        self.0.put(Self::key(k, None), &v).unwrap();
    }
    fn insert_rows(&self, k: u64, rows: &[(u64, Bytes)]) {
        let mut b = rocksdb::WriteBatch::default();
        for (c, v) in rows {
            b.put(Self::key(k, Some(*c)), v);
        }
        self.0.write(b).unwrap();
    }
    fn get(&self, k: u64) -> bool {
        self.0.get_pinned(Self::key(k, None)).unwrap().is_some()
    }
    fn page(&self, k: u64, after: u64, n: usize) -> usize {
        let prefix = Self::key(k, None);
        let from = Self::key(k, Some(after + 1));
        let mut it = self.0.raw_iterator();
        it.seek(&from);
        let mut got = 0;
        while got < n && it.valid() {
            match it.key() {
                Some(key) if key.starts_with(&prefix) => {
                    std::hint::black_box(it.value());
                    got += 1;
                }
                _ => break,
            }
            it.next();
        }
        got
    }
    fn flush(&self) {
        self.0.flush().unwrap();
    }
}

fn run(store: &dyn Store, a: &Args, value_size: usize) {
    let mut rng = Rng(0x1234_5678);
    let keys: Vec<u64> = (0..a.keys).map(|_| rng.next() >> 1).collect();
    let mut lat = Lat::default();
    let t = Instant::now();
    for k in &keys {
        let v = value_of(*k, value_size);
        lat.time(|| store.insert(*k, v));
    }
    let total = t.elapsed();
    lat.report(
        &format!("insert {value_size} B"),
        store.name(),
        total,
        a.keys,
    );
    // Large partitions, written in batches of 100 rows.
    for p in 0..a.big_partitions {
        let k = (1 << 62) + p;
        for chunk in 0..a.rows_per_partition / 100 {
            let rows: Vec<(u64, Bytes)> = (chunk * 100..(chunk + 1) * 100)
                .map(|c| (c, value_of(c ^ k, value_size)))
                .collect();
            store.insert_rows(k, &rows);
        }
    }
    store.flush();
    store.settle();
    let mut lat = Lat::default();
    let t = Instant::now();
    for _ in 0..a.reads {
        let k = keys[(rng.next() % a.keys) as usize];
        let found = lat.time(|| store.get(k));
        assert!(found, "{} lost key {k}", store.name());
    }
    lat.report(
        &format!("point read {value_size} B"),
        store.name(),
        t.elapsed(),
        a.reads,
    );
    let mut lat = Lat::default();
    let t = Instant::now();
    let mut rows = 0;
    for _ in 0..a.pages {
        let k = (1 << 62) + rng.next() % a.big_partitions.max(1);
        let after = rng.next() % a.rows_per_partition.saturating_sub(100).max(1);
        rows += lat.time(|| store.page(k, after, 100));
    }
    assert_eq!(
        rows as u64,
        a.pages * 100,
        "{} pages came up short",
        store.name()
    );
    lat.report(
        &format!("scan page of 100 rows, {value_size} B"),
        store.name(),
        t.elapsed(),
        a.pages,
    );
    let d = store.describe();
    if !d.is_empty() {
        println!("|  | {} state: {d} | | | | |", store.name());
    }
}

fn main() {
    shoal_engine::alloc::keep_freed_memory();
    let a = args();
    println!(
        "keys {} per value size, {} point reads, {} large partitions x {} rows, {} pages of 100 rows, memtable {} MiB",
        a.keys, a.reads, a.big_partitions, a.rows_per_partition, a.pages, a.memtable_mib
    );
    println!("| operation | store | ops/s | p50 us | p99 us | max us |");
    println!("|---|---|---|---|---|---|");
    for &size in &a.values {
        let dir = a.dir.join(format!("shoal-{size}"));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = EngineConfig {
            data_dir: dir.join("data"),
            commitlog_dir: dir.join("commitlog"),
            commitlog_sync: CommitLogSync::Periodic { period_ms: 10_000 },
            memtable_space_bytes: a.memtable_mib << 20,
            ..EngineConfig::default()
        };
        let tuning = EngineTuning {
            clock: Clock::manual(Arc::new(std::sync::atomic::AtomicI32::new(NOW))),
            ..EngineTuning::default()
        };
        let e = Engine::open_with(cfg, tuning, vec![(T, TableOptions::default())]).unwrap();
        let shoal = Shoal(e);
        run(&shoal, &a, size);
        shoal.0.shutdown().unwrap();
        drop(shoal);
        let _ = std::fs::remove_dir_all(&dir);

        #[cfg(feature = "rocksdb-compare")]
        {
            let dir = a.dir.join(format!("rocksdb-{size}"));
            let _ = std::fs::remove_dir_all(&dir);
            let mut o = rocksdb::Options::default();
            o.create_if_missing(true);
            o.set_write_buffer_size((a.memtable_mib << 20) as usize);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            let db = rocksdb::DB::open(&o, &dir).unwrap();
            let r = Rocks(db);
            run(&r, &a, size);
            drop(r);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

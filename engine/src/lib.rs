//! Shoal's storage engine.
//!
//! A log-structured store: every write goes to the commit log and a memtable; memtables
//! are flushed to immutable SSTables; compaction merges SSTables; start-up replays the
//! commit log. The engine knows partitions, clustering keys and cells, not CQL: see
//! [`model`] for the contract and `docs/formats/` for every file it writes.
//!
//! Memtables are flushed to simple SSTables (see [`sstable`]) when they outgrow
//! `memtable_space_bytes`, and commit-log segments are deleted once every table's data in
//! them is flushed. Compaction is not there yet: SSTables accumulate.

mod codec;
pub mod commitlog;
pub mod error;
pub mod memtable;
pub mod meta;
pub mod model;
mod read;
pub mod reconcile;
pub mod sstable;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

pub use codec::{DecodeError, MUTATION_FORMAT_VERSION, decode_mutations, encode_mutations};
use commitlog::{CommitLog, ReplayPosition};
pub use error::{EngineError, Result};
use memtable::Memtable;
use meta::EngineMeta;
pub use model::*;
pub use read::ReadResult;
use sstable::SsTable;

/// Engine settings (the storage part of cassandra.yaml).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where SSTables and engine metadata go (created if missing).
    pub data_dir: PathBuf,
    pub commitlog_dir: PathBuf,
    pub commitlog_sync: CommitLogSync,
    pub commitlog_segment_size: u64,
    /// memtable_heap_space: above it, the largest memtable is flushed to an SSTable.
    pub memtable_space_bytes: u64,
    /// Skip a corrupt commit-log entry followed by valid ones instead of refusing to start.
    pub skip_corrupt_commitlog_entries: bool,
    pub tombstone_warn_threshold: usize,
    pub tombstone_failure_threshold: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("./data/data"),
            commitlog_dir: PathBuf::from("./data/commitlog"),
            commitlog_sync: CommitLogSync::Periodic { period_ms: 10_000 },
            commitlog_segment_size: 32 << 20,
            memtable_space_bytes: 256 << 20,
            skip_corrupt_commitlog_entries: false,
            tombstone_warn_threshold: 1000,
            tombstone_failure_threshold: 100_000,
        }
    }
}

/// A snapshot of the engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub tables: usize,
    /// Approximate bytes held by all memtables.
    pub memtable_bytes: u64,
    pub memtable_partitions: usize,
    /// Commit-log segment files on disk.
    pub commitlog_segments: usize,
    pub commitlog_bytes_written: u64,
    pub commitlog_syncs: u64,
    /// Applied `apply` calls (each one commit-log entry).
    pub writes: u64,
    pub mutations: u64,
    pub reads: u64,
    /// Entries replayed at open.
    pub replayed_entries: u64,
    /// Corrupt entries skipped at open (skip_corrupt_commitlog_entries).
    pub replay_skipped_corrupt: u64,
    /// Whether open dropped a torn commit-log tail.
    pub replay_torn_tail: bool,
    pub sstables: usize,
    pub flushes: u64,
    /// Commit-log segments deleted because their data was flushed.
    pub commitlog_segments_discarded: u64,
}

/// What a table's reads see. Replaced as a whole (copy-on-write) so a reader always gets a
/// consistent set: a memtable being flushed is in `flushing` until its SSTable is in
/// `sstables`, never in neither or both.
#[derive(Clone)]
struct TableData {
    memtable: Arc<Memtable>,
    /// Switched-out memtables being written, oldest first, with their switch position.
    flushing: Vec<(Arc<Memtable>, ReplayPosition)>,
    sstables: Vec<Arc<SsTable>>,
}

struct Table {
    id: TableId,
    options: RwLock<TableOptions>,
    data: RwLock<TableData>,
    /// Commit-log entries of this table before this position are not needed for it
    /// (flushed or truncated).
    floor: Mutex<ReplayPosition>,
    next_generation: AtomicU64,
}

impl Table {
    fn new(id: TableId, options: TableOptions) -> Table {
        Table {
            id,
            options: RwLock::new(options),
            data: RwLock::new(TableData {
                memtable: Arc::new(Memtable::default()),
                flushing: Vec::new(),
                sstables: Vec::new(),
            }),
            floor: Mutex::new(ReplayPosition::default()),
            next_generation: AtomicU64::new(1),
        }
    }

    fn data(&self) -> TableData {
        self.data.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update<R>(&self, f: impl FnOnce(&mut TableData) -> R) -> R {
        f(&mut self.data.write().unwrap_or_else(|p| p.into_inner()))
    }

    fn memtable(&self) -> Arc<Memtable> {
        self.data
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .memtable
            .clone()
    }

    /// Whether the commit log holds data of this table not yet in an SSTable.
    fn dirty(&self) -> bool {
        let d = self.data.read().unwrap_or_else(|p| p.into_inner());
        !d.flushing.is_empty() || d.memtable.partition_count() > 0
    }

    /// Memtable bytes, flushing ones included.
    fn memtable_bytes(&self) -> u64 {
        let d = self.data.read().unwrap_or_else(|p| p.into_inner());
        d.memtable.bytes() + d.flushing.iter().map(|(m, _)| m.bytes()).sum::<u64>()
    }
}

/// Joins the two halves of a write's acknowledgement: the commit log's verdict and the end
/// of the memtable update. The callback runs once both are in, so an acknowledged write is
/// always visible to reads.
struct Completion {
    /// (parts still missing, first error, callback)
    state: Mutex<(u8, Result<()>, Option<OnDurable>)>,
}

/// The callback of [`Engine::apply`].
pub type OnDurable = Box<dyn FnOnce(Result<()>) + Send>;

impl Completion {
    fn new(cb: OnDurable) -> Completion {
        Completion {
            state: Mutex::new((2, Ok(()), Some(cb))),
        }
    }

    fn arrive(&self, r: Result<()>) {
        let fire = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_err() && s.1.is_ok() {
                s.1 = r;
            }
            s.0 -= 1;
            if s.0 == 0 {
                let res = std::mem::replace(&mut s.1, Ok(()));
                s.2.take().map(|cb| (cb, res))
            } else {
                None
            }
        };
        if let Some((cb, res)) = fire {
            cb(res);
        }
    }
}

/// The storage engine. `Send + Sync`; share it as `Arc<Engine>`.
pub struct Engine {
    inner: Arc<Inner>,
    flusher: Mutex<Option<(crossbeam::channel::Sender<()>, JoinHandle<()>)>>,
}

struct Inner {
    config: EngineConfig,
    tables: RwLock<HashMap<TableId, Arc<Table>>>,
    log: CommitLog,
    /// Writes hold it shared from logging to memtable update; operations that need "every
    /// entry before position P is in this memtable" (truncate, drop, memtable switch,
    /// segment discard) hold it exclusively while they take P.
    barrier: RwLock<()>,
    /// Serialises flushes, truncations and drops: SSTables of a table must be written in
    /// switch order, because start-up trusts the newest one's `covers_up_to`.
    flush_lock: Mutex<()>,
    meta: Mutex<EngineMeta>,
    closed: AtomicBool,
    writes: AtomicU64,
    mutations: AtomicU64,
    reads: AtomicU64,
    flushes: AtomicU64,
    segments_discarded: AtomicU64,
    replay: commitlog::ReplayStats,
}

fn io_err(path: &std::path::Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Engine {
    /// Opens the engine and replays the commit log. `tables` are the live tables (from the
    /// schema); log entries for other table ids are skipped (dropped tables).
    pub fn open(config: EngineConfig, tables: Vec<(TableId, TableOptions)>) -> Result<Engine> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| io_err(&config.data_dir, e))?;
        std::fs::create_dir_all(&config.commitlog_dir)
            .map_err(|e| io_err(&config.commitlog_dir, e))?;
        let meta = EngineMeta::load(&config.data_dir)?;
        let mut map: HashMap<TableId, Arc<Table>> = HashMap::new();
        let mut max_segment = meta.max_segment();
        for (id, options) in tables {
            let t = Table::new(id, options);
            let truncated = meta.truncated.get(&id).copied().unwrap_or_default();
            let mut floor = truncated;
            let mut live = Vec::new();
            for s in sstable::open_all(&config.data_dir, &id)? {
                t.next_generation
                    .fetch_max(s.generation + 1, Ordering::Relaxed);
                if s.covers_up_to <= truncated {
                    // Written before a truncation whose cleanup a crash interrupted.
                    sstable::delete(&s.path)?;
                    continue;
                }
                floor = floor.max(s.covers_up_to);
                live.push(Arc::new(s));
            }
            max_segment = max_segment.max(floor.segment);
            t.update(|d| d.sstables = live);
            *t.floor.lock().unwrap_or_else(|p| p.into_inner()) = floor;
            map.insert(id, Arc::new(t));
        }
        let floors: HashMap<TableId, ReplayPosition> = map
            .iter()
            .map(|(id, t)| (*id, *t.floor.lock().unwrap_or_else(|p| p.into_inner())))
            .collect();
        let started = std::time::Instant::now();
        let replay = commitlog::replay(
            &config.commitlog_dir,
            config.skip_corrupt_commitlog_entries,
            |pos, mutations| {
                for m in mutations {
                    let (Some(t), Some(floor)) = (map.get(&m.table), floors.get(&m.table)) else {
                        continue;
                    };
                    if pos >= *floor {
                        t.memtable().apply(m);
                    }
                }
            },
        )?;
        tracing::info!(
            entries = replay.entries,
            bytes = replay.bytes,
            segments = replay.segments,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "commit log replayed"
        );
        commitlog::repair_torn_tail(&config.commitlog_dir, &replay)?;
        if !replay.empty_segments.is_empty() {
            for p in &replay.empty_segments {
                match std::fs::remove_file(p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_err(p, e));
                    }
                    _ => {}
                }
            }
            commitlog::sync_dir(&config.commitlog_dir)?;
        }
        // New writes go to a fresh segment after every existing one and after every
        // position a truncation record or SSTable names, so positions only ever grow.
        let first_segment = replay
            .max_segment_id
            .unwrap_or(0)
            .max(max_segment)
            .checked_add(1)
            .ok_or_else(|| EngineError::Corrupt {
                path: config.commitlog_dir.clone(),
                offset: 0,
                reason: "commit-log segment ids exhausted".into(),
            })?;
        let log = CommitLog::start(
            &config.commitlog_dir,
            first_segment,
            config.commitlog_segment_size,
            config.commitlog_sync,
        )?;
        let inner = Arc::new(Inner {
            config,
            tables: RwLock::new(map),
            log,
            barrier: RwLock::new(()),
            flush_lock: Mutex::new(()),
            meta: Mutex::new(meta),
            closed: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            segments_discarded: AtomicU64::new(0),
            replay,
        });
        let (tx, rx) = crossbeam::channel::bounded::<()>(1);
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("shoal-flush".into())
            .spawn(move || {
                for () in rx {
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = inner.flush_if_needed() {
                        tracing::error!(error = %e, "memtable flush failed");
                    }
                }
            })
            .map_err(|e| io_err(&inner.config.data_dir, e))?;
        // Replay may already have filled the memtables beyond the limit.
        let _ = tx.try_send(());
        Ok(Engine {
            inner,
            flusher: Mutex::new(Some((tx, handle))),
        })
    }

    /// Registers a table. Idempotent: an existing table keeps its data and options.
    pub fn create_table(&self, id: TableId, options: TableOptions) -> Result<()> {
        self.inner.create_table(id, options)
    }

    pub fn alter_table(&self, id: TableId, options: TableOptions) -> Result<()> {
        self.inner.check_open()?;
        let t = self.inner.table(&id)?;
        *t.options.write().unwrap_or_else(|p| p.into_inner()) = options;
        Ok(())
    }

    /// The options a table was created or last altered with.
    pub fn table_options(&self, id: TableId) -> Result<TableOptions> {
        let t = self.inner.table(&id)?;
        let o = t.options.read().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(o)
    }

    /// Forgets a table and discards its data (memtable and SSTables). Its commit-log entries
    /// are fenced off like a truncation's, so they stay dead even if a table with the same
    /// id is created again.
    pub fn drop_table(&self, id: TableId) -> Result<()> {
        self.inner.drop_table(id)
    }

    /// Discards a table's data, durably: replay skips its entries logged before this call
    /// and its SSTables are deleted.
    pub fn truncate(&self, id: TableId) -> Result<()> {
        self.inner.truncate(id)
    }

    /// Logs the mutations as ONE commit-log entry (atomic on replay), applies them to
    /// memtables, then calls `on_durable` once the write may be acknowledged under the sync
    /// mode. `on_durable` may run on the commit-log thread: it must not block (in
    /// particular, must not call `apply_sync`). If this returns an error, nothing was applied
    /// and `on_durable` is never called.
    pub fn apply(&self, mutations: Vec<Mutation>, on_durable: OnDurable) -> Result<()> {
        let need_flush = self.inner.apply(mutations, on_durable)?;
        if need_flush
            && let Some((tx, _)) = &*self.flusher.lock().unwrap_or_else(|p| p.into_inner())
        {
            // A flush already requested covers this one.
            let _ = tx.try_send(());
        }
        Ok(())
    }

    /// Blocking convenience: apply and wait for durability.
    pub fn apply_sync(&self, mutations: Vec<Mutation>) -> Result<()> {
        let (tx, rx) = crossbeam::channel::bounded(1);
        self.apply(
            mutations,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv()
            .unwrap_or_else(|_| Err(EngineError::Closed("write abandoned".into())))
    }

    /// Merged read (see [`ReadCommand`]). Live data only unless `include_tombstones`.
    pub fn read(&self, cmd: &ReadCommand) -> Result<ReadResult> {
        self.inner.read(cmd)
    }

    /// Flushes a table's memtable to an SSTable now (and discards commit-log segments that
    /// no longer hold unflushed data).
    pub fn flush(&self, id: TableId) -> Result<()> {
        self.inner.check_open()?;
        let t = self.inner.table(&id)?;
        self.inner.flush_table(&t)?;
        self.inner.discard_segments()
    }

    /// Flushes every table (drain).
    pub fn flush_all(&self) -> Result<()> {
        self.inner.check_open()?;
        let tables: Vec<_> = self.inner.tables_snapshot();
        for t in tables {
            self.inner.flush_table(&t)?;
        }
        self.inner.discard_segments()
    }

    /// Syncs the commit log now (drain, shutdown).
    pub fn sync_commitlog(&self) -> Result<()> {
        self.inner.check_open()?;
        self.inner.log.sync()
    }

    /// Syncs the log and stops the engine's threads. Idempotent. Memtables are not flushed
    /// (the commit log holds their data); call [`Engine::flush_all`] first to drain.
    pub fn shutdown(&self) -> Result<()> {
        if let Some((tx, handle)) = self
            .flusher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            drop(tx);
            let _ = handle.join();
        }
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Let in-flight writes and flushes finish before the writer stops.
        let _flush = self
            .inner
            .flush_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let _excl = self
            .inner
            .barrier
            .write()
            .unwrap_or_else(|p| p.into_inner());
        self.inner.log.shutdown()
    }

    pub fn stats(&self) -> EngineStats {
        let inner = &self.inner;
        let tables = inner.tables_snapshot();
        let (mut bytes, mut parts, mut sstables) = (0, 0, 0);
        for t in &tables {
            let d = t.data();
            bytes += t.memtable_bytes();
            parts += d.memtable.partition_count();
            sstables += d.sstables.len();
        }
        let c = &inner.log.counters;
        EngineStats {
            tables: tables.len(),
            memtable_bytes: bytes,
            memtable_partitions: parts,
            commitlog_segments: commitlog::list_segments(&inner.config.commitlog_dir)
                .map(|s| s.len())
                .unwrap_or(0),
            commitlog_bytes_written: c.bytes_written.load(Ordering::Relaxed),
            commitlog_syncs: c.syncs.load(Ordering::Relaxed),
            writes: inner.writes.load(Ordering::Relaxed),
            mutations: inner.mutations.load(Ordering::Relaxed),
            reads: inner.reads.load(Ordering::Relaxed),
            replayed_entries: inner.replay.entries,
            replay_skipped_corrupt: inner.replay.skipped_corrupt,
            replay_torn_tail: inner.replay.torn_tail,
            sstables,
            flushes: inner.flushes.load(Ordering::Relaxed),
            commitlog_segments_discarded: inner.segments_discarded.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EngineError::Closed("engine shut down".into()));
        }
        Ok(())
    }

    fn table(&self, id: &TableId) -> Result<Arc<Table>> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or(EngineError::UnknownTable(*id))
    }

    fn tables_snapshot(&self) -> Vec<Arc<Table>> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn create_table(&self, id: TableId, options: TableOptions) -> Result<()> {
        self.check_open()?;
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        if tables.contains_key(&id) {
            return Ok(());
        }
        // A table created again with the id of one dropped in this process: its old log
        // entries stay fenced off by the drop's truncation record.
        let t = Table::new(id, options);
        if let Some(p) = self
            .meta
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .truncated
            .get(&id)
        {
            *t.floor.lock().unwrap_or_else(|p| p.into_inner()) = *p;
        }
        tables.insert(id, Arc::new(t));
        Ok(())
    }

    fn drop_table(&self, id: TableId) -> Result<()> {
        self.check_open()?;
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
        self.table(&id)?;
        self.record_truncation(id)?;
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        sstable::delete_table_dir(&self.config.data_dir, &id)
    }

    fn truncate(&self, id: TableId) -> Result<()> {
        self.check_open()?;
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = {
            let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
            let t = self.table(&id)?;
            let pos = self.record_truncation(id)?;
            *t.floor.lock().unwrap_or_else(|p| p.into_inner()) = pos;
            t.update(|d| {
                let old = std::mem::take(&mut d.sstables);
                d.memtable = Arc::new(Memtable::default());
                d.flushing.clear();
                old
            })
        };
        // The truncation record already hides these at start-up if a crash stops us here.
        for s in old {
            sstable::delete(&s.path)?;
        }
        Ok(())
    }

    fn record_truncation(&self, id: TableId) -> Result<ReplayPosition> {
        let pos: ReplayPosition = self.log.position()?;
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = meta.clone();
        next.truncated.insert(id, pos);
        next.store(&self.config.data_dir)?;
        *meta = next;
        Ok(pos)
    }

    /// Returns whether memtables now exceed their space.
    fn apply(&self, mutations: Vec<Mutation>, on_durable: OnDurable) -> Result<bool> {
        self.check_open()?;
        let targets = {
            let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
            mutations
                .iter()
                .map(|m| {
                    tables
                        .get(&m.table)
                        .cloned()
                        .ok_or(EngineError::UnknownTable(m.table))
                })
                .collect::<Result<Vec<_>>>()?
        };
        let mut payload = Vec::with_capacity(256);
        encode_mutations(&mutations, &mut payload);
        let entry = commitlog::encode_entry(&payload);
        if entry.len() as u64 > self.log.max_entry_size() {
            return Err(EngineError::MutationTooLarge {
                size: entry.len() as u64,
                max: self.log.max_entry_size(),
            });
        }
        let completion = Arc::new(Completion::new(on_durable));
        {
            let _shared = self.barrier.read().unwrap_or_else(|p| p.into_inner());
            let c = completion.clone();
            self.log.submit(entry, Box::new(move |r| c.arrive(r)))?;
            let n = mutations.len() as u64;
            for (m, t) in mutations.into_iter().zip(targets) {
                t.memtable().apply(m);
            }
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.mutations.fetch_add(n, Ordering::Relaxed);
        }
        completion.arrive(Ok(()));
        Ok(self.memtable_bytes() > self.config.memtable_space_bytes)
    }

    fn memtable_bytes(&self) -> u64 {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|t| t.memtable_bytes())
            .sum()
    }

    fn read(&self, cmd: &ReadCommand) -> Result<ReadResult> {
        self.check_open()?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let d = self.table(&cmd.table)?.data();
        // Newest first is irrelevant to correctness (merging is commutative) but the
        // active memtable is the likeliest to hold the partition.
        let mut memtables = vec![d.memtable];
        memtables.extend(d.flushing.into_iter().map(|(m, _)| m));
        let r = read::read_sources(
            &memtables,
            &d.sstables,
            cmd,
            read::Thresholds {
                warn: self.config.tombstone_warn_threshold,
                fail: self.config.tombstone_failure_threshold,
            },
        )?;
        for w in &r.warnings {
            tracing::warn!("{w}");
        }
        Ok(r)
    }

    /// Flushes the largest memtables until they fit in their space again.
    fn flush_if_needed(&self) -> Result<()> {
        while !self.closed.load(Ordering::Acquire)
            && self.memtable_bytes() > self.config.memtable_space_bytes
        {
            let Some(t) = self
                .tables_snapshot()
                .into_iter()
                .max_by_key(|t| t.memtable().bytes())
            else {
                break;
            };
            if t.memtable().bytes() == 0 {
                break;
            }
            self.flush_table(&t)?;
            self.discard_segments()?;
        }
        Ok(())
    }

    /// Switches a table's memtable out and writes it (and any earlier one whose flush
    /// failed) to SSTables, in switch order.
    fn flush_table(&self, t: &Arc<Table>) -> Result<()> {
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.check_open()?;
        // Dropped while we waited for the lock: its files are gone and must stay gone.
        if !self.table(&t.id).is_ok_and(|cur| Arc::ptr_eq(&cur, t)) {
            return Ok(());
        }
        {
            let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
            if t.memtable().partition_count() > 0 {
                let pos = self.log.position()?;
                t.update(|d| {
                    let old = std::mem::replace(&mut d.memtable, Arc::new(Memtable::default()));
                    d.flushing.push((old, pos));
                });
            }
        }
        loop {
            let Some((mt, pos)) = t.data().flushing.first().cloned() else {
                return Ok(());
            };
            let generation = t.next_generation.fetch_add(1, Ordering::Relaxed);
            let written = sstable::write(&self.config.data_dir, t.id, generation, pos, &mt)?;
            t.update(|d| {
                d.flushing.retain(|(m, _)| !Arc::ptr_eq(m, &mt));
                if let Some(s) = written {
                    d.sstables.push(Arc::new(s));
                }
            });
            *t.floor.lock().unwrap_or_else(|p| p.into_inner()) = pos;
            self.flushes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(generation, bytes = mt.bytes(), "memtable flushed");
        }
    }

    /// Deletes the commit-log segments that hold no unflushed data of any table.
    fn discard_segments(&self) -> Result<()> {
        let keep_from = {
            // Exclusive, so no write is between "logged" and "in a memtable" while we look.
            let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
            let mut keep = self.log.position()?.segment;
            for t in self.tables_snapshot() {
                if t.dirty() {
                    keep = keep.min(t.floor.lock().unwrap_or_else(|p| p.into_inner()).segment);
                }
            }
            keep
        };
        let mut n = 0;
        for (id, path) in commitlog::list_segments(&self.config.commitlog_dir)? {
            if id >= keep_from {
                break;
            }
            std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            n += 1;
        }
        if n > 0 {
            commitlog::sync_dir(&self.config.commitlog_dir)?;
            self.segments_discarded.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }
}

// The engine is shared across threads as `Arc<Engine>`.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
};

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

//! Shoal's storage engine.
//!
//! A log-structured store: every write goes to the commit log and a memtable; memtables
//! are flushed to immutable SSTables; compaction merges SSTables; start-up replays the
//! commit log. The engine knows partitions, clustering keys and cells, not CQL: see
//! [`model`] for the contract and `docs/formats/` for every file it writes.
//!
//! This milestone has the commit log and memtables; SSTables come next, behind the same API.

mod codec;
pub mod commitlog;
pub mod error;
pub mod memtable;
pub mod meta;
pub mod model;
mod read;
pub mod reconcile;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use codec::{DecodeError, MUTATION_FORMAT_VERSION, decode_mutations, encode_mutations};
use commitlog::{CommitLog, ReplayPosition};
pub use error::{EngineError, Result};
use memtable::Memtable;
use meta::EngineMeta;
pub use model::*;
pub use read::ReadResult;

/// Engine settings (the storage part of cassandra.yaml).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where SSTables and engine metadata go (created if missing).
    pub data_dir: PathBuf,
    pub commitlog_dir: PathBuf,
    pub commitlog_sync: CommitLogSync,
    pub commitlog_segment_size: u64,
    /// memtable_heap_space: above it memtables should be flushed.
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
}

struct Table {
    options: RwLock<TableOptions>,
    /// Swapped whole on truncate (and, later, on flush).
    memtable: RwLock<Arc<Memtable>>,
}

impl Table {
    fn new(options: TableOptions) -> Table {
        Table {
            options: RwLock::new(options),
            memtable: RwLock::new(Arc::new(Memtable::default())),
        }
    }

    fn memtable(&self) -> Arc<Memtable> {
        self.memtable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
    config: EngineConfig,
    tables: RwLock<HashMap<TableId, Arc<Table>>>,
    log: CommitLog,
    /// Writes hold it shared from logging to memtable update; truncate and drop hold it
    /// exclusively so "logged before the truncation position" equals "in the old memtable".
    barrier: RwLock<()>,
    meta: Mutex<EngineMeta>,
    closed: AtomicBool,
    memtable_warned: AtomicBool,
    writes: AtomicU64,
    mutations: AtomicU64,
    reads: AtomicU64,
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
        let tables: HashMap<TableId, Arc<Table>> = tables
            .into_iter()
            .map(|(id, o)| (id, Arc::new(Table::new(o))))
            .collect();
        let started = std::time::Instant::now();
        let replay = commitlog::replay(
            &config.commitlog_dir,
            config.skip_corrupt_commitlog_entries,
            |pos, mutations| {
                for m in mutations {
                    if meta.is_truncated(&m.table, pos) {
                        continue;
                    }
                    if let Some(t) = tables.get(&m.table) {
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
        // position a truncation record names, so positions only ever grow.
        let first_segment = replay
            .max_segment_id
            .unwrap_or(0)
            .max(meta.max_segment())
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
        Ok(Engine {
            config,
            tables: RwLock::new(tables),
            log,
            barrier: RwLock::new(()),
            meta: Mutex::new(meta),
            closed: AtomicBool::new(false),
            memtable_warned: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            replay,
        })
    }

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

    /// Registers a table. Idempotent: an existing table keeps its data and options.
    pub fn create_table(&self, id: TableId, options: TableOptions) -> Result<()> {
        self.check_open()?;
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_insert_with(|| Arc::new(Table::new(options)));
        Ok(())
    }

    pub fn alter_table(&self, id: TableId, options: TableOptions) -> Result<()> {
        self.check_open()?;
        let t = self.table(&id)?;
        *t.options.write().unwrap_or_else(|p| p.into_inner()) = options;
        Ok(())
    }

    /// The options a table was created or last altered with.
    pub fn table_options(&self, id: TableId) -> Result<TableOptions> {
        let t = self.table(&id)?;
        let o = t.options.read().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(o)
    }

    /// Forgets a table and discards its data. Its commit-log entries are fenced off like a
    /// truncation's, so they stay dead even if a table with the same id is created again.
    pub fn drop_table(&self, id: TableId) -> Result<()> {
        self.check_open()?;
        let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
        self.table(&id)?;
        self.record_truncation(id)?;
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Ok(())
    }

    /// Discards a table's data, durably: replay skips its entries logged before this call.
    pub fn truncate(&self, id: TableId) -> Result<()> {
        self.check_open()?;
        let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
        let t = self.table(&id)?;
        self.record_truncation(id)?;
        *t.memtable.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Memtable::default());
        Ok(())
    }

    fn record_truncation(&self, id: TableId) -> Result<()> {
        let pos: ReplayPosition = self.log.position()?;
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = meta.clone();
        next.truncated.insert(id, pos);
        next.store(&self.config.data_dir)?;
        *meta = next;
        Ok(())
    }

    /// Logs the mutations as ONE commit-log entry (atomic on replay), applies them to
    /// memtables, then calls `on_durable` once the write may be acknowledged under the sync
    /// mode. `on_durable` may run on another thread. If this returns an error, nothing was
    /// applied and `on_durable` is never called.
    pub fn apply(
        &self,
        mutations: Vec<Mutation>,
        on_durable: Box<dyn FnOnce(Result<()>) + Send>,
    ) -> Result<()> {
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
        self.check_memtable_space();
        completion.arrive(Ok(()));
        Ok(())
    }

    fn check_memtable_space(&self) {
        if self.memtable_warned.load(Ordering::Relaxed) {
            return;
        }
        let total: u64 = self
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|t| t.memtable().bytes())
            .sum();
        if total > self.config.memtable_space_bytes
            && !self.memtable_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                memtable_bytes = total,
                limit = self.config.memtable_space_bytes,
                "memtables exceed memtable_space_bytes; flushing to SSTables is not implemented \
                 yet, data stays in memory"
            );
        }
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
        self.check_open()?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let t = self.table(&cmd.table)?;
        let r = read::read_memtable(
            &t.memtable(),
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

    /// Syncs the commit log now (drain, shutdown).
    pub fn sync_commitlog(&self) -> Result<()> {
        self.check_open()?;
        self.log.sync()
    }

    /// Syncs the log and stops the engine's threads. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Let in-flight writes finish logging before the writer stops.
        let _excl = self.barrier.write().unwrap_or_else(|p| p.into_inner());
        self.log.shutdown()
    }

    pub fn stats(&self) -> EngineStats {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let (mut bytes, mut parts) = (0, 0);
        for t in tables.values() {
            let m = t.memtable();
            bytes += m.bytes();
            parts += m.partition_count();
        }
        let c = &self.log.counters;
        EngineStats {
            tables: tables.len(),
            memtable_bytes: bytes,
            memtable_partitions: parts,
            commitlog_segments: commitlog::list_segments(&self.config.commitlog_dir)
                .map(|s| s.len())
                .unwrap_or(0),
            commitlog_bytes_written: c.bytes_written.load(Ordering::Relaxed),
            commitlog_syncs: c.syncs.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            mutations: self.mutations.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            replayed_entries: self.replay.entries,
            replay_skipped_corrupt: self.replay.skipped_corrupt,
            replay_torn_tail: self.replay.torn_tail,
        }
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

//! Shoal's storage engine.
//!
//! A log-structured store: every write goes to the commit log and a memtable; memtables
//! are flushed to immutable SSTables; compaction merges SSTables; start-up replays the
//! commit log. The engine knows partitions, clustering keys and cells, not CQL: see
//! [`model`] for the contract and `docs/formats/` for every file it writes.
//!
//! Memtables are flushed in the background to SSTables (see [`sstable`]) when they outgrow
//! `memtable_space_bytes` (writes are throttled, not failed, when flushing falls behind), and
//! commit-log segments are deleted once every table's data in them is flushed. A compaction
//! thread merges SSTables per table strategy (see [`compaction`]), at a bounded throughput.

pub mod alloc;
mod codec;
pub mod commitlog;
pub mod compaction;
pub mod error;
pub mod memtable;
pub mod meta;
pub mod model;
mod read;
pub mod reconcile;
pub mod rowmap;
pub mod sstable;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

pub use codec::{DecodeError, MUTATION_FORMAT_VERSION, decode_mutations, encode_mutations};
use commitlog::{CommitLog, ReplayPosition};
pub use error::{EngineError, Result};
use memtable::Memtable;
use meta::EngineMeta;
pub use model::*;
pub use read::{ReadResult, live_counts, partition_to_mutation, reconcile_results};
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

/// A source of "now" (seconds since the epoch) for compaction's tombstone purge decisions.
/// Reads take their "now" from the [`ReadCommand`]; tests inject a manual clock here.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> LocalTime + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().min(i32::MAX as u64) as LocalTime)
        }))
    }

    /// A clock that reads `t` (tests move it by hand).
    pub fn manual(t: Arc<AtomicI32>) -> Clock {
        Clock(Arc::new(move || t.load(Ordering::SeqCst)))
    }

    pub fn now(&self) -> LocalTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now = {})", self.now())
    }
}

/// Storage settings added after [`EngineConfig`] was fixed: kept apart so that code building
/// an `EngineConfig` literal keeps compiling. [`Engine::open`] uses the defaults.
#[derive(Clone, Debug)]
pub struct EngineTuning {
    /// compaction_throughput: bytes per second all compaction output may write (0 = no limit).
    pub compaction_throughput_bytes_per_sec: u64,
    /// Bloom filter false-positive chance of new SSTables (bloom_filter_fp_chance).
    pub bloom_filter_fp_chance: f64,
    /// Run compactions on the background thread. Off, they run only when forced
    /// ([`Engine::compact_all`], [`Engine::major_compact`]).
    pub background_compaction: bool,
    /// How often the compaction thread looks for work when nothing wakes it.
    pub compaction_interval: std::time::Duration,
    /// Writes block while memtables (flushing ones included) exceed this multiple of
    /// `memtable_space_bytes`, until a flush completes.
    pub write_throttle_factor: u64,
    /// Above three quarters of that limit each write is delayed to this rate (0 = never).
    pub delayed_write_rate_bytes_per_sec: u64,
    /// Uncompressed size at which new SSTables cut data blocks (tests use tiny blocks so
    /// that small partitions span many).
    pub sstable_block_bytes: usize,
    /// "now" for compaction's gc_grace_seconds decisions.
    pub clock: Clock,
}

impl Default for EngineTuning {
    fn default() -> Self {
        EngineTuning {
            compaction_throughput_bytes_per_sec: 64 << 20,
            bloom_filter_fp_chance: 0.01,
            background_compaction: true,
            compaction_interval: std::time::Duration::from_secs(1),
            write_throttle_factor: 2,
            delayed_write_rate_bytes_per_sec: 16 << 20,
            sstable_block_bytes: sstable::BLOCK_TARGET,
            clock: Clock::system(),
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
    /// SSTables per table.
    pub sstables_per_table: Vec<(TableId, usize)>,
    /// Bytes of all live SSTable files.
    pub sstable_bytes: u64,
    /// Memtables switched out and not yet written.
    pub pending_flushes: usize,
    /// Tables whose compaction strategy has work to do (running compaction included).
    pub pending_compactions: usize,
    pub compactions_completed: u64,
    /// Input bytes of completed compactions.
    pub bytes_compacted: u64,
    /// Tombstones (and expired cells) purged by compaction.
    pub tombstones_purged: u64,
    /// Partitions compaction copied without decoding (one input held them, with nothing
    /// to purge).
    pub partitions_copied: u64,
    /// Data blocks decoded from live SSTables (read amplification).
    pub sstable_blocks_read: u64,
    /// Writes that waited for a flush because memtables were over their throttle limit.
    pub throttled_writes: u64,
    /// Writes slowed down (not blocked) because memtables neared that limit.
    pub delayed_writes: u64,
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
    /// A compaction of this table is running (picking must skip the table).
    compacting: AtomicBool,
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
            compacting: AtomicBool::new(false),
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

/// What a writer should do after [`Engine::apply_deferred`] when flushing falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteDelay {
    /// Memtables are within bounds.
    None,
    /// Memtables are in the soft zone: hold back this long before acknowledging.
    Sleep(std::time::Duration),
    /// Memtables are over the hard limit: wait for a flush ([`Engine::wait_for_flush`]).
    WaitForFlush,
}

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
    compactor: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    config: EngineConfig,
    tuning: EngineTuning,
    limiter: Arc<sstable::RateLimiter>,
    /// Wakes the compaction thread (after flushes, option changes, shutdown).
    compaction_wake: crossbeam::channel::Sender<()>,
    /// One compaction at a time: the machine is small and compaction is I/O bound.
    compaction_lock: Mutex<()>,
    stop_compaction: AtomicBool,
    /// Signalled after every flush, for throttled writers.
    flushed: (Mutex<()>, Condvar),
    compactions: AtomicU64,
    bytes_compacted: AtomicU64,
    tombstones_purged: AtomicU64,
    partitions_copied: AtomicU64,
    throttled_writes: AtomicU64,
    delayed_writes: AtomicU64,
    tables: RwLock<HashMap<TableId, Arc<Table>>>,
    /// Bytes of all tables' memtables, flushing ones included. Kept as one counter because
    /// every write compares it with the memtable space, and summing it there took two
    /// read locks per table per write (4% of a write workload's CPU). Writes add to it;
    /// publishing a flush, truncating and dropping subtract what they discard, under the
    /// write barrier or after the memtable stopped taking writes, so it stays exact.
    memtable_total: AtomicU64,
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
        Self::open_with(config, EngineTuning::default(), tables)
    }

    /// [`Engine::open`] with explicit [`EngineTuning`].
    pub fn open_with(
        config: EngineConfig,
        tuning: EngineTuning,
        tables: Vec<(TableId, TableOptions)>,
    ) -> Result<Engine> {
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
            for s in open_table_sstables(&config.data_dir, &id)? {
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
        let (wake_tx, wake_rx) = crossbeam::channel::bounded::<()>(1);
        let inner = Arc::new(Inner {
            config,
            limiter: Arc::new(sstable::RateLimiter::new(
                tuning.compaction_throughput_bytes_per_sec,
            )),
            tuning,
            compaction_wake: wake_tx,
            compaction_lock: Mutex::new(()),
            stop_compaction: AtomicBool::new(false),
            flushed: (Mutex::new(()), Condvar::new()),
            compactions: AtomicU64::new(0),
            bytes_compacted: AtomicU64::new(0),
            tombstones_purged: AtomicU64::new(0),
            partitions_copied: AtomicU64::new(0),
            throttled_writes: AtomicU64::new(0),
            delayed_writes: AtomicU64::new(0),
            memtable_total: AtomicU64::new(map.values().map(|t| t.memtable_bytes()).sum()),
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
        let weak = Arc::downgrade(&inner);
        let interval = inner.tuning.compaction_interval;
        let compactor = std::thread::Builder::new()
            .name("shoal-compaction".into())
            .spawn(move || {
                loop {
                    match wake_rx.recv_timeout(interval) {
                        Ok(()) | Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam::channel::RecvTimeoutError::Disconnected) => return,
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.stop_compaction.load(Ordering::Acquire) {
                        return;
                    }
                    if !inner.tuning.background_compaction {
                        continue;
                    }
                    loop {
                        match inner.compact_step() {
                            Ok(true) if !inner.stop_compaction.load(Ordering::Acquire) => {}
                            Ok(_) => break,
                            Err(e) => {
                                // Shutdown interrupts a compaction on purpose.
                                if !inner.stop_compaction.load(Ordering::Acquire) {
                                    tracing::error!(error = %e, "compaction failed");
                                }
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|e| io_err(&inner.config.data_dir, e))?;
        // Replay may already have filled the memtables beyond the limit.
        let _ = tx.try_send(());
        Ok(Engine {
            inner,
            flusher: Mutex::new(Some((tx, handle))),
            compactor: Mutex::new(Some(compactor)),
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
        // The strategy is read from the options at every pick: a changed `compaction` map
        // takes effect at the next one, which this requests.
        let _ = self.inner.compaction_wake.try_send(());
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
        match self.apply_deferred(mutations, on_durable)? {
            WriteDelay::None => {}
            WriteDelay::Sleep(d) => std::thread::sleep(d),
            WriteDelay::WaitForFlush => self.wait_for_flush(),
        }
        Ok(())
    }

    /// [`Engine::apply`] for callers that must not block their thread (async runtimes):
    /// instead of sleeping when flushing falls behind, it says how long the writer should
    /// hold back before its next write (or that it should wait for a flush, blocking, with
    /// [`Engine::wait_for_flush`] on a thread that may block).
    pub fn apply_deferred(
        &self,
        mutations: Vec<Mutation>,
        on_durable: OnDurable,
    ) -> Result<WriteDelay> {
        let (need_flush, entry_len) = self.inner.apply(mutations, on_durable)?;
        if need_flush {
            self.request_flush();
        }
        Ok(self.inner.write_delay(entry_len))
    }

    /// Blocks until memtables are back under the hard limit (see [`WriteDelay`]).
    pub fn wait_for_flush(&self) {
        self.inner.wait_for_flush(|| self.request_flush());
    }

    fn request_flush(&self) {
        if let Some((tx, _)) = &*self.flusher.lock().unwrap_or_else(|p| p.into_inner()) {
            // A flush already requested covers this one.
            let _ = tx.try_send(());
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
        self.inner.stop_compaction.store(true, Ordering::Release);
        if let Some(handle) = self
            .compactor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = self.inner.compaction_wake.try_send(());
            let _ = handle.join();
        }
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
        let (mut per_table, mut sst_bytes, mut pending_flushes, mut pending_compactions) =
            (Vec::new(), 0, 0, 0);
        let mut blocks_read = 0;
        for t in &tables {
            let d = t.data();
            bytes += t.memtable_bytes();
            parts += d.memtable.partition_count();
            sstables += d.sstables.len();
            per_table.push((t.id, d.sstables.len()));
            sst_bytes += d.sstables.iter().map(|s| s.size).sum::<u64>();
            blocks_read += d.sstables.iter().map(|s| s.blocks_read()).sum::<u64>();
            pending_flushes += d.flushing.len();
            if t.compacting.load(Ordering::Acquire) || inner.pick(t).is_some() {
                pending_compactions += 1;
            }
        }
        per_table.sort();
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
            sstables_per_table: per_table,
            sstable_bytes: sst_bytes,
            pending_flushes,
            pending_compactions,
            compactions_completed: inner.compactions.load(Ordering::Relaxed),
            bytes_compacted: inner.bytes_compacted.load(Ordering::Relaxed),
            tombstones_purged: inner.tombstones_purged.load(Ordering::Relaxed),
            partitions_copied: inner.partitions_copied.load(Ordering::Relaxed),
            sstable_blocks_read: blocks_read,
            throttled_writes: inner.throttled_writes.load(Ordering::Relaxed),
            delayed_writes: inner.delayed_writes.load(Ordering::Relaxed),
        }
    }

    /// Runs the compactions the tables' strategies ask for until none is left (or, for a
    /// stuck strategy, a bounded number of rounds). Returns how many ran.
    pub fn compact_all(&self) -> Result<usize> {
        self.inner.check_open()?;
        let mut n = 0;
        while n < 1000 && self.inner.compact_step()? {
            n += 1;
        }
        Ok(n)
    }

    /// Merges every SSTable of the table into one (leveled: into level-1 files), purging
    /// what gc_grace_seconds allows.
    pub fn major_compact(&self, id: TableId) -> Result<()> {
        self.inner.check_open()?;
        let t = self.inner.table(&id)?;
        let gens: Vec<u64> = t.data().sstables.iter().map(|s| s.generation).collect();
        self.compact_generations(id, &gens)
    }

    /// Compacts exactly the given SSTables of a table (a subset of
    /// [`Engine::sstable_generations`]) into one output at level 0. For tests and tools:
    /// it is how a compaction that leaves older data outside is forced.
    pub fn compact_generations(&self, id: TableId, generations: &[u64]) -> Result<()> {
        self.inner.check_open()?;
        let t = self.inner.table(&id)?;
        if generations.is_empty() {
            return Ok(());
        }
        let max_output_size = match compaction::Strategy::from_options(
            &t.options
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .compaction,
        ) {
            compaction::Strategy::Leveled { sstable_size, .. } if generations.len() > 1 => {
                sstable_size
            }
            _ => u64::MAX,
        };
        let task = compaction::CompactionTask {
            inputs: generations.to_vec(),
            output_level: if max_output_size == u64::MAX { 0 } else { 1 },
            max_output_size,
        };
        let _one = self
            .inner
            .compaction_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.inner.run_compaction(&t, &task)
    }

    /// Live SSTable generations of a table, oldest first.
    pub fn sstable_generations(&self, id: TableId) -> Result<Vec<u64>> {
        let t = self.inner.table(&id)?;
        let mut g: Vec<u64> = t.data().sstables.iter().map(|s| s.generation).collect();
        g.sort_unstable();
        Ok(g)
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
        let t = self.table(&id)?;
        self.record_truncation(id)?;
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.discard_memtable_bytes(t.memtable_bytes());
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
            let discarded = t.memtable_bytes();
            let old = t.update(|d| {
                let old = std::mem::take(&mut d.sstables);
                d.memtable = Arc::new(Memtable::default());
                d.flushing.clear();
                old
            });
            self.discard_memtable_bytes(discarded);
            old
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
    /// Returns whether memtables now exceed their space, and the logged entry's size.
    fn apply(&self, mutations: Vec<Mutation>, on_durable: OnDurable) -> Result<(bool, u64)> {
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
        let entry_len = entry.len() as u64;
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
            let mut added = 0;
            for (m, t) in mutations.into_iter().zip(targets) {
                added += t.memtable().apply(m);
            }
            self.memtable_total.fetch_add(added, Ordering::Relaxed);
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.mutations.fetch_add(n, Ordering::Relaxed);
        }
        completion.arrive(Ok(()));
        Ok((
            self.memtable_bytes() > self.config.memtable_space_bytes,
            entry_len,
        ))
    }

    fn memtable_bytes(&self) -> u64 {
        self.memtable_total.load(Ordering::Relaxed)
    }

    fn discard_memtable_bytes(&self, n: u64) {
        let _ = self
            .memtable_total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
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
            let flush_started = std::time::Instant::now();
            let dir = sstable::table_dir(&self.config.data_dir, &t.id);
            std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            let mut w = sstable::Writer::create(
                &dir,
                t.id,
                generation,
                pos,
                mt.partition_count() as u64,
                self.tuning.bloom_filter_fp_chance,
                None,
            )?
            .with_block_target(self.tuning.sstable_block_bytes);
            w.add_memtable(&mt)?;
            let written = w.finish(0, Vec::new())?;
            let file_bytes = written.as_ref().map_or(0, |s| s.size);
            // The memtable stopped taking writes at the switch: its count is final.
            self.discard_memtable_bytes(mt.bytes());
            t.update(|d| {
                d.flushing.retain(|(m, _)| !Arc::ptr_eq(m, &mt));
                if let Some(s) = written {
                    d.sstables.push(Arc::new(s));
                }
            });
            *t.floor.lock().unwrap_or_else(|p| p.into_inner()) = pos;
            self.flushes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                generation,
                partitions = mt.partition_count(),
                memtable_bytes = mt.bytes(),
                file_bytes,
                elapsed_ms = flush_started.elapsed().as_millis() as u64,
                "memtable flushed"
            );
            {
                let _g = self.flushed.0.lock().unwrap_or_else(|p| p.into_inner());
                self.flushed.1.notify_all();
            }
            let _ = self.compaction_wake.try_send(());
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
            match std::fs::remove_file(&path) {
                Ok(()) => n += 1,
                // A concurrent discard (the flush thread and an explicit flush) got it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        if n > 0 {
            commitlog::sync_dir(&self.config.commitlog_dir)?;
            self.segments_discarded.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Inner {
    /// How a writer is held back when flushing falls behind. Soft zone, from three
    /// quarters of the hard limit: each write is delayed as if writes were capped at
    /// `delayed_write_rate`, so a flush that falls behind slows writers a little at a time
    /// instead of stopping them all at the hard limit.
    fn write_delay(&self, entry_len: u64) -> WriteDelay {
        let limit = self.hard_limit();
        let bytes = self.memtable_bytes();
        let soft = limit / 4 * 3;
        if bytes > soft && bytes <= limit && self.tuning.delayed_write_rate_bytes_per_sec > 0 {
            let micros =
                entry_len.saturating_mul(1_000_000) / self.tuning.delayed_write_rate_bytes_per_sec;
            self.delayed_writes.fetch_add(1, Ordering::Relaxed);
            return WriteDelay::Sleep(std::time::Duration::from_micros(micros.min(20_000)));
        }
        if bytes <= limit {
            return WriteDelay::None;
        }
        WriteDelay::WaitForFlush
    }

    fn hard_limit(&self) -> u64 {
        self.config
            .memtable_space_bytes
            .saturating_mul(self.tuning.write_throttle_factor.max(1))
    }

    fn wait_for_flush(&self, request_flush: impl Fn()) {
        let limit = self.hard_limit();
        if self.memtable_bytes() <= limit {
            return;
        }
        self.throttled_writes.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let mut g = self.flushed.0.lock().unwrap_or_else(|p| p.into_inner());
        while self.memtable_bytes() > limit && !self.closed.load(Ordering::Acquire) {
            // Timed, and re-requesting the flush: a failed flush never signals and is only
            // retried on request. If flushes keep failing for long, writers proceed (the
            // errors are logged) rather than hang forever.
            let (ng, timeout) = self
                .flushed
                .1
                .wait_timeout(g, std::time::Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner());
            g = ng;
            if timeout.timed_out() {
                request_flush();
                if started.elapsed() > std::time::Duration::from_secs(30) {
                    tracing::warn!("memtable flushes are failing; writes no longer throttled");
                    break;
                }
            }
        }
    }

    fn summaries(t: &Table) -> Vec<compaction::SstableSummary> {
        t.data()
            .sstables
            .iter()
            .map(|s| compaction::SstableSummary {
                generation: s.generation,
                size: s.size,
                level: s.stats.level,
                first: s.stats.first_key.clone(),
                last: s.stats.last_key.clone(),
            })
            .collect()
    }

    fn pick(&self, t: &Table) -> Option<compaction::CompactionTask> {
        let strategy = compaction::Strategy::from_options(
            &t.options
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .compaction,
        );
        compaction::pick(&strategy, &Self::summaries(t))
    }

    /// Runs one compaction a strategy asks for; returns whether one ran.
    fn compact_step(&self) -> Result<bool> {
        let _one = self
            .compaction_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for t in self.tables_snapshot() {
            if self.closed.load(Ordering::Acquire) || self.stop_compaction.load(Ordering::Acquire) {
                return Ok(false);
            }
            if let Some(task) = self.pick(&t) {
                self.run_compaction(&t, &task)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Merges `task.inputs` into new SSTables, then swaps them in. Callers hold
    /// `compaction_lock`.
    ///
    /// Durability order: outputs are written and fsynced; a commit record naming the inputs
    /// is written atomically; the live set is swapped; inputs are deleted; the record is
    /// deleted. Start-up finishes a committed compaction (deletes the inputs the record
    /// names) and discards outputs of an uncommitted one (SSTables whose ancestors still
    /// exist), so a crash at any point leaves exactly one copy of the data live.
    fn run_compaction(&self, t: &Arc<Table>, task: &compaction::CompactionTask) -> Result<()> {
        let started = std::time::Instant::now();
        let d = t.data();
        let inputs: Vec<Arc<SsTable>> = d
            .sstables
            .iter()
            .filter(|s| task.inputs.contains(&s.generation))
            .cloned()
            .collect();
        if inputs.len() != task.inputs.len() || inputs.is_empty() {
            return Ok(());
        }
        // A compaction can run for minutes: holding this snapshot would keep every memtable
        // of its moment alive (hundreds of MB each) long after they are flushed.
        drop(d);
        t.compacting.store(true, Ordering::Release);
        let _reset = ResetOnDrop(&t.compacting);
        let gc_grace = t
            .options
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .gc_grace_seconds;
        let gc_before = (self.tuning.clock.now() as i64 - gc_grace as i64)
            .clamp(i32::MIN as i64, i32::MAX as i64) as LocalTime;
        let covers = inputs
            .iter()
            .map(|s| s.covers_up_to)
            .max()
            .unwrap_or_default();
        let expected: u64 = inputs.iter().map(|s| s.stats.partitions).sum();
        let dir = sstable::table_dir(&self.config.data_dir, &t.id);
        let ancestors: Vec<u64> = task.inputs.clone();
        let mut outputs: Vec<SsTable> = Vec::new();
        let mut writer: Option<sstable::Writer> = None;
        let mut purged = 0u64;
        let in_bytes: u64 = inputs.iter().map(|s| s.size).sum();
        tracing::info!(
            inputs = ?task.inputs,
            in_bytes,
            partitions = expected,
            level = task.output_level,
            "compacting"
        );
        let mut merged_partitions = 0u64;
        let mut last_report = started;
        let mut copied = 0u64;
        // Readies the writer for the next partition: the current one, or a new one once the
        // current has reached the size at which outputs are split.
        let roll =
            |writer: &mut Option<sstable::Writer>, outputs: &mut Vec<SsTable>| -> Result<()> {
                if writer
                    .as_ref()
                    .is_some_and(|w| w.bytes_written() >= task.max_output_size)
                {
                    let w = writer.take().expect("checked");
                    if let Some(o) = w.finish(task.output_level, ancestors.clone())? {
                        outputs.push(o);
                    }
                }
                if writer.is_none() {
                    let generation = t.next_generation.fetch_add(1, Ordering::Relaxed);
                    *writer = Some(
                        sstable::Writer::create(
                            &dir,
                            t.id,
                            generation,
                            covers,
                            expected,
                            self.tuning.bloom_filter_fp_chance,
                            Some(self.limiter.clone()),
                        )?
                        .with_block_target(self.tuning.sstable_block_bytes),
                    );
                }
                Ok(())
            };
        let result = (|| -> Result<()> {
            let mut scans: Vec<_> = inputs.iter().map(|s| s.raw_scan().peekable()).collect();
            let mut found = Vec::with_capacity(inputs.len());
            loop {
                merged_partitions += 1;
                if merged_partitions.is_multiple_of(4096) && last_report.elapsed().as_secs() >= 10 {
                    last_report = std::time::Instant::now();
                    tracing::info!(
                        inputs = ?task.inputs,
                        partitions = merged_partitions,
                        of = expected,
                        percent = (merged_partitions * 100 / expected.max(1)).min(100),
                        written = outputs.iter().map(|o| o.size).sum::<u64>()
                            + writer.as_ref().map_or(0, |w| w.bytes_written()),
                        elapsed_s = started.elapsed().as_secs(),
                        "compaction progress"
                    );
                }
                if self.stop_compaction.load(Ordering::Acquire) {
                    return Err(EngineError::Closed("compaction interrupted".into()));
                }
                let mut min: Option<memtable::PartitionKey> = None;
                for sc in scans.iter_mut() {
                    match sc.peek() {
                        Some(Ok(p)) if min.as_ref().is_none_or(|m| p.key < *m) => {
                            min = Some(p.key.clone())
                        }
                        Some(Err(_)) => {
                            if let Some(Err(e)) = sc.next() {
                                return Err(e);
                            }
                        }
                        _ => {}
                    }
                }
                let Some(pk) = min else { break };
                found.clear();
                for (i, sc) in scans.iter_mut().enumerate() {
                    if matches!(sc.peek(), Some(Ok(p)) if p.key == pk)
                        && let Some(Ok(p)) = sc.next()
                    {
                        found.push((i, p));
                    }
                }
                // A partition only one input holds, in one chunk, with nothing to purge, is
                // copied as it is: decoding and re-encoding it would give the same bytes.
                let copy = match &found[..] {
                    [(i, p)] if inputs[*i].copyable() && p.single_chunk().is_some() => {
                        Some((*i, inputs[*i].outline(p)?))
                    }
                    _ => None,
                };
                if let Some((i, outline)) = copy {
                    let (_, p) = found.pop().expect("one");
                    let chunk = p.single_chunk().expect("checked");
                    roll(&mut writer, &mut outputs)?;
                    let w = writer.as_mut().expect("rolled");
                    w.add_chunk(
                        &pk,
                        chunk,
                        &outline,
                        &sstable::PartitionBounds::of_source(&inputs[i].stats),
                    )?;
                    copied += 1;
                    continue;
                }
                let mut merged: Option<memtable::PartitionState> = None;
                for (i, p) in found.drain(..) {
                    let (_, st) = inputs[i].decode_raw(p)?;
                    match &mut merged {
                        Some(m) => m.merge(st),
                        None => merged = Some(st),
                    }
                }
                let Some(mut st) = merged else { continue };
                // Whatever holds data of the table besides the inputs, as of now: memtables
                // flushed since the compaction began are among the SSTables by then.
                let max_purgeable = || {
                    let now = t.data();
                    if std::iter::once(&now.memtable)
                        .chain(now.flushing.iter().map(|(m, _)| m))
                        .any(|m| m.contains(&pk))
                    {
                        i64::MIN
                    } else {
                        now.sstables
                            .iter()
                            .filter(|o| !task.inputs.contains(&o.generation))
                            .filter(|o| o.may_contain(&pk))
                            .map(|o| o.stats.min_timestamp)
                            .min()
                            .unwrap_or(i64::MAX)
                    }
                };
                purged += compaction::purge(&mut st, gc_before, max_purgeable);
                roll(&mut writer, &mut outputs)?;
                writer.as_mut().expect("rolled").add(&pk, &st)?;
            }
            if let Some(w) = writer.take()
                && let Some(o) = w.finish(task.output_level, ancestors.clone())?
            {
                outputs.push(o);
            }
            Ok(())
        })();
        drop(writer);
        if let Err(e) = result {
            for o in &outputs {
                let _ = sstable::delete(&o.path);
            }
            return Err(e);
        }
        // Commit, serialised with truncations and drops (which take this lock too), so a
        // table truncated while we merged does not get its old data back.
        let _flush = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let still_live = self.table(&t.id).is_ok_and(|cur| Arc::ptr_eq(&cur, t))
            && !self.closed.load(Ordering::Acquire)
            && {
                let now = t.data();
                inputs
                    .iter()
                    .all(|i| now.sstables.iter().any(|s| Arc::ptr_eq(s, i)))
            };
        if !still_live {
            for o in &outputs {
                sstable::delete(&o.path)?;
            }
            return Ok(());
        }
        let record = write_compaction_record(&dir, &task.inputs)?;
        let outputs: Vec<Arc<SsTable>> = outputs.into_iter().map(Arc::new).collect();
        t.update(|d| {
            d.sstables.retain(|s| !task.inputs.contains(&s.generation));
            d.sstables.extend(outputs.iter().cloned());
        });
        for i in &inputs {
            std::fs::remove_file(&i.path).map_err(|e| io_err(&i.path, e))?;
        }
        commitlog::sync_dir(&dir)?;
        std::fs::remove_file(&record).map_err(|e| io_err(&record, e))?;
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.bytes_compacted.fetch_add(in_bytes, Ordering::Relaxed);
        self.tombstones_purged.fetch_add(purged, Ordering::Relaxed);
        self.partitions_copied.fetch_add(copied, Ordering::Relaxed);
        tracing::info!(
            inputs = ?task.inputs,
            outputs = ?outputs.iter().map(|o| o.generation).collect::<Vec<_>>(),
            in_bytes,
            out_bytes = outputs.iter().map(|o| o.size).sum::<u64>(),
            purged,
            copied,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compaction done"
        );
        Ok(())
    }
}

struct ResetOnDrop<'a>(&'a AtomicBool);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

const COMPACTION_RECORD_MAGIC: [u8; 8] = *b"SHOALCMP";

/// Writes the commit record of a compaction (atomically and durably): magic, u32 count,
/// u64 input generations, u32 CRC32 of everything before it.
fn write_compaction_record(dir: &std::path::Path, inputs: &[u64]) -> Result<PathBuf> {
    let first = inputs.iter().min().copied().unwrap_or(0);
    let path = dir.join(format!("compaction-{first:016}.log"));
    let tmp = dir.join(format!("compaction-{first:016}.log.tmp"));
    let mut buf = Vec::with_capacity(16 + 8 * inputs.len());
    buf.extend_from_slice(&COMPACTION_RECORD_MAGIC);
    buf.extend_from_slice(&(inputs.len() as u32).to_le_bytes());
    for g in inputs {
        buf.extend_from_slice(&g.to_le_bytes());
    }
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(&buf).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    commitlog::sync_dir(dir)?;
    Ok(path)
}

fn read_compaction_record(path: &std::path::Path) -> Result<Vec<u64>> {
    let buf = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let corrupt = || EngineError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: "malformed compaction record".into(),
    };
    if buf.len() < 16 || buf[0..8] != COMPACTION_RECORD_MAGIC {
        return Err(corrupt());
    }
    let n = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
    if n.checked_mul(8).and_then(|x| x.checked_add(16)) != Some(buf.len()) {
        return Err(corrupt());
    }
    let crc_at = buf.len() - 4;
    if crc32fast::hash(&buf[..crc_at]).to_le_bytes() != buf[crc_at..] {
        return Err(corrupt());
    }
    Ok((0..n)
        .map(|i| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[12 + 8 * i..20 + 8 * i]);
            u64::from_le_bytes(a)
        })
        .collect())
}

/// Opens a table's SSTables after finishing or undoing interrupted compactions.
fn open_table_sstables(data_dir: &std::path::Path, id: &TableId) -> Result<Vec<SsTable>> {
    let dir = sstable::table_dir(data_dir, id);
    let mut files = sstable::list(data_dir, id)?;
    // Committed compactions: their inputs go (the outputs are complete and durable).
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut records = Vec::new();
        for e in entries {
            let e = e.map_err(|e| io_err(&dir, e))?;
            let name = e.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.starts_with("compaction-") && n.ends_with(".log"))
            {
                records.push(e.path());
            }
        }
        for r in records {
            let inputs = read_compaction_record(&r)?;
            for (g, p) in &files {
                if inputs.contains(g) {
                    std::fs::remove_file(p).map_err(|e| io_err(p, e))?;
                }
            }
            files.retain(|(g, _)| !inputs.contains(g));
            commitlog::sync_dir(&dir)?;
            std::fs::remove_file(&r).map_err(|e| io_err(&r, e))?;
        }
    }
    let mut out = Vec::new();
    for (g, p) in files {
        out.push(SsTable::open(&p, g)?);
    }
    // Outputs of a compaction that never committed: their inputs are all still here.
    let present: std::collections::HashSet<u64> = out.iter().map(|s| s.generation).collect();
    let mut live = Vec::new();
    for s in out {
        if s.stats.ancestors.iter().any(|a| present.contains(a)) {
            sstable::delete(&s.path)?;
        } else {
            live.push(s);
        }
    }
    Ok(live)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(e: &Engine, table: TableId, key: &str) {
        let m = Mutation {
            table,
            token: key.len() as i64,
            key: bytes::Bytes::copy_from_slice(key.as_bytes()),
            partition_deletion: None,
            range_tombstones: Vec::new(),
            static_row: None,
            rows: vec![Row {
                liveness: Some(LivenessInfo {
                    timestamp: 1,
                    ttl: None,
                }),
                ..Row::default()
            }],
        };
        e.apply(vec![m], Box::new(|r| r.unwrap())).unwrap();
    }

    /// The write path's running memtable total against the sum over tables, after every
    /// operation that adds or discards memtable data (and across a restart's replay).
    #[test]
    fn memtable_total_stays_exact() {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            data_dir: dir.path().join("data"),
            commitlog_dir: dir.path().join("commitlog"),
            commitlog_sync: CommitLogSync::Batch,
            ..EngineConfig::default()
        };
        let (a, b) = (TableId([1; 16]), TableId([2; 16]));
        let tables = vec![(a, TableOptions::default()), (b, TableOptions::default())];
        let check = |e: &Engine, what: &str| {
            assert_eq!(
                e.inner.memtable_bytes(),
                e.stats().memtable_bytes,
                "after {what}"
            );
        };
        let e = Engine::open(config.clone(), tables.clone()).unwrap();
        for k in ["a", "bb", "ccc"] {
            write(&e, a, k);
            write(&e, b, k);
        }
        assert!(e.inner.memtable_bytes() > 0);
        check(&e, "writes");
        e.flush(a).unwrap();
        check(&e, "a flush");
        write(&e, a, "dddd");
        e.truncate(b).unwrap();
        check(&e, "a truncation");
        write(&e, b, "eeeee");
        e.shutdown().unwrap();
        drop(e);
        let e = Engine::open(config, tables).unwrap();
        assert!(e.inner.memtable_bytes() > 0, "replayed writes count");
        check(&e, "replay");
        e.drop_table(b).unwrap();
        check(&e, "a drop");
        e.flush(a).unwrap();
        assert_eq!(e.inner.memtable_bytes(), 0);
    }
}

//! The commit log: segment files of checksummed entries, appended in place by writers
//! (periodic mode) or by one writer thread (batch and group modes), replayed at start-up. The on-disk format and the replay rules are specified in
//! `docs/formats/commitlog.md`; keep the two in step.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};

use crate::codec::{DecodeError, decode_mutations};
use crate::error::{EngineError, Result};
use crate::model::{CommitLogSync, Mutation};

/// First bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SHOALCLG";
/// Segment format version (header and entry framing).
pub const SEGMENT_VERSION: u32 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_SIZE: u64 = 24;
/// Framing bytes around each entry's payload: length, header CRC, trailing CRC.
pub const ENTRY_OVERHEAD: usize = 12;

/// A point in the commit log: entries are totally ordered by (segment id, offset).
///
/// Everything the engine does that depends on "what was logged before X" (truncation today,
/// memtable flush and segment discard later) is expressed as a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReplayPosition {
    pub segment: u64,
    pub offset: u64,
}

/// Why bytes at some offset are not a valid entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// Eight zero bytes: the preallocated, never-written part of a segment.
    End,
    /// The buffer ends before the entry does.
    Truncated { needed: u64, available: u64 },
    /// The length field is zero or its CRC does not match.
    BadHeader,
    /// The CRC over length and payload does not match.
    BadChecksum,
    /// The checksum matched but the payload is not a valid mutation list.
    BadPayload(DecodeError),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::End => f.write_str("end of written data"),
            EntryError::Truncated { needed, available } => write!(
                f,
                "entry truncated: needs {needed} bytes, {available} available"
            ),
            EntryError::BadHeader => f.write_str("entry length checksum mismatch"),
            EntryError::BadChecksum => f.write_str("entry checksum mismatch"),
            EntryError::BadPayload(e) => write!(f, "undecodable entry payload: {e}"),
        }
    }
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let b = buf.get(at..end)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Frames a payload as an entry.
pub fn encode_entry(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + ENTRY_OVERHEAD);
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(payload);
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out
}

/// Checks the framing of the entry at the start of `buf`; returns its payload and total size.
pub fn check_entry(buf: &[u8]) -> Result<(&[u8], usize), EntryError> {
    let (Some(len), Some(hcrc)) = (u32_at(buf, 0), u32_at(buf, 4)) else {
        return Err(EntryError::Truncated {
            needed: 8,
            available: buf.len() as u64,
        });
    };
    if len == 0 && hcrc == 0 {
        return Err(EntryError::End);
    }
    if len == 0 || crc32fast::hash(&buf[0..4]) != hcrc {
        return Err(EntryError::BadHeader);
    }
    let total = (len as u64)
        .checked_add(ENTRY_OVERHEAD as u64)
        .filter(|t| *t <= buf.len() as u64)
        .ok_or(EntryError::Truncated {
            needed: len as u64 + ENTRY_OVERHEAD as u64,
            available: buf.len() as u64,
        })? as usize;
    let payload = &buf[8..total - 4];
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[0..4]);
    h.update(payload);
    if Some(h.finalize()) != u32_at(buf, total - 4) {
        return Err(EntryError::BadChecksum);
    }
    Ok((payload, total))
}

/// Decodes the entry at the start of `buf`: its mutations and its size in bytes.
///
/// A pure function that never panics, whatever the input (it is fuzzed).
pub fn decode_entry(buf: &[u8]) -> Result<(Vec<Mutation>, usize), EntryError> {
    let (payload, total) = check_entry(buf)?;
    let mutations = decode_mutations(payload).map_err(EntryError::BadPayload)?;
    Ok((mutations, total))
}

/// The first offset `>= from` where a checksum-valid entry starts, if any.
fn find_valid_entry(buf: &[u8], from: usize) -> Option<usize> {
    let last = buf.len().checked_sub(ENTRY_OVERHEAD + 1)?;
    let mut o = from;
    while o <= last {
        if buf[o..o + 4] == [0, 0, 0, 0] {
            // Jump over zero runs (preallocated space) instead of probing each offset. An
            // entry's length field may start with up to three zero bytes, hence the `- 3`.
            let d = buf[o..].iter().position(|b| *b != 0)?;
            o = (o + d).saturating_sub(3).max(o + 1);
            continue;
        }
        // Cheap filter first: a plausible length whose header CRC matches. Only then pay for
        // the payload CRC, so scanning garbage stays linear.
        let len = u32_at(buf, o).unwrap_or(0) as usize;
        if len != 0
            && len <= buf.len() - o - ENTRY_OVERHEAD
            && Some(crc32fast::hash(&buf[o..o + 4])) == u32_at(buf, o + 4)
            && check_entry(&buf[o..]).is_ok()
        {
            return Some(o);
        }
        o += 1;
    }
    None
}

fn segment_file_name(id: u64) -> String {
    format!("CommitLog-{SEGMENT_VERSION}-{id:016}.log")
}

fn parse_segment_file_name(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("CommitLog-")?.strip_suffix(".log")?;
    let (_, id) = rest.split_once('-')?;
    id.parse().ok()
}

fn segment_header(id: u64) -> [u8; SEGMENT_HEADER_SIZE as usize] {
    let mut h = [0u8; SEGMENT_HEADER_SIZE as usize];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_segment_header(buf: &[u8], id: u64) -> std::result::Result<(), String> {
    let h = buf
        .get(0..SEGMENT_HEADER_SIZE as usize)
        .ok_or("segment shorter than its header")?;
    if h[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    if u32_at(h, 20) != Some(crc32fast::hash(&h[0..20])) {
        return Err("segment header checksum mismatch".into());
    }
    let version = u32_at(h, 8).unwrap_or(0);
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported segment version {version}"));
    }
    let mut idb = [0u8; 8];
    idb.copy_from_slice(&h[12..20]);
    let hid = u64::from_le_bytes(idb);
    if hid != id {
        return Err(format!("header names segment {hid}, file name {id}"));
    }
    Ok(())
}

fn io_err(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fsyncs a directory so that file creations and renames in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// The segment files of `dir`, in id order.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        if let Some(id) = e.file_name().to_str().and_then(parse_segment_file_name) {
            out.push((id, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What a replay found.
#[derive(Clone, Debug, Default)]
pub struct ReplayStats {
    pub segments: usize,
    pub entries: u64,
    pub bytes: u64,
    /// Corrupt entries skipped because `skip_corrupt` was set.
    pub skipped_corrupt: u64,
    /// Whether an invalid tail was dropped.
    pub torn_tail: bool,
    /// Where the dropped tail starts, and the segments after it (which hold nothing valid).
    /// [`repair_torn_tail`] removes them: once new entries follow them, the same bytes would
    /// read as corruption in the middle of the log.
    pub torn_tail_at: Option<(PathBuf, u64)>,
    pub torn_tail_later_segments: Vec<PathBuf>,
    pub max_segment_id: Option<u64>,
    /// Segments with a valid header and nothing else: safe to delete.
    pub empty_segments: Vec<PathBuf>,
}

/// A failure that is only corruption if something valid comes after it.
struct PendingFailure {
    path: PathBuf,
    offset: u64,
    reason: String,
}

/// Replays every segment of `dir` in order, calling `apply` for each valid entry.
///
/// An invalid entry followed by nothing valid anywhere in the log is a torn tail (a write cut
/// short by a crash) and is dropped. An invalid entry followed by a valid one cannot be
/// explained by a crash, so it is reported as corruption, or skipped if `skip_corrupt`.
pub fn replay(
    dir: &Path,
    skip_corrupt: bool,
    mut apply: impl FnMut(ReplayPosition, Vec<Mutation>),
) -> Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    let mut pending: Option<PendingFailure> = None;
    // Called when valid data is found: an earlier failure was in the middle, not the tail.
    let confirm = |pending: &mut Option<PendingFailure>, stats: &mut ReplayStats| {
        if let Some(p) = pending.take() {
            if !skip_corrupt {
                return Err(EngineError::Corrupt {
                    path: p.path,
                    offset: p.offset,
                    reason: format!("{} (valid commit-log entries follow it)", p.reason),
                });
            }
            tracing::warn!(
                path = %p.path.display(),
                offset = p.offset,
                reason = %p.reason,
                "skipping corrupt commit-log data (skip_corrupt_commitlog_entries is set)"
            );
            stats.skipped_corrupt += 1;
        }
        Ok(())
    };
    let segments = list_segments(dir)?;
    for (id, path) in segments.iter().cloned() {
        stats.segments += 1;
        stats.max_segment_id = Some(id);
        let buf = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let mut pos = SEGMENT_HEADER_SIZE as usize;
        if let Err(reason) = check_segment_header(&buf, id) {
            match find_valid_entry(&buf, pos) {
                Some(next) => {
                    confirm(&mut pending, &mut stats)?;
                    pending = Some(PendingFailure {
                        path: path.clone(),
                        offset: 0,
                        reason,
                    });
                    confirm(&mut pending, &mut stats)?;
                    pos = next;
                }
                None => {
                    // Nothing valid in it: like a torn tail if nothing valid follows.
                    if pending.is_none() {
                        pending = Some(PendingFailure {
                            path: path.clone(),
                            offset: 0,
                            reason,
                        });
                    }
                    continue;
                }
            }
        }
        let entries_before = stats.entries;
        let mut clean = true;
        while pos < buf.len() {
            match decode_entry(&buf[pos..]) {
                Ok((mutations, size)) => {
                    confirm(&mut pending, &mut stats)?;
                    apply(
                        ReplayPosition {
                            segment: id,
                            offset: pos as u64,
                        },
                        mutations,
                    );
                    stats.entries += 1;
                    stats.bytes += size as u64;
                    pos += size;
                }
                Err(e) => {
                    let next = find_valid_entry(&buf, pos + 1);
                    let end_of_data = matches!(e, EntryError::End)
                        || (matches!(e, EntryError::Truncated { .. })
                            && buf[pos..].iter().all(|b| *b == 0));
                    clean &= end_of_data && next.is_none();
                    if !(end_of_data && next.is_none()) && pending.is_none() {
                        pending = Some(PendingFailure {
                            path: path.clone(),
                            offset: pos as u64,
                            reason: e.to_string(),
                        });
                    }
                    match next {
                        Some(n) => {
                            confirm(&mut pending, &mut stats)?;
                            pos = n;
                        }
                        None => break,
                    }
                }
            }
        }
        if clean && stats.entries == entries_before {
            stats.empty_segments.push(path.clone());
        }
    }
    if let Some(p) = pending {
        tracing::info!(
            path = %p.path.display(),
            offset = p.offset,
            reason = %p.reason,
            "dropping the torn tail of the commit log (a write cut short by a crash)"
        );
        stats.torn_tail = true;
        if let Some(i) = segments.iter().position(|(_, q)| *q == p.path) {
            stats.torn_tail_later_segments =
                segments[i + 1..].iter().map(|(_, q)| q.clone()).collect();
        }
        stats.torn_tail_at = Some((p.path, p.offset));
    }
    Ok(stats)
}

/// Cuts a torn tail found by [`replay`] off the log, durably.
pub fn repair_torn_tail(dir: &Path, stats: &ReplayStats) -> Result<()> {
    let Some((path, offset)) = &stats.torn_tail_at else {
        return Ok(());
    };
    let remove = |p: &Path| match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(p, e)),
        _ => Ok(()),
    };
    if *offset < SEGMENT_HEADER_SIZE {
        remove(path)?;
    } else {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        f.set_len(*offset)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err(path, e))?;
    }
    for p in &stats.torn_tail_later_segments {
        remove(p)?;
    }
    sync_dir(dir)
}

/// Called once the entry may be acknowledged, or with the reason it may not.
pub type Ack = Box<dyn FnOnce(Result<()>) + Send>;

enum Msg {
    Entry { bytes: Vec<u8>, ack: Ack },
    Position(Sender<Result<ReplayPosition>>),
    Sync(Sender<Result<()>>),
    Shutdown(Sender<Result<()>>),
}

/// Counters shared with the engine's stats.
#[derive(Default)]
pub struct LogCounters {
    pub bytes_written: AtomicU64,
    pub entries_written: AtomicU64,
    pub syncs: AtomicU64,
    pub segments_created: AtomicU64,
}

/// Handle on the commit log.
///
/// Two implementations share the segment format: in `periodic` mode the calling thread
/// copies its entry into the memory-mapped active segment and is acknowledged at once, as
/// Cassandra does (the bytes are in the page cache, so a killed process loses nothing; a
/// background thread fsyncs every period); in `batch` and `group` modes a writer thread
/// gathers entries so one fsync acknowledges many.
pub struct CommitLog {
    imp: Imp,
    max_entry: u64,
    pub counters: Arc<LogCounters>,
}

enum Imp {
    Thread {
        tx: Sender<Msg>,
        thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    },
    Mapped(Arc<MappedLog>),
}

impl CommitLog {
    /// Starts writing a fresh segment `first_segment` in `dir`.
    pub fn start(
        dir: &Path,
        first_segment: u64,
        segment_size: u64,
        mode: CommitLogSync,
    ) -> Result<CommitLog> {
        let segment_size = segment_size.max(SEGMENT_HEADER_SIZE + 4096);
        let counters = Arc::new(LogCounters::default());
        let seg = Segment::create(dir, first_segment, segment_size, &counters, false)?;
        if let CommitLogSync::Periodic { period_ms } = mode {
            let log = MappedLog::start(dir, seg, segment_size, period_ms, counters.clone())?;
            return Ok(CommitLog {
                imp: Imp::Mapped(log),
                max_entry: segment_size - SEGMENT_HEADER_SIZE,
                counters,
            });
        }
        let (tx, rx) = channel::bounded(4096);
        let mut w = Writer {
            dir: dir.to_path_buf(),
            segment_size,
            mode,
            seg,
            buf: Vec::with_capacity(1 << 20),
            pending: Vec::new(),
            last_sync: Instant::now(),
            dirty: false,
            failed: None,
            counters: counters.clone(),
            spare: None,
        };
        let thread = std::thread::Builder::new()
            .name("shoal-commitlog".into())
            .spawn(move || w.run(rx))
            .map_err(|e| io_err(dir, e))?;
        Ok(CommitLog {
            imp: Imp::Thread {
                tx,
                thread: std::sync::Mutex::new(Some(thread)),
            },
            max_entry: segment_size - SEGMENT_HEADER_SIZE,
            counters,
        })
    }

    /// Largest entry (framing included) a segment can hold.
    pub fn max_entry_size(&self) -> u64 {
        self.max_entry
    }

    /// Logs a framed entry; `ack` runs once the sync mode allows acknowledging it: at once
    /// on the calling thread in periodic mode, on the writer thread after an fsync otherwise.
    pub fn submit(&self, bytes: Vec<u8>, ack: Ack) -> Result<()> {
        match &self.imp {
            Imp::Mapped(log) => {
                // On failure the caller learns it from the error, as when the writer
                // thread has stopped; `ack` is not called.
                log.append(&bytes)?;
                ack(Ok(()));
                Ok(())
            }
            Imp::Thread { tx, .. } => tx
                .send(Msg::Entry { bytes, ack })
                .map_err(|_| EngineError::Closed("commit log writer stopped".into())),
        }
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<Result<T>>) -> Msg) -> Result<T> {
        let Imp::Thread { tx, .. } = &self.imp else {
            unreachable!("only the threaded log has a writer to ask")
        };
        let (reply, rx) = channel::bounded(1);
        tx.send(make(reply))
            .map_err(|_| EngineError::Closed("commit log writer stopped".into()))?;
        rx.recv()
            .map_err(|_| EngineError::Closed("commit log writer stopped".into()))?
    }

    /// The position the next entry will get: every entry submitted before this call is
    /// strictly before it.
    pub fn position(&self) -> Result<ReplayPosition> {
        match &self.imp {
            Imp::Mapped(log) => log.position(),
            Imp::Thread { .. } => self.ask(Msg::Position),
        }
    }

    /// Writes and fsyncs everything submitted so far.
    pub fn sync(&self) -> Result<()> {
        match &self.imp {
            Imp::Mapped(log) => log.sync(),
            Imp::Thread { .. } => self.ask(Msg::Sync),
        }
    }

    /// Syncs and stops the writer thread. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        let (tx, thread) = match &self.imp {
            Imp::Mapped(log) => return log.shutdown(),
            Imp::Thread { tx, thread } => (tx, thread),
        };
        let Some(handle) = thread.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let (reply, rx) = channel::bounded(1);
        let res = match tx.send(Msg::Shutdown(reply)) {
            Ok(()) => rx
                .recv()
                .unwrap_or_else(|_| Err(EngineError::Closed("commit log writer died".into()))),
            Err(_) => Err(EngineError::Closed("commit log writer stopped".into())),
        };
        let _ = handle.join();
        res
    }
}

impl Drop for CommitLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Maps a segment file for writing.
#[allow(unsafe_code)]
fn map_segment(seg: &Segment, populate: bool) -> Result<memmap2::MmapMut> {
    // SAFETY: `map_mut` is unsafe because the file could be changed or truncated behind the
    // mapping. Segment files are created by this process with `create_new`, preallocated to
    // their full size, never truncated while mapped (shutdown drops the map before trimming)
    // and not written by anything else: the commit-log directory belongs to this node.
    let mut opts = memmap2::MmapOptions::new();
    if populate {
        opts.populate();
    }
    unsafe { opts.map_mut(&*seg.file) }.map_err(|e| io_err(&seg.path, e))
}

/// The periodic-mode log: writers append under a mutex into the mapped active segment.
struct MappedLog {
    dir: PathBuf,
    segment_size: u64,
    counters: Arc<LogCounters>,
    state: std::sync::Mutex<MappedState>,
    /// Wakes the sync thread early (incremental sync) or for shutdown.
    wake: std::sync::Condvar,
    /// Held (before `state`) by whoever is fsyncing retired segments and the active one, so
    /// an explicit `sync` waits for a round the sync thread has already started: otherwise
    /// it could return, or fsync a later segment, while an earlier one's fsync is still
    /// running on the sync thread.
    sync_lock: std::sync::Mutex<()>,
    syncer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

struct MappedState {
    seg: Segment,
    map: Option<memmap2::MmapMut>,
    /// The next segment, created ahead on a helper thread (see `Writer::spare`).
    spare: Option<JoinHandle<Result<(Segment, memmap2::MmapMut)>>>,
    /// Segments rotated out but not yet fsynced, oldest first, with their mappings: the
    /// sync thread unmaps and fsyncs them before the active segment (see `rotate`).
    retired: Vec<Retired>,
    /// Bytes appended since the sync thread last took the file.
    unsynced: u64,
    /// Bytes appended since the last fsync.
    since_fsync: u64,
    /// Where the sync thread's incremental writeback of the active segment got to.
    written_back: u64,
    sync_requested: bool,
    failed: Option<String>,
    closed: bool,
}

impl MappedLog {
    fn start(
        dir: &Path,
        seg: Segment,
        segment_size: u64,
        period_ms: u64,
        counters: Arc<LogCounters>,
    ) -> Result<Arc<MappedLog>> {
        let map = map_segment(&seg, false)?;
        let log = Arc::new(MappedLog {
            dir: dir.to_path_buf(),
            segment_size,
            counters,
            state: std::sync::Mutex::new(MappedState {
                seg,
                map: Some(map),
                spare: None,
                retired: Vec::new(),
                unsynced: 0,
                since_fsync: 0,
                written_back: 0,
                sync_requested: false,
                failed: None,
                closed: false,
            }),
            wake: std::sync::Condvar::new(),
            sync_lock: std::sync::Mutex::new(()),
            syncer: std::sync::Mutex::new(None),
        });
        let period = Duration::from_millis(period_ms.max(1));
        let weak = Arc::downgrade(&log);
        let handle = std::thread::Builder::new()
            .name("shoal-commitlog-sync".into())
            .spawn(move || sync_loop(weak, period))
            .map_err(|e| io_err(dir, e))?;
        *log.syncer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MappedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(st: &MappedState) -> Result<()> {
        if let Some(f) = &st.failed {
            return Err(EngineError::Closed(format!(
                "commit log failed earlier: {f}"
            )));
        }
        if st.closed {
            return Err(EngineError::Closed("commit log shut down".into()));
        }
        Ok(())
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        let len = bytes.len() as u64;
        let mut st = self.lock();
        Self::check(&st)?;
        if st.seg.offset + len > self.segment_size
            && let Err(e) = self.rotate(&mut st)
        {
            tracing::error!(error = %e, "commit log failed; refusing further writes");
            st.failed = Some(e.to_string());
            return Err(e);
        }
        if st.seg.offset + len > self.segment_size {
            return Err(EngineError::Closed(format!(
                "commit-log entry of {len} bytes exceeds the segment size"
            )));
        }
        let at = st.seg.offset as usize;
        let Some(map) = st.map.as_mut() else {
            return Err(EngineError::Closed("commit log shut down".into()));
        };
        map[at..at + bytes.len()].copy_from_slice(bytes);
        st.seg.offset += len;
        st.seg.written = st.seg.offset;
        st.unsynced += len;
        st.since_fsync += len;
        if st.spare.is_none() && st.seg.offset > self.segment_size / 2 {
            st.spare = spawn_spare(
                &self.dir,
                st.seg.id + 1,
                self.segment_size,
                &self.counters,
                mapped,
            );
        }
        let wake = st.unsynced >= INCREMENTAL_SYNC_BYTES && !st.sync_requested;
        if wake {
            st.sync_requested = true;
        }
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        self.counters
            .entries_written
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_written
            .fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Moves to the next segment. The old one is not fsynced here but handed to the sync
    /// thread, which fsyncs it before the new one: writeback of a mapped file write-protects
    /// every dirty page, one TLB-shootdown IPI each, and on a virtual machine that made the
    /// inline fsync cost 10-15 ms of CPU while every writer waited on the mutex. The sync
    /// thread unmaps the old segment first, so its fsync has no mapped pages to protect.
    fn rotate(&self, st: &mut MappedState) -> Result<()> {
        let (next, map) = match st.spare.take().map(join_spare) {
            Some(spare) => spare?,
            None => {
                let seg = Segment::create(
                    &self.dir,
                    st.seg.id + 1,
                    self.segment_size,
                    &self.counters,
                    false,
                )?;
                let map = map_segment(&seg, false)?;
                (seg, map)
            }
        };
        let old_map = st.map.replace(map);
        let old = std::mem::replace(&mut st.seg, next);
        st.retired.push(Retired {
            file: old.file,
            path: old.path,
            map: old_map,
        });
        st.sync_requested = true;
        self.wake.notify_one();
        st.unsynced = 0;
        st.written_back = 0;

        Ok(())
    }

    fn position(&self) -> Result<ReplayPosition> {
        let st = self.lock();
        Self::check(&st)?;
        Ok(ReplayPosition {
            segment: st.seg.id,
            offset: st.seg.offset,
        })
    }

    fn sync(&self) -> Result<()> {
        let _syncing = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = {
            let mut st = self.lock();
            if let Some(f) = &st.failed {
                return Err(EngineError::Closed(format!(
                    "commit log failed earlier: {f}"
                )));
            }
            st.unsynced = 0;
            st.since_fsync = 0;
            let retired = std::mem::take(&mut st.retired);
            (retired, st.seg.file.clone(), st.seg.path.clone())
        };
        // Outside the lock: writers keep appending while the kernel writes back.
        let (retired, file, path) = file;
        self.sync_retired(retired)?;
        file.sync_data().map_err(|e| io_err(&path, e))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Unmaps and fsyncs rotated-out segments, oldest first. A failure leaves the log
    /// failed: a later segment must not become durable past a hole in an earlier one.
    fn sync_retired(&self, retired: Vec<Retired>) -> Result<()> {
        for r in retired {
            drop(r.map);
            if let Err(e) = r.file.sync_data() {
                let e = io_err(&r.path, e);
                self.lock().failed = Some(e.to_string());
                return Err(e);
            }
            self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn shutdown(&self) -> Result<()> {
        let res = {
            let _syncing = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut st = self.lock();
            if st.closed {
                return Ok(());
            }
            st.closed = true;
            // Unmap before trimming: touching a mapped page past the new end is SIGBUS.
            st.map = None;
            let retired = std::mem::take(&mut st.retired);
            for r in retired {
                drop(r.map);
                r.file.sync_data().map_err(|e| io_err(&r.path, e))?;
            }
            if let Some(Ok((spare, _))) = st.spare.take().map(join_spare) {
                let _ = fs::remove_file(&spare.path);
            }
            let f = &st.seg.file;
            f.sync_data()
                .and_then(|()| f.set_len(st.seg.offset))
                .and_then(|()| f.sync_all())
                .map_err(|e| io_err(&st.seg.path, e))
        };
        self.wake.notify_all();
        if let Some(h) = self.syncer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
        res
    }
}

/// Starts creating segment `id` (zero-filled) on a helper thread, then runs `then` on it
/// there.
fn spawn_spare<T: Send + 'static>(
    dir: &Path,
    id: u64,
    size: u64,
    counters: &Arc<LogCounters>,
    then: impl FnOnce(Segment) -> Result<T> + Send + 'static,
) -> Option<JoinHandle<Result<T>>> {
    let dir = dir.to_path_buf();
    let counters = counters.clone();
    std::thread::Builder::new()
        .name("shoal-commitlog-alloc".into())
        .spawn(move || then(Segment::create(&dir, id, size, &counters, true)?))
        .ok()
}

/// The mapped log's spare is also mapped there, with its pages populated: the first write
/// to a page of a fresh sparse segment otherwise takes a fault that reads ahead (zero-fills)
/// megabytes of page cache, 10-20 ms in which the writer held the log's mutex.
fn mapped(seg: Segment) -> Result<(Segment, memmap2::MmapMut)> {
    let map = map_segment(&seg, true)?;
    Ok((seg, map))
}

fn join_spare<T>(h: JoinHandle<Result<T>>) -> Result<T> {
    h.join().unwrap_or_else(|_| {
        Err(EngineError::Closed(
            "commit-log segment allocator panicked".into(),
        ))
    })
}

/// The periodic-mode sync thread. Every `period` it fsyncs what was appended since the last
/// fsync (rotated-out segments first, unmapped, then the active one). In between, after
/// every INCREMENTAL_SYNC_BYTES appended, it starts writeback of the active segment's
/// complete pages behind the write offset (`sync_file_range`, as RocksDB's
/// `wal_bytes_per_sync`), so the kernel never holds much unwritten log and the periodic
/// fsync stays short. The range stops short of the page being appended to: writeback locks
/// each page it writes, and a writer touching that page would wait for it (up to 15 ms
/// measured when the filesystem journal was busy with a flush).
fn sync_loop(log: std::sync::Weak<MappedLog>, period: Duration) {
    let mut last_fsync = Instant::now();
    loop {
        let Some(log) = log.upgrade() else { return };
        {
            let st = log.lock();
            let wait = period.saturating_sub(last_fsync.elapsed());
            let (st, _) = log
                .wake
                .wait_timeout_while(st, wait, |s| !s.closed && !s.sync_requested)
                .unwrap_or_else(|p| p.into_inner());
            if st.closed {
                return;
            }
        }
        // Held until this round's fsyncs are done (see `MappedLog::sync_lock`).
        let _syncing = log.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (retired, active, range) = {
            let mut st = log.lock();
            if st.closed {
                return;
            }
            st.sync_requested = false;
            let retired = std::mem::take(&mut st.retired);
            let file = (st.seg.file.clone(), st.seg.path.clone());
            if last_fsync.elapsed() >= period {
                last_fsync = Instant::now();
                let active = (st.since_fsync > 0).then_some(file);
                st.since_fsync = 0;
                st.unsynced = 0;
                (retired, active, None)
            } else {
                let to = st.seg.offset / PAGE * PAGE;
                let from = st.written_back.min(to);
                st.written_back = to;
                st.unsynced = 0;
                (retired, None, (to > from).then_some((file, from, to)))
            }
        };
        if let Err(e) = log.sync_retired(retired) {
            tracing::error!(error = %e, "commit log fsync failed; refusing further writes");
            continue;
        }
        if let Some(((file, path), from, to)) = range
            && let Err(e) = write_back_range(&file, from, to)
        {
            tracing::warn!(path = %path.display(), error = %e, "commit log incremental writeback failed");
        }
        if let Some((file, path)) = active {
            match file.sync_data() {
                Ok(()) => {
                    log.counters.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "commit log fsync failed")
                }
            }
        }
    }
}

/// The page size writeback works in (x86-64 and aarch64 Linux default).
const PAGE: u64 = 4096;

/// Writes back `[from, to)` of `file` and waits for it, without flushing the device cache
/// or metadata (the periodic fsync does that).
#[allow(unsafe_code)]
fn write_back_range(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: sync_file_range reads no memory of ours; the descriptor is open for as long as
    // `file` is borrowed.
    let r =
        unsafe { libc::sync_file_range(file.as_raw_fd(), from as i64, (to - from) as i64, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A segment rotated out of a `MappedLog`, waiting for the sync thread.
struct Retired {
    file: Arc<File>,
    path: PathBuf,
    map: Option<memmap2::MmapMut>,
}

struct Segment {
    id: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Where the next byte goes (buffered bytes included).
    offset: u64,
    /// End of what has been handed to the kernel.
    written: u64,
}

impl Segment {
    /// With `fill`, the segment is written with zeros and fsynced before use. Appends then
    /// overwrite allocated, initialised blocks: writeback neither allocates blocks nor
    /// converts extents, so it needs no filesystem-journal handle while it holds a page
    /// lock, and fdatasync no metadata commit. In a sparse segment a writer touching a page
    /// under writeback waited for the journal (10-20 ms measured while a flush was writing
    /// an SSTable). Spares are filled on a helper thread once the active segment is half
    /// full, so a log that never rotates (most short-lived engines) never pays for it.
    fn create(
        dir: &Path,
        id: u64,
        size: u64,
        counters: &LogCounters,
        fill: bool,
    ) -> Result<Segment> {
        let path = dir.join(segment_file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        // Preallocating fixes the file size up front, so later fdatasyncs need not update it,
        // and the never-written rest reads as zeros, which replay recognises as "end".
        file.set_len(size).map_err(|e| io_err(&path, e))?;
        if fill {
            let zeros = vec![0u8; 1 << 20];
            let mut at = SEGMENT_HEADER_SIZE;
            while at < size {
                let n = (size - at).min(zeros.len() as u64) as usize;
                file.write_all_at(&zeros[..n], at)
                    .map_err(|e| io_err(&path, e))?;
                at += n as u64;
            }
        }
        file.write_all_at(&segment_header(id), 0)
            .map_err(|e| io_err(&path, e))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        sync_dir(dir)?;
        counters.segments_created.fetch_add(1, Ordering::Relaxed);
        Ok(Segment {
            id,
            path,
            file: Arc::new(file),
            offset: SEGMENT_HEADER_SIZE,
            written: SEGMENT_HEADER_SIZE,
        })
    }
}

struct Writer {
    dir: PathBuf,
    segment_size: u64,
    mode: CommitLogSync,
    seg: Segment,
    buf: Vec<u8>,
    /// Acks due after the next fsync (batch and group modes).
    pending: Vec<Ack>,
    last_sync: Instant,
    dirty: bool,
    failed: Option<String>,
    counters: Arc<LogCounters>,
    /// The next segment, created ahead on a helper thread: creating one costs two fsyncs
    /// (file and directory) that would otherwise stall every write queued behind a rotation.
    spare: Option<std::thread::JoinHandle<Result<Segment>>>,
}

/// In periodic mode the sync thread starts writeback of the active segment after this many
/// bytes, so the kernel never holds much unwritten log and the periodic fsync stays short.
const INCREMENTAL_SYNC_BYTES: u64 = 4 << 20;

impl Writer {
    /// Starts creating the segment after the current one.
    fn prepare_spare(&mut self) {
        self.spare = spawn_spare(
            &self.dir,
            self.seg.id + 1,
            self.segment_size,
            &self.counters,
            Ok,
        );
    }

    /// Waits for the spare segment's creation, if one is under way.
    fn take_spare(&mut self) -> Option<Result<Segment>> {
        self.spare.take().map(join_spare)
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        loop {
            let msg = match self.deadline() {
                Some(d) => match rx.recv_deadline(d) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = self.sync_now();
                        return;
                    }
                },
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => {
                        let _ = self.sync_now();
                        return;
                    }
                },
            };
            let mut shutdown = None;
            if let Some(m) = msg {
                let mut next = Some(m);
                let mut n = 0;
                // Take whatever else is queued: one write and one fsync cover them all.
                while let Some(m) = next {
                    if let Some(reply) = self.handle(m) {
                        shutdown = Some(reply);
                        break;
                    }
                    n += 1;
                    next = if n < 4096 && self.buf.len() < (4 << 20) {
                        rx.try_recv().ok()
                    } else {
                        None
                    };
                }
            }
            let res = self.flush_buf();
            self.after_write(res);
            if let Some(reply) = shutdown {
                let r = self.sync_now().and_then(|()| self.trim());
                let _ = reply.send(r);
                // Writers that raced with the shutdown learn that their entry was not logged.
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Entry { ack, .. } => {
                            ack(Err(EngineError::Closed("commit log shut down".into())))
                        }
                        Msg::Position(r) => {
                            let _ = r.send(Err(EngineError::Closed("commit log shut down".into())));
                        }
                        Msg::Sync(r) | Msg::Shutdown(r) => {
                            let _ = r.send(Ok(()));
                        }
                    }
                }
                return;
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.mode {
            CommitLogSync::Group { window_ms } if !self.pending.is_empty() => {
                Some(self.last_sync + Duration::from_millis(window_ms))
            }
            _ => None,
        }
    }

    fn closed(&self) -> EngineError {
        EngineError::Closed(format!(
            "commit log failed earlier: {}",
            self.failed.as_deref().unwrap_or("")
        ))
    }

    /// Handles one message; returns the reply channel of a shutdown.
    fn handle(&mut self, m: Msg) -> Option<Sender<Result<()>>> {
        match m {
            Msg::Entry { bytes, ack } => {
                if self.failed.is_some() {
                    ack(Err(self.closed()));
                    return None;
                }
                if let Err(e) = self.append(&bytes) {
                    self.fail(&e);
                    ack(Err(e));
                    return None;
                }
                self.pending.push(ack);
            }
            Msg::Position(reply) => {
                let r = if self.failed.is_some() {
                    Err(self.closed())
                } else {
                    Ok(ReplayPosition {
                        segment: self.seg.id,
                        offset: self.seg.offset,
                    })
                };
                let _ = reply.send(r);
            }
            Msg::Sync(reply) => {
                let r = self.flush_buf().and_then(|()| self.sync_now());
                if let Err(e) = &r {
                    self.fail(e);
                }
                let _ = reply.send(r);
            }
            Msg::Shutdown(reply) => return Some(reply),
        }
        None
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let len = bytes.len() as u64;
        if self.seg.offset + len > self.segment_size {
            self.rotate()?;
        }
        if self.seg.offset + len > self.segment_size {
            return Err(EngineError::Closed(format!(
                "commit-log entry of {len} bytes exceeds the segment size"
            )));
        }
        self.buf.extend_from_slice(bytes);
        self.seg.offset += len;
        if self.spare.is_none() && self.seg.offset > self.segment_size / 2 {
            self.prepare_spare();
        }
        self.counters
            .entries_written
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        self.flush_buf()?;
        // The old segment must be durable before any entry lands in the new one: replay
        // relies on "later segment valid => earlier segments complete".
        self.seg
            .file
            .sync_data()
            .map_err(|e| io_err(&self.seg.path, e))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        for ack in self.pending.drain(..) {
            ack(Ok(()));
        }
        let next = match self.take_spare() {
            Some(spare) => spare?,
            None => Segment::create(
                &self.dir,
                self.seg.id + 1,
                self.segment_size,
                &self.counters,
                false,
            )?,
        };
        self.seg = next;
        self.last_sync = Instant::now();
        self.dirty = false;
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = self.seg.written;
        let r = self
            .seg
            .file
            .write_all_at(&self.buf, at)
            .map_err(|e| io_err(&self.seg.path, e));
        if r.is_ok() {
            self.seg.written += self.buf.len() as u64;
            self.counters
                .bytes_written
                .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            self.dirty = true;
        }
        self.buf.clear();
        r
    }

    fn sync_now(&mut self) -> Result<()> {
        if self.failed.is_some() {
            let e = self.closed();
            for ack in std::mem::take(&mut self.pending) {
                ack(Err(self.closed()));
            }
            return Err(e);
        }
        self.seg
            .file
            .sync_data()
            .map_err(|e| io_err(&self.seg.path, e))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.dirty = false;
        self.last_sync = Instant::now();
        for ack in self.pending.drain(..) {
            ack(Ok(()));
        }
        Ok(())
    }

    /// Cuts the preallocated, unwritten end off the current segment at a clean shutdown,
    /// so the next start-up does not read it.
    fn trim(&mut self) -> Result<()> {
        // The unused spare is an empty segment; remove it so a clean shutdown leaves only
        // segments that hold entries (start-up would delete it anyway).
        if let Some(Ok(spare)) = self.take_spare() {
            let _ = fs::remove_file(&spare.path);
        }
        let f = &self.seg.file;
        f.set_len(self.seg.written)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err(&self.seg.path, e))
    }

    fn fail(&mut self, e: &EngineError) {
        tracing::error!(error = %e, "commit log failed; refusing further writes");
        if self.failed.is_none() {
            self.failed = Some(e.to_string());
        }
        for ack in self.pending.drain(..) {
            ack(Err(EngineError::Closed(format!("commit log failed: {e}"))));
        }
    }

    fn after_write(&mut self, res: Result<()>) {
        if let Err(e) = res {
            self.fail(&e);
            return;
        }
        let now = Instant::now();
        let due = match self.mode {
            CommitLogSync::Batch => !self.pending.is_empty(),
            CommitLogSync::Group { window_ms } => {
                !self.pending.is_empty() && now >= self.last_sync + Duration::from_millis(window_ms)
            }
            // The mapped log serves periodic mode; the writer never sees it.
            CommitLogSync::Periodic { .. } => false,
        };
        if due && let Err(e) = self.sync_now() {
            self.fail(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_roundtrip_and_damage() {
        let payload = {
            let mut v = Vec::new();
            crate::codec::encode_mutations(&[], &mut v);
            v
        };
        let e = encode_entry(&payload);
        assert_eq!(decode_entry(&e).unwrap(), (vec![], e.len()));
        assert_eq!(decode_entry(&[0u8; 20]), Err(EntryError::End));
        for i in 0..e.len() {
            let mut d = e.clone();
            d[i] ^= 0x10;
            assert!(decode_entry(&d).is_err(), "flip at {i}");
        }
        assert!(matches!(
            decode_entry(&e[..e.len() - 1]),
            Err(EntryError::Truncated { .. })
        ));
    }

    #[test]
    fn segment_names() {
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        assert_eq!(parse_segment_file_name("foo.log"), None);
    }
}

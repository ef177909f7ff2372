//! Hinted handoff storage: writes a replica missed, kept on the coordinator until the
//! replica is back (`docs/formats/hints.md`).
//!
//! A small append-only file format of our own rather than a table of the system keyspace:
//! hints are written once, read once in order and deleted whole, which is what files do
//! best; an engine table would put every hint through the commit log, a memtable, flushes
//! and compaction, only to tombstone it minutes later (Cassandra left its hints table for
//! files in 3.0 for the same reasons). One host's hints live in numbered files so replay can
//! work on closed files while new hints go to a fresh one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shoal_engine::{Mutation, decode_mutations, encode_mutations};
use shoal_gossip::ring::HostId;

const MAGIC: &[u8; 4] = b"SHNT";
pub const HINTS_FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 28;
/// An entry's payload is at most this big; a larger length is corruption, not a hint.
const MAX_ENTRY: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HintError {
    #[error("hints I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hints file {0}: {1}")]
    Corrupt(PathBuf, &'static str),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HintError + '_ {
    move |source| HintError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One stored hint.
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    /// When the write was hinted (ms since epoch): hints older than max_hint_window are
    /// dropped at replay.
    pub created_ms: i64,
    pub mutations: Vec<Mutation>,
}

/// A closed file of one host's hints, ready to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintFile {
    pub host: HostId,
    pub seq: u64,
    pub path: PathBuf,
}

struct Writer {
    seq: u64,
    file: File,
}

#[derive(Default)]
struct HostHints {
    writer: Option<Writer>,
    /// Closed files (seq → hint count), replayable.
    closed: HashMap<u64, u64>,
    /// Hints in the open file.
    open_count: u64,
    next_seq: u64,
}

impl HostHints {
    fn pending(&self) -> u64 {
        self.open_count + self.closed.values().sum::<u64>()
    }
}

/// Every host's hints under one directory.
pub struct HintStore {
    dir: PathBuf,
    hosts: Mutex<HashMap<HostId, HostHints>>,
}

fn file_name(host: HostId, seq: u64) -> String {
    format!("{host}-{seq:016}.hints")
}

/// `<uuid>-<seq>.hints` → (host, seq).
fn parse_name(name: &str) -> Option<(HostId, u64)> {
    let stem = name.strip_suffix(".hints")?;
    let (uuid, seq) = stem.rsplit_once('-')?;
    let seq = seq.parse().ok()?;
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((HostId(id), seq))
}

fn header(host: HostId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = HINTS_FORMAT_VERSION;
    h[8..24].copy_from_slice(&host.0);
    let crc = crc32fast::hash(&h[..24]);
    h[24..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes one entry: length, CRC of the length, payload, CRC of the payload.
pub fn encode_entry(hint: &Hint, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(64);
    payload.extend_from_slice(&hint.created_ms.to_le_bytes());
    encode_mutations(&hint.mutations, &mut payload);
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
}

/// What decoding a file's bytes found.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub hints: Vec<Hint>,
    /// Entries whose payload failed its CRC or did not decode (skipped).
    pub corrupt: usize,
    /// The file ended inside an entry or its length was corrupt: the rest was ignored.
    pub torn: bool,
}

/// Decodes a whole hints file (header included). Never panics.
pub fn decode_file(buf: &[u8], expect_host: Option<HostId>) -> Result<Decoded, &'static str> {
    if buf.len() < HEADER_LEN {
        return Err("short header");
    }
    if &buf[..4] != MAGIC {
        return Err("bad magic");
    }
    let crc = u32::from_le_bytes([buf[24], buf[25], buf[26], buf[27]]);
    if crc32fast::hash(&buf[..24]) != crc {
        return Err("header checksum mismatch");
    }
    if buf[4] != HINTS_FORMAT_VERSION {
        return Err("unknown hints format version");
    }
    let mut host = [0u8; 16];
    host.copy_from_slice(&buf[8..24]);
    if expect_host.is_some_and(|h| h.0 != host) {
        return Err("file belongs to another host");
    }
    let mut out = Decoded::default();
    let mut pos = HEADER_LEN;
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    while pos < buf.len() {
        let Some(head) = buf.get(pos..pos + 8) else {
            out.torn = true;
            break;
        };
        let n = le(&head[..4]) as usize;
        // A length whose own CRC fails cannot be trusted to find the next entry.
        if crc32fast::hash(&head[..4]) != le(&head[4..]) || n > MAX_ENTRY {
            out.torn = true;
            break;
        }
        let Some(body) = buf.get(pos + 8..pos + 8 + n + 4) else {
            out.torn = true;
            break;
        };
        pos += 8 + n + 4;
        let (payload, crc) = body.split_at(n);
        if crc32fast::hash(payload) != le(crc) || n < 8 {
            out.corrupt += 1;
            continue;
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&payload[..8]);
        match decode_mutations(&payload[8..]) {
            Ok(mutations) => out.hints.push(Hint {
                created_ms: i64::from_le_bytes(t),
                mutations,
            }),
            Err(_) => out.corrupt += 1,
        }
    }
    Ok(out)
}

impl HintStore {
    /// Opens (creating) `dir` and counts the hints already there.
    pub fn open(dir: &Path) -> Result<HintStore, HintError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut hosts: HashMap<HostId, HostHints> = HashMap::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let e = e.map_err(io(dir))?;
            let name = e.file_name();
            let Some((host, seq)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            let path = e.path();
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let count = match decode_file(&bytes, Some(host)) {
                Ok(d) => d.hints.len() as u64,
                Err(why) => {
                    tracing::warn!(path = %path.display(), why, "unreadable hints file ignored");
                    continue;
                }
            };
            let h = hosts.entry(host).or_default();
            h.closed.insert(seq, count);
            h.next_seq = h.next_seq.max(seq + 1);
        }
        Ok(HintStore {
            dir: dir.to_path_buf(),
            hosts: Mutex::new(hosts),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<HostId, HostHints>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a hint for `host`. Written to the OS before returning (survives a process
    /// crash); fsynced when the file is closed for replay.
    pub fn store(&self, host: HostId, hint: &Hint) -> Result<(), HintError> {
        let mut buf = Vec::new();
        encode_entry(hint, &mut buf);
        let mut hosts = self.lock();
        let h = hosts.entry(host).or_default();
        if h.writer.is_none() {
            let seq = h.next_seq;
            h.next_seq += 1;
            let path = self.dir.join(file_name(host, seq));
            let mut file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.write_all(&header(host)).map_err(io(&path))?;
            h.writer = Some(Writer { seq, file });
            h.open_count = 0;
        }
        let w = h.writer.as_mut().expect("writer just ensured");
        let path = self.dir.join(file_name(host, w.seq));
        w.file.write_all(&buf).map_err(io(&path))?;
        h.open_count += 1;
        Ok(())
    }

    /// Hosts with hints waiting.
    pub fn hosts(&self) -> Vec<HostId> {
        self.lock()
            .iter()
            .filter(|(_, h)| h.pending() > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Hints waiting for `host`.
    pub fn pending(&self, host: &HostId) -> u64 {
        self.lock().get(host).map_or(0, |h| h.pending())
    }

    /// Hints waiting in all.
    pub fn total(&self) -> u64 {
        self.lock().values().map(|h| h.pending()).sum()
    }

    /// Closes `host`'s open file (new hints start a new one) and lists its files, oldest
    /// first, for replay.
    pub fn files_for_replay(&self, host: HostId) -> Vec<HintFile> {
        let mut hosts = self.lock();
        let Some(h) = hosts.get_mut(&host) else {
            return Vec::new();
        };
        if let Some(w) = h.writer.take() {
            // Replay reads what is on disk; a sync makes the file whole before deletion
            // decisions are based on it.
            let _ = w.file.sync_data();
            h.closed.insert(w.seq, h.open_count);
            h.open_count = 0;
        }
        let mut seqs: Vec<u64> = h.closed.keys().copied().collect();
        seqs.sort_unstable();
        seqs.into_iter()
            .map(|seq| HintFile {
                host,
                seq,
                path: self.dir.join(file_name(host, seq)),
            })
            .collect()
    }

    /// Reads one closed file.
    pub fn read(&self, f: &HintFile) -> Result<Decoded, HintError> {
        let mut bytes = Vec::new();
        File::open(&f.path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(io(&f.path))?;
        decode_file(&bytes, Some(f.host)).map_err(|why| HintError::Corrupt(f.path.clone(), why))
    }

    /// Deletes a file whose hints were all delivered (or expired, or unreadable).
    pub fn delete(&self, f: &HintFile) -> Result<(), HintError> {
        match std::fs::remove_file(&f.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&f.path)(e)),
        }
        if let Some(h) = self.lock().get_mut(&f.host) {
            h.closed.remove(&f.seq);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use shoal_engine::TableId;

    fn m(k: &'static [u8]) -> Mutation {
        Mutation {
            table: TableId([1; 16]),
            token: 7,
            key: Bytes::from_static(k),
            partition_deletion: None,
            range_tombstones: Vec::new(),
            static_row: None,
            rows: Vec::new(),
        }
    }

    #[test]
    fn store_replay_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostId([9; 16]);
        let s = HintStore::open(dir.path()).unwrap();
        s.store(
            host,
            &Hint {
                created_ms: 1,
                mutations: vec![m(b"a")],
            },
        )
        .unwrap();
        s.store(
            host,
            &Hint {
                created_ms: 2,
                mutations: vec![m(b"b")],
            },
        )
        .unwrap();
        assert_eq!(s.pending(&host), 2);
        let files = s.files_for_replay(host);
        assert_eq!(files.len(), 1);
        // New hints go to a new file while the old one replays.
        s.store(
            host,
            &Hint {
                created_ms: 3,
                mutations: vec![m(b"c")],
            },
        )
        .unwrap();
        assert_eq!(s.total(), 3);
        let d = s.read(&files[0]).unwrap();
        assert_eq!(d.hints.len(), 2);
        assert_eq!(d.hints[1].mutations, vec![m(b"b")]);
        s.delete(&files[0]).unwrap();
        assert_eq!(s.pending(&host), 1);
        drop(s);
        let s = HintStore::open(dir.path()).unwrap();
        assert_eq!(s.pending(&host), 1);
        assert_eq!(s.hosts(), vec![host]);
        // After a restart hints never append to an old (possibly torn) file.
        s.store(
            host,
            &Hint {
                created_ms: 4,
                mutations: vec![m(b"d")],
            },
        )
        .unwrap();
        assert_eq!(s.files_for_replay(host).len(), 2);
    }

    #[test]
    fn torn_tails_and_corrupt_entries() {
        let host = HostId([1; 16]);
        let mut buf = header(host).to_vec();
        for i in 0..3 {
            encode_entry(
                &Hint {
                    created_ms: i,
                    mutations: vec![m(b"k")],
                },
                &mut buf,
            );
        }
        let whole = decode_file(&buf, Some(host)).unwrap();
        assert_eq!(
            (whole.hints.len(), whole.corrupt, whole.torn),
            (3, 0, false)
        );
        // Cut inside the last entry: two survive, the tail is reported torn.
        let torn = decode_file(&buf[..buf.len() - 3], Some(host)).unwrap();
        assert_eq!((torn.hints.len(), torn.torn), (2, true));
        // A flipped payload byte costs that entry only.
        let mut bad = buf.clone();
        bad[HEADER_LEN + 8 + 2] ^= 0xff;
        let d = decode_file(&bad, Some(host)).unwrap();
        assert_eq!((d.hints.len(), d.corrupt), (2, 1));
        assert!(decode_file(&buf, Some(HostId([2; 16]))).is_err());
        assert!(decode_file(&buf[..10], None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut buf = header(HostId([1; 16])).to_vec();
            buf.extend_from_slice(&bytes);
            let _ = decode_file(&buf, None);
            let _ = decode_file(&bytes, None);
        }
    }
}

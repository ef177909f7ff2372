//! Immutable sorted tables: a flushed memtable on disk (format version 1).
//!
//! One file per SSTable, `<data_dir>/<table id hex>/sst-<generation, 16 digits>.db`, written
//! as `….db.tmp`, fsynced, renamed, then the directory fsynced: a crash leaves either no
//! SSTable or a complete one. All integers little-endian, CRC32 = IEEE (`crc32fast`).
//!
//! ```text
//! header (48 bytes)
//!   0  8  magic "SHOALSST"
//!   8  4  u32 format version = 1
//!  12 16  table id
//!  28  8  u64 covers_up_to.segment  } every commit-log entry of this table positioned
//!  36  8  u64 covers_up_to.offset   } before this is in this SSTable or an older one
//!  44  4  u32 CRC32 of bytes 0..44
//! data blocks, back to back from offset 48
//!   0  4  u32 L: payload length
//!   4  4  u32 CRC32 of (bytes 0..4 ++ payload)
//!   8  L  payload: a mutation list in the commit-log mutation encoding
//!         (docs/formats/commitlog.md), one mutation per partition holding the partition's
//!         whole merged content, partitions in (token, key) order, ~64 KiB per block
//!         (a partition is never split across blocks)
//! index block, same framing as a data block; payload:
//!   varint block count, then per block: i64 first token, varint-length first key,
//!   u64 block offset, u32 block length (framing included)
//! footer (24 bytes, at the very end)
//!   0  8  u64 index offset
//!   8  8  u64 index length (framing included)
//!  16  4  u32 CRC32 of footer bytes 0..16
//!  20  4  magic "SEND"
//! ```
//!
//! `covers_up_to` is the commit-log position at which the flushed memtable was switched out.
//! Start-up takes, per table, the greatest `covers_up_to` of its SSTables as the position
//! below which commit-log entries are already on disk, so a crash between writing an SSTable
//! and anything else can neither lose nor double-apply (counters!) a write.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::codec::{decode_mutations, encode_mutations};
use crate::commitlog::{ReplayPosition, sync_dir};
use crate::error::{EngineError, Result};
use crate::memtable::{Memtable, PartitionKey, PartitionState};
use crate::model::{Mutation, TableId};

pub const SSTABLE_MAGIC: [u8; 8] = *b"SHOALSST";
pub const SSTABLE_VERSION: u32 = 1;
pub const HEADER_SIZE: u64 = 48;
pub const FOOTER_SIZE: u64 = 24;
const FOOTER_MAGIC: [u8; 4] = *b"SEND";
const BLOCK_TARGET: u64 = 64 << 10;

fn io_err(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory holding a table's SSTables.
pub fn table_dir(data_dir: &Path, table: &TableId) -> PathBuf {
    let hex: String = table.0.iter().map(|b| format!("{b:02x}")).collect();
    data_dir.join(hex)
}

pub fn file_name(generation: u64) -> String {
    format!("sst-{generation:016}.db")
}

fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("sst-")?.strip_suffix(".db")?.parse().ok()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a framed block; returns its payload.
fn unframe<'a>(buf: &'a [u8], path: &Path, offset: u64) -> Result<&'a [u8]> {
    let corrupt = |reason: &str| EngineError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    if buf.len() < 8 {
        return Err(corrupt("block shorter than its framing"));
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len.checked_add(8) != Some(buf.len()) {
        return Err(corrupt("block length mismatch"));
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[0..4]);
    h.update(&buf[8..]);
    if h.finalize() != crc {
        return Err(corrupt("block checksum mismatch"));
    }
    Ok(&buf[8..])
}

/// The content of a partition as the mutation that would recreate it.
pub fn state_to_mutation(table: TableId, pk: &PartitionKey, st: &PartitionState) -> Mutation {
    Mutation {
        table,
        token: pk.token,
        key: pk.key.clone(),
        partition_deletion: st.deletion,
        range_tombstones: st.range_tombstones.clone(),
        static_row: st.static_row.clone(),
        rows: st.rows.values().cloned().collect(),
    }
}

pub fn mutation_to_state(m: Mutation) -> (PartitionKey, PartitionState) {
    let pk = PartitionKey {
        token: m.token,
        key: m.key.clone(),
    };
    let mut st = PartitionState::default();
    st.apply(m);
    (pk, st)
}

struct IndexEntry {
    first: PartitionKey,
    offset: u64,
    len: u32,
}

/// An open SSTable: its index is in memory, blocks are read on demand.
pub struct SsTable {
    pub path: PathBuf,
    pub generation: u64,
    pub covers_up_to: ReplayPosition,
    file: File,
    index: Vec<IndexEntry>,
}

/// Writes `mt` as SSTable `generation` of `table`; returns `None` if it holds nothing.
pub fn write(
    data_dir: &Path,
    table: TableId,
    generation: u64,
    covers_up_to: ReplayPosition,
    mt: &Memtable,
) -> Result<Option<SsTable>> {
    let dir = table_dir(data_dir, &table);
    fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let path = dir.join(file_name(generation));
    let tmp = dir.join(format!("{}.tmp", file_name(generation)));
    let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut header = Vec::with_capacity(HEADER_SIZE as usize);
    header.extend_from_slice(&SSTABLE_MAGIC);
    header.extend_from_slice(&SSTABLE_VERSION.to_le_bytes());
    header.extend_from_slice(&table.0);
    header.extend_from_slice(&covers_up_to.segment.to_le_bytes());
    header.extend_from_slice(&covers_up_to.offset.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    w.write_all(&header).map_err(|e| io_err(&tmp, e))?;

    let mut offset = HEADER_SIZE;
    let mut index: Vec<IndexEntry> = Vec::new();
    let mut block: Vec<Mutation> = Vec::new();
    let mut block_size = 0u64;
    let write_block = |block: &mut Vec<Mutation>,
                       w: &mut std::io::BufWriter<File>,
                       index: &mut Vec<IndexEntry>,
                       offset: &mut u64|
     -> Result<()> {
        let Some(first) = block.first() else {
            return Ok(());
        };
        let first = PartitionKey {
            token: first.token,
            key: first.key.clone(),
        };
        let mut payload = Vec::new();
        encode_mutations(block, &mut payload);
        let framed = frame(&payload);
        w.write_all(&framed).map_err(|e| io_err(&tmp, e))?;
        index.push(IndexEntry {
            first,
            offset: *offset,
            len: framed.len() as u32,
        });
        *offset += framed.len() as u64;
        block.clear();
        Ok(())
    };
    for e in mt.partitions.iter() {
        let m = {
            let st = e.value().lock().unwrap_or_else(|p| p.into_inner());
            if st.deletion.is_none()
                && st.range_tombstones.is_empty()
                && st.static_row.is_none()
                && st.rows.is_empty()
            {
                continue;
            }
            state_to_mutation(table, e.key(), &st)
        };
        block_size += crate::memtable::mutation_size(&m);
        block.push(m);
        if block_size >= BLOCK_TARGET {
            write_block(&mut block, &mut w, &mut index, &mut offset)?;
            block_size = 0;
        }
    }
    write_block(&mut block, &mut w, &mut index, &mut offset)?;
    if index.is_empty() {
        drop(w);
        let _ = fs::remove_file(&tmp);
        return Ok(None);
    }
    let mut payload = Vec::new();
    put_varint(&mut payload, index.len() as u64);
    for e in &index {
        payload.extend_from_slice(&e.first.token.to_le_bytes());
        put_varint(&mut payload, e.first.key.len() as u64);
        payload.extend_from_slice(&e.first.key);
        payload.extend_from_slice(&e.offset.to_le_bytes());
        payload.extend_from_slice(&e.len.to_le_bytes());
    }
    let framed = frame(&payload);
    w.write_all(&framed).map_err(|e| io_err(&tmp, e))?;
    let mut footer = Vec::with_capacity(FOOTER_SIZE as usize);
    footer.extend_from_slice(&offset.to_le_bytes());
    footer.extend_from_slice(&(framed.len() as u64).to_le_bytes());
    let crc = crc32fast::hash(&footer);
    footer.extend_from_slice(&crc.to_le_bytes());
    footer.extend_from_slice(&FOOTER_MAGIC);
    w.write_all(&footer).map_err(|e| io_err(&tmp, e))?;
    let file = w.into_inner().map_err(|e| io_err(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(&dir)?;
    SsTable::open(&path, generation).map(Some)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked cursor for the index payload.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(a))
    }

    fn u32(&mut self) -> Option<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Some(u32::from_le_bytes(a))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.take(1)?[0];
            v |= ((b & 0x7f) as u64).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

impl SsTable {
    /// Opens and validates an SSTable's header, footer and index.
    pub fn open(path: &Path, generation: u64) -> Result<SsTable> {
        let corrupt = |offset: u64, reason: &str| EngineError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.to_string(),
        };
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let size = file.metadata().map_err(|e| io_err(path, e))?.len();
        if size < HEADER_SIZE + FOOTER_SIZE {
            return Err(corrupt(0, "file too short"));
        }
        let mut header = [0u8; HEADER_SIZE as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| io_err(path, e))?;
        if header[0..8] != SSTABLE_MAGIC {
            return Err(corrupt(0, "bad SSTable magic"));
        }
        if crc32fast::hash(&header[0..44]).to_le_bytes() != header[44..48] {
            return Err(corrupt(0, "header checksum mismatch"));
        }
        let mut c = Cursor {
            buf: &header,
            pos: 8,
        };
        let version = c.u32().unwrap_or(0);
        if version != SSTABLE_VERSION {
            return Err(corrupt(
                8,
                &format!("unsupported SSTable version {version}"),
            ));
        }
        c.take(16);
        let covers_up_to = ReplayPosition {
            segment: c.u64().unwrap_or(0),
            offset: c.u64().unwrap_or(0),
        };
        let mut footer = [0u8; FOOTER_SIZE as usize];
        let footer_at = size - FOOTER_SIZE;
        file.read_exact_at(&mut footer, footer_at)
            .map_err(|e| io_err(path, e))?;
        if footer[20..24] != FOOTER_MAGIC
            || crc32fast::hash(&footer[0..16]).to_le_bytes() != footer[16..20]
        {
            return Err(corrupt(footer_at, "bad footer"));
        }
        let mut c = Cursor {
            buf: &footer,
            pos: 0,
        };
        let (ioff, ilen) = (c.u64().unwrap_or(0), c.u64().unwrap_or(0));
        if ioff < HEADER_SIZE || ioff.checked_add(ilen) != Some(footer_at) {
            return Err(corrupt(footer_at, "index bounds out of the file"));
        }
        let mut ibuf = vec![0u8; ilen as usize];
        file.read_exact_at(&mut ibuf, ioff)
            .map_err(|e| io_err(path, e))?;
        let payload = unframe(&ibuf, path, ioff)?;
        let mut c = Cursor {
            buf: payload,
            pos: 0,
        };
        let bad_index = || corrupt(ioff, "malformed index");
        let n = c.varint().ok_or_else(bad_index)?;
        let mut index = Vec::new();
        for _ in 0..n {
            let token = c.u64().ok_or_else(bad_index)? as i64;
            let klen = c.varint().ok_or_else(bad_index)?;
            let key = usize::try_from(klen)
                .ok()
                .and_then(|k| c.take(k))
                .ok_or_else(bad_index)?;
            let key = Bytes::copy_from_slice(key);
            let offset = c.u64().ok_or_else(bad_index)?;
            let len = c.u32().ok_or_else(bad_index)?;
            if offset < HEADER_SIZE || offset.checked_add(len as u64).is_none_or(|e| e > ioff) {
                return Err(bad_index());
            }
            index.push(IndexEntry {
                first: PartitionKey { token, key },
                offset,
                len,
            });
        }
        if c.pos != payload.len() || !index.is_sorted_by(|a, b| a.first < b.first) {
            return Err(bad_index());
        }
        Ok(SsTable {
            path: path.to_path_buf(),
            generation,
            covers_up_to,
            file,
            index,
        })
    }

    fn read_block(&self, i: usize) -> Result<Vec<(PartitionKey, PartitionState)>> {
        let e = &self.index[i];
        let mut buf = vec![0u8; e.len as usize];
        self.file
            .read_exact_at(&mut buf, e.offset)
            .map_err(|err| io_err(&self.path, err))?;
        let payload = unframe(&buf, &self.path, e.offset)?;
        let ms = decode_mutations(payload).map_err(|d| EngineError::Corrupt {
            path: self.path.clone(),
            offset: e.offset,
            reason: d.to_string(),
        })?;
        Ok(ms.into_iter().map(mutation_to_state).collect())
    }

    /// The block that would hold `pk`, if any.
    fn block_for(&self, pk: &PartitionKey) -> Option<usize> {
        self.index
            .partition_point(|e| e.first <= *pk)
            .checked_sub(1)
    }

    pub fn get(&self, pk: &PartitionKey) -> Result<Option<PartitionState>> {
        let Some(i) = self.block_for(pk) else {
            return Ok(None);
        };
        Ok(self
            .read_block(i)?
            .into_iter()
            .find(|(k, _)| k == pk)
            .map(|(_, s)| s))
    }

    /// Partitions at or after `from` (everything if `None`), in order, a block at a time.
    pub fn scan(&self, from: Option<PartitionKey>) -> SsTableScan<'_> {
        let block = from.as_ref().and_then(|k| self.block_for(k)).unwrap_or(0);
        SsTableScan {
            table: self,
            next_block: block,
            buffered: Vec::new().into_iter(),
            from,
        }
    }
}

/// Iterator of [`SsTable::scan`].
pub struct SsTableScan<'a> {
    table: &'a SsTable,
    next_block: usize,
    buffered: std::vec::IntoIter<(PartitionKey, PartitionState)>,
    from: Option<PartitionKey>,
}

impl Iterator for SsTableScan<'_> {
    type Item = Result<(PartitionKey, PartitionState)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((k, s)) = self.buffered.next() {
                if self.from.as_ref().is_some_and(|f| k < *f) {
                    continue;
                }
                return Some(Ok((k, s)));
            }
            if self.next_block >= self.table.index.len() {
                return None;
            }
            match self.table.read_block(self.next_block) {
                Ok(b) => self.buffered = b.into_iter(),
                Err(e) => {
                    self.next_block = self.table.index.len();
                    return Some(Err(e));
                }
            }
            self.next_block += 1;
        }
    }
}

/// Opens every SSTable of a table, in generation order. Leftover temporary files (a crash
/// during a flush) are deleted.
pub fn open_all(data_dir: &Path, table: &TableId) -> Result<Vec<SsTable>> {
    let dir = table_dir(data_dir, table);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir, e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| io_err(&dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            fs::remove_file(e.path()).map_err(|err| io_err(&e.path(), err))?;
        } else if let Some(g) = parse_file_name(name) {
            out.push(SsTable::open(&e.path(), g)?);
        }
    }
    out.sort_by_key(|s| s.generation);
    Ok(out)
}

/// Deletes an SSTable file, durably.
pub fn delete(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(path, e)),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a dropped table's directory.
pub fn delete_table_dir(data_dir: &Path, table: &TableId) -> Result<()> {
    let dir = table_dir(data_dir, table);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&dir, e)),
        _ => sync_dir(data_dir),
    }
}

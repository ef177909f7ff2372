//! Reader of format-version-1 SSTables, kept only to migrate them to version 2 at start-up
//! (see `docs/formats/sstable.md`, "Version 1 and migration").
//!
//! Version 1, for reference:
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

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::codec::decode_mutations;
use crate::commitlog::ReplayPosition;
use crate::error::{EngineError, Result};
use crate::memtable::{PartitionKey, PartitionState};
use crate::model::TableId;
use crate::sstable::{self as v2, mutation_to_state};

const SSTABLE_MAGIC: [u8; 8] = *b"SHOALSST";
const SSTABLE_VERSION: u32 = 1;
const HEADER_SIZE: u64 = 48;
const FOOTER_SIZE: u64 = 24;
const FOOTER_MAGIC: [u8; 4] = *b"SEND";

fn io_err(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
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

struct IndexEntry {
    first: PartitionKey,
    offset: u64,
    len: u32,
}

/// An open SSTable: its index is in memory, blocks are read on demand.
pub struct SsTable {
    pub path: PathBuf,
    pub covers_up_to: ReplayPosition,
    file: File,
    index: Vec<IndexEntry>,
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
    pub fn open(path: &Path) -> Result<SsTable> {
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

    /// Partitions at or after `from` (everything if `None`), in order, a block at a time.
    pub fn scan(&self, from: Option<PartitionKey>) -> SsTableScan<'_> {
        let block = from
            .as_ref()
            .and_then(|k| self.index.partition_point(|e| e.first <= *k).checked_sub(1))
            .unwrap_or(0);
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

/// Rewrites a version-1 SSTable as version 2 under the same name (atomic rename over it),
/// keeping its generation and `covers_up_to`.
pub fn migrate(path: &Path, generation: u64, table: TableId, bloom_fp: f64) -> Result<()> {
    let old = SsTable::open(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut n = 0u64;
    for p in old.scan(None) {
        p?;
        n += 1;
    }
    let mut w = v2::Writer::create(dir, table, generation, old.covers_up_to, n, bloom_fp, None)?;
    for p in old.scan(None) {
        let (pk, st) = p?;
        w.add(&pk, &st)?;
    }
    if w.finish(0, Vec::new())?.is_none() {
        v2::delete(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_mutations;
    use crate::model::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        let mut h = crc32fast::Hasher::new();
        h.update(&len);
        h.update(payload);
        let mut out = len.to_vec();
        out.extend_from_slice(&h.finalize().to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A version-1 file as the old writer laid it out: header, one block, index, footer.
    fn v1_file(table: TableId, ms: &[Mutation]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&SSTABLE_MAGIC);
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&table.0);
        f.extend_from_slice(&3u64.to_le_bytes());
        f.extend_from_slice(&77u64.to_le_bytes());
        let crc = crc32fast::hash(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        let mut payload = Vec::new();
        encode_mutations(ms, &mut payload);
        let block = frame(&payload);
        let block_at = f.len() as u64;
        f.extend_from_slice(&block);
        let mut index = vec![1u8];
        index.extend_from_slice(&ms[0].token.to_le_bytes());
        index.push(ms[0].key.len() as u8);
        index.extend_from_slice(&ms[0].key);
        index.extend_from_slice(&block_at.to_le_bytes());
        index.extend_from_slice(&(block.len() as u32).to_le_bytes());
        let index = frame(&index);
        let index_at = f.len() as u64;
        f.extend_from_slice(&index);
        let mut footer = index_at.to_le_bytes().to_vec();
        footer.extend_from_slice(&(index.len() as u64).to_le_bytes());
        let crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&crc.to_le_bytes());
        footer.extend_from_slice(&FOOTER_MAGIC);
        f.extend_from_slice(&footer);
        f
    }

    #[test]
    fn version_1_files_migrate_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let table = TableId([4; 16]);
        let ms: Vec<Mutation> = (0..3)
            .map(|i| Mutation {
                table,
                token: i,
                key: Bytes::from(format!("k{i}")),
                partition_deletion: None,
                range_tombstones: vec![],
                static_row: None,
                rows: vec![Row {
                    clustering: Bytes::from_static(b"c"),
                    cells: vec![Cell {
                        column: 1,
                        path: None,
                        timestamp: 5,
                        value: CellValue::Live {
                            value: Bytes::from(format!("v{i}")),
                            ttl: None,
                        },
                    }],
                    ..Row::default()
                }],
            })
            .collect();
        let path = dir.path().join(v2::file_name(9));
        std::fs::write(&path, v1_file(table, &ms)).unwrap();
        assert_eq!(v2::file_version(&path).unwrap(), 1);
        migrate(&path, 9, table, 0.01).unwrap();
        assert_eq!(v2::file_version(&path).unwrap(), v2::SSTABLE_VERSION);
        let t = v2::SsTable::open(&path, 9).unwrap();
        assert_eq!(
            t.covers_up_to,
            ReplayPosition {
                segment: 3,
                offset: 77
            }
        );
        assert_eq!(t.stats.partitions, 3);
        for m in ms {
            let (pk, st) = mutation_to_state(m);
            assert_eq!(t.get(&pk).unwrap(), Some(st));
        }
    }
}

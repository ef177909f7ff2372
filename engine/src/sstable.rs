//! Immutable sorted tables (format version 2). Byte tables: `docs/formats/sstable.md`.
//!
//! One file per SSTable, `<data_dir>/<table id hex>/sst-<generation, 16 digits>.db`, written
//! as `….db.tmp`, synced incrementally while written and fully before the rename, then the
//! directory is fsynced: a crash leaves either no SSTable or a complete one. The file is a
//! header, LZ4-compressed data blocks each with its own CRC32, then three framed sections
//! (block index, Bloom filter, statistics) and a footer pointing at them. It is read through
//! a read-only memory map: files are never modified once renamed into place.
//!
//! A data block holds *partition chunks* in the commit-log mutation encoding: the first
//! chunk of a partition carries its partition deletion, range tombstones and static row,
//! later chunks (in later blocks) only rows. A large partition therefore spans many ~64 KiB
//! blocks, and the block index (first partition key and first clustering key of each block)
//! doubles as the row index: a read seeks to the block holding its first clustering key and
//! decodes one block at a time.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{
    ChunkOutline, MutationParts, chunk_outline, decode_mutation_header, decode_mutations_shared,
    encode_chunk_start, encode_mutations, encode_row,
};
use crate::commitlog::{ReplayPosition, sync_dir};
use crate::error::{EngineError, Result};
use crate::memtable::{Memtable, PartitionKey, PartitionState, PartitionView, memtable_corrupt};
use crate::model::*;
use crate::reconcile::{end_admits, prefix_successor, start_admits};

pub const SSTABLE_MAGIC: [u8; 8] = *b"SHOALSST";
pub const SSTABLE_VERSION: u32 = 2;
pub const HEADER_SIZE: u64 = 48;
pub const FOOTER_SIZE: u64 = 32;
const FOOTER_MAGIC: [u8; 4] = *b"SEN2";
/// Uncompressed payload a block aims at: small enough that a point read inflates little,
/// large enough for LZ4 to find repetition and for the index to stay small.
pub const BLOCK_TARGET: usize = 4 << 10;
/// Bytes of a block's framing before its compressed payload.
pub const BLOCK_HEADER_SIZE: usize = 12;
/// Refuse to inflate a block beyond this, whatever its header claims.
const MAX_BLOCK_UNCOMPRESSED: usize = 64 << 20;
/// Flush and output are synced every this many bytes so the kernel never accumulates a huge
/// dirty backlog whose writeback would stall the commit log's fsyncs.
const SYNC_EVERY: u64 = 4 << 20;
const FLAG_CONTINUATION: u8 = 1;

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

pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("sst-")?.strip_suffix(".db")?.parse().ok()
}

// ---------------------------------------------------------------- blocks

/// Why a data block could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockError(pub String);

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bit of a block's uncompressed-length field that marks a *stored* block, whose payload
/// follows uncompressed. Lengths never reach it (see [`MAX_BLOCK_UNCOMPRESSED`]).
const STORED: u32 = 1 << 31;

/// Blocks that compress by less than an eighth are stored: decompressing them on every read
/// would cost more than the disk they save.
fn worth_compressing(raw: usize, compressed: usize) -> bool {
    compressed < raw - raw / 8
}

/// Whether the next block of a writer is worth an LZ4 attempt. Data that did not compress
/// (random values, already compressed blobs) rarely starts to: after each incompressible
/// block the writer skips twice as many attempts as before (up to [`MAX_SKIP`]), and one
/// block that compresses resets it.
#[derive(Debug, Default)]
pub struct CompressionProbe {
    skip: u32,
    backoff: u32,
}

/// Most blocks stored without trying after a run of incompressible ones.
const MAX_SKIP: u32 = 32;

impl CompressionProbe {
    fn should_try(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            false
        } else {
            true
        }
    }

    fn record(&mut self, compressed_well: bool) {
        if compressed_well {
            self.backoff = 0;
        } else {
            self.backoff = (self.backoff * 2).clamp(1, MAX_SKIP);
            self.skip = self.backoff;
        }
    }
}

/// Encodes partition chunks as one data block: u32 stored length, u32 uncompressed length
/// (with [`STORED`] set if the payload is not compressed), u32 CRC32 of (those 8 bytes ++
/// stored bytes), then the LZ4 block or the payload itself. The payload is a chunk directory
/// (u32 count, u32 offset of each chunk) followed by the chunks, each a one-mutation list in
/// the commit-log encoding, so a point read decodes one chunk.
pub fn encode_block(chunks: &[Mutation], probe: &mut CompressionProbe) -> Vec<u8> {
    let mut b = BlockBuilder::default();
    for c in chunks {
        b.starts.push(b.chunks.len() as u32);
        encode_mutations(std::slice::from_ref(c), &mut b.chunks);
    }
    seal_block(&b, probe, &mut Vec::new())
}

/// The chunks of a block being built: their encodings back to back, and where each starts.
#[derive(Debug, Default)]
struct BlockBuilder {
    chunks: Vec<u8>,
    starts: Vec<u32>,
}

/// Frames `b` as a data block (see [`encode_block`]); `raw` is scratch for the payload.
fn seal_block(b: &BlockBuilder, probe: &mut CompressionProbe, raw: &mut Vec<u8>) -> Vec<u8> {
    let dir_len = 4 + 4 * b.starts.len();
    raw.clear();
    raw.reserve(dir_len + b.chunks.len());
    raw.extend_from_slice(&(b.starts.len() as u32).to_le_bytes());
    for s in &b.starts {
        raw.extend_from_slice(&(dir_len as u32 + s).to_le_bytes());
    }
    raw.extend_from_slice(&b.chunks);
    let compressed = if probe.should_try() {
        let c = lz4_flex::block::compress(raw);
        let good = worth_compressing(raw.len(), c.len());
        probe.record(good);
        good.then_some(c)
    } else {
        None
    };
    match &compressed {
        Some(c) => frame_block(raw.len() as u32, c),
        None => frame_block(raw.len() as u32 | STORED, raw),
    }
}

/// Frames a block body: its length, `field` (the payload length, with [`STORED`] if the
/// body is the payload itself), the CRC32 of both and the body. Public so that tests and
/// fuzz targets can wrap arbitrary bytes in valid framing.
pub fn frame_block(field: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK_HEADER_SIZE + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&field.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[0..8]);
    h.update(body);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The payload length a block header's uncompressed-length field gives.
fn payload_len(field: u32) -> u32 {
    field & !STORED
}

/// Checks a block's framing and checksum and inflates its payload.
fn inflate(buf: &[u8]) -> std::result::Result<Vec<u8>, BlockError> {
    let e = |m: &str| Err(BlockError(m.to_string()));
    if buf.len() < BLOCK_HEADER_SIZE {
        return e("block shorter than its header");
    }
    let c = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let field = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let stored = field & STORED != 0;
    let u = payload_len(field) as usize;
    let crc = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if c.checked_add(BLOCK_HEADER_SIZE) != Some(buf.len()) {
        return e("block length mismatch");
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[0..8]);
    h.update(&buf[BLOCK_HEADER_SIZE..]);
    if h.finalize() != crc {
        return e("block checksum mismatch");
    }
    if u > MAX_BLOCK_UNCOMPRESSED {
        return e("block claims an implausible uncompressed size");
    }
    if stored {
        if c != u {
            return e("stored block length mismatch");
        }
        return Ok(buf[BLOCK_HEADER_SIZE..].to_vec());
    }
    let raw = lz4_flex::block::decompress(&buf[BLOCK_HEADER_SIZE..], u)
        .map_err(|x| BlockError(format!("LZ4: {x}")))?;
    if raw.len() != u {
        return e("block inflated to the wrong size");
    }
    Ok(raw)
}

/// The chunk directory of an inflated payload: each chunk's byte range, validated.
fn chunk_ranges(raw: &[u8]) -> std::result::Result<Vec<(usize, usize)>, BlockError> {
    let bad = || BlockError("malformed chunk directory".into());
    let n = u32::from_le_bytes(
        raw.get(0..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as usize;
    let dir_end = n
        .checked_mul(4)
        .and_then(|x| x.checked_add(4))
        .filter(|e| *e <= raw.len())
        .ok_or_else(bad)?;
    let mut out = Vec::with_capacity(n);
    let mut prev = dir_end;
    for i in 0..n {
        let off =
            u32::from_le_bytes(raw[4 + 4 * i..8 + 4 * i].try_into().map_err(|_| bad())?) as usize;
        if (i == 0 && off != prev) || off < prev || off > raw.len() {
            return Err(bad());
        }
        if i > 0 {
            out.push((prev, off));
        }
        prev = off;
    }
    if n > 0 {
        out.push((prev, raw.len()));
    } else if dir_end != raw.len() {
        return Err(bad());
    }
    Ok(out)
}

/// (token, key) of an encoded chunk without decoding it: version byte, count, table id,
/// token, key (see the mutation encoding in `docs/formats/commitlog.md`).
fn chunk_key(chunk: &[u8]) -> Option<(i64, &[u8])> {
    let mut c = Cursor { buf: chunk, pos: 0 };
    c.take(1)?;
    c.varint()?;
    c.take(16)?;
    let token = c.u64()? as i64;
    let n = usize::try_from(c.varint()?).ok()?;
    let start = c.pos;
    Some((token, chunk.get(start..start.checked_add(n)?)?))
}

/// `chunk_key` as the token and the key's byte range within the chunk.
fn chunk_key_range(chunk: &[u8]) -> Option<(i64, std::ops::Range<usize>)> {
    let (token, key) = chunk_key(chunk)?;
    let start = key.as_ptr() as usize - chunk.as_ptr() as usize;
    Some((token, start..start + key.len()))
}

/// Decodes chunk `raw[range]`; its keys and values share the inflated block's memory.
fn decode_chunk(
    raw: &Bytes,
    range: std::ops::Range<usize>,
) -> std::result::Result<Mutation, BlockError> {
    let mut ms = decode_mutations_shared(raw, range).map_err(|d| BlockError(d.to_string()))?;
    if ms.len() != 1 {
        return Err(BlockError("a chunk must hold one mutation".into()));
    }
    Ok(ms.pop().expect("one"))
}

/// Decodes one whole data block (framing included). Pure and total: any input yields chunks
/// or an error, never a panic or an unbounded allocation.
pub fn decode_block(buf: &[u8]) -> std::result::Result<Vec<Mutation>, BlockError> {
    let raw = Bytes::from(inflate(buf)?);
    chunk_ranges(&raw)?
        .into_iter()
        .map(|(a, b)| decode_chunk(&raw, a..b))
        .collect()
}

/// Decodes only the chunk of partition `pk` in a block, if it has one.
pub fn find_in_block(
    buf: &[u8],
    pk: &PartitionKey,
) -> std::result::Result<Option<Mutation>, BlockError> {
    find_chunk(buf, pk, true)
}

fn find_chunk(
    buf: &[u8],
    pk: &PartitionKey,
    with_rows: bool,
) -> std::result::Result<Option<Mutation>, BlockError> {
    find_chunk_inflated(&Bytes::from(inflate(buf)?), pk, with_rows)
}

fn find_chunk_inflated(
    raw: &Bytes,
    pk: &PartitionKey,
    with_rows: bool,
) -> std::result::Result<Option<Mutation>, BlockError> {
    let ranges = chunk_ranges(raw)?;
    let mut lo = 0;
    let mut hi = ranges.len();
    let target = (pk.token, &pk.key[..]);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let (a, b) = ranges[mid];
        let k = chunk_key(&raw[a..b]).ok_or_else(|| BlockError("malformed chunk key".into()))?;
        match k.cmp(&target) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal if with_rows => {
                return decode_chunk(raw, a..b).map(Some);
            }
            std::cmp::Ordering::Equal => {
                return decode_mutation_header(&raw[a..b])
                    .map(Some)
                    .map_err(|d| BlockError(d.to_string()));
            }
        }
    }
    Ok(None)
}

/// Sections other than data blocks: u32 payload length, u32 CRC32 of (length ++ payload).
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

fn unframe<'a>(buf: &'a [u8], path: &Path, offset: u64) -> Result<&'a [u8]> {
    let corrupt = |reason: &str| EngineError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    if buf.len() < 8 {
        return Err(corrupt("section shorter than its framing"));
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len.checked_add(8) != Some(buf.len()) {
        return Err(corrupt("section length mismatch"));
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[0..4]);
    h.update(&buf[8..]);
    if h.finalize() != crc {
        return Err(corrupt("section checksum mismatch"));
    }
    Ok(&buf[8..])
}

// ---------------------------------------------------------------- bloom filter

/// FNV-1a then a SplitMix64 finaliser: cheap, and good enough to spread partition keys.
fn key_hash(key: &[u8]) -> (u64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(h);
    (a, mix(a ^ 0x9e37_79b9_7f4a_7c15) | 1)
}

/// The high bit of the Bloom section's first word marks the blocked layout.
const BLOCKED: u32 = 1 << 31;
/// Extra bits a blocked filter gets over a classic one for the same false-positive chance:
/// keys crowd some cache lines more than others, which costs about this much.
const BLOCKED_EXTRA_BITS: f64 = 1.15;

/// A per-SSTable Bloom filter on partition keys.
///
/// New filters are *blocked*: a key's k bits all fall in one 64-byte block (one cache line),
/// so a probe costs one cache miss instead of k. Filters of multi-megabyte SSTables miss the
/// cache on nearly every probe, and a read probes every overlapping SSTable, so this was a
/// visible share of point reads, flushes and compactions. The classic layout (k bits spread
/// over the whole array) stays readable for files written before.
#[derive(Clone, Debug)]
pub struct Bloom {
    k: u32,
    layout: BloomLayout,
}

#[derive(Clone, Debug)]
enum BloomLayout {
    Classic(Vec<u8>),
    Blocked(Vec<BloomBlock>),
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct BloomBlock([u64; 8]);

impl Bloom {
    /// Sized for `n` keys at false-positive probability `fp`.
    pub fn new(n: u64, fp: f64) -> Bloom {
        let (m, k) = Bloom::dimensions(n, fp);
        let blocks = ((m * BLOCKED_EXTRA_BITS / 512.0).ceil() as usize).clamp(1, 1 << 24);
        Bloom {
            k,
            layout: BloomLayout::Blocked(vec![BloomBlock::default(); blocks]),
        }
    }

    /// The classic layout, as files before the blocked one were written.
    #[cfg(test)]
    fn new_classic(n: u64, fp: f64) -> Bloom {
        let (m, k) = Bloom::dimensions(n, fp);
        let bytes = ((m as u64).div_ceil(8)).min(1 << 30) as usize;
        Bloom {
            k,
            layout: BloomLayout::Classic(vec![0; bytes]),
        }
    }

    /// (bits, probes) of an ideal filter for `n` keys at false-positive chance `fp`.
    fn dimensions(n: u64, fp: f64) -> (f64, u32) {
        let fp = fp.clamp(1e-6, 0.5);
        let n = n.max(1) as f64;
        let m = (-(n * fp.ln()) / (std::f64::consts::LN_2.powi(2)))
            .ceil()
            .max(64.0);
        let k = ((m / n) * std::f64::consts::LN_2).round().clamp(1.0, 20.0) as u32;
        (m, k)
    }

    /// The block a key's bits live in, and the bit positions (0..512) within it.
    fn block_probes(k: u32, blocks: usize, key: &[u8]) -> (usize, impl Iterator<Item = usize>) {
        let (a, b) = key_hash(key);
        // Multiply-shift maps the hash onto 0..blocks without a division.
        let block = ((a as u128 * blocks as u128) >> 64) as usize;
        // Double hashing inside the block, from bits the block choice did not use.
        let step = a.rotate_left(32) | 1;
        let probes =
            (0..k as u64).map(move |i| (b.wrapping_add(i.wrapping_mul(step)) >> 55) as usize);
        (block, probes)
    }

    /// The classic layout's bit positions (0..8 · bytes) of a key.
    fn classic_probes(k: u32, bytes: usize, key: &[u8]) -> impl Iterator<Item = usize> {
        let (a, b) = key_hash(key);
        let nbits = bytes as u64 * 8;
        (0..k as u64).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % nbits) as usize)
    }

    pub fn insert(&mut self, key: &[u8]) {
        match &mut self.layout {
            BloomLayout::Classic(bits) => {
                for p in Bloom::classic_probes(self.k, bits.len(), key) {
                    bits[p / 8] |= 1 << (p % 8);
                }
            }
            BloomLayout::Blocked(blocks) => {
                let (block, probes) = Bloom::block_probes(self.k, blocks.len(), key);
                let words = &mut blocks[block].0;
                for p in probes {
                    words[p >> 6] |= 1 << (p & 63);
                }
            }
        }
    }

    pub fn may_contain(&self, key: &[u8]) -> bool {
        match &self.layout {
            BloomLayout::Classic(bits) => Bloom::classic_probes(self.k, bits.len(), key)
                .all(|p| bits[p / 8] & (1 << (p % 8)) != 0),
            BloomLayout::Blocked(blocks) => {
                let (block, mut probes) = Bloom::block_probes(self.k, blocks.len(), key);
                let words = &blocks[block].0;
                probes.all(|p| words[p >> 6] & (1 << (p & 63)) != 0)
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        match &self.layout {
            BloomLayout::Classic(bits) => {
                let mut out = Vec::with_capacity(4 + bits.len());
                out.extend_from_slice(&self.k.to_le_bytes());
                out.extend_from_slice(bits);
                out
            }
            BloomLayout::Blocked(blocks) => {
                let mut out = Vec::with_capacity(4 + blocks.len() * 64);
                out.extend_from_slice(&(self.k | BLOCKED).to_le_bytes());
                for w in blocks.iter().flat_map(|b| b.0) {
                    out.extend_from_slice(&w.to_le_bytes());
                }
                out
            }
        }
    }

    fn decode(buf: &[u8]) -> Option<Bloom> {
        let word = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?);
        let body = buf.get(4..)?;
        let k = word & !BLOCKED;
        if k == 0 || k > 64 || body.is_empty() {
            return None;
        }
        let layout = if word & BLOCKED != 0 {
            if body.len() % 64 != 0 {
                return None;
            }
            BloomLayout::Blocked(
                body.chunks_exact(64)
                    .map(|c| {
                        let mut b = BloomBlock::default();
                        for (w, bytes) in b.0.iter_mut().zip(c.chunks_exact(8)) {
                            *w = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                        }
                        b
                    })
                    .collect(),
            )
        } else {
            BloomLayout::Classic(body.to_vec())
        };
        Some(Bloom { k, layout })
    }
}

// ---------------------------------------------------------------- statistics

/// The statistics component: what compaction and reads decide on without touching data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsTableStats {
    /// Over every cell, liveness and deletion timestamp. `i64::MAX`/`MIN` when none.
    pub min_timestamp: Timestamp,
    pub max_timestamp: Timestamp,
    /// Over tombstones' local deletion times and expiring data's expiry times.
    /// `i32::MAX`/`MIN` when none.
    pub min_local_deletion_time: LocalTime,
    pub max_local_deletion_time: LocalTime,
    /// Cell tombstones, row, range, partition and collection deletions.
    pub tombstones: u64,
    pub partitions: u64,
    pub rows: u64,
    /// Uncompressed bytes of all data blocks.
    pub uncompressed_bytes: u64,
    /// Leveled compaction's level (0 for flushes).
    pub level: u32,
    pub first_key: PartitionKey,
    pub last_key: PartitionKey,
    /// Generations this SSTable was compacted from (empty for flushes).
    pub ancestors: Vec<u64>,
}

impl Default for SsTableStats {
    fn default() -> Self {
        SsTableStats {
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
            min_local_deletion_time: i32::MAX,
            max_local_deletion_time: i32::MIN,
            tombstones: 0,
            partitions: 0,
            rows: 0,
            uncompressed_bytes: 0,
            level: 0,
            first_key: PartitionKey {
                token: 0,
                key: Bytes::new(),
            },
            last_key: PartitionKey {
                token: 0,
                key: Bytes::new(),
            },
            ancestors: Vec::new(),
        }
    }
}

/// What one partition's cells contribute to its SSTable's statistics, kept beside a chunk
/// that is copied without decoding: a memtable's packed partitions carry their own, and
/// compaction's copies stand in their source SSTable's (wider than the chunk's own, which
/// only makes purging more careful).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionBounds {
    pub min_timestamp: Timestamp,
    pub max_timestamp: Timestamp,
    pub min_local_deletion_time: LocalTime,
    pub max_local_deletion_time: LocalTime,
    pub tombstones: u32,
}

impl PartitionBounds {
    /// The bounds of a partition's whole content.
    pub fn of(st: &PartitionState) -> PartitionBounds {
        let mut s = SsTableStats::default();
        s.header(st);
        for r in st.rows.values() {
            s.row(r);
        }
        PartitionBounds {
            min_timestamp: s.min_timestamp,
            max_timestamp: s.max_timestamp,
            min_local_deletion_time: s.min_local_deletion_time,
            max_local_deletion_time: s.max_local_deletion_time,
            tombstones: u32::try_from(s.tombstones).unwrap_or(u32::MAX),
        }
    }

    /// A whole SSTable's bounds, for chunks copied out of it. Only for sources without
    /// tombstones or expiring data (those need purging, so compaction decodes them).
    pub(crate) fn of_source(stats: &SsTableStats) -> PartitionBounds {
        debug_assert!(stats.tombstones == 0 && stats.max_local_deletion_time == i32::MIN);
        PartitionBounds {
            min_timestamp: stats.min_timestamp,
            max_timestamp: stats.max_timestamp,
            min_local_deletion_time: i32::MAX,
            max_local_deletion_time: i32::MIN,
            tombstones: 0,
        }
    }

    fn widen(&self, s: &mut SsTableStats) {
        if self.min_timestamp <= self.max_timestamp {
            s.ts(self.min_timestamp);
            s.ts(self.max_timestamp);
        }
        if self.min_local_deletion_time <= self.max_local_deletion_time {
            s.ldt(self.min_local_deletion_time);
            s.ldt(self.max_local_deletion_time);
        }
        s.tombstones += u64::from(self.tombstones);
    }
}

impl SsTableStats {
    fn ts(&mut self, t: Timestamp) {
        self.min_timestamp = self.min_timestamp.min(t);
        self.max_timestamp = self.max_timestamp.max(t);
    }

    fn ldt(&mut self, t: LocalTime) {
        self.min_local_deletion_time = self.min_local_deletion_time.min(t);
        self.max_local_deletion_time = self.max_local_deletion_time.max(t);
    }

    fn deletion(&mut self, d: &DeletionTime) {
        self.ts(d.marked_for_delete_at);
        self.ldt(d.local_deletion_time);
        self.tombstones += 1;
    }

    fn row(&mut self, r: &Row) {
        if let Some(l) = &r.liveness {
            self.ts(l.timestamp);
            if let Some(t) = l.ttl {
                self.ldt(t.local_expiration_time);
            }
        }
        if let Some(d) = &r.deletion {
            self.deletion(d);
        }
        for (_, d) in &r.complex_deletions {
            self.deletion(d);
        }
        for c in &r.cells {
            self.ts(c.timestamp);
            match &c.value {
                CellValue::Tombstone {
                    local_deletion_time,
                } => {
                    self.ldt(*local_deletion_time);
                    self.tombstones += 1;
                }
                CellValue::Live { ttl: Some(t), .. } => self.ldt(t.local_expiration_time),
                _ => {}
            }
        }
    }

    fn header(&mut self, st: &PartitionState) {
        if let Some(d) = &st.deletion {
            self.deletion(d);
        }
        for rt in &st.range_tombstones {
            self.deletion(&rt.deletion);
        }
        if let Some(s) = &st.static_row {
            self.row(s);
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&self.min_timestamp.to_le_bytes());
        o.extend_from_slice(&self.max_timestamp.to_le_bytes());
        o.extend_from_slice(&self.min_local_deletion_time.to_le_bytes());
        o.extend_from_slice(&self.max_local_deletion_time.to_le_bytes());
        o.extend_from_slice(&self.tombstones.to_le_bytes());
        o.extend_from_slice(&self.partitions.to_le_bytes());
        o.extend_from_slice(&self.rows.to_le_bytes());
        o.extend_from_slice(&self.uncompressed_bytes.to_le_bytes());
        o.extend_from_slice(&self.level.to_le_bytes());
        for k in [&self.first_key, &self.last_key] {
            o.extend_from_slice(&k.token.to_le_bytes());
            put_varint(&mut o, k.key.len() as u64);
            o.extend_from_slice(&k.key);
        }
        put_varint(&mut o, self.ancestors.len() as u64);
        for a in &self.ancestors {
            o.extend_from_slice(&a.to_le_bytes());
        }
        o
    }

    fn decode(buf: &[u8]) -> Option<SsTableStats> {
        let mut c = Cursor { buf, pos: 0 };
        let mut s = SsTableStats {
            min_timestamp: c.u64()? as i64,
            max_timestamp: c.u64()? as i64,
            min_local_deletion_time: c.u32()? as i32,
            max_local_deletion_time: c.u32()? as i32,
            tombstones: c.u64()?,
            partitions: c.u64()?,
            rows: c.u64()?,
            uncompressed_bytes: c.u64()?,
            level: c.u32()?,
            ..SsTableStats::default()
        };
        for i in 0..2 {
            let token = c.u64()? as i64;
            let n = usize::try_from(c.varint()?).ok()?;
            let key = Bytes::copy_from_slice(c.take(n)?);
            let k = PartitionKey { token, key };
            if i == 0 {
                s.first_key = k;
            } else {
                s.last_key = k;
            }
        }
        let n = c.varint()?;
        if n > (buf.len() / 8) as u64 {
            return None;
        }
        for _ in 0..n {
            s.ancestors.push(c.u64()?);
        }
        (c.pos == buf.len()).then_some(s)
    }
}

// ---------------------------------------------------------------- writing

/// Paces background writers (compaction) to a byte rate; `0` = unlimited.
pub struct RateLimiter {
    bytes_per_sec: u64,
    state: std::sync::Mutex<(Instant, u64)>,
}

impl RateLimiter {
    pub fn new(bytes_per_sec: u64) -> RateLimiter {
        RateLimiter {
            bytes_per_sec,
            state: std::sync::Mutex::new((Instant::now(), 0)),
        }
    }

    /// Accounts `n` bytes and sleeps as long as the writer is ahead of its budget.
    pub fn consume(&self, n: u64) {
        if self.bytes_per_sec == 0 {
            return;
        }
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            // A long idle period must not bank an unbounded burst.
            if s.0.elapsed() > Duration::from_secs(1) {
                *s = (Instant::now(), 0);
            }
            s.1 += n;
            let due = Duration::from_secs_f64(s.1 as f64 / self.bytes_per_sec as f64);
            due.saturating_sub(s.0.elapsed())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

struct BlockEntry {
    first: PartitionKey,
    /// Clustering key of the first row of the block's first chunk (empty if none).
    first_ck: Bytes,
    /// The block's first chunk continues a partition begun in an earlier block.
    continuation: bool,
    offset: u64,
    len: u32,
}

/// Rough encoded size of a row, to cut blocks near [`BLOCK_TARGET`].
fn row_bytes(r: &Row) -> usize {
    16 + r.clustering.len()
        + 24 * r.complex_deletions.len()
        + r.cells
            .iter()
            .map(|c| {
                16 + c.path.as_ref().map_or(0, |p| p.len())
                    + match &c.value {
                        CellValue::Live { value, .. } => value.len() + 4,
                        _ => 4,
                    }
            })
            .sum::<usize>()
}

/// Streams partitions, in (token, key) order, into a new SSTable.
pub struct Writer {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    table: TableId,
    generation: u64,
    covers_up_to: ReplayPosition,
    w: Option<std::io::BufWriter<File>>,
    offset: u64,
    since_sync: u64,
    index: Vec<BlockEntry>,
    /// The block being filled, its first partition key and clustering key (copies, for the
    /// index), and whether it starts with a continuation chunk.
    block: BlockBuilder,
    block_first: Option<(PartitionKey, Bytes)>,
    block_bytes: usize,
    block_continuation: bool,
    /// Encoded rows of the chunk being built (its row count precedes them).
    row_buf: Vec<u8>,
    /// Scratch for a block's payload.
    raw: Vec<u8>,
    block_target: usize,
    bloom: Bloom,
    stats: SsTableStats,
    limiter: Option<Arc<RateLimiter>>,
    /// The last partition added, in a buffer reused for every key: cloning each key
    /// instead would allocate per partition for keys that own their bytes.
    last: Option<(i64, Vec<u8>)>,
    probe: CompressionProbe,
}

impl Writer {
    /// Starts SSTable `generation` in `dir`, which must exist (a compaction must not
    /// recreate the directory of a table dropped meanwhile).
    pub fn create(
        dir: &Path,
        table: TableId,
        generation: u64,
        covers_up_to: ReplayPosition,
        expected_partitions: u64,
        bloom_fp_chance: f64,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Result<Writer> {
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
        Ok(Writer {
            dir: dir.to_path_buf(),
            path,
            tmp,
            table,
            generation,
            covers_up_to,
            w: Some(w),
            offset: HEADER_SIZE,
            since_sync: 0,
            index: Vec::new(),
            block: BlockBuilder::default(),
            block_first: None,
            block_bytes: 0,
            block_continuation: false,
            row_buf: Vec::new(),
            raw: Vec::new(),
            block_target: BLOCK_TARGET,
            bloom: Bloom::new(expected_partitions, bloom_fp_chance),
            stats: SsTableStats::default(),
            limiter,
            last: None,
            probe: CompressionProbe::default(),
        })
    }

    /// Sets the uncompressed size at which blocks are cut (default [`BLOCK_TARGET`]).
    pub fn with_block_target(mut self, bytes: usize) -> Writer {
        self.block_target = bytes.max(1);
        self
    }

    /// Bytes written so far (compressed), for splitting outputs.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    pub fn partitions(&self) -> u64 {
        self.stats.partitions
    }

    fn write_raw(&mut self, buf: &[u8]) -> Result<()> {
        let w = self.w.as_mut().expect("writer used after finish");
        w.write_all(buf).map_err(|e| io_err(&self.tmp, e))?;
        self.offset += buf.len() as u64;
        self.since_sync += buf.len() as u64;
        if self.since_sync >= SYNC_EVERY {
            self.since_sync = 0;
            w.flush().map_err(|e| io_err(&self.tmp, e))?;
            w.get_ref().sync_data().map_err(|e| io_err(&self.tmp, e))?;
        }
        Ok(())
    }

    /// Appends the chunk of `parts` whose `rows` encoded rows are in `row_buf`.
    fn end_chunk(&mut self, parts: MutationParts<'_>, rows: usize, first_ck: Option<&Bytes>) {
        if self.block.starts.is_empty() {
            // Copies, not slices: the index lives until `finish`, and a slice would keep
            // the whole decoded input block it points into alive with it (a compaction
            // writing 1 GB held 1 GB of input blocks this way).
            self.block_first = Some((
                PartitionKey {
                    token: parts.token,
                    key: Bytes::copy_from_slice(parts.key),
                },
                first_ck.map_or_else(Bytes::new, |c| Bytes::copy_from_slice(c)),
            ));
        }
        self.block.starts.push(self.block.chunks.len() as u32);
        encode_chunk_start(&mut self.block.chunks, parts, rows);
        self.block.chunks.extend_from_slice(&self.row_buf);
        self.row_buf.clear();
    }

    fn flush_block(&mut self) -> Result<()> {
        let Some((entry_first, first_ck)) = self.block_first.take() else {
            return Ok(());
        };
        let continuation = self.block_continuation;
        let framed = seal_block(&self.block, &mut self.probe, &mut self.raw);
        self.stats.uncompressed_bytes += payload_len(u32::from_le_bytes([
            framed[4], framed[5], framed[6], framed[7],
        ])) as u64;
        let offset = self.offset;
        self.write_raw(&framed)?;
        self.index.push(BlockEntry {
            first: entry_first,
            first_ck,
            continuation,
            offset,
            len: framed.len() as u32,
        });
        if let Some(l) = &self.limiter {
            l.consume(framed.len() as u64);
        }
        self.block.chunks.clear();
        self.block.starts.clear();
        self.block_bytes = 0;
        Ok(())
    }
}

impl Writer {
    fn note_key(&mut self, pk: &PartitionKey) {
        match &mut self.last {
            Some((token, key)) => {
                debug_assert!(
                    (*token, &key[..]) < (pk.token, &pk.key[..]),
                    "keys out of order"
                );
                *token = pk.token;
                key.clear();
                key.extend_from_slice(&pk.key);
            }
            None => self.last = Some((pk.token, pk.key.to_vec())),
        }
    }

    /// Appends a partition; partitions must come in strictly increasing (token, key) order.
    /// Empty partitions are skipped.
    pub fn add(&mut self, pk: &PartitionKey, st: &PartitionState) -> Result<()> {
        if st.is_empty() {
            return Ok(());
        }
        self.note_key(pk);
        self.bloom.insert(&pk.key);
        self.stats.header(st);
        if self.stats.partitions == 0 {
            self.stats.first_key = pk.clone();
        }
        self.stats.partitions += 1;
        let header = MutationParts {
            table: self.table,
            token: pk.token,
            key: &pk.key,
            partition_deletion: st.deletion.as_ref(),
            range_tombstones: &st.range_tombstones,
            static_row: st.static_row.as_ref(),
        };
        let mut parts = header;
        if self.block.starts.is_empty() {
            self.block_continuation = false;
        }
        self.block_bytes += 32
            + pk.key.len()
            + st.static_row.as_ref().map_or(0, row_bytes)
            + st.range_tombstones.len() * 48;
        // Rows are encoded straight from the partition, chunk by chunk: a block full before
        // a row ends the chunk there, and the rest continue in the next block.
        let mut rows = 0;
        let mut first_ck = None;
        for row in st.rows.values() {
            // Not before the chunk's first row: a small partition arriving at a full block
            // would leave a chunk of its header alone there, and a partition in two chunks
            // cannot be copied whole by compaction.
            if rows > 0 && self.block_bytes >= self.block_target {
                self.end_chunk(parts, rows, first_ck);
                self.flush_block()?;
                self.block_continuation = true;
                parts = MutationParts {
                    partition_deletion: None,
                    range_tombstones: &[],
                    static_row: None,
                    ..header
                };
                (rows, first_ck) = (0, None);
            }
            self.stats.row(row);
            self.stats.rows += 1;
            self.block_bytes += row_bytes(row);
            first_ck.get_or_insert(&row.clustering);
            encode_row(row, &mut self.row_buf);
            rows += 1;
        }
        self.end_chunk(parts, rows, first_ck);
        if self.block_bytes >= self.block_target {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Appends a partition held in one chunk as it is already encoded (by another SSTable,
    /// or by a memtable that packed it), without decoding its rows. `outline` is the
    /// chunk's; `bounds` what its cells contribute to the statistics (see
    /// [`PartitionBounds`]).
    pub(crate) fn add_chunk(
        &mut self,
        pk: &PartitionKey,
        chunk: &[u8],
        outline: &ChunkOutline,
        bounds: &PartitionBounds,
    ) -> Result<()> {
        self.note_key(pk);
        self.bloom.insert(&pk.key);
        if self.stats.partitions == 0 {
            self.stats.first_key = pk.clone();
        }
        self.stats.partitions += 1;
        self.stats.rows += outline.rows;
        bounds.widen(&mut self.stats);
        if self.block.starts.is_empty() {
            self.block_continuation = false;
            self.block_first = Some((
                PartitionKey {
                    token: pk.token,
                    key: Bytes::copy_from_slice(&pk.key),
                },
                Bytes::copy_from_slice(&outline.first_clustering),
            ));
        }
        self.block.starts.push(self.block.chunks.len() as u32);
        self.block.chunks.extend_from_slice(chunk);
        self.block_bytes += chunk.len();
        if self.block_bytes >= self.block_target {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Appends every partition of a memtable that no longer takes writes (a flush).
    /// Packed partitions are copied as they are; one larger than a block is encoded row by
    /// row instead, so that a configured small block size holds.
    pub fn add_memtable(&mut self, mt: &Memtable) -> Result<()> {
        mt.for_each(|pk, p| match p {
            PartitionView::Packed(p) if p.chunk().len() <= self.block_target => {
                let outline = chunk_outline(p.chunk()).map_err(memtable_corrupt)?;
                self.add_chunk(pk, p.chunk(), &outline, p.bounds())
            }
            PartitionView::Packed(p) => self.add(pk, &p.unpack().map_err(memtable_corrupt)?),
            PartitionView::Open(st) => self.add(pk, st),
        })
    }

    /// Completes the file (index, Bloom filter, statistics, footer), syncs and publishes it.
    /// Returns `None` (and leaves nothing behind) if no partition was added.
    pub fn finish(mut self, level: u32, ancestors: Vec<u64>) -> Result<Option<SsTable>> {
        self.flush_block()?;
        if self.index.is_empty() {
            self.abandon();
            return Ok(None);
        }
        if let Some((token, key)) = self.last.take() {
            self.stats.last_key = PartitionKey {
                token,
                key: Bytes::from(key),
            };
        }
        self.stats.level = level;
        self.stats.ancestors = ancestors;
        let mut payload = Vec::new();
        put_varint(&mut payload, self.index.len() as u64);
        for e in &self.index {
            payload.extend_from_slice(&e.first.token.to_le_bytes());
            put_varint(&mut payload, e.first.key.len() as u64);
            payload.extend_from_slice(&e.first.key);
            put_varint(&mut payload, e.first_ck.len() as u64);
            payload.extend_from_slice(&e.first_ck);
            payload.push(if e.continuation { FLAG_CONTINUATION } else { 0 });
            payload.extend_from_slice(&e.offset.to_le_bytes());
            payload.extend_from_slice(&e.len.to_le_bytes());
        }
        let index_off = self.offset;
        self.write_raw(&frame(&payload))?;
        let bloom_off = self.offset;
        let bloom = frame(&self.bloom.encode());
        self.write_raw(&bloom)?;
        let stats_off = self.offset;
        let stats = frame(&self.stats.encode());
        self.write_raw(&stats)?;
        let mut footer = Vec::with_capacity(FOOTER_SIZE as usize);
        footer.extend_from_slice(&index_off.to_le_bytes());
        footer.extend_from_slice(&bloom_off.to_le_bytes());
        footer.extend_from_slice(&stats_off.to_le_bytes());
        let crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&crc.to_le_bytes());
        footer.extend_from_slice(&FOOTER_MAGIC);
        self.write_raw(&footer)?;
        let w = self.w.take().expect("finish once");
        let file = w
            .into_inner()
            .map_err(|e| io_err(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        sync_dir(&self.dir)?;
        SsTable::open(&self.path, self.generation).map(Some)
    }

    /// Drops the unfinished file.
    pub fn abandon(mut self) {
        self.w.take();
        let _ = fs::remove_file(&self.tmp);
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn covers_up_to(&self) -> ReplayPosition {
        self.covers_up_to
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // An unfinished writer (error path) must not leave its temporary file behind.
        if self.w.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked cursor over a section payload.
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
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
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

    fn bytes(&mut self) -> Option<Bytes> {
        let n = usize::try_from(self.varint()?).ok()?;
        Some(Bytes::copy_from_slice(self.take(n)?))
    }
}

// ---------------------------------------------------------------- reading

/// Maps an SSTable read-only.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: `Mmap::map` is unsafe because another process or thread could modify or
    // truncate the file while it is mapped, which would change bytes behind shared
    // references (or raise SIGBUS). SSTables are immutable once renamed into place: the
    // engine only ever creates them under a temporary name, renames them, and later unlinks
    // them (unlinking keeps an existing mapping valid). Nothing in the engine opens a
    // published SSTable for writing, and the data directory belongs to this process; every
    // byte read from the map is still checksum-verified before use.
    unsafe { memmap2::Mmap::map(file) }
}

const FENCE_STRIDE: usize = 64;

/// `all.partition_point(pred)` for a monotone `pred`, narrowed first by `fences`
/// (`all[0], all[FENCE_STRIDE], ...`).
fn fenced_partition_point(fences: &[i64], all: &[i64], pred: impl Fn(i64) -> bool) -> usize {
    let f = fences.partition_point(|t| pred(*t));
    // fences[f - 1] = all[(f - 1) * STRIDE] satisfies pred; fences[f] = all[f * STRIDE]
    // does not.
    let lo = if f == 0 {
        0
    } else {
        (f - 1) * FENCE_STRIDE + 1
    };
    let hi = (f * FENCE_STRIDE).min(all.len());
    lo + all[lo..hi.max(lo)].partition_point(|t| pred(*t))
}

/// `s.partition_point(pred)` when the answer is expected near the start (usually 0 or 1:
/// the blocks that begin with one token), by doubling steps.
fn gallop(s: &[i64], pred: impl Fn(i64) -> bool) -> usize {
    let mut hi = 1;
    while hi < s.len() && pred(s[hi - 1]) {
        hi *= 2;
    }
    let hi = hi.min(s.len());
    let lo = hi / 2;
    lo + s[lo..hi].partition_point(|t| pred(*t))
}

/// An open SSTable: index, Bloom filter and statistics in memory, blocks read from the map.
pub struct SsTable {
    pub path: PathBuf,
    pub generation: u64,
    pub covers_up_to: ReplayPosition,
    pub stats: SsTableStats,
    /// File size in bytes.
    pub size: u64,
    map: memmap2::Mmap,
    index: Vec<BlockEntry>,
    /// `index[i].first.token`, packed: a point read binary-searches these 8-byte tokens
    /// (the top levels stay in cache) instead of ~90-byte entries whose keys live elsewhere
    /// on the heap (a cache miss or two per probe, ~20 probes in a 1 GB SSTable). Profiled
    /// at 11% of a node's CPU serving point reads from 10M partitions.
    first_tokens: Vec<i64>,
    /// Every FENCE_STRIDE-th entry of `first_tokens`: a 1 GB SSTable's fences fit in a few
    /// pages, so a search touches them and then one 512-byte stretch of `first_tokens`
    /// instead of ~20 scattered cache lines (and, on a VM, as many TLB misses).
    fences: Vec<i64>,
    bloom: Bloom,
    blocks_read: AtomicU64,
}

impl std::fmt::Debug for SsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsTable")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("size", &self.size)
            .finish()
    }
}

impl SsTable {
    /// Opens and validates an SSTable's header, footer, index, filter and statistics.
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
        let map = map_file(&file).map_err(|e| io_err(path, e))?;
        let header = &map[0..HEADER_SIZE as usize];
        if header[0..8] != SSTABLE_MAGIC {
            return Err(corrupt(0, "bad SSTable magic"));
        }
        if crc32fast::hash(&header[0..44]).to_le_bytes() != header[44..48] {
            return Err(corrupt(0, "header checksum mismatch"));
        }
        let mut c = Cursor {
            buf: header,
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
        let footer_at = size - FOOTER_SIZE;
        let footer = &map[footer_at as usize..];
        if footer[28..32] != FOOTER_MAGIC
            || crc32fast::hash(&footer[0..24]).to_le_bytes() != footer[24..28]
        {
            return Err(corrupt(footer_at, "bad footer"));
        }
        let mut c = Cursor {
            buf: footer,
            pos: 0,
        };
        let (ioff, boff, soff) = (
            c.u64().unwrap_or(0),
            c.u64().unwrap_or(0),
            c.u64().unwrap_or(0),
        );
        if !(HEADER_SIZE <= ioff && ioff <= boff && boff <= soff && soff <= footer_at) {
            return Err(corrupt(footer_at, "section offsets out of order"));
        }
        let section = |from: u64, to: u64| unframe(&map[from as usize..to as usize], path, from);
        let payload = section(ioff, boff)?;
        let bad_index = || corrupt(ioff, "malformed index");
        let mut c = Cursor {
            buf: payload,
            pos: 0,
        };
        let n = c.varint().ok_or_else(bad_index)?;
        let mut index = Vec::new();
        for _ in 0..n {
            let token = c.u64().ok_or_else(bad_index)? as i64;
            let key = c.bytes().ok_or_else(bad_index)?;
            let first_ck = c.bytes().ok_or_else(bad_index)?;
            let flags = c.take(1).ok_or_else(bad_index)?[0];
            let offset = c.u64().ok_or_else(bad_index)?;
            let len = c.u32().ok_or_else(bad_index)?;
            if offset < HEADER_SIZE || offset.checked_add(len as u64).is_none_or(|e| e > ioff) {
                return Err(bad_index());
            }
            index.push(BlockEntry {
                first: PartitionKey { token, key },
                first_ck,
                continuation: flags & FLAG_CONTINUATION != 0,
                offset,
                len,
            });
        }
        if c.pos != payload.len()
            || !index.is_sorted_by(|a, b| (&a.first, &a.first_ck) <= (&b.first, &b.first_ck))
        {
            return Err(bad_index());
        }
        let bloom = Bloom::decode(section(boff, soff)?)
            .ok_or_else(|| corrupt(boff, "malformed Bloom filter"))?;
        let stats = SsTableStats::decode(section(soff, footer_at)?)
            .ok_or_else(|| corrupt(soff, "malformed statistics"))?;
        Ok(SsTable {
            path: path.to_path_buf(),
            generation,
            covers_up_to,
            stats,
            size,
            map,
            first_tokens: index.iter().map(|e| e.first.token).collect(),
            fences: index
                .iter()
                .step_by(FENCE_STRIDE)
                .map(|e| e.first.token)
                .collect(),
            index,
            bloom,
            blocks_read: AtomicU64::new(0),
        })
    }

    /// Data blocks decoded since open (a measure of read amplification).
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read.load(Ordering::Relaxed)
    }

    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    fn corrupt(&self, i: usize, d: BlockError) -> EngineError {
        EngineError::Corrupt {
            path: self.path.clone(),
            offset: self.index[i].offset,
            reason: d.0,
        }
    }

    /// Block `i`, checked and inflated.
    fn inflated(&self, i: usize) -> Result<Bytes> {
        let e = &self.index[i];
        self.blocks_read.fetch_add(1, Ordering::Relaxed);
        let buf = &self.map[e.offset as usize..(e.offset + e.len as u64) as usize];
        inflate(buf)
            .map(Bytes::from)
            .map_err(|d| self.corrupt(i, d))
    }

    fn chunk(&self, i: usize, pk: &PartitionKey, with_rows: bool) -> Result<Option<Mutation>> {
        let raw = self.inflated(i)?;
        find_chunk_inflated(&raw, pk, with_rows).map_err(|d| self.corrupt(i, d))
    }

    /// Whether the partition may be in this SSTable (key range, then Bloom filter).
    pub fn may_contain(&self, pk: &PartitionKey) -> bool {
        *pk >= self.stats.first_key && *pk <= self.stats.last_key && self.bloom.may_contain(&pk.key)
    }

    /// The blocks that may hold chunks of `pk`: `[start, end)`.
    fn partition_blocks(&self, pk: &PartitionKey) -> Option<(usize, usize)> {
        // Keys order by token first: only blocks starting at this very token need a full
        // key comparison (usually none or one).
        let a = fenced_partition_point(&self.fences, &self.first_tokens, |t| t < pk.token);
        let b = a + gallop(&self.first_tokens[a..], |t| t <= pk.token);
        let lo = a + self.index[a..b].partition_point(|e| e.first < *pk);
        let hi = a + self.index[a..b].partition_point(|e| e.first <= *pk);
        let start = if lo < hi && !self.index[lo].continuation {
            lo
        } else {
            lo.checked_sub(1)?
        };
        Some((start, hi.max(start + 1)))
    }

    /// The partition's first chunk (deletion, range tombstones, static row; maybe rows)
    /// and the blocks holding it.
    pub fn partition_header(&self, pk: &PartitionKey) -> Result<Option<PartitionSlice<'_>>> {
        if !self.may_contain(pk) {
            return Ok(None);
        }
        let Some((start, end)) = self.partition_blocks(pk) else {
            return Ok(None);
        };
        let raw = self.inflated(start)?;
        let Some(m) = find_chunk_inflated(&raw, pk, false).map_err(|d| self.corrupt(start, d))?
        else {
            return Ok(None);
        };
        Ok(Some(PartitionSlice {
            table: self,
            pk: pk.clone(),
            start,
            end,
            start_block: raw,
            header: PartitionState {
                deletion: m.partition_deletion,
                range_tombstones: m.range_tombstones,
                static_row: m.static_row,
                rows: Default::default(),
            },
        }))
    }

    /// Reads a whole partition into memory.
    pub fn get(&self, pk: &PartitionKey) -> Result<Option<PartitionState>> {
        let Some(p) = self.partition_header(pk)? else {
            return Ok(None);
        };
        let mut st = p.header.clone();
        for r in p.rows(None, None, false) {
            let r = r?;
            st.rows.insert(r);
        }
        Ok(Some(st))
    }

    /// Every partition, undecoded (see [`RawScan`]).
    pub fn raw_scan(&self) -> RawScan<'_> {
        self.raw_scan_from_block(0)
    }

    fn raw_scan_from_block(&self, next_block: usize) -> RawScan<'_> {
        RawScan {
            table: self,
            next_block,
            block: (Bytes::new(), 0),
            chunks: Vec::new().into_iter(),
            pending: None,
        }
    }

    /// Decodes a partition [`RawScan`] yielded.
    pub fn decode_raw(&self, p: RawPartition) -> Result<(PartitionKey, PartitionState)> {
        let mut st = PartitionState::default();
        for (chunk, block) in std::iter::once(p.first).chain(p.more) {
            let m = decode_chunk(&chunk, 0..chunk.len()).map_err(|d| self.corrupt(block, d))?;
            if m.token != p.key.token || m.key != p.key.key {
                return Err(self.corrupt(block, BlockError("chunk key mismatch".into())));
            }
            st.apply(m);
        }
        Ok((p.key, st))
    }

    /// Whether compaction may copy this SSTable's partitions without decoding them: with no
    /// tombstones and no expiring data, none of them has anything to purge.
    pub fn copyable(&self) -> bool {
        self.stats.tombstones == 0 && self.stats.max_local_deletion_time == i32::MIN
    }

    /// The outline of a partition's only chunk (see [`Writer::add_chunk`]).
    pub(crate) fn outline(&self, p: &RawPartition) -> Result<ChunkOutline> {
        chunk_outline(&p.first.0).map_err(|d| self.corrupt(p.first.1, BlockError(d.to_string())))
    }

    /// Whole partitions at or after `from` (everything if `None`), in order.
    pub fn scan(&self, from: Option<PartitionKey>) -> SsTableScan<'_> {
        let block = from
            .as_ref()
            .and_then(|k| self.index.partition_point(|e| e.first <= *k).checked_sub(1))
            .unwrap_or(0);
        SsTableScan {
            raw: self.raw_scan_from_block(block),
            from,
        }
    }
}

/// One partition of one SSTable, found by [`SsTable::partition_header`].
pub struct PartitionSlice<'a> {
    table: &'a SsTable,
    pk: PartitionKey,
    start: usize,
    end: usize,
    /// Block `start` inflated: most partitions live in one block, read once.
    start_block: Bytes,
    pub header: PartitionState,
}

impl<'a> PartitionSlice<'a> {
    /// The partition's rows in walk order, decoding one block at a time, starting at the
    /// block that holds `lower` (forward) or the last block that may hold keys below `upper`
    /// (reversed). Rows outside the bounds may be yielded; callers filter.
    pub fn rows(
        &self,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        reversed: bool,
    ) -> PartitionRows<'a> {
        let idx = &self.table.index;
        // Blocks after `start` are continuations: their first clustering key bounds the
        // rows of every block before them.
        let mut first = self.start;
        let mut last = self.end - 1;
        if let Some(l) = lower {
            let p = idx[self.start + 1..self.end].partition_point(|e| &e.first_ck[..] <= l);
            first = self.start + p;
        }
        if let Some(u) = upper {
            let p = idx[self.start + 1..self.end].partition_point(|e| &e.first_ck[..] < u);
            last = self.start + p;
        }
        let (next, stop) = if first > last {
            (first, first)
        } else if reversed {
            (last + 1, first)
        } else {
            (first, last + 1)
        };
        PartitionRows {
            table: self.table,
            pk: self.pk.clone(),
            start: self.start,
            start_block: self.start_block.clone(),
            next,
            stop,
            reversed,
            buffered: Vec::new().into_iter(),
            failed: false,
        }
    }
}

/// Iterator of [`PartitionSlice::rows`].
pub struct PartitionRows<'a> {
    table: &'a SsTable,
    pk: PartitionKey,
    start: usize,
    start_block: Bytes,
    /// Forward: next block to read, `stop` exclusive. Reversed: one past the next block
    /// to read, counting down to `stop`.
    next: usize,
    stop: usize,
    reversed: bool,
    buffered: std::vec::IntoIter<Row>,
    failed: bool,
}

impl Iterator for PartitionRows<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        loop {
            if let Some(r) = self.buffered.next() {
                return Some(Ok(r));
            }
            if self.failed || self.next == self.stop {
                return None;
            }
            let b = if self.reversed {
                self.next -= 1;
                self.next
            } else {
                self.next += 1;
                self.next - 1
            };
            let chunk = if b == self.start {
                find_chunk_inflated(&self.start_block, &self.pk, true)
                    .map_err(|d| self.table.corrupt(b, d))
            } else {
                self.table.chunk(b, &self.pk, true)
            }
            .map(|m| m.map(|m| m.rows));
            match chunk {
                Ok(rows) => {
                    let mut rows = rows.unwrap_or_default();
                    if self.reversed {
                        rows.reverse();
                    }
                    self.buffered = rows.into_iter();
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Iterator of [`SsTable::scan`]: joins the chunks of each partition.
pub struct SsTableScan<'a> {
    raw: RawScan<'a>,
    from: Option<PartitionKey>,
}

impl Iterator for SsTableScan<'_> {
    type Item = Result<(PartitionKey, PartitionState)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let p = match self.raw.next()? {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            // Partitions before `from` in the first block are skipped undecoded.
            if self.from.as_ref().is_some_and(|f| p.key < *f) {
                continue;
            }
            return Some(self.raw.table.decode_raw(p));
        }
    }
}

/// One partition as an SSTable stores it: its key and its encoded chunks (with the block
/// each came from, for error reports), not decoded.
pub struct RawPartition {
    pub key: PartitionKey,
    first: (Bytes, usize),
    more: Vec<(Bytes, usize)>,
}

impl RawPartition {
    /// The partition's only chunk, if it fits in one.
    pub fn single_chunk(&self) -> Option<&Bytes> {
        self.more.is_empty().then_some(&self.first.0)
    }
}

/// Every partition of an SSTable in order, undecoded: compaction decodes only the ones it
/// has to merge or purge.
pub struct RawScan<'a> {
    table: &'a SsTable,
    next_block: usize,
    block: (Bytes, usize),
    chunks: std::vec::IntoIter<(usize, usize)>,
    pending: Option<RawPartition>,
}

impl RawScan<'_> {
    fn next_chunk(&mut self) -> Option<Result<(PartitionKey, Bytes, usize)>> {
        loop {
            if let Some((a, b)) = self.chunks.next() {
                let (raw, i) = &self.block;
                let chunk = raw.slice(a..b);
                let Some((token, key)) = chunk_key_range(&chunk) else {
                    let e = BlockError("malformed chunk key".into());
                    return Some(Err(self.table.corrupt(*i, e)));
                };
                let key = chunk.slice(key);
                return Some(Ok((PartitionKey { token, key }, chunk, *i)));
            }
            let i = self.next_block;
            if i >= self.table.index.len() {
                return None;
            }
            self.next_block += 1;
            let chunks = self.table.inflated(i).and_then(|raw| {
                let c = chunk_ranges(&raw).map_err(|d| self.table.corrupt(i, d))?;
                Ok((raw, c))
            });
            match chunks {
                Ok((raw, c)) => {
                    self.block = (raw, i);
                    self.chunks = c.into_iter();
                }
                Err(e) => {
                    self.next_block = self.table.index.len();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Iterator for RawScan<'_> {
    type Item = Result<RawPartition>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, chunk, block) = match self.next_chunk() {
                None => return self.pending.take().map(Ok),
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(c)) => c,
            };
            match &mut self.pending {
                // A partition larger than a block continues in the next block's first chunk.
                Some(p) if p.key == key => p.more.push((chunk, block)),
                _ => {
                    let next = RawPartition {
                        key,
                        first: (chunk, block),
                        more: Vec::new(),
                    };
                    if let Some(done) = self.pending.replace(next) {
                        return Some(Ok(done));
                    }
                }
            }
        }
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

/// Lists a table's SSTable files by generation, deleting leftover temporary files (a crash
/// during a flush or compaction).
pub fn list(data_dir: &Path, table: &TableId) -> Result<Vec<(u64, PathBuf)>> {
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
            out.push((g, e.path()));
        }
    }
    out.sort();
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

/// Exclusive upper bound of the keys an end bound admits (`None` = unbounded).
pub fn end_bound_upper(b: &ClusteringBound) -> Option<Vec<u8>> {
    if b.prefix.is_empty() {
        None
    } else if b.inclusive {
        prefix_successor(&b.prefix)
    } else {
        Some(b.prefix.to_vec())
    }
}

/// Whether a row key lies past a slice in walk order (every later row does too).
pub fn past_slice(r: &ClusteringRange, key: &[u8], reversed: bool) -> bool {
    if reversed {
        !start_admits(&r.start, key)
    } else {
        !end_admits(&r.end, key)
    }
}

#[cfg(test)]
mod bloom_tests {
    use super::Bloom;
    use proptest::prelude::*;

    fn key(i: u64) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    /// Share of `probes` absent keys the filter admits.
    fn false_positives(f: &Bloom, n: u64, probes: u64) -> f64 {
        (n..n + probes).filter(|i| f.may_contain(&key(*i))).count() as f64 / probes as f64
    }

    #[test]
    fn blocked_filter_meets_its_false_positive_chance() {
        let n = 200_000;
        for fp in [0.1, 0.01, 0.001] {
            let mut f = Bloom::new(n, fp);
            (0..n).for_each(|i| f.insert(&key(i)));
            assert!((0..n).all(|i| f.may_contain(&key(i))), "no false negatives");
            let rate = false_positives(&f, n, 200_000);
            assert!(rate <= fp * 1.3, "fp chance {fp}: measured {rate}");
        }
    }

    #[test]
    fn both_layouts_survive_encoding() {
        for mut f in [Bloom::new(1000, 0.01), Bloom::new_classic(1000, 0.01)] {
            (0..1000).for_each(|i| f.insert(&key(i)));
            let back = Bloom::decode(&f.encode()).expect("decodes");
            assert_eq!(back.encode(), f.encode());
            assert!((0..1000).all(|i| back.may_contain(&key(i))));
            assert!(false_positives(&back, 1000, 10_000) < 0.03);
        }
    }

    #[test]
    fn malformed_sections_are_refused() {
        let blocked = Bloom::new(100, 0.01).encode();
        assert!(
            Bloom::decode(&blocked[..blocked.len() - 1]).is_none(),
            "partial block"
        );
        assert!(Bloom::decode(&blocked[..4]).is_none(), "no bits");
        assert!(Bloom::decode(&[0, 0, 0, 0x80, 1]).is_none(), "k = 0");
        assert!(Bloom::decode(&[65, 0, 0, 0, 1]).is_none(), "k too large");
        assert!(Bloom::decode(&[]).is_none());
    }

    proptest! {
        #[test]
        fn inserted_keys_are_always_admitted(
            keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..300),
            fp in 0.0001f64..0.5,
        ) {
            let mut blocked = Bloom::new(keys.len() as u64, fp);
            let mut classic = Bloom::new_classic(keys.len() as u64, fp);
            for k in &keys {
                blocked.insert(k);
                classic.insert(k);
            }
            for k in &keys {
                prop_assert!(blocked.may_contain(k));
                prop_assert!(classic.may_contain(k));
            }
        }
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fenced and galloping searches agree with a plain binary search.
        #[test]
        fn fenced_and_galloping_searches_match_partition_point(
            mut v in proptest::collection::vec(-50i64..50, 0..600),
            t in -60i64..60,
        ) {
            v.sort();
            let fences: Vec<i64> = v.iter().step_by(FENCE_STRIDE).copied().collect();
            prop_assert_eq!(
                fenced_partition_point(&fences, &v, |x| x < t),
                v.partition_point(|x| *x < t)
            );
            prop_assert_eq!(
                fenced_partition_point(&fences, &v, |x| x <= t),
                v.partition_point(|x| *x <= t)
            );
            let a = v.partition_point(|x| *x < t);
            prop_assert_eq!(
                a + gallop(&v[a..], |x| x <= t),
                v.partition_point(|x| *x <= t)
            );
        }
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;

    fn chunk(key: u64, value: Vec<u8>) -> Mutation {
        Mutation {
            table: TableId([0; 16]),
            token: key as i64,
            key: Bytes::from(key.to_be_bytes().to_vec()),
            partition_deletion: None,
            range_tombstones: Vec::new(),
            static_row: None,
            rows: vec![Row {
                cells: vec![Cell {
                    column: 0,
                    path: None,
                    timestamp: 1,
                    value: CellValue::Live {
                        value: Bytes::from(value),
                        ttl: None,
                    },
                }],
                ..Row::default()
            }],
        }
    }

    /// SplitMix64 bytes: what LZ4 cannot shrink.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        (0..n as u64)
            .map(|i| {
                let mut z = (seed << 32 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u8
            })
            .collect()
    }

    fn is_stored(block: &[u8]) -> bool {
        u32::from_le_bytes([block[4], block[5], block[6], block[7]]) & STORED != 0
    }

    #[test]
    fn incompressible_blocks_are_stored_and_attempts_back_off() {
        let mut probe = CompressionProbe::default();
        let mut attempts = 0;
        for i in 0..200u64 {
            let chunks: Vec<Mutation> = (0..4).map(|k| chunk(k, noise(i * 16 + k, 1000))).collect();
            let tried = probe.skip == 0;
            attempts += tried as u32;
            let block = encode_block(&chunks, &mut probe);
            assert!(is_stored(&block), "random data is stored");
            assert_eq!(decode_block(&block).unwrap(), chunks);
        }
        // Attempts at blocks 0, 2, 5, 10, 19, 36, then every 33rd.
        assert!(
            attempts <= 12,
            "{attempts} LZ4 attempts on 200 random blocks"
        );
        // One compressible block resets the backoff.
        probe.skip = 0;
        let text: Vec<Mutation> = (0..16).map(|k| chunk(k, vec![b'a'; 200])).collect();
        let block = encode_block(&text, &mut probe);
        assert!(!is_stored(&block));
        assert_eq!((probe.skip, probe.backoff), (0, 0));
        assert_eq!(decode_block(&block).unwrap(), text);
    }

    #[test]
    fn stored_blocks_are_checked_like_compressed_ones() {
        let chunks = vec![chunk(1, noise(7, 300))];
        let good = encode_block(&chunks, &mut CompressionProbe::default());
        assert!(is_stored(&good));
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decode_block(&flipped).unwrap_err().0.contains("checksum"));
        // A stored block whose lengths disagree is refused even with a valid checksum.
        let field = u32::from_le_bytes([good[4], good[5], good[6], good[7]]);
        let short = frame_block(field, &good[BLOCK_HEADER_SIZE..good.len() - 1]);
        assert!(
            decode_block(&short)
                .unwrap_err()
                .0
                .contains("stored block length")
        );
    }
}

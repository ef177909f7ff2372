//! Compact binary encoding of [`Mutation`]s, the payload of a commit-log entry.
//!
//! The layout is documented byte by byte in `docs/formats/commitlog.md`. Decoding never
//! panics: every length is checked against the remaining input with checked arithmetic, so a
//! corrupt (or hostile) payload yields an error instead of an allocation bomb or a panic.

use bytes::Bytes;

use crate::model::*;

/// Version byte that starts every mutation payload.
pub const MUTATION_FORMAT_VERSION: u8 = 1;

/// Why a payload could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

// Flags of a mutation.
const M_PARTITION_DELETION: u8 = 1;
const M_STATIC_ROW: u8 = 2;
// Flags of a row.
const R_LIVENESS: u8 = 1;
const R_LIVENESS_TTL: u8 = 2;
const R_DELETION: u8 = 4;
// Flags of a cell. Bits 1-2 hold the kind.
const C_PATH: u8 = 1;
const C_KIND_SHIFT: u8 = 1;
const C_KIND_MASK: u8 = 0b110;
const C_KIND_LIVE: u8 = 0;
const C_KIND_TOMBSTONE: u8 = 1;
const C_KIND_COUNTER: u8 = 2;
const C_TTL: u8 = 8;

/// Appends the encoding of `mutations` (version byte included) to `out`.
pub fn encode_mutations(mutations: &[Mutation], out: &mut Vec<u8>) {
    out.push(MUTATION_FORMAT_VERSION);
    put_varint(out, mutations.len() as u64);
    for m in mutations {
        encode_mutation(m, out);
    }
}

/// Decodes a payload written by [`encode_mutations`].
pub fn decode_mutations(buf: &[u8]) -> Result<Vec<Mutation>, DecodeError> {
    decode_mutations_from(Reader {
        buf,
        pos: 0,
        shared: None,
    })
}

/// [`decode_mutations`] of `buf[range]`, with keys and values sharing `buf`'s memory.
pub(crate) fn decode_mutations_shared(
    buf: &Bytes,
    range: std::ops::Range<usize>,
) -> Result<Vec<Mutation>, DecodeError> {
    let Some(slice) = buf.get(range.clone()) else {
        return err("range out of the buffer");
    };
    decode_mutations_from(Reader {
        buf: slice,
        pos: 0,
        shared: Some((buf, range.start)),
    })
}

fn decode_mutations_from(mut r: Reader<'_>) -> Result<Vec<Mutation>, DecodeError> {
    let buf = r.buf;
    let version = r.u8()?;
    if version != MUTATION_FORMAT_VERSION {
        return err(format!("unknown mutation format version {version}"));
    }
    let count = r.len_prefix(MIN_MUTATION_SIZE)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(decode_mutation(&mut r, true)?);
    }
    if r.pos != buf.len() {
        return err(format!(
            "{} trailing bytes after the mutations",
            buf.len() - r.pos
        ));
    }
    Ok(out)
}

/// Decodes a one-mutation payload without its rows (partition deletion, range tombstones
/// and static row only): SSTable reads need a large partition's header long before its rows.
pub(crate) fn decode_mutation_header(buf: &[u8]) -> Result<Mutation, DecodeError> {
    let mut r = Reader {
        buf,
        pos: 0,
        shared: None,
    };
    let version = r.u8()?;
    if version != MUTATION_FORMAT_VERSION {
        return err(format!("unknown mutation format version {version}"));
    }
    if r.len_prefix(MIN_MUTATION_SIZE)? != 1 {
        return err("expected exactly one mutation");
    }
    decode_mutation(&mut r, false)
}

/// What an SSTable writer needs of a chunk it copies without decoding its rows: how many
/// rows it holds and the first one's clustering key (empty when it has none).
pub(crate) struct ChunkOutline {
    pub rows: u64,
    pub first_clustering: Bytes,
}

/// Reads a one-mutation payload (an SSTable chunk) up to its first row's clustering key.
pub(crate) fn chunk_outline(chunk: &Bytes) -> Result<ChunkOutline, DecodeError> {
    let mut r = Reader {
        buf: chunk,
        pos: 0,
        shared: Some((chunk, 0)),
    };
    let version = r.u8()?;
    if version != MUTATION_FORMAT_VERSION {
        return err(format!("unknown mutation format version {version}"));
    }
    if r.len_prefix(MIN_MUTATION_SIZE)? != 1 {
        return err("expected exactly one mutation");
    }
    decode_mutation(&mut r, false)?;
    let rows = r.len_prefix(MIN_ROW_SIZE)? as u64;
    let first_clustering = if rows > 0 { r.bytes()? } else { Bytes::new() };
    Ok(ChunkOutline {
        rows,
        first_clustering,
    })
}

// Lower bounds of encoded sizes: a count read from the input is rejected when the remaining
// bytes could not possibly hold that many items, so a corrupt count cannot make us
// preallocate gigabytes.
const MIN_MUTATION_SIZE: usize = 16 + 8 + 1 + 1 + 1 + 1;
const MIN_ROW_SIZE: usize = 1 + 1 + 1 + 1;
const MIN_CELL_SIZE: usize = 1 + 1 + 8 + 1;
const MIN_RT_SIZE: usize = 2 + 2 + 12;
const MIN_COMPLEX_SIZE: usize = 1 + 12;

fn encode_mutation(m: &Mutation, out: &mut Vec<u8>) {
    encode_partition_header(
        out,
        MutationParts {
            table: m.table,
            token: m.token,
            key: &m.key,
            partition_deletion: m.partition_deletion.as_ref(),
            range_tombstones: &m.range_tombstones,
            static_row: m.static_row.as_ref(),
        },
    );
    put_varint(out, m.rows.len() as u64);
    for row in &m.rows {
        encode_row(row, out);
    }
}

/// A mutation's partition-level fields, borrowed: what [`encode_chunk_start`] needs besides the row count.
#[derive(Clone, Copy)]
pub(crate) struct MutationParts<'a> {
    pub table: TableId,
    pub token: i64,
    pub key: &'a [u8],
    pub partition_deletion: Option<&'a DeletionTime>,
    pub range_tombstones: &'a [RangeTombstone],
    pub static_row: Option<&'a Row>,
}

/// Starts a one-mutation list (what [`encode_mutations`] writes for one mutation) from
/// borrowed parts, up to and including its row count; the caller appends exactly `rows`
/// rows with [`encode_row`]. SSTable writers encode memtable and merged rows this way
/// instead of first cloning them into a [`Mutation`].
pub(crate) fn encode_chunk_start(out: &mut Vec<u8>, parts: MutationParts<'_>, rows: usize) {
    out.push(MUTATION_FORMAT_VERSION);
    put_varint(out, 1);
    encode_partition_header(out, parts);
    put_varint(out, rows as u64);
}

/// Everything of a mutation before its row count.
fn encode_partition_header(out: &mut Vec<u8>, m: MutationParts<'_>) {
    out.extend_from_slice(&m.table.0);
    out.extend_from_slice(&m.token.to_le_bytes());
    put_bytes(out, m.key);
    let mut flags = 0;
    if m.partition_deletion.is_some() {
        flags |= M_PARTITION_DELETION;
    }
    if m.static_row.is_some() {
        flags |= M_STATIC_ROW;
    }
    out.push(flags);
    if let Some(d) = m.partition_deletion {
        put_deletion(out, d);
    }
    put_varint(out, m.range_tombstones.len() as u64);
    for rt in m.range_tombstones {
        put_bytes(out, &rt.range.start.prefix);
        out.push(rt.range.start.inclusive as u8);
        put_bytes(out, &rt.range.end.prefix);
        out.push(rt.range.end.inclusive as u8);
        put_deletion(out, &rt.deletion);
    }
    if let Some(s) = m.static_row {
        encode_row(s, out);
    }
}

fn decode_mutation(r: &mut Reader<'_>, with_rows: bool) -> Result<Mutation, DecodeError> {
    let table = TableId(r.array::<16>()?);
    let token = i64::from_le_bytes(r.array::<8>()?);
    let key = r.bytes()?;
    let flags = r.u8()?;
    if flags & !(M_PARTITION_DELETION | M_STATIC_ROW) != 0 {
        return err(format!("unknown mutation flags {flags:#x}"));
    }
    let partition_deletion = if flags & M_PARTITION_DELETION != 0 {
        Some(r.deletion()?)
    } else {
        None
    };
    let n = r.len_prefix(MIN_RT_SIZE)?;
    let mut range_tombstones = Vec::with_capacity(n);
    for _ in 0..n {
        let sp = r.bytes()?;
        let si = r.bool()?;
        let ep = r.bytes()?;
        let ei = r.bool()?;
        let deletion = r.deletion()?;
        range_tombstones.push(RangeTombstone {
            range: ClusteringRange {
                start: ClusteringBound {
                    prefix: sp,
                    inclusive: si,
                },
                end: ClusteringBound {
                    prefix: ep,
                    inclusive: ei,
                },
            },
            deletion,
        });
    }
    let static_row = if flags & M_STATIC_ROW != 0 {
        Some(decode_row(r)?)
    } else {
        None
    };
    let n = if with_rows {
        r.len_prefix(MIN_ROW_SIZE)?
    } else {
        0
    };
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(decode_row(r)?);
    }
    Ok(Mutation {
        table,
        token,
        key,
        partition_deletion,
        range_tombstones,
        static_row,
        rows,
    })
}

pub(crate) fn encode_row(row: &Row, out: &mut Vec<u8>) {
    put_bytes(out, &row.clustering);
    let mut flags = 0;
    if let Some(l) = &row.liveness {
        flags |= R_LIVENESS;
        if l.ttl.is_some() {
            flags |= R_LIVENESS_TTL;
        }
    }
    if row.deletion.is_some() {
        flags |= R_DELETION;
    }
    out.push(flags);
    if let Some(l) = &row.liveness {
        out.extend_from_slice(&l.timestamp.to_le_bytes());
        if let Some(t) = &l.ttl {
            put_ttl(out, t);
        }
    }
    if let Some(d) = &row.deletion {
        put_deletion(out, d);
    }
    put_varint(out, row.complex_deletions.len() as u64);
    for (col, d) in &row.complex_deletions {
        put_varint(out, *col as u64);
        put_deletion(out, d);
    }
    put_varint(out, row.cells.len() as u64);
    for c in &row.cells {
        encode_cell(c, out);
    }
}

fn decode_row(r: &mut Reader<'_>) -> Result<Row, DecodeError> {
    let clustering = r.bytes()?;
    let flags = r.u8()?;
    if flags & !(R_LIVENESS | R_LIVENESS_TTL | R_DELETION) != 0 {
        return err(format!("unknown row flags {flags:#x}"));
    }
    if flags & R_LIVENESS_TTL != 0 && flags & R_LIVENESS == 0 {
        return err("row TTL flag without liveness");
    }
    let liveness = if flags & R_LIVENESS != 0 {
        let timestamp = i64::from_le_bytes(r.array::<8>()?);
        let ttl = if flags & R_LIVENESS_TTL != 0 {
            Some(r.ttl()?)
        } else {
            None
        };
        Some(LivenessInfo { timestamp, ttl })
    } else {
        None
    };
    let deletion = if flags & R_DELETION != 0 {
        Some(r.deletion()?)
    } else {
        None
    };
    let n = r.len_prefix(MIN_COMPLEX_SIZE)?;
    let mut complex_deletions = Vec::with_capacity(n);
    for _ in 0..n {
        let col = r.column()?;
        complex_deletions.push((col, r.deletion()?));
    }
    let n = r.len_prefix(MIN_CELL_SIZE)?;
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        cells.push(decode_cell(r)?);
    }
    Ok(Row {
        clustering,
        liveness,
        deletion,
        complex_deletions,
        cells,
    })
}

fn encode_cell(c: &Cell, out: &mut Vec<u8>) {
    put_varint(out, c.column as u64);
    let mut flags = 0;
    if c.path.is_some() {
        flags |= C_PATH;
    }
    let kind = match &c.value {
        CellValue::Live { ttl, .. } => {
            if ttl.is_some() {
                flags |= C_TTL;
            }
            C_KIND_LIVE
        }
        CellValue::Tombstone { .. } => C_KIND_TOMBSTONE,
        CellValue::Counter { .. } => C_KIND_COUNTER,
    };
    flags |= kind << C_KIND_SHIFT;
    out.push(flags);
    if let Some(p) = &c.path {
        put_bytes(out, p);
    }
    out.extend_from_slice(&c.timestamp.to_le_bytes());
    match &c.value {
        CellValue::Live { value, ttl } => {
            put_bytes(out, value);
            if let Some(t) = ttl {
                put_ttl(out, t);
            }
        }
        CellValue::Tombstone {
            local_deletion_time,
        } => out.extend_from_slice(&local_deletion_time.to_le_bytes()),
        CellValue::Counter { value } => out.extend_from_slice(&value.to_le_bytes()),
    }
}

fn decode_cell(r: &mut Reader<'_>) -> Result<Cell, DecodeError> {
    let column = r.column()?;
    let flags = r.u8()?;
    if flags & !(C_PATH | C_KIND_MASK | C_TTL) != 0 {
        return err(format!("unknown cell flags {flags:#x}"));
    }
    let path = if flags & C_PATH != 0 {
        Some(r.bytes()?)
    } else {
        None
    };
    let timestamp = i64::from_le_bytes(r.array::<8>()?);
    let kind = (flags & C_KIND_MASK) >> C_KIND_SHIFT;
    if flags & C_TTL != 0 && kind != C_KIND_LIVE {
        return err("TTL flag on a non-live cell");
    }
    let value = match kind {
        C_KIND_LIVE => {
            let value = r.bytes()?;
            let ttl = if flags & C_TTL != 0 {
                Some(r.ttl()?)
            } else {
                None
            };
            CellValue::Live { value, ttl }
        }
        C_KIND_TOMBSTONE => CellValue::Tombstone {
            local_deletion_time: i32::from_le_bytes(r.array::<4>()?),
        },
        C_KIND_COUNTER => CellValue::Counter {
            value: i64::from_le_bytes(r.array::<8>()?),
        },
        k => return err(format!("unknown cell kind {k}")),
    };
    Ok(Cell {
        column,
        path,
        timestamp,
        value,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_deletion(out: &mut Vec<u8>, d: &DeletionTime) {
    out.extend_from_slice(&d.marked_for_delete_at.to_le_bytes());
    out.extend_from_slice(&d.local_deletion_time.to_le_bytes());
}

fn put_ttl(out: &mut Vec<u8>, t: &Ttl) {
    out.extend_from_slice(&t.ttl.to_le_bytes());
    out.extend_from_slice(&t.local_expiration_time.to_le_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// When decoding from a shared buffer (and `buf` starts at this offset of it), byte
    /// fields are slices of it instead of copies.
    shared: Option<(&'a Bytes, usize)>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = match self.pos.checked_add(n) {
            Some(e) if e <= self.buf.len() => e,
            _ => {
                return err(format!(
                    "truncated: need {n} bytes at {}, have {}",
                    self.pos,
                    self.buf.len() - self.pos
                ));
            }
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => err(format!("invalid boolean byte {b}")),
        }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = (b & 0x7f) as u64;
            if i == 9 && bits > 1 {
                return err("varint overflows 64 bits");
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint longer than 10 bytes")
    }

    /// A count of items each at least `min_item` bytes long.
    fn len_prefix(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        match n.checked_mul(min_item as u64) {
            Some(need) if need <= remaining => Ok(n as usize),
            _ => err(format!("count {n} exceeds the remaining {remaining} bytes")),
        }
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError("length overflows".into()))?;
        let start = self.pos;
        let shared = self.shared;
        let b = self.take(n)?;
        Ok(match shared {
            Some((buf, base)) => buf.slice(base + start..base + start + n),
            None => Bytes::copy_from_slice(b),
        })
    }

    fn column(&mut self) -> Result<ColumnId, DecodeError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| DecodeError(format!("column id {v} overflows u32")))
    }

    fn deletion(&mut self) -> Result<DeletionTime, DecodeError> {
        Ok(DeletionTime {
            marked_for_delete_at: i64::from_le_bytes(self.array::<8>()?),
            local_deletion_time: i32::from_le_bytes(self.array::<4>()?),
        })
    }

    fn ttl(&mut self) -> Result<Ttl, DecodeError> {
        Ok(Ttl {
            ttl: u32::from_le_bytes(self.array::<4>()?),
            local_expiration_time: i32::from_le_bytes(self.array::<4>()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Mutation> {
        vec![Mutation {
            table: TableId([7; 16]),
            token: -42,
            key: Bytes::from_static(b"pk"),
            partition_deletion: Some(DeletionTime {
                marked_for_delete_at: 5,
                local_deletion_time: 6,
            }),
            range_tombstones: vec![RangeTombstone {
                range: ClusteringRange::all(),
                deletion: DeletionTime {
                    marked_for_delete_at: 1,
                    local_deletion_time: 2,
                },
            }],
            static_row: Some(Row {
                cells: vec![Cell {
                    column: 300,
                    path: None,
                    timestamp: 9,
                    value: CellValue::Counter { value: -3 },
                }],
                ..Row::default()
            }),
            rows: vec![Row {
                clustering: Bytes::from_static(b"\x01ck"),
                liveness: Some(LivenessInfo {
                    timestamp: 10,
                    ttl: Some(Ttl {
                        ttl: 60,
                        local_expiration_time: 1000,
                    }),
                }),
                deletion: Some(DeletionTime {
                    marked_for_delete_at: 3,
                    local_deletion_time: 4,
                }),
                complex_deletions: vec![(
                    2,
                    DeletionTime {
                        marked_for_delete_at: 8,
                        local_deletion_time: 9,
                    },
                )],
                cells: vec![
                    Cell {
                        column: 1,
                        path: None,
                        timestamp: 11,
                        value: CellValue::Live {
                            value: Bytes::from_static(b"v"),
                            ttl: None,
                        },
                    },
                    Cell {
                        column: 2,
                        path: Some(Bytes::from_static(b"p")),
                        timestamp: 12,
                        value: CellValue::Tombstone {
                            local_deletion_time: 13,
                        },
                    },
                ],
            }],
        }]
    }

    #[test]
    fn roundtrip() {
        let ms = sample();
        let mut buf = Vec::new();
        encode_mutations(&ms, &mut buf);
        assert_eq!(decode_mutations(&buf).unwrap(), ms);
        for cut in 0..buf.len() {
            assert!(decode_mutations(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn chunk_outline_reads_past_the_header() {
        let mut ms = sample();
        let mut buf = Vec::new();
        encode_mutations(&ms, &mut buf);
        let o = chunk_outline(&Bytes::from(buf.clone())).unwrap();
        assert_eq!(o.rows, 1);
        assert_eq!(o.first_clustering, Bytes::from_static(b"\x01ck"));
        let ck_end = buf.windows(3).position(|w| w == b"\x01ck").unwrap() + 3;
        for cut in 0..ck_end {
            // Cut before the first clustering key ends: an error, not a panic.
            assert!(
                chunk_outline(&Bytes::copy_from_slice(&buf[..cut])).is_err(),
                "{cut}"
            );
        }
        ms[0].rows.clear();
        buf.clear();
        encode_mutations(&ms, &mut buf);
        let o = chunk_outline(&Bytes::from(buf)).unwrap();
        assert_eq!((o.rows, o.first_clustering.len()), (0, 0));
    }
}

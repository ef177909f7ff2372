//! Payloads of the data-path internode messages (`docs/formats/internode.md`, "Data path"):
//! mutations, read commands and results, digests, hints, truncation.
//!
//! Every payload starts with a version byte so a message can change shape without a new
//! message type. Mutations and partitions reuse the engine's mutation codec (already
//! hardened against hostile input for the commit log) instead of a second row encoding.
//! Decoders never panic and never allocate more than the input could describe.

use bytes::Bytes;
use shoal_engine::{
    ClusteringBound, ClusteringRange, Mutation, PartitionData, PartitionPosition, PartitionRange,
    ReadCommand, ReadResult, TableId, decode_mutations, encode_mutations,
};

/// Version byte of every payload in this module.
pub const WIRE_VERSION: u8 = 1;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("payload truncated")]
    Truncated,
    #[error("unknown payload version {0}")]
    Version(u8),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("bad mutations: {0}")]
    Mutations(String),
}

/// What a read request asks a replica to send back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// The result itself.
    Data,
    /// Only the digest of the result ([`digest`]).
    Digest,
}

/// A replica's answer to a read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadReply {
    Data(ReadResult),
    Digest([u8; 16]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.arr()?))
    }

    fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.arr()?))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.arr()?))
    }

    fn bytes(&mut self) -> Result<Bytes, WireError> {
        let n = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        s
    }

    fn version(&mut self) -> Result<(), WireError> {
        match self.u8()? {
            WIRE_VERSION => Ok(()),
            v => Err(WireError::Version(v)),
        }
    }

    fn end(&self) -> Result<(), WireError> {
        match self.buf.len().saturating_sub(self.pos) {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_limit(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u64).to_be_bytes());
}

/// Limits travel as u64; a peer's "unlimited" (u64::MAX) stays unlimited here.
fn limit(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// MUTATION request: the mutations of one replica set.
pub fn encode_mutation_request(mutations: &[Mutation]) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    encode_mutations(mutations, &mut out);
    out
}

pub fn decode_mutation_request(buf: &[u8]) -> Result<Vec<Mutation>, WireError> {
    let mut r = Reader::new(buf);
    r.version()?;
    decode_mutations(r.rest()).map_err(|e| WireError::Mutations(e.0))
}

/// HINT request: mutations a coordinator held for this node, with when they were written.
pub fn encode_hint_request(created_ms: i64, mutations: &[Mutation]) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    out.extend_from_slice(&created_ms.to_be_bytes());
    encode_mutations(mutations, &mut out);
    out
}

pub fn decode_hint_request(buf: &[u8]) -> Result<(i64, Vec<Mutation>), WireError> {
    let mut r = Reader::new(buf);
    r.version()?;
    let created = r.i64()?;
    let m = decode_mutations(r.rest()).map_err(|e| WireError::Mutations(e.0))?;
    Ok((created, m))
}

/// TRUNCATE request: one table id.
pub fn encode_truncate_request(table: TableId) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    out.extend_from_slice(&table.0);
    out
}

pub fn decode_truncate_request(buf: &[u8]) -> Result<TableId, WireError> {
    let mut r = Reader::new(buf);
    r.version()?;
    let id = TableId(r.arr()?);
    r.end()?;
    Ok(id)
}

/// The payload of a successful response that carries nothing (mutation, hint, truncate).
pub fn encode_ack() -> Vec<u8> {
    vec![WIRE_VERSION]
}

pub fn decode_ack(buf: &[u8]) -> Result<(), WireError> {
    let mut r = Reader::new(buf);
    r.version()?;
    r.end()
}

const POS_KEY: u8 = 1;
const POS_INCLUSIVE: u8 = 2;

fn put_position(out: &mut Vec<u8>, p: &Option<PartitionPosition>) {
    match p {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            let mut f = 0;
            if p.key.is_some() {
                f |= POS_KEY;
            }
            if p.inclusive {
                f |= POS_INCLUSIVE;
            }
            out.push(f);
            out.extend_from_slice(&p.token.to_be_bytes());
            if let Some(k) = &p.key {
                put_bytes(out, k);
            }
        }
    }
}

fn get_position(r: &mut Reader<'_>) -> Result<Option<PartitionPosition>, WireError> {
    match r.u8()? {
        0 => Ok(None),
        1 => {
            let f = r.u8()?;
            if f & !(POS_KEY | POS_INCLUSIVE) != 0 {
                return Err(WireError::Invalid("position flags"));
            }
            let token = r.i64()?;
            let key = if f & POS_KEY != 0 {
                Some(r.bytes()?)
            } else {
                None
            };
            Ok(Some(PartitionPosition {
                token,
                key,
                inclusive: f & POS_INCLUSIVE != 0,
            }))
        }
        _ => Err(WireError::Invalid("position tag")),
    }
}

fn put_bound(out: &mut Vec<u8>, b: &ClusteringBound) {
    out.push(b.inclusive as u8);
    put_bytes(out, &b.prefix);
}

fn get_bound(r: &mut Reader<'_>) -> Result<ClusteringBound, WireError> {
    let inclusive = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(WireError::Invalid("bound flag")),
    };
    Ok(ClusteringBound {
        prefix: r.bytes()?,
        inclusive,
    })
}

const CMD_REVERSED: u8 = 1;
const CMD_TOMBSTONES: u8 = 2;
const CMD_START_AFTER: u8 = 4;

fn put_command(out: &mut Vec<u8>, cmd: &ReadCommand) {
    out.extend_from_slice(&cmd.table.0);
    match &cmd.partitions {
        PartitionRange::Single { token, key } => {
            out.push(0);
            out.extend_from_slice(&token.to_be_bytes());
            put_bytes(out, key);
        }
        PartitionRange::Range { start, end } => {
            out.push(1);
            put_position(out, start);
            put_position(out, end);
        }
    }
    out.extend_from_slice(&(cmd.slices.len() as u32).to_be_bytes());
    for s in &cmd.slices {
        put_bound(out, &s.start);
        put_bound(out, &s.end);
    }
    let mut f = 0;
    if cmd.reversed {
        f |= CMD_REVERSED;
    }
    if cmd.include_tombstones {
        f |= CMD_TOMBSTONES;
    }
    if cmd.start_after_row.is_some() {
        f |= CMD_START_AFTER;
    }
    out.push(f);
    if let Some(s) = &cmd.start_after_row {
        put_bytes(out, s);
    }
    put_limit(out, cmd.row_limit);
    put_limit(out, cmd.per_partition_limit);
    put_limit(out, cmd.partition_limit);
    out.extend_from_slice(&cmd.now.to_be_bytes());
}

fn get_command(r: &mut Reader<'_>) -> Result<ReadCommand, WireError> {
    let table = TableId(r.arr()?);
    let partitions = match r.u8()? {
        0 => PartitionRange::Single {
            token: r.i64()?,
            key: r.bytes()?,
        },
        1 => PartitionRange::Range {
            start: get_position(r)?,
            end: get_position(r)?,
        },
        _ => return Err(WireError::Invalid("partition range tag")),
    };
    let n = r.u32()? as usize;
    // Each slice takes at least 10 bytes: refuse counts the input cannot hold.
    if n > r.buf.len().saturating_sub(r.pos) / 10 {
        return Err(WireError::Truncated);
    }
    let mut slices = Vec::with_capacity(n);
    for _ in 0..n {
        slices.push(ClusteringRange {
            start: get_bound(r)?,
            end: get_bound(r)?,
        });
    }
    let f = r.u8()?;
    if f & !(CMD_REVERSED | CMD_TOMBSTONES | CMD_START_AFTER) != 0 {
        return Err(WireError::Invalid("command flags"));
    }
    let start_after_row = if f & CMD_START_AFTER != 0 {
        Some(r.bytes()?)
    } else {
        None
    };
    Ok(ReadCommand {
        table,
        partitions,
        slices,
        reversed: f & CMD_REVERSED != 0,
        start_after_row,
        row_limit: limit(r.u64()?),
        per_partition_limit: limit(r.u64()?),
        partition_limit: limit(r.u64()?),
        include_tombstones: f & CMD_TOMBSTONES != 0,
        now: r.i32()?,
    })
}

/// READ / RANGE_READ request: what to send back, and the command.
pub fn encode_read_request(kind: ReadKind, cmd: &ReadCommand) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION, kind as u8];
    put_command(&mut out, cmd);
    out
}

pub fn decode_read_request(buf: &[u8]) -> Result<(ReadKind, ReadCommand), WireError> {
    let mut r = Reader::new(buf);
    r.version()?;
    let kind = match r.u8()? {
        0 => ReadKind::Data,
        1 => ReadKind::Digest,
        _ => return Err(WireError::Invalid("read kind")),
    };
    let cmd = get_command(&mut r)?;
    r.end()?;
    Ok((kind, cmd))
}

/// Partitions as mutations of table 0 (the receiver knows the table): the engine codec
/// keeps row order, so a reversed read's walk order survives the trip.
fn put_partitions(out: &mut Vec<u8>, parts: &[PartitionData]) {
    let muts: Vec<Mutation> = parts
        .iter()
        .map(|p| Mutation {
            table: TableId([0; 16]),
            token: p.token,
            key: p.key.clone(),
            partition_deletion: p.partition_deletion,
            range_tombstones: p.range_tombstones.clone(),
            static_row: p.static_row.clone(),
            rows: p.rows.clone(),
        })
        .collect();
    encode_mutations(&muts, out);
}

/// The digest of a result: MD5 (as Cassandra's digests) of its partitions' canonical
/// encoding. Tombstone counts and warnings are not data and stay out of it.
pub fn digest(r: &ReadResult) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut buf = Vec::new();
    put_partitions(&mut buf, &r.partitions);
    Md5::digest(&buf).into()
}

/// READ / RANGE_READ response.
pub fn encode_read_reply(reply: &ReadReply) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    match reply {
        ReadReply::Data(r) => {
            out.push(ReadKind::Data as u8);
            out.extend_from_slice(
                &(r.tombstones_scanned.min(u32::MAX as usize) as u32).to_be_bytes(),
            );
            out.extend_from_slice(&(r.warnings.len() as u32).to_be_bytes());
            for w in &r.warnings {
                put_bytes(&mut out, w.as_bytes());
            }
            put_partitions(&mut out, &r.partitions);
        }
        ReadReply::Digest(d) => {
            out.push(ReadKind::Digest as u8);
            out.extend_from_slice(d);
        }
    }
    out
}

pub fn decode_read_reply(buf: &[u8]) -> Result<ReadReply, WireError> {
    let mut r = Reader::new(buf);
    r.version()?;
    match r.u8()? {
        0 => {
            let tombstones_scanned = r.u32()? as usize;
            let n = r.u32()? as usize;
            if n > r.buf.len().saturating_sub(r.pos) / 4 {
                return Err(WireError::Truncated);
            }
            let mut warnings = Vec::with_capacity(n);
            for _ in 0..n {
                let b = r.bytes()?;
                warnings.push(
                    String::from_utf8(b.to_vec()).map_err(|_| WireError::Invalid("warning"))?,
                );
            }
            let muts = decode_mutations(r.rest()).map_err(|e| WireError::Mutations(e.0))?;
            Ok(ReadReply::Data(ReadResult {
                partitions: muts
                    .into_iter()
                    .map(|m| PartitionData {
                        token: m.token,
                        key: m.key,
                        partition_deletion: m.partition_deletion,
                        range_tombstones: m.range_tombstones,
                        static_row: m.static_row,
                        rows: m.rows,
                    })
                    .collect(),
                tombstones_scanned,
                warnings,
            }))
        }
        1 => {
            let d = r.arr()?;
            r.end()?;
            Ok(ReadReply::Digest(d))
        }
        _ => Err(WireError::Invalid("read reply kind")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shoal_engine::{Cell, CellValue, DeletionTime, LivenessInfo, Row};

    fn sample_cmd() -> ReadCommand {
        ReadCommand {
            table: TableId([7; 16]),
            partitions: PartitionRange::Range {
                start: Some(PartitionPosition {
                    token: -5,
                    key: Some(Bytes::from_static(b"k")),
                    inclusive: false,
                }),
                end: None,
            },
            slices: vec![ClusteringRange::all()],
            reversed: true,
            start_after_row: Some(Bytes::from_static(b"c")),
            row_limit: 10,
            per_partition_limit: usize::MAX,
            partition_limit: 3,
            include_tombstones: true,
            now: 123,
        }
    }

    fn sample_result() -> ReadResult {
        ReadResult {
            partitions: vec![PartitionData {
                token: 1,
                key: Bytes::from_static(b"p"),
                partition_deletion: Some(DeletionTime {
                    marked_for_delete_at: 3,
                    local_deletion_time: 4,
                }),
                range_tombstones: Vec::new(),
                static_row: None,
                // Descending: a reversed read's order must survive.
                rows: [b"b", b"a"]
                    .iter()
                    .map(|ck| Row {
                        clustering: Bytes::copy_from_slice(*ck),
                        liveness: Some(LivenessInfo {
                            timestamp: 9,
                            ttl: None,
                        }),
                        deletion: None,
                        complex_deletions: Vec::new(),
                        cells: vec![Cell {
                            column: 2,
                            path: None,
                            timestamp: 9,
                            value: CellValue::Live {
                                value: Bytes::from_static(b"v"),
                                ttl: None,
                            },
                        }],
                    })
                    .collect(),
            }],
            tombstones_scanned: 2,
            warnings: vec!["w".into()],
        }
    }

    #[test]
    fn round_trips() {
        let cmd = sample_cmd();
        let (k, back) = decode_read_request(&encode_read_request(ReadKind::Digest, &cmd)).unwrap();
        assert_eq!(k, ReadKind::Digest);
        assert_eq!(format!("{back:?}"), format!("{cmd:?}"));
        let res = sample_result();
        let reply = ReadReply::Data(res.clone());
        assert_eq!(
            decode_read_reply(&encode_read_reply(&reply)).unwrap(),
            reply
        );
        let d = ReadReply::Digest(digest(&res));
        assert_eq!(decode_read_reply(&encode_read_reply(&d)).unwrap(), d);
        let mut other = res.clone();
        other.tombstones_scanned = 99;
        assert_eq!(digest(&res), digest(&other), "counters are not data");
        other.partitions[0].rows.pop();
        assert_ne!(digest(&res), digest(&other));
        assert_eq!(
            decode_truncate_request(&encode_truncate_request(TableId([3; 16]))).unwrap(),
            TableId([3; 16])
        );
        decode_ack(&encode_ack()).unwrap();
        let m = shoal_engine::partition_to_mutation(TableId([1; 16]), res.partitions[0].clone());
        let (t, ms) =
            decode_hint_request(&encode_hint_request(42, std::slice::from_ref(&m))).unwrap();
        assert_eq!((t, ms), (42, vec![m.clone()]));
        assert_eq!(
            decode_mutation_request(&encode_mutation_request(std::slice::from_ref(&m))).unwrap(),
            vec![m]
        );
    }

    #[test]
    fn refuses_bad_versions_and_trailing_bytes() {
        let mut b = encode_read_request(ReadKind::Data, &sample_cmd());
        b.push(0);
        assert_eq!(decode_read_request(&b).unwrap_err(), WireError::Trailing(1));
        b[0] = 9;
        assert_eq!(decode_read_request(&b).unwrap_err(), WireError::Version(9));
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_read_request(&bytes);
            let _ = decode_read_reply(&bytes);
            let _ = decode_hint_request(&bytes);
            let _ = decode_mutation_request(&bytes);
            let _ = decode_truncate_request(&bytes);
            let _ = decode_ack(&bytes);
        }

        #[test]
        fn truncated_valid_payloads_fail_cleanly(cut in 0usize..400, flip in 0usize..400) {
            let full = encode_read_request(ReadKind::Data, &sample_cmd());
            let _ = decode_read_request(&full[..cut.min(full.len())]);
            let mut f = full.clone();
            let i = flip % f.len();
            f[i] ^= 0x5a;
            let _ = decode_read_request(&f);
            let reply = encode_read_reply(&ReadReply::Data(sample_result()));
            let _ = decode_read_reply(&reply[..cut.min(reply.len())]);
            let mut g = reply.clone();
            let j = flip % g.len();
            g[j] ^= 0x5a;
            let _ = decode_read_reply(&g);
        }
    }
}

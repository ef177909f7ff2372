//! Payloads of the Paxos internode messages (`docs/formats/internode.md`, "Paxos
//! messages"). Every payload starts with a version byte; all integers are big-endian.
//! Decoding checks every length against what is left, so hostile input fails cleanly.

use bytes::Bytes;
use shoal_engine::{TableId, decode_mutations, encode_mutations};

use super::ballot::Ballot;
use super::state::{Commit, PartitionRef, PrepareResponse};

/// The version this node writes and the only one it reads.
pub const PAXOS_MESSAGE_VERSION: u8 = 1;

/// A request from a proposer to an acceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Prepare {
        part: PartitionRef,
        ballot: Ballot,
    },
    Propose {
        part: PartitionRef,
        proposal: Commit,
    },
    Commit {
        part: PartitionRef,
        commit: Commit,
    },
}

/// An acceptor's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Prepare(PrepareResponse),
    Propose { accepted: bool },
    Commit,
}

/// Why a payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("paxos message truncated")]
    Truncated,
    #[error("unsupported paxos message version {0}")]
    Version(u8),
    #[error("invalid paxos message: {0}")]
    Invalid(String),
}

// Kind bytes, repeated inside the payload so a payload decodes without its frame type.
const PREPARE: u8 = 1;
const PROPOSE: u8 = 2;
const COMMIT: u8 = 3;

pub fn encode_request(r: &Request) -> Vec<u8> {
    let mut out = vec![PAXOS_MESSAGE_VERSION];
    match r {
        Request::Prepare { part, ballot } => {
            out.push(PREPARE);
            put_part(&mut out, part);
            out.extend_from_slice(&ballot.to_uuid());
        }
        Request::Propose { part, proposal } => {
            out.push(PROPOSE);
            put_part(&mut out, part);
            put_commit(&mut out, proposal);
        }
        Request::Commit { part, commit } => {
            out.push(COMMIT);
            put_part(&mut out, part);
            put_commit(&mut out, commit);
        }
    }
    out
}

pub fn decode_request(buf: &[u8]) -> Result<Request, CodecError> {
    let mut r = Reader::new(buf)?;
    let kind = r.u8()?;
    let part = r.part()?;
    let req = match kind {
        PREPARE => Request::Prepare {
            part,
            ballot: r.ballot()?,
        },
        PROPOSE => Request::Propose {
            part,
            proposal: r.commit()?,
        },
        COMMIT => Request::Commit {
            part,
            commit: r.commit()?,
        },
        k => return Err(CodecError::Invalid(format!("request kind {k}"))),
    };
    r.finish()?;
    Ok(req)
}

pub fn encode_response(r: &Response) -> Vec<u8> {
    let mut out = vec![PAXOS_MESSAGE_VERSION];
    match r {
        Response::Prepare(p) => {
            out.push(PREPARE);
            out.push(u8::from(p.promised));
            match p.promised_ballot {
                Some(b) => {
                    out.push(1);
                    out.extend_from_slice(&b.to_uuid());
                }
                None => out.push(0),
            }
            for c in [&p.in_progress, &p.most_recent_commit] {
                match c {
                    Some(c) => {
                        out.push(1);
                        put_commit(&mut out, c);
                    }
                    None => out.push(0),
                }
            }
        }
        Response::Propose { accepted } => {
            out.push(PROPOSE);
            out.push(u8::from(*accepted));
        }
        Response::Commit => out.push(COMMIT),
    }
    out
}

pub fn decode_response(buf: &[u8]) -> Result<Response, CodecError> {
    let mut r = Reader::new(buf)?;
    let resp = match r.u8()? {
        PREPARE => {
            let promised = r.bool()?;
            let promised_ballot = if r.bool()? { Some(r.ballot()?) } else { None };
            let in_progress = if r.bool()? { Some(r.commit()?) } else { None };
            let most_recent_commit = if r.bool()? { Some(r.commit()?) } else { None };
            Response::Prepare(PrepareResponse {
                promised,
                promised_ballot,
                in_progress,
                most_recent_commit,
            })
        }
        PROPOSE => Response::Propose {
            accepted: r.bool()?,
        },
        COMMIT => Response::Commit,
        k => return Err(CodecError::Invalid(format!("response kind {k}"))),
    };
    r.finish()?;
    Ok(resp)
}

fn put_part(out: &mut Vec<u8>, p: &PartitionRef) {
    out.extend_from_slice(&p.table.0);
    out.extend_from_slice(&p.token.to_be_bytes());
    out.extend_from_slice(&(p.key.len() as u32).to_be_bytes());
    out.extend_from_slice(&p.key);
}

fn put_commit(out: &mut Vec<u8>, c: &Commit) {
    out.extend_from_slice(&c.ballot.to_uuid());
    let mut m = Vec::new();
    encode_mutations(&c.update, &mut m);
    out.extend_from_slice(&(m.len() as u32).to_be_bytes());
    out.extend_from_slice(&m);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader { buf };
        match r.u8()? {
            PAXOS_MESSAGE_VERSION => Ok(r),
            v => Err(CodecError::Version(v)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn bool(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(CodecError::Invalid(format!("boolean byte {b}"))),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn ballot(&mut self) -> Result<Ballot, CodecError> {
        Ballot::from_uuid(&self.array::<16>()?)
            .ok_or_else(|| CodecError::Invalid("ballot is not a version-1 UUID".into()))
    }

    fn part(&mut self) -> Result<PartitionRef, CodecError> {
        let table = TableId(self.array::<16>()?);
        let token = i64::from_be_bytes(self.array::<8>()?);
        let len = u32::from_be_bytes(self.array::<4>()?) as usize;
        let key = Bytes::copy_from_slice(self.take(len)?);
        Ok(PartitionRef { table, token, key })
    }

    fn commit(&mut self) -> Result<Commit, CodecError> {
        let ballot = self.ballot()?;
        let len = u32::from_be_bytes(self.array::<4>()?) as usize;
        let update =
            decode_mutations(self.take(len)?).map_err(|e| CodecError::Invalid(e.to_string()))?;
        Ok(Commit { ballot, update })
    }

    fn finish(&self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Invalid(format!(
                "{} trailing bytes",
                self.buf.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_engine::{Cell, CellValue, Row};

    fn part() -> PartitionRef {
        PartitionRef {
            table: TableId([7; 16]),
            token: -42,
            key: Bytes::from_static(b"key"),
        }
    }

    fn commit(m: i64) -> Commit {
        Commit {
            ballot: Ballot::new(m, 3),
            update: vec![shoal_engine::Mutation {
                table: TableId([7; 16]),
                token: -42,
                key: Bytes::from_static(b"key"),
                partition_deletion: None,
                range_tombstones: Vec::new(),
                static_row: None,
                rows: vec![Row {
                    cells: vec![Cell {
                        column: 1,
                        path: None,
                        timestamp: m,
                        value: CellValue::Live {
                            value: Bytes::from_static(b"v"),
                            ttl: None,
                        },
                    }],
                    ..Default::default()
                }],
            }],
        }
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let reqs = [
            Request::Prepare {
                part: part(),
                ballot: Ballot::new(5, 1),
            },
            Request::Propose {
                part: part(),
                proposal: commit(6),
            },
            Request::Commit {
                part: part(),
                commit: Commit {
                    ballot: Ballot::new(7, 2),
                    update: Vec::new(),
                },
            },
        ];
        for r in &reqs {
            assert_eq!(&decode_request(&encode_request(r)).unwrap(), r);
        }
        let resps = [
            Response::Prepare(PrepareResponse {
                promised: true,
                promised_ballot: Some(Ballot::new(9, 1)),
                in_progress: Some(commit(8)),
                most_recent_commit: None,
            }),
            Response::Prepare(PrepareResponse {
                promised: false,
                promised_ballot: None,
                in_progress: None,
                most_recent_commit: Some(commit(3)),
            }),
            Response::Propose { accepted: true },
            Response::Commit,
        ];
        for r in &resps {
            assert_eq!(&decode_response(&encode_response(r)).unwrap(), r);
        }
    }

    #[test]
    fn truncation_versions_and_trailing_bytes_are_errors() {
        let bytes = encode_request(&Request::Propose {
            part: part(),
            proposal: commit(6),
        });
        for n in 0..bytes.len() {
            assert!(decode_request(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(decode_request(&v2), Err(CodecError::Version(2)));
        let mut long = bytes;
        long.push(0);
        assert!(matches!(decode_request(&long), Err(CodecError::Invalid(_))));
    }
}

//! The paging state Shoal hands to clients: opaque to them, versioned and validated here,
//! because a client may send back anything (`docs/formats/paging-state.md`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{CqlError, CqlResult};
use crate::protocol::{QueryParameters, Rows};

const VERSION: u8 = 1;
const KIND_PARTITION: u8 = 0;
const KIND_OFFSET: u8 = 1;

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// After the row `clustering` of partition `key` (after the whole partition when
    /// `clustering` is `None`). `partition_rows` rows of that partition were returned.
    Partition {
        token: i64,
        key: Bytes,
        clustering: Option<Bytes>,
        partition_rows: u64,
    },
    /// After this many rows of a result computed whole (virtual tables, DESCRIBE, sorts).
    Offset(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagingState {
    pub position: Position,
    /// Rows returned by all previous pages (to honour LIMIT across pages).
    pub rows_returned: u64,
}

fn invalid() -> CqlError {
    CqlError::invalid("Invalid value for the paging state")
}

impl PagingState {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        b.put_u8(VERSION);
        match &self.position {
            Position::Partition {
                token,
                key,
                clustering,
                partition_rows,
            } => {
                b.put_u8(KIND_PARTITION);
                b.put_i64(*token);
                b.put_u32(key.len() as u32);
                b.put_slice(key);
                match clustering {
                    Some(c) => {
                        b.put_u8(1);
                        b.put_u32(c.len() as u32);
                        b.put_slice(c);
                    }
                    None => b.put_u8(0),
                }
                b.put_u64(*partition_rows);
            }
            Position::Offset(o) => {
                b.put_u8(KIND_OFFSET);
                b.put_u64(*o);
            }
        }
        b.put_u64(self.rows_returned);
        let crc = crc32fast::hash(&b);
        b.put_u32(crc);
        b.freeze()
    }

    pub fn decode(bytes: &[u8]) -> CqlResult<PagingState> {
        if bytes.len() < 6 {
            return Err(invalid());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_be_bytes(crc.try_into().map_err(|_| invalid())?) {
            return Err(invalid());
        }
        let mut b = body;
        if b.get_u8() != VERSION {
            return Err(invalid());
        }
        let take = |b: &mut &[u8], n: usize| -> CqlResult<Bytes> {
            if b.remaining() < n {
                return Err(invalid());
            }
            let out = Bytes::copy_from_slice(&b[..n]);
            b.advance(n);
            Ok(out)
        };
        let need = |b: &&[u8], n: usize| {
            if b.remaining() < n {
                Err(invalid())
            } else {
                Ok(())
            }
        };
        let position = match b.get_u8() {
            KIND_PARTITION => {
                need(&b, 12)?;
                let token = b.get_i64();
                let len = b.get_u32() as usize;
                let key = take(&mut b, len)?;
                need(&b, 1)?;
                let clustering = match b.get_u8() {
                    0 => None,
                    1 => {
                        need(&b, 4)?;
                        let len = b.get_u32() as usize;
                        Some(take(&mut b, len)?)
                    }
                    _ => return Err(invalid()),
                };
                need(&b, 8)?;
                Position::Partition {
                    token,
                    key,
                    clustering,
                    partition_rows: b.get_u64(),
                }
            }
            KIND_OFFSET => {
                need(&b, 8)?;
                Position::Offset(b.get_u64())
            }
            _ => return Err(invalid()),
        };
        need(&b, 8)?;
        let rows_returned = b.get_u64();
        if b.has_remaining() {
            return Err(invalid());
        }
        Ok(PagingState {
            position,
            rows_returned,
        })
    }
}

/// Pages a result computed whole (DESCRIBE) by offset.
pub fn page_rows(mut rows: Rows, params: &QueryParameters) -> CqlResult<Rows> {
    let page_size = match params.page_size {
        Some(n) if n > 0 => n as usize,
        _ => return Ok(rows),
    };
    let offset = match &params.paging_state {
        Some(b) => match PagingState::decode(b)?.position {
            Position::Offset(o) => o as usize,
            Position::Partition { .. } => return Err(invalid()),
        },
        None => 0,
    };
    let total = rows.rows.len();
    let start = offset.min(total);
    let end = start.saturating_add(page_size).min(total);
    rows.rows = rows.rows.drain(start..end).collect();
    rows.metadata.paging_state = (end < total).then(|| {
        PagingState {
            position: Position::Offset(end as u64),
            rows_returned: end as u64,
        }
        .encode()
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let states = [
            PagingState {
                position: Position::Partition {
                    token: -5,
                    key: Bytes::from_static(b"key"),
                    clustering: Some(Bytes::from_static(b"\x01\x02")),
                    partition_rows: 7,
                },
                rows_returned: 100,
            },
            PagingState {
                position: Position::Partition {
                    token: 9,
                    key: Bytes::new(),
                    clustering: None,
                    partition_rows: 0,
                },
                rows_returned: 0,
            },
            PagingState {
                position: Position::Offset(42),
                rows_returned: 42,
            },
        ];
        for s in states {
            let enc = s.encode();
            assert_eq!(PagingState::decode(&enc).unwrap(), s);
            for cut in 0..enc.len() {
                assert!(PagingState::decode(&enc[..cut]).is_err());
            }
            let mut flipped = enc.to_vec();
            flipped[3] ^= 1;
            assert!(PagingState::decode(&flipped).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = PagingState::decode(&bytes);
        }
    }
}

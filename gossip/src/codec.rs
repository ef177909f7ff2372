//! Binary encoding of gossip messages (layout in `docs/formats/internode.md`).
//!
//! Self-contained on purpose: magic, version and CRC travel with the message, so the same
//! bytes can go over UDP, inside an internode frame, or into a test fixture. The decoder
//! checks every length against the bytes actually present before allocating, so hostile
//! input costs at most its own size.

use std::collections::BTreeMap;

use crate::message::{Ack, Ack2, Delta, Digest, Echo, GossipMessage, Syn};
use crate::ring::HostId;
use crate::state::{AppKey, EndpointState, HeartBeat, VersionedValue};

/// `"SG"`: Shoal Gossip.
pub const MAGIC: u16 = 0x5347;
/// Bumped on any layout change; decoders refuse versions they do not know.
pub const VERSION: u8 = 1;
/// Largest body accepted. Tokens dominate: 256 vnodes x 20 chars x a few hundred nodes fits.
pub const MAX_BODY: usize = 16 << 20;

const TAG_SYN: u8 = 1;
const TAG_ACK: u8 = 2;
const TAG_ACK2: u8 = 3;
const TAG_ECHO: u8 = 4;
const TAG_ECHO_REPLY: u8 = 5;
const HEADER: usize = 8;
const DIGEST_LEN: usize = 16 + 8 + 8;
/// host + generation + heartbeat version + state count: the least a delta can take.
const MIN_DELTA_LEN: usize = 16 + 8 + 8 + 2;
/// key + version + value length.
const MIN_STATE_LEN: usize = 1 + 8 + 4;

/// Why bytes are not a gossip message. Decoding has no side effects, so any error just
/// means dropping the message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("message shorter than its {0}-byte header and checksum")]
    TooShort(usize),
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    #[error("unsupported gossip codec version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown gossip message tag {0}")]
    UnknownTag(u8),
    #[error("body length {0} exceeds the maximum")]
    TooLarge(usize),
    #[error("length says {expected} bytes, buffer has {actual}")]
    LengthMismatch { expected: usize, actual: usize },
    #[error("checksum mismatch: computed {computed:#010x}, stored {stored:#010x}")]
    Checksum { computed: u32, stored: u32 },
    #[error("body truncated")]
    Truncated,
    #[error("string is not UTF-8")]
    Utf8,
    #[error("{0} trailing bytes after the body")]
    Trailing(usize),
    #[error("application state {0:?} appears twice")]
    DuplicateKey(AppKey),
}

/// Encodes a message with header and CRC.
pub fn encode(msg: &GossipMessage) -> Vec<u8> {
    let mut body = Vec::new();
    put_str16(&mut body, msg.cluster());
    let tag = match msg {
        GossipMessage::Syn(m) => {
            put_digests(&mut body, &m.digests);
            TAG_SYN
        }
        GossipMessage::Ack(m) => {
            put_deltas(&mut body, &m.deltas);
            put_digests(&mut body, &m.requests);
            TAG_ACK
        }
        GossipMessage::Ack2(m) => {
            put_deltas(&mut body, &m.deltas);
            TAG_ACK2
        }
        GossipMessage::Echo(m) | GossipMessage::EchoReply(m) => {
            body.extend_from_slice(m.host.as_bytes());
            body.extend_from_slice(&m.generation.to_be_bytes());
            if matches!(msg, GossipMessage::Echo(_)) {
                TAG_ECHO
            } else {
                TAG_ECHO_REPLY
            }
        }
    };
    let mut out = Vec::with_capacity(HEADER + body.len() + 4);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(VERSION);
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes exactly one message occupying all of `buf`. Never panics.
pub fn decode(buf: &[u8]) -> Result<GossipMessage, CodecError> {
    if buf.len() < HEADER + 4 {
        return Err(CodecError::TooShort(HEADER));
    }
    let magic = u16::from_be_bytes([buf[0], buf[1]]);
    if magic != MAGIC {
        return Err(CodecError::BadMagic(magic));
    }
    if buf[2] != VERSION {
        return Err(CodecError::UnsupportedVersion(buf[2]));
    }
    let tag = buf[3];
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if len > MAX_BODY {
        return Err(CodecError::TooLarge(len));
    }
    if buf.len() != HEADER + len + 4 {
        return Err(CodecError::LengthMismatch {
            expected: HEADER + len + 4,
            actual: buf.len(),
        });
    }
    let (signed, crc) = buf.split_at(HEADER + len);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(signed);
    if stored != computed {
        return Err(CodecError::Checksum { computed, stored });
    }
    let mut r = Reader(&signed[HEADER..]);
    let cluster = r.str16()?;
    let msg = match tag {
        TAG_SYN => GossipMessage::Syn(Syn {
            cluster,
            digests: r.digests()?,
        }),
        TAG_ACK => GossipMessage::Ack(Ack {
            cluster,
            deltas: r.deltas()?,
            requests: r.digests()?,
        }),
        TAG_ACK2 => GossipMessage::Ack2(Ack2 {
            cluster,
            deltas: r.deltas()?,
        }),
        TAG_ECHO | TAG_ECHO_REPLY => {
            let e = Echo {
                cluster,
                host: HostId(r.arr()?),
                generation: r.i64()?,
            };
            if tag == TAG_ECHO {
                GossipMessage::Echo(e)
            } else {
                GossipMessage::EchoReply(e)
            }
        }
        other => return Err(CodecError::UnknownTag(other)),
    };
    if !r.0.is_empty() {
        return Err(CodecError::Trailing(r.0.len()));
    }
    Ok(msg)
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    // Cluster names are short; longer ones are cut at a char boundary rather than corrupting
    // the length field.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_digests(out: &mut Vec<u8>, ds: &[Digest]) {
    out.extend_from_slice(&(ds.len() as u32).to_be_bytes());
    for d in ds {
        out.extend_from_slice(d.host.as_bytes());
        out.extend_from_slice(&d.generation.to_be_bytes());
        out.extend_from_slice(&d.max_version.to_be_bytes());
    }
}

fn put_deltas(out: &mut Vec<u8>, ds: &[Delta]) {
    out.extend_from_slice(&(ds.len() as u32).to_be_bytes());
    for (h, s) in ds {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&s.heartbeat.generation.to_be_bytes());
        out.extend_from_slice(&s.heartbeat.version.to_be_bytes());
        // At most one entry per key id (256), so u16 cannot overflow.
        out.extend_from_slice(&(s.states.len() as u16).to_be_bytes());
        for (k, v) in &s.states {
            out.push(k.id());
            out.extend_from_slice(&v.version.to_be_bytes());
            out.extend_from_slice(&(v.value.len() as u32).to_be_bytes());
            out.extend_from_slice(v.value.as_bytes());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.arr()?))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.arr()?))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.arr()?))
    }

    fn utf8(&mut self, n: usize) -> Result<String, CodecError> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| CodecError::Utf8)
    }

    fn str16(&mut self) -> Result<String, CodecError> {
        let n = self.u16()? as usize;
        self.utf8(n)
    }

    /// A count, refused if even the smallest elements could not fit in what is left.
    fn count(&mut self, min_elem: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_elem) > self.0.len() {
            return Err(CodecError::Truncated);
        }
        Ok(n)
    }

    fn digests(&mut self) -> Result<Vec<Digest>, CodecError> {
        let n = self.count(DIGEST_LEN)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Digest {
                host: HostId(self.arr()?),
                generation: self.i64()?,
                max_version: self.u64()?,
            });
        }
        Ok(v)
    }

    fn deltas(&mut self) -> Result<Vec<Delta>, CodecError> {
        let n = self.count(MIN_DELTA_LEN)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let host = HostId(self.arr()?);
            let heartbeat = HeartBeat {
                generation: self.i64()?,
                version: self.u64()?,
            };
            let m = self.u16()? as usize;
            if m.saturating_mul(MIN_STATE_LEN) > self.0.len() {
                return Err(CodecError::Truncated);
            }
            let mut states = BTreeMap::new();
            for _ in 0..m {
                let key = AppKey::from_id(self.arr::<1>()?[0]);
                let version = self.u64()?;
                let len = self.u32()? as usize;
                let value = self.utf8(len)?;
                if states
                    .insert(key, VersionedValue { value, version })
                    .is_some()
                {
                    return Err(CodecError::DuplicateKey(key));
                }
            }
            v.push((host, EndpointState { heartbeat, states }));
        }
        Ok(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_digest() -> impl Strategy<Value = Digest> + Clone {
        (any::<[u8; 16]>(), any::<i64>(), any::<u64>()).prop_map(|(h, g, v)| Digest {
            host: HostId(h),
            generation: g,
            max_version: v,
        })
    }

    fn arb_delta() -> impl Strategy<Value = Delta> + Clone {
        (
            any::<[u8; 16]>(),
            any::<i64>(),
            any::<u64>(),
            prop::collection::btree_map(any::<u8>(), (".{0,12}", any::<u64>()), 0..6),
        )
            .prop_map(|(h, g, v, st)| {
                let states = st
                    .into_iter()
                    .map(|(k, (value, version))| {
                        (AppKey::from_id(k), VersionedValue { value, version })
                    })
                    .collect();
                (
                    HostId(h),
                    EndpointState {
                        heartbeat: HeartBeat {
                            generation: g,
                            version: v,
                        },
                        states,
                    },
                )
            })
    }

    pub(crate) fn arb_message() -> impl Strategy<Value = GossipMessage> {
        let digests = prop::collection::vec(arb_digest(), 0..5);
        let deltas = prop::collection::vec(arb_delta(), 0..4);
        prop_oneof![
            (".{0,10}", digests.clone())
                .prop_map(|(cluster, digests)| GossipMessage::Syn(Syn { cluster, digests })),
            (".{0,10}", deltas.clone(), digests).prop_map(|(cluster, deltas, requests)| {
                GossipMessage::Ack(Ack {
                    cluster,
                    deltas,
                    requests,
                })
            }),
            (".{0,10}", deltas)
                .prop_map(|(cluster, deltas)| GossipMessage::Ack2(Ack2 { cluster, deltas })),
            (".{0,10}", any::<[u8; 16]>(), any::<i64>(), any::<bool>()).prop_map(
                |(cluster, h, generation, reply)| {
                    let e = Echo {
                        cluster,
                        host: HostId(h),
                        generation,
                    };
                    if reply {
                        GossipMessage::EchoReply(e)
                    } else {
                        GossipMessage::Echo(e)
                    }
                }
            ),
        ]
    }

    #[test]
    fn golden_syn_layout() {
        let msg = GossipMessage::Syn(Syn {
            cluster: "c".into(),
            digests: vec![Digest {
                host: HostId([1; 16]),
                generation: 2,
                max_version: 3,
            }],
        });
        let b = encode(&msg);
        assert_eq!(&b[..8], &[0x53, 0x47, 1, 1, 0, 0, 0, 39]);
        assert_eq!(&b[8..11], &[0, 1, b'c']);
        assert_eq!(&b[11..15], &[0, 0, 0, 1]);
        assert_eq!(b.len(), 8 + 39 + 4);
        assert_eq!(decode(&b), Ok(msg));
    }

    #[test]
    fn errors_are_typed() {
        let b = encode(&GossipMessage::Ack2(Ack2 {
            cluster: "x".into(),
            deltas: vec![],
        }));
        assert_eq!(decode(&b[..3]), Err(CodecError::TooShort(8)));
        let mut bad = b.clone();
        bad[0] = 0;
        assert!(matches!(decode(&bad), Err(CodecError::BadMagic(_))));
        let mut bad = b.clone();
        bad[2] = 9;
        assert_eq!(decode(&bad), Err(CodecError::UnsupportedVersion(9)));
        let mut bad = b.clone();
        bad[9] ^= 1;
        assert!(matches!(decode(&bad), Err(CodecError::Checksum { .. })));
        let mut bad = b.clone();
        bad[3] = 9;
        let n = bad.len();
        let crc = crc32fast::hash(&bad[..n - 4]).to_be_bytes();
        bad[n - 4..].copy_from_slice(&crc);
        assert_eq!(decode(&bad), Err(CodecError::UnknownTag(9)));
    }

    proptest! {
        #[test]
        fn round_trip(msg in arb_message()) {
            prop_assert_eq!(decode(&encode(&msg)), Ok(msg));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&b);
        }

        #[test]
        fn corrupted_messages_are_rejected(msg in arb_message(), pos in any::<usize>(), flip in 1u8..=255) {
            let mut b = encode(&msg);
            let i = pos % b.len();
            b[i] ^= flip;
            prop_assert!(decode(&b).is_err());
        }

        #[test]
        fn valid_crc_over_garbage_never_panics(tag in 0u8..7, body in prop::collection::vec(any::<u8>(), 0..200)) {
            // Garbage that passes the checksum exercises the body parser itself.
            let mut b = vec![0x53, 0x47, VERSION, tag];
            b.extend_from_slice(&(body.len() as u32).to_be_bytes());
            b.extend_from_slice(&body);
            let crc = crc32fast::hash(&b);
            b.extend_from_slice(&crc.to_be_bytes());
            let _ = decode(&b);
        }
    }
}

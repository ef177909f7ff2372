//! The internode frame: how every node-to-node message (gossip, mutations, reads, hints,
//! Paxos) travels over the TCP connection on `storage_port`. Layout and rules are in
//! `docs/formats/internode.md`.
//!
//! Decoding is check-then-parse on a growing receive buffer: `Ok(None)` until a whole frame
//! is present. The header has its own CRC and the length is checked against a maximum
//! before anything is allocated, so a corrupt or hostile length fails fast instead of making
//! the reader wait for, or reserve, gigabytes.

use crate::codec;
use crate::message::GossipMessage;

/// `"SHNM"`: Shoal Node Message.
pub const MAGIC: [u8; 4] = *b"SHNM";
pub const VERSION: u8 = 1;
/// Bytes before the payload: magic 4, version 1, type 1, flags 2, request id 8, length 4,
/// header CRC 4.
pub const HEADER_LEN: usize = 24;
/// The payload CRC after the payload.
pub const TRAILER_LEN: usize = 4;
/// Default cap on payload size.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 << 20;

/// Flag bits. Bits 4..16 are reserved and must be zero in version 1.
pub mod flags {
    /// The response reports a failure; the payload is an error body.
    pub const FAILURE: u16 = 0x0001;
    /// The request is traced; the receiver records trace events under the request id.
    pub const TRACING: u16 = 0x0002;
    /// No response is expected (gossip, hints without ack).
    pub const ONE_WAY: u16 = 0x0004;
    /// Payload is LZ4-compressed (reserved: not produced yet).
    pub const COMPRESSED: u16 = 0x0008;
    pub const KNOWN: u16 = FAILURE | TRACING | ONE_WAY | COMPRESSED;
}

/// What the payload is. Ids are stable across versions; new kinds take free ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    GossipSyn,
    GossipAck,
    GossipAck2,
    /// Liveness probe before marking a node up (Cassandra's ECHO), and its answer.
    Echo,
    EchoReply,
    /// First frame on every connection: the connecting node's internode address (UTF-8
    /// `ip:port`), so replies and gossip can be addressed to it rather than to an ephemeral
    /// source port.
    Handshake,
    MutationRequest,
    MutationResponse,
    ReadRequest,
    ReadResponse,
    RangeReadRequest,
    RangeReadResponse,
    HintRequest,
    HintResponse,
    TruncateRequest,
    TruncateResponse,
    PaxosPrepareRequest,
    PaxosPrepareResponse,
    PaxosProposeRequest,
    PaxosProposeResponse,
    PaxosCommitRequest,
    PaxosCommitResponse,
    SchemaPullRequest,
    SchemaPullResponse,
    SchemaPush,
    /// An id this version does not know: kept so the receiver can answer with a failure for
    /// that request id instead of tearing down the connection.
    Unknown(u8),
}

impl MessageType {
    pub fn id(self) -> u8 {
        use MessageType::*;
        match self {
            GossipSyn => 0x01,
            GossipAck => 0x02,
            GossipAck2 => 0x03,
            Echo => 0x04,
            EchoReply => 0x05,
            Handshake => 0x06,
            MutationRequest => 0x10,
            MutationResponse => 0x11,
            ReadRequest => 0x12,
            ReadResponse => 0x13,
            RangeReadRequest => 0x14,
            RangeReadResponse => 0x15,
            HintRequest => 0x16,
            HintResponse => 0x17,
            TruncateRequest => 0x18,
            TruncateResponse => 0x19,
            PaxosPrepareRequest => 0x20,
            PaxosPrepareResponse => 0x21,
            PaxosProposeRequest => 0x22,
            PaxosProposeResponse => 0x23,
            PaxosCommitRequest => 0x24,
            PaxosCommitResponse => 0x25,
            SchemaPullRequest => 0x30,
            SchemaPullResponse => 0x31,
            SchemaPush => 0x32,
            Unknown(id) => id,
        }
    }

    pub fn from_id(id: u8) -> Self {
        use MessageType::*;
        match id {
            0x01 => GossipSyn,
            0x02 => GossipAck,
            0x03 => GossipAck2,
            0x04 => Echo,
            0x05 => EchoReply,
            0x06 => Handshake,
            0x10 => MutationRequest,
            0x11 => MutationResponse,
            0x12 => ReadRequest,
            0x13 => ReadResponse,
            0x14 => RangeReadRequest,
            0x15 => RangeReadResponse,
            0x16 => HintRequest,
            0x17 => HintResponse,
            0x18 => TruncateRequest,
            0x19 => TruncateResponse,
            0x20 => PaxosPrepareRequest,
            0x21 => PaxosPrepareResponse,
            0x22 => PaxosProposeRequest,
            0x23 => PaxosProposeResponse,
            0x24 => PaxosCommitRequest,
            0x25 => PaxosCommitResponse,
            0x30 => SchemaPullRequest,
            0x31 => SchemaPullResponse,
            0x32 => SchemaPush,
            other => Unknown(other),
        }
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub msg_type: MessageType,
    pub flags: u16,
    /// Matches a response to its request; chosen by the requester, unique per connection.
    pub request_id: u64,
    pub payload: Vec<u8>,
}

/// Why a buffer does not start with a valid frame. The connection cannot be resynchronised
/// after any of these and should be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("bad frame magic")]
    BadMagic,
    #[error("unsupported internode version {0}")]
    UnsupportedVersion(u8),
    #[error("message type 0 is invalid")]
    ZeroType,
    #[error("reserved flag bits set: {0:#06x}")]
    ReservedFlags(u16),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("payload of {len} bytes exceeds the {max}-byte maximum")]
    TooLarge { len: usize, max: usize },
    #[error("payload checksum mismatch")]
    PayloadChecksum,
    #[error("payload is not a valid gossip message: {0}")]
    Gossip(#[from] codec::CodecError),
    #[error("frame type {0:?} does not carry gossip")]
    NotGossip(MessageType),
}

impl Frame {
    /// Wraps a gossip message (gossip is one-way: replies are new requests).
    pub fn gossip(request_id: u64, msg: &GossipMessage) -> Frame {
        let msg_type = match msg {
            GossipMessage::Syn(_) => MessageType::GossipSyn,
            GossipMessage::Ack(_) => MessageType::GossipAck,
            GossipMessage::Ack2(_) => MessageType::GossipAck2,
            GossipMessage::Echo(_) => MessageType::Echo,
            GossipMessage::EchoReply(_) => MessageType::EchoReply,
        };
        Frame {
            msg_type,
            flags: flags::ONE_WAY,
            request_id,
            payload: codec::encode(msg),
        }
    }

    /// The gossip message inside a gossip frame.
    pub fn to_gossip(&self) -> Result<GossipMessage, FrameError> {
        match self.msg_type {
            MessageType::GossipSyn
            | MessageType::GossipAck
            | MessageType::GossipAck2
            | MessageType::Echo
            | MessageType::EchoReply => Ok(codec::decode(&self.payload)?),
            other => Err(FrameError::NotGossip(other)),
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.msg_type.id());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.request_id.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        let hcrc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&hcrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&crc32fast::hash(&self.payload).to_be_bytes());
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + self.payload.len() + TRAILER_LEN);
        self.encode_into(&mut v);
        v
    }
}

/// Decodes the frame at the start of `buf`: `Ok(None)` if more bytes are needed,
/// `Ok(Some((frame, consumed)))` once a whole frame is there. Never panics.
pub fn decode_frame(buf: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    // Reject a wrong magic as soon as its bytes arrive, not after a full header.
    let m = buf.len().min(MAGIC.len());
    if buf[..m] != MAGIC[..m] {
        return Err(FrameError::BadMagic);
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = &buf[..HEADER_LEN];
    let stored = u32::from_be_bytes([h[20], h[21], h[22], h[23]]);
    if crc32fast::hash(&h[..20]) != stored {
        return Err(FrameError::HeaderChecksum);
    }
    if h[4] != VERSION {
        return Err(FrameError::UnsupportedVersion(h[4]));
    }
    if h[5] == 0 {
        return Err(FrameError::ZeroType);
    }
    let flags = u16::from_be_bytes([h[6], h[7]]);
    if flags & !flags::KNOWN != 0 {
        return Err(FrameError::ReservedFlags(flags));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[8..16]);
    let len = u32::from_be_bytes([h[16], h[17], h[18], h[19]]) as usize;
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    let total = HEADER_LEN + len + TRAILER_LEN;
    if buf.len() < total {
        return Ok(None);
    }
    let payload = &buf[HEADER_LEN..HEADER_LEN + len];
    let t = &buf[HEADER_LEN + len..total];
    if crc32fast::hash(payload) != u32::from_be_bytes([t[0], t[1], t[2], t[3]]) {
        return Err(FrameError::PayloadChecksum);
    }
    Ok(Some((
        Frame {
            msg_type: MessageType::from_id(h[5]),
            flags,
            request_id: u64::from_be_bytes(id),
            payload: payload.to_vec(),
        },
        total,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::arb_message;
    use proptest::prelude::*;

    fn frame() -> Frame {
        Frame {
            msg_type: MessageType::MutationRequest,
            flags: flags::TRACING,
            request_id: 0x0102_0304_0506_0708,
            payload: b"hello".to_vec(),
        }
    }

    #[test]
    fn golden_header() {
        let b = frame().encode();
        assert_eq!(&b[..8], b"SHNM\x01\x10\x00\x02");
        assert_eq!(&b[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[16..20], &[0, 0, 0, 5]);
        assert_eq!(&b[24..29], b"hello");
        assert_eq!(b.len(), HEADER_LEN + 5 + TRAILER_LEN);
        assert_eq!(decode_frame(&b, 100), Ok(Some((frame(), b.len()))));
    }

    #[test]
    fn incomplete_and_invalid() {
        let b = frame().encode();
        for n in 0..b.len() {
            assert_eq!(decode_frame(&b[..n], 100), Ok(None), "prefix {n}");
        }
        assert_eq!(decode_frame(b"SHX", 100), Err(FrameError::BadMagic));
        assert_eq!(
            decode_frame(&b, 4),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
        // A huge length is refused from the header alone.
        let mut big = Frame {
            payload: vec![],
            ..frame()
        }
        .encode();
        big[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        let crc = crc32fast::hash(&big[..20]).to_be_bytes();
        big[20..24].copy_from_slice(&crc);
        assert!(matches!(
            decode_frame(&big[..HEADER_LEN], DEFAULT_MAX_PAYLOAD),
            Err(FrameError::TooLarge { .. })
        ));
        let mut bad = b.clone();
        bad[25] ^= 1;
        assert_eq!(decode_frame(&bad, 100), Err(FrameError::PayloadChecksum));
        let mut bad = b.clone();
        bad[9] ^= 1;
        assert_eq!(decode_frame(&bad, 100), Err(FrameError::HeaderChecksum));
        assert!(matches!(
            frame().to_gossip(),
            Err(FrameError::NotGossip(MessageType::MutationRequest))
        ));
        for id in 0..=255u8 {
            assert_eq!(MessageType::from_id(id).id(), id);
        }
    }

    proptest! {
        #[test]
        fn gossip_frames_round_trip_back_to_back(msgs in prop::collection::vec(arb_message(), 1..4)) {
            let mut buf = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                Frame::gossip(i as u64, m).encode_into(&mut buf);
            }
            let mut rest = &buf[..];
            for (i, m) in msgs.iter().enumerate() {
                let (f, used) = decode_frame(rest, DEFAULT_MAX_PAYLOAD).unwrap().unwrap();
                prop_assert_eq!(f.request_id, i as u64);
                prop_assert_eq!(&f.to_gossip().unwrap(), m);
                rest = &rest[used..];
            }
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..120), magic in any::<bool>()) {
            if magic && b.len() >= 4 {
                b[..4].copy_from_slice(&MAGIC);
            }
            let _ = decode_frame(&b, 64);
        }

        #[test]
        fn corruption_is_detected(pos in any::<usize>(), flip in 1u8..=255) {
            let mut b = frame().encode();
            let i = pos % b.len();
            b[i] ^= flip;
            // A corrupted length may make the frame look incomplete; it must never parse.
            prop_assert!(!matches!(decode_frame(&b, 100), Ok(Some(_))));
        }
    }
}

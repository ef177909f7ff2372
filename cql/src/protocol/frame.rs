//! Protocol v5 outer framing (final v5 spec §2, "Frame Format"): frames carry envelopes,
//! either several whole ones (self-contained) or one part of a large one. All integers
//! here are little-endian; envelopes inside stay big-endian.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::CqlError;

/// Largest frame payload: the length field has 17 bits.
pub const MAX_PAYLOAD: usize = (1 << 17) - 1;
const CRC24_INIT: u32 = 0x875060;
const CRC24_POLY: u32 = 0x1974F0B;
/// The CRC32 of every frame payload starts from the state after these bytes.
const CRC32_SEED: [u8; 4] = [0xFA, 0x2D, 0x55, 0xCA];
const PLAIN_HEADER: usize = 3;
const LZ4_HEADER: usize = 5;
const CRC24_LEN: usize = 3;
const CRC32_LEN: usize = 4;

/// CRC24 of the low `len` bytes of `value`, least significant byte first (§2.1).
pub fn crc24(value: u64, len: usize) -> u32 {
    let mut crc = CRC24_INIT;
    let mut v = value;
    for _ in 0..len {
        crc ^= ((v & 0xFF) as u32) << 16;
        v >>= 8;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= CRC24_POLY;
            }
        }
    }
    crc
}

/// CRC32 (IEEE) of a frame payload, seeded with `FA 2D 55 CA`.
pub fn crc32(payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&CRC32_SEED);
    h.update(payload);
    h.finalize()
}

fn put_le(out: &mut BytesMut, v: u64, len: usize) {
    out.put_slice(&v.to_le_bytes()[..len]);
}

fn get_le(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, byte| (acc << 8) | *byte as u64)
}

fn write_frame(payload: &[u8], self_contained: bool, lz4: bool, out: &mut BytesMut) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let sc = self_contained as u64;
    if lz4 {
        let compressed = lz4_flex::block::compress(payload);
        // Uncompressed length 0 means "stored raw": used when LZ4 would not shrink it,
        // which also keeps the compressed length within its 17 bits.
        let (body, ulen) = if compressed.len() < payload.len() {
            (&compressed[..], payload.len() as u64)
        } else {
            (payload, 0)
        };
        let header = body.len() as u64 | (ulen << 17) | (sc << 34);
        out.reserve(LZ4_HEADER + CRC24_LEN + body.len() + CRC32_LEN);
        put_le(out, header, LZ4_HEADER);
        put_le(out, crc24(header, LZ4_HEADER) as u64, CRC24_LEN);
        out.put_slice(body);
        out.put_u32_le(crc32(body));
    } else {
        let header = payload.len() as u64 | (sc << 17);
        out.reserve(PLAIN_HEADER + CRC24_LEN + payload.len() + CRC32_LEN);
        put_le(out, header, PLAIN_HEADER);
        put_le(out, crc24(header, PLAIN_HEADER) as u64, CRC24_LEN);
        out.put_slice(payload);
        out.put_u32_le(crc32(payload));
    }
}

/// Wraps one envelope in frames: one self-contained frame if it fits, else consecutive
/// non-self-contained frames of at most [`MAX_PAYLOAD`] bytes each.
pub fn encode_frames(envelope: &[u8], lz4: bool, out: &mut BytesMut) {
    if envelope.len() <= MAX_PAYLOAD {
        write_frame(envelope, true, lz4, out);
    } else {
        for chunk in envelope.chunks(MAX_PAYLOAD) {
            write_frame(chunk, false, lz4, out);
        }
    }
}

/// A decoded frame payload (decompressed) and its self-contained flag.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub payload: Bytes,
    pub self_contained: bool,
}

/// Takes the next frame off `buf`. `Ok(None)`: incomplete, nothing consumed. Errors
/// (checksum mismatch, bad LZ4 data) mean the stream is unusable.
pub fn decode_frame(buf: &mut BytesMut, lz4: bool) -> Result<Option<Frame>, CqlError> {
    let header_len = if lz4 { LZ4_HEADER } else { PLAIN_HEADER };
    if buf.len() < header_len + CRC24_LEN {
        return Ok(None);
    }
    let header = get_le(&buf[..header_len]);
    let expected = get_le(&buf[header_len..header_len + CRC24_LEN]) as u32;
    let actual = crc24(header, header_len);
    if expected != actual {
        return Err(CqlError::protocol(format!(
            "frame header CRC24 mismatch: received 0x{expected:06x}, computed 0x{actual:06x}"
        )));
    }
    let payload_len = (header & MAX_PAYLOAD as u64) as usize;
    let (uncompressed_len, self_contained) = if lz4 {
        (
            ((header >> 17) & MAX_PAYLOAD as u64) as usize,
            header & (1 << 34) != 0,
        )
    } else {
        (0, header & (1 << 17) != 0)
    };
    let total = header_len + CRC24_LEN + payload_len + CRC32_LEN;
    if buf.len() < total {
        return Ok(None);
    }
    buf.advance(header_len + CRC24_LEN);
    let payload = buf.split_to(payload_len).freeze();
    let expected = buf.get_u32_le();
    let actual = crc32(&payload);
    if expected != actual {
        return Err(CqlError::protocol(format!(
            "frame payload CRC32 mismatch: received 0x{expected:08x}, computed 0x{actual:08x}"
        )));
    }
    let payload = if lz4 && uncompressed_len != 0 {
        let out = lz4_flex::block::decompress(&payload, uncompressed_len)
            .map_err(|e| CqlError::protocol(format!("invalid LZ4 frame payload: {e}")))?;
        if out.len() != uncompressed_len {
            return Err(CqlError::protocol(format!(
                "LZ4 frame payload decompressed to {} bytes, header says {uncompressed_len}",
                out.len()
            )));
        }
        Bytes::from(out)
    } else {
        payload
    };
    Ok(Some(Frame {
        payload,
        self_contained,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_vectors() {
        // §1.3 of the conformance notes (python driver / go-native-protocol vectors).
        assert_eq!(crc24(0, 0), 8867936);
        assert_eq!(crc24(0, 3), 8251255);
        assert_eq!(crc24(131077, 3), 10131737);
        assert_eq!(crc24(131077, 3), 0x9A9919);
        assert_eq!(crc24(17181442053, 5), 3672222);
        assert_eq!(crc24(i64::MAX as u64, 8), 5032370);
        assert_eq!(crc24(0x02000A, 3), 0x79688C);
    }

    #[test]
    fn crc32_seed() {
        assert_eq!(crc32(&[]), 0x44777ED3);
    }

    #[test]
    fn crc32_vectors_of_query_envelopes() {
        // Payloads captured from the DataStax Java driver (v6-beta envelopes, flag 0x10),
        // as pinned by go-native-protocol crc/crc32_test.go.
        let mut env = vec![6, 16, 0, 0, 7, 0, 0, 0, 47, 0, 0, 0, 37];
        env.extend(b"SELECT cluster_name FROM system.local");
        env.extend([0, 1, 0, 0, 0, 0]);
        assert_eq!(crc32(&env), 37932456);

        let mut two = vec![6, 16, 0, 0, 7, 0, 0, 0, 36, 0, 0, 0, 26];
        two.extend(b"SELECT * FROM system.local");
        two.extend([0, 1, 0, 0, 0, 0, 6, 16, 0, 1, 7, 0, 0, 0, 39, 0, 0, 0, 29]);
        two.extend(b"SELECT * FROM system.peers_v2");
        two.extend([0, 1, 0, 0, 0, 0]);
        assert_eq!(crc32(&two), (-642004664i32) as u32);
    }

    #[test]
    fn uncompressed_header_example() {
        let mut out = BytesMut::new();
        encode_frames(&[7u8; 10], false, &mut out);
        assert_eq!(&out[..6], &[0x0A, 0x00, 0x02, 0x8C, 0x68, 0x79]);
        assert_eq!(&out[6..16], &[7u8; 10]);
        assert_eq!(out.len(), 6 + 10 + 4);
        assert_eq!(&out[16..], &crc32(&[7u8; 10]).to_le_bytes());
    }

    #[test]
    fn round_trip_both_formats() {
        for lz4 in [false, true] {
            for payload in [vec![], vec![1, 2, 3], vec![b'a'; 5000], (0..=255).collect()] {
                let mut out = BytesMut::new();
                encode_frames(&payload, lz4, &mut out);
                let frame = decode_frame(&mut out, lz4).unwrap().unwrap();
                assert!(frame.self_contained);
                assert_eq!(&frame.payload[..], &payload[..]);
                assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn lz4_stores_incompressible_payloads_raw() {
        let payload: Vec<u8> = (0..64u32).map(|i| (i * 37 % 251) as u8).collect();
        let mut out = BytesMut::new();
        encode_frames(&payload, true, &mut out);
        let header = get_le(&out[..5]);
        assert_eq!((header >> 17) & MAX_PAYLOAD as u64, 0);
        assert_eq!(header & MAX_PAYLOAD as u64, 64);

        let mut out = BytesMut::new();
        encode_frames(&[0u8; 1000], true, &mut out);
        let header = get_le(&out[..5]);
        assert_eq!((header >> 17) & MAX_PAYLOAD as u64, 1000);
        assert!((header & MAX_PAYLOAD as u64) < 100);
        assert!(header & (1 << 34) != 0);
    }

    #[test]
    fn large_envelopes_are_split() {
        let env: Vec<u8> = (0..MAX_PAYLOAD * 2 + 10).map(|i| i as u8).collect();
        for lz4 in [false, true] {
            let mut out = BytesMut::new();
            encode_frames(&env, lz4, &mut out);
            let mut back = Vec::new();
            let mut frames = 0;
            while let Some(f) = decode_frame(&mut out, lz4).unwrap() {
                assert!(!f.self_contained);
                back.extend_from_slice(&f.payload);
                frames += 1;
            }
            assert_eq!(frames, 3);
            assert_eq!(back, env);
        }
    }

    #[test]
    fn incomplete_and_corrupt() {
        let mut out = BytesMut::new();
        encode_frames(b"hello", false, &mut out);
        for n in 0..out.len() {
            let mut part = BytesMut::from(&out[..n]);
            assert_eq!(decode_frame(&mut part, false).unwrap(), None);
            assert_eq!(part.len(), n);
        }
        let mut bad = out.clone();
        bad[3] ^= 1;
        assert!(decode_frame(&mut bad, false).is_err());
        let mut bad = out.clone();
        bad[7] ^= 1;
        assert!(decode_frame(&mut bad, false).is_err());
        let mut bad = out.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        assert!(decode_frame(&mut bad, false).is_err());
    }
}

//! Feeds arbitrary bytes to `ProtocolCodec::decode`, unframed and after
//! `start_v5_framing`, with and without negotiated compression. The codec must never
//! panic, must always consume or wait, and must stop only on `Fatal`.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use shoal_cql::protocol::codec::{Compression, ProtocolCodec};

fn drain(codec: &mut ProtocolCodec, buf: &mut BytesMut) -> bool {
    loop {
        let before = buf.len();
        match codec.decode(buf) {
            Ok(Some(_)) => assert!(buf.len() < before || codec.is_framing()),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let compression = match mode % 3 {
        0 => None,
        1 => Some(Compression::Lz4),
        _ => Some(Compression::Snappy),
    };
    let split = if data.is_empty() {
        0
    } else {
        (mode as usize * 7) % data.len()
    };
    let (first, second) = data.split_at(split);

    // Unframed, then switch to v5 framing mid-stream as a server does after READY.
    let mut codec = ProtocolCodec::new();
    let mut buf = BytesMut::from(first);
    if drain(&mut codec, &mut buf) {
        codec.set_compression(compression);
        codec.start_v5_framing();
        buf.extend_from_slice(second);
        drain(&mut codec, &mut buf);
    }

    // Framed from the first byte, fed in small pieces.
    let mut codec = ProtocolCodec::new();
    codec.set_compression(compression);
    codec.start_v5_framing();
    let mut buf = BytesMut::new();
    for piece in data.chunks(1 + mode as usize % 17) {
        buf.extend_from_slice(piece);
        if !drain(&mut codec, &mut buf) {
            break;
        }
    }
});

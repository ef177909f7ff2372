//! Arbitrary bytes as an SSTable data block: `decode_block` must return an error or chunks,
//! never panic or inflate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_engine::sstable::{BLOCK_HEADER_SIZE, decode_block};

fuzz_target!(|data: &[u8]| {
    let _ = decode_block(data);
    // Re-frame the input with a valid length and checksum so LZ4 and the mutation decoder
    // behind the checksum see the fuzzer's bytes, not just the CRC check.
    if data.len() >= 4 {
        let uncompressed = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) % (1 << 20);
        let body = &data[4..];
        let mut block = Vec::with_capacity(BLOCK_HEADER_SIZE + body.len());
        block.extend_from_slice(&(body.len() as u32).to_le_bytes());
        block.extend_from_slice(&uncompressed.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&block[0..8]);
        h.update(body);
        block.extend_from_slice(&h.finalize().to_le_bytes());
        block.extend_from_slice(body);
        let _ = decode_block(&block);
    }
});

//! Arbitrary bytes as a commit-log entry: decoding must return an error or mutations,
//! never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shoal_engine::commitlog::decode_entry(data);
    // The mutation payload decoder on its own too: entry checksums make random bytes rarely
    // reach it through `decode_entry`.
    let _ = shoal_engine::decode_mutations(data);
});

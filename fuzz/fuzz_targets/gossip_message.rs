//! Feeds arbitrary bytes to the gossip message decoder and the internode frame decoder:
//! neither may panic, and a decoded gossip message must re-encode to bytes that decode to
//! the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_gossip::{codec, internode};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::decode(data) {
        let again = codec::decode(&codec::encode(&msg)).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }
    let mut rest = data;
    while let Ok(Some((_, used))) = internode::decode_frame(rest, 1 << 20) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
});

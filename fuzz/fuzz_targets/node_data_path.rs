//! Feeds arbitrary bytes to the coordinator's internode payload decoders (`shoal_node::wire`)
//! and to the hints file decoder: none may panic, and a decoded read request or reply must
//! re-encode to bytes that decode to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_node::{hints, wire};

fuzz_target!(|data: &[u8]| {
    if let Ok((kind, cmd)) = wire::decode_read_request(data) {
        let again = wire::decode_read_request(&wire::encode_read_request(kind, &cmd))
            .expect("re-encoded read request decodes");
        // ReadCommand has no PartialEq; its Debug form covers every field.
        assert_eq!(format!("{again:?}"), format!("{:?}", (kind, cmd)));
    }
    if let Ok(reply) = wire::decode_read_reply(data) {
        let again = wire::decode_read_reply(&wire::encode_read_reply(&reply))
            .expect("re-encoded read reply decodes");
        assert_eq!(again, reply);
    }
    let _ = wire::decode_mutation_request(data);
    let _ = wire::decode_hint_request(data);
    let _ = wire::decode_truncate_request(data);
    let _ = wire::decode_ack(data);
    let _ = hints::decode_file(data, None);
});

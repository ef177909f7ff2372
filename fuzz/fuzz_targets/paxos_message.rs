//! Feeds arbitrary bytes to the Paxos request and response decoders: neither may panic,
//! and whatever decodes must re-encode to bytes that decode to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_node::paxos::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = codec::decode_request(data) {
        let again = codec::decode_request(&codec::encode_request(&req)).expect("re-encoded request");
        assert_eq!(again, req);
    }
    if let Ok(resp) = codec::decode_response(data) {
        let again =
            codec::decode_response(&codec::encode_response(&resp)).expect("re-encoded response");
        assert_eq!(again, resp);
    }
});

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::error::Consistency;
use crate::protocol::frame::{Frame, decode_frame, encode_frames};
use crate::protocol::primitives::Reader;
use crate::protocol::request::encode_request;
use crate::protocol::{
    BatchQuery, BatchRequest, BoundValue, ColumnSpec, QueryParameters, ResultBody, Rows,
    RowsMetadata, Values,
};
use crate::types::CqlType;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn envelope(version: u8, flags: u8, stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![version, flags];
    v.extend(stream.to_be_bytes());
    v.push(opcode);
    v.extend((body.len() as u32).to_be_bytes());
    v.extend(body);
    v
}

fn request_envelope(version: u8, stream: i16, req: &Request) -> Vec<u8> {
    let (op, body) = encode_request(version, req);
    envelope(version, 0, stream, op as u8, &body)
}

fn decode_one(codec: &mut ProtocolCodec, bytes: &[u8]) -> Decoded {
    let mut buf = BytesMut::from(bytes);
    let d = codec
        .decode(&mut buf)
        .expect("not fatal")
        .expect("complete");
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    d
}

fn request(d: Decoded) -> (Header, Request) {
    match d {
        Decoded::Request { header, request } => (header, request),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn refused(d: Decoded) -> (u8, i16, String) {
    match d {
        Decoded::Refused {
            version,
            stream,
            error: CqlError::Protocol(msg),
        } => (version, stream, msg),
        other => panic!("expected a Protocol refusal, got {other:?}"),
    }
}

fn fatal(codec: &mut ProtocolCodec, bytes: &[u8]) -> Fatal {
    let mut buf = BytesMut::from(bytes);
    match codec.decode(&mut buf) {
        Err(f) => f,
        Ok(other) => panic!("expected Fatal, got {other:?}"),
    }
}

fn params(consistency: Consistency) -> QueryParameters {
    QueryParameters {
        consistency,
        values: Values::default(),
        skip_metadata: false,
        page_size: None,
        paging_state: None,
        serial_consistency: None,
        default_timestamp: None,
        keyspace: None,
        now_in_seconds: None,
    }
}

// ---------------------------------------------------------------- requests (golden bytes)

#[test]
fn golden_v4_query_as_cqlsh_sends_it() {
    // QUERY "SELECT * FROM system.local", stream 3, ONE, flags 0x34: page size 100,
    // serial consistency SERIAL, default timestamp.
    let frame = unhex(
        "04 00 0003 07 0000002f
         0000001a 53454c454354202a2046524f4d2073797374656d2e6c6f63616c
         0001 34 00000064 0008 0005f8e1a4a0f7c0",
    );
    let mut codec = ProtocolCodec::new();
    let (header, req) = request(decode_one(&mut codec, &frame));
    assert_eq!(
        header,
        Header {
            version: 4,
            flags: 0,
            stream: 3,
            opcode: 0x07
        }
    );
    let Request::Query { query, params } = req else {
        panic!("not a query");
    };
    assert_eq!(query, "SELECT * FROM system.local");
    assert_eq!(params.consistency, Consistency::One);
    assert_eq!(params.page_size, Some(100));
    assert_eq!(params.serial_consistency, Some(Consistency::Serial));
    assert_eq!(params.default_timestamp, Some(0x0005_f8e1_a4a0_f7c0));
    assert!(params.values.values.is_empty());
    assert!(!params.skip_metadata);
    assert_eq!(codec.version(), Some(4));
}

#[test]
fn golden_v5_query_with_int_flags_keyspace_and_now() {
    // flags 0x0000_0183: values, skip metadata, keyspace, now_in_seconds.
    let frame = unhex(
        "05 00 0001 07 00000025
         00000008 53454c4543542031
         000a 00000183
         0002 00000001 2a fffffffe
         0002 6b73
         00000007",
    );
    let mut codec = ProtocolCodec::new();
    let (_, req) = request(decode_one(&mut codec, &frame));
    let Request::Query { query, params } = req else {
        panic!("not a query");
    };
    assert_eq!(query, "SELECT 1");
    assert_eq!(params.consistency, Consistency::LocalOne);
    assert!(params.skip_metadata);
    assert_eq!(
        params.values.values,
        vec![
            BoundValue::Value(Bytes::from_static(b"*")),
            BoundValue::Unset
        ]
    );
    assert_eq!(params.values.names, None);
    assert_eq!(params.keyspace.as_deref(), Some("ks"));
    assert_eq!(params.now_in_seconds, Some(7));
}

#[test]
fn v3_query_values_have_no_unset() {
    let frame = unhex(
        "03 00 0000 07 00000012
         00000001 3f
         0001 01
         0002 fffffffe ffffffff",
    );
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    let Request::Query { params, .. } = req else {
        panic!()
    };
    assert_eq!(
        params.values.values,
        vec![BoundValue::Null, BoundValue::Null]
    );
}

#[test]
fn named_values() {
    // v4 QUERY with flags 0x41: one value named "k".
    let frame = unhex(
        "04 00 0000 07 00000013
         00000001 3f
         0001 41
         0001 0001 6b 00000002 0102",
    );
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    let Request::Query { params, .. } = req else {
        panic!()
    };
    assert_eq!(params.values.names, Some(vec!["k".to_string()]));
    assert_eq!(
        params.values.values,
        vec![BoundValue::Value(Bytes::from_static(&[1, 2]))]
    );
}

#[test]
fn startup_keys_are_upper_cased() {
    let frame = unhex(
        "04 00 0000 01 00000028
         0002
         000b 63716c5f76657273696f6e 0005 332e302e30
         000b 434f4d5052455353494f4e 0003 6c7a34",
    );
    let (header, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(header.opcode, 0x01);
    let mut expected = HashMap::new();
    expected.insert("CQL_VERSION".to_string(), "3.0.0".to_string());
    expected.insert("COMPRESSION".to_string(), "lz4".to_string());
    assert_eq!(req, Request::Startup(expected));
    assert_eq!(Compression::from_name("LZ4"), Some(Compression::Lz4));
    assert_eq!(Compression::from_name("snappy"), Some(Compression::Snappy));
    assert_eq!(Compression::from_name("zstd"), None);
}

#[test]
fn options_register_auth_response() {
    let mut codec = ProtocolCodec::new();
    let (_, req) = request(decode_one(&mut codec, &unhex("04 00 0000 05 00000000")));
    assert_eq!(req, Request::Options);
    let frame = unhex(
        "04 00 0001 0b 00000022
         0002 000f 544f504f4c4f47595f4348414e4745 000d 5354415455535f4348414e4745",
    );
    let (_, req) = request(decode_one(&mut codec, &frame));
    assert_eq!(
        req,
        Request::Register(vec!["TOPOLOGY_CHANGE".into(), "STATUS_CHANGE".into()])
    );
    let frame = unhex("04 00 0002 0f 0000000a 00000006 00610062 0063");
    let (_, req) = request(decode_one(&mut codec, &frame));
    assert_eq!(
        req,
        Request::AuthResponse(Some(Bytes::from_static(b"\0a\0b\0c")))
    );
    let (_, req) = request(decode_one(
        &mut codec,
        &unhex("04 00 0002 0f 00000004 ffffffff"),
    ));
    assert_eq!(req, Request::AuthResponse(None));
}

#[test]
fn prepare_v4_and_v5() {
    let frame = unhex("04 00 0000 09 0000000c 00000008 53454c4543542031");
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(
        req,
        Request::Prepare {
            query: "SELECT 1".into(),
            keyspace: None
        }
    );
    let frame = unhex("05 00 0000 09 00000014 00000008 53454c4543542031 00000001 0002 6b73");
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(
        req,
        Request::Prepare {
            query: "SELECT 1".into(),
            keyspace: Some("ks".into())
        }
    );
    let frame = unhex("05 00 0000 09 00000010 00000008 53454c4543542031 00000000");
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(
        req,
        Request::Prepare {
            query: "SELECT 1".into(),
            keyspace: None
        }
    );
}

#[test]
fn execute_v4_and_v5() {
    let frame = unhex(
        "04 00 0007 0a 00000011
         0002 abcd
         0004 05 0001 fffffffe 00001388 ",
    );
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    let mut p = params(Consistency::Quorum);
    p.values.values = vec![BoundValue::Unset];
    p.page_size = Some(5000);
    assert_eq!(
        req,
        Request::Execute {
            id: Bytes::from_static(&[0xab, 0xcd]),
            result_metadata_id: None,
            params: p.clone(),
        }
    );
    let frame = unhex(
        "05 00 0007 0a 00000018
         0002 abcd 0002 eeff
         0004 00000005 0001 fffffffe 00001388",
    );
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(
        req,
        Request::Execute {
            id: Bytes::from_static(&[0xab, 0xcd]),
            result_metadata_id: Some(Bytes::from_static(&[0xee, 0xff])),
            params: p,
        }
    );
}

#[test]
fn batch_v4_and_v5() {
    // Logged batch: one query with a value, one prepared id without; QUORUM, flags 0x20.
    let frame = unhex(
        "04 00 0000 0d 0000002e
         00 0002
         00 0000000d 494e5345525420494e544f2074 0001 00000001 01
         01 0002 abcd 0000
         0004 20 0000000000000001",
    );
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(
        req,
        Request::Batch(BatchRequest {
            batch_type: 0,
            queries: vec![
                BatchQuery::Query {
                    query: "INSERT INTO t".into(),
                    values: Values {
                        values: vec![BoundValue::Value(Bytes::from_static(&[1]))],
                        names: None,
                    },
                },
                BatchQuery::Prepared {
                    id: Bytes::from_static(&[0xab, 0xcd]),
                    values: Values::default(),
                },
            ],
            consistency: Consistency::Quorum,
            serial_consistency: None,
            default_timestamp: Some(1),
            keyspace: None,
            now_in_seconds: None,
        })
    );

    // v5: int flags with serial consistency and keyspace.
    let frame = fix_len(unhex(
        "05 00 0000 0d 00000000
         01 0001
         01 0002 abcd 0001 ffffffff
         0001 00000090 0009 0002 6b73",
    ));
    let (_, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(
        req,
        Request::Batch(BatchRequest {
            batch_type: 1,
            queries: vec![BatchQuery::Prepared {
                id: Bytes::from_static(&[0xab, 0xcd]),
                values: Values {
                    values: vec![BoundValue::Null],
                    names: None
                },
            }],
            consistency: Consistency::One,
            serial_consistency: Some(Consistency::LocalSerial),
            default_timestamp: None,
            keyspace: Some("ks".into()),
            now_in_seconds: None,
        })
    );

    let mut codec = ProtocolCodec::new();
    let bad_type = fix_len(unhex("04 00 0000 0d 00000000 03 0000 0001 00"));
    let (_, _, msg) = refused(decode_one(&mut codec, &bad_type));
    assert!(msg.contains("BATCH type"), "{msg}");
    let bad_kind = fix_len(unhex("04 00 0000 0d 00000000 00 0001 07"));
    let (_, _, msg) = refused(decode_one(&mut codec, &bad_kind));
    assert!(msg.contains("child kind"), "{msg}");
}

/// Rewrites the length field to the actual body length.
fn fix_len(mut frame: Vec<u8>) -> Vec<u8> {
    let len = (frame.len() - 9) as u32;
    frame[5..9].copy_from_slice(&len.to_be_bytes());
    frame
}

#[test]
fn request_custom_payload_is_skipped() {
    let frame = fix_len(unhex(
        "04 04 0000 05 00000000
         0001 0001 6b 00000001 76",
    ));
    let (header, req) = request(decode_one(&mut ProtocolCodec::new(), &frame));
    assert_eq!(header.flags, 0x04);
    assert_eq!(req, Request::Options);
}

// ---------------------------------------------------------------- bad input

#[test]
fn truncated_input_is_incomplete_at_every_length() {
    let frame = request_envelope(
        4,
        9,
        &Request::Query {
            query: "SELECT * FROM t".into(),
            params: params(Consistency::One),
        },
    );
    let mut codec = ProtocolCodec::new();
    let mut buf = BytesMut::new();
    for b in &frame[..frame.len() - 1] {
        buf.extend_from_slice(&[*b]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }
    buf.extend_from_slice(&frame[frame.len() - 1..]);
    let (header, _) = request(codec.decode(&mut buf).unwrap().unwrap());
    assert_eq!(header.stream, 9);
    assert!(buf.is_empty());
    assert!(codec.decode(&mut buf).unwrap().is_none());
}

#[test]
fn several_envelopes_in_one_buffer() {
    let mut bytes = request_envelope(4, 1, &Request::Options);
    bytes.extend(request_envelope(4, 2, &Request::Register(vec!["X".into()])));
    bytes.extend(&request_envelope(4, 3, &Request::Options)[..5]);
    let mut buf = BytesMut::from(&bytes[..]);
    let mut codec = ProtocolCodec::new();
    assert_eq!(
        request(codec.decode(&mut buf).unwrap().unwrap()).0.stream,
        1
    );
    assert_eq!(
        request(codec.decode(&mut buf).unwrap().unwrap()).0.stream,
        2
    );
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(buf.len(), 5);
}

#[test]
fn huge_length_is_fatal_before_the_body_arrives() {
    let f = fatal(&mut ProtocolCodec::new(), &unhex("04 00 0005 07 7fffffff"));
    assert_eq!((f.version, f.stream), (4, 5));
    assert!(matches!(f.error, CqlError::Protocol(_)));
    let f = fatal(&mut ProtocolCodec::new(), &unhex("04 00 0005 07 80000000"));
    assert!(matches!(f.error, CqlError::Protocol(_)));
    // Exactly the limit is fine (and incomplete).
    let mut buf = BytesMut::from(&unhex("04 00 0005 07 10000000")[..]);
    assert!(ProtocolCodec::new().decode(&mut buf).unwrap().is_none());
    let f = fatal(&mut ProtocolCodec::new(), &unhex("04 00 0005 07 10000001"));
    assert!(matches!(f.error, CqlError::Protocol(_)));
}

#[test]
fn response_bit_in_a_request_is_fatal() {
    let f = fatal(&mut ProtocolCodec::new(), &unhex("84 00 0001 05 00000000"));
    assert_eq!((f.version, f.stream), (4, 1));
    let f = fatal(&mut ProtocolCodec::new(), &[0x85]);
    assert_eq!(f.version, 5);
}

#[test]
fn garbage_is_fatal_with_the_version_message() {
    for garbage in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"\x00", b"\x07abc", b"\x7f"] {
        let f = fatal(&mut ProtocolCodec::new(), garbage);
        assert_eq!(f.version, 4);
        let CqlError::Protocol(msg) = f.error else {
            panic!()
        };
        assert!(msg.contains("unsupported protocol version"), "{msg}");
    }
    let f = fatal(&mut ProtocolCodec::new(), b"GET / HTTP/1.1\r\n\r\n");
    let CqlError::Protocol(msg) = f.error else {
        panic!()
    };
    assert_eq!(
        msg,
        "Invalid or unsupported protocol version (71); supported versions are (3/v3, 4/v4, 5/v5)"
    );
}

#[test]
fn unsupported_real_versions_are_refused_and_the_connection_survives() {
    let mut codec = ProtocolCodec::new();
    // cassandra-driver's first attempts: DSE_V2 (0x42), DSE_V1 (0x41), then v6 with USE_BETA.
    for (version, flags) in [(0x42u8, 0u8), (0x41, 0), (6, 0x10)] {
        let frame = envelope(version, flags, 17, 0x05, &[]);
        let (v, stream, msg) = refused(decode_one(&mut codec, &frame));
        assert_eq!((v, stream), (4, 17));
        assert_eq!(
            msg,
            format!(
                "Invalid or unsupported protocol version ({version}); supported versions are (3/v3, 4/v4, 5/v5)"
            )
        );
        assert!(msg.contains("unsupported protocol version"));
    }
    // v1/v2 use an 8-byte header with a one-byte stream.
    let (v, stream, msg) = refused(decode_one(&mut codec, &unhex("02 00 05 05 00000000")));
    assert_eq!((v, stream), (4, 5));
    assert!(msg.contains("(2)"));
    let (_, _, msg) = refused(decode_one(&mut codec, &unhex("01 00 ff 01 00000002 0000")));
    assert!(msg.contains("(1)"));
    // Still usable, and still unfixed: the next request picks the version.
    assert_eq!(codec.version(), None);
    let (h, _) = request(decode_one(
        &mut codec,
        &request_envelope(5, 0, &Request::Options),
    ));
    assert_eq!(h.version, 5);
    assert_eq!(codec.version(), Some(5));
    // An unsupported version after that is answered in the connection's version.
    let (v, _, _) = refused(decode_one(&mut codec, &envelope(6, 0, 1, 0x05, &[])));
    assert_eq!(v, 5);
}

#[test]
fn unsupported_version_header_is_incomplete_until_whole() {
    let frame = envelope(0x42, 0, 1, 0x05, &[0, 0]);
    let mut codec = ProtocolCodec::new();
    for n in 1..frame.len() {
        let mut buf = BytesMut::from(&frame[..n]);
        assert!(codec.decode(&mut buf).unwrap().is_none(), "{n}");
    }
    let f = fatal(&mut codec, &unhex("42 00 0001 05 7fffffff"));
    assert!(matches!(f.error, CqlError::Protocol(_)));
}

#[test]
fn version_change_on_a_connection_is_refused() {
    let mut codec = ProtocolCodec::new();
    request(decode_one(
        &mut codec,
        &request_envelope(4, 0, &Request::Options),
    ));
    let (v, stream, msg) = refused(decode_one(
        &mut codec,
        &request_envelope(3, 8, &Request::Options),
    ));
    assert_eq!((v, stream), (4, 8));
    assert!(msg.contains("Got 3"), "{msg}");
    assert_eq!(codec.version(), Some(4));
}

#[test]
fn unknown_and_response_opcodes_are_refused() {
    let mut codec = ProtocolCodec::new();
    for op in [0x04u8, 0x11, 0xff] {
        let (v, stream, msg) = refused(decode_one(&mut codec, &envelope(4, 0, 7, op, &[1, 2])));
        assert_eq!((v, stream), (4, 7));
        assert!(msg.contains("unknown opcode"), "{msg}");
    }
    for op in [0x00u8, 0x02, 0x03, 0x06, 0x08, 0x0C, 0x0E, 0x10] {
        let (_, _, msg) = refused(decode_one(&mut codec, &envelope(5, 0, 7, op, &[])));
        assert!(msg.contains("response opcode"), "{msg}");
    }
    // Still usable.
    request(decode_one(
        &mut codec,
        &request_envelope(4, 0, &Request::Options),
    ));
}

#[test]
fn malformed_bodies_are_refused() {
    let mut codec = ProtocolCodec::new();
    // QUERY whose [long string] claims more than the body has.
    let (v, stream, msg) = refused(decode_one(
        &mut codec,
        &envelope(4, 0, 2, 0x07, &unhex("000000ff 41")),
    ));
    assert_eq!((v, stream), (4, 2));
    assert!(msg.contains("[long string]"), "{msg}");
    // Unknown consistency.
    let (_, _, msg) = refused(decode_one(
        &mut codec,
        &envelope(4, 0, 2, 0x07, &unhex("00000001 41 00ff 00")),
    ));
    assert!(msg.contains("consistency"), "{msg}");
    // Invalid [value] length on v4.
    let (_, _, msg) = refused(decode_one(
        &mut codec,
        &envelope(4, 0, 2, 0x07, &unhex("00000001 41 0001 01 0001 fffffffd")),
    ));
    assert!(msg.contains("[value]"), "{msg}");
    // Invalid UTF-8 in STARTUP.
    let (_, _, msg) = refused(decode_one(
        &mut codec,
        &envelope(4, 0, 2, 0x01, &unhex("0001 0001 ff 0001 41")),
    ));
    assert!(msg.contains("UTF-8"), "{msg}");
    assert_eq!(codec.version(), None);
}

// ---------------------------------------------------------------- responses

fn parse_response(bytes: &[u8]) -> (u8, u8, i16, u8, Bytes) {
    assert!(bytes.len() >= 9);
    let len = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
    assert_eq!(bytes.len(), 9 + len);
    (
        bytes[0],
        bytes[1],
        i16::from_be_bytes([bytes[2], bytes[3]]),
        bytes[4],
        Bytes::copy_from_slice(&bytes[9..]),
    )
}

#[test]
fn encode_header_and_ready() {
    let mut codec = ProtocolCodec::new();
    let mut out = BytesMut::new();
    codec.encode(4, 3, &ResponseExtras::default(), &Response::Ready, &mut out);
    assert_eq!(&out[..], &[0x84, 0, 0, 3, 0x02, 0, 0, 0, 0]);
    let mut out = BytesMut::new();
    codec.encode(
        5,
        -1,
        &ResponseExtras::default(),
        &Response::Result(ResultBody::Void),
        &mut out,
    );
    assert_eq!(
        &out[..],
        &[0x85, 0, 0xff, 0xff, 0x08, 0, 0, 0, 4, 0, 0, 0, 1]
    );
    // An unsupported version number never reaches the wire.
    let mut out = BytesMut::new();
    codec.encode(
        0x42,
        0,
        &ResponseExtras::default(),
        &Response::Error(CqlError::protocol("x")),
        &mut out,
    );
    assert_eq!(out[0], 0x84);
}

#[test]
fn extras_order_tracing_warnings_payload() {
    let extras = ResponseExtras {
        tracing_id: Some([0x11; 16]),
        warnings: vec!["w".into()],
        custom_payload: Some(vec![("k".into(), Bytes::from_static(b"v"))]),
    };
    let mut out = BytesMut::new();
    ProtocolCodec::new().encode(4, 1, &extras, &Response::Result(ResultBody::Void), &mut out);
    let (v, flags, _, op, body) = parse_response(&out);
    assert_eq!((v, flags, op), (0x84, 0x02 | 0x04 | 0x08, 0x08));
    let mut r = Reader::new(body);
    assert_eq!(r.uuid().unwrap(), [0x11; 16]);
    assert_eq!(r.string_list().unwrap(), vec!["w"]);
    assert_eq!(
        r.bytes_map().unwrap(),
        vec![("k".into(), Some(Bytes::from_static(b"v")))]
    );
    assert_eq!(r.int().unwrap(), 1);
    assert!(r.is_empty());

    // v3 has no warnings or custom payloads.
    let mut out = BytesMut::new();
    ProtocolCodec::new().encode(3, 1, &extras, &Response::Result(ResultBody::Void), &mut out);
    let (v, flags, _, _, body) = parse_response(&out);
    assert_eq!((v, flags), (0x83, 0x02));
    assert_eq!(body.len(), 16 + 4);

    // Only the warnings.
    let extras = ResponseExtras {
        warnings: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let mut out = BytesMut::new();
    ProtocolCodec::new().encode(5, 1, &extras, &Response::Ready, &mut out);
    let (_, flags, _, _, body) = parse_response(&out);
    assert_eq!(flags, 0x08);
    assert_eq!(&body[..], &unhex("0002 0001 61 0001 62")[..]);
}

fn sample_rows(n: usize) -> Response {
    let col = |name: &str| ColumnSpec {
        keyspace: "ks".into(),
        table: "t".into(),
        name: name.into(),
        ty: CqlType::Text,
    };
    Response::Result(ResultBody::Rows(Rows {
        metadata: RowsMetadata {
            columns: vec![col("a"), col("b")],
            ..Default::default()
        },
        rows: (0..n)
            .map(|i| {
                vec![
                    Some(Bytes::from(format!("row number {i}"))),
                    Some(Bytes::from_static(b"the same text again and again")),
                ]
            })
            .collect(),
    }))
}

fn uncompressed_body(version: u8, response: &Response) -> Bytes {
    let mut out = BytesMut::new();
    ProtocolCodec::new().encode(version, 0, &ResponseExtras::default(), response, &mut out);
    parse_response(&out).4
}

// ---------------------------------------------------------------- compression

#[test]
fn compressed_responses() {
    let response = sample_rows(50);
    let plain = uncompressed_body(4, &response);
    for c in [Compression::Lz4, Compression::Snappy] {
        let mut codec = ProtocolCodec::new();
        codec.set_compression(Some(c));
        let mut out = BytesMut::new();
        codec.encode(4, 2, &ResponseExtras::default(), &response, &mut out);
        let (v, flags, stream, _, body) = parse_response(&out);
        assert_eq!((v, flags, stream), (0x84, 0x01, 2));
        assert!(body.len() < plain.len());
        assert_eq!(decompress(c, &body).unwrap(), plain);
        match c {
            Compression::Lz4 => {
                assert_eq!(
                    u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize,
                    plain.len()
                );
                assert_eq!(
                    lz4_flex::block::decompress(&body[4..], plain.len()).unwrap(),
                    plain
                );
            }
            Compression::Snappy => {
                assert_eq!(
                    snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
                    plain
                );
            }
        }
        // READY (empty body) is sent as is.
        let mut out = BytesMut::new();
        codec.encode(4, 0, &ResponseExtras::default(), &Response::Ready, &mut out);
        assert_eq!(&out[..], &[0x84, 0, 0, 0, 0x02, 0, 0, 0, 0]);
    }
}

#[test]
fn compressed_requests() {
    let req = Request::Query {
        query: "SELECT * FROM ks.t WHERE k = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'".into(),
        params: params(Consistency::One),
    };
    let (op, body) = encode_request(4, &req);
    for c in [Compression::Lz4, Compression::Snappy] {
        let mut codec = ProtocolCodec::new();
        codec.set_compression(Some(c));
        let frame = envelope(4, 0x01, 4, op as u8, &compress(c, &body));
        let (header, got) = request(decode_one(&mut codec, &frame));
        assert_eq!(header.flags, 0x01);
        assert_eq!(got, req);
        // Uncompressed envelopes are still accepted (the flag is per envelope).
        let frame = envelope(4, 0, 4, op as u8, &body);
        assert_eq!(request(decode_one(&mut codec, &frame)).1, req);
        // Corrupt data is refused, not fatal.
        let frame = envelope(4, 0x01, 4, op as u8, &[0, 0, 0, 9, 0xff, 0xff]);
        let (_, stream, _) = refused(decode_one(&mut codec, &frame));
        assert_eq!(stream, 4);
    }
    // Compressed but nothing negotiated.
    let frame = envelope(4, 0x01, 4, op as u8, &compress(Compression::Lz4, &body));
    let (_, _, msg) = refused(decode_one(&mut ProtocolCodec::new(), &frame));
    assert!(msg.contains("no compression"), "{msg}");
}

#[test]
fn decompression_is_bounded() {
    // A 10-byte LZ4 body claiming 200 MB is refused before allocating.
    let mut body = vec![0x0B, 0xEB, 0xC2, 0x00];
    body.extend([0u8; 6]);
    let err = decompress(Compression::Lz4, &body).unwrap_err();
    assert!(err.to_string().contains("uncompressed length"), "{err}");
    let mut body = vec![0xFF, 0xFF, 0xFF, 0xFF];
    body.extend(vec![0u8; 1 << 20]);
    assert!(decompress(Compression::Lz4, &body).is_err());
    assert!(decompress(Compression::Lz4, &[0, 0]).is_err());
    // Snappy: varint length 0x0FFFFFFF and no data.
    let err = decompress(Compression::Snappy, &[0xFF, 0xFF, 0xFF, 0x7F]).unwrap_err();
    assert!(err.to_string().contains("uncompressed length"), "{err}");
    // Real round trip of a highly compressible body still works.
    let big = vec![7u8; 1 << 20];
    for c in [Compression::Lz4, Compression::Snappy] {
        assert_eq!(&decompress(c, &compress(c, &big)).unwrap()[..], &big[..]);
    }
}

#[test]
fn v5_ignores_the_compression_flag() {
    let mut codec = ProtocolCodec::new();
    let (op, body) = encode_request(5, &Request::Options);
    let (_, req) = request(decode_one(
        &mut codec,
        &envelope(5, 0x01, 0, op as u8, &body),
    ));
    assert_eq!(req, Request::Options);
}

// ---------------------------------------------------------------- v5 framing

fn framed_codec(lz4: bool) -> ProtocolCodec {
    let mut codec = ProtocolCodec::new();
    // The usual sequence: STARTUP unframed, READY unframed, then frames.
    let mut map = HashMap::new();
    map.insert("CQL_VERSION".to_string(), "3.0.0".to_string());
    if lz4 {
        map.insert("COMPRESSION".to_string(), "lz4".to_string());
    }
    request(decode_one(
        &mut codec,
        &request_envelope(5, 0, &Request::Startup(map)),
    ));
    let mut out = BytesMut::new();
    codec.encode(5, 0, &ResponseExtras::default(), &Response::Ready, &mut out);
    assert_eq!(&out[..], &[0x85, 0, 0, 0, 0x02, 0, 0, 0, 0]);
    if lz4 {
        codec.set_compression(Some(Compression::Lz4));
    }
    codec.start_v5_framing();
    assert!(codec.is_framing());
    codec
}

fn frames_of(envelopes: &[u8], lz4: bool) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frames(envelopes, lz4, &mut out);
    out
}

#[test]
fn golden_v5_frame_with_options() {
    let mut codec = framed_codec(false);
    // Self-contained frame, 9-byte payload (OPTIONS, stream 1).
    let header: u64 = 9 | (1 << 17);
    let crc = frame::crc24(header, 3);
    let mut bytes = header.to_le_bytes()[..3].to_vec();
    bytes.extend(&crc.to_le_bytes()[..3]);
    let env = unhex("05 00 0001 05 00000000");
    bytes.extend(&env);
    bytes.extend(frame::crc32(&env).to_le_bytes());
    assert_eq!(&bytes[..3], &[0x09, 0x00, 0x02]);
    let (h, req) = request(decode_one(&mut codec, &bytes));
    assert_eq!((h.stream, req), (1, Request::Options));
}

#[test]
fn several_envelopes_in_one_self_contained_frame() {
    for lz4 in [false, true] {
        let mut codec = framed_codec(lz4);
        let mut envs = request_envelope(5, 1, &Request::Options);
        envs.extend(request_envelope(
            5,
            2,
            &Request::Query {
                query: "SELECT * FROM system.local".into(),
                params: params(Consistency::One),
            },
        ));
        envs.extend(request_envelope(5, 3, &Request::Register(vec!["X".into()])));
        let mut buf = frames_of(&envs, lz4);
        let partial_next = frames_of(&request_envelope(5, 4, &Request::Options), lz4);
        buf.extend_from_slice(&partial_next[..partial_next.len() - 1]);
        for stream in 1..=3 {
            let (h, _) = request(codec.decode(&mut buf).unwrap().unwrap());
            assert_eq!(h.stream, stream);
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&partial_next[partial_next.len() - 1..]);
        assert_eq!(
            request(codec.decode(&mut buf).unwrap().unwrap()).0.stream,
            4
        );
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }
}

#[test]
fn large_envelope_split_over_frames() {
    for lz4 in [false, true] {
        let mut codec = framed_codec(lz4);
        let query: String = (0..300_000)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let req = Request::Query {
            query,
            params: params(Consistency::One),
        };
        let env = request_envelope(5, 6, &req);
        let mut buf = frames_of(&env, lz4);
        // Feed it in pieces: incomplete until the last byte.
        let mut feed = BytesMut::new();
        let step = 50_000;
        let mut got = None;
        while !buf.is_empty() {
            let n = step.min(buf.len());
            feed.extend_from_slice(&buf.split_to(n));
            if let Some(d) = codec.decode(&mut feed).unwrap() {
                assert!(buf.is_empty(), "decoded before all frames arrived");
                got = Some(d);
            }
        }
        let (h, back) = request(got.unwrap());
        assert_eq!(h.stream, 6);
        assert_eq!(back, req);
    }
}

#[test]
fn corrupt_frames_are_fatal() {
    let env = request_envelope(5, 1, &Request::Options);
    let good = frames_of(&env, false);
    for i in [0, 4, 8, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x04;
        let f = fatal(&mut framed_codec(false), &bad);
        assert_eq!(f.version, 5);
        assert!(f.error.to_string().contains("CRC"), "{}", f.error);
    }
    // An LZ4 frame read as a plain one (or vice versa) fails the header CRC.
    let f = fatal(&mut framed_codec(true), &good);
    assert!(f.error.to_string().contains("CRC24"));
}

#[test]
fn self_contained_frame_must_hold_whole_envelopes() {
    let env = request_envelope(5, 1, &Request::Register(vec!["TOPOLOGY_CHANGE".into()]));
    let buf = frames_of(&env[..env.len() - 3], false);
    let f = fatal(&mut framed_codec(false), &buf);
    assert!(f.error.to_string().contains("self-contained"));

    // A non-self-contained part followed by a self-contained frame.
    let mut buf = BytesMut::new();
    let header: u64 = 5;
    let mut bytes = header.to_le_bytes()[..3].to_vec();
    bytes.extend(&frame::crc24(header, 3).to_le_bytes()[..3]);
    bytes.extend(&env[..5]);
    bytes.extend(frame::crc32(&env[..5]).to_le_bytes());
    buf.extend_from_slice(&bytes);
    encode_frames(&env, false, &mut buf);
    let f = fatal(&mut framed_codec(false), &buf);
    assert!(f.error.to_string().contains("split envelope"));
}

#[test]
fn non_v5_envelope_inside_a_frame_is_refused() {
    let mut codec = framed_codec(false);
    let env = request_envelope(4, 3, &Request::Options);
    let (v, stream, _) = refused(decode_one(&mut codec, &frames_of(&env, false)));
    assert_eq!((v, stream), (5, 3));
    let mut codec = ProtocolCodec::new();
    codec.start_v5_framing();
    let (v, stream, msg) = refused(decode_one(&mut codec, &frames_of(&env, false)));
    assert_eq!((v, stream), (4, 3));
    assert!(msg.contains("v5 frame"), "{msg}");
}

fn read_frames(out: &mut BytesMut, lz4: bool) -> (Vec<u8>, Vec<bool>) {
    let mut payload = Vec::new();
    let mut sc = Vec::new();
    while let Some(Frame {
        payload: p,
        self_contained,
    }) = decode_frame(out, lz4).unwrap()
    {
        payload.extend_from_slice(&p);
        sc.push(self_contained);
    }
    assert!(out.is_empty());
    (payload, sc)
}

#[test]
fn framed_responses() {
    for lz4 in [false, true] {
        let mut codec = framed_codec(lz4);
        let response = sample_rows(20);
        let mut out = BytesMut::new();
        codec.encode(5, 9, &ResponseExtras::default(), &response, &mut out);
        let (env, sc) = read_frames(&mut out, lz4);
        assert_eq!(sc, vec![true]);
        let (v, flags, stream, op, body) = parse_response(&env);
        // Never body-compressed inside v5 frames.
        assert_eq!((v, flags, stream, op), (0x85, 0, 9, 0x08));
        assert_eq!(body, uncompressed_body(5, &response));

        // A response larger than one frame is split.
        let response = sample_rows(8000);
        let mut out = BytesMut::new();
        codec.encode(5, 9, &ResponseExtras::default(), &response, &mut out);
        let (env, sc) = read_frames(&mut out, lz4);
        assert!(sc.len() > 1 && sc.iter().all(|s| !s));
        let (_, _, _, _, body) = parse_response(&env);
        assert_eq!(body, uncompressed_body(5, &response));
    }
}

#[test]
fn snappy_is_not_used_for_v5_frames() {
    let mut codec = framed_codec(false);
    codec.set_compression(Some(Compression::Snappy));
    let mut out = BytesMut::new();
    codec.encode(5, 1, &ResponseExtras::default(), &Response::Ready, &mut out);
    let (env, _) = read_frames(&mut out, false);
    assert_eq!(env, vec![0x85, 0, 0, 1, 0x02, 0, 0, 0, 0]);
    let env = request_envelope(5, 1, &Request::Options);
    request(decode_one(&mut codec, &frames_of(&env, false)));
}

// ---------------------------------------------------------------- properties

fn arb_consistency() -> impl Strategy<Value = Consistency> {
    (0u16..=10).prop_map(|v| Consistency::from_u16(v).unwrap())
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bytes::from)
}

fn arb_value(version: u8) -> impl Strategy<Value = BoundValue> {
    let unset = if version >= 4 { 1 } else { 0 };
    prop_oneof![
        1 => Just(BoundValue::Null),
        unset => Just(BoundValue::Unset),
        4 => arb_bytes().prop_map(BoundValue::Value),
    ]
}

fn arb_values(version: u8, named: bool) -> impl Strategy<Value = Values> {
    proptest::collection::vec(arb_value(version), 0..4).prop_flat_map(move |values| {
        let n = values.len();
        let names = if named {
            proptest::option::of(proptest::collection::vec("[a-z]{1,5}", n..=n)).boxed()
        } else {
            Just(None).boxed()
        };
        names.prop_map(move |names| Values {
            values: values.clone(),
            names,
        })
    })
}

fn arb_params(version: u8) -> impl Strategy<Value = QueryParameters> {
    let v5 = version >= 5;
    (
        arb_consistency(),
        arb_values(version, true),
        any::<bool>(),
        proptest::option::of(any::<i32>()),
        proptest::option::of(arb_bytes()),
        proptest::option::of(arb_consistency()),
        proptest::option::of(any::<i64>()),
        proptest::option::of("[a-z_]{1,8}"),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(
            move |(c, values, skip, ps, state, serial, ts, ks, now)| QueryParameters {
                consistency: c,
                values,
                skip_metadata: skip,
                page_size: ps,
                paging_state: state,
                serial_consistency: serial,
                default_timestamp: ts,
                keyspace: ks.filter(|_| v5),
                now_in_seconds: now.filter(|_| v5),
            },
        )
}

fn arb_request(version: u8) -> impl Strategy<Value = Request> {
    let v5 = version >= 5;
    let batch_child = prop_oneof![
        ("[ -~]{0,30}", arb_values(version, false))
            .prop_map(|(query, values)| BatchQuery::Query { query, values }),
        (arb_bytes(), arb_values(version, false))
            .prop_map(|(id, values)| BatchQuery::Prepared { id, values }),
    ];
    prop_oneof![
        proptest::collection::hash_map("[A-Z_]{1,12}", "[ -~]{0,10}", 0..4)
            .prop_map(Request::Startup),
        Just(Request::Options),
        ("\\PC{0,40}", arb_params(version))
            .prop_map(|(query, params)| Request::Query { query, params }),
        ("[ -~]{0,40}", proptest::option::of("[a-z]{1,8}")).prop_map(move |(query, ks)| {
            Request::Prepare {
                query,
                keyspace: ks.filter(|_| v5),
            }
        }),
        (arb_bytes(), arb_bytes(), arb_params(version)).prop_map(move |(id, rm, params)| {
            Request::Execute {
                id,
                result_metadata_id: v5.then_some(rm),
                params,
            }
        }),
        (
            0u8..=2,
            proptest::collection::vec(batch_child, 0..4),
            arb_consistency(),
            proptest::option::of(arb_consistency()),
            proptest::option::of(any::<i64>()),
            proptest::option::of("[a-z]{1,8}"),
            proptest::option::of(any::<i32>()),
        )
            .prop_map(move |(t, queries, c, serial, ts, ks, now)| {
                Request::Batch(BatchRequest {
                    batch_type: t,
                    queries,
                    consistency: c,
                    serial_consistency: serial,
                    default_timestamp: ts,
                    keyspace: ks.filter(|_| v5),
                    now_in_seconds: now.filter(|_| v5),
                })
            }),
        proptest::collection::vec("[A-Z_]{1,15}", 0..4).prop_map(Request::Register),
        proptest::option::of(arb_bytes()).prop_map(Request::AuthResponse),
    ]
}

fn arb_versioned_request() -> impl Strategy<Value = (u8, Request)> {
    (3u8..=5).prop_flat_map(|v| arb_request(v).prop_map(move |r| (v, r)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..512),
        framing in any::<bool>(),
        compression in 0u8..3,
        chunk in 1usize..64,
    ) {
        let mut codec = ProtocolCodec::new();
        codec.set_compression(match compression {
            0 => None,
            1 => Some(Compression::Lz4),
            _ => Some(Compression::Snappy),
        });
        if framing {
            codec.start_v5_framing();
        }
        let mut buf = BytesMut::new();
        'feed: for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        version in 3u8..=5,
        flags in any::<u8>(),
        opcode in 0u8..0x12,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut codec = ProtocolCodec::new();
        codec.set_compression(Some(Compression::Lz4));
        let mut buf = BytesMut::from(&envelope(version, flags, 0, opcode, &body)[..]);
        let decoded = codec.decode(&mut buf);
        prop_assert!(matches!(decoded, Ok(Some(_))));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn requests_round_trip((version, req) in arb_versioned_request(), stream in 0i16..i16::MAX) {
        let mut codec = ProtocolCodec::new();
        let bytes = request_envelope(version, stream, &req);
        let (header, back) = request(decode_one(&mut codec, &bytes));
        prop_assert_eq!(header.version, version);
        prop_assert_eq!(header.stream, stream);
        prop_assert_eq!(back, req);
    }

    #[test]
    fn framed_requests_round_trip(
        reqs in proptest::collection::vec(arb_request(5), 1..4),
        lz4 in any::<bool>(),
    ) {
        let mut codec = framed_codec(lz4);
        let mut envs = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            envs.extend(request_envelope(5, i as i16, r));
        }
        let mut buf = frames_of(&envs, lz4);
        for r in &reqs {
            let (_, back) = request(codec.decode(&mut buf).unwrap().unwrap());
            prop_assert_eq!(&back, r);
        }
        prop_assert!(codec.decode(&mut buf).unwrap().is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Valid traffic with a few bytes changed or cut off: closer to the interesting edges
    /// than random bytes are.
    #[test]
    fn mutated_valid_traffic_never_panics(
        (version, req) in arb_versioned_request(),
        framed in any::<bool>(),
        lz4 in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let env = request_envelope(if framed { 5 } else { version }, 1, &req);
        let mut codec = if framed { framed_codec(lz4) } else { ProtocolCodec::new() };
        let mut bytes = if framed { frames_of(&env, lz4).to_vec() } else { env };
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }
}

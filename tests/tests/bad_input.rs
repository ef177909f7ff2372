//! Hostile and malformed input. Raw sockets send crafted bytes; the node must answer with
//! an ERROR frame or close the connection (never hang), and keep serving other clients.
//! Invalid CQL through the driver must come back with Cassandra's error codes.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use scylla::errors::DbError;
use shoal_tests::Node;

const OP_ERROR: u8 = 0x00;
const OP_STARTUP: u8 = 0x01;
const OP_READY: u8 = 0x02;
const OP_OPTIONS: u8 = 0x05;
const OP_SUPPORTED: u8 = 0x06;
const PROTOCOL_ERROR: i32 = 0x000A;
/// Cassandra answers an oversized frame with Invalid (0x2200) "Request is too big"; a
/// protocol error is just as clear to a client.
const TOO_BIG_CODES: &[i32] = &[PROTOCOL_ERROR, 0x2200];

/// Long enough for a debug build on a loaded machine, short enough to call it a hang.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Reply {
    Frame {
        version: u8,
        stream: i16,
        opcode: u8,
        body: Vec<u8>,
    },
    Closed,
    /// Neither a reply nor a close within READ_TIMEOUT.
    Silent,
}

impl Reply {
    /// (code, message) if this is an ERROR frame.
    fn error(&self) -> Option<(i32, String)> {
        match self {
            Reply::Frame {
                opcode: OP_ERROR,
                body,
                ..
            } if body.len() >= 6 => {
                let code = i32::from_be_bytes(body[0..4].try_into().unwrap());
                let len = u16::from_be_bytes(body[4..6].try_into().unwrap()) as usize;
                let msg = String::from_utf8_lossy(&body[6..(6 + len).min(body.len())]).into_owned();
                Some((code, msg))
            }
            _ => None,
        }
    }
}

fn frame(version: u8, stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![version, 0];
    f.extend_from_slice(&stream.to_be_bytes());
    f.push(opcode);
    f.extend_from_slice(&(body.len() as i32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn string_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut b = (pairs.len() as u16).to_be_bytes().to_vec();
    for s in pairs.iter().flat_map(|(k, v)| [k, v]) {
        b.extend_from_slice(&(s.len() as u16).to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    b
}

fn open(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

enum ReadOutcome {
    Full,
    Closed,
    Silent,
}

fn read_fully(s: &mut TcpStream, buf: &mut [u8], what: &str) -> ReadOutcome {
    match s.read_exact(buf) {
        Ok(()) => ReadOutcome::Full,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
            ) =>
        {
            ReadOutcome::Closed
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            ReadOutcome::Silent
        }
        Err(e) => panic!("{what}: read failed: {e}"),
    }
}

/// Reads one response frame, or notices the close or the silence.
fn read_reply(s: &mut TcpStream, what: &str) -> Reply {
    let mut first = [0u8; 1];
    match read_fully(s, &mut first, what) {
        ReadOutcome::Full => {}
        ReadOutcome::Closed => return Reply::Closed,
        ReadOutcome::Silent => return Reply::Silent,
    }
    let version = first[0];
    // Cassandra answers a v1/v2 request in that version's 8-byte header (one-byte stream).
    let legacy = (version & 0x7f) <= 2;
    let mut rest = vec![0u8; if legacy { 7 } else { 8 }];
    match read_fully(s, &mut rest, what) {
        ReadOutcome::Full => {}
        ReadOutcome::Closed => return Reply::Closed,
        ReadOutcome::Silent => panic!("{what}: reply header never completed"),
    }
    let (stream, opcode, len) = if legacy {
        (
            rest[1] as i8 as i16,
            rest[2],
            i32::from_be_bytes(rest[3..7].try_into().unwrap()),
        )
    } else {
        (
            i16::from_be_bytes([rest[1], rest[2]]),
            rest[3],
            i32::from_be_bytes(rest[4..8].try_into().unwrap()),
        )
    };
    assert!(
        (0..=1 << 20).contains(&len),
        "{what}: reply header {version:02x} {rest:02x?} claims a {len}-byte body"
    );
    let mut body = vec![0u8; len as usize];
    match read_fully(s, &mut body, what) {
        ReadOutcome::Full => {}
        ReadOutcome::Closed => return Reply::Closed,
        ReadOutcome::Silent => panic!("{what}: reply body never completed"),
    }
    Reply::Frame {
        version,
        stream,
        opcode,
        body,
    }
}

/// Sends `bytes`, optionally half-closes, and returns the first reply (or the close).
fn probe(addr: SocketAddr, bytes: &[u8], half_close: bool, what: &str) -> Reply {
    let mut s = open(addr);
    // The server may close while we are still writing; that is an allowed answer.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_reply(&mut s, what)
}

/// Either a clean close, or a protocol ERROR (0x000A), optionally with a required message.
fn assert_error_or_close(reply: &Reply, must_contain: Option<&str>, what: &str) {
    assert_error_or_close_with(reply, &[PROTOCOL_ERROR], must_contain, what)
}

fn assert_error_or_close_with(
    reply: &Reply,
    codes: &[i32],
    must_contain: Option<&str>,
    what: &str,
) {
    match reply {
        Reply::Closed => {}
        Reply::Silent => panic!("{what}: no reply and no close within {READ_TIMEOUT:?} (hang)"),
        r => {
            let (code, msg) = r
                .error()
                .unwrap_or_else(|| panic!("{what}: expected ERROR or close, got {r:?}"));
            assert!(
                codes.contains(&code),
                "{what}: error code {code:#06x} (message {msg:?})"
            );
            if let Some(needle) = must_contain {
                assert!(
                    msg.contains(needle),
                    "{what}: message {msg:?} lacks {needle:?}"
                );
            }
        }
    }
}

/// The node still serves a brand-new driver session.
async fn assert_still_serving(node: &Node, after: &str) {
    let session = common::try_connect(node).await.unwrap_or_else(|e| {
        panic!(
            "after {after}: new session failed: {e}\n{}",
            node.stderr_tail()
        )
    });
    let rows = session
        .query_unpaged(
            "SELECT release_version FROM system.local WHERE key = 'local'",
            (),
        )
        .await
        .unwrap_or_else(|e| panic!("after {after}: query failed: {e}"))
        .into_rows_result()
        .unwrap();
    assert_eq!(rows.rows_num(), 1, "after {after}");
}

fn startup_v4(s: &mut TcpStream, what: &str) {
    s.write_all(&frame(
        4,
        1,
        OP_STARTUP,
        &string_map(&[("CQL_VERSION", "3.0.0")]),
    ))
    .unwrap();
    match read_reply(s, what) {
        Reply::Frame {
            version: 0x84,
            opcode: OP_READY,
            stream: 1,
            ..
        } => {}
        r => panic!("{what}: STARTUP v4 did not get READY on stream 1: {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_never_hangs_the_node() {
    let node = Node::start_default();
    let addr = node.addr();

    // Sanity: the raw framing here is right, so failures below are about the bad input.
    let mut s = open(addr);
    s.write_all(&frame(4, 3, OP_OPTIONS, &[])).unwrap();
    match read_reply(&mut s, "OPTIONS v4") {
        Reply::Frame {
            version: 0x84,
            stream: 3,
            opcode: OP_SUPPORTED,
            ..
        } => {}
        r => panic!("OPTIONS v4 did not get SUPPORTED: {r:?}"),
    }
    drop(s);

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5ea1);
    let mut random: Vec<u8> = (0..256).map(|_| rng.random()).collect();
    // A version byte no server speaks, so the bytes cannot be a legal incomplete frame
    // that a correct server would rightly wait on.
    random[0] = 0x7f;
    let what = "random bytes";
    let reply = probe(addr, &random, true, what);
    assert_error_or_close(&reply, None, what);
    assert_still_serving(&node, what).await;

    let what = "an HTTP request";
    let reply = probe(
        addr,
        b"GET / HTTP/1.1\r\nHost: shoal\r\nAccept: */*\r\n\r\n",
        false,
        what,
    );
    assert_error_or_close(&reply, None, what);
    assert_still_serving(&node, what).await;

    let what = "a truncated frame, then close";
    {
        let mut s = open(addr);
        let f = frame(4, 1, OP_STARTUP, &string_map(&[("CQL_VERSION", "3.0.0")]));
        s.write_all(&f[..f.len() / 2]).unwrap();
    }
    assert_still_serving(&node, what).await;

    let what = "a truncated frame, then half-close";
    let f = frame(4, 1, OP_STARTUP, &string_map(&[("CQL_VERSION", "3.0.0")]));
    let reply = probe(addr, &f[..12], true, what);
    assert_error_or_close(&reply, None, what);
    assert_still_serving(&node, what).await;

    for (what, len) in [
        ("a header claiming a 2 GB body", i32::MAX),
        ("a negative body length", -1),
    ] {
        let mut header = frame(4, 1, OP_OPTIONS, &[]);
        header[5..9].copy_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&[0u8; 64]);
        // Far beyond the 256 MB frame limit: the node must refuse at once instead of
        // waiting for (or buffering) the body.
        let reply = probe(addr, &header, false, what);
        if node.is_external() && matches!(reply, Reply::Silent) {
            // Cassandra 4.0 keeps waiting for the body here; Shoal is held to more.
            eprintln!("{what}: reference server stayed silent (not enforced against it)");
        } else {
            assert_error_or_close_with(&reply, TOO_BIG_CODES, None, what);
        }
        // Once the client gives up sending, waiting is pointless for any server.
        let reply = probe(addr, &header, true, &format!("{what}, then half-close"));
        assert_error_or_close_with(&reply, TOO_BIG_CODES, None, what);
        assert_still_serving(&node, what).await;
    }

    let what = "unknown opcode 0x04 after STARTUP";
    {
        let mut s = open(addr);
        startup_v4(&mut s, what);
        s.write_all(&frame(4, 5, 0x04, &[])).unwrap();
        let reply = read_reply(&mut s, what);
        assert_error_or_close(&reply, None, what);
    }
    assert_still_serving(&node, what).await;

    let what = "a QUERY before STARTUP";
    {
        let mut query = Vec::new();
        let q = b"SELECT * FROM system.local";
        query.extend_from_slice(&(q.len() as i32).to_be_bytes());
        query.extend_from_slice(q);
        query.extend_from_slice(&[0, 1, 0]); // consistency ONE, no flags
        let reply = probe(addr, &frame(4, 2, 0x07, &query), false, what);
        assert_error_or_close(&reply, None, what);
    }
    assert_still_serving(&node, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_versions_get_a_protocol_error() {
    let node = Node::start_default();
    let addr = node.addr();
    for version in [6u8, 2, 1, 0x42] {
        let what = format!("OPTIONS with protocol version {version}");
        let mut f = frame(version, 0, OP_OPTIONS, &[]);
        if version <= 2 {
            // v1/v2 headers: version, flags, stream (1 byte), opcode, length.
            f = vec![version, 0, 0, OP_OPTIONS, 0, 0, 0, 0];
        }
        let reply = probe(addr, &f, false, &what);
        // Drivers only downgrade on this error; a bare close makes them give up.
        let (code, msg) = reply
            .error()
            .unwrap_or_else(|| panic!("{what}: expected an ERROR frame, got {reply:?}"));
        assert_eq!(code, PROTOCOL_ERROR, "{what}: {msg}");
        let downgrade_hint = msg.contains("Invalid or unsupported protocol version")
            // Cassandra's answer for a known beta version sent without the USE_BETA flag;
            // drivers treat it as a downgrade hint too.
            || (version == 6 && msg.contains("USE_BETA flag is unset"));
        assert!(downgrade_hint, "{what}: message {msg:?}");
        assert_still_serving(&node, &what).await;
    }
    // Every supported version still answers OPTIONS.
    for version in [3u8, 4, 5] {
        let mut s = open(addr);
        s.write_all(&frame(version, 9, OP_OPTIONS, &[])).unwrap();
        match read_reply(&mut s, "OPTIONS") {
            Reply::Frame {
                version: v,
                stream: 9,
                opcode: OP_SUPPORTED,
                body,
            } if v == 0x80 | version => {
                let text = String::from_utf8_lossy(&body);
                assert!(
                    text.contains("CQL_VERSION") && text.contains("COMPRESSION"),
                    "{text}"
                );
            }
            r => panic!("OPTIONS v{version}: {r:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cql_gets_cassandra_error_codes() {
    let node = Node::start_default();
    let session = common::connect(&node).await;
    let ks = common::create_keyspace(&session).await;
    common::exec(
        &session,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
    )
    .await;

    let err = session
        .query_unpaged("gibberish", ())
        .await
        .expect_err("gibberish");
    assert!(
        matches!(common::db_error(&err), Some((DbError::SyntaxError, _))),
        "gibberish: {err}"
    );
    let err = session
        .query_unpaged(format!("SELEC v FROM {ks}.t"), ())
        .await
        .expect_err("typo");
    assert!(
        matches!(common::db_error(&err), Some((DbError::SyntaxError, _))),
        "{err}"
    );
    let err = session
        .prepare("gibberish")
        .await
        .expect_err("prepare gibberish");
    assert!(
        matches!(
            common::prepare_db_error(&err),
            Some((DbError::SyntaxError, _))
        ),
        "{err}"
    );

    let invalid = |err: &scylla::errors::ExecutionError, needle: &str, what: &str| {
        match common::db_error(err) {
            Some((DbError::Invalid, msg)) => {
                assert!(
                    msg.contains(needle),
                    "{what}: message {msg:?} lacks {needle:?}"
                )
            }
            other => panic!("{what}: expected Invalid, got {other:?} ({err})"),
        }
    };
    let err = session
        .query_unpaged(format!("INSERT INTO {ks}.t (k, v) VALUES (1, 'text')"), ())
        .await
        .expect_err("text into int");
    invalid(&err, "", "text into an int column");
    let err = session
        .query_unpaged(format!("INSERT INTO {ks}.t (k, nope) VALUES (1, 2)"), ())
        .await
        .expect_err("unknown column");
    invalid(&err, "nope", "unknown column");
    let err = session
        .query_unpaged(format!("SELECT * FROM {ks}.missing_table"), ())
        .await
        .expect_err("missing table");
    // Cassandra 4.0 says "table X does not exist" here, 3.x and 5.0 "unconfigured table X".
    let msg = common::db_error(&err)
        .map(|(_, m)| m.to_string())
        .unwrap_or_default();
    let needle = if msg.contains("unconfigured") {
        "unconfigured table missing_table"
    } else {
        "table missing_table does not exist"
    };
    invalid(&err, needle, "unknown table");
    let err = session
        .query_unpaged("SELECT * FROM missing_keyspace_xyz.t", ())
        .await
        .expect_err("missing keyspace");
    invalid(
        &err,
        "missing_keyspace_xyz does not exist",
        "unknown keyspace",
    );
    let err = session
        .query_unpaged(format!("SELECT * FROM {ks}.t WHERE v = 1"), ())
        .await
        .expect_err("filtering on a regular column");
    invalid(&err, "ALLOW FILTERING", "restriction on a non-key column");

    let err = session
        .query_unpaged(
            format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            (),
        )
        .await
        .expect_err("existing keyspace");
    match common::db_error(&err) {
        Some((DbError::AlreadyExists { keyspace, table }, _)) => {
            assert_eq!((keyspace.as_str(), table.as_str()), (ks.as_str(), ""));
        }
        other => panic!("CREATE KEYSPACE twice: {other:?} ({err})"),
    }
    let err = session
        .query_unpaged(format!("CREATE TABLE {ks}.t (k int PRIMARY KEY)"), ())
        .await
        .expect_err("existing table");
    match common::db_error(&err) {
        Some((DbError::AlreadyExists { keyspace, table }, _)) => {
            assert_eq!((keyspace.as_str(), table.as_str()), (ks.as_str(), "t"));
        }
        other => panic!("CREATE TABLE twice: {other:?} ({err})"),
    }
    // IF NOT EXISTS turns both into no-ops.
    common::exec(
        &session,
        format!("CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    common::exec(
        &session,
        format!("CREATE TABLE IF NOT EXISTS {ks}.t (k int PRIMARY KEY)"),
    )
    .await;

    // The session is still healthy after all those errors.
    common::exec(&session, format!("INSERT INTO {ks}.t (k, v) VALUES (1, 1)")).await;
    common::cleanup(&node, &session, &ks).await;
}

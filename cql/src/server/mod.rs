//! The CQL TCP server. One task per connection reads and decodes its requests a burst (one
//! socket read's worth) at a time. A small burst runs on that task; a large one is split
//! into chunk tasks that idle workers steal. A request that finishes on its first poll (a
//! local read, a periodic-mode write) is answered at once; one that waits (replicas, a
//! batch-mode sync) is parked in its chunk's `FuturesUnordered`, so many stream ids stay in
//! flight. Responses are encoded into one buffer per chunk and pushed to the connection's
//! [`Outbox`], which the pushing task writes itself unless another is already writing:
//! a few `send`s per burst, not one per request.

mod outbox;

use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::{debug, info, warn};

use outbox::Outbox;

use crate::error::CqlError;
use crate::executor::trace::Trace;
use crate::executor::{CQL_VERSION, Executor, Outcome, Session};
use crate::protocol::codec::flags;
use crate::protocol::codec::{Compression, Decoded, Fatal, ProtocolCodec};
use crate::protocol::{Event, Request, Response, ResponseExtras, ResultBody};

/// Requests one connection may have in flight before the server stops reading from it:
/// backpressure instead of unbounded queues.
const MAX_IN_FLIGHT: usize = 2048;

/// Told about every finished QUERY, PREPARE, EXECUTE and BATCH, for metrics. The codes are
/// the protocol's own (opcode, consistency, error code), so no translation is needed.
pub trait RequestObserver: Send + Sync {
    fn request_done(
        &self,
        opcode: u8,
        consistency: Option<u16>,
        elapsed: std::time::Duration,
        error_code: Option<i32>,
    );
}

/// Counters the admin endpoints report.
#[derive(Default)]
pub struct ServerStats {
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    pub observer: Option<Arc<dyn RequestObserver>>,
}

impl std::fmt::Debug for ServerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStats")
            .field("connections", &self.connections)
            .field("requests", &self.requests)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

fn request_consistency(r: &Request) -> Option<u16> {
    match r {
        Request::Query { params, .. } | Request::Execute { params, .. } => {
            Some(params.consistency as u16)
        }
        Request::Batch(b) => Some(b.consistency as u16),
        _ => None,
    }
}

/// Accepts connections until `shutdown` turns true, then waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    executor: Arc<Executor>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<ServerStats>,
) {
    let local = listener.local_addr().ok();
    info!(address = ?local, "CQL native transport listening");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let executor = executor.clone();
                    let stats = stats.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        stats.connections.fetch_add(1, Ordering::Relaxed);
                        debug!(%peer, "client connected");
                        if let Err(e) = handle(socket, peer, executor, shutdown, &stats).await {
                            debug!(%peer, error = %e, "connection closed with error");
                        }
                        stats.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    info!("CQL native transport stopped accepting connections");
                    return;
                }
            }
        }
    }
}

/// Connection states, as Cassandra's `ServerConnection`.
const NEW: u8 = 0;
/// STARTUP answered with AUTHENTICATE: only AUTH_RESPONSE (and OPTIONS) until it succeeds.
const AUTHENTICATING: u8 = 1;
const READY: u8 = 2;

struct Conn {
    executor: Arc<Executor>,
    peer: SocketAddr,
    codec: Mutex<ProtocolCodec>,
    out: Outbox,
    session: Mutex<Session>,
    state: AtomicU8,
}

impl Conn {
    /// Encodes and queues one response.
    fn send(&self, version: u8, stream: i16, extras: &ResponseExtras, response: &Response) {
        let mut bytes = BytesMut::new();
        self.encode_into(&mut bytes, version, stream, extras, response);
        self.out.push(&mut bytes);
    }

    /// Appends one encoded response to `out`.
    fn encode_into(
        &self,
        out: &mut BytesMut,
        version: u8,
        stream: i16,
        extras: &ResponseExtras,
        response: &Response,
    ) {
        self.codec
            .lock()
            .expect("codec lock")
            .encode(version, stream, extras, response, out);
    }

    fn encode_reply(&self, out: &mut BytesMut, (version, stream, extras, response): Reply) {
        self.encode_into(out, version, stream, &extras, &response);
    }
}

async fn handle(
    socket: TcpStream,
    peer: SocketAddr,
    executor: Arc<Executor>,
    mut shutdown: watch::Receiver<bool>,
    stats: &ServerStats,
) -> std::io::Result<()> {
    let (mut reader, writer) = socket.into_split();
    let conn = Arc::new(Conn {
        executor,
        peer,
        codec: Mutex::new(ProtocolCodec::new()),
        out: Outbox::new(writer),
        session: Mutex::new(Session::default()),
        state: AtomicU8::new(NEW),
    });
    let write_task = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.out.run_writer().await })
    };
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Responses the connection task encoded itself, not yet pushed to the outbox.
    let mut out = BytesMut::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut registered = false;
    'outer: loop {
        let mut burst: Vec<PendingReply> = Vec::new();
        while burst.len() < MAX_BURST {
            let decoded = conn.codec.lock().expect("codec lock").decode(&mut buf);
            let (header, request) = match decoded {
                Ok(None) => break,
                Ok(Some(Decoded::Request { header, request })) => (header, request),
                Ok(Some(Decoded::Refused {
                    version,
                    stream,
                    error,
                })) => {
                    conn.encode_into(
                        &mut out,
                        version,
                        stream,
                        &ResponseExtras::default(),
                        &Response::Error(error),
                    );
                    continue;
                }
                Err(Fatal {
                    version,
                    stream,
                    error,
                }) => {
                    debug!(error = %error, "closing connection after a fatal protocol error");
                    dispatch(&conn, burst, &mut out, &in_flight).await;
                    conn.encode_into(
                        &mut out,
                        version,
                        stream,
                        &ResponseExtras::default(),
                        &Response::Error(error),
                    );
                    break 'outer;
                }
            };
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let version = header.version;
            let stream = header.stream;
            let state = conn.state.load(Ordering::Acquire);
            let reply = match request {
                Request::Options => supported(version),
                Request::Startup(options) => {
                    // STARTUP switches the codec's compression: everything encoded before it
                    // must reach the writer first, uncompressed.
                    conn.out.push(&mut out);
                    startup(&conn, version, stream, &options);
                    continue;
                }
                Request::AuthResponse(token) if state == AUTHENTICATING => {
                    authenticate(&conn, token.as_ref()).await
                }
                _ if state != READY => {
                    let expecting = if state == NEW {
                        "STARTUP or OPTIONS"
                    } else {
                        "SASL_RESPONSE"
                    };
                    Response::Error(CqlError::protocol(format!(
                        "Unexpected message {}, expecting {expecting}",
                        request_name(&request)
                    )))
                }
                Request::Register(events) => {
                    let wanted: HashSet<String> =
                        events.iter().map(|e| e.to_ascii_uppercase()).collect();
                    if let Some(bad) = wanted.iter().find(|e| {
                        !matches!(
                            e.as_str(),
                            "TOPOLOGY_CHANGE" | "STATUS_CHANGE" | "SCHEMA_CHANGE"
                        )
                    }) {
                        Response::Error(CqlError::protocol(format!(
                            "Invalid value '{bad}' for Type"
                        )))
                    } else {
                        if !registered {
                            registered = true;
                            spawn_events(conn.clone(), version, wanted);
                        }
                        Response::Ready
                    }
                }
                Request::AuthResponse(_) => Response::Error(CqlError::protocol(
                    "Unexpected message AUTH_RESPONSE, authentication is not enabled",
                )),
                request => {
                    let traced = header.flags & flags::TRACING != 0;
                    burst.push(Box::pin(serve_request(
                        conn.clone(),
                        version,
                        stream,
                        header.opcode,
                        traced,
                        stats.observer.clone(),
                        request,
                    )));
                    continue;
                }
            };
            conn.encode_into(
                &mut out,
                version,
                stream,
                &ResponseExtras::default(),
                &reply,
            );
        }
        let full = burst.len() == MAX_BURST;
        dispatch(&conn, burst, &mut out, &in_flight).await;
        conn.out.push(&mut out);
        conn.out.wait_for_room().await;
        if full {
            // More complete frames may be buffered already.
            continue;
        }
        tokio::select! {
            n = reader.read_buf(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    conn.out.push(&mut out);
    // Let in-flight requests answer before the writer stops.
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
    conn.out.close();
    let _ = write_task.await;
    // The last reference: dropping the write half sends FIN after the queued responses.
    drop(conn);
    Ok(())
}

/// Bursts up to this size run on the connection task; larger ones are split into tasks.
const INLINE_BURST: usize = 4;
/// Requests per task when a burst is split: a few tasks per burst, so idle workers take
/// part of the work while spawns, wake-ups and writes stay amortised over many requests.
const CHUNK: usize = 16;
/// Requests decoded before the connection task dispatches them and reads on.
const MAX_BURST: usize = 256;

/// Runs a burst of decoded requests. A small burst (an unloaded client) runs here, with no
/// task hop; a large one is split into chunk tasks the other workers can steal. Either way
/// a request that cannot answer on its first poll (replicas, a batch-mode sync) is parked
/// in its chunk's `FuturesUnordered`, so one slow request does not hold up the others.
async fn dispatch(
    conn: &Arc<Conn>,
    mut burst: Vec<PendingReply>,
    out: &mut BytesMut,
    in_flight: &Arc<Semaphore>,
) {
    if burst.len() <= INLINE_BURST {
        let mut parked = Vec::new();
        for mut fut in burst {
            match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                Poll::Ready(reply) => conn.encode_reply(out, reply),
                Poll::Pending => parked.push(fut),
            }
        }
        burst = parked;
    }
    while !burst.is_empty() {
        let chunk = burst.split_off(burst.len().saturating_sub(CHUNK));
        let Ok(permit) = in_flight
            .clone()
            .acquire_many_owned(chunk.len() as u32)
            .await
        else {
            return;
        };
        tokio::spawn(serve_chunk(conn.clone(), chunk, permit));
    }
}

/// Polls a chunk of requests to completion, handing their responses to the writer in as
/// few pieces as their completion order allows.
async fn serve_chunk(conn: Arc<Conn>, chunk: Vec<PendingReply>, _permit: OwnedSemaphorePermit) {
    let mut out = BytesMut::new();
    let mut parked = FuturesUnordered::new();
    for mut fut in chunk {
        match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            Poll::Ready(reply) => conn.encode_reply(&mut out, reply),
            Poll::Pending => parked.push(fut),
        }
    }
    conn.out.push(&mut out);
    while let Some(reply) = parked.next().await {
        conn.encode_reply(&mut out, reply);
        // Whatever else has finished goes out in the same write.
        poll_fn(|cx| {
            while let Poll::Ready(Some(reply)) = parked.poll_next_unpin(cx) {
                conn.encode_reply(&mut out, reply);
            }
            Poll::Ready(())
        })
        .await;
        conn.out.push(&mut out);
    }
}

/// A request's answer, ready to encode: protocol version, stream id, extras, response.
type Reply = (u8, i16, ResponseExtras, Response);
type PendingReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Runs one QUERY, PREPARE, EXECUTE or BATCH and reports it to the metrics observer.
async fn serve_request(
    conn: Arc<Conn>,
    version: u8,
    stream: i16,
    opcode: u8,
    traced: bool,
    observer: Option<Arc<dyn RequestObserver>>,
    request: Request,
) -> Reply {
    let started = std::time::Instant::now();
    let consistency = request_consistency(&request);
    let trace = traced.then(|| Arc::new(Trace::default()));
    let (response, warnings) = run_request(&conn, version, request, trace.clone()).await;
    if let Some(o) = &observer {
        let error = match &response {
            Response::Error(e) => Some(e.code()),
            _ => None,
        };
        o.request_done(opcode, consistency, started.elapsed(), error);
    }
    let extras = ResponseExtras {
        warnings: if version >= 4 { warnings } else { Vec::new() },
        tracing_id: trace.map(|t| *t.id.as_bytes()),
        ..Default::default()
    };
    (version, stream, extras, response)
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Startup(_) => "STARTUP",
        Request::Options => "OPTIONS",
        Request::Query { .. } => "QUERY",
        Request::Prepare { .. } => "PREPARE",
        Request::Execute { .. } => "EXECUTE",
        Request::Batch(_) => "BATCH",
        Request::Register(_) => "REGISTER",
        Request::AuthResponse(_) => "AUTH_RESPONSE",
    }
}

fn supported(version: u8) -> Response {
    let compression: Vec<String> = if version >= 5 {
        vec!["lz4".into()]
    } else {
        vec!["snappy".into(), "lz4".into()]
    };
    Response::Supported(vec![
        ("CQL_VERSION".into(), vec![CQL_VERSION.into()]),
        ("COMPRESSION".into(), compression),
        (
            "PROTOCOL_VERSIONS".into(),
            vec!["3/v3".into(), "4/v4".into(), "5/v5".into()],
        ),
    ])
}

fn startup(
    conn: &Arc<Conn>,
    version: u8,
    stream: i16,
    options: &std::collections::HashMap<String, String>,
) {
    let fail = |msg: String| Response::Error(CqlError::protocol(msg));
    let Some(cql_version) = options.get("CQL_VERSION") else {
        conn.send(
            version,
            stream,
            &ResponseExtras::default(),
            &fail("CQL_VERSION is mandatory".into()),
        );
        return;
    };
    let major = cql_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if !matches!(major, Some(m) if m >= 3) {
        conn.send(
            version,
            stream,
            &ResponseExtras::default(),
            &fail(format!("Invalid or unsupported CQL version: {cql_version}")),
        );
        return;
    }
    let compression = match options.get("COMPRESSION").map(|c| c.to_ascii_lowercase()) {
        None => None,
        Some(c) if c == "lz4" => Some(Compression::Lz4),
        Some(c) if c == "snappy" && version < 5 => Some(Compression::Snappy),
        Some(c) => {
            conn.send(
                version,
                stream,
                &ResponseExtras::default(),
                &fail(format!("Unknown compression algorithm: {c}")),
            );
            return;
        }
    };
    conn.session.lock().expect("session lock").protocol_version = version;
    let password = conn.executor.auth().config.password_authenticator;
    let reply = if password {
        Response::Authenticate("org.apache.cassandra.auth.PasswordAuthenticator".into())
    } else {
        Response::Ready
    };
    // READY (or AUTHENTICATE) goes out uncompressed and unframed; everything after it is
    // compressed (and framed on v5). Switching under the codec lock keeps that order exact.
    {
        let mut codec = conn.codec.lock().expect("codec lock");
        let mut buf = BytesMut::new();
        codec.encode(
            version,
            stream,
            &ResponseExtras::default(),
            &reply,
            &mut buf,
        );
        codec.set_compression(compression);
        if version >= 5 {
            codec.start_v5_framing();
        }
        conn.out.push(&mut buf);
    }
    conn.state.store(
        if password { AUTHENTICATING } else { READY },
        Ordering::Release,
    );
}

/// AUTH_RESPONSE with a SASL PLAIN token: AUTH_SUCCESS (null token, as Cassandra) or a
/// BadCredentials error, after which the client may try again.
async fn authenticate(conn: &Conn, token: Option<&Bytes>) -> Response {
    let result = match crate::auth::parse_plain(token) {
        Ok((user, password)) => {
            conn.executor
                .auth()
                .login(&conn.executor, &user, &password)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(role) => {
            conn.session.lock().expect("session lock").user = Some(role);
            conn.state.store(READY, Ordering::Release);
            Response::AuthSuccess(None)
        }
        Err(e) => {
            debug!(peer = %conn.peer, error = %e, "authentication failed");
            Response::Error(e)
        }
    }
}

fn spawn_events(conn: Arc<Conn>, version: u8, wanted: HashSet<String>) {
    let mut rx = conn.executor.subscribe();
    let weak = Arc::downgrade(&conn);
    drop(conn);
    tokio::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let kind = match &event {
                Event::SchemaChange(_) => "SCHEMA_CHANGE",
                Event::TopologyChange { .. } => "TOPOLOGY_CHANGE",
                Event::StatusChange { .. } => "STATUS_CHANGE",
            };
            if !wanted.contains(kind) {
                continue;
            }
            let Some(conn) = weak.upgrade() else { return };
            conn.send(
                version,
                -1,
                &ResponseExtras::default(),
                &Response::Event(event),
            );
        }
    });
}

async fn run_request(
    conn: &Conn,
    version: u8,
    request: Request,
    trace: Option<Arc<Trace>>,
) -> (Response, Vec<String>) {
    let mut session = conn.session.lock().expect("session lock").clone();
    session.protocol_version = version;
    session.trace = trace.clone();
    let before = session.keyspace.clone();
    let described = trace
        .as_ref()
        .map(|_| describe_request(&conn.executor, &request));
    let result: Result<Outcome, CqlError> = match request {
        Request::Query { query, params } => {
            conn.executor.query(&mut session, &query, &params).await
        }
        Request::Prepare { query, keyspace } => conn
            .executor
            .prepare(&session, &query, keyspace.as_deref())
            .map(|body| Outcome {
                body,
                warnings: Vec::new(),
            }),
        Request::Execute { id, params, .. } => {
            conn.executor.execute(&mut session, &id, &params).await
        }
        Request::Batch(batch) => conn.executor.batch(&mut session, &batch).await,
        _ => Err(CqlError::protocol("Unexpected request")),
    };
    if session.keyspace != before {
        conn.session.lock().expect("session lock").keyspace = session.keyspace.clone();
    }
    if let (Some(trace), Some((request, parameters))) = (&trace, described) {
        if let Err(e) = &result {
            trace.event(format!("Request failed: {e}"));
        }
        if let Err(e) = trace
            .finish(
                &conn.executor,
                conn.peer.ip(),
                "QUERY",
                request,
                &parameters,
            )
            .await
        {
            warn!(error = %e, "could not record the trace of a request");
        }
    }
    match result {
        Ok(Outcome { body, warnings }) => {
            if let ResultBody::SetKeyspace(_) = &body {
                debug!(keyspace = ?session.keyspace, "USE");
            }
            (Response::Result(body), warnings)
        }
        Err(e) => (Response::Error(e), Vec::new()),
    }
}

/// The `request` text and `parameters` map of a traced request's session row, as
/// Cassandra's `QueryMessage`/`ExecuteMessage`/`BatchMessage`/`PrepareMessage` record them.
fn describe_request(
    executor: &Executor,
    request: &Request,
) -> (&'static str, Vec<(String, String)>) {
    let mut params = Vec::new();
    let mut query_params = |p: &crate::protocol::QueryParameters| {
        params.push(("consistency_level".into(), p.consistency.name().to_string()));
        if let Some(n) = p.page_size {
            params.push(("page_size".into(), n.to_string()));
        }
        if let Some(c) = p.serial_consistency {
            params.push(("serial_consistency_level".into(), c.name().to_string()));
        }
    };
    let request_text = match request {
        Request::Query { query, params: p } => {
            query_params(p);
            params.push(("query".into(), query.clone()));
            "Execute CQL3 query"
        }
        Request::Execute { id, params: p, .. } => {
            query_params(p);
            if let Some(q) = executor.prepared_query(id) {
                params.push(("query".into(), q));
            }
            "Execute CQL3 prepared query"
        }
        Request::Batch(b) => {
            params.push(("consistency_level".into(), b.consistency.name().to_string()));
            "Execute batch of CQL3 queries"
        }
        Request::Prepare { query, .. } => {
            params.push(("query".into(), query.clone()));
            "Preparing CQL3 query"
        }
        _ => "",
    };
    (request_text, params)
}

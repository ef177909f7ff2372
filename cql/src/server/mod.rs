//! The CQL TCP server: one task reads and decodes a connection's requests, each request runs
//! in its own task (so many stream ids are in flight at once), and one task writes the
//! encoded responses back.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

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
    out: mpsc::Sender<Bytes>,
    session: Mutex<Session>,
    state: AtomicU8,
}

impl Conn {
    /// Encodes and queues one response.
    async fn send(&self, version: u8, stream: i16, extras: &ResponseExtras, response: &Response) {
        let bytes = self.encode(version, stream, extras, response);
        let _ = self.out.send(bytes).await;
    }

    fn encode(
        &self,
        version: u8,
        stream: i16,
        extras: &ResponseExtras,
        response: &Response,
    ) -> Bytes {
        let mut buf = BytesMut::new();
        self.codec
            .lock()
            .expect("codec lock")
            .encode(version, stream, extras, response, &mut buf);
        buf.freeze()
    }
}

async fn handle(
    socket: TcpStream,
    peer: SocketAddr,
    executor: Arc<Executor>,
    mut shutdown: watch::Receiver<bool>,
    stats: &ServerStats,
) -> std::io::Result<()> {
    let (mut reader, mut writer) = socket.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
    let write_task = tokio::spawn(async move {
        let mut batch = BytesMut::new();
        while let Some(first) = rx.recv().await {
            // Coalesce whatever is queued into one write (fewer syscalls under load); a lone
            // response is written as it is, without a copy.
            let Ok(second) = rx.try_recv() else {
                if writer.write_all(&first).await.is_err() {
                    break;
                }
                continue;
            };
            batch.clear();
            batch.extend_from_slice(&first);
            batch.extend_from_slice(&second);
            while batch.len() < 256 * 1024 {
                match rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if writer.write_all(&batch).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });

    let conn = Arc::new(Conn {
        executor,
        peer,
        codec: Mutex::new(ProtocolCodec::new()),
        out: tx,
        session: Mutex::new(Session::default()),
        state: AtomicU8::new(NEW),
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut registered = false;
    'outer: loop {
        loop {
            let decoded = conn.codec.lock().expect("codec lock").decode(&mut buf);
            match decoded {
                Ok(None) => break,
                Ok(Some(Decoded::Refused {
                    version,
                    stream,
                    error,
                })) => {
                    conn.send(
                        version,
                        stream,
                        &ResponseExtras::default(),
                        &Response::Error(error),
                    )
                    .await;
                }
                Err(Fatal {
                    version,
                    stream,
                    error,
                }) => {
                    debug!(error = %error, "closing connection after a fatal protocol error");
                    conn.send(
                        version,
                        stream,
                        &ResponseExtras::default(),
                        &Response::Error(error),
                    )
                    .await;
                    break 'outer;
                }
                Ok(Some(Decoded::Request { header, request })) => {
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                    let version = header.version;
                    let stream = header.stream;
                    match request {
                        Request::Options => {
                            let response = supported(version);
                            conn.send(version, stream, &ResponseExtras::default(), &response)
                                .await;
                        }
                        Request::Startup(options) => {
                            startup(&conn, version, stream, &options).await;
                        }
                        Request::AuthResponse(token)
                            if conn.state.load(Ordering::Acquire) == AUTHENTICATING =>
                        {
                            let response = authenticate(&conn, token.as_ref()).await;
                            conn.send(version, stream, &ResponseExtras::default(), &response)
                                .await;
                        }
                        _ if conn.state.load(Ordering::Acquire) != READY => {
                            let expecting = if conn.state.load(Ordering::Acquire) == NEW {
                                "STARTUP or OPTIONS"
                            } else {
                                "SASL_RESPONSE"
                            };
                            let error = CqlError::protocol(format!(
                                "Unexpected message {}, expecting {expecting}",
                                request_name(&request)
                            ));
                            conn.send(
                                version,
                                stream,
                                &ResponseExtras::default(),
                                &Response::Error(error),
                            )
                            .await;
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
                                let error =
                                    CqlError::protocol(format!("Invalid value '{bad}' for Type"));
                                conn.send(
                                    version,
                                    stream,
                                    &ResponseExtras::default(),
                                    &Response::Error(error),
                                )
                                .await;
                                continue;
                            }
                            if !registered {
                                registered = true;
                                spawn_events(conn.clone(), version, wanted);
                            }
                            conn.send(
                                version,
                                stream,
                                &ResponseExtras::default(),
                                &Response::Ready,
                            )
                            .await;
                        }
                        Request::AuthResponse(_) => {
                            let error = CqlError::protocol(
                                "Unexpected message AUTH_RESPONSE, authentication is not enabled",
                            );
                            conn.send(
                                version,
                                stream,
                                &ResponseExtras::default(),
                                &Response::Error(error),
                            )
                            .await;
                        }
                        request => {
                            let permit = in_flight
                                .clone()
                                .acquire_owned()
                                .await
                                .expect("semaphore open");
                            let conn = conn.clone();
                            let traced = header.flags & flags::TRACING != 0;
                            let observer = stats.observer.clone();
                            let opcode = header.opcode;
                            tokio::spawn(async move {
                                let started = std::time::Instant::now();
                                let consistency = request_consistency(&request);
                                let trace = traced.then(|| Arc::new(Trace::default()));
                                let (response, warnings) =
                                    run_request(&conn, version, request, trace.clone()).await;
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
                                conn.send(version, stream, &extras, &response).await;
                                drop(permit);
                            });
                        }
                    }
                }
            }
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
    // Let in-flight requests answer before the writer stops.
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
    drop(conn);
    let _ = write_task.await;
    Ok(())
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

async fn startup(
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
        )
        .await;
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
        )
        .await;
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
            )
            .await;
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
    let bytes = {
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
        buf.freeze()
    };
    conn.state.store(
        if password { AUTHENTICATING } else { READY },
        Ordering::Release,
    );
    let _ = conn.out.send(bytes).await;
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
            )
            .await;
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

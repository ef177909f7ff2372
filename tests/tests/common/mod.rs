//! Driver-side helpers shared by the integration tests (each test binary includes this
//! module and uses a different subset of it).
#![allow(dead_code)]

use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use scylla::serialize::row::SerializeRow;
use shoal_tests::Node;

/// Opens a scylla-driver session to the node. Fails the test rather than hanging if the
/// node never finishes the handshake or the metadata fetch.
pub async fn connect(node: &Node) -> Session {
    try_connect(node).await.unwrap_or_else(|e| {
        panic!(
            "driver could not connect to {}: {e}\n{}",
            node.addr(),
            node.stderr_tail()
        )
    })
}

pub async fn try_connect(node: &Node) -> Result<Session, String> {
    let builder = SessionBuilder::new()
        .known_node_addr(node.addr())
        .connection_timeout(Duration::from_secs(5));
    match tokio::time::timeout(Duration::from_secs(30), builder.build()).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("session build timed out after 30 s".into()),
    }
}

/// Creates a fresh SimpleStrategy RF=1 keyspace and returns its name.
pub async fn create_keyspace(session: &Session) -> String {
    let ks = shoal_tests::unique_keyspace();
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .expect("create keyspace");
    ks
}

/// Runs a statement without values and fails the test with the server's message on error.
pub async fn exec(session: &Session, cql: impl AsRef<str>) {
    let cql = cql.as_ref();
    if let Err(e) = session.query_unpaged(cql, ()).await {
        panic!("{cql}\n  failed: {e}");
    }
}

/// The server error (code and message) inside a driver error, if the server sent one.
pub fn db_error(err: &ExecutionError) -> Option<(&DbError, &str)> {
    match err {
        ExecutionError::LastAttemptError(a) => attempt_db_error(a),
        ExecutionError::PrepareError(p) => prepare_db_error(p),
        _ => None,
    }
}

/// Asserts that `err` is the server's Unavailable error with this body (consistency level,
/// replicas required, replicas alive), as the driver decoded it.
pub fn expect_unavailable(
    err: &ExecutionError,
    cl: scylla::frame::types::Consistency,
    required: i32,
    alive: i32,
) {
    match db_error(err) {
        Some((
            DbError::Unavailable {
                consistency,
                required: r,
                alive: a,
            },
            _,
        )) => assert_eq!(
            (*consistency, *r, *a),
            (cl, required, alive),
            "Unavailable body"
        ),
        other => panic!("expected Unavailable for {cl:?}, got {other:?} ({err})"),
    }
}

pub fn prepare_db_error(err: &PrepareError) -> Option<(&DbError, &str)> {
    match err {
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_db_error(first_attempt),
        _ => None,
    }
}

fn attempt_db_error(err: &RequestAttemptError) -> Option<(&DbError, &str)> {
    match err {
        RequestAttemptError::DbError(e, msg) => Some((e, msg.as_str())),
        _ => None,
    }
}

/// Drops the test's keyspace on an external (shared) server, which would otherwise fill up
/// with test keyspaces; a node of our own is thrown away with its data directory anyway.
pub async fn cleanup(node: &Node, session: &Session, ks: &str) {
    if node.is_external() {
        let _ = session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ())
            .await;
    }
}

/// Runs a query and returns its rows as `T`, failing the test with the server's message.
pub async fn rows<T>(session: &Session, cql: &str, values: impl SerializeRow) -> Vec<T>
where
    T: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    session
        .query_unpaged(cql, values)
        .await
        .unwrap_or_else(|e| panic!("{cql}\n  failed: {e}"))
        .into_rows_result()
        .unwrap_or_else(|e| panic!("{cql}: not rows: {e}"))
        .rows::<T>()
        .unwrap_or_else(|e| panic!("{cql}: wrong row type: {e}"))
        .map(|r| r.expect("deserialize row"))
        .collect()
}

/// A session whose requests only go to `nodes` (they are the coordinators), token-aware
/// among them. Knows the whole cluster's metadata through them.
pub async fn pinned_to(nodes: &[&Node]) -> Session {
    let addrs: Vec<std::net::SocketAddr> = nodes.iter().map(|n| n.addr()).collect();
    let filter = scylla::policies::host_filter::AllowListHostFilter::new(addrs.iter().copied())
        .expect("allow list");
    let mut b = SessionBuilder::new()
        .host_filter(std::sync::Arc::new(filter))
        .connection_timeout(Duration::from_secs(5));
    for a in &addrs {
        b = b.known_node_addr(*a);
    }
    b.build().await.unwrap_or_else(|e| {
        panic!(
            "connect to {addrs:?}: {e}\n{}",
            nodes.first().map(|n| n.stderr_tail()).unwrap_or_default()
        )
    })
}

/// Prepares `cql` with consistency `cl`, failing the test with the server's message.
pub async fn prepare_cl(
    session: &Session,
    cql: &str,
    cl: scylla::frame::types::Consistency,
    idempotent: bool,
) -> scylla::statement::prepared::PreparedStatement {
    let mut p = session
        .prepare(cql)
        .await
        .unwrap_or_else(|e| panic!("prepare {cql}: {e}"));
    p.set_consistency(cl);
    p.set_is_idempotent(idempotent);
    p
}

/// A node's count of internode requests of `verb` received (`/metrics`), 0 if none.
pub fn internode_received(node: &Node, verb: &str) -> u64 {
    shoal_tests::metric_sum(
        node.ip(),
        &format!("shoal_internode_messages_received_total{{verb=\"{verb}\"}}"),
    )
    .unwrap_or_else(|| panic!("/metrics of {} does not answer", node.ip())) as u64
}

/// A node's count of CQL requests of `op` (QUERY, EXECUTE, ...) it coordinated, all
/// consistency levels.
pub fn cql_requests(node: &Node, op: &str) -> u64 {
    shoal_tests::metric_sum(
        node.ip(),
        &format!("shoal_client_requests_total{{op=\"{op}\","),
    )
    .unwrap_or_else(|| panic!("/metrics of {} does not answer", node.ip())) as u64
}

/// Hints a node holds for other nodes (`shoal_hints_pending`).
pub fn hints_pending(node: &Node) -> Option<u64> {
    shoal_tests::metric_sum(node.ip(), "shoal_hints_pending").map(|v| v as u64)
}

/// A session whose every request (and control connection) goes to `node` only: that node
/// coordinates everything, and what a client of that node alone sees.
pub async fn pinned(node: &Node) -> Session {
    pinned_to(&[node]).await
}

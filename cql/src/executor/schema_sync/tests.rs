use std::net::{IpAddr, Ipv4Addr};

use shoal_engine::{Engine, EngineConfig};

use super::*;
use crate::executor::{NodeInfo, Session};
use crate::protocol::{QueryParameters, ResultBody};
use crate::schema::persist::SchemaStore;

struct Node {
    ex: Executor,
    _dir: tempfile::TempDir,
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = SchemaStore::new(dir.path().join("system"));
    let schema = Executor::load_schema(&store).unwrap();
    let engine = Engine::open(
        EngineConfig {
            data_dir: dir.path().join("data"),
            commitlog_dir: dir.path().join("commitlog"),
            ..Default::default()
        },
        Executor::engine_tables(&schema),
    )
    .unwrap();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let info = NodeInfo {
        cluster_name: "test".into(),
        host_id: Uuid::new_v4(),
        tokens: vec![0],
        listen_address: ip,
        broadcast_address: ip,
        rpc_address: ip,
        native_port: 9042,
        storage_port: 7000,
        dc: "datacenter1".into(),
        rack: "rack1".into(),
        snitch: "org.apache.cassandra.locator.SimpleSnitch".into(),
        gossip_generation: 1,
    };
    Node {
        ex: Executor::new(Arc::new(engine), info, store, schema),
        _dir: dir,
    }
}

async fn q(ex: &Executor, cql: &str) -> ResultBody {
    let mut session = Session::default();
    let params = QueryParameters {
        consistency: crate::error::Consistency::One,
        values: Default::default(),
        skip_metadata: false,
        page_size: None,
        paging_state: None,
        serial_consistency: None,
        default_timestamp: None,
        keyspace: None,
        now_in_seconds: None,
    };
    ex.query(&mut session, cql, &params)
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .body
}

fn changes(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Event::SchemaChange(c)) = rx.try_recv() {
        out.push(format!(
            "{} {} {} {}",
            c.change, c.target, c.keyspace, c.name
        ));
    }
    out
}

#[tokio::test]
async fn a_merged_table_is_usable_and_announced() {
    let a = node();
    let b = node();
    q(&a.ex, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").await;
    q(&a.ex, "CREATE TYPE ks.addr (street text)").await;
    q(
        &a.ex,
        "CREATE TABLE ks.t (k int PRIMARY KEY, v text, a frozen<addr>)",
    )
    .await;
    q(&a.ex, "CREATE INDEX ON ks.t (v)").await;
    let mut events = b.ex.subscribe();
    assert!(b.ex.merge_remote_schema(&a.ex.user_schema_bytes()).unwrap());
    assert_eq!(a.ex.schema().version, b.ex.schema().version);
    assert_eq!(
        a.ex.schema().table("ks", "t").unwrap().id,
        b.ex.schema().table("ks", "t").unwrap().id
    );
    assert_eq!(
        changes(&mut events),
        [
            "CREATED KEYSPACE ks ",
            "CREATED TYPE ks addr",
            "CREATED TABLE ks t"
        ]
    );
    // Idempotent: the same schema again changes nothing.
    assert!(!b.ex.merge_remote_schema(&a.ex.user_schema_bytes()).unwrap());
    q(&b.ex, "INSERT INTO ks.t (k, v) VALUES (1, 'x')").await;
    let ResultBody::Rows(rows) = q(&b.ex, "SELECT k FROM ks.t WHERE v = 'x'").await else {
        panic!("rows expected")
    };
    assert_eq!(
        rows.rows.len(),
        1,
        "the index table exists and is maintained"
    );

    q(&a.ex, "ALTER TABLE ks.t ADD w int").await;
    q(&a.ex, "DROP TYPE IF EXISTS ks.nope").await;
    b.ex.merge_remote_schema(&a.ex.user_schema_bytes()).unwrap();
    assert_eq!(changes(&mut events), ["UPDATED TABLE ks t"]);
    q(&a.ex, "DROP KEYSPACE ks").await;
    b.ex.merge_remote_schema(&a.ex.user_schema_bytes()).unwrap();
    assert_eq!(changes(&mut events), ["DROPPED KEYSPACE ks "]);
    assert!(b.ex.schema().keyspace("ks").is_none());
    assert_eq!(a.ex.schema().version, b.ex.schema().version);
}

#[tokio::test]
async fn concurrent_ddl_on_two_nodes_converges() {
    let a = node();
    let b = node();
    q(&a.ex, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").await;
    b.ex.merge_remote_schema(&a.ex.user_schema_bytes()).unwrap();
    // Different tables, and the same table name with different definitions (and ids).
    q(&a.ex, "CREATE TABLE ks.ta (k int PRIMARY KEY)").await;
    q(&b.ex, "CREATE TABLE ks.tb (k int PRIMARY KEY)").await;
    q(&a.ex, "CREATE TABLE ks.same (k int PRIMARY KEY, a int)").await;
    q(&b.ex, "CREATE TABLE ks.same (k int PRIMARY KEY, b int)").await;
    let (from_a, from_b) = (a.ex.user_schema_bytes(), b.ex.user_schema_bytes());
    a.ex.merge_remote_schema(&from_b).unwrap();
    b.ex.merge_remote_schema(&from_a).unwrap();
    let (sa, sb) = (a.ex.schema(), b.ex.schema());
    assert_eq!(sa.version, sb.version);
    assert_eq!(sa.state, sb.state);
    for t in ["ta", "tb", "same"] {
        assert_eq!(sa.table("ks", t).unwrap().id, sb.table("ks", t).unwrap().id);
        // The engine has each table the schema names on both nodes.
        q(&a.ex, &format!("INSERT INTO ks.{t} (k) VALUES (1)")).await;
        q(&b.ex, &format!("INSERT INTO ks.{t} (k) VALUES (1)")).await;
    }
}

#[tokio::test]
async fn listeners_hear_every_version() {
    let a = node();
    let b = node();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    b.ex.on_schema_change(Box::new(move |v| s.lock().unwrap().push(v)));
    q(&a.ex, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").await;
    b.ex.merge_remote_schema(&a.ex.user_schema_bytes()).unwrap();
    q(&b.ex, "CREATE TABLE ks.t (k int PRIMARY KEY)").await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1], b.ex.schema().version);
}

#[test]
fn garbage_from_a_peer_is_refused() {
    let a = node();
    assert!(a.ex.merge_remote_schema(b"not a schema").is_err());
}

//! Schema propagation with real node processes: DDL through one node is usable at once
//! through the others, drivers see schema agreement, concurrent DDL on two nodes converges,
//! and a node that was down during a DDL catches up after its restart.

mod common;

use std::time::{Duration, Instant};

use scylla::client::session::Session;
use shoal_tests::{Cluster, unique_keyspace};
use uuid::Uuid;

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];

async fn version(session: &Session) -> Uuid {
    let rows: Vec<(Uuid,)> =
        common::rows(session, "SELECT schema_version FROM system.local", ()).await;
    rows[0].0
}

async fn tables(session: &Session, ks: &str) -> Vec<String> {
    let rows: Vec<(String,)> = common::rows(
        session,
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
        (ks,),
    )
    .await;
    let mut names: Vec<String> = rows.into_iter().map(|r| r.0).collect();
    names.sort();
    names
}

/// Waits until every session reports the same schema version; returns it.
async fn one_version(sessions: &[Session], timeout: Duration) -> Uuid {
    let deadline = Instant::now() + timeout;
    loop {
        let mut vs = Vec::new();
        for s in sessions {
            vs.push(version(s).await);
        }
        if vs.iter().all(|v| *v == vs[0]) {
            return vs[0];
        }
        assert!(Instant::now() < deadline, "no schema agreement: {vs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_through_one_node_is_usable_at_once_through_the_others() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let sessions = vec![
        common::pinned(&cluster.nodes[0]).await,
        common::pinned(&cluster.nodes[1]).await,
        common::pinned(&cluster.nodes[2]).await,
    ];
    let ks = unique_keyspace();
    let started = Instant::now();
    common::exec(
        &sessions[0],
        format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    common::exec(
        &sessions[0],
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
    )
    .await;
    eprintln!(
        "CREATE KEYSPACE + CREATE TABLE on node 1: {:?}",
        started.elapsed()
    );
    // No waiting: each other node has the table the moment node 1 answered.
    for (i, s) in sessions.iter().enumerate().skip(1) {
        common::exec(
            s,
            format!("INSERT INTO {ks}.t (k, v) VALUES ({i}, 'via {i}')"),
        )
        .await;
        let rows: Vec<(String,)> =
            common::rows(s, &format!("SELECT v FROM {ks}.t WHERE k = {i}"), ()).await;
        assert_eq!(rows, [(format!("via {i}"),)]);
    }
    // A driver that knows the whole cluster sees agreement (system.local vs system.peers).
    let all = common::connect(&cluster.nodes[1]).await;
    let t = Instant::now();
    let agreed = all
        .await_schema_agreement()
        .await
        .expect("schema agreement");
    eprintln!("await_schema_agreement: {:?}", t.elapsed());
    assert_eq!(agreed, one_version(&sessions, Duration::from_secs(1)).await);

    // ALTER and DROP travel the same way.
    common::exec(&sessions[2], format!("ALTER TABLE {ks}.t ADD w int")).await;
    common::exec(
        &sessions[0],
        format!("INSERT INTO {ks}.t (k, w) VALUES (9, 9)"),
    )
    .await;
    common::exec(&sessions[1], format!("DROP TABLE {ks}.t")).await;
    for s in &sessions {
        assert!(tables(s, &ks).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_table_on_two_nodes_converges() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let sessions = vec![
        common::pinned(&cluster.nodes[0]).await,
        common::pinned(&cluster.nodes[1]).await,
        common::pinned(&cluster.nodes[2]).await,
    ];
    let ks = unique_keyspace();
    common::exec(
        &sessions[0],
        format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    for round in 0..5 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        let (ra, rb) = tokio::join!(
            sessions[0].query_unpaged(format!("CREATE TABLE {ks}.{a} (k int PRIMARY KEY)"), ()),
            sessions[2].query_unpaged(format!("CREATE TABLE {ks}.{b} (k int PRIMARY KEY)"), ()),
        );
        ra.expect("create on node 1");
        rb.expect("create on node 3");
    }
    let t = Instant::now();
    one_version(&sessions, Duration::from_secs(20)).await;
    eprintln!(
        "one schema version {:?} after the last concurrent DDL",
        t.elapsed()
    );
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..5)
            .flat_map(|r| [format!("a{r}"), format!("b{r}")])
            .collect();
        v.sort();
        v
    };
    for (i, s) in sessions.iter().enumerate() {
        assert_eq!(tables(s, &ks).await, want, "tables on node {}", i + 1);
        for t in &want {
            common::exec(s, format!("INSERT INTO {ks}.{t} (k) VALUES ({i})")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_ddl_catches_up_after_restart() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let ks = unique_keyspace();
    {
        let s1 = common::pinned(&cluster.nodes[0]).await;
        common::exec(
            &s1,
            format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
        )
        .await;
    }
    cluster.nodes[2].terminate();
    let s1 = common::pinned(&cluster.nodes[0]).await;
    let s2 = common::pinned(&cluster.nodes[1]).await;
    let t = Instant::now();
    common::exec(&s1, format!("CREATE TABLE {ks}.t (k int PRIMARY KEY)")).await;
    eprintln!("CREATE TABLE with a peer down: {:?}", t.elapsed());
    common::exec(&s2, format!("CREATE TABLE {ks}.u (k int PRIMARY KEY)")).await;
    let node3 = &mut cluster.nodes[2];
    let ready = node3.restart();
    eprintln!("node 3 restarted in {ready:?}");
    let s3 = common::pinned(&cluster.nodes[2]).await;
    let t = Instant::now();
    let sessions = [s1, s2, s3];
    one_version(&sessions, Duration::from_secs(30)).await;
    eprintln!("node 3 caught up {:?} after CQL was ready", t.elapsed());
    assert_eq!(tables(&sessions[2], &ks).await, ["t", "u"]);
    common::exec(&sessions[2], format!("INSERT INTO {ks}.t (k) VALUES (1)")).await;
    // A fresh driver on node 3 agrees too.
    let all = common::connect(&cluster.nodes[2]).await;
    all.await_schema_agreement()
        .await
        .expect("schema agreement");
}

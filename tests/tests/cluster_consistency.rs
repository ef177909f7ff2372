//! The coordinator with real node processes on 127.X.Y.1..3 (same ports): consistency
//! levels, Unavailable errors as drivers read them, hinted handoff and read repair.

mod common;

use std::time::{Duration, Instant};

use common::expect_unavailable;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;
use scylla::statement::prepared::PreparedStatement;
use shoal_tests::{Cluster, Node, http_get, wait_until};

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];

/// A token-aware session that knows every node from one contact point.
async fn session(node: &Node) -> Session {
    SessionBuilder::new()
        .known_node_addr(node.addr())
        .connection_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", node.addr(), node.stderr_tail()))
}

async fn prepare(s: &Session, cql: &str, cl: Consistency) -> PreparedStatement {
    let mut p = s
        .prepare(cql)
        .await
        .unwrap_or_else(|e| panic!("prepare {cql}: {e}"));
    p.set_consistency(cl);
    p.set_is_idempotent(true);
    p
}

/// Creates an RF=3 keyspace with one table through `s` and waits until every node has it.
async fn rf3_table(s: &Session) -> String {
    let ks = shoal_tests::unique_keyspace();
    common::exec(
        s,
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"
        ),
    )
    .await;
    common::exec(
        s,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)"),
    )
    .await;
    s.await_schema_agreement().await.expect("schema agreement");
    ks
}

fn hints_pending(node: &Node) -> Option<i64> {
    let (code, body) = http_get(node.ip(), shoal_tests::ADMIN_PORT, "/metrics").ok()?;
    if code != 200 {
        return None;
    }
    body.lines()
        .find(|l| l.starts_with("shoal_hints_pending "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|v| v as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_writes_survive_a_killed_node_and_hints_replay() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let s = session(&cluster.nodes[0]).await;
    let ks = rf3_table(&s).await;
    let insert = prepare(
        &s,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::Quorum,
    )
    .await;

    let mut acked = Vec::new();
    let started = Instant::now();
    for k in 0..600i32 {
        if k == 150 {
            cluster.nodes[2].kill9();
        }
        if k == 400 {
            let n = &mut cluster.nodes[2];
            tokio::task::block_in_place(|| {
                n.restart();
            });
        }
        match s.execute_unpaged(&insert, (k, format!("v{k}"))).await {
            Ok(_) => acked.push(k),
            Err(e) => panic!(
                "QUORUM write {k} failed with one of three replicas down: {e}\n{}",
                cluster.nodes[0].stderr_tail()
            ),
        }
    }
    shoal_tests::record(&format!(
        "cluster: 600 QUORUM writes across a kill -9 and restart of one of 3 nodes in {:?}, all acknowledged",
        started.elapsed()
    ));

    // The restarted node gets what it missed from the others' hints.
    wait_until("hints to replay", Duration::from_secs(60), || {
        let pending: i64 = cluster
            .nodes
            .iter()
            .map(|n| hints_pending(n).unwrap_or(1))
            .sum();
        (pending == 0).then_some(())
    });

    // ALL sees every acknowledged write, and the restarted node alone (CL ONE with itself as
    // coordinator reads its own replica first) has them too.
    let s3 = common::pinned(&cluster.nodes[2]).await;
    for (sess, cl, who) in [
        (&s, Consistency::All, "ALL"),
        (&s3, Consistency::One, "ONE on the restarted node"),
    ] {
        let select = prepare(sess, &format!("SELECT v FROM {ks}.t WHERE k = ?"), cl).await;
        let mut missing = Vec::new();
        for &k in &acked {
            let rows = sess
                .execute_unpaged(&select, (k,))
                .await
                .unwrap_or_else(|e| panic!("read {k} at {who}: {e}"))
                .into_rows_result()
                .expect("rows");
            let got: Vec<(String,)> = rows
                .rows::<(String,)>()
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            if got != vec![(format!("v{k}"),)] {
                missing.push(k);
            }
        }
        assert!(
            missing.is_empty(),
            "read at {who} misses acknowledged writes {missing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_when_too_few_replicas_are_alive() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let s = common::pinned(&cluster.nodes[0]).await;
    let ks = rf3_table(&s).await;
    // SIGTERM announces the shutdown by gossip: the others know at once that it is down.
    cluster.nodes[2].terminate();
    let all = prepare(
        &s,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::All,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = loop {
        match s.execute_unpaged(&all, (1, "x")).await {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => panic!("ALL write succeeded with a node down for 20 s"),
        }
    };
    expect_unavailable(&err, Consistency::All, 3, 2);
    // QUORUM still works; reads too.
    let quorum = prepare(
        &s,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::Quorum,
    )
    .await;
    s.execute_unpaged(&quorum, (2, "y"))
        .await
        .expect("QUORUM write");
    // Two down: QUORUM is unavailable too.
    cluster.nodes[1].terminate();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match s.execute_unpaged(&quorum, (3, "z")).await {
            Err(e) => {
                expect_unavailable(&e, Consistency::Quorum, 2, 1);
                break;
            }
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => panic!("QUORUM write succeeded with two of three nodes down"),
        }
    }
    let one = prepare(
        &s,
        &format!("SELECT v FROM {ks}.t WHERE k = ?"),
        Consistency::One,
    )
    .await;
    let rows = s.execute_unpaged(&one, (2,)).await.expect("ONE read");
    let rows = rows.into_rows_result().expect("rows");
    assert_eq!(rows.rows_num(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_at_all_repairs_a_stale_replica() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let mut cluster = tokio::task::spawn_blocking(|| {
        Cluster::start_with_yaml(3, FAST_DRAIN, "hinted_handoff_enabled: false\n")
    })
    .await
    .unwrap();
    let s1 = common::pinned(&cluster.nodes[0]).await;
    let ks = rf3_table(&s1).await;
    cluster.nodes[2].terminate();
    wait_until("node 3 seen down", Duration::from_secs(20), || {
        shoal_tests::ring(cluster.nodes[0].ip())
            .and_then(|r| r.iter().any(|m| m.status == "Down").then_some(()))
    });
    let one = prepare(
        &s1,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::One,
    )
    .await;
    for k in 0..20 {
        s1.execute_unpaged(&one, (k, format!("v{k}")))
            .await
            .expect("ONE write");
    }
    {
        let n = &mut cluster.nodes[2];
        tokio::task::block_in_place(|| {
            n.restart();
        });
    }
    cluster.wait_converged(Duration::from_secs(30));
    let s3 = common::pinned(&cluster.nodes[2]).await;
    let local_one = prepare(
        &s3,
        &format!("SELECT v FROM {ks}.t WHERE k = ?"),
        Consistency::One,
    )
    .await;
    // Without hints the restarted replica really is stale.
    let r = s3.execute_unpaged(&local_one, (0,)).await.expect("read");
    assert_eq!(
        r.into_rows_result().unwrap().rows_num(),
        0,
        "node 3 has a write it never received: hints were disabled"
    );
    // A read at ALL through node 1 sees the mismatch and repairs node 3 before answering.
    let all = prepare(
        &s1,
        &format!("SELECT v FROM {ks}.t WHERE k = ?"),
        Consistency::All,
    )
    .await;
    for k in 0..20 {
        let r = s1.execute_unpaged(&all, (k,)).await.expect("ALL read");
        assert_eq!(
            r.into_rows_result().unwrap().rows_num(),
            1,
            "key {k} at ALL"
        );
    }
    for k in 0..20 {
        let r = s3.execute_unpaged(&local_one, (k,)).await.expect("read");
        let rows = r.into_rows_result().unwrap();
        let got: Vec<(String,)> = rows
            .rows::<(String,)>()
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            got,
            vec![(format!("v{k}"),)],
            "node 3 was not repaired for key {k}"
        );
    }
}

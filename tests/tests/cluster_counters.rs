//! Counters across replicas with real node processes: an RF=3 counter table on three
//! nodes, increments at QUORUM coordinated by each node in turn, reads at ALL (and at ONE
//! on each replica) return the exact sums, also after a clean restart and after a kill -9
//! and restart of a replica (commit-log replay must count every delta once), and after
//! increments made while a replica was down (it gets them from hints).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{pinned_to, prepare_cl};
use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Counter;
use shoal_tests::{Cluster, Node};

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];
const KEYS: i64 = 4;

/// `rounds` increments, each through the next node's session in turn; adds them to `sums`.
async fn increment(
    sessions: &[Session],
    updates: &[PreparedStatement],
    rounds: i64,
    sums: &mut BTreeMap<i64, i64>,
) {
    for i in 0..rounds {
        let node = (i as usize) % sessions.len();
        let key = i % KEYS;
        let delta = i % 7 - 2; // negative deltas too
        sessions[node]
            .execute_unpaged(&updates[node], (Counter(delta), key))
            .await
            .unwrap_or_else(|e| panic!("increment {i} through node {node}: {e}"));
        *sums.entry(key).or_default() += delta;
    }
}

async fn read_all(s: &Session, select: &PreparedStatement) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for key in 0..KEYS {
        let r = s
            .execute_unpaged(select, (key,))
            .await
            .unwrap_or_else(|e| panic!("read counter {key}: {e}"));
        let rows: Vec<(Counter,)> = r
            .into_rows_result()
            .unwrap()
            .rows::<(Counter,)>()
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        if let Some((n,)) = rows.first() {
            out.insert(key, n.0);
        }
    }
    out
}

/// Every node, as coordinator at ALL and as the only replica read at ONE, has `sums`.
async fn check(
    what: &str,
    sessions: &[Session],
    at_all: &[PreparedStatement],
    at_one: &[PreparedStatement],
    sums: &BTreeMap<i64, i64>,
) {
    for (i, s) in sessions.iter().enumerate() {
        assert_eq!(
            &read_all(s, &at_all[i]).await,
            sums,
            "{what}: counters read at ALL through node {i}"
        );
    }
    // The last replica to apply a QUORUM increment may lag the answer a little.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, s) in sessions.iter().enumerate() {
        loop {
            let got = read_all(s, &at_one[i]).await;
            if &got == sums {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: replica {i} alone (ONE) has {got:?}, want {sums:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_increments_through_every_node_sum_exactly_across_restarts() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let started = Instant::now();
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let admin = pinned_to(&[&cluster.nodes[0]]).await;
    let ks = shoal_tests::unique_keyspace();
    common::exec(
        &admin,
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"
        ),
    )
    .await;
    common::exec(
        &admin,
        format!("CREATE TABLE {ks}.c (k bigint PRIMARY KEY, n counter)"),
    )
    .await;
    admin
        .await_schema_agreement()
        .await
        .expect("schema agreement");

    let sessions = one_session_each(cluster.nodes.iter()).await;
    let statements = async |sessions: &[Session]| {
        let (mut up, mut all, mut one) = (Vec::new(), Vec::new(), Vec::new());
        for s in sessions {
            // Counter updates are not idempotent: never retried by the driver.
            up.push(
                prepare_cl(
                    s,
                    &format!("UPDATE {ks}.c SET n = n + ? WHERE k = ?"),
                    Consistency::Quorum,
                    false,
                )
                .await,
            );
            let select = format!("SELECT n FROM {ks}.c WHERE k = ?");
            all.push(prepare_cl(s, &select, Consistency::All, true).await);
            one.push(prepare_cl(s, &select, Consistency::One, true).await);
        }
        (up, all, one)
    };
    let (updates, at_all, at_one) = statements(&sessions).await;

    let mut sums = BTreeMap::new();
    increment(&sessions, &updates, 120, &mut sums).await;
    check("all up", &sessions, &at_all, &at_one, &sums).await;

    // A clean restart (memtables flushed at drain) keeps every replica's sums.
    drop(sessions);
    let restart_clean = {
        let n = &mut cluster.nodes[1];
        tokio::task::block_in_place(|| {
            n.terminate();
            n.restart()
        })
    };
    tokio::task::block_in_place(|| cluster.wait_converged(Duration::from_secs(60)));
    let sessions = one_session_each(cluster.nodes.iter()).await;
    let (updates, at_all, at_one) = statements(&sessions).await;
    check("after a clean restart", &sessions, &at_all, &at_one, &sums).await;
    increment(&sessions, &updates, 60, &mut sums).await;
    check(
        "increments after a clean restart",
        &sessions,
        &at_all,
        &at_one,
        &sums,
    )
    .await;

    // kill -9: the replica replays its commit log and counts each delta exactly once.
    drop(sessions);
    let restart_killed = {
        let n = &mut cluster.nodes[2];
        tokio::task::block_in_place(|| {
            n.kill9();
            n.restart()
        })
    };
    tokio::task::block_in_place(|| cluster.wait_converged(Duration::from_secs(60)));
    let sessions = one_session_each(cluster.nodes.iter()).await;
    let (updates, at_all, at_one) = statements(&sessions).await;
    check(
        "after kill -9 and restart",
        &sessions,
        &at_all,
        &at_one,
        &sums,
    )
    .await;
    increment(&sessions, &updates, 60, &mut sums).await;
    check(
        "increments after kill -9 and restart",
        &sessions,
        &at_all,
        &at_one,
        &sums,
    )
    .await;
    // A replica down during increments gets the deltas it missed from hints.
    drop(sessions);
    tokio::task::block_in_place(|| {
        cluster.nodes[1].terminate();
    });
    let sessions = one_session_each([&cluster.nodes[0], &cluster.nodes[2]]).await;
    let (updates, _, _) = statements(&sessions).await;
    // The others must know it is down (the shutdown announcement) before they send.
    shoal_tests::wait_until("node 2 seen down", Duration::from_secs(20), || {
        shoal_tests::ring(cluster.nodes[0].ip())
            .and_then(|r| r.iter().any(|m| m.status == "Down").then_some(()))
    });
    increment(&sessions, &updates, 40, &mut sums).await;
    drop(sessions);
    tokio::task::block_in_place(|| {
        cluster.nodes[1].restart();
        cluster.wait_converged(Duration::from_secs(60));
        shoal_tests::wait_until("hints to replay", Duration::from_secs(60), || {
            let pending: f64 = cluster
                .nodes
                .iter()
                .map(|n| shoal_tests::metric_sum(n.ip(), "shoal_hints_pending").unwrap_or(1.0))
                .sum();
            (pending == 0.0).then_some(())
        });
    });
    let sessions = one_session_each(cluster.nodes.iter()).await;
    let (_, at_all, at_one) = statements(&sessions).await;
    check(
        "after increments with one replica down (hinted)",
        &sessions,
        &at_all,
        &at_one,
        &sums,
    )
    .await;
    shoal_tests::record(&format!(
        "cluster_counters: 240 QUORUM increments through 3 nodes (RF=3), exact sums {sums:?} at ALL and on every replica, across a clean restart ({restart_clean:?} to CQL) and a kill -9 ({restart_killed:?}); {:?}",
        started.elapsed()
    ));
}

/// One session per node, each pinned to its node (that node coordinates its requests).
async fn one_session_each(nodes: impl IntoIterator<Item = &Node>) -> Vec<Session> {
    let mut sessions = Vec::new();
    for n in nodes {
        sessions.push(pinned_to(&[n]).await);
    }
    sessions
}

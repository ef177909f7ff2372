//! Two datacenters with real node processes: dc1 has three nodes, dc2 two, each node
//! told its datacenter and rack the way the official image is (`CASSANDRA_DC`,
//! `CASSANDRA_RACK`, GossipingPropertyFileSnitch). NetworkTopologyStrategy keyspaces,
//! `replication_factor` expanding to every datacenter, LOCAL_* levels staying in the
//! coordinator's datacenter (proved with the replicas' internode request counters) and
//! EACH_QUORUM failing with Unavailable when a datacenter is gone.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{db_error, expect_unavailable, internode_received, pinned_to, prepare_cl};
use scylla::client::session::Session;
use scylla::errors::DbError;
use scylla::frame::types::Consistency;
use shoal_tests::{Cluster, Node, wait_until};

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];
const NTS: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";

async fn replication(s: &Session, ks: &str) -> HashMap<String, String> {
    let rows: Vec<(HashMap<String, String>,)> = common::rows(
        s,
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
        (ks,),
    )
    .await;
    assert_eq!(rows.len(), 1, "keyspace {ks} in system_schema.keyspaces");
    rows.into_iter().next().unwrap().0
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn reads_received(nodes: &[Node]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| internode_received(n, "READ_REQ"))
        .collect()
}

fn delta(after: &[u64], before: &[u64]) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_datacenters_local_levels_stay_local_and_each_quorum_needs_both() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let started = Instant::now();
    let layout = [
        ("dc1", "rack1"),
        ("dc1", "rack2"),
        ("dc1", "rack3"),
        ("dc2", "rack1"),
        ("dc2", "rack2"),
    ];
    let mut cluster =
        tokio::task::spawn_blocking(move || Cluster::start_in_dcs(&layout, FAST_DRAIN, None))
            .await
            .unwrap();
    shoal_tests::record(&format!(
        "cluster_dc: 5 nodes in 2 datacenters up and converged in {:?}",
        started.elapsed()
    ));
    let (dc1, dc2) = cluster.nodes.split_at(3);
    let s1 = pinned_to(&dc1.iter().collect::<Vec<_>>()).await;

    // The driver sees the datacenters and racks the nodes were given.
    let state = s1.get_cluster_state();
    let mut seen: Vec<(String, Option<String>, Option<String>)> = state
        .get_nodes_info()
        .iter()
        .map(|n| {
            (
                n.address.ip().to_string(),
                n.datacenter.clone(),
                n.rack.clone(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, Option<String>, Option<String>)> = cluster
        .nodes
        .iter()
        .zip(layout)
        .map(|(n, (dc, rack))| (n.ip().to_string(), Some(dc.into()), Some(rack.into())))
        .collect();
    want.sort();
    assert_eq!(seen, want, "datacenters and racks as the driver sees them");

    // Explicit per-DC factors, and the Cassandra 4 shorthand expanded to every DC.
    let ks = shoal_tests::unique_keyspace();
    let ks_rf = shoal_tests::unique_keyspace();
    common::exec(
        &s1,
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}}"
        ),
    )
    .await;
    common::exec(
        &s1,
        format!(
            "CREATE KEYSPACE {ks_rf} WITH replication = {{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}}"
        ),
    )
    .await;
    for k in [&ks, &ks_rf] {
        common::exec(
            &s1,
            format!("CREATE TABLE {k}.t (k int PRIMARY KEY, v text)"),
        )
        .await;
    }
    s1.await_schema_agreement().await.expect("schema agreement");
    // An unknown datacenter is refused, as Cassandra 4 does.
    let bad = s1
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc3': 1}}",
                shoal_tests::unique_keyspace()
            ),
            (),
        )
        .await
        .expect_err("a keyspace in an unknown datacenter");
    match db_error(&bad) {
        Some((DbError::ConfigError, msg)) => {
            assert!(msg.contains("Unrecognized strategy option {dc3}"), "{msg}")
        }
        other => panic!("expected a ConfigError, got {other:?} ({bad})"),
    }
    let s2 = pinned_to(&dc2.iter().collect::<Vec<_>>()).await;
    for s in [&s1, &s2] {
        assert_eq!(
            replication(s, &ks).await,
            map(&[("class", NTS), ("dc1", "3"), ("dc2", "2")])
        );
        assert_eq!(
            replication(s, &ks_rf).await,
            map(&[("class", NTS), ("dc1", "2"), ("dc2", "2")])
        );
    }

    // Writes at LOCAL_QUORUM through dc1; EACH_QUORUM works while everything is up.
    let cql_insert = format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)");
    let local_quorum_write = prepare_cl(&s1, &cql_insert, Consistency::LocalQuorum, true).await;
    let each_quorum_write = prepare_cl(&s1, &cql_insert, Consistency::EachQuorum, true).await;
    for k in 0..100i32 {
        s1.execute_unpaged(&local_quorum_write, (k, format!("a{k}")))
            .await
            .unwrap_or_else(|e| panic!("LOCAL_QUORUM write {k}: {e}"));
    }
    s1.execute_unpaged(&each_quorum_write, (1000, "each"))
        .await
        .expect("EACH_QUORUM write with both datacenters up");

    // LOCAL_ONE and LOCAL_QUORUM reads coordinated in dc1 never reach dc2.
    let cql_select = format!("SELECT v FROM {ks}.t WHERE k = ?");
    let before = reads_received(&cluster.nodes);
    for cl in [Consistency::LocalOne, Consistency::LocalQuorum] {
        let select = prepare_cl(&s1, &cql_select, cl, true).await;
        for k in 0..100i32 {
            let r = s1
                .execute_unpaged(&select, (k,))
                .await
                .unwrap_or_else(|e| panic!("{cl:?} read {k}: {e}"));
            assert_eq!(r.into_rows_result().unwrap().rows_num(), 1, "{cl:?} {k}");
        }
    }
    let local = delta(&reads_received(&cluster.nodes), &before);
    assert_eq!(
        &local[3..],
        &[0, 0],
        "dc2 got read requests for LOCAL_* reads coordinated in dc1 (per node: {local:?})"
    );
    // LOCAL_QUORUM needs a second dc1 replica for each of the 100 reads.
    assert!(
        local[..3].iter().sum::<u64>() >= 100,
        "dc1 replicas served the LOCAL_QUORUM reads: {local:?}"
    );
    // The control: EACH_QUORUM reads ask both dc2 replicas.
    let before = reads_received(&cluster.nodes);
    let each_quorum_read = prepare_cl(&s1, &cql_select, Consistency::EachQuorum, true).await;
    for k in 0..20i32 {
        s1.execute_unpaged(&each_quorum_read, (k,))
            .await
            .unwrap_or_else(|e| panic!("EACH_QUORUM read {k}: {e}"));
    }
    let each = delta(&reads_received(&cluster.nodes), &before);
    assert!(
        each[3] >= 20 && each[4] >= 20,
        "EACH_QUORUM reads reach both dc2 replicas: {each:?}"
    );
    shoal_tests::record(&format!(
        "cluster_dc: internode READ_REQ per node (dc1 x3, dc2 x2) for 200 LOCAL_ONE/LOCAL_QUORUM reads via dc1: {local:?}; for 20 EACH_QUORUM reads: {each:?}"
    ));

    // dc2 goes away entirely (clean shutdowns: gossip tells dc1 at once).
    drop(s2);
    for n in &mut cluster.nodes[3..] {
        n.terminate();
    }
    let dc1_ips: Vec<_> = cluster.nodes[..3].iter().map(|n| n.ip()).collect();
    wait_until(
        "dc1 sees both dc2 nodes down",
        Duration::from_secs(30),
        || {
            dc1_ips
                .iter()
                .all(|ip| {
                    shoal_tests::ring(*ip)
                        .is_some_and(|r| r.iter().filter(|m| m.status == "Down").count() == 2)
                })
                .then_some(())
        },
    );
    let outage = Instant::now();
    for k in 100..200i32 {
        s1.execute_unpaged(&local_quorum_write, (k, format!("b{k}")))
            .await
            .unwrap_or_else(|e| panic!("LOCAL_QUORUM write {k} with dc2 down: {e}"));
    }
    let rf_write = prepare_cl(
        &s1,
        &format!("INSERT INTO {ks_rf}.t (k, v) VALUES (?, ?)"),
        Consistency::LocalQuorum,
        true,
    )
    .await;
    s1.execute_unpaged(&rf_write, (1, "x"))
        .await
        .expect("LOCAL_QUORUM write to the replication_factor keyspace with dc2 down");
    let lq_elapsed = outage.elapsed();

    // EACH_QUORUM: dc2's quorum (2 of RF 2) has nobody alive.
    let err = s1
        .execute_unpaged(&each_quorum_write, (2000, "x"))
        .await
        .expect_err("EACH_QUORUM write with dc2 down");
    expect_unavailable(&err, Consistency::EachQuorum, 2, 0);
    // ALL counts every datacenter: 5 required, 3 alive. QUORUM of 5 is 3: still possible.
    let all_write = prepare_cl(&s1, &cql_insert, Consistency::All, true).await;
    let err = s1
        .execute_unpaged(&all_write, (2001, "x"))
        .await
        .expect_err("ALL write with dc2 down");
    expect_unavailable(&err, Consistency::All, 5, 3);
    let quorum_write = prepare_cl(&s1, &cql_insert, Consistency::Quorum, true).await;
    s1.execute_unpaged(&quorum_write, (2002, "q"))
        .await
        .expect("QUORUM (3 of 5) write with dc2 down");
    let local_one_read = prepare_cl(&s1, &cql_select, Consistency::LocalOne, true).await;
    let r = s1
        .execute_unpaged(&local_one_read, (150,))
        .await
        .expect("LOCAL_ONE read with dc2 down");
    assert_eq!(r.into_rows_result().unwrap().rows_num(), 1);
    shoal_tests::record(&format!(
        "cluster_dc: with dc2 stopped, 100 LOCAL_QUORUM writes via dc1 took {lq_elapsed:?}, EACH_QUORUM -> Unavailable(required 2, alive 0), ALL -> Unavailable(5, 3)"
    ));

    // dc1 holds a hint for each dc2 replica of every write it missed, and says so at once.
    let pending: u64 = cluster.nodes[..3]
        .iter()
        .map(|n| common::hints_pending(n).unwrap_or(0))
        .sum();
    assert!(
        pending >= 200,
        "dc1 reports {pending} hints pending for 100+ writes with two dc2 replicas each\n{}",
        cluster.nodes[0].stderr_tail()
    );

    // dc2 comes back and receives what it missed from dc1's hints.
    for n in &mut cluster.nodes[3..] {
        tokio::task::block_in_place(|| {
            n.restart();
        });
    }
    tokio::task::block_in_place(|| cluster.wait_converged(Duration::from_secs(60)));
    let back = Instant::now();
    wait_until("hints replayed to dc2", Duration::from_secs(60), || {
        cluster
            .nodes
            .iter()
            .all(|n| common::hints_pending(n) == Some(0))
            .then_some(())
    });
    let s2 = pinned_to(&cluster.nodes[3..].iter().collect::<Vec<_>>()).await;
    let dc2_read = prepare_cl(&s2, &cql_select, Consistency::LocalQuorum, true).await;
    let mut missing = Vec::new();
    for k in 100..200i32 {
        let r = s2
            .execute_unpaged(&dc2_read, (k,))
            .await
            .unwrap_or_else(|e| panic!("LOCAL_QUORUM read {k} in dc2: {e}"));
        let rows: Vec<(String,)> = r
            .into_rows_result()
            .unwrap()
            .rows::<(String,)>()
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        if rows != vec![(format!("b{k}"),)] {
            missing.push(k);
        }
    }
    assert!(
        missing.is_empty(),
        "dc2 lacks writes made while it was down: {missing:?}"
    );
    shoal_tests::record(&format!(
        "cluster_dc: dc2 restarted, hints replayed and the 100 missed writes readable at LOCAL_QUORUM in dc2 {:?} after convergence; test total {:?}",
        back.elapsed(),
        started.elapsed()
    ));
}

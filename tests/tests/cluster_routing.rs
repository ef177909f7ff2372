//! Token-aware routing with real node processes, checked with the nodes' own counters:
//! with an RF=1 keyspace on three nodes, the scylla driver's default (token-aware) policy
//! sends every prepared single-partition write to the node that owns the partition, so the
//! per-node count of coordinated EXECUTEs matches the ring's distribution and no node
//! forwards a mutation to another. A round-robin session is the control: it makes the
//! coordinators forward most writes.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use common::{cql_requests, internode_received, prepare_cl};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;
use scylla::policies::load_balancing::DefaultPolicy;
use shoal_tests::Cluster;

const FAST_DRAIN: &[&str] = &["--drain-delay-ms", "0"];
const WRITES: i32 = 300;

fn counters(cluster: &Cluster) -> Vec<(u64, u64)> {
    cluster
        .nodes
        .iter()
        .map(|n| {
            (
                cql_requests(n, "EXECUTE"),
                internode_received(n, "MUTATION_REQ"),
            )
        })
        .collect()
}

fn deltas(after: &[(u64, u64)], before: &[(u64, u64)]) -> (Vec<u64>, Vec<u64>) {
    after
        .iter()
        .zip(before)
        .map(|(a, b)| (a.0 - b.0, a.1 - b.1))
        .unzip()
}

async fn write_all(s: &Session, ks: &str, start: i32) {
    let insert = prepare_cl(
        s,
        &format!("INSERT INTO {ks}.t (k, v) VALUES (?, ?)"),
        Consistency::One,
        true,
    )
    .await;
    for k in start..start + WRITES {
        s.execute_unpaged(&insert, (k, k))
            .await
            .unwrap_or_else(|e| panic!("write {k}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_aware_writes_arrive_at_the_owning_node() {
    if shoal_tests::skip_without_cluster() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, FAST_DRAIN))
        .await
        .unwrap();
    let s = SessionBuilder::new()
        .known_node_addr(cluster.nodes[0].addr())
        .connection_timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("session");
    let ks = common::create_keyspace(&s).await;
    common::exec(
        &s,
        format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)"),
    )
    .await;
    s.await_schema_agreement().await.expect("schema agreement");
    s.refresh_metadata().await.expect("refresh metadata");

    // Where the ring (as the driver computes it from system.peers tokens) puts each key.
    let state = s.get_cluster_state();
    let ips: Vec<IpAddr> = cluster.nodes.iter().map(|n| n.ip()).collect();
    let mut expected = vec![0u64; ips.len()];
    for k in 0..WRITES {
        let reps = state
            .get_endpoints(&ks, "t", &(k,))
            .unwrap_or_else(|e| panic!("replicas of {k}: {e}"));
        assert_eq!(reps.len(), 1, "RF=1 has one replica");
        let ip = reps[0].0.address.ip();
        let i = ips.iter().position(|x| *x == ip).expect("a cluster node");
        expected[i] += 1;
    }

    let before = counters(&cluster);
    write_all(&s, &ks, 0).await;
    let (coordinated, forwarded) = deltas(&counters(&cluster), &before);
    shoal_tests::record(&format!(
        "cluster_routing: {WRITES} token-aware prepared writes, RF=1 on 3 nodes: EXECUTE per node {coordinated:?} (ring says {expected:?}), MUTATION_REQ forwarded per node {forwarded:?}"
    ));
    // PREPARE goes to every node but is not an EXECUTE; nothing else runs EXECUTE here.
    assert_eq!(
        coordinated, expected,
        "each write was coordinated by the partition's owner"
    );
    assert_eq!(
        forwarded,
        vec![0; ips.len()],
        "a coordinator forwarded writes to the owner"
    );

    // The control: round-robin without token awareness picks the wrong node 2/3 of the time.
    let policy = DefaultPolicy::builder().token_aware(false).build();
    let profile = scylla::client::execution_profile::ExecutionProfile::builder()
        .load_balancing_policy(policy)
        .build();
    let rr = SessionBuilder::new()
        .known_node_addr(cluster.nodes[0].addr())
        .default_execution_profile_handle(profile.into_handle())
        .connection_timeout(Duration::from_secs(5))
        .build()
        .await
        .expect("round-robin session");
    let before = counters(&cluster);
    write_all(&rr, &ks, WRITES).await;
    let (coordinated, forwarded) = deltas(&counters(&cluster), &before);
    let total_forwarded: u64 = forwarded.iter().sum();
    shoal_tests::record(&format!(
        "cluster_routing: {WRITES} round-robin writes: EXECUTE per node {coordinated:?}, MUTATION_REQ forwarded per node {forwarded:?} ({total_forwarded} total)"
    ));
    assert_eq!(coordinated.iter().sum::<u64>(), WRITES as u64);
    assert!(
        total_forwarded >= WRITES as u64 / 3,
        "round-robin coordinators forward most writes to the owner: {forwarded:?}"
    );

    // What was written is readable, wherever it was coordinated.
    let counts: HashMap<i32, i32> =
        common::rows::<(i32, i32)>(&s, &format!("SELECT k, v FROM {ks}.t"), ())
            .await
            .into_iter()
            .collect();
    assert_eq!(counts.len(), 2 * WRITES as usize);
}

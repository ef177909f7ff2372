"""Three gossiping nodes: the Python driver finds every peer from a single contact point."""

import json
import time
import urllib.request

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy

from conftest import ShoalNode, external_target

SEEDS_YAML = """
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seed}"
"""


def ring_members(host):
    try:
        with urllib.request.urlopen(f"http://{host}:8080/ring", timeout=5) as r:
            return json.load(r)["nodes"]
    except OSError:
        return []


@pytest.fixture(scope="module")
def three_nodes():
    if external_target():
        pytest.skip("needs a cluster of shoal processes")
    first = ShoalNode()
    nodes = [first]
    try:
        nodes += [ShoalNode(yaml=SEEDS_YAML.format(seed=first.host)) for _ in range(2)]
        deadline = time.monotonic() + 60
        while True:
            views = [ring_members(n.host) for n in nodes]
            if all(
                len(v) == 3 and all(m["status"] == "Up" and m["state"] == "Normal" for m in v)
                for v in views
            ):
                break
            assert time.monotonic() < deadline, f"no single ring after 60 s: {views}"
            time.sleep(0.25)
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def test_driver_discovers_every_peer_from_one_contact_point(three_nodes):
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(), request_timeout=30)
    cluster = Cluster(
        contact_points=[three_nodes[0].host],
        port=three_nodes[0].port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=10,
        control_connection_timeout=10,
    )
    try:
        session = cluster.connect()
        hosts = cluster.metadata.all_hosts()
        assert sorted(h.address for h in hosts) == sorted(n.host for n in three_nodes)
        assert all(h.is_up for h in hosts)
        assert {h.datacenter for h in hosts} == {"datacenter1"}
        # Queries are spread over the discovered nodes, and each answers as itself.
        answered = {session.execute("SELECT rpc_address FROM system.local").one()[0] for _ in range(9)}
        assert len(answered) == 3, answered
    finally:
        cluster.shutdown()


def metric_sum(host, prefix):
    with urllib.request.urlopen(f"http://{host}:8080/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    )


def test_token_aware_policy_sends_each_write_to_its_replica(three_nodes):
    """With TokenAwarePolicy and RF=1, the coordinator of every prepared write is the
    partition's only replica (as the driver computes it from the ring), the nodes' own
    EXECUTE counters agree, and no node forwards a mutation."""
    from cassandra.policies import TokenAwarePolicy

    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()), request_timeout=30
    )
    cluster = Cluster(
        contact_points=[three_nodes[0].host],
        port=three_nodes[0].port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=10,
        control_connection_timeout=10,
    )
    try:
        session = cluster.connect()
        ks = "ks_route_" + str(int(time.time() * 1000) % 10**9)
        session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v int)")
        assert cluster.control_connection.wait_for_schema_agreement(wait_time=30)
        cluster.refresh_keyspace_metadata(ks)
        insert = session.prepare(f"INSERT INTO {ks}.t (k, v) VALUES (?, ?)")
        hosts = [n.host for n in three_nodes]
        executes = "shoal_client_requests_total{op=\"EXECUTE\","
        forwards = "shoal_internode_messages_received_total{verb=\"MUTATION_REQ\"}"
        before = [(metric_sum(h, executes), metric_sum(h, forwards)) for h in hosts]
        expected = {h: 0 for h in hosts}
        for k in range(150):
            bound = insert.bind((k, k))
            replicas = cluster.metadata.get_replicas(ks, bound.routing_key)
            assert len(replicas) == 1
            rs = session.execute(bound)
            coordinator = rs.response_future.coordinator_host
            address = str(getattr(coordinator, "address", coordinator))
            assert address == replicas[0].address, (k, coordinator, replicas)
            expected[replicas[0].address] += 1
        after = [(metric_sum(h, executes), metric_sum(h, forwards)) for h in hosts]
        coordinated = [a[0] - b[0] for a, b in zip(after, before)]
        forwarded = [a[1] - b[1] for a, b in zip(after, before)]
        assert coordinated == [expected[h] for h in hosts], (coordinated, expected)
        assert forwarded == [0, 0, 0], forwarded
        session.execute(f"DROP KEYSPACE {ks}")
    finally:
        cluster.shutdown()

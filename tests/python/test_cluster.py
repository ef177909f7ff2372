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

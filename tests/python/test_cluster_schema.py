"""Schema agreement seen by the Python driver after DDL on a three-node cluster."""

import time

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, WhiteListRoundRobinPolicy

from conftest import unique_keyspace
from test_cluster import three_nodes  # noqa: F401  (the module-scoped cluster fixture)


def connect(node, only=False):
    policy = WhiteListRoundRobinPolicy([node.host]) if only else DCAwareRoundRobinPolicy()
    profile = ExecutionProfile(load_balancing_policy=policy, request_timeout=30)
    cluster = Cluster(
        contact_points=[node.host],
        port=node.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=10,
        control_connection_timeout=10,
    )
    return cluster, cluster.connect()


def test_driver_sees_schema_agreement_after_ddl(three_nodes):  # noqa: F811
    cluster, session = connect(three_nodes[0])
    try:
        ks = unique_keyspace()
        rs = session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        # The driver waited for system.local and system.peers to report one version.
        assert rs.response_future.is_schema_agreed
        rs = session.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)")
        assert rs.response_future.is_schema_agreed
        assert cluster.control_connection.wait_for_schema_agreement()
        assert ks in cluster.metadata.keyspaces
        assert "t" in cluster.metadata.keyspaces[ks].tables
        # Every node's own view (its system.local and, from gossip, its system.peers) comes
        # to one version. Each view is read from one node: a node hears of a peer's new
        # version by gossip, so two nodes' views can differ for a gossip round or two, as in
        # Cassandra (the driver's own agreement check reads one node's view).
        for host in cluster.metadata.all_hosts():
            deadline = time.monotonic() + 10
            while True:
                local = session.execute("SELECT schema_version FROM system.local", host=host)
                peers = session.execute("SELECT schema_version FROM system.peers", host=host)
                versions = {local.one()[0]} | {r.schema_version for r in peers}
                if len(versions) == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert len(versions) == 1, (host, versions)
    finally:
        cluster.shutdown()
    # Usable at once through the third node alone.
    cluster, session = connect(three_nodes[2], only=True)
    try:
        session.execute(f"INSERT INTO {ks}.t (k, v) VALUES (1, 'x')")
        assert session.execute(f"SELECT v FROM {ks}.t WHERE k = 1").one().v == "x"
    finally:
        cluster.shutdown()

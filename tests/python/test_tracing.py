"""Request tracing: the Python driver's `trace=True` / `get_query_trace()` and cqlsh's
`TRACING ON` read the session and events the node records in system_traces."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement

from conftest import unique_keyspace

CQLSH = pathlib.Path(sys.executable).with_name("cqlsh")


@pytest.fixture(scope="module")
def session(node):
    cluster = Cluster(contact_points=[node.host], port=node.port, connect_timeout=10)
    s = cluster.connect()
    yield s
    cluster.shutdown()


@pytest.fixture(scope="module")
def ks(session):
    ks = unique_keyspace()
    session.execute(
        f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    session.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)")
    yield ks
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}")


def test_query_trace(node, session, ks):
    rs = session.execute(f"INSERT INTO {ks}.t (k, v) VALUES (1, 'a')", trace=True)
    trace = rs.get_query_trace(max_wait_sec=10)
    assert trace.duration is not None and trace.duration.total_seconds() >= 0
    assert trace.started_at is not None
    assert trace.events

    query = f"SELECT * FROM {ks}.t WHERE k = 1"
    rs = session.execute(SimpleStatement(query), trace=True)
    assert rs.one().v == "a"
    trace = rs.get_query_trace(max_wait_sec=10)
    assert trace.request_type == "Execute CQL3 query"
    assert trace.parameters["query"] == query
    assert trace.parameters["consistency_level"]
    assert len(trace.events) >= 2
    # One node: every event comes from it.
    assert {str(e.source) for e in trace.events} == {str(trace.coordinator)}
    assert all(e.source_elapsed is not None for e in trace.events)
    if not node.external:
        assert any("Parsing" in e.description for e in trace.events)


def test_prepared_trace(session, ks):
    ps = session.prepare(f"SELECT * FROM {ks}.t WHERE k = ?")
    rs = session.execute(ps, [1], trace=True)
    trace = rs.get_query_trace(max_wait_sec=10)
    assert trace.request_type == "Execute CQL3 prepared query"
    assert trace.events


def test_untraced_requests_have_no_trace(session, ks):
    rs = session.execute(f"SELECT * FROM {ks}.t")
    assert rs.get_all_query_traces() == []


def test_cqlsh_tracing_on(node, ks):
    with tempfile.TemporaryDirectory(prefix="cqlsh-home-") as home:
        script = pathlib.Path(home) / "trace.cql"
        script.write_text(f"TRACING ON;\nSELECT * FROM {ks}.t;\n")
        env = dict(os.environ, HOME=home, PYTHONIOENCODING="utf-8", LANG="C.UTF-8")
        proc = subprocess.run(
            [str(CQLSH), node.host, str(node.port), "-f", str(script)],
            capture_output=True, text=True, timeout=90, env=env,
        )
    assert proc.returncode == 0, proc.stderr
    assert "Tracing session:" in proc.stdout, proc.stdout
    assert "activity" in proc.stdout and "source_elapsed" in proc.stdout

"""Paging through the Python driver: every row exactly once, in order, for page sizes from
tiny to larger than the engine's internal read chunk (1000 rows), across partitions with
more rows than a chunk, with LIMIT, PER PARTITION LIMIT, reversed order, IN on both key
parts, DISTINCT, COUNT, ALLOW FILTERING, and a partition that holds only a static row."""

import pytest
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from conftest import unique_keyspace

PARTITIONS = 5
ROWS = 2500  # per partition: more than one internal read chunk


@pytest.fixture(scope="module")
def session(node):
    c = Cluster(contact_points=[node.host], port=node.port, connect_timeout=10)
    s = c.connect()
    name = unique_keyspace()
    s.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    s.set_keyspace(name)
    s.execute("CREATE TABLE t (k int, c int, s int static, v int, PRIMARY KEY (k, c))")
    insert = s.prepare("INSERT INTO t (k, c, v) VALUES (?, ?, ?)")
    data = [(k, c, k * 10000 + c) for k in range(PARTITIONS) for c in range(ROWS)]
    execute_concurrent_with_args(s, insert, data, concurrency=100, raise_on_first_error=True)
    # A partition with only a static row: it reads as one row with null clustering columns.
    s.execute("INSERT INTO t (k, s) VALUES (99, 7)")
    yield s
    s.execute(f"DROP KEYSPACE IF EXISTS {name}")
    c.shutdown()


def fetch(session, q, fetch_size):
    return list(session.execute(SimpleStatement(q, fetch_size=fetch_size)))


@pytest.mark.parametrize("fetch_size", [7, 100, 1000, 3000])
def test_paging_returns_every_row_once(session, fetch_size):
    all_keys = {(k, c) for k in range(PARTITIONS) for c in range(ROWS)}

    rows = fetch(session, "SELECT k, c, s FROM t", fetch_size)
    keys = [(r.k, r.c) for r in rows if r.k != 99]
    assert len(keys) == len(set(keys)) == PARTITIONS * ROWS
    assert set(keys) == all_keys
    static_only = [r for r in rows if r.k == 99]
    assert len(static_only) == 1 and static_only[0].c is None and static_only[0].s == 7

    assert len(fetch(session, "SELECT k, c FROM t PER PARTITION LIMIT 3", fetch_size)) == PARTITIONS * 3 + 1
    assert len(fetch(session, "SELECT k, c FROM t LIMIT 4321", fetch_size)) == 4321

    cs = [r.c for r in fetch(session, "SELECT c FROM t WHERE k = 3 ORDER BY c DESC", fetch_size)]
    assert cs == list(range(ROWS - 1, -1, -1))
    cs = [
        r.c
        for r in fetch(
            session, "SELECT c FROM t WHERE k = 3 AND c >= 100 AND c < 2000 ORDER BY c DESC LIMIT 1500", fetch_size
        )
    ]
    assert cs == list(range(1999, 499, -1))

    rows = fetch(session, "SELECT k, c FROM t WHERE k IN (1, 4) AND c IN (5, 2400, 7)", fetch_size)
    assert sorted((r.k, r.c) for r in rows) == sorted(
        [(1, 5), (1, 7), (1, 2400), (4, 5), (4, 7), (4, 2400)]
    )

    rows = fetch(session, "SELECT DISTINCT k, s FROM t", fetch_size)
    assert sorted(r.k for r in rows) == list(range(PARTITIONS)) + [99]

    assert fetch(session, "SELECT COUNT(*) FROM t", fetch_size)[0][0] == PARTITIONS * ROWS + 1

    rows = fetch(session, "SELECT k, c FROM t WHERE v > 29990 ALLOW FILTERING", fetch_size)
    want = sorted((k, c) for k in range(PARTITIONS) for c in range(ROWS) if k * 10000 + c > 29990)
    assert sorted((r.k, r.c) for r in rows) == want

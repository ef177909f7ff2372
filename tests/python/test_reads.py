"""Reads with the Python driver (cassandra-driver 3.30): SELECT JSON / INSERT JSON / toJson /
fromJson, secondary indexes kept consistent through updates and deletes, GROUP BY with
paging, multi-column slices on mixed-order clustering, PER PARTITION LIMIT, DISTINCT,
token ranges, aggregates and refusals without ALLOW FILTERING. Expected results are
Cassandra's."""

import json
import os
import subprocess

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement

from conftest import unique_keyspace

FILTERING = (
    "Cannot execute this query as it might involve data filtering and thus may have "
    "unpredictable performance. If you want to execute this query despite the performance "
    "unpredictability, use ALLOW FILTERING"
)


@pytest.fixture(scope="module")
def session(node):
    c = Cluster(contact_points=[node.host], port=node.port, connect_timeout=10)
    s = c.connect()
    name = unique_keyspace()
    s.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    s.set_keyspace(name)
    yield s
    s.execute(f"DROP KEYSPACE IF EXISTS {name}")
    c.shutdown()


def rows(session, q, *args, fetch_size=None):
    st = SimpleStatement(q, fetch_size=fetch_size)
    return list(session.execute(st, args or None))


def refused(session, q, text):
    with pytest.raises(InvalidRequest) as e:
        session.execute(q)
    assert text in str(e.value), str(e.value)


def test_select_json_every_type(session):
    session.execute("CREATE TYPE IF NOT EXISTS addr (street text, \"Zip\" int)")
    session.execute(
        "CREATE TABLE j (k int PRIMARY KEY, t text, b blob, ts timestamp, d date, tm time,"
        " u uuid, f float, db double, dec decimal, vi varint, bo boolean, ip inet,"
        " l list<int>, s set<text>, m map<int, text>, tu tuple<int, text>, a frozen<addr>,"
        " \"Mixed\" int)"
    )
    session.execute(
        "INSERT INTO j (k, t, b, ts, d, tm, u, f, db, dec, vi, bo, ip, l, s, m, tu, a, \"Mixed\")"
        " VALUES (1, 'a\"b', 0x0102, '2024-01-01 00:00:00+0000', '2024-01-02', '01:02:03',"
        " 6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47, 1.5, 1e10, 1.25, 12345678901234567890, true,"
        " '127.0.0.1', [1, 2], {'x', 'y'}, {1: 'one', 2: 'two'}, (1, 'z'),"
        " {street: 'main', \"Zip\": 7}, 9)"
    )
    rs = session.execute("SELECT JSON * FROM j")
    assert rs.column_names == ["[json]"]
    text = rs.one()[0]
    assert text == (
        '{"k": 1, "\\"Mixed\\"": 9, "a": {"street": "main", "\\"Zip\\"": 7}, "b": "0x0102", "bo": true, "d": "2024-01-02",'
        ' "db": 1.0E10, "dec": 1.25, "f": 1.5, "ip": "127.0.0.1", "t": "a\\"b",'
        ' "tm": "01:02:03.000000000", "ts": "2024-01-01 00:00:00.000Z",'
        ' "tu": [1, "z"], "u": "6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47",'
        ' "vi": 12345678901234567890,'
        ' "l": [1, 2], "m": {"1": "one", "2": "two"}, "s": ["x", "y"]}'
    ), text
    # Round trip: the JSON of a row inserts the same row.
    doc = json.loads(text)
    doc["k"] = 2
    session.execute("INSERT INTO j JSON %s", (json.dumps(doc),))
    (r2,) = rows(session, "SELECT JSON * FROM j WHERE k = 2")
    assert json.loads(r2[0]) == doc
    rs = session.execute("SELECT toJson(m), toJson(ts) AS when FROM j WHERE k = 1")
    assert rs.column_names == ["system.tojson(m)", "when"]
    r3 = rs.one()
    assert r3[0] == '{"1": "one", "2": "two"}'
    assert r3[1] == '"2024-01-01 00:00:00.000Z"'
    (r4,) = rows(session, "SELECT JSON k, t AS x FROM j WHERE k = 1")
    assert r4[0] == '{"k": 1, "x": "a\\"b"}'


def test_insert_json_rules(session):
    session.execute("CREATE TABLE ij (k int, c int, v int, w text, PRIMARY KEY (k, c))")
    session.execute("""INSERT INTO ij JSON '{"k": 1, "c": 1, "v": 1, "w": "a"}'""")
    # DEFAULT UNSET leaves w alone; the default (NULL) clears it.
    session.execute("""INSERT INTO ij JSON '{"k": 1, "c": 1, "v": 2}' DEFAULT UNSET""")
    assert rows(session, "SELECT v, w FROM ij WHERE k = 1")[0] == (2, "a")
    session.execute("""INSERT INTO ij JSON '{"k": 1, "c": 1, "v": 3}'""")
    assert rows(session, "SELECT v, w FROM ij WHERE k = 1")[0] == (3, None)
    # Numbers may come as strings.
    session.execute("""INSERT INTO ij JSON '{"k": "2", "c": 1, "v": "4"}'""")
    assert rows(session, "SELECT v FROM ij WHERE k = 2")[0] == (4,)
    refused(
        session,
        """INSERT INTO ij JSON '{"k": 1, "c": 1, "x": 1}'""",
        "JSON values map contains unrecognized column: x",
    )
    refused(
        session,
        """INSERT INTO ij JSON '{"k": 1, "c": 1, "v": "abc"}'""",
        "Error decoding JSON value for v",
    )
    session.execute("UPDATE ij SET w = fromJson('\"zz\"') WHERE k = 2 AND c = 1")
    assert rows(session, "SELECT w FROM ij WHERE k = 2")[0] == ("zz",)
    refused(
        session,
        "SELECT fromJson(w) FROM ij",
        "fromJson() cannot be used in the selection clause of a SELECT statement",
    )


def test_secondary_index_consistency(session):
    session.execute("CREATE TABLE si (k int, c int, v int, l list<int>, m map<text, int>, PRIMARY KEY (k, c))")
    for k in range(3):
        for c in range(3):
            session.execute(
                "INSERT INTO si (k, c, v, l, m) VALUES (%s, %s, %s, [%s], {'a': %s})",
                (k, c, c, k, k + c),
            )
    refused(session, "SELECT * FROM si WHERE v = 1", FILTERING)
    # Built from existing data.
    session.execute("CREATE INDEX ON si (v)")
    meta = rows(session, "SELECT index_name, options FROM system_schema.indexes WHERE keyspace_name = %s", session.keyspace)
    assert ("si_v_idx", {"target": "v"}) in [(r[0], r[1]) for r in meta]
    got = sorted((r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE v = 1"))
    assert got == [(0, 1), (1, 1), (2, 1)]
    # Updates move the entry; deletes remove it.
    session.execute("UPDATE si SET v = 7 WHERE k = 0 AND c = 1")
    session.execute("DELETE FROM si WHERE k = 1 AND c = 1")
    session.execute("DELETE v FROM si WHERE k = 2 AND c = 1")
    assert rows(session, "SELECT * FROM si WHERE v = 1") == []
    assert [(r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE v = 7")] == [(0, 1)]
    session.execute("DELETE FROM si WHERE k = 0")
    assert rows(session, "SELECT * FROM si WHERE v = 7") == []
    # Combined with other restrictions.
    got = [(r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE k = 2 AND v = 2")]
    assert got == [(2, 2)]
    refused(session, "SELECT * FROM si WHERE v = 2 AND l CONTAINS 2", FILTERING)
    got = [(r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE v = 2 AND l CONTAINS 2 ALLOW FILTERING")]
    assert got == [(2, 2)]
    # Collections.
    session.execute("CREATE INDEX IF NOT EXISTS ON si (l)")
    session.execute("CREATE INDEX mk ON si (keys(m))")
    session.execute("CREATE INDEX me ON si (entries(m))")
    assert sorted((r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE l CONTAINS 2")) == [(2, 0), (2, 1), (2, 2)]
    assert len(rows(session, "SELECT * FROM si WHERE m CONTAINS KEY 'a'")) == 5
    assert [(r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE m['a'] = 4")] == [(2, 2)]
    session.execute("UPDATE si SET m['a'] = 40 WHERE k = 2 AND c = 2")
    assert rows(session, "SELECT * FROM si WHERE m['a'] = 4") == []
    session.execute("UPDATE si SET l = l + [9] WHERE k = 2 AND c = 0")
    assert [(r.k, r.c) for r in rows(session, "SELECT * FROM si WHERE l CONTAINS 9")] == [(2, 0)]
    # Paging through index hits.
    session.execute("CREATE TABLE sp (k int, c int, v int, PRIMARY KEY (k, c))")
    session.execute("CREATE INDEX ON sp (v)")
    for k in range(10):
        for c in range(5):
            session.execute("INSERT INTO sp (k, c, v) VALUES (%s, %s, 1)", (k, c))
    paged = rows(session, "SELECT k, c FROM sp WHERE v = 1", fetch_size=7)
    assert len(paged) == 50 and len(set(paged)) == 50
    # Errors and names.
    refused(session, "CREATE INDEX ON si (v)", "is a duplicate of existing index si_v_idx")
    refused(session, "CREATE INDEX si_v_idx ON sp (c)", "Index 'si_v_idx' already exists")
    session.execute("CREATE TABLE one (k int PRIMARY KEY, v int)")
    refused(session, "CREATE INDEX ON one (k)", "Cannot create secondary index on the only partition key column k")
    session.execute("DROP INDEX si_v_idx")
    refused(session, "SELECT * FROM si WHERE v = 2", FILTERING)
    refused(session, "DROP INDEX nope", "doesn't exist")
    session.execute("DROP INDEX IF EXISTS nope")


def test_group_by_and_paging(session):
    session.execute("CREATE TABLE g (k int, c1 int, c2 int, v int, PRIMARY KEY (k, c1, c2))")
    for k in range(3):
        for c1 in range(4):
            for c2 in range(3):
                session.execute("INSERT INTO g (k, c1, c2, v) VALUES (%s, %s, %s, %s)", (k, c1, c2, c2 + 1))
    r = rows(session, "SELECT k, count(*), sum(v) FROM g GROUP BY k", fetch_size=2)
    assert sorted(tuple(x) for x in r) == [(0, 12, 24), (1, 12, 24), (2, 12, 24)]
    r = rows(session, "SELECT k, c1, max(v) FROM g WHERE k = 1 GROUP BY k, c1", fetch_size=3)
    assert [tuple(x) for x in r] == [(1, 0, 3), (1, 1, 3), (1, 2, 3), (1, 3, 3)]
    r = rows(session, "SELECT k, c1 FROM g WHERE k = 1 GROUP BY k, c1 LIMIT 2")
    assert [tuple(x) for x in r] == [(1, 0), (1, 1)]
    refused(session, "SELECT v, count(*) FROM g GROUP BY v", "Group by is currently only supported on the columns of the PRIMARY KEY, got v")
    refused(session, "SELECT count(*) FROM g GROUP BY c1", "Group by currently only support groups of columns following their declared order in the PRIMARY KEY")


def test_aggregates(session):
    session.execute("CREATE TABLE ag (k int, c int, v int, d double, PRIMARY KEY (k, c))")
    session.execute("INSERT INTO ag (k, c, v, d) VALUES (1, 1, 2147483647, 1.5)")
    session.execute("INSERT INTO ag (k, c, v, d) VALUES (1, 2, 1, 2.5)")
    rs = session.execute("SELECT count(*), count(v), min(v), max(v), sum(v), avg(d) FROM ag WHERE k = 1")
    assert rs.column_names == ["count", "system.count(v)", "system.min(v)", "system.max(v)", "system.sum(v)", "system.avg(d)"]
    r = rs.one()
    # sum(int) is an int and wraps like Java's int arithmetic.
    assert tuple(r) == (2, 2, 1, 2147483647, -2147483648, 2.0)


def test_mixed_order_multi_column_slice(session):
    session.execute(
        "CREATE TABLE mo (k int, a int, b int, PRIMARY KEY (k, a, b)) WITH CLUSTERING ORDER BY (a ASC, b DESC)"
    )
    for a in range(3):
        for b in range(3):
            session.execute("INSERT INTO mo (k, a, b) VALUES (0, %s, %s)", (a, b))
    r = rows(session, "SELECT a, b FROM mo WHERE k = 0 AND (a, b) > (1, 0)")
    assert [tuple(x) for x in r] == [(1, 2), (1, 1), (2, 2), (2, 1), (2, 0)]
    r = rows(session, "SELECT a, b FROM mo WHERE k = 0 AND (a, b) >= (0, 2) AND (a, b) < (1, 1)", fetch_size=2)
    assert [tuple(x) for x in r] == [(0, 2), (1, 0)]


def test_select_features(session):
    session.execute("CREATE TABLE f (k int, c int, s int static, v int, PRIMARY KEY (k, c))")
    for k in range(4):
        session.execute("INSERT INTO f (k, s) VALUES (%s, %s)", (k, k * 10))
        for c in range(4):
            session.execute("INSERT INTO f (k, c, v) VALUES (%s, %s, %s)", (k, c, c))
    r = rows(session, "SELECT k, c FROM f PER PARTITION LIMIT 2")
    assert len(r) == 8 and all(x.c < 2 for x in r)
    r = rows(session, "SELECT DISTINCT k, s FROM f")
    assert sorted(tuple(x) for x in r) == [(0, 0), (1, 10), (2, 20), (3, 30)]
    r = rows(session, "SELECT c FROM f WHERE k = 1 AND c IN (3, 1)")
    assert [x.c for x in r] == [1, 3]
    refused(session, "SELECT * FROM f WHERE v = 1", FILTERING)
    refused(session, "SELECT * FROM f WHERE c = 1", FILTERING)
    assert len(rows(session, "SELECT * FROM f WHERE v = 1 ALLOW FILTERING")) == 4
    toks = sorted(x[0] for x in rows(session, "SELECT token(k) FROM f PER PARTITION LIMIT 1"))
    lo, hi = toks[0], toks[2]
    r = rows(session, "SELECT DISTINCT k FROM f WHERE token(k) > %s AND token(k) <= %s", lo, hi)
    assert len(r) == 2
    # A range that would wrap around the ring is empty; the minimum token is unbounded.
    assert rows(session, "SELECT k FROM f WHERE token(k) > %s AND token(k) <= %s", hi, lo) == []
    assert len(rows(session, "SELECT DISTINCT k FROM f WHERE token(k) > -9223372036854775808")) == 4
    assert len(rows(session, "SELECT DISTINCT k FROM f WHERE token(k) <= -9223372036854775808")) == 4
    r = rows(session, "SELECT k, c AS cc, cast(v AS text) AS vt FROM f WHERE k = 0 LIMIT 1")
    assert r[0]._fields == ("k", "cc", "vt") and r[0].vt == "0"


def test_cqlsh_json_output(node, session):
    cqlsh = os.environ.get("CQLSH", "cqlsh")
    session.execute("CREATE TABLE IF NOT EXISTS cj (k int PRIMARY KEY, v text)")
    session.execute("INSERT INTO cj (k, v) VALUES (1, 'x')")
    try:
        out = subprocess.run(
            [cqlsh, node.host, str(node.port), "-e", f"SELECT JSON * FROM {session.keyspace}.cj"],
            capture_output=True, text=True, timeout=60,
        )
    except FileNotFoundError:
        pytest.skip("cqlsh not installed")
    assert out.returncode == 0, out.stderr
    assert '{"k": 1, "v": "x"}' in out.stdout
    assert "[json]" in out.stdout

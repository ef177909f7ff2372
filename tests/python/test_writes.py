"""Writes through the Python driver: collections element by element, UDTs, static columns,
counters, lightweight transactions and the errors around them. Expected values and error
texts are what Apache Cassandra 4.0 returns (checked against the reference node with
SHOAL_TEST_TARGET=127.0.0.200:9042)."""

import os
import subprocess
import sys

import pytest
from cassandra import InvalidRequest
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from conftest import REPO
from test_driver import cluster, ks, session  # noqa: F401  (module fixtures)


def one(session, cql, *args):
    return session.execute(cql, args if args else None).one()


def invalid(session, cql, message):
    with pytest.raises(InvalidRequest) as e:
        session.execute(cql)
    assert message in str(e.value), str(e.value)


@pytest.fixture(scope="module")
def tables(session, ks):
    for ddl in [
        f"CREATE TYPE {ks}.addr (street text, num int)",
        f"CREATE TABLE {ks}.coll (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>,"
        f" u addr, fu frozen<addr>, fl frozen<list<int>>, nested map<int, frozen<list<set<int>>>>)",
        f"CREATE TABLE {ks}.st (k int, c int, s int static, v int, PRIMARY KEY (k, c))",
        f"CREATE TABLE {ks}.cnt (k int PRIMARY KEY, a counter, b counter)",
        f"CREATE TABLE {ks}.lw (k int, c int, v int, s int static, m map<int, text>,"
        f" u frozen<addr>, PRIMARY KEY (k, c))",
    ]:
        session.execute(ddl)
    return ks


def test_list_operations(session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.coll (k, l) VALUES (1, [1, 2, 3])")
    session.execute(f"UPDATE {ks}.coll SET l = [0] + l WHERE k = 1")
    session.execute(f"UPDATE {ks}.coll SET l = [-2, -1] + l WHERE k = 1")
    session.execute(f"UPDATE {ks}.coll SET l = l + [4, 5] WHERE k = 1")
    assert one(session, f"SELECT l FROM {ks}.coll WHERE k = 1").l == [-2, -1, 0, 1, 2, 3, 4, 5]
    session.execute(f"UPDATE {ks}.coll SET l[2] = 10 WHERE k = 1")
    session.execute(f"UPDATE {ks}.coll SET l = l - [2, 4, 99] WHERE k = 1")
    session.execute(f"DELETE l[0] FROM {ks}.coll WHERE k = 1")
    assert one(session, f"SELECT l FROM {ks}.coll WHERE k = 1").l == [-1, 10, 1, 3, 5]
    prepared = session.prepare(f"UPDATE {ks}.coll SET l[?] = ? WHERE k = ?")
    session.execute(prepared, (4, 50, 1))
    assert one(session, f"SELECT l FROM {ks}.coll WHERE k = 1").l == [-1, 10, 1, 3, 50]
    invalid(session, f"UPDATE {ks}.coll SET l[7] = 1 WHERE k = 1",
            "List index 7 out of bound, list has size 5")
    invalid(session, f"DELETE l[9] FROM {ks}.coll WHERE k = 1",
            "List index 9 out of bound, list has size 5")
    invalid(session, f"UPDATE {ks}.coll SET l[0] = 1 WHERE k = 2",
            "Attempted to set an element on a list which is null")
    invalid(session, f"DELETE l[0] FROM {ks}.coll WHERE k = 2",
            "Attempted to delete an element from a list which is null")
    # Overwriting the whole list replaces it.
    session.execute(f"UPDATE {ks}.coll SET l = [7] WHERE k = 1")
    assert one(session, f"SELECT l FROM {ks}.coll WHERE k = 1").l == [7]


def test_set_and_map_operations(session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.coll (k, s, m) VALUES (3, {{'a', 'b'}}, {{'x': 1}})")
    session.execute(f"UPDATE {ks}.coll SET s = s + {{'c'}}, m = m + {{'y': 2, 'z': 3}} WHERE k = 3")
    session.execute(f"UPDATE {ks}.coll SET s = s - {{'a'}}, m['x'] = 10 WHERE k = 3")
    session.execute(f"UPDATE {ks}.coll SET m = m - {{'y'}} WHERE k = 3")
    session.execute(f"DELETE s['b'], m['z'] FROM {ks}.coll WHERE k = 3")
    row = one(session, f"SELECT s, m FROM {ks}.coll WHERE k = 3")
    assert row.s == {"c"} and row.m == {"x": 10}
    # Removing the last element leaves a null collection, as in Cassandra.
    session.execute(f"UPDATE {ks}.coll SET s = s - {{'c'}} WHERE k = 3")
    assert one(session, f"SELECT s FROM {ks}.coll WHERE k = 3").s is None
    prepared = session.prepare(f"UPDATE {ks}.coll SET m = m + ?, s = s + ? WHERE k = ?")
    session.execute(prepared, ({"p": 5}, {"q"}, 3))
    row = one(session, f"SELECT s, m FROM {ks}.coll WHERE k = 3")
    assert row.s == {"q"} and row.m == {"x": 10, "p": 5}


def test_nested_frozen_and_element_ttl(session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.coll (k, nested, fl) VALUES (4, {{1: [{{1, 2}}, {{3}}]}}, [1, 2])")
    session.execute(f"UPDATE {ks}.coll USING TTL 1000 SET m['t'] = 1 WHERE k = 4")
    session.execute(f"UPDATE {ks}.coll SET m['n'] = 2 WHERE k = 4")
    row = one(session, f"SELECT nested, fl, m FROM {ks}.coll WHERE k = 4")
    assert row.nested == {1: [{1, 2}, {3}]} and row.fl == [1, 2] and row.m == {"n": 2, "t": 1}
    invalid(session, f"UPDATE {ks}.coll SET fl = fl + [1] WHERE k = 4",
            "Invalid operation (fl = fl + [1]) for frozen collection column fl")
    invalid(session, f"UPDATE {ks}.coll SET s[0] = 'a' WHERE k = 4",
            "Invalid operation (s[0] = 'a') for set column s")
    invalid(session, f"DELETE fl[0] FROM {ks}.coll WHERE k = 4",
            "Invalid deletion operation for frozen collection column fl")


def test_udt_fields(cluster, session, tables):
    ks = tables

    class Addr:
        def __init__(self, street=None, num=None):
            self.street, self.num = street, num

    cluster.register_user_type(ks, "addr", Addr)
    session.execute(f"INSERT INTO {ks}.coll (k, u, fu) VALUES (5, {{street: 'main', num: 1}}, {{street: 'f', num: 2}})")
    session.execute(f"UPDATE {ks}.coll SET u.num = 6 WHERE k = 5")
    session.execute(f"DELETE u.street FROM {ks}.coll WHERE k = 5")
    row = one(session, f"SELECT u, fu FROM {ks}.coll WHERE k = 5")
    assert (row.u.street, row.u.num) == (None, 6)
    assert (row.fu.street, row.fu.num) == ("f", 2)
    session.execute(f"INSERT INTO {ks}.coll (k, u) VALUES (6, %s)", (Addr("bound", 9),))
    row = one(session, f"SELECT u FROM {ks}.coll WHERE k = 6")
    assert (row.u.street, row.u.num) == ("bound", 9)
    invalid(session, f"UPDATE {ks}.coll SET u.zz = 1 WHERE k = 5",
            "UDT column u does not have a field named zz")
    invalid(session, f"UPDATE {ks}.coll SET fu.num = 1 WHERE k = 5",
            "Invalid operation (fu.num = 1) for frozen UDT column fu")
    invalid(session, f"DELETE fu.num FROM {ks}.coll WHERE k = 5",
            "Frozen UDT column fu does not support field deletions")
    invalid(session, f"INSERT INTO {ks}.coll (k, u) VALUES (7, {{street: 'x', zz: 1}})",
            "Unknown field 'zz' in value of user defined type addr")


def test_static_columns(session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.st (k, s) VALUES (1, 10)")
    rows = list(session.execute(f"SELECT k, c, s, v FROM {ks}.st WHERE k = 1"))
    assert [tuple(r) for r in rows] == [(1, None, 10, None)]
    session.execute(f"INSERT INTO {ks}.st (k, c, s, v) VALUES (1, 1, 11, 100)")
    session.execute(f"UPDATE {ks}.st SET s = 12 WHERE k = 1")
    session.execute(f"INSERT INTO {ks}.st (k, c, v) VALUES (1, 2, 200)")
    rows = [tuple(r) for r in session.execute(f"SELECT k, c, s, v FROM {ks}.st WHERE k = 1")]
    assert rows == [(1, 1, 12, 100), (1, 2, 12, 200)]
    session.execute(f"DELETE s FROM {ks}.st WHERE k = 1")
    rows = [tuple(r) for r in session.execute(f"SELECT k, c, s, v FROM {ks}.st WHERE k = 1")]
    assert rows == [(1, 1, None, 100), (1, 2, None, 200)]


def test_counters(session, tables):
    ks = tables
    session.execute(f"UPDATE {ks}.cnt SET a = a + 5, b = b - 1 WHERE k = 1")
    session.execute(f"UPDATE {ks}.cnt SET a = a - 2 WHERE k = 1")
    prepared = session.prepare(f"UPDATE {ks}.cnt SET a = a + ? WHERE k = ?")
    session.execute(prepared, (10, 1))
    assert tuple(one(session, f"SELECT a, b FROM {ks}.cnt WHERE k = 1")) == (13, -1)
    batch = BatchStatement(batch_type=BatchType.COUNTER)
    batch.add(prepared, (1, 1))
    batch.add(prepared, (1, 2))
    session.execute(batch)
    session.execute(
        f"BEGIN COUNTER BATCH UPDATE {ks}.cnt SET b = b + 3 WHERE k = 2; "
        f"UPDATE {ks}.cnt SET a = a + 1 WHERE k = 2; APPLY BATCH"
    )
    assert tuple(one(session, f"SELECT a, b FROM {ks}.cnt WHERE k = 1")) == (14, -1)
    assert tuple(one(session, f"SELECT a, b FROM {ks}.cnt WHERE k = 2")) == (2, 3)
    invalid(session, f"UPDATE {ks}.cnt SET a = 5 WHERE k = 1",
            "Cannot set the value of counter column a (counters can only be incremented/decremented, not set)")
    invalid(session, f"UPDATE {ks}.cnt USING TTL 10 SET a = a + 1 WHERE k = 1",
            "Cannot provide custom TTL for counter updates")
    invalid(session, f"INSERT INTO {ks}.cnt (k, a) VALUES (3, 1)",
            "INSERT statements are not allowed on counter tables, use UPDATE instead")
    invalid(session, f"UPDATE {ks}.cnt SET a = a + 1 WHERE k = 1 IF a = 1",
            "Conditions on counters are not supported")
    invalid(session, f"UPDATE {ks}.cnt SET a = a + 1 WHERE k = 1 IF EXISTS",
            "Conditional updates are not supported on counter tables")
    invalid(session, f"CREATE TABLE {ks}.mixed (k int PRIMARY KEY, a counter, v int)",
            "Cannot mix counter and non counter columns in the same table")


def test_lwt_insert_update_delete(session, tables):
    ks = tables
    r = session.execute(f"INSERT INTO {ks}.lw (k, c, v) VALUES (1, 1, 1) IF NOT EXISTS")
    assert r.was_applied and r.column_names == ["[applied]"]
    r = session.execute(f"INSERT INTO {ks}.lw (k, c, v) VALUES (1, 1, 2) IF NOT EXISTS")
    assert not r.was_applied
    assert r.column_names == ["[applied]", "k", "c", "s", "m", "u", "v"] or r.column_names == [
        "[applied]", "k", "c", "s", "u", "v", "m"]
    row = r.one()
    assert (row.k, row.c, row.v, row.s) == (1, 1, 1, None)

    r = session.execute(f"UPDATE {ks}.lw SET v = 3 WHERE k = 1 AND c = 1 IF v = 1")
    assert r.was_applied
    r = session.execute(f"UPDATE {ks}.lw SET v = 4 WHERE k = 1 AND c = 1 IF v = 1")
    assert not r.was_applied and r.column_names == ["[applied]", "v"] and r.one().v == 3
    r = session.execute(f"UPDATE {ks}.lw SET v = 4 WHERE k = 1 AND c = 1 IF v != 3")
    assert not r.was_applied
    r = session.execute(f"UPDATE {ks}.lw SET v = 5, m = {{1: 'a'}} WHERE k = 1 AND c = 1 IF v > 1 AND v IN (3, 4)")
    assert r.was_applied
    r = session.execute(f"UPDATE {ks}.lw SET v = 6 WHERE k = 1 AND c = 1 IF m[1] = 'b'")
    assert not r.was_applied and r.column_names == ["[applied]", "m"] and r.one().m == {1: "a"}
    r = session.execute(f"UPDATE {ks}.lw SET v = 6 WHERE k = 1 AND c = 1 IF m[1] = 'a'")
    assert r.was_applied
    session.execute(f"UPDATE {ks}.lw SET u = {{street: 's', num: 1}} WHERE k = 1 AND c = 1")
    r = session.execute(f"UPDATE {ks}.lw SET v = 7 WHERE k = 1 AND c = 1 IF u.num = 1")
    assert r.was_applied

    # A missing row: only [applied] comes back.
    r = session.execute(f"UPDATE {ks}.lw SET v = 4 WHERE k = 1 AND c = 2 IF EXISTS")
    assert not r.was_applied and r.column_names == ["[applied]"]
    r = session.execute(f"UPDATE {ks}.lw SET v = 4 WHERE k = 1 AND c = 2 IF v = 1")
    assert not r.was_applied and r.column_names == ["[applied]"]
    r = session.execute(f"DELETE FROM {ks}.lw WHERE k = 1 AND c = 2 IF EXISTS")
    assert not r.was_applied

    # Static column conditions with only the partition key.
    r = session.execute(f"UPDATE {ks}.lw SET s = 1 WHERE k = 1 IF s = null")
    assert r.was_applied
    r = session.execute(f"UPDATE {ks}.lw SET s = 2 WHERE k = 1 IF s = 5")
    assert not r.was_applied and r.one().s == 1

    # Prepared LWT: metadata comes with every result.
    p = session.prepare(f"UPDATE {ks}.lw SET v = ? WHERE k = ? AND c = ? IF v = ?")
    assert session.execute(p, (8, 1, 1, 7)).was_applied
    r = session.execute(p, (9, 1, 1, 7))
    assert not r.was_applied and r.one().v == 8

    r = session.execute(f"DELETE FROM {ks}.lw WHERE k = 1 AND c = 1 IF v = 8")
    assert r.was_applied
    assert session.execute(f"SELECT * FROM {ks}.lw WHERE k = 1 AND c = 1").one() is None


def test_lwt_serial_consistency(session, tables):
    from cassandra import ConsistencyLevel

    ks = tables
    stmt = SimpleStatement(
        f"INSERT INTO {ks}.lw (k, c, v) VALUES (9, 1, 1) IF NOT EXISTS",
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
    )
    assert session.execute(stmt).was_applied
    read = SimpleStatement(f"SELECT v FROM {ks}.lw WHERE k = 9 AND c = 1",
                           consistency_level=ConsistencyLevel.SERIAL)
    assert session.execute(read).one().v == 1


def test_lwt_errors(session, tables):
    ks = tables
    invalid(session, f"UPDATE {ks}.lw USING TIMESTAMP 5 SET v = 1 WHERE k = 1 AND c = 1 IF v = 1",
            "Cannot provide custom timestamp for conditional updates")
    invalid(session, f"UPDATE {ks}.lw SET v = 1 WHERE k = 1 AND c = 1 IF v < null",
            'Invalid comparison with null for operator "<"')
    invalid(session, f"UPDATE {ks}.lw SET v = 1 WHERE k IN (1, 2) AND c = 1 IF v = 1",
            "IN on the partition key is not supported with conditional updates")
    invalid(session, f"DELETE FROM {ks}.lw WHERE k = 1 IF v = 1",
            "DELETE statements must restrict all PRIMARY KEY columns with equality relations"
            " in order to delete non static columns")
    # The commit consistency of a conditional write may be anything but a serial level.
    from cassandra import ConsistencyLevel
    stmt = SimpleStatement(f"UPDATE {ks}.lw SET v = 1 WHERE k = 1 AND c = 1 IF v = 1",
                           consistency_level=ConsistencyLevel.SERIAL)
    with pytest.raises(InvalidRequest) as e:
        session.execute(stmt)
    assert "SERIAL is not supported as conditional update commit consistency" in str(e.value)


def test_conditional_batches(session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.lw (k, c, v) VALUES (2, 1, 5)")
    r = session.execute(
        f"BEGIN BATCH UPDATE {ks}.lw SET v = 7 WHERE k = 2 AND c = 1 IF v = 5; "
        f"INSERT INTO {ks}.lw (k, c, v) VALUES (2, 3, 3); APPLY BATCH"
    )
    assert r.was_applied
    r = session.execute(
        f"BEGIN BATCH UPDATE {ks}.lw SET v = 8 WHERE k = 2 AND c = 1 IF v = 5; "
        f"INSERT INTO {ks}.lw (k, c, v) VALUES (2, 4, 3); APPLY BATCH"
    )
    assert not r.was_applied
    assert r.column_names == ["[applied]", "k", "c", "v"]
    assert tuple(r.one()) == (False, 2, 1, 7)
    assert session.execute(f"SELECT * FROM {ks}.lw WHERE k = 2 AND c = 4").one() is None
    invalid(session,
            f"BEGIN BATCH UPDATE {ks}.lw SET v = 8 WHERE k = 2 AND c = 1 IF v = 5; "
            f"INSERT INTO {ks}.lw (k, c, v) VALUES (3, 4, 3); APPLY BATCH",
            "Batch with conditions cannot span multiple partitions")

    # The BATCH message, with prepared children.
    cond = session.prepare(f"UPDATE {ks}.lw SET v = ? WHERE k = ? AND c = ? IF v = ?")
    ins = session.prepare(f"INSERT INTO {ks}.lw (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS")
    batch = BatchStatement()
    batch.add(cond, (9, 2, 1, 7))
    batch.add(ins, (2, 5, 5))
    r = session.execute(batch)
    assert r.was_applied
    batch = BatchStatement()
    batch.add(cond, (10, 2, 1, 7))
    batch.add(ins, (2, 6, 6))
    r = session.execute(batch)
    assert not r.was_applied
    assert r.one().v == 9


def test_ttl_and_timestamp_edges(session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.st (k, c, v) VALUES (5, 1, 1) USING TTL 0")
    assert one(session, f"SELECT ttl(v) FROM {ks}.st WHERE k = 5 AND c = 1")[0] is None
    invalid(session, f"INSERT INTO {ks}.st (k, c, v) VALUES (5, 1, 1) USING TTL -1",
            "A TTL must be greater or equal to 0, but was -1")
    session.execute(f"INSERT INTO {ks}.st (k, c, v) VALUES (5, 2, 1) USING TIMESTAMP 1000")
    session.execute(f"INSERT INTO {ks}.st (k, c, v) VALUES (5, 2, 2) USING TIMESTAMP 999")
    assert one(session, f"SELECT v, writetime(v) FROM {ks}.st WHERE k = 5 AND c = 2") == (1, 1000)


def test_cqlsh_lwt_output(node, session, tables):
    ks = tables
    session.execute(f"INSERT INTO {ks}.lw (k, c, v) VALUES (20, 1, 1)")
    cqlsh = os.environ.get("CQLSH", os.path.join(os.path.dirname(sys.executable), "cqlsh"))
    if not os.path.exists(cqlsh):
        cqlsh = "/work/venv-warm/bin/cqlsh"
    out = subprocess.run(
        [cqlsh, node.host, str(node.port), "-e",
         f"UPDATE {ks}.lw SET v = 2 WHERE k = 20 AND c = 1 IF v = 5"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert lines[-3:] == [
        " [applied] | v",
        "-----------+---",
        "     False | 1",
    ], out.stdout + out.stderr


def test_deeply_nested_input_is_refused_not_fatal(session, tables):
    ks = tables
    deep_type = "frozen<list<" * 300 + "int" + ">>" * 300
    deep_value = "[" * 5000 + "1" + "]" * 5000
    for cql in [
        f"CREATE TABLE {ks}.deep (k int PRIMARY KEY, v {deep_type})",
        f"INSERT INTO {ks}.coll (k, l) VALUES (1, {deep_value})",
    ]:
        with pytest.raises(Exception):
            session.execute(cql)
    # The node is still serving.
    assert session.execute(f"SELECT k FROM {ks}.coll WHERE k = 1").one() is not None

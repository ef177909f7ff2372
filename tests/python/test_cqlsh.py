"""cqlsh 6.2 against the node: DDL, literals of every scalar type, DESCRIBE, system tables,
and the README's newcomer session. Expected output is what cqlsh prints against Cassandra."""

import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO, unique_keyspace

CQLSH = pathlib.Path(sys.executable).with_name("cqlsh")


@pytest.fixture(scope="module")
def home():
    # cqlsh reads ~/.cassandra/cqlshrc and writes history there; keep the user's out of it.
    with tempfile.TemporaryDirectory(prefix="cqlsh-home-") as d:
        yield d


def run_cqlsh(node, home, *args, timeout=90):
    env = dict(os.environ, HOME=home, PYTHONIOENCODING="utf-8", LANG="C.UTF-8")
    proc = subprocess.run(
        [str(CQLSH), node.host, str(node.port), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=env,
    )
    return proc


def noise(node, proc):
    """stderr lines plus warning-looking stdout lines. Cassandra 5.0 prints none; a 4.x
    reference server legitimately gets cqlsh's "built against 5.0.0" version warning."""
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    lines += [
        l for l in proc.stdout.splitlines()
        if "warning" in l.lower() or "schema version mismatch" in l.lower()
    ]
    if node.external:
        lines = [l for l in lines if "cqlsh was built against" not in l]
        # A shared reference server collects keyspaces from many runs and then warns
        # about their number on every DDL statement.
        if any("Having a large number of" in l for l in proc.stdout.splitlines()):
            lines = [l for l in lines if l.strip() != "Warnings :"]
    return lines


def ok(node, home, *args):
    proc = run_cqlsh(node, home, *args)
    assert proc.returncode == 0, f"cqlsh {args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n{node.stderr_tail()}"
    assert not noise(node, proc), f"cqlsh {args} printed noise: {noise(node, proc)}\nstdout:\n{proc.stdout}"
    if node.external:
        return "\n".join(l for l in proc.stdout.splitlines() if "cqlsh was built against" not in l)
    return proc.stdout


def cells(output):
    """Data cells of every result table in cqlsh's output, one list per table row."""
    rows, in_table = [], False
    for line in output.splitlines():
        if re.fullmatch(r"-+(\+-+)*", line.strip()):
            in_table = True
            continue
        if in_table:
            if not line.strip() or re.fullmatch(r"\(\d+ rows\)", line.strip()):
                in_table = False
                continue
            rows.append([c.strip() for c in line.split(" | ")])
    return rows


# (type, literal, what cqlsh 6.2 prints for the value read back)
SCALARS = [
    ("ascii", "'plain ascii'", "plain ascii"),
    ("text", "'héllo wörld ✓ 日本語 🦀'", "héllo wörld ✓ 日本語 🦀"),
    ("int", "-2147483648", "-2147483648"),
    ("bigint", "9223372036854775807", "9223372036854775807"),
    ("smallint", "-32768", "-32768"),
    ("tinyint", "-128", "-128"),
    ("varint", "-1606938044258990275541962092341162602522202993782792835301376",
     "-1606938044258990275541962092341162602522202993782792835301376"),
    ("float", "3.5", "3.5"),
    ("double", "-2.25", "-2.25"),
    ("float", "NaN", "NaN"),
    ("double", "-Infinity", "-Infinity"),
    ("decimal", "1.000000000000000000000000000001", "1.000000000000000000000000000001"),
    ("decimal", "-0.001", "-0.001"),
    ("boolean", "true", "True"),
    ("boolean", "false", "False"),
    ("uuid", "550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
    ("timeuuid", "50554d6e-29bb-11e5-b345-feff819cdc9f", "50554d6e-29bb-11e5-b345-feff819cdc9f"),
    ("timestamp", "'1969-07-20 20:17:40.123+0000'", "1969-07-20 20:17:40.123000+0000"),
    ("timestamp", "1700000000123", "2023-11-14 22:13:20.123000+0000"),
    ("date", "'2024-02-29'", "2024-02-29"),
    ("date", "'1969-12-31'", "1969-12-31"),
    ("time", "'23:59:59.999999999'", "23:59:59.999999999"),
    ("time", "'00:00:00'", "00:00:00.000000000"),
    ("blob", "0xdeadbeef", "0xdeadbeef"),
    ("blob", "0x", "0x"),
    ("inet", "'2001:db8::ff00:42:8329'", "2001:db8::ff00:42:8329"),
    ("inet", "'10.1.2.3'", "10.1.2.3"),
    ("duration", "1y2mo3w4d5h6m7s8ms9us10ns", "1y2mo25d5h6m7s8ms9us10ns"),
    ("duration", "-1mo2d3us", "-1mo2d3us"),
]


def test_every_scalar_type_via_literals(node, home, tmp_path):
    ks = unique_keyspace()
    types = sorted({t for t, _, _ in SCALARS})
    cols = ", ".join(f"c_{t} {t}" for t in types)
    lines = [
        f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}};",
        f"CREATE TABLE {ks}.scalars (k int PRIMARY KEY, {cols});",
    ]
    for i, (t, lit, _) in enumerate(SCALARS):
        lines.append(f"INSERT INTO {ks}.scalars (k, c_{t}) VALUES ({i}, {lit});")
    for i, (t, _, _) in enumerate(SCALARS):
        lines.append(f"SELECT c_{t} FROM {ks}.scalars WHERE k = {i};")
    # A row with only the key prints null for the other columns.
    lines.append(f"INSERT INTO {ks}.scalars (k) VALUES (1000);")
    lines.append(f"SELECT c_int, c_text FROM {ks}.scalars WHERE k = 1000;")
    script = tmp_path / "scalars.cql"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = ok(node, home, "-f", str(script))
    got = cells(out)
    want = [[printed] for _, _, printed in SCALARS] + [["null", "null"]]
    assert got == want, out


def test_ddl_and_describe(node, home):
    ks = unique_keyspace()
    ok(node, home, "-e",
       f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    ok(node, home, "-e",
       f"CREATE TABLE {ks}.readings (sensor text, at timestamp, value double, note text, "
       f"PRIMARY KEY (sensor, at)) WITH CLUSTERING ORDER BY (at DESC)")
    ok(node, home, "-e", f"CREATE TABLE {ks}.sensors (id text PRIMARY KEY, label text)")

    out = ok(node, home, "-e", "DESCRIBE KEYSPACES")
    names = out.split()
    for name in (ks, "system", "system_schema"):
        assert name in names, out

    out = ok(node, home, "-e", f"DESCRIBE KEYSPACE {ks}")
    assert f"CREATE KEYSPACE {ks} WITH replication = {{'class': '" in out, out
    assert "SimpleStrategy" in out and "'replication_factor': '1'}" in out, out
    assert f"CREATE TABLE {ks}.readings (" in out, out
    assert f"CREATE TABLE {ks}.sensors (" in out, out
    for col in ("    sensor text,", "    at timestamp,", "    value double,", "    note text,",
                "    PRIMARY KEY (sensor, at)", "    id text PRIMARY KEY,", "    label text"):
        assert col in out, f"{col!r} missing:\n{out}"
    assert "WITH CLUSTERING ORDER BY (at DESC)" in out, out
    # The keyspace comes before its tables, so the output can be replayed as a script.
    assert out.index("CREATE KEYSPACE") < out.index("CREATE TABLE"), out

    out = ok(node, home, "-e", f"DESCRIBE TABLE {ks}.readings")
    assert f"CREATE TABLE {ks}.readings (" in out and "PRIMARY KEY (sensor, at)" in out, out
    assert "CREATE TABLE" in out and f"{ks}.sensors" not in out, out

    out = ok(node, home, "-k", ks, "-e", "DESCRIBE TABLES")
    assert sorted(out.split()) == ["readings", "sensors"], out

    out = ok(node, home, "-e", "DESCRIBE CLUSTER")
    assert re.search(r"^Cluster: \S", out, re.M), out
    assert "Partitioner: Murmur3Partitioner" in out, out

    # Unknown objects are reported as errors with a non-zero exit.
    proc = run_cqlsh(node, home, "-e", f"DESCRIBE TABLE {ks}.no_such_table")
    assert proc.returncode != 0, proc.stdout
    assert "no_such_table" in proc.stderr, proc.stderr


def test_system_tables(node, home):
    out = ok(node, home, "-e", "SELECT * FROM system.local")
    assert "(1 rows)" in out, out
    header = out.splitlines()[1] if out.startswith("\n") else out.splitlines()[0]
    for col in ("key", "cluster_name", "release_version", "partitioner", "host_id", "tokens"):
        assert re.search(rf"\b{col}\b", out), f"{col} missing from system.local: {header}"
    out = ok(node, home, "-e", "SELECT release_version, cql_version FROM system.local WHERE key = 'local'")
    (release, cql), = cells(out)
    # X.Y[.Z][-suffix] with X >= 4: what drivers and cqlsh parse (Cassandra 4.0-rc1 has no .Z).
    assert re.fullmatch(r"[4-9]\.\d+(\.\d+)?([-~][\w.-]+)?", release), release
    assert re.fullmatch(r"3\.4\.\d+", cql), cql
    out = ok(node, home, "-e", "SELECT keyspace_name FROM system_schema.keyspaces")
    names = [c[0] for c in cells(out)]
    assert "system" in names and "system_schema" in names, out
    ok(node, home, "-e", "SELECT * FROM system.peers")


def test_script_file_with_errors_reports_them(node, home, tmp_path):
    ks = unique_keyspace()
    script = tmp_path / "bad.cql"
    script.write_text(
        f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}};\n"
        f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v int);\n"
        f"INSERT INTO {ks}.t (k, v) VALUES (1, 'not an int');\n"
        f"INSERT INTO {ks}.t (k, v) VALUES (2, 20);\n"
        f"SELECT k, v FROM {ks}.t;\n"
    )
    proc = run_cqlsh(node, home, "-f", str(script))
    # cqlsh reports the bad statement on stderr, goes on with the file, and exits non-zero.
    assert "InvalidRequest" in proc.stderr, proc.stderr
    assert proc.returncode != 0
    assert cells(proc.stdout) == [["2", "20"]], proc.stdout


def newcomer_session():
    """The cqlsh lines the README tells a newcomer to paste."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- newcomer-session -->")[1]
    lines = [l.strip() for l in block.splitlines() if l.strip().startswith(".venv/bin/cqlsh")]
    assert len(lines) >= 4, block
    return lines


def test_readme_newcomer_session(node, home):
    outputs = []
    suffix = unique_keyspace()[3:11]
    for line in newcomer_session():
        argv = shlex.split(line)
        assert argv[1:3] == ["127.0.0.1", "9042"], line
        args = argv[3:]
        if node.external:
            # A shared reference server may still hold the demo keyspace from an earlier run.
            args = [a.replace("demo", "demo_" + suffix) for a in args]
        outputs.append(ok(node, home, *args))
    last = outputs[-1]
    assert "(1 rows)" in last and "Ada" in last, last

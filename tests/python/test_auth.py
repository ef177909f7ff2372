"""PasswordAuthenticator + CassandraAuthorizer with the Python driver and cqlsh: SASL PLAIN
logins, roles and permissions in system_auth, Cassandra's error texts, and that roles and
grants survive a restart. Without authentication (the default), role statements fail as on
Cassandra with AllowAllAuthenticator."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest
from cassandra import AuthenticationFailed, Unauthorized
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

from conftest import ShoalNode, external_target, unique_keyspace

CQLSH = pathlib.Path(sys.executable).with_name("cqlsh")

AUTH_YAML = "authenticator: PasswordAuthenticator\nauthorizer: CassandraAuthorizer\n"


@pytest.fixture(scope="module")
def auth_node():
    if external_target():
        pytest.skip("needs a node started with PasswordAuthenticator")
    n = ShoalNode(yaml=AUTH_YAML)
    yield n
    n.stop()


def connect(node, user=None, password=None, protocol_version=None):
    kwargs = {}
    if user is not None:
        kwargs["auth_provider"] = PlainTextAuthProvider(username=user, password=password)
    if protocol_version is not None:
        kwargs["protocol_version"] = protocol_version
    cluster = Cluster(
        contact_points=[node.host],
        port=node.port,
        connect_timeout=10,
        control_connection_timeout=10,
        **kwargs,
    )
    return cluster, cluster.connect()


def restart(node):
    """SIGKILL then start again on the same data directory: only what the commit log holds
    comes back."""
    node.proc.kill()
    node.proc.wait()
    node.start()


@pytest.fixture(scope="module")
def admin(auth_node):
    cluster, session = connect(auth_node, "cassandra", "cassandra")
    yield session
    cluster.shutdown()


@pytest.fixture(scope="module")
def table(admin):
    ks = unique_keyspace()
    admin.execute(
        f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    admin.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)")
    admin.execute(f"INSERT INTO {ks}.t (k, v) VALUES (1, 'one')")
    return ks


@pytest.mark.parametrize("version", [4, 5])
def test_default_superuser_logs_in(auth_node, version):
    cluster, session = connect(auth_node, "cassandra", "cassandra", protocol_version=version)
    try:
        assert session.execute("SELECT key FROM system.local").one().key == "local"
        row = session.execute(
            "SELECT is_superuser, can_login, salted_hash FROM system_auth.roles WHERE role = 'cassandra'"
        ).one()
        assert row.is_superuser and row.can_login
        # bcrypt with Cassandra's prefix and work factor.
        assert row.salted_hash.startswith("$2a$10$")
    finally:
        cluster.shutdown()


def test_wrong_password(auth_node):
    with pytest.raises(NoHostAvailable) as e:
        connect(auth_node, "cassandra", "nope")
    (err,) = e.value.errors.values()
    assert isinstance(err, AuthenticationFailed)
    assert "Provided username cassandra and/or password are incorrect" in str(err)


def test_unknown_user(auth_node):
    with pytest.raises(NoHostAvailable) as e:
        connect(auth_node, "nobody", "x")
    assert "Provided username nobody and/or password are incorrect" in str(e.value)


def test_no_credentials(auth_node):
    with pytest.raises(NoHostAvailable) as e:
        connect(auth_node)
    (err,) = e.value.errors.values()
    assert isinstance(err, AuthenticationFailed)
    assert "Remote end requires authentication" in str(err)


def test_grant_and_revoke(auth_node, admin, table):
    ks = table
    admin.execute("CREATE ROLE reader WITH PASSWORD = 'pw1' AND LOGIN = true")
    cluster, reader = connect(auth_node, "reader", "pw1")
    try:
        # System tables clients read while connecting stay readable.
        reader.execute("SELECT * FROM system.local")
        reader.execute("SELECT * FROM system_schema.keyspaces")
        with pytest.raises(Unauthorized) as e:
            reader.execute(f"SELECT * FROM {ks}.t")
        assert f"User reader has no SELECT permission on <table {ks}.t> or any of its parents" in str(e.value)

        admin.execute(f"GRANT SELECT ON TABLE {ks}.t TO reader")
        assert reader.execute(f"SELECT v FROM {ks}.t WHERE k = 1").one().v == "one"
        with pytest.raises(Unauthorized) as e:
            reader.execute(f"INSERT INTO {ks}.t (k, v) VALUES (2, 'two')")
        assert f"User reader has no MODIFY permission on <table {ks}.t> or any of its parents" in str(e.value)

        admin.execute(f"REVOKE SELECT ON TABLE {ks}.t FROM reader")
        with pytest.raises(Unauthorized):
            reader.execute(f"SELECT * FROM {ks}.t")

        # Permissions on the keyspace cover its tables; roles inherit through GRANT role.
        admin.execute("CREATE ROLE writers")
        admin.execute(f"GRANT MODIFY ON KEYSPACE {ks} TO writers")
        admin.execute("GRANT writers TO reader")
        reader.execute(f"INSERT INTO {ks}.t (k, v) VALUES (2, 'two')")
        admin.execute("REVOKE writers FROM reader")
        with pytest.raises(Unauthorized):
            reader.execute(f"INSERT INTO {ks}.t (k, v) VALUES (3, 'three')")

        with pytest.raises(Unauthorized) as e:
            reader.execute("CREATE ROLE sneaky")
        assert "User reader does not have sufficient privileges to perform the requested operation" in str(e.value)
        with pytest.raises(Unauthorized) as e:
            reader.execute(
                "CREATE KEYSPACE nope WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
            )
        assert "User reader has no CREATE permission on <all keyspaces> or any of its parents" in str(e.value)
    finally:
        cluster.shutdown()


def test_list_roles_and_permissions(admin, table):
    ks = table
    admin.execute("CREATE ROLE IF NOT EXISTS lister WITH PASSWORD = 'pw' AND LOGIN = true")
    admin.execute("CREATE ROLE IF NOT EXISTS group1")
    admin.execute("GRANT group1 TO lister")
    admin.execute(f"GRANT SELECT ON KEYSPACE {ks} TO group1")

    rows = {r.role: r for r in admin.execute("LIST ROLES")}
    assert list(admin.execute("LIST ROLES").column_names) == ["role", "super", "login", "options", "datacenters"]
    assert rows["cassandra"].super and rows["cassandra"].login
    assert not rows["lister"].super and rows["lister"].login
    assert not rows["group1"].login
    assert sorted(r.role for r in admin.execute("LIST ROLES OF lister")) == ["group1", "lister"]

    perms = [tuple(r) for r in admin.execute("LIST ALL PERMISSIONS OF lister")]
    assert perms == [("group1", "group1", f"<keyspace {ks}>", "SELECT")]
    assert [tuple(r) for r in admin.execute(f"LIST SELECT ON TABLE {ks}.t OF lister")] == perms
    assert list(admin.execute(f"LIST SELECT ON TABLE {ks}.t OF lister NORECURSIVE")) == []
    # The creator of a role may alter, drop and grant it.
    creator = [tuple(r) for r in admin.execute("LIST ALL PERMISSIONS ON ROLE lister")]
    assert creator == [
        ("cassandra", "cassandra", "<role lister>", p) for p in ("ALTER", "DROP", "AUTHORIZE")
    ]

    users = {r.name: r for r in admin.execute("LIST USERS")}
    assert "lister" in users and "group1" not in users
    assert users["cassandra"].super


def test_creator_owns_what_it_creates(auth_node, admin):
    admin.execute("CREATE ROLE builder WITH PASSWORD = 'pw' AND LOGIN = true")
    admin.execute("GRANT CREATE ON ALL KEYSPACES TO builder")
    ks = unique_keyspace()
    cluster, s = connect(auth_node, "builder", "pw")
    try:
        s.execute(
            f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        s.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY)")
        s.execute(f"INSERT INTO {ks}.t (k) VALUES (1)")
        assert s.execute(f"SELECT k FROM {ks}.t").one().k == 1
        on_ks = {r.permission for r in admin.execute(f"LIST ALL PERMISSIONS ON KEYSPACE {ks} OF builder NORECURSIVE")}
        assert on_ks == {"CREATE", "ALTER", "DROP", "SELECT", "MODIFY", "AUTHORIZE"}
        s.execute(f"DROP KEYSPACE {ks}")
    finally:
        cluster.shutdown()
    # Dropping the keyspace took its grants (and its tables') with it.
    left = [r.resource for r in admin.execute("LIST ALL PERMISSIONS OF builder")]
    assert left == ["<all keyspaces>"]


def test_role_statement_errors(admin):
    with pytest.raises(Exception, match="cassandra already exists"):
        admin.execute("CREATE ROLE cassandra")
    with pytest.raises(Exception, match="ghost doesn't exist"):
        admin.execute("DROP ROLE ghost")
    admin.execute("DROP ROLE IF EXISTS ghost")
    with pytest.raises(Exception, match="Cannot DROP primary role for current login"):
        admin.execute("DROP ROLE cassandra")
    with pytest.raises(Exception, match="doesn't support OPTIONS"):
        admin.execute("CREATE ROLE withopts WITH OPTIONS = {'a': 'b'}")


def test_roles_and_grants_survive_restart(auth_node, admin, table):
    ks = table
    admin.execute("CREATE ROLE durable WITH PASSWORD = 'pw2' AND LOGIN = true")
    admin.execute(f"GRANT SELECT ON KEYSPACE {ks} TO durable")
    admin.execute("ALTER ROLE durable WITH PASSWORD = 'pw3'")
    restart(auth_node)
    cluster, s = connect(auth_node, "durable", "pw3")
    try:
        assert s.execute(f"SELECT v FROM {ks}.t WHERE k = 1").one().v == "one"
    finally:
        cluster.shutdown()
    with pytest.raises(NoHostAvailable):
        connect(auth_node, "durable", "pw2")


def test_cqlsh_with_credentials(auth_node):
    with tempfile.TemporaryDirectory(prefix="cqlsh-home-") as home:
        env = dict(os.environ, HOME=home, PYTHONIOENCODING="utf-8", LANG="C.UTF-8")
        ok = subprocess.run(
            [str(CQLSH), auth_node.host, str(auth_node.port), "-u", "cassandra", "-p", "cassandra",
             "-e", "LIST ROLES"],
            capture_output=True, text=True, timeout=90, env=env,
        )
        assert ok.returncode == 0, ok.stderr
        cells = [[c.strip() for c in line.split("|")] for line in ok.stdout.splitlines() if "|" in line]
        assert cells[0] == ["role", "super", "login", "options", "datacenters"], ok.stdout
        assert ["cassandra", "True", "True", "{}", "ALL"] in cells, ok.stdout
        bad = subprocess.run(
            [str(CQLSH), auth_node.host, str(auth_node.port), "-u", "cassandra", "-p", "bad",
             "-e", "LIST ROLES"],
            capture_output=True, text=True, timeout=90, env=env,
        )
        assert bad.returncode != 0
        assert "Provided username cassandra and/or password are incorrect" in bad.stdout + bad.stderr


def test_role_statements_without_authentication(node):
    """AllowAllAuthenticator: sessions are anonymous, as on Cassandra."""
    cluster = Cluster(contact_points=[node.host], port=node.port, connect_timeout=10)
    try:
        session = cluster.connect()
        with pytest.raises(Unauthorized, match="You have to be logged in and not anonymous"):
            session.execute("LIST ROLES")
        with pytest.raises(Exception, match="CassandraRoleManager doesn't support PASSWORD"):
            session.execute("CREATE ROLE r WITH PASSWORD = 'x'")
    finally:
        cluster.shutdown()

"""Start a real `shoal` node per test module, the same way the Rust harness does.

Each node gets its own 127.X.Y.Z address with the default ports, so modules never fight
over ports. `SHOAL_TEST_TARGET=HOST:PORT` points every module at an already-running server
(e.g. Apache Cassandra) instead, to check the suite against the reference implementation.
"""

import itertools
import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CQL_PORT = 9042
START_TIMEOUT = 30.0

_counter = itertools.count()
_build_lock = threading.Lock()


def external_target():
    target = os.environ.get("SHOAL_TEST_TARGET", "").strip()
    if not target:
        return None
    host, _, port = target.rpartition(":")
    return host, int(port)


def shoal_bin():
    if os.environ.get("SHOAL_BIN"):
        path = pathlib.Path(os.environ["SHOAL_BIN"])
        assert path.is_file(), f"SHOAL_BIN={path} does not exist"
        return path
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "debug" / "shoal"
    with _build_lock:
        if not path.is_file():
            subprocess.run(
                ["cargo", "build", "-p", "shoal-node", "--bin", "shoal"], cwd=REPO, check=True
            )
    return path


def allocate_address():
    """A free 127.X.Y.Z; X, Y from the pid (X in 100..199), Z counts nodes in this process.
    Y is offset by 128 so pytest's addresses differ from the Rust tests' for the same pid."""
    pid = os.getpid()
    x = 100 + pid % 100
    y = (pid // 100 + 128) % 256
    while True:
        n = next(_counter)
        assert n < 254 * 4, "ran out of loopback addresses"
        ip = f"127.{x}.{(y + n // 254) % 256}.{n % 254 + 1}"
        with socket.socket() as s:
            try:
                s.bind((ip, CQL_PORT))
            except OSError:
                continue
        return ip


def unique_keyspace():
    return "ks_" + uuid.uuid4().hex[:16]


class ShoalNode:
    def __init__(self, yaml=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="shoal-pytest-")
        self.dir = pathlib.Path(self.tmp.name)
        self.host = allocate_address()
        self.port = CQL_PORT
        self.external = False
        self.stderr_path = self.dir / "stderr.log"
        self.args = [
            str(shoal_bin()),
            "--data-dir", str(self.dir / "data"),
            "--listen-address", self.host,
            "--rpc-address", self.host,
            "--cql-port", str(CQL_PORT),
            "--storage-port", "7000",
            "--admin-port", "8080",
        ]
        if yaml is not None:
            cfg = self.dir / "shoal.yaml"
            cfg.write_text(yaml)
            self.args += ["--config", str(cfg)]
        self.proc = None
        self.start()

    def start(self):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        started = time.monotonic()
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    self.ready_after = time.monotonic() - started
                    return
            except OSError:
                pass
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"shoal exited with {code} before accepting CQL\n{self.stderr_tail()}"
                )
            if time.monotonic() - started > START_TIMEOUT:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(
                    f"shoal not accepting CQL on {self.host}:{self.port} after "
                    f"{START_TIMEOUT}s\n{self.stderr_tail()}"
                )
            time.sleep(0.01)

    def stderr_tail(self, lines=60):
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr captured)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()


class ExternalNode:
    def __init__(self, host, port):
        self.host, self.port, self.external = host, port, True

    def stderr_tail(self, lines=60):
        return "(external server: no stderr)"

    def stop(self):
        pass


def start_node(yaml=None):
    target = external_target()
    if target:
        return ExternalNode(*target)
    return ShoalNode(yaml=yaml)


@pytest.fixture(scope="module")
def node():
    n = start_node()
    yield n
    n.stop()

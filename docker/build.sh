#!/usr/bin/env bash
# Builds a statically linked `shoal` and the image `shoal:dev` (FROM scratch).
#
#   docker/build.sh                 # binary + image
#   SHOAL_IMAGE=shoal:x docker/build.sh
#   docker/build.sh --binary-only   # just target/x86_64-unknown-linux-gnu/release/shoal
#
# Static glibc, not musl: no musl target can be installed on this project's machines. The
# explicit --target keeps RUSTFLAGS off build scripts and proc macros (they must stay
# dynamic to be loaded by the host rustc). Static glibc cannot load NSS modules, so the
# binary must not rely on getaddrinfo for anything that matters: seed names go through the
# in-process resolver (hickory, /etc/resolv.conf); see docker/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
IMAGE=${SHOAL_IMAGE:-shoal:dev}
TARGET=x86_64-unknown-linux-gnu
BIN=$ROOT/target/$TARGET/release/shoal

echo "==> cargo build --release --target $TARGET (static)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
CARGO_PROFILE_RELEASE_DEBUG=0 \
CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --target "$TARGET" -p shoal-node --bin shoal

if ldd "$BIN" 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then
    echo "==> $BIN is statically linked ($(du -h "$BIN" | cut -f1))"
else
    echo "ERROR: $BIN is dynamically linked:" >&2
    ldd "$BIN" >&2 || true
    exit 1
fi

if [[ ${1:-} == --binary-only ]]; then
    exit 0
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/rootfs/etc" "$CTX/rootfs/tmp" "$CTX/data"
chmod 1777 "$CTX/rootfs/tmp"
cp "$BIN" "$CTX/rootfs/shoal"
cat > "$CTX/rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
shoal:x:999:999:shoal:/var/lib/shoal:/sbin/nologin
PASSWD
cat > "$CTX/rootfs/etc/group" <<'GROUP'
root:x:0:
shoal:x:999:
GROUP
cp docker/Dockerfile "$CTX/Dockerfile"

echo "==> docker build -t $IMAGE"
docker build --quiet -t "$IMAGE" "$CTX" >/dev/null
size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
echo "==> $IMAGE: $((size / 1024 / 1024)) MiB"
if (( size >= 30 * 1024 * 1024 )); then
    echo "ERROR: image is $size bytes, the budget is 30 MiB" >&2
    exit 1
fi

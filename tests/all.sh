#!/usr/bin/env bash
# Runs every test of spin-redis on a fresh Debian machine: installs what is
# missing (redis-server, clang + wasi-libc, rustup targets; each example's
# toolchain through examples/build.sh), builds every example handler from
# source, then runs the whole test suite against real redis-servers that the
# tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v clang >/dev/null || need_apt+=(clang lld wasi-libc libclang-rt-14-dev-wasm32)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "tests/all.sh: installing ${need_apt[*]}" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null

bash examples/build.sh
bash tests/guests/build.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line over every test binary (cargo prints one per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

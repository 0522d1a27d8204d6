#!/usr/bin/env bash
# Builds tests/guests/rust-host-quotas/rust-host-quotas.wasm, a WASI
# preview2 component exporting the seed world's `handle-redis-message` and
# importing Spin host APIs (outbound Redis, key-value, HTTP), with cargo for wasm32-wasip2 (added with rustup
# if missing). This is a standalone Cargo project (its own empty [workspace],
# its Cargo.lock); its target/ stays in this folder.
set -euo pipefail
cd "$(dirname "$0")"

command -v cargo >/dev/null || { echo "build.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }
if ! rustc --print target-libdir --target wasm32-wasip2 >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print target-libdir --target wasm32-wasip2)" ]; then
    command -v rustup >/dev/null || { echo "build.sh: the wasm32-wasip2 target is missing and rustup is not available" >&2; exit 1; }
    echo "build.sh: rustup target add wasm32-wasip2" >&2
    rustup target add wasm32-wasip2
fi

# Fast path: nothing changed since the last build.
out=rust-host-quotas.wasm
if [ -f "$out" ] && [ -z "$(find src Cargo.toml Cargo.lock build.sh wit ../../../wit/spin/fermyon-spin ../../../wit/spin/fermyon-spin@2.0.0 -newer "$out")" ]; then
    echo "build.sh: tests/guests/rust-host-quotas/$out is up to date"
    exit 0
fi

CARGO_TARGET_DIR="$(pwd)/target" cargo build --release --locked --target wasm32-wasip2 --quiet
cp target/wasm32-wasip2/release/rust_host_quotas.wasm "$out.tmp"
mv "$out.tmp" "$out"
echo "build.sh: built tests/guests/rust-host-quotas/$out ($(wc -c < "$out") bytes)"

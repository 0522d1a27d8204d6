#!/usr/bin/env bash
# Builds examples/rust-wasip1/handler.wasm, a WASI preview1 core module, with
# cargo for the wasm32-wasip1 target (added with rustup if missing). This is a
# standalone Cargo project (its own empty [workspace]); it builds into .cache/wasm-target.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
    echo "build.sh: cargo is missing: install Rust with rustup first" >&2
    exit 1
fi
if ! rustc --print target-libdir --target wasm32-wasip1 >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print target-libdir --target wasm32-wasip1)" ]; then
    if ! command -v rustup >/dev/null 2>&1; then
        echo "build.sh: the wasm32-wasip1 target is missing and rustup is not available" >&2
        exit 1
    fi
    echo "build.sh: rustup target add wasm32-wasip1" >&2
    rustup target add wasm32-wasip1
fi

# Fast path: nothing changed since the last build.
if [ -f handler.wasm ] && [ -z "$(find src Cargo.toml build.sh -newer handler.wasm)" ] \
    && { [ ! -f Cargo.lock ] || [ ! Cargo.lock -nt handler.wasm ]; }; then
    echo "build.sh: examples/rust-wasip1/handler.wasm is up to date"
    exit 0
fi

# Every Rust guest of the repository builds into one target folder,
# .cache/wasm-target (ignored), so the crates they share (wit-bindgen,
# serde, the Spin SDKs' dependencies) are compiled once, not per guest.
wasm_target="$(cd ../.. && pwd)/.cache/wasm-target"
CARGO_TARGET_DIR="$wasm_target" cargo build --release --target wasm32-wasip1 --quiet
cp "$wasm_target"/wasm32-wasip1/release/rust-greet.wasm handler.wasm.tmp
mv handler.wasm.tmp handler.wasm
echo "build.sh: built examples/rust-wasip1/handler.wasm ($(wc -c < handler.wasm) bytes)"

#!/usr/bin/env bash
# Build the example into ./handler.wasm (a WASI preview2 component).
set -euo pipefail
cd "$(dirname "$0")"

command -v cargo >/dev/null || { echo "build.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

# Every Rust guest of the repository builds into one target folder,
# .cache/wasm-target (ignored), so the crates they share (wit-bindgen,
# serde, the Spin SDKs' dependencies) are compiled once, not per guest.
wasm_target="$(cd ../.. && pwd)/.cache/wasm-target"
CARGO_TARGET_DIR="$wasm_target" cargo build --release --target wasm32-wasip2
cp "$wasm_target"/wasm32-wasip2/release/spin_sdk7_rust_example.wasm handler.wasm
echo "built $(pwd)/handler.wasm ($(wc -c <handler.wasm) bytes)"

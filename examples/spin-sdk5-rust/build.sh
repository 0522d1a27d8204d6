#!/usr/bin/env bash
# Build the example into ./handler.wasm (a WASI preview2 component).
set -euo pipefail
cd "$(dirname "$0")"

command -v cargo >/dev/null || { echo "build.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

# The build stays in this folder even when the caller exports its own
# CARGO_TARGET_DIR (what follows reads target/).
CARGO_TARGET_DIR="$(pwd)/target" cargo build --release --target wasm32-wasip2
cp target/wasm32-wasip2/release/spin_sdk5_rust_example.wasm handler.wasm
echo "built $(pwd)/handler.wasm ($(wc -c <handler.wasm) bytes)"

#!/usr/bin/env bash
# Builds examples/rust-wasip1/handler.wasm, a WASI preview1 core module, with
# cargo for the wasm32-wasip1 target (added with rustup if missing); see
# ../lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
build_rust_guest wasm32-wasip1 rust-greet handler.wasm

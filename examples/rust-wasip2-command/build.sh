#!/usr/bin/env bash
# Builds examples/rust-wasip2-command/handler.wasm, a WASI 0.2 command
# component, with cargo for the wasm32-wasip2 target (added with rustup if
# missing); see ../lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
build_rust_guest wasm32-wasip2 rust-wc2 handler.wasm

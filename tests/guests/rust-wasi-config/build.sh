#!/usr/bin/env bash
# Builds tests/guests/rust-wasi-config/rust-wasi-config.wasm, a WASI preview2 component
# exporting the seed world's `handle-redis-message` and importing
# wasi:config/store,
# with cargo for wasm32-wasip2; see examples/lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../../../examples/lib/toolchain.sh
source ../../../examples/lib/toolchain.sh
build_rust_guest wasm32-wasip2 rust_wasi_config rust-wasi-config.wasm wit ../../../wit/spin/wasi-config@0.2.0-draft-2024-09-27

#!/usr/bin/env bash
# Builds examples/spin-sdk5-rust/handler.wasm, a WASI preview2 component
# built with Spin SDK 5; see ../lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
build_rust_guest wasm32-wasip2 spin_sdk5_rust_example handler.wasm

#!/usr/bin/env bash
# Builds examples/spin-sdk2-rust/handler.wasm: a WASI preview1 *core module*
# carrying component-type metadata, as Spin 2 and 3 apps were built
# (spin-redis makes it a component when it loads it, as Spin does); see
# ../lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
build_rust_guest wasm32-wasip1 spin_sdk2_rust_example handler.wasm

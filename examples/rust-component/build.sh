#!/usr/bin/env bash
# Builds examples/rust-component/handler.wasm, a WASI preview2 component for
# the seed interface wit/spin-redis.wit; see ../lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
build_rust_guest wasm32-wasip2 rust_component_example handler.wasm ../../wit/spin-redis.wit

#!/usr/bin/env bash
# Builds tests/guests/rust-env-component/rust-env-component.wasm, a WASI preview2 component
# exporting the seed world's `handle-redis-message` (the spin executor's kind),
# with cargo for wasm32-wasip2; see examples/lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../../../examples/lib/toolchain.sh
source ../../../examples/lib/toolchain.sh
build_rust_guest wasm32-wasip2 rust_env_component rust-env-component.wasm ../../../wit/spin-redis.wit

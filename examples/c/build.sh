#!/usr/bin/env bash
# Builds examples/c/handler.wasm (a WASI preview1 core module) with Debian's
# clang and wasi-libc. Installs them with apt-get if clang is missing.
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=../lib/toolchain.sh
source ../lib/toolchain.sh
ensure_c_toolchain

# Fast path: nothing changed since the last build.
if up_to_date handler.wasm shout.c payload.h build.sh; then
    echo "build.sh: examples/c/handler.wasm is up to date"
    exit 0
fi

"$CC" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all -o handler.wasm.tmp shout.c
mv handler.wasm.tmp handler.wasm
echo "build.sh: built examples/c/handler.wasm ($(wc -c < handler.wasm) bytes)"

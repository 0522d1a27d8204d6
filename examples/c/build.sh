#!/usr/bin/env bash
# Builds examples/c/handler.wasm (a WASI preview1 core module) with Debian's
# clang and wasi-libc. Installs them with apt-get if clang is missing.
set -euo pipefail
cd "$(dirname "$0")"

CC=${CC:-clang}
toolchain_ok() {
    command -v "$CC" >/dev/null 2>&1 &&
        echo 'int main(void) { return 0; }' |
        "$CC" --target=wasm32-wasi -x c - -o /dev/null >/dev/null 2>&1
}
if ! toolchain_ok; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: clang with wasi-libc is missing and apt-get is not available" >&2
        exit 1
    fi
    echo "build.sh: installing clang, lld, wasi-libc and the wasm32 compiler-rt" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        clang lld wasi-libc libclang-rt-14-dev-wasm32
    if ! toolchain_ok; then
        echo "build.sh: $CC still cannot build for wasm32-wasi after installing" >&2
        exit 1
    fi
fi

# Fast path: nothing changed since the last build.
if [ handler.wasm -nt shout.c ] && [ handler.wasm -nt build.sh ]; then
    echo "build.sh: examples/c/handler.wasm is up to date"
    exit 0
fi

"$CC" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all -o handler.wasm.tmp shout.c
mv handler.wasm.tmp handler.wasm
echo "build.sh: built examples/c/handler.wasm ($(wc -c < handler.wasm) bytes)"

#!/usr/bin/env bash
# Builds tests/guests/c-sleep/c-sleep.wasm, a WASI preview1 command module (the compat
# executor's kind), from sleep.c with Debian's clang and wasi-libc; installs them
# with apt-get if clang cannot build for wasm32-wasi (see ../c-toolchain.sh).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../c-toolchain.sh
source ../c-toolchain.sh
build_c_guest c-sleep sleep.c ../../../examples/c/payload.h

# Sourced by the C guests' build.sh (tests/guests/c-*/build.sh): makes sure
# Debian's clang can build for wasm32-wasi, installing clang, lld, wasi-libc
# and the wasm32 compiler-rt with apt-get when it cannot (the same logic as
# examples/c/build.sh), then builds one C file into <name>/<name>.wasm.
#
#   build_c_guest <name> <source.c>     (run from the guest's folder)

CC=${CC:-clang}
c_toolchain_ok() {
    command -v "$CC" >/dev/null 2>&1 &&
        echo 'int main(void) { return 0; }' |
        "$CC" --target=wasm32-wasi -x c - -o /dev/null >/dev/null 2>&1
}

ensure_c_toolchain() {
    c_toolchain_ok && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: clang with wasi-libc is missing and apt-get is not available" >&2
        exit 1
    fi
    echo "build.sh: installing clang, lld, wasi-libc and the wasm32 compiler-rt" >&2
    local SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        clang lld wasi-libc libclang-rt-14-dev-wasm32
    if ! c_toolchain_ok; then
        echo "build.sh: $CC still cannot build for wasm32-wasi after installing" >&2
        exit 1
    fi
}

build_c_guest() {
    local name=$1 src=$2 helper
    helper="$(dirname "${BASH_SOURCE[0]}")/c-toolchain.sh"
    ensure_c_toolchain
    # Fast path: nothing changed since the last build.
    if [ "$name.wasm" -nt "$src" ] && [ "$name.wasm" -nt build.sh ] && [ "$name.wasm" -nt "$helper" ]; then
        echo "build.sh: tests/guests/$name/$name.wasm is up to date"
        return 0
    fi
    "$CC" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all -o "$name.wasm.tmp" "$src"
    mv "$name.wasm.tmp" "$name.wasm"
    echo "build.sh: built tests/guests/$name/$name.wasm ($(wc -c < "$name.wasm") bytes)"
}

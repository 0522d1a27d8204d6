# Sourced by the C guests' build.sh (tests/guests/c-*/build.sh): makes sure
# Debian's clang can build for wasm32-wasi (ensure_c_toolchain in
# examples/lib/toolchain.sh, which examples/c/build.sh uses too), then builds
# one C file into <name>/<name>.wasm.
#
#   build_c_guest <name> <source.c> [header...]   (run from the guest's folder;
#                                                   headers it includes)

# shellcheck source=../../examples/lib/toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../examples/lib/toolchain.sh"

build_c_guest() {
    local name=$1 src=$2 helper
    shift 2
    helper="$(dirname "${BASH_SOURCE[0]}")/c-toolchain.sh"
    ensure_c_toolchain
    # Fast path: nothing changed since the last build.
    if up_to_date "$name.wasm" "$src" "$@" build.sh "$helper"; then
        echo "build.sh: tests/guests/$name/$name.wasm is up to date"
        return 0
    fi
    "$CC" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all -o "$name.wasm.tmp" "$src"
    mv "$name.wasm.tmp" "$name.wasm"
    echo "build.sh: built tests/guests/$name/$name.wasm ($(wc -c < "$name.wasm") bytes)"
}

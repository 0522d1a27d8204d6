#!/usr/bin/env bash
# Builds every adversarial test guest from source: runs each
# tests/guests/*/build.sh, which installs its own toolchain (apt, PyPI,
# rustup) into ignored project folders on first use, and writes
# tests/guests/<name>/<name>.wasm. tests/adversarial.rs runs them. A missing
# toolchain is an error, never a skip.
#
#   bash tests/guests/build.sh                  # all guests
#   bash tests/guests/build.sh c-sleep go-sleep # only these folders
set -euo pipefail
# shellcheck source=../../examples/lib/toolchain.sh
source "$(dirname "$0")/../../examples/lib/toolchain.sh"
build_each tests/guests "$@"

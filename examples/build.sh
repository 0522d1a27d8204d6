#!/usr/bin/env bash
# Builds every example handler from source: runs each examples/*/build.sh,
# which installs its own toolchain (apt, npm, PyPI, rustup) into ignored
# project folders on first use. A missing toolchain is an error, never a skip.
#
#   bash examples/build.sh            # all examples
#   bash examples/build.sh c python   # only these folders
set -euo pipefail
# shellcheck source=lib/toolchain.sh
source "$(dirname "$0")/lib/toolchain.sh"
build_each examples "$@"

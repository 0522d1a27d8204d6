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
cd "$(dirname "$0")"
if [ $# -gt 0 ]; then names=("$@"); else
    names=()
    for f in */build.sh; do names+=("${f%/build.sh}"); done
fi
for name in "${names[@]}"; do
    echo "== tests/guests/$name" >&2
    start=$(date +%s)
    bash "$name/build.sh"
    echo "== tests/guests/$name built in $(( $(date +%s) - start ))s" >&2
done

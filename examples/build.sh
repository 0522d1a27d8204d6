#!/usr/bin/env bash
# Builds every example handler from source: runs each examples/*/build.sh,
# which installs its own toolchain (apt, npm, PyPI, rustup) into ignored
# project folders on first use. A missing toolchain is an error, never a skip.
#
#   bash examples/build.sh            # all examples
#   bash examples/build.sh c python   # only these folders
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -gt 0 ]; then names=("$@"); else
    names=()
    for f in */build.sh; do names+=("${f%/build.sh}"); done
fi
for name in "${names[@]}"; do
    echo "== examples/$name" >&2
    start=$(date +%s)
    bash "$name/build.sh"
    echo "== examples/$name built in $(( $(date +%s) - start ))s" >&2
done

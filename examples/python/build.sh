#!/usr/bin/env bash
# Build the example into ./handler.wasm with componentize-py and the Python Spin SDK.
set -euo pipefail
cd "$(dirname "$0")"

repo="$(git rev-parse --show-toplevel)"
# One venv per world: componentize-py merges the WIT of every installed package that ships WIT.
venv="$repo/.cache/py-venv/redis-trigger"
pins=(componentize-py==0.25.1 spin-sdk==5.0.0)

command -v python3 >/dev/null || { echo "build.sh: python3 not found" >&2; exit 1; }
installed="$("$venv/bin/pip" freeze --disable-pip-version-check 2>/dev/null || true)"
for pin in "${pins[@]}"; do
    if ! grep -qx "$pin" <<<"$installed"; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --disable-pip-version-check -q "${pins[@]}"
        break
    fi
done

# componentize-py takes ~15 s even for a tiny app: skip it when nothing changed.
if [ handler.wasm -nt app.py ] && [ handler.wasm -nt build.sh ] && [ handler.wasm -nt "$venv/bin/componentize-py" ]; then
    echo "handler.wasm is up to date ($(wc -c <handler.wasm) bytes)"
    exit 0
fi
# componentize-py finds the Spin SDK's WIT and Python code through the active venv.
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1
componentize-py -w fermyon:spin/redis-trigger componentize app -o handler.tmp.wasm
mv handler.tmp.wasm handler.wasm
echo "built $(pwd)/handler.wasm ($(wc -c <handler.wasm) bytes)"

"""spin-redis example: a Python Redis component built with componentize-py.

Targets Spin's world `fermyon:spin/redis-trigger`, so the component exports
the unversioned `fermyon:spin/inbound-redis` interface. componentize-py looks
for a class named after the exported interface (`FermyonSpinInboundRedis`,
because the Spin SDK's bindings use full names) in this module.

Each payload is parsed as JSON and summarised in one line on stdout. A payload
that is not UTF-8 JSON prints one line to stderr and fails the message.
"""

import json
import os
import sys

from componentize_py_types import Err
from spin_sdk.wit import exports
from spin_sdk.wit.imports.fermyon_spin_redis_types import Error


def summarize(value) -> str:
    """One line describing a parsed JSON value."""
    if isinstance(value, dict):
        keys = ", ".join(sorted(value)) or "-"
        return f"object with {len(value)} key{'' if len(value) == 1 else 's'}: {keys}"
    if isinstance(value, list):
        return f"array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if value is None:
        return "null"
    return f"number {value}"


class FermyonSpinInboundRedis(exports.FermyonSpinInboundRedis):
    def handle_message(self, message: bytes) -> None:
        channel = os.environ.get("REDIS_CHANNEL", "?")
        try:
            value = json.loads(message.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            print(f"invalid JSON on {channel} ({len(message)} bytes): {e}", file=sys.stderr, flush=True)
            # An `Err` is returned to the host as `err(error::error)`; any other
            # exception would trap the component instead.
            raise Err(Error.ERROR)
        # Flush: the instance is dropped after this call, and a pipe is block-buffered.
        print(f"json on {channel}: {summarize(value)}", flush=True)

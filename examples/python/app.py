"""spin-redis example: a Python Redis component built with componentize-py.

Targets Spin's world `fermyon:spin/redis-trigger`, so the component exports
the unversioned `fermyon:spin/inbound-redis` interface. componentize-py looks
for a class named after the exported interface (`FermyonSpinInboundRedis`,
because the Spin SDK's bindings use full names) in this module.

Each payload is parsed as JSON and summarised in one line on stdout. Then the
handler uses Spin's host APIs of that world (the unversioned `fermyon:spin`
interfaces; the SDK's high-level `spin_sdk.redis`, `spin_sdk.key_value` and
`spin_sdk.variables` modules wrap the async 3.0.0 interfaces of the
`spin:up/redis-trigger@4.1.0` world instead):
- `fermyon:spin/config`: the Redis address, the channel to publish on and an
  optional webhook, from the component's `[component.config]`;
- `fermyon:spin/redis`: `INCR summary:events`, and `PUBLISH` of the summary;
- `fermyon:spin/key-value`: the count of events per JSON type in the
  default store;
- `fermyon:spin/http`: when the `webhook` variable is set, the summary is
  POSTed to it.

A payload that is not UTF-8 JSON prints one line to stderr and fails the
message; so does a host API call that fails.
"""

import json
import os
import sys

from componentize_py_types import Err
from spin_sdk.wit import exports
from spin_sdk.wit.imports import fermyon_spin_config as config
from spin_sdk.wit.imports import fermyon_spin_http as http
from spin_sdk.wit.imports import fermyon_spin_http_types as http_types
from spin_sdk.wit.imports import fermyon_spin_key_value as key_value
from spin_sdk.wit.imports import fermyon_spin_redis as redis
from spin_sdk.wit.imports.fermyon_spin_redis_types import Error


def kind(value) -> str:
    """The JSON type of a parsed value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


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


def count(key: str) -> int:
    """Counts one more `key` in the default key-value store."""
    store = key_value.open("default")
    try:
        try:
            n = int(key_value.get(store, key)) + 1
        except Err as e:
            if not isinstance(e.value, key_value.Error_NoSuchKey):
                raise
            n = 1
        key_value.set(store, key, str(n).encode())
        return n
    finally:
        key_value.close(store)


def describe(e: Exception) -> str:
    """An error from a host API call, readable."""
    if isinstance(e, Err):
        return f"{type(e.value).__name__} {e.value}"
    return f"{type(e).__name__}: {e}"


def handle(channel: str, message: bytes) -> None:
    try:
        value = json.loads(message.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        print(f"invalid JSON on {channel} ({len(message)} bytes): {e}", file=sys.stderr, flush=True)
        raise InvalidJson() from e
    summary = summarize(value)
    # Flush: the instance is dropped after this call, and a pipe is block-buffered.
    print(f"json on {channel}: {summary}", flush=True)

    address = config.get_config("redis_address")
    results = config.get_config("results_channel")
    n = redis.incr(address, "summary:events")
    redis.publish(address, results, summary.encode())
    seen = count(f"events:{kind(value)}")
    print(f"event {n}, {seen} of type {kind(value)}; published to {results}", flush=True)

    webhook = config.get_config("webhook")
    if webhook:
        request = http_types.Request(
            http_types.Method.POST, webhook, [("content-type", "text/plain")], [], summary.encode()
        )
        response = http.send_request(request)
        print(f"webhook answered {response.status}", flush=True)


class InvalidJson(Exception):
    """The payload is not UTF-8 JSON (already reported on stderr)."""


class FermyonSpinInboundRedis(exports.FermyonSpinInboundRedis):
    def handle_message(self, message: bytes) -> None:
        channel = os.environ.get("REDIS_CHANNEL", "?")
        try:
            handle(channel, message)
        except InvalidJson:
            # An `Err` is returned to the host as `err(error::error)`; any other
            # exception would trap the component instead.
            raise Err(Error.ERROR)
        except Err as e:
            print(f"a host API call failed on {channel}: {describe(e)}", file=sys.stderr, flush=True)
            raise Err(Error.ERROR)

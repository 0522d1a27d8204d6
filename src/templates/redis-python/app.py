"""A Redis message handler for spin-redis, written in Python.

componentize-py builds this module into a component for Spin's world
`fermyon:spin/redis-trigger`: it looks for a class named after the exported
interface, `FermyonSpinInboundRedis`.
"""

from spin_sdk.wit import exports


class FermyonSpinInboundRedis(exports.FermyonSpinInboundRedis):
    def handle_message(self, message: bytes) -> None:
        """Runs once for every message published on the channel: prints its
        payload (spin-redis writes a component's stdout to its log and the
        terminal). Raising `componentize_py_types.Err` fails the message."""
        # Flush: the instance ends with the message, and stdout is a pipe.
        print(message.decode("utf-8", errors="replace"), flush=True)

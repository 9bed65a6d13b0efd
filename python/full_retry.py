"""Retrying a send of the real tachyon package while its ring is full, for a bounded time.

Upstream consumers publish their tail only every 32 messages, so against a Python peer "full"
can last forever when the ring is smaller than about 33 slots of the largest message; hence the
bound rather than an endless retry. Shared by rpc_caller.py and rpc_callee.py.
"""

import time

import tachyon

FULL_RETRY_S = 5.0


def retry_while_full(send):
    """Call ``send()`` until it does not raise "full", for at most FULL_RETRY_S seconds.

    A dead peer (``tachyon.PeerDeadError``) is raised at once; after the bound the last
    ``tachyon.TachyonError`` is raised.
    """
    deadline = None
    while True:
        try:
            return send()
        except tachyon.PeerDeadError:
            raise
        except tachyon.TachyonError:
            now = time.monotonic()
            deadline = deadline or now + FULL_RETRY_S
            if now >= deadline:
                raise
            time.sleep(0.0001)

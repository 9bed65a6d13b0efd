"""RPC callee on the real tachyon-ipc package (for testing a Rust caller).

Listens with ``RpcBus.rpc_listen`` (blocks until the caller connects) and answers every
request with its payload and msg_type + 1. A request of msg_type 0 is answered the same
way, after which the script exits.

``RpcBus.reply`` refuses an empty payload (``ValueError``: it reserves len(payload) bytes
and the binding refuses a 0-byte reservation), so by default an empty request (which a Rust
caller may send) is answered with the 1-byte payload ``b"\\0"``. ``--empty-reply`` answers
it with a true empty reply instead, by reserving 1 byte (``max_payload_size=1``) and
committing 0; the dispatcher cannot do that on its own (a handler returning b"" makes
``serve_once`` raise ``ValueError`` and leaves the caller waiting), only via the wrapper.

``--failing-type T``: requests of msg_type T get the dispatcher's error reply instead:
msg_type 0xFFFF, payload ``struct.pack("!H", T)`` (2 bytes, big endian).

Plain mode: ``serve()`` / ``reply()`` in a loop.

``--dispatcher``: an ``RpcDispatcher`` with one handler per msg_type 0..1000 (and T),
driven by ``serve_once`` in a loop (``serve_forever`` cannot be stopped). The handler for
T raises ``ValueError``; the dispatcher then sends the error reply itself. Upstream's
dispatcher always replies with the *request's* msg_type (a handler returns only bytes),
so ``serve_once`` is given a thin bus wrapper whose ``reply`` adds 1 to every non-error
msg_type; ``--native-reply-type`` drops the wrapper to expose upstream's behaviour.

The last stdout line is JSON: {"served": N, "errors": E}; N counts every request answered
(the msg_type 0 one and error replies included), E the 0xFFFF replies. Exit 3 when the
reply ring stays full for 5 s.
"""

import argparse
import json
import struct
import sys
import time

import tachyon
from full_retry import FULL_RETRY_S, retry_while_full

LAST_DISPATCHED_TYPE = 1000


def error_payload(msg_type):
    """The dispatcher's error payload: the failing msg_type, u16 big endian."""
    return struct.pack("!H", msg_type & 0xFFFF)


def reply_retrying(bus, cid, payload, msg_type, max_payload_size=None):
    """``RpcBus.reply``, retried for a few seconds while the rev ring is full.

    An empty payload is sent by reserving 1 byte (the binding refuses 0-byte reservations).

    Upstream consumers publish their tail only every 32 messages, so "full" lasts forever
    against a Python caller when the ring is smaller than about 32 slots of the largest
    reply; hence the bound.
    """
    if not payload:
        max_payload_size = max(1, max_payload_size or 0)
    return retry_while_full(lambda: bus.reply(cid, payload, msg_type, max_payload_size))


def serve_plain(bus, failing_type, empty):
    """serve() / reply() until msg_type 0 has been answered; return (served, errors)."""
    serve = bus.serve
    served = errors = 0
    while True:
        with serve() as rx:
            cid = rx.correlation_id
            msg_type = rx.type_id
            payload = bytes(rx) if rx.actual_size else empty
        if msg_type == failing_type:
            reply_retrying(bus, cid, error_payload(msg_type), tachyon.MSG_TYPE_ERROR)
            errors += 1
        else:
            # Mask: a msg_type above 0xFFFF would spill into the route bits of type_id.
            reply_retrying(bus, cid, payload, (msg_type + 1) & 0xFFFF)
        served += 1
        if msg_type == 0:
            return served, errors


class PlusOneReplies:
    """The two RpcBus methods ``RpcDispatcher.serve_once`` uses, replying with msg_type + 1.

    Error replies (0xFFFF) pass through unchanged. Replies also go through
    ``reply_retrying``.
    """

    __slots__ = ("_bus",)

    def __init__(self, bus):
        self._bus = bus

    def serve(self, spin_threshold=10000):
        return self._bus.serve(spin_threshold=spin_threshold)

    def reply(self, correlation_id, payload, msg_type, max_payload_size=None):
        if msg_type != tachyon.MSG_TYPE_ERROR:
            msg_type = (msg_type + 1) & 0xFFFF
        reply_retrying(self._bus, correlation_id, payload, msg_type, max_payload_size)


def build_dispatcher(failing_type, on_stop, empty):
    """Handlers for msg_types 0..1000 (and failing_type): echo, raise, or echo and stop."""
    dispatcher = tachyon.RpcDispatcher()

    def echo(mv):
        # The memoryview dies with the request slot: return a copy. b"" only reaches the
        # wire through PlusOneReplies (upstream's own reply refuses it).
        return mv.tobytes() or empty

    def fail(mv):
        raise ValueError(f"failing msg_type {failing_type} (--failing-type)")

    def stop(mv):
        on_stop()  # the dispatcher replies after we return; the serve loop then ends
        return echo(mv)

    types = set(range(LAST_DISPATCHED_TYPE + 1))
    if failing_type is not None:
        types.add(failing_type)
    for msg_type in sorted(types):
        fn = fail if msg_type == failing_type else stop if msg_type == 0 else echo
        dispatcher.handler(msg_type)(fn)
    return dispatcher


def serve_dispatcher(bus, failing_type, native_reply_type, empty):
    """serve_once until msg_type 0 has been answered; return (served, errors)."""
    stopped = []
    dispatcher = build_dispatcher(failing_type, lambda: stopped.append(True), empty)
    target = bus if native_reply_type else PlusOneReplies(bus)
    serve_once = dispatcher.serve_once
    served = errors = 0
    while not stopped:
        try:
            serve_once(target)
        except (KeyError, RuntimeError):
            # KeyError: no handler; RuntimeError: the handler raised. Both are raised
            # after the 0xFFFF reply has been sent.
            errors += 1
        served += 1
    return served, errors


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", default="/tmp/tachyon_rpc.sock")
    p.add_argument("--cap-fwd", type=int, default=1 << 20, metavar="BYTES",
                   help="request ring capacity (a power of two)")
    p.add_argument("--cap-rev", type=int, default=1 << 20, metavar="BYTES",
                   help="reply ring capacity (a power of two)")
    p.add_argument("--dispatcher", action="store_true", help="serve through tachyon.RpcDispatcher")
    p.add_argument("--native-reply-type", action="store_true",
                   help="dispatcher mode: reply with the request msg_type, as upstream does")
    p.add_argument("--empty-reply", action="store_true",
                   help='answer an empty request with an empty reply instead of b"\\0"')
    p.add_argument("--failing-type", type=int, metavar="T",
                   help="answer msg_type T with the 0xFFFF error reply (dispatcher: its handler raises)")
    args = p.parse_args()
    if args.failing_type is not None and not 1 <= args.failing_type < tachyon.MSG_TYPE_ERROR:
        p.error("--failing-type must be in 1..65534 (0 stops the callee)")
    if args.empty_reply and args.native_reply_type:
        p.error("--empty-reply needs the reply wrapper, which --native-reply-type removes")
    empty = b"" if args.empty_reply else b"\0"

    with tachyon.RpcBus.rpc_listen(args.socket, args.cap_fwd, args.cap_rev) as bus:
        start = time.perf_counter()
        try:
            if args.dispatcher:
                served, errors = serve_dispatcher(bus, args.failing_type, args.native_reply_type,
                                                  empty)
            else:
                served, errors = serve_plain(bus, args.failing_type, empty)
        except tachyon.PeerDeadError:
            raise
        except tachyon.TachyonError:
            print(f"rpc_callee: reply ring full for {FULL_RETRY_S:g} s (a Python caller publishes "
                  "its tail only every 32 replies: use a larger --cap-rev)", file=sys.stderr)
            return 3
        elapsed = time.perf_counter() - start

    rate = served / elapsed if elapsed > 0 else 0.0
    print(f"rpc_callee: {served} requests in {elapsed:.3f} s = {rate:,.0f} req/s, "
          f"{errors} error replies", file=sys.stderr)
    print(json.dumps({"served": served, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

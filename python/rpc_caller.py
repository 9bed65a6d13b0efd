"""RPC caller on the real tachyon-ipc package (for testing a Rust callee).

Connects with ``RpcBus.rpc_connect`` (retrying until ``--connect-timeout``), then makes
``--count`` calls one at a time: call i has msg_type ``1 + i % 1000`` and payload byte j
equal to ``(i*31 + j) % 256``; sizes are uniform in ``--sizes`` drawn from
``random.Random(--seed)``. The package refuses empty payloads (``ValueError`` from
``call``), so sizes below 1 are an error.

Each reply must carry the call's correlation id, msg_type + 1 and the request payload.
The id check is done by the package itself: ``wait(cid)`` that reads a reply with another
id puts the rev ring in fatal error and raises ``PeerDeadError``; that is counted as one
bad reply and ends the run, as does a request ring that stays full for 5 s.

With ``--expect-error-type T``, calls of msg_type T must be answered with the dispatcher's
error reply (msg_type 0xFFFF, payload ``struct.pack("!H", T)``); they are then counted in
``error_replies`` instead of ``bad``.

After the N calls, one call of msg_type 0 with the 1-byte payload ``b"\\0"`` tells the
callee to answer and exit; its reply is awaited but not counted.

The last stdout line is JSON: calls (made), bad, elapsed_s, calls_per_s (plus
error_replies with --expect-error-type). Exit 0 only when bad == 0.
"""

import argparse
import json
import random
import struct
import sys
import time

import tachyon
from full_retry import FULL_RETRY_S, retry_while_full



def open_bus(args):
    """Connect, retrying until --connect-timeout expires (rpc_connect fails at once)."""
    deadline = time.monotonic() + args.connect_timeout
    while True:
        try:
            return tachyon.RpcBus.rpc_connect(args.socket)
        except ConnectionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def parse_sizes(text):
    """Return (min, max) payload size from MIN..MAX (or a single N)."""
    lo, _, hi = text.partition("..")
    lo, hi = int(lo), int(hi or lo)
    if not 1 <= lo <= hi:
        raise SystemExit(f"rpc_caller: bad size range {lo}..{hi} (the package refuses empty payloads)")
    return lo, hi


def parse_sizes_any(text):
    """Return (first, last) of a FROM..TO sweep, either direction, both >= 1."""
    first, _, last = text.partition("..")
    first, last = int(first), int(last or first)
    if min(first, last) < 1:
        raise SystemExit(f"rpc_caller: bad sweep {text} (the package refuses empty payloads)")
    return first, last


def call_retrying(bus, payload, msg_type):
    """``bus.call``, retried for a few seconds while the fwd ring is full.

    Upstream consumers publish their tail only every 32 messages, so with one call in
    flight "full" can last forever against a Python callee when the ring is smaller
    than about 32 slots of the largest size; hence the bound.
    """
    return retry_while_full(lambda: bus.call(payload, msg_type))


def run(bus, args):
    """Make all calls; return (calls made, bad, error replies, bus still usable)."""
    if args.sweep:
        first, last = parse_sizes_any(args.sweep)
        span, step = abs(last - first) + 1, (1 if last >= first else -1)
        size_of = lambda i: first + step * (i % span)  # noqa: E731
        hi = max(first, last)
    else:
        lo, hi = parse_sizes(args.sizes)
        draw = random.Random(args.seed).randint
        size_of = lambda i: draw(lo, hi)  # noqa: E731
    pattern = bytes(range(256)) * (hi // 256 + 2)
    error_type = args.expect_error_type
    # As rpc_decorator._encode_error: the failing msg_type, u16 big endian.
    error_payload = struct.pack("!H", error_type) if error_type is not None else None
    wait = bus.wait
    bad = errors = 0
    for i in range(args.count):
        size = size_of(i)
        off = (i * 31) & 255
        msg_type = 1 + i % 1000
        try:
            cid = call_retrying(bus, pattern[off:off + size], msg_type)
        except tachyon.PeerDeadError as e:
            print(f"rpc_caller: call {i}: {e}", file=sys.stderr)
            return i, bad + 1, errors, False
        except tachyon.TachyonError:
            print(f"rpc_caller: call {i}: request ring full for {FULL_RETRY_S:g} s (an upstream "
                  "callee publishes its tail only every 32 requests: use a larger --cap-fwd)",
                  file=sys.stderr)
            return i, bad + 1, errors, False
        try:
            with wait(cid) as rx:
                if msg_type == error_type:
                    ok = (rx.type_id == tachyon.MSG_TYPE_ERROR and bytes(rx) == error_payload)
                    errors += ok
                else:
                    # The id check is the package's own (wait raises on a reply of another
                    # id; rx.correlation_id only echoes wait's argument, so it proves
                    # nothing). bytes.startswith(buffer, start) compares in place: no copy.
                    ok = (rx.type_id == msg_type + 1
                          and rx.actual_size == size and pattern.startswith(rx, off))
        except tachyon.PeerDeadError as e:
            print(f"rpc_caller: call {i} (cid {cid}): {e}", file=sys.stderr)
            return i + 1, bad + 1, errors, False
        if not ok:
            bad += 1
            if bad <= 10:
                print(f"rpc_caller: bad reply to call {i} (cid {cid}, msg_type {msg_type}, "
                      f"size {size})", file=sys.stderr)
    return args.count, bad, errors, True


def finish(bus):
    """Send the msg_type 0 call that makes the callee exit, wait for its reply, and return
    whether it was the echo expected (msg_type 1, the one byte back)."""
    cid = call_retrying(bus, b"\0", 0)
    with bus.wait(cid) as rx:
        if rx.type_id != 1 or bytes(rx) != b"\0":
            print(f"rpc_caller: bad reply to the stop call: msg_type {rx.type_id}, "
                  f"{rx.actual_size} bytes", file=sys.stderr)
            return False
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", default="/tmp/tachyon_rpc.sock")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--sizes", default="1..1024", metavar="MIN..MAX",
                   help="uniform random payload sizes, seeded by --seed (MIN >= 1)")
    p.add_argument("--sweep", metavar="FROM..TO",
                   help="sizes FROM, FROM+-1, ..., TO in turn instead of --sizes")
    p.add_argument("--no-final", action="store_true",
                   help="skip the msg_type 0 call (a callee that cannot take more is stopped by the test)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--expect-error-type", type=int, metavar="T",
                   help="calls of msg_type T must get the 0xFFFF error reply (callee --failing-type T)")
    args = p.parse_args()
    parse_sizes(args.sizes)  # fail before connecting

    with open_bus(args) as bus:
        start = time.perf_counter()
        calls, bad, errors, alive = run(bus, args)
        elapsed = time.perf_counter() - start
        if alive and not args.no_final and not finish(bus):
            bad += 1

    rate = calls / elapsed if elapsed > 0 else 0.0
    print(f"rpc_caller: {calls} calls in {elapsed:.3f} s = {rate:,.0f} calls/s, {bad} bad",
          file=sys.stderr)
    result = {"calls": calls, "bad": bad, "elapsed_s": round(elapsed, 6),
              "calls_per_s": round(rate, 1)}
    if args.expect_error_type is not None:
        result["error_replies"] = errors
    print(json.dumps(result))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

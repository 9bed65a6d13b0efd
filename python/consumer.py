"""Consumer on the real tachyon-ipc package (the Rust -> Python direction).

Reads with ``Bus.drain_batch`` (blocks with spin then futex, GIL released)
until the type-0 sentinel, validating every message inside the batch guard.

pattern mode: message i (sentinel excluded) must have type_id ``1 + i % 1000``
and payload byte j equal to ``(i*31 + j) % 256``. Last stdout line:
{"received": N, "bytes": B, "bad": K}; exit 0 only when K == 0.

ticks mode: decodes MarketTick (``<8sdIQ4x``, 32 bytes) and counts type 1
(bid), type 2 (ask) and anything else. Last stdout line:
{"received": N, "bids": b, "asks": a, "other": o}.
"""

import argparse
import json
import os
import signal
import struct
import sys
import time

import tachyon

TICK = struct.Struct("<8sdIQ4x")


def open_bus(args):
    """Listen, or connect with retries until --connect-timeout expires."""
    if args.listen:
        return tachyon.Bus.listen(args.socket, args.capacity)
    deadline = time.monotonic() + args.connect_timeout
    while True:
        try:
            return tachyon.Bus.connect(args.socket)
        except ConnectionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def consume_pattern(bus, expect=None, die_after=None):
    """Check the test pattern; return (received, bytes, bad).

    Stops at the sentinel, or after ``expect`` messages when given (for a stream whose last
    message fills the ring, after which upstream's consumer can free no space for a sentinel).
    """
    pattern = bytes(range(256)) * 16
    drain = bus.drain_batch
    i = nbytes = bad = 0
    while True:
        with drain() as batch:
            for msg in batch:
                type_id = msg.type_id
                if type_id == 0:
                    return i, nbytes, bad + (msg.actual_size != 0)
                n = msg.actual_size
                if n + 256 > len(pattern):
                    pattern = bytes(range(256)) * (n // 256 + 2)
                # bytes.startswith(buffer, start) compares in place: no copy.
                if type_id != 1 + i % 1000 or not pattern.startswith(msg, (i * 31) & 255):
                    bad += 1
                nbytes += n
                i += 1
                if i == expect:
                    return i, nbytes, bad
                if i == die_after:
                    os.kill(os.getpid(), signal.SIGKILL)


def consume_ticks(bus):
    """Decode ticks; return (received, bids, asks, other)."""
    unpack_from = TICK.unpack_from
    size = TICK.size
    drain = bus.drain_batch
    bids = asks = other = 0
    while True:
        with drain() as batch:
            for msg in batch:
                type_id = msg.type_id
                if type_id == 0:
                    return bids + asks + other, bids, asks, other
                if msg.actual_size != size:
                    other += 1
                    continue
                unpack_from(msg)  # decode in place, inside the guard
                if type_id == 1:
                    bids += 1
                elif type_id == 2:
                    asks += 1
                else:
                    other += 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", default="/tmp/tachyon_market.sock")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--listen", action="store_true", help="create the ring and wait for the producer (default)")
    role.add_argument("--connect", action="store_true", help="connect to a listening producer")
    p.add_argument("--capacity", type=int, default=1 << 20, metavar="BYTES")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--mode", choices=("ticks", "pattern"), default="pattern")
    p.add_argument("--die-after", type=int, metavar="N",
                   help="pattern mode: SIGKILL this process after N messages (peer-death tests)")
    p.add_argument("--expect", type=int, metavar="N",
                   help="pattern mode: stop after N messages instead of at the sentinel")
    args = p.parse_args()
    args.listen = not args.connect

    with open_bus(args) as bus:
        start = time.perf_counter()
        if args.mode == "pattern":
            received, nbytes, bad = consume_pattern(bus, args.expect, args.die_after)
            result = {"received": received, "bytes": nbytes, "bad": bad}
        else:
            received, bids, asks, other = consume_ticks(bus)
            bad = 0
            result = {"received": received, "bids": bids, "asks": asks, "other": other}
        elapsed = time.perf_counter() - start

    rate = received / elapsed if elapsed > 0 else 0.0
    print(f"consumer: {received} msgs in {elapsed:.3f} s = {rate:,.0f} msg/s", file=sys.stderr)
    print(json.dumps(result))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

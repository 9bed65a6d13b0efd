"""The real tachyon-ipc 0.5.1 (pip, import ``tachyon``) at either end of the bridge.

``produce``: connect to a listening ``tachyon-bridge out`` and send messages 0..N.
``consume``: connect to a listening ``tachyon-bridge in``, check messages 0..N byte for byte
and in order, print one JSON line with what was seen.

The pattern is the one tests/support/mod.rs computes (size, type id, payload of message i).
"""

import argparse
import json
import sys
import time

import tachyon

SOURCE = bytes(range(256)) * 18


def size_of(i, minimum):
    return minimum + (i * 2654435761) % (4097 - minimum)


def type_id_of(i):
    r = i % 8
    if r == 0:
        return 0
    if r == 1:
        return 0xFFFF0000
    if r == 2:
        return 0x0000FFFF
    return (i * 2246822519) & 0xFFFFFFFF


def payload_of(i, minimum):
    size = size_of(i, minimum)
    offset = (i * 31) & 255
    payload = SOURCE[offset:offset + size]
    if size >= 8:
        payload = i.to_bytes(8, "little") + payload[8:]
    return payload


def connect(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return tachyon.Bus.connect(path)
        except Exception:  # nobody listening yet: upstream fails at once, so retry
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def produce(args):
    bus = connect(args.socket, args.connect_timeout)
    full = 0
    for i in range(args.count):
        payload = payload_of(i, args.min)
        type_id = type_id_of(i)
        while True:
            try:
                bus.send(payload, type_id=type_id)
                break
            except tachyon.TachyonError:  # full: upstream never waits
                full += 1
                time.sleep(0.0002)
    print(json.dumps({"sent": args.count, "full": full}), flush=True)


def consume(args):
    bus = connect(args.socket, args.connect_timeout)
    i = nbytes = 0
    while i < args.count:
        with bus.drain_batch() as batch:
            for msg in batch:
                data = bytes(msg)
                if msg.type_id != type_id_of(i) or data != payload_of(i, args.min):
                    print(json.dumps({"error": f"message {i}: type id {msg.type_id:#x}, "
                                      f"{len(data)} bytes, expected {type_id_of(i):#x}, "
                                      f"{size_of(i, args.min)} bytes", "received": i}), flush=True)
                    sys.exit(1)
                nbytes += len(data)
                i += 1
    print(json.dumps({"received": i, "bytes": nbytes}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("produce", "consume"))
    p.add_argument("--socket", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--min", type=int, default=0)
    p.add_argument("--connect-timeout", type=float, default=30.0)
    args = p.parse_args()
    (produce if args.mode == "produce" else consume)(args)


if __name__ == "__main__":
    main()

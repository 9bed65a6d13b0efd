"""Idle CPU of a blocked receive: tachyon_rs's ``Bus.recv_zero_copy(timeout=N)`` against the
Rust ``Consumer::recv_timeout`` it wraps, each on a ring whose producer (another process) is
connected and sends nothing.

Each trial reads this process's (or the Rust example's) CPU time, every thread included
(``getrusage(RUSAGE_SELF)``), before and after one receive that waits ``--seconds`` and times
out, and prints the CPU as a percentage of one core, with the voluntary context switches per
second. Trials alternate between the two; the last line is JSON with every trial.

    cargo build --release -p tachyon-python --example idle_cpu
    .venv/bin/python crates/python/bench/idle_cpu.py --seconds 5 --trials 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tachyon_rs

REPO = Path(__file__).resolve().parents[3]
RUST_EXAMPLE = REPO / "target" / "release" / "examples" / "idle_cpu"

# The idle peers: each connects, says so, and holds the bus until its stdin closes.
PRODUCER = """
import sys, tachyon_rs
bus = tachyon_rs.Bus.connect(sys.argv[1], timeout=10)
print("connected", flush=True)
sys.stdin.read()
"""
RPC_CALLER = """
import sys, tachyon_rs
caller = tachyon_rs.RpcBus.rpc_connect(sys.argv[1], timeout=10)
print("connected", flush=True)
sys.stdin.read()
"""


def idle_peer(path: str, code: str = PRODUCER) -> subprocess.Popen:
    peer = subprocess.Popen(
        [sys.executable, "-c", code, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if peer.stdout.readline().strip() != "connected":
        raise RuntimeError("the idle peer did not connect")
    return peer


def idle_trial(path: str, seconds: float, listen, peer_code: str, wait) -> dict:
    """Listens with ``listen(path)`` (in a thread), connects an idle peer running
    ``peer_code``, then measures one ``wait(end, seconds)`` in this process, on its main
    thread, which must time out."""
    box = {}
    listener = threading.Thread(target=lambda: box.setdefault("end", listen(path)))
    listener.start()
    while not os.path.exists(path):
        time.sleep(0.01)
    peer = idle_peer(path, peer_code)
    listener.join()
    end = box["end"]
    try:
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        try:
            wait(end, seconds)
            raise RuntimeError("something arrived on the idle bus")
        except tachyon_rs.WaitTimeoutError:
            pass
        wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF)
    finally:
        peer.stdin.close()
        peer.wait()
        end.__exit__(None, None, None)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "voluntary_switches": after.ru_nvcsw - before.ru_nvcsw}


def python_trial(path: str, seconds: float) -> dict:
    """One idle ``Bus.recv_zero_copy(timeout=seconds)``."""
    return idle_trial(
        path,
        seconds,
        lambda p: tachyon_rs.Bus.listen(p, 1 << 16),
        PRODUCER,
        lambda bus, t: bus.recv_zero_copy(timeout=t),
    )


def rpc_trial(path: str, seconds: float) -> dict:
    """One idle ``RpcBus.serve(timeout=seconds)``, a caller connected that makes no call."""
    return idle_trial(
        path,
        seconds,
        lambda p: tachyon_rs.RpcBus.rpc_listen(p, 1 << 16, 1 << 16),
        RPC_CALLER,
        lambda callee, t: callee.serve(timeout=t),
    )


def rust_trial(path: str, seconds: float) -> dict:
    """One idle ``Consumer::recv_timeout`` in the Rust example (see examples/idle_cpu.rs)."""
    consumer = subprocess.Popen(
        [str(RUST_EXAMPLE), path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    while not os.path.exists(path):
        if consumer.poll() is not None:
            raise RuntimeError("the Rust example exited before listening")
        time.sleep(0.01)
    producer = idle_peer(path)
    out, _ = consumer.communicate(timeout=seconds + 30)
    producer.stdin.close()
    producer.wait()
    if consumer.returncode != 0:
        raise RuntimeError(f"the Rust example failed: {out}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    if not RUST_EXAMPLE.exists():
        sys.exit(
            f"{RUST_EXAMPLE} missing: cargo build --release -p tachyon-python --example idle_cpu"
        )
    cases = (
        ("tachyon_rs recv_zero_copy(timeout)", python_trial),
        ("tachyon_rs RpcBus.serve(timeout)", rpc_trial),
        ("Rust Consumer::recv_timeout", rust_trial),
    )
    results = {name: [] for name, _ in cases}
    folder = tempfile.mkdtemp(prefix="idle-cpu-", dir="/tmp")
    try:
        for trial in range(args.trials):
            for name, run in cases:
                path = os.path.join(folder, f"{trial}-{len(results[name])}.sock")
                result = run(path, args.seconds)
                results[name].append(result)
                print(
                    f"{name:36} {result['wall_s']:6.2f} s idle: "
                    f"CPU {100 * result['cpu_s'] / result['wall_s']:6.3f} % of a core, "
                    f"{result['voluntary_switches'] / result['wall_s']:7.1f} switches/s",
                    flush=True,
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        json.dumps({"seconds": args.seconds, "tachyon_rs": tachyon_rs.__file__, "trials": results})
    )


if __name__ == "__main__":
    main()

"""Side-by-side benchmarks of tachyon_rs (ours) against the real tachyon-ipc 0.5.1 (theirs).

Runs alternate ours/theirs in pairs within one run; each figure is the median of the per-pair
ratios (ours / theirs), with the medians of the raw rates beside it.

1. ``producer``: the seed's producer (python/producer.py: ``send_zero_copy`` per tick,
   ``time.time_ns()`` stamps, raw ``flush`` every 64), unchanged but for its import line
   (``import tachyon_rs as tachyon`` for ours), into ``tachyon-consumer --json``. Rate: the
   producer's own msgs/s. Both run with the script's ``--retry-full`` (a loaded machine can let
   the consumer fall behind, and both packages raise "full" rather than wait).
2. ``batch``: ours only, ``Bus.send_batch`` of a numpy array of MarketTicks (one type id per
   record) into ``tachyon-consumer``; the seed's figure for its producer is 1.06 M ticks/s.
   ``burst``: 400,000 ticks in one call into a 64 MiB ring (room for all: the producer's own
   rate, as the seed measures it); ``sustained``: 5,000,000 ticks through the default 1 MiB
   ring, which the consumer paces; ``rust``: the crate's Rust producer example through the
   same ring into the same consumer, the consumer's ceiling on this machine; ``idle``: the
   producer alone, 200,000 ticks in one call into a 32 MiB ring whose consumer (in the same
   process) is not reading, so no other process competes for the CPU or the cache lines.
3. ``echo``: a Python RPC echo round trip, python/rpc_caller.py against python/rpc_callee.py,
   both ends on the same package, 32-byte payloads; calls/s.

Usage: .venv/bin/python python/bench_python.py [--pairs N] [--count N] [--out DIR]
Needs target/release/tachyon-consumer and tachyon_rs installed (``./just wheel`` + pip).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "python"
CONSUMER = ROOT / "target" / "release" / "tachyon-consumer"
RUST_PRODUCER = ROOT / "target" / "release" / "examples" / "producer"
PYTHON = sys.executable

BATCH_CODE = r"""
import json, sys, time
import numpy as np
import tachyon_rs as tachyon
sock, count, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tick = np.dtype([("symbol", "S8"), ("price", "<f8"), ("qty", "<u4"), ("ts", "<u8"), ("pad", "V4")])
ticks = np.zeros(chunk, dtype=tick)
ticks["symbol"] = b"BTCUSDT"
ticks["price"] = 65000.0 + (np.arange(chunk) % 100) * 0.5
ticks["qty"] = 1 + np.arange(chunk) % 1000
types = (1 + np.arange(chunk) % 2).astype(np.uint32)
deadline = time.monotonic() + 10
while True:
    try:
        bus = tachyon.Bus.connect(sock)
        break
    except ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.02)
with bus:
    start = time.perf_counter()
    sent = 0
    while sent < count:
        ticks["ts"] = time.time_ns()
        sent += bus.send_batch(ticks, 32, types)
    elapsed = time.perf_counter() - start
    bus.send(b"", 0, timeout=10)
print(json.dumps({"sent": sent, "elapsed_s": elapsed, "msgs_per_s": sent / elapsed}))
"""


def swapped(name, folder):
    """python/<name> with only its ``import tachyon`` line swapped for tachyon_rs."""
    for script in (name, "full_retry.py"):
        text = (SCRIPTS / script).read_text()
        assert "\nimport tachyon\n" in text
        (folder / script).write_text(text.replace("\nimport tachyon\n", "\nimport tachyon_rs as tachyon\n", 1))
    return folder / name


def run(cmds, timeout=300):
    """Start the commands in order (the first listens), return their last JSON lines."""
    procs = []
    for cmd in cmds:
        procs.append(subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(0.05)
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {proc.args} failed ({proc.returncode}):\n{err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def producer_run(script, sock, count):
    consumer, producer = run([[CONSUMER, "--socket", sock, "--json"],
                              [PYTHON, script, "--socket", sock, "--count", count, "--retry-full"]])
    assert consumer["received"] == count, consumer
    return producer["msgs_per_s"]


def batch_run(sock, count, chunk, capacity=1 << 20):
    consumer, producer = run([[CONSUMER, "--socket", sock, "--json", "--capacity", capacity],
                              [PYTHON, "-c", BATCH_CODE, sock, count, chunk]])
    assert consumer["received"] == producer["sent"] and consumer["malformed"] == 0, consumer
    return producer["msgs_per_s"], consumer["msgs_per_s"]


IDLE_CODE = r"""
import json, sys, threading, time
import numpy as np
import tachyon_rs as tachyon
sock = sys.argv[1]
box = {}
listener = threading.Thread(target=lambda: box.setdefault("rx", tachyon.Bus.listen(sock, 1 << 25)))
listener.start()
tx = tachyon.Bus.connect(sock, timeout=10)
listener.join()
ticks = np.zeros(200_000, dtype=[("symbol", "S8"), ("price", "<f8"), ("qty", "<u4"), ("ts", "<u8"), ("pad", "V4")])
types = (1 + np.arange(200_000) % 2).astype(np.uint32)
start = time.perf_counter()
sent = tx.send_batch(ticks, 32, types, timeout=10)
elapsed = time.perf_counter() - start
print(json.dumps({"sent": sent, "msgs_per_s": sent / elapsed}))
"""


def idle_run(sock):
    (result,) = run([[PYTHON, "-c", IDLE_CODE, sock]])
    assert result["sent"] == 200_000, result
    return result["msgs_per_s"]


def rust_run(sock, count):
    consumer, producer = run([[CONSUMER, "--socket", sock, "--json"],
                              [RUST_PRODUCER, "--socket", sock, "--count", count, "--size", 32]])
    assert consumer["received"] == count, consumer
    return producer["msgs_per_s"], consumer["msgs_per_s"]


def echo_run(caller, callee, sock, count):
    _, calls = run([[PYTHON, callee, "--socket", sock],
                    [PYTHON, caller, "--socket", sock, "--count", count, "--sizes", "32"]])
    assert calls["bad"] == 0, calls
    return calls["calls_per_s"]


def median_ratio(ours, theirs):
    return statistics.median(o / t for o, t in zip(ours, theirs))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--count", type=int, default=500_000, help="ticks per producer run (the seed's 500,000)")
    p.add_argument("--batch-count", type=int, default=5_000_000, help="ticks per sustained batch run")
    p.add_argument("--calls", type=int, default=50_000)
    p.add_argument("--out", default=str(ROOT / "target" / "python-bench"))
    args = p.parse_args()
    if not CONSUMER.is_file() or not RUST_PRODUCER.is_file():
        raise SystemExit("bench: build first: cargo build --release -p tachyon-consumer -p tachyon-ring --example producer")
    import tachyon  # noqa: F401  the real package must be there
    import tachyon_rs  # noqa: F401

    folder = Path(tempfile.mkdtemp(prefix="trs-bench-", dir="/tmp"))
    sock = str(folder / "s.sock")
    ours_dir = folder / "ours"
    ours_dir.mkdir()
    ours_producer = swapped("producer.py", ours_dir)
    ours_caller, ours_callee = swapped("rpc_caller.py", ours_dir), swapped("rpc_callee.py", ours_dir)

    rates = {"producer": ([], []), "echo": ([], []), "burst": [], "sustained": [], "rust": [], "idle": []}
    for i in range(args.pairs):
        order = [("ours", 0), ("theirs", 1)] if i % 2 == 0 else [("theirs", 1), ("ours", 0)]
        for who, k in order:
            script = ours_producer if who == "ours" else SCRIPTS / "producer.py"
            rates["producer"][k].append(producer_run(script, sock, args.count))
            caller, callee = ((ours_caller, ours_callee) if who == "ours"
                              else (SCRIPTS / "rpc_caller.py", SCRIPTS / "rpc_callee.py"))
            rates["echo"][k].append(echo_run(caller, callee, sock, args.calls))
        rates["burst"].append(batch_run(sock, 400_000, 400_000, capacity=1 << 26))
        rates["sustained"].append(batch_run(sock, args.batch_count, 65536))
        rates["rust"].append(rust_run(sock, args.batch_count))
        rates["idle"].append(idle_run(sock))
        print(f"bench: pair {i + 1}/{args.pairs}: producer ours {rates['producer'][0][-1]:,.0f} "
              f"theirs {rates['producer'][1][-1]:,.0f} msg/s; echo ours {rates['echo'][0][-1]:,.0f} "
              f"theirs {rates['echo'][1][-1]:,.0f} calls/s; batch burst {rates['burst'][-1][0]:,.0f} "
              f"sustained {rates['sustained'][-1][0]:,.0f} ticks/s (Rust producer {rates['rust'][-1][0]:,.0f}), "
              f"idle {rates['idle'][-1]:,.0f}",
              file=sys.stderr)

    med = statistics.median
    summary = {
        "pairs": args.pairs,
        "producer": {"ours_msgs_per_s": med(rates["producer"][0]), "theirs_msgs_per_s": med(rates["producer"][1]),
                     "ratio": median_ratio(*rates["producer"]), "count": args.count},
        "echo": {"ours_calls_per_s": med(rates["echo"][0]), "theirs_calls_per_s": med(rates["echo"][1]),
                 "ratio": median_ratio(*rates["echo"]), "calls": args.calls,
                 "ours_round_trip_us": 1e6 / med(rates["echo"][0]),
                 "theirs_round_trip_us": 1e6 / med(rates["echo"][1])},
        "batch": {"burst_ticks_per_s": med(r[0] for r in rates["burst"]),
                  "sustained_ticks_per_s": med(r[0] for r in rates["sustained"]),
                  "rust_producer_msgs_per_s": med(r[0] for r in rates["rust"]),
                  "idle_ticks_per_s": med(rates["idle"]),
                  "sustained_vs_rust": median_ratio([r[0] for r in rates["sustained"]], [r[0] for r in rates["rust"]]),
                  "count": args.batch_count,
                  "burst_vs_seed_1_06M": med(r[0] for r in rates["burst"]) / 1.06e6},
        "raw": rates,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    s = summary
    table = "\n".join([
        "| benchmark | ours | theirs (tachyon-ipc 0.5.1) | ours / theirs (median of pairs) |",
        "|---|---|---|---|",
        f"| seed producer into tachyon-consumer | {s['producer']['ours_msgs_per_s']:,.0f} msg/s | "
        f"{s['producer']['theirs_msgs_per_s']:,.0f} msg/s | {s['producer']['ratio']:.2f}x |",
        f"| Python echo round trip (32 B) | {s['echo']['ours_round_trip_us']:.2f} us "
        f"({s['echo']['ours_calls_per_s']:,.0f}/s) | {s['echo']['theirs_round_trip_us']:.2f} us "
        f"({s['echo']['theirs_calls_per_s']:,.0f}/s) | {s['echo']['ratio']:.2f}x calls/s |",
        f"| send_batch burst (400 k ticks, 64 MiB ring) | {s['batch']['burst_ticks_per_s']:,.0f} ticks/s | "
        f"(no batch send) | {s['batch']['burst_vs_seed_1_06M']:.1f}x the seed's 1.06 M |",
        f"| send_batch alone (200 k ticks, consumer idle) | {s['batch']['idle_ticks_per_s']:,.0f} ticks/s | "
        f"(no batch send) | {s['batch']['idle_ticks_per_s'] / 1.06e6:.1f}x the seed's 1.06 M |",
        f"| send_batch sustained (1 MiB ring, consumer-paced) | {s['batch']['sustained_ticks_per_s']:,.0f} ticks/s | "
        f"Rust producer example: {s['batch']['rust_producer_msgs_per_s']:,.0f} msg/s | "
        f"{s['batch']['sustained_vs_rust']:.2f}x the Rust producer |",
    ])
    (out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

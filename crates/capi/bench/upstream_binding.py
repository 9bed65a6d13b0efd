"""Upstream's Python binding on our core (libtachyon.so) against the same binding on its own C++ core.

Issue 21, proof 4. "Ours" is tachyon-ipc 0.5.1's own package (its Python files and its extension
module ``_tachyon.cpp``) compiled against our tachyon.h and linked to our libtachyon.so
(crates/capi/scripts/upstream-binding.sh; ``PYTHONPATH`` pointing at that build shadows the
installed package). "Theirs" is the real package installed in .venv, the same binding on its own
C++ core. The Python code on both sides is upstream's; only the core under it differs.

Runs alternate ours/theirs in pairs within one run (the order flips every pair); each figure is
the median of the per-pair ratios (ours / theirs), with the smallest and largest pair's ratio,
and the medians of the raw figures beside it, as python/bench_python.py does.

1. ``producer``: the seed's producer, python/producer.py unchanged (``send_zero_copy`` per tick,
   ``time.time_ns()`` stamps, raw ``flush`` every 64, ``--retry-full``), into our
   ``tachyon-consumer --json``. Rate: the producer's own msgs/s.
2. ``echo``: python/rpc_caller.py against python/rpc_callee.py, both ends on the same package,
   32-byte payloads; µs per call (ratio in calls/s, as bench_python.py gives it).

Every Python process is started through a check that imports ``tachyon`` first and reads
/proc/self/maps: ours must have ``tachyon._tachyon`` from the build and libtachyon.so from
target/capi mapped; theirs must have the installed package's module and no libtachyon at all.
The check reports what it found on stderr, and the run fails unless every process of every
trial reported the core expected.

Usage: .venv/bin/python crates/capi/bench/upstream_binding.py [--pairs N] [--site DIR] [--out DIR]
Needs target/release/tachyon-consumer and the binding (``./just bench-capi`` builds both).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "python"))
from bench_python import CONSUMER, SCRIPTS, median_ratio  # noqa: E402

PYTHON = sys.executable
LIBTACHYON = ROOT / "target" / "capi" / "lib" / "libtachyon.so"
CHECK_TAG = "core-check: "

# Run first in every Python process: import tachyon, check which core is under it, report it on
# stderr, then run the script as __main__ (its own directory first on sys.path, as python would).
CHECK_CODE = r"""
import json, os, runpy, sys
expect, site, lib, installed, script = sys.argv[1:6]
import tachyon
import tachyon._tachyon as ext
with open("/proc/self/maps") as maps:
    libs = sorted({os.path.realpath(l.split()[-1]) for l in maps if "/libtachyon" in l})
module = os.path.realpath(ext.__file__)
found = {"core": expect, "pid": os.getpid(), "module": module, "libtachyon": libs}
if expect == "ours":
    ok = module.startswith(os.path.realpath(site) + os.sep) and libs == [os.path.realpath(lib)]
else:
    ok = module.startswith(os.path.realpath(installed) + os.sep) and libs == []
if not ok:
    sys.exit(f"core-check: FAILED, expected {expect}'s core: " + json.dumps(found))
print("core-check: " + json.dumps(found), file=sys.stderr, flush=True)
sys.argv = [script] + sys.argv[6:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


class Cores:
    """How to start a Python process on either core, and the check of what it loaded."""

    def __init__(self, site):
        self.site = Path(site).resolve()
        self.installed = Path(sysconfig.get_paths()["platlib"]) / "tachyon"
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.env = {"ours": {**base, "PYTHONPATH": str(self.site)}, "theirs": base}
        self.checks = []

    def python(self, who, script, *args):
        cmd = [PYTHON, "-c", CHECK_CODE, who, self.site, LIBTACHYON, self.installed, script, *args]
        return cmd, self.env[who]

    def verify(self, who, cmd, stderr):
        """The process's own report must be there and name the expected core."""
        reports = [json.loads(line[len(CHECK_TAG):]) for line in stderr.splitlines()
                   if line.startswith(CHECK_TAG)]
        if len(reports) != 1 or reports[0]["core"] != who:
            raise SystemExit(f"bench-capi: {label(cmd)} did not report {who}'s core:\n{stderr}")
        self.checks.append(reports[0])


def label(cmd):
    """The command without the check's code: the script (or binary) and its arguments."""
    return " ".join(str(c) for c in (cmd[7:] if cmd[1:2] == ["-c"] else cmd))


def run(cores, cmds, timeout=300):
    """Start (cmd, env, who) in order (the first listens); return their last JSON lines.

    ``who`` is None for a process that is not Python (tachyon-consumer). When one process
    fails (a core check among them), the others are killed at once rather than left waiting
    for a peer that will not come."""
    procs = []
    for cmd, env, who in cmds:
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        procs.append((subprocess.Popen([str(c) for c in cmd], env=env, stdout=out, stderr=err, text=True),
                      who, out, err))
        time.sleep(0.05)
    deadline = time.monotonic() + timeout
    killed = set()
    while any(proc.poll() is None for proc, *_ in procs):
        failed = [proc for proc, *_ in procs if proc.returncode not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for proc, *_ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    killed.add(proc.pid)
            break
        time.sleep(0.02)
    outputs = []
    for proc, who, out, err in procs:
        out.seek(0)
        err.seek(0)
        outputs.append((proc, who, out.read(), err.read()))
    # The process that failed on its own first, then those killed because of it (or the timeout).
    for proc, _, _, err in sorted(outputs, key=lambda o: o[0].pid in killed):
        if proc.returncode != 0:
            why = "killed: a peer failed, or the timeout" if proc.pid in killed else f"exit {proc.returncode}"
            raise SystemExit(f"bench-capi: {label(proc.args)} failed ({why}):\n{err}")
    for proc, who, out, err in outputs:
        if who is not None:
            cores.verify(who, proc.args, err)
    return [json.loads(out.strip().splitlines()[-1]) for _, _, out, _ in outputs]


def producer_run(cores, who, sock, count):
    cmd, env = cores.python(who, SCRIPTS / "producer.py", "--socket", sock, "--count", count, "--retry-full")
    consumer, producer = run(cores, [([CONSUMER, "--socket", sock, "--json"], None, None), (cmd, env, who)])
    assert consumer["received"] == count, consumer
    return producer["msgs_per_s"]


def echo_run(cores, who, sock, calls):
    callee = cores.python(who, SCRIPTS / "rpc_callee.py", "--socket", sock)
    caller = cores.python(who, SCRIPTS / "rpc_caller.py", "--socket", sock, "--count", calls, "--sizes", "32")
    served, result = run(cores, [(*callee, who), (*caller, who)])
    assert result["bad"] == 0 and result["calls"] == calls and served["served"] == calls + 1, (served, result)
    return result["calls_per_s"]


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--count", type=int, default=500_000, help="ticks per producer run (the seed's 500,000)")
    p.add_argument("--calls", type=int, default=50_000)
    p.add_argument("--site", default=str(ROOT / "target" / "capi" / "upstream-binding" / "site"),
                   help="the directory holding the binding built on our core (upstream-binding.sh DEST: DEST/site)")
    p.add_argument("--out", default=str(ROOT / "target" / "capi-bench"))
    args = p.parse_args()
    if not CONSUMER.is_file():
        raise SystemExit("bench-capi: build first: cargo build --release -p tachyon-consumer")
    if not LIBTACHYON.is_file() or not (Path(args.site) / "tachyon").is_dir():
        raise SystemExit("bench-capi: build first: ./just capi && "
                         "crates/capi/scripts/upstream-binding.sh target/capi/upstream-binding")
    cores = Cores(args.site)

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    load_before = loadavg()
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    print(f"bench-capi: {started}, commit {commit}{' (dirty tree)' if dirty else ''}, "
          f"load average {' '.join(load_before)}", file=sys.stderr)

    folder = Path(tempfile.mkdtemp(prefix="capi-bench-", dir="/tmp"))
    sock = str(folder / "s.sock")
    rates = {"producer": ([], []), "echo": ([], [])}
    for i in range(args.pairs):
        order = [("ours", 0), ("theirs", 1)] if i % 2 == 0 else [("theirs", 1), ("ours", 0)]
        for who, k in order:
            rates["producer"][k].append(producer_run(cores, who, sock, args.count))
            rates["echo"][k].append(echo_run(cores, who, sock, args.calls))
        print(f"bench-capi: pair {i + 1}/{args.pairs}: producer ours {rates['producer'][0][-1]:,.0f} "
              f"theirs {rates['producer'][1][-1]:,.0f} msg/s; echo ours {1e6 / rates['echo'][0][-1]:.2f} "
              f"theirs {1e6 / rates['echo'][1][-1]:.2f} us/call", file=sys.stderr)
    load_after = loadavg()
    shutil.rmtree(folder, ignore_errors=True)
    # Every trial: the consumer (not Python) plus 1 producer, or callee + caller, per side.
    expected = {"ours": 3 * args.pairs, "theirs": 3 * args.pairs}
    seen = {who: sum(c["core"] == who for c in cores.checks) for who in expected}
    assert seen == expected, (seen, expected)
    print(f"bench-capi: load average after {' '.join(load_after)}; core checks passed: "
          f"{seen['ours']} processes on {LIBTACHYON}, {seen['theirs']} on {cores.installed}",
          file=sys.stderr)

    med = statistics.median

    def ratios(key):
        pairs = [o / t for o, t in zip(*rates[key])]
        return {"ratio": median_ratio(*rates[key]), "ratio_min": min(pairs), "ratio_max": max(pairs)}

    summary = {
        "pairs": args.pairs,
        "started": started,
        "commit": commit,
        "dirty": dirty,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "ours": {"module_dir": str(cores.site / "tachyon"), "libtachyon": str(LIBTACHYON.resolve())},
        "theirs": {"module_dir": str(cores.installed.resolve())},
        "producer": {"ours_msgs_per_s": med(rates["producer"][0]), "theirs_msgs_per_s": med(rates["producer"][1]),
                     **ratios("producer"), "count": args.count},
        "echo": {"ours_us_per_call": 1e6 / med(rates["echo"][0]), "theirs_us_per_call": 1e6 / med(rates["echo"][1]),
                 "ours_calls_per_s": med(rates["echo"][0]), "theirs_calls_per_s": med(rates["echo"][1]),
                 **ratios("echo"), "calls": args.calls},
        "raw": rates,
        "core_checks": cores.checks,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    s = summary
    table = "\n".join([
        "| benchmark | upstream's binding on libtachyon (ours) | on its own C++ core (theirs, tachyon-ipc 0.5.1) "
        "| ours / theirs (median of pairs, range) |",
        "|---|---|---|---|",
        f"| seed producer into tachyon-consumer | {s['producer']['ours_msgs_per_s']:,.0f} msg/s | "
        f"{s['producer']['theirs_msgs_per_s']:,.0f} msg/s | {s['producer']['ratio']:.2f}x "
        f"({s['producer']['ratio_min']:.2f}-{s['producer']['ratio_max']:.2f}) |",
        f"| Python echo round trip (32 B) | {s['echo']['ours_us_per_call']:.2f} us "
        f"({s['echo']['ours_calls_per_s']:,.0f}/s) | {s['echo']['theirs_us_per_call']:.2f} us "
        f"({s['echo']['theirs_calls_per_s']:,.0f}/s) | {s['echo']['ratio']:.2f}x calls/s "
        f"({s['echo']['ratio_min']:.2f}-{s['echo']['ratio_max']:.2f}) |",
    ])
    (out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ctrl-C interrupts every blocking call: a child blocked in the call gets SIGINT and must raise
KeyboardInterrupt promptly (the GIL is released while it waits and signals are checked)."""

import time

import pytest

from conftest import finish, interrupt, spawn_code, wait_for_line

PRELUDE = """
import math, sys, threading
import tachyon_rs as t
path = sys.argv[1]

def pair(capacity=1 << 16):
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("bus", t.Bus.listen(path, capacity)))
    th.start()
    connector = t.Bus.connect(path, timeout=5)
    th.join()
    return box["bus"], connector

def rpc_pair(cap=1 << 16):
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("bus", t.RpcBus.rpc_listen(path, cap, cap)))
    th.start()
    caller = t.RpcBus.rpc_connect(path, timeout=5)
    th.join()
    return box["bus"], caller

def fill(send):
    try:
        for _ in range(100000):
            send()
    except t.FullError:
        return
    raise SystemExit("never full")

def ready():
    print("ready", flush=True)
"""

CASES = {
    "Bus.listen": "ready(); t.Bus.listen(path, 1 << 16)",
    "RpcBus.rpc_listen": "ready(); t.RpcBus.rpc_listen(path, 1 << 16, 1 << 16)",
    "Bus.connect(timeout=inf)": "ready(); t.Bus.connect(path, timeout=math.inf)",
    "recv_zero_copy": "rx, tx = pair(); ready(); rx.recv_zero_copy()",
    "iteration": "rx, tx = pair(); ready(); next(iter(rx))",
    "drain_batch": "rx, tx = pair(); ready(); rx.drain_batch()",
    "_bus.acquire_rx": "rx, tx = pair(); ready(); rx._bus.acquire_rx()",
    "send(timeout=inf) on a full ring":
        "rx, tx = pair(1024); fill(lambda: tx.send(b'x' * 100, 1)); ready(); "
        "tx.send(b'x' * 100, 1, timeout=math.inf)",
    "send_zero_copy(timeout=inf) on a full ring":
        "rx, tx = pair(1024); fill(lambda: tx.send(b'x' * 100, 1)); ready(); "
        "tx.send_zero_copy(100, 1, timeout=math.inf)",
    "send_batch on a full ring":
        "rx, tx = pair(1024); ready(); tx.send_batch(b'x' * 32000, 32, 1)",
    "RpcBus.wait": "callee, caller = rpc_pair(); cid = caller.call(b'x', 1); ready(); caller.wait(cid)",
    "RpcBus.serve": "callee, caller = rpc_pair(); ready(); callee.serve()",
    "RpcDispatcher.serve_forever":
        "callee, caller = rpc_pair(); ready(); t.RpcDispatcher().serve_forever(callee)",
    "RpcBus.call(timeout=inf) on a full ring":
        "callee, caller = rpc_pair(1024); fill(lambda: caller.call(b'x' * 100, 1)); ready(); "
        "caller.call(b'x' * 100, 1, timeout=math.inf)",
    "RpcBus.reply(timeout=inf) on a full ring":
        "callee, caller = rpc_pair(1024); fill(lambda: callee.reply(1, b'x' * 100, 1)); ready(); "
        "callee.reply(1, b'x' * 100, 1, timeout=math.inf)",
}

ITERATIONS = 3


@pytest.mark.parametrize("case", list(CASES))
def test_ctrl_c_interrupts(sock, case):
    code = PRELUDE + f"""
try:
    {CASES[case]}
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
print("returned", flush=True)
sys.exit(1)
"""
    for _ in range(ITERATIONS):
        child = spawn_code(code, sock)
        wait_for_line(child, "ready")
        time.sleep(0.25)  # well inside the blocking call
        assert child.poll() is None, "the call returned instead of blocking"
        sent = time.monotonic()
        interrupt(child)
        rc, out, err = finish(child, timeout=10)
        took = time.monotonic() - sent
        assert rc == 42, (out, err)
        assert "interrupted" in out
        assert took < 2.0, f"KeyboardInterrupt took {took:.2f} s"

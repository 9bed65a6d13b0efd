"""Across processes against the real tachyon-ipc 0.5.1 and against tachyon-consumer.

The scripts under python/ (written for the real package) run as they are on one end, and
with only ``import tachyon`` swapped for ``import tachyon_rs as tachyon`` on the other.
"""

import pytest

from conftest import (
    CONSUMER_BIN,
    PYTHON,
    SCRIPTS,
    finish,
    last_json,
    spawn,
    swapped_script,
)

ROLES = ["producer-listens", "consumer-listens"]


def roles(role):
    """(producer role args, consumer role args)."""
    if role == "producer-listens":
        return ["--listen"], ["--connect"]
    return ["--connect"], ["--listen"]


def run_pair(producer_cmd, consumer_cmd, role, consumer_first=True):
    """Start both (the listener first), return (producer json, consumer json)."""
    p_role, c_role = roles(role)
    listener_is_consumer = c_role == ["--listen"]
    first, second = (consumer_cmd + c_role, producer_cmd + p_role)
    if not listener_is_consumer:
        first, second = second, first
    a = spawn(first)
    b = spawn(second)
    ra, oa, ea = finish(a, 120)
    rb, ob, eb = finish(b, 120)
    outs = {"a": (ra, oa, ea), "b": (rb, ob, eb)}
    assert ra == 0 and rb == 0, outs
    prod, cons = (ob, oa) if listener_is_consumer else (oa, ob)
    return last_json(prod), last_json(cons)


@pytest.mark.parametrize("role", ROLES)
def test_ours_produce_into_real_consumer(real, sock, tmp_path, role):
    producer = swapped_script("producer.py", tmp_path)
    count = 20_000
    prod, cons = run_pair(
        [PYTHON, producer, "--socket", sock, "--pattern", "--count", count, "--sizes", "0..1000",
         "--retry-full"],
        [PYTHON, SCRIPTS / "consumer.py", "--socket", sock, "--mode", "pattern"],
        role,
    )
    assert prod["sent"] == count
    assert cons == {"received": count, "bytes": prod["bytes"], "bad": 0}


@pytest.mark.parametrize("role", ROLES)
def test_real_producer_into_ours(real, sock, tmp_path, role):
    consumer = swapped_script("consumer.py", tmp_path)
    count = 20_000
    prod, cons = run_pair(
        [PYTHON, SCRIPTS / "producer.py", "--socket", sock, "--pattern", "--count", count,
         "--sizes", "0..1000", "--retry-full"],
        [PYTHON, consumer, "--socket", sock, "--mode", "pattern"],
        role,
    )
    assert cons == {"received": count, "bytes": prod["bytes"], "bad": 0}


@pytest.mark.parametrize("raw", [False, True], ids=["send_zero_copy", "raw-acquire_tx"])
@pytest.mark.parametrize("role", ROLES)
def test_seed_producer_into_tachyon_consumer(sock, tmp_path, role, raw):
    assert CONSUMER_BIN.is_file(), "build it: cargo build --release -p tachyon-consumer"
    producer = swapped_script("producer.py", tmp_path)
    count = 100_000
    prod, cons = run_pair(
        # --retry-full: on a loaded machine the consumer may fall behind, and a full ring raises
        # (upstream's behaviour, kept); the script then flushes and retries.
        [PYTHON, producer, "--socket", sock, "--count", count, "--retry-full"]
        + (["--raw-tx"] if raw else []),
        [CONSUMER_BIN, "--socket", sock, "--json"],
        role,
    )
    assert prod["sent"] == count
    assert (cons["received"], cons["bids"], cons["asks"], cons["other"], cons["malformed"]) == (
        count, count // 2, count // 2, 0, 0)


def rpc_run(caller_cmd, callee_cmd):
    callee = spawn(callee_cmd)
    caller = spawn(caller_cmd)
    rc_caller, out_caller, err_caller = finish(caller, 120)
    rc_callee, out_callee, err_callee = finish(callee, 120)
    assert rc_caller == 0 and rc_callee == 0, (err_caller, err_callee)
    return last_json(out_caller), last_json(out_callee)


@pytest.mark.parametrize("dispatcher", [False, True], ids=["plain", "dispatcher"])
def test_rpc_ours_call_real_callee(real, sock, tmp_path, dispatcher):
    caller = swapped_script("rpc_caller.py", tmp_path)
    extra = ["--dispatcher", "--failing-type", "77"] if dispatcher else []
    calls, served = rpc_run(
        [PYTHON, caller, "--socket", sock, "--count", 3000, "--sizes", "1..2000"]
        + (["--expect-error-type", "77"] if dispatcher else []),
        [PYTHON, SCRIPTS / "rpc_callee.py", "--socket", sock] + extra,
    )
    assert calls["calls"] == 3000 and calls["bad"] == 0
    assert served["served"] == 3001
    if dispatcher:
        assert calls["error_replies"] == 3 == served["errors"]


@pytest.mark.parametrize("dispatcher", [False, True], ids=["plain", "dispatcher"])
def test_rpc_real_call_our_callee(real, sock, tmp_path, dispatcher):
    callee = swapped_script("rpc_callee.py", tmp_path)
    extra = ["--dispatcher", "--failing-type", "77"] if dispatcher else []
    calls, served = rpc_run(
        [PYTHON, SCRIPTS / "rpc_caller.py", "--socket", sock, "--count", 3000, "--sizes", "1..2000"]
        + (["--expect-error-type", "77"] if dispatcher else []),
        [PYTHON, callee, "--socket", sock] + extra,
    )
    assert calls["calls"] == 3000 and calls["bad"] == 0
    assert served["served"] == 3001
    if dispatcher:
        assert calls["error_replies"] == 3 == served["errors"]

"""Blocking calls release the GIL: other Python threads keep running while one waits, and a
second thread calling into a bus that is busy waiting gets an exception, not a deadlock."""

import threading
import time

import pytest

import tachyon_rs as ours
from conftest import pair, rpc_pair


def progress_while(blocking_call):
    """How many times the main thread loops during 0.3 s while ``blocking_call`` waits in a
    thread (it must still be waiting afterwards)."""
    done = threading.Event()
    errors = []

    def run():
        try:
            blocking_call()
        except BaseException as e:  # noqa: BLE001  (reported below)
            errors.append(e)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)
    loops, end = 0, time.monotonic() + 0.3
    while time.monotonic() < end:
        loops += 1
    assert not done.is_set(), errors
    return loops, thread, done, errors


def test_receive_wait_releases_the_gil(sock):
    rx, tx = pair(ours, sock)
    with rx, tx:
        loops, thread, done, errors = progress_while(lambda: rx.recv_zero_copy(timeout=3).__exit__(None, None, None))
        assert loops > 10_000
        # A second call on the busy bus raises at once instead of queueing behind the wait.
        with pytest.raises(RuntimeError, match="in use by another thread"):
            rx.drain_batch(timeout=0.1)
        tx.send(b"wake", 1)
        thread.join(5)
        assert done.is_set() and errors == []


@pytest.mark.parametrize("side", ["serve", "wait"])
def test_rpc_waits_release_the_gil(sock, side):
    callee, caller = rpc_pair(ours, sock)
    with callee, caller:
        if side == "serve":
            call = lambda: callee.serve(timeout=3).__exit__(None, None, None)  # noqa: E731
        else:
            cid = caller.call(b"x", 1)
            call = lambda: caller.wait(cid, timeout=3).__exit__(None, None, None)  # noqa: E731
        loops, thread, done, errors = progress_while(call)
        assert loops > 10_000
        if side == "serve":
            caller.call(b"x", 1)
        else:
            with callee.serve(timeout=3) as rq:
                cid = rq.correlation_id
            callee.reply(cid, b"y", 2)
        thread.join(5)
        assert done.is_set() and errors == []


def test_send_waiting_for_room_releases_the_gil(sock):
    rx, tx = pair(ours, sock, capacity=1024)
    with rx, tx:
        with pytest.raises(ours.FullError):
            for _ in range(100):
                tx.send(b"x" * 100, 1)
        loops, thread, done, errors = progress_while(lambda: tx.send(b"x" * 100, 1, timeout=3))
        assert loops > 10_000
        with rx.drain_batch(timeout=1):
            pass
        thread.join(5)
        assert done.is_set() and errors == []

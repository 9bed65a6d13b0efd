"""Misuse raises a Python exception naming the cause; the interpreter never crashes. (A crash
would take the pytest process down and fail the run.)"""

import gc
import math

import numpy as np
import pytest

import tachyon_rs as ours
from conftest import pair, rpc_pair


@pytest.fixture
def buses(sock):
    rx, tx = pair(ours, sock, capacity=1 << 12)
    yield rx, tx
    rx.__exit__(None, None, None)
    tx.__exit__(None, None, None)


def test_wrong_types(buses):
    rx, tx = buses
    with pytest.raises(TypeError):
        tx.send(123)
    with pytest.raises(TypeError):
        tx.send("text is not bytes")
    with pytest.raises(TypeError):
        tx.send(b"x", type_id="1")
    with pytest.raises(OverflowError):
        tx.send(b"x", type_id=-1)
    with pytest.raises(OverflowError):
        tx.send(b"x", type_id=1 << 32)
    with pytest.raises(OverflowError):
        tx._bus.acquire_tx(-1)
    with pytest.raises(TypeError):
        tx.send_zero_copy("32")
    g = tx._bus.acquire_tx(8)
    with pytest.raises(OverflowError):
        g.type_id = -5
    with pytest.raises(AttributeError):
        del g.actual_size
    with pytest.raises(TypeError):
        g.actual_size = None
    with pytest.raises(TypeError):
        rx.drain_batch(max_msgs="many")
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="timeout"):
            tx.send(b"x", timeout=bad)


def test_oversize_payloads(buses):
    rx, tx = buses
    with pytest.raises(ours.MessageTooLargeError, match="4096"):
        tx.send(b"x" * 5000)
    with pytest.raises(ours.TachyonError):
        tx.send_zero_copy(1 << 20)
    with pytest.raises(ours.MessageTooLargeError):
        tx.send(b"x" * 5000, timeout=1)  # never fits: no wait
    g = tx._bus.acquire_tx(8)
    g.actual_size = 9
    with pytest.raises(ValueError, match="exceeds"):
        with g:
            pass
    with pytest.raises(ValueError):
        with tx.send_zero_copy(4) as g:
            memoryview(g)[:5] = b"12345"  # memoryview's own bounds check


def test_batch_arguments(buses):
    rx, tx = buses
    with pytest.raises(ValueError, match="record_size"):
        tx.send_batch(b"x" * 10, 0)
    with pytest.raises(ValueError, match="whole number"):
        tx.send_batch(b"x" * 10, 3)
    with pytest.raises(ValueError, match="type ids"):
        tx.send_batch(b"x" * 8, 4, [1, 2, 3])
    with pytest.raises(ValueError):
        tx.send_batch(b"x" * 8, 4, np.zeros(3, dtype=np.uint8))
    with pytest.raises(TypeError):
        tx.send_batch(np.zeros((4, 4))[:, 0], 8)  # not contiguous
    with pytest.raises(ValueError, match="max_msgs"):
        rx.drain_batch(0)


def test_use_after_close(buses):
    rx, tx = buses
    tx.send(b"one", 1)
    tx.__exit__(None, None, None)
    for call in (lambda: tx.send(b"x"), tx._bus.flush, lambda: tx.send_zero_copy(4),
                 lambda: tx.set_polling_mode(1)):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    tx.__exit__(None, None, None)  # idempotent
    with rx.recv_zero_copy(timeout=5) as r:
        assert bytes(r) == b"one"
    rx._bus.destroy()
    with pytest.raises(RuntimeError):
        rx.recv_zero_copy()
    with pytest.raises(RuntimeError):
        ours.TachyonBus().flush()  # never opened


def test_roles_are_fixed(buses):
    rx, tx = buses
    tx.send(b"x", 1)
    with pytest.raises(ours.TachyonError, match="producer"):
        tx.recv_zero_copy(timeout=0.1)
    rx.recv_zero_copy(timeout=5).__exit__(None, None, None)
    with pytest.raises(ours.TachyonError, match="consumer"):
        rx.send(b"x")
    with pytest.raises(RuntimeError, match="already initialized"):
        tx._bus.connect("/tmp/nowhere.sock")


def test_guards_kept_past_their_context(buses):
    rx, tx = buses
    # A memoryview still open when the TX block ends: BufferError, nothing sent.
    with pytest.raises(BufferError):
        with tx.send_zero_copy(8, 1) as g:
            kept = memoryview(g)
            g.actual_size = 1
    kept[0] = 1  # writes only the guard's own buffer: harmless
    kept.release()
    with pytest.raises(BufferError):
        memoryview(g)  # the guard is finished
    g.__exit__(None, None, None)  # a second exit does nothing

    tx.send(b"abc", 2)
    with rx.recv_zero_copy(timeout=5) as r:
        assert r.type_id == 2
    with pytest.raises(BufferError):
        memoryview(r)
    assert (r.actual_size, r.type_id) == (3, 2)  # metadata stays readable
    tx.send(b"zz", 9)
    with pytest.raises(BufferError):
        with rx.recv_zero_copy(timeout=5) as r2:
            held = memoryview(r2)
    assert held.tobytes() == b"zz"  # the private copy outlives the guard safely
    held.release()

    tx.send(b"batch", 3)
    with rx.drain_batch(timeout=5) as batch:
        view = batch[0]
        with pytest.raises(IndexError):
            batch[5]
    with pytest.raises(BufferError):
        memoryview(view)
    with pytest.raises(RuntimeError):
        view.__dlpack__()
    with pytest.raises(RuntimeError):
        batch[0]

    tx.send(b"tensor", 4)
    with pytest.raises(BufferError):
        with rx.drain_batch(timeout=5) as batch:
            arr = np.from_dlpack(batch[0])
    assert arr.tobytes() == b"tensor"  # still valid memory (owned by the batch object)
    del arr, batch, view
    gc.collect()


def test_handshake_and_capacity_errors(sock):
    with pytest.raises(ConnectionError):
        ours.Bus.connect(sock)
    with pytest.raises(ours.WaitTimeoutError):
        ours.Bus.connect(sock, timeout=0.1)
    with pytest.raises(ValueError, match="capacity"):
        ours.Bus.listen(sock, 1000)
    with pytest.raises(Exception, match="socket path|sun_path|too long"):
        ours.Bus.listen("/tmp/" + "x" * 200 + ".sock", 1 << 12)


def test_rpc_misuse(sock):
    callee, caller = rpc_pair(ours, sock)
    with callee, caller:
        with pytest.raises(ValueError, match="max_payload_size"):
            caller.call(b"", 1)
        with pytest.raises(ValueError, match="correlation_id"):
            callee.reply(0, b"x", 1)
        with pytest.raises(ours.TachyonError, match="callee"):
            callee.call(b"x", 1)
        with pytest.raises(ours.TachyonError, match="caller"):
            caller.serve(timeout=0.1)
        with pytest.raises(ValueError, match="msg_type"):
            caller.call(b"x", 70000)
        with pytest.raises(ours.WaitTimeoutError):
            caller.wait(1, timeout=0.05)
    with pytest.raises(RuntimeError, match="closed"):
        caller.call(b"x", 1)

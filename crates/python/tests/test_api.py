"""The API contract: tachyon-ipc 0.5.1's names, signatures and behaviour, in one process."""

import inspect
import struct
import threading
import time

import numpy as np
import pytest

import tachyon_rs as ours
from conftest import pair, rpc_pair


def public(cls):
    return {n for n in dir(cls) if not n.startswith("_")} | (
        {"__enter__", "__exit__", "__iter__", "__len__", "__getitem__", "__dlpack__",
         "__dlpack_device__"} & set(dir(cls))
    )


def test_every_upstream_name_exists(real):
    missing = [n for n in real.__all__ if not hasattr(ours, n)]
    assert missing == []
    assert ours.__version__ == real.__version__


@pytest.mark.parametrize("name", ["Bus", "RpcBus", "RpcDispatcher", "RpcEndpoint", "TachyonBus",
                                  "TachyonRpcBus", "TxGuard", "RxGuard", "RxBatchGuard",
                                  "RxMsgView", "RpcTxGuard", "RpcRxGuard", "Message"])
def test_every_upstream_member_exists(real, name):
    theirs, mine = getattr(real, name), getattr(ours, name)
    assert sorted(public(theirs) - public(mine)) == []


@pytest.mark.parametrize("name", ["Bus", "RpcBus", "RpcDispatcher", "RpcEndpoint"])
def test_python_level_signatures_match(real, name):
    """Every upstream parameter is there, same name, order and default; ours add only
    keyword-only parameters with defaults."""
    theirs, mine = getattr(real, name), getattr(ours, name)
    for member in public(theirs):
        t = getattr(theirs, member)
        if not callable(t) or member.startswith("__"):
            continue
        tp = list(inspect.signature(t).parameters.values())
        mp = list(inspect.signature(getattr(mine, member)).parameters.values())
        assert [(p.name, p.default, p.kind) for p in mp[: len(tp)]] == [
            (p.name, p.default, p.kind) for p in tp
        ], member
        for extra in mp[len(tp):]:
            assert extra.kind is inspect.Parameter.KEYWORD_ONLY and extra.default is not inspect._empty


def test_type_id_helpers_match(real):
    for route, mt in [(0, 0), (0, 42), (1, 7), (0xFFFF, 0xFFFF), (3, 0x1234)]:
        tid = ours.make_type_id(route, mt)
        assert tid == real.make_type_id(route, mt)
        assert ours.route_id(tid) == real.route_id(tid) == route
        assert ours.msg_type(tid) == real.msg_type(tid) == mt
    for bad in [(-1, 0), (0, -1), (0x10000, 0), (0, 0x10000)]:
        with pytest.raises(ValueError):
            real.make_type_id(*bad)
        with pytest.raises(ValueError):
            ours.make_type_id(*bad)
    assert ours.MSG_TYPE_ERROR == real.MSG_TYPE_ERROR == 0xFFFF
    assert ours._decode_error(struct.pack("!H", 513)) == real._decode_error(struct.pack("!H", 513))


def test_exception_hierarchy():
    assert issubclass(ours.PeerDeadError, ours.TachyonError)
    assert issubclass(ours.TachyonError, Exception)
    for sub in (ours.FullError, ours.MessageTooLargeError, ours.WaitTimeoutError):
        assert issubclass(sub, ours.TachyonError) and not issubclass(sub, ours.PeerDeadError)
    for sub in (ours.PeerGoneError, ours.CorruptError):
        assert issubclass(sub, ours.PeerDeadError)
    assert ours.TachyonError.__module__ == "tachyon_rs"


def test_stubs_and_marker_are_installed():
    from pathlib import Path

    folder = Path(ours.__file__).parent
    for name in ("py.typed", "_tachyon_rs.pyi"):
        assert (folder / name).is_file(), name


def test_send_receive_every_way(sock):
    rx, tx = pair(ours, sock)
    with rx, tx:
        tx.send(b"hello", type_id=7)
        tx.send(bytearray(b"ba"), 8)
        tx.send(memoryview(b"xmv")[1:], 9)
        with tx.send_zero_copy(size=32, type_id=ours.make_type_id(0, 10)) as g:
            with memoryview(g) as mv:
                struct.pack_into("<8sdIQ4x", mv, 0, b"BTCUSDT\0", 1.5, 3, 4)
            g.actual_size = 32
        with tx._bus.acquire_tx(16) as g:  # the raw guard: type_id and size set by hand
            memoryview(g)[:3] = b"raw"
            g.actual_size, g.type_id = 3, 11
        tx._bus.flush()
        tx.send(b"", type_id=0)

        with rx.recv_zero_copy() as r:
            assert (r.type_id, r.actual_size, bytes(r)) == (7, 5, b"hello")
        it = iter(rx)
        m = next(it)
        assert (m.type_id, m.size, m.data) == (8, 2, b"ba")
        assert isinstance(m, ours.Message)
        assert next(it).data == b"mv"
        with rx.drain_batch(max_msgs=2) as batch:
            assert len(batch) == 2
            assert struct.unpack("<8sdIQ4x", bytes(batch[0])) == (b"BTCUSDT\0", 1.5, 3, 4)
            assert (batch[-1].type_id, bytes(batch[-1])) == (11, b"raw")
            assert [v.actual_size for v in batch] == [32, 3]
            arr = np.from_dlpack(batch[1])
            assert arr.dtype == np.uint8 and arr.tobytes() == b"raw"
            del arr
        with rx.recv_zero_copy() as r:
            assert (r.type_id, r.actual_size) == (0, 0)


def test_guard_exit_with_exception_sends_nothing(sock):
    rx, tx = pair(ours, sock)
    with rx, tx:
        with pytest.raises(ZeroDivisionError):
            with tx.send_zero_copy(8, 1) as g:
                memoryview(g)[:1] = b"x"
                g.actual_size = 1
                1 / 0
        g2 = tx._bus.acquire_tx(8)  # dropped without exit: sends nothing
        del g2
        with tx.send_zero_copy(8, 2) as g:  # actual_size never set: an empty message
            pass
        with rx.recv_zero_copy(timeout=5) as r:
            assert (r.type_id, r.actual_size) == (2, 0)
        with pytest.raises(ours.WaitTimeoutError):
            rx.recv_zero_copy(timeout=0.05)


def test_send_batch(sock):
    rx, tx = pair(ours, sock, capacity=1 << 12)
    with rx, tx:
        ticks = np.zeros(1000, dtype=[("sym", "S8"), ("px", "<f8"), ("qty", "<u4"), ("ts", "<u8"), ("pad", "V4")])
        ticks["qty"] = np.arange(1000)
        types = (np.arange(1000) % 2 + 1).astype(np.uint32)
        import threading

        got = []

        def consume():
            for m in rx:
                if m.type_id == 0:
                    return
                qty = struct.unpack("<8sdIQ4x", m.data)[2] if m.size == 32 else None
                got.append((m.type_id, qty))

        t = threading.Thread(target=consume)
        t.start()
        # 1000 records through a 4 KiB ring (64 slots): the batch waits for room.
        assert tx.send_batch(ticks, 32, types, timeout=10) == 1000
        assert tx.send_batch(b"\0" * 64, 32, [5, 6]) == 2
        assert tx.send_batch(b"\1" * 16, 16, 7) == 1
        # Type ids in arrays of other dtypes are taken by value, not as raw uint32 bytes.
        assert tx.send_batch(b"\0" * 64, 32, np.array([8, 9], dtype=np.int64)) == 2
        assert tx.send_batch(b"\0" * 64, 32, np.array([10, 11], dtype=np.uint16)) == 2
        with pytest.raises(ValueError, match="3 type ids for 2 records"):
            tx.send_batch(b"\0" * 64, 32, np.array([1, 2, 3], dtype=np.uint32))
        tx.send(b"", 0, timeout=10)
        t.join(10)
        assert got[:1000] == [(1 + i % 2, i) for i in range(1000)]
        assert [g[0] for g in got[1000:]] == [5, 6, 7, 8, 9, 10, 11]


def test_full_ring_raises_then_timeout_waits(sock):
    rx, tx = pair(ours, sock, capacity=1 << 10)
    with rx, tx:
        with pytest.raises(ours.FullError) as info:
            for _ in range(1000):
                tx.send(b"x" * 100, 1)
        assert isinstance(info.value, ours.TachyonError)
        with pytest.raises(ours.WaitTimeoutError):
            tx.send(b"x" * 100, 1, timeout=0.05)
        with pytest.raises(ours.FullError):
            tx._bus.acquire_tx(100)
        # Free the ring from another thread while a send waits for room.
        import threading

        def drain():
            with rx.drain_batch(timeout=5):
                pass

        t = threading.Thread(target=drain)
        t.start()
        tx.send(b"y" * 100, 2, timeout=5)
        t.join()


def test_rpc_loopback_and_dispatcher(sock):
    callee, caller = rpc_pair(ours, sock)
    with callee, caller:
        cid = caller.call(b"ping", msg_type=3)
        assert cid == 1
        with callee.serve() as rq:
            assert (rq.correlation_id, rq.type_id, bytes(rq)) == (1, 3, b"ping")
        callee.reply(cid, b"PONG", msg_type=4)
        with caller.wait(cid) as rp:
            assert (rp.correlation_id, rp.type_id, bytes(rp)) == (1, 4, b"PONG")

        with caller.call_zero_copy(max_payload_size=16, msg_type=5) as tx:
            memoryview(tx)[:2] = b"zc"
            tx.actual_size = 2
        assert tx.out_cid == 2
        with callee.serve() as rq:
            cid2 = rq.correlation_id
        with callee.reply_zero_copy(cid2, 8, 6) as tx:
            memoryview(tx)[:1] = b"!"
            tx.actual_size = 1
        assert tx.out_cid == 0
        with caller.wait(2) as rp:
            assert bytes(rp) == b"!" and rp.type_id == 6

        d = ours.RpcDispatcher()

        @d.handler(7)
        def upper(mv):
            return mv.tobytes().upper()

        @ours.tachyon_rpc(8)
        def fails(mv):
            raise ValueError("no")

        d.register(fails)
        assert upper(b"abc") == b"ABC" and isinstance(upper, ours.RpcEndpoint)
        with pytest.raises(ValueError):
            d.register(ours.RpcEndpoint(lambda mv: b"", 7))
        with pytest.raises(ValueError):
            ours.tachyon_rpc(0xFFFF)

        cid = caller.call(b"abc", 7)
        d.serve_once(callee)
        with caller.wait(cid) as rp:
            assert bytes(rp) == b"ABC" and rp.type_id == 7
        cid = caller.call(b"abc", 8)
        with pytest.raises(RuntimeError):
            d.serve_once(callee)
        with caller.wait(cid) as rp:
            assert rp.type_id == ours.MSG_TYPE_ERROR and ours._decode_error(bytes(rp)) == 8
        cid = caller.call(b"abc", 9)
        with pytest.raises(KeyError):
            d.serve_once(callee)
        with caller.wait(cid) as rp:
            assert rp.type_id == ours.MSG_TYPE_ERROR and ours._decode_error(bytes(rp)) == 9


def test_numa_and_polling_mode(sock):
    rx, tx = pair(ours, sock)
    with rx, tx:
        tx.set_numa_node(0)
        tx.set_polling_mode(1)
        tx.set_polling_mode(0)
        for bad in (-1, 64):
            with pytest.raises(ValueError):
                tx.set_numa_node(bad)


def test_spin_policy_by_name_and_messages_still_arrive(sock):
    """set_spin_policy takes "fixed", "adaptive" or "frugal" (ValueError naming the value
    otherwise), and an adaptive or frugal receiving end gets every message of a feed with gaps."""
    rx, tx = pair(ours, sock)
    with rx, tx:
        with pytest.raises(ValueError, match='"slow"'):
            rx.set_spin_policy("slow")
        for policy in ("adaptive", "frugal"):
            rx.set_spin_policy(policy)
            for i in range(40):
                tx.send(bytes([i]), 1)
                time.sleep(0.001 * (i % 3))
                with rx.recv_zero_copy(timeout=5) as m:
                    assert (m.type_id, bytes(m)) == (1, bytes([i]))
        rx.set_spin_policy("fixed")


def test_rpc_reply_to_another_call_is_peer_dead(sock):
    """As upstream: a reply whose correlation id is not the one waited for marks the reply ring
    fatal and raises PeerDeadError (here its subclass CorruptError), for that and later waits."""
    callee, caller = rpc_pair(ours, sock)
    with callee, caller:
        first, second = caller.call(b"a", 1), caller.call(b"b", 1)
        callee.reply(second, b"B", 2)
        with pytest.raises(ours.PeerDeadError) as info:
            caller.wait(first, timeout=5)
        assert isinstance(info.value, ours.CorruptError)
        assert f"{second}" in str(info.value) and f"{first}" in str(info.value)
        callee.reply(first, b"A", 2)
        with pytest.raises(ours.PeerDeadError):
            caller.wait(first, timeout=5)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_rpc_call_and_reply_send_any_buffer_within_their_reservation(sock, kind):
    """``call`` and ``reply`` send ``bytes`` in one native call and any other buffer through a
    guard: both reserve ``max_payload_size`` (default the length), refuse a payload longer
    than it with nothing sent, and wait for room with ``timeout``."""
    callee, caller = rpc_pair(ours, sock, cap_fwd=1 << 12, cap_rev=1 << 12)
    with callee, caller:
        cid = caller.call(kind(b"abc"), 3, max_payload_size=64)
        with callee.serve() as rq:
            assert (rq.correlation_id, rq.type_id, bytes(rq)) == (cid, 3, b"abc")
        callee.reply(cid, kind(b"xyz!"), 4, max_payload_size=4)
        with caller.wait(cid) as rp:
            assert (rp.type_id, bytes(rp)) == (4, b"xyz!")

        with pytest.raises(ValueError):
            caller.call(kind(b"abcdef"), 3, max_payload_size=2)
        with pytest.raises(ValueError):
            callee.reply(cid, kind(b"abcdef"), 3, max_payload_size=2)
        with pytest.raises(ours.WaitTimeoutError):
            callee.serve(timeout=0.05)  # the refused call sent nothing

        # Fill the request ring, then a call with a timeout waits until a request is served.
        sent = []
        while True:
            try:
                sent.append(caller.call(kind(b"r" * 500), 5))
            except ours.FullError:
                break
        with pytest.raises(ours.FullError):
            caller.call(kind(b"r" * 500), 5)

        def serve_all():
            for _ in range(len(sent) + 1):
                with callee.serve(timeout=5) as rq:
                    assert bytes(rq) == b"r" * 500

        server = threading.Thread(target=serve_all)
        server.start()
        late = caller.call(kind(b"r" * 500), 5, timeout=5)
        server.join(10)
        assert not server.is_alive()
        assert late == sent[-1] + 1

"""Peer death is its own exception: PeerGoneError (a PeerDeadError) once the peer's process has
exited, after everything it published was delivered. The dying peer is the real package,
which itself never notices a dead peer."""

import math
import signal
import threading
import time

import pytest

import tachyon_rs as ours
from conftest import PYTHON, SCRIPTS, finish, spawn

RECEIVERS = {
    "iteration": lambda bus: (m.type_id for m in bus),
    "recv_zero_copy": lambda bus: iter_guards(bus.recv_zero_copy),
    "drain_batch": lambda bus: iter_batches(bus),
}


def iter_guards(acquire):
    while True:
        with acquire() as rx:
            yield rx.type_id


def iter_batches(bus):
    while True:
        with bus.drain_batch(64) as batch:
            types = [batch[i].type_id for i in range(len(batch))]
        yield from types


def listen_in_thread(make):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("bus", make()))
    thread.start()
    return thread, box


@pytest.mark.parametrize("receiver", list(RECEIVERS))
def test_killed_real_producer_raises_peer_gone_after_everything(real, sock, receiver):
    thread, box = listen_in_thread(lambda: ours.Bus.listen(sock, 1 << 20))
    producer = spawn([PYTHON, SCRIPTS / "producer.py", "--socket", sock, "--connect", "--pattern",
                      "--count", 1_000_000, "--size", 64, "--die-after", 5000, "--retry-full"])
    thread.join(15)
    bus = box["bus"]
    received = 0
    started = time.monotonic()
    with pytest.raises(ours.PeerGoneError) as info, bus:
        for type_id in RECEIVERS[receiver](bus):
            assert type_id == 1 + received % 1000
            received += 1
    assert isinstance(info.value, ours.PeerDeadError)
    assert received == 5000  # the producer flushed 5000 messages, then SIGKILLed itself
    assert time.monotonic() - started < 10
    rc, _, _ = finish(producer)
    assert rc == -signal.SIGKILL


def test_send_waiting_for_room_raises_peer_gone_when_consumer_dies(real, sock):
    consumer = spawn([PYTHON, SCRIPTS / "consumer.py", "--socket", sock, "--listen", "--capacity",
                      1 << 16, "--die-after", 100])
    bus = ours.Bus.connect(sock, timeout=15)
    sent = 0
    with pytest.raises(ours.PeerGoneError), bus:
        while True:
            bus.send(bytes((sent * 31 + j) % 256 for j in range(200)), 1 + sent % 1000,
                     timeout=math.inf)
            sent += 1
    assert sent > 100
    rc, _, _ = finish(consumer)
    assert rc == -signal.SIGKILL


def test_rpc_wait_raises_peer_gone_when_callee_is_killed(real, sock):
    callee = spawn([PYTHON, SCRIPTS / "rpc_callee.py", "--socket", sock])
    bus = ours.RpcBus.rpc_connect(sock, timeout=15)
    with bus:
        cid = bus.call(b"abc", 5)
        with bus.wait(cid) as rx:
            assert (rx.type_id, bytes(rx)) == (6, b"abc")
        callee.kill()
        finish(callee)
        cid = bus.call(b"abc", 5)
        with pytest.raises(ours.PeerGoneError):
            bus.wait(cid, timeout=10)


def test_rpc_serve_raises_peer_gone_when_caller_is_killed(real, sock):
    thread, box = listen_in_thread(lambda: ours.RpcBus.rpc_listen(sock, 1 << 16, 1 << 16))
    caller = spawn([PYTHON, SCRIPTS / "rpc_caller.py", "--socket", sock, "--count", 10_000_000,
                    "--sizes", "1..64"])
    thread.join(15)
    bus = box["bus"]
    served = 0
    with pytest.raises(ours.PeerGoneError), bus:
        while True:
            with bus.serve(timeout=10) as rq:
                cid, mt, payload = rq.correlation_id, rq.type_id, bytes(rq)
            bus.reply(cid, payload, mt + 1, timeout=10)
            served += 1
            if served == 2000:
                caller.kill()
    assert served >= 2000
    finish(caller)

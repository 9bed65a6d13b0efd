"""``Bus``: the high-level SPSC bus, a thin layer over the native ``TachyonBus`` (``bus._bus``)."""

from __future__ import annotations

from typing import Iterator, Optional

from . import _tachyon_rs
from ._end import _NativeEnd
from .message import Message


class Bus(_NativeEnd):
    """One end of a tachyon ring. Build it with :meth:`listen` or :meth:`connect`.

    The first send (or ``acquire_tx``) makes this end the producer, the first receive the
    consumer; using the other role afterwards raises ``TachyonError``.
    """

    __slots__ = ("_bus",)

    def __init__(self) -> None:
        """Not for direct use: call ``Bus.listen`` or ``Bus.connect``."""
        self._bus = _tachyon_rs.TachyonBus()

    def _native(self) -> _tachyon_rs.TachyonBus:
        return self._bus

    @classmethod
    def listen(cls, socket_path: str, capacity: int) -> Bus:
        """Create a ``capacity``-byte ring (a power of two), listen at ``socket_path`` and
        block until the peer connects (Ctrl-C raises KeyboardInterrupt)."""
        return cls._listening(socket_path, capacity)

    @classmethod
    def connect(cls, socket_path: str, *, timeout: Optional[float] = None) -> Bus:
        """Attach to the ring of the listener at ``socket_path``. ConnectionError at once when
        nobody listens, unless ``timeout`` (seconds) asks to retry that long."""
        return cls._connected(socket_path, timeout)

    def set_numa_node(self, node_id: int) -> None:
        """Check ``node_id`` (0..63, an online node); ValueError / OSError as upstream.

        The ring's pages are not migrated (see the README's differences)."""
        self._bus.set_numa_node(node_id)

    def set_polling_mode(self, pure_spin: int) -> None:
        """Upstream's pure-spin hint (1 on, 0 off); accepted, see the README's differences."""
        self._bus.set_polling_mode(pure_spin)

    def set_spin_policy(self, policy: str) -> None:
        """How this end waits on an empty ring: ``"adaptive"`` (default) spins only where the
        next message is likely, from the gaps it has seen, and sleeps at once when they are far
        apart; ``"fixed"`` spins its whole window before sleeping (upstream's way); ``"frugal"`` never spins
        (one sleep per message, the least CPU). Not in upstream; makes the end the consumer.
        ValueError for any other name."""
        self._bus.set_spin_policy(policy)

    def send(self, data: bytes, type_id: int = 0, *, timeout: Optional[float] = None) -> None:
        """Copy ``data`` (any contiguous buffer) into one message and publish it.

        A full ring raises ``FullError`` (a ``TachyonError``) at once, as upstream; with
        ``timeout`` (seconds, ``math.inf`` for ever) the call waits for room instead."""
        self._bus.send(data, type_id, timeout=timeout)

    def send_batch(
        self,
        data,
        record_size: int,
        type_id=None,
        *,
        timeout: Optional[float] = None,
        flush: bool = True,
    ) -> int:
        """Send ``data`` (bytes, a numpy array...) as consecutive ``record_size``-byte
        records, one message each, in one call. ``type_id``: one int for every record, or one
        per record (a sequence of ints or a uint32 buffer). Waits for room as needed (for
        ever, or ``timeout`` seconds); returns the number of records sent. (Addition.)"""
        return self._bus.send_batch(data, record_size, type_id, timeout=timeout, flush=flush)

    def __iter__(self) -> Iterator[Message]:
        """Receive for ever, yielding a ``Message`` holding a copy of each payload.

        Ends with ``PeerGoneError`` once the producer's process has exited and everything it
        sent was yielded."""
        recv = self._bus.recv
        while True:
            type_id, data = recv()
            yield Message(type_id=type_id, size=len(data), data=data)

    def send_zero_copy(
        self, size: int, type_id: int = 0, *, timeout: Optional[float] = None
    ) -> _tachyon_rs.TxGuard:
        """A guard over a ``size``-byte message: fill ``memoryview(tx)``, set
        ``tx.actual_size``; leaving the ``with`` block sends and flushes it."""
        return self._bus.acquire_tx_flushing(size, type_id, timeout=timeout)

    def recv_zero_copy(self, *, timeout: Optional[float] = None) -> _tachyon_rs.RxGuard:
        """Block until a message arrives; a guard to read it through ``memoryview(rx)``.
        Release the memoryview before the ``with`` block ends."""
        return self._bus.acquire_rx(timeout=timeout)

    def drain_batch(
        self, max_msgs: int = 1024, spin_threshold: int = 10000, *, timeout: Optional[float] = None
    ) -> _tachyon_rs.RxBatchGuard:
        """Block until at least one message is ready, then take up to ``max_msgs``: a guard
        indexable by position, each item an ``RxMsgView`` (buffer protocol, DLPack)."""
        return self._bus.drain_batch(max_msgs, spin_threshold, timeout=timeout)

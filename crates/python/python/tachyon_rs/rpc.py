"""``RpcBus``: request/reply over two rings, a thin layer over ``TachyonRpcBus`` (``bus._rpc``)."""

from __future__ import annotations

from typing import Optional

from . import _tachyon_rs
from ._end import _NativeEnd


class RpcBus(_NativeEnd):
    """The listener serves (``serve`` / ``reply``), the connector calls (``call`` / ``wait``)."""

    __slots__ = ("_rpc",)

    def __init__(self) -> None:
        """Not for direct use: call ``RpcBus.rpc_listen`` or ``RpcBus.rpc_connect``."""
        self._rpc = _tachyon_rs.TachyonRpcBus()

    def _native(self) -> _tachyon_rs.TachyonRpcBus:
        return self._rpc

    @classmethod
    def rpc_listen(cls, socket_path: str, cap_fwd: int, cap_rev: int) -> RpcBus:
        """Create the request (``cap_fwd``) and reply (``cap_rev``) rings and block until a
        caller connects (Ctrl-C raises KeyboardInterrupt)."""
        return cls._listening(socket_path, cap_fwd, cap_rev)

    @classmethod
    def rpc_connect(cls, socket_path: str, *, timeout: Optional[float] = None) -> RpcBus:
        """Attach to the callee at ``socket_path`` (ConnectionError when nobody listens,
        unless ``timeout`` seconds of retrying are asked for)."""
        return cls._connected(socket_path, timeout)

    def set_polling_mode(self, pure_spin: int) -> None:
        """Upstream's pure-spin hint; accepted, see the README's differences."""
        self._rpc.set_polling_mode(pure_spin)

    def call(
        self,
        payload: bytes,
        msg_type: int,
        max_payload_size: Optional[int] = None,
        spin_threshold: int = 10000,
        *,
        timeout: Optional[float] = None,
    ) -> int:
        """Send a request and return its correlation id (for ``wait``). An empty payload is
        refused (ValueError), as upstream; ``timeout`` waits for room instead of FullError."""
        if type(payload) is bytes:
            # One native call; other buffers go through the guard below.
            return self._rpc.call_bytes(payload, msg_type, max_payload_size, timeout=timeout)
        size = len(payload)
        with self._rpc.acquire_call(
            size if max_payload_size is None else max_payload_size, timeout=timeout
        ) as tx:
            with memoryview(tx) as view:
                view[:size] = payload
            tx.actual_size = size
            tx.msg_type = msg_type
        return tx.out_cid

    def call_zero_copy(
        self, max_payload_size: int, msg_type: int, *, timeout: Optional[float] = None
    ) -> _tachyon_rs.RpcTxGuard:
        """A guard over a request: fill it, set ``actual_size``, leave the block; then read
        ``out_cid``."""
        tx = self._rpc.acquire_call(max_payload_size, timeout=timeout)
        tx.msg_type = msg_type
        return tx

    def wait(
        self, correlation_id: int, spin_threshold: int = 10000, *, timeout: Optional[float] = None
    ) -> _tachyon_rs.RpcRxGuard:
        """Block until the reply to ``correlation_id`` arrives; a guard over it. A reply to
        another call raises PeerDeadError (the reply ring is then unusable)."""
        return self._rpc.wait(correlation_id, spin_threshold, timeout=timeout)

    def serve(
        self, spin_threshold: int = 10000, *, timeout: Optional[float] = None
    ) -> _tachyon_rs.RpcRxGuard:
        """Block until a request arrives; a guard with its ``correlation_id``."""
        return self._rpc.serve(spin_threshold, timeout=timeout)

    def reply(
        self,
        correlation_id: int,
        payload: bytes,
        msg_type: int,
        max_payload_size: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> None:
        """Send the reply to ``correlation_id`` (non-zero; an empty payload is refused as
        upstream)."""
        if type(payload) is bytes:
            self._rpc.reply_bytes(
                correlation_id, payload, msg_type, max_payload_size, timeout=timeout
            )
            return
        size = len(payload)
        with self._rpc.acquire_reply(
            correlation_id, size if max_payload_size is None else max_payload_size, timeout=timeout
        ) as tx:
            with memoryview(tx) as view:
                view[:size] = payload
            tx.actual_size = size
            tx.msg_type = msg_type

    def reply_zero_copy(
        self,
        correlation_id: int,
        max_payload_size: int,
        msg_type: int,
        *,
        timeout: Optional[float] = None,
    ) -> _tachyon_rs.RpcTxGuard:
        """A guard over the reply to ``correlation_id``: fill it, set ``actual_size``, leave
        the block."""
        tx = self._rpc.acquire_reply(correlation_id, max_payload_size, timeout=timeout)
        tx.msg_type = msg_type
        return tx

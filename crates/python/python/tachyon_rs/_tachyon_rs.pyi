"""The native half of tachyon_rs (Rust, PyO3). Prefer the high-level ``Bus`` / ``RpcBus``."""

import types
from typing import Any, Optional, Sequence, Type

from collections.abc import Buffer

class TachyonError(Exception):
    """Base class of every tachyon_rs error."""

class PeerDeadError(TachyonError):
    """The ring cannot be used any more: the peer died or broke the protocol."""

class PeerGoneError(PeerDeadError):
    """The peer process exited; everything it published was delivered first. (Addition.)"""

class CorruptError(PeerDeadError):
    """The ring's shared state broke the format, or an RPC reply answered another call. (Addition.)"""

class FullError(TachyonError):
    """The ring has no room now; pass ``timeout=`` to wait. (Addition; upstream raises TachyonError.)"""

class MessageTooLargeError(TachyonError):
    """The message can never fit this ring. (Addition.)"""

class WaitTimeoutError(TachyonError):
    """A ``timeout=`` given to a waiting call ran out. (Addition.)"""

class TxGuard:
    """A message being written; leave the ``with`` block to send ``actual_size`` bytes."""

    actual_size: int
    type_id: int
    def __enter__(self) -> "TxGuard": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[types.TracebackType] = None,
    ) -> bool: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class RxGuard:
    """A received message (a private copy), read through the buffer protocol."""

    @property
    def actual_size(self) -> int: ...
    @property
    def type_id(self) -> int: ...
    def __enter__(self) -> "RxGuard": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[types.TracebackType] = None,
    ) -> bool: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class RxMsgView:
    """One message of a batch: buffer protocol and DLPack (1-D uint8, CPU)."""

    @property
    def actual_size(self) -> int: ...
    @property
    def type_id(self) -> int: ...
    def __dlpack__(
        self,
        stream: Any = None,
        max_version: Any = None,
        dl_device: Any = None,
        copy: Any = None,
    ) -> Any: ...
    def __dlpack_device__(self) -> tuple[int, int]: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class RxBatchGuard:
    """Up to ``max_msgs`` received messages, indexable."""

    def __enter__(self) -> "RxBatchGuard": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[types.TracebackType] = None,
    ) -> bool: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> RxMsgView: ...

class TachyonBus:
    """One end of a ring (what ``Bus._bus`` holds)."""

    def __init__(self) -> None: ...
    def listen(self, socket_path: str, capacity: int) -> None: ...
    def connect(self, socket_path: str, *, timeout: Optional[float] = None) -> None: ...
    def destroy(self) -> None: ...
    def flush(self) -> None: ...
    def acquire_tx(self, max_payload_size: int, *, timeout: Optional[float] = None) -> TxGuard: ...
    def acquire_tx_flushing(
        self, size: int, type_id: int = 0, *, timeout: Optional[float] = None
    ) -> TxGuard: ...
    def send(self, data: Buffer, type_id: int = 0, *, timeout: Optional[float] = None) -> None: ...
    def send_batch(
        self,
        data: Buffer,
        record_size: int,
        type_id: int | Sequence[int] | Buffer | None = None,
        *,
        timeout: Optional[float] = None,
        flush: bool = True,
    ) -> int: ...
    def acquire_rx(self, spin_threshold: int = 10000, *, timeout: Optional[float] = None) -> RxGuard: ...
    def recv(self, *, timeout: Optional[float] = None) -> tuple[int, bytes]: ...
    def drain_batch(
        self, max_msgs: int = 1024, spin_threshold: int = 10000, *, timeout: Optional[float] = None
    ) -> RxBatchGuard: ...
    def set_numa_node(self, node_id: int) -> None: ...
    def set_polling_mode(self, pure_spin: int) -> None: ...
    def set_spin_policy(self, policy: str) -> None: ...

class RpcTxGuard:
    """A request or reply being written; ``out_cid`` is the call's id after the block."""

    actual_size: int
    msg_type: int
    @property
    def out_cid(self) -> int: ...
    def __enter__(self) -> "RpcTxGuard": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[types.TracebackType] = None,
    ) -> bool: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class RpcRxGuard:
    """A request (serve) or reply (wait), read through the buffer protocol."""

    @property
    def actual_size(self) -> int: ...
    @property
    def type_id(self) -> int: ...
    @property
    def correlation_id(self) -> int: ...
    def __enter__(self) -> "RpcRxGuard": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[types.TracebackType] = None,
    ) -> bool: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class TachyonRpcBus:
    """The two-ring RPC bus (what ``RpcBus._rpc`` holds)."""

    def __init__(self) -> None: ...
    def listen(self, socket_path: str, cap_fwd: int, cap_rev: int) -> None: ...
    def connect(self, socket_path: str, *, timeout: Optional[float] = None) -> None: ...
    def destroy(self) -> None: ...
    def acquire_call(self, max_payload_size: int, *, timeout: Optional[float] = None) -> RpcTxGuard: ...
    def acquire_reply(
        self, correlation_id: int, max_payload_size: int, *, timeout: Optional[float] = None
    ) -> RpcTxGuard: ...
    def call_bytes(
        self,
        payload: bytes,
        msg_type: int,
        max_payload_size: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> int: ...
    def reply_bytes(
        self,
        correlation_id: int,
        payload: bytes,
        msg_type: int,
        max_payload_size: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> None: ...
    def wait(
        self, correlation_id: int, spin_threshold: int = 10000, *, timeout: Optional[float] = None
    ) -> RpcRxGuard: ...
    def serve(self, spin_threshold: int = 10000, *, timeout: Optional[float] = None) -> RpcRxGuard: ...
    def set_polling_mode(self, pure_spin: int) -> None: ...

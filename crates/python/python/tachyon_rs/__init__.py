"""tachyon_rs: tachyon-ipc 0.5.1's Python API on the pure-Rust tachyon ring.

``import tachyon_rs as tachyon`` runs code written for tachyon-ipc unchanged; the same names,
the same behaviour, on the same wire (format v4), so either end may be the real package.
Additions (keyword arguments and new names only): ``timeout=`` on every call that waits or
may find the ring full, ``Bus.send_batch``, ``PeerGoneError`` and the other exception
subclasses, Ctrl-C in every blocking call. See the README's Python section for every
difference.
"""

from ._tachyon_rs import (
    CorruptError,
    FullError,
    MessageTooLargeError,
    PeerDeadError,
    PeerGoneError,
    RpcRxGuard,
    RpcTxGuard,
    RxBatchGuard,
    RxGuard,
    RxMsgView,
    TachyonBus,
    TachyonError,
    TachyonRpcBus,
    TxGuard,
    WaitTimeoutError,
)
from .bus import Bus
from .message import Message
from .rpc import RpcBus
from .rpc_decorator import MSG_TYPE_ERROR, RpcDispatcher, RpcEndpoint, _decode_error, tachyon_rpc
from .type_id import make_type_id, msg_type, route_id

__all__ = [
    "TachyonBus",
    "TachyonError",
    "PeerDeadError",
    "TxGuard",
    "RxGuard",
    "RxBatchGuard",
    "RxMsgView",
    "TachyonRpcBus",
    "RpcTxGuard",
    "RpcRxGuard",
    "Bus",
    "RpcBus",
    "RpcDispatcher",
    "RpcEndpoint",
    "tachyon_rpc",
    "MSG_TYPE_ERROR",
    "Message",
    "make_type_id",
    "msg_type",
    "route_id",
    # Additions
    "PeerGoneError",
    "CorruptError",
    "FullError",
    "MessageTooLargeError",
    "WaitTimeoutError",
]

# The API version this package reproduces (tachyon-ipc's); the package's own version is
# importlib.metadata.version("tachyon-rs").
__version__ = "0.5.1"

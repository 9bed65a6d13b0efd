"""The RPC dispatcher: handlers bound to message types, and the callee loop that runs them."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from .rpc import RpcBus

MSG_TYPE_ERROR: int = 0xFFFF
"""The reply type of a request nobody could answer; its payload is the request's msg_type."""

_ERROR = struct.Struct("!H")


def _encode_error(failed_msg_type: int) -> bytes:
    return _ERROR.pack(failed_msg_type & 0xFFFF)


def _decode_error(payload: bytes) -> int:
    """The msg_type an error reply (``MSG_TYPE_ERROR``) names."""
    return _ERROR.unpack(bytes(payload[:2]))[0]


class RpcEndpoint:
    """A ``memoryview -> bytes`` handler bound to one msg_type.

    Calling it directly (no bus) runs the handler on a memoryview of the payload, so it can be
    unit-tested; ``call(bus, payload)`` makes the remote call and returns the reply's bytes.
    """

    def __init__(self, fn: Callable[[memoryview], bytes], msg_type: int) -> None:
        self._fn = fn
        self.msg_type = msg_type
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, payload: bytes | memoryview) -> bytes:
        if isinstance(payload, (bytes, bytearray)):
            payload = memoryview(payload)
        return self._fn(payload)

    def call(
        self,
        bus: RpcBus,
        payload: bytes,
        on_response: Optional[Callable[[memoryview], Any]] = None,
        spin_threshold: int = 10000,
    ) -> Any:
        """Call this endpoint's msg_type on ``bus`` and wait for the reply: its bytes, or
        ``on_response(memoryview)``'s result (the view is valid only during that call)."""
        cid = bus.call(payload, msg_type=self.msg_type, spin_threshold=spin_threshold)
        with bus.wait(cid, spin_threshold=spin_threshold) as rx:
            with memoryview(rx) as view:
                return view.tobytes() if on_response is None else on_response(view)

    def __repr__(self) -> str:
        return f"RpcEndpoint(msg_type={self.msg_type}, fn={self._fn.__name__!r})"


def tachyon_rpc(msg_type: int) -> Callable[[Callable[[memoryview], bytes]], RpcEndpoint]:
    """Decorator binding a ``memoryview -> bytes`` handler to ``msg_type`` (0..65534; 65535
    is ``MSG_TYPE_ERROR``). The memoryview lives only during the call."""
    if not 0 <= msg_type < MSG_TYPE_ERROR:
        raise ValueError(f"msg_type must be in [0, {MSG_TYPE_ERROR - 1}], got {msg_type}")
    return lambda fn: RpcEndpoint(fn, msg_type)


class RpcDispatcher:
    """Handlers by msg_type, and the callee's serve loop.

    A request with no handler, or whose handler raises, is answered with a
    ``MSG_TYPE_ERROR`` reply first (the caller never hangs), then KeyError / RuntimeError is
    raised here.
    """

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[int, RpcEndpoint] = {}

    def register(self, endpoint: RpcEndpoint) -> RpcDispatcher:
        """Add ``endpoint``; ValueError for a msg_type already taken or ``MSG_TYPE_ERROR``.
        Returns self."""
        if endpoint.msg_type == MSG_TYPE_ERROR:
            raise ValueError(f"msg_type={MSG_TYPE_ERROR:#06x} is reserved for protocol errors")
        taken = self._handlers.get(endpoint.msg_type)
        if taken is not None:
            raise ValueError(f"msg_type={endpoint.msg_type} already registered by {taken.__name__!r}")
        self._handlers[endpoint.msg_type] = endpoint
        return self

    def handler(self, msg_type: int) -> Callable[[Callable[[memoryview], bytes]], RpcEndpoint]:
        """Decorator: make an endpoint of the function and register it."""

        def register(fn: Callable[[memoryview], bytes]) -> RpcEndpoint:
            endpoint = RpcEndpoint(fn, msg_type)
            self.register(endpoint)
            return endpoint

        return register

    def serve_once(self, bus: RpcBus, spin_threshold: int = 10000) -> None:
        """Wait for one request, run its handler on a memoryview of it, send the reply.

        Raises KeyError (no handler) or RuntimeError (the handler raised) after the error reply
        is sent; KeyboardInterrupt and PeerDeadError pass through."""
        failed = None
        with bus.serve(spin_threshold=spin_threshold) as rx:
            cid = rx.correlation_id
            mt = rx.type_id
            endpoint = self._handlers.get(mt)
            if endpoint is not None:
                with memoryview(rx) as view:
                    try:
                        response = endpoint._fn(view)
                    except Exception as exc:  # the caller gets an error reply, we re-raise
                        failed = exc
        if endpoint is None:
            bus.reply(cid, _encode_error(mt), msg_type=MSG_TYPE_ERROR)
            raise KeyError(f"No handler registered for msg_type={mt} (error reply sent to caller, cid={cid})")
        if failed is not None:
            bus.reply(cid, _encode_error(mt), msg_type=MSG_TYPE_ERROR)
            raise RuntimeError(
                f"Handler {endpoint.__name__!r} raised an exception (error reply sent to caller, cid={cid})"
            ) from failed
        bus.reply(cid, response, msg_type=mt)

    def serve_forever(self, bus: RpcBus, spin_threshold: int = 10000) -> None:
        """``serve_once`` in a loop, going on past KeyError / RuntimeError; ends with
        KeyboardInterrupt or PeerDeadError."""
        while True:
            try:
                self.serve_once(bus, spin_threshold=spin_threshold)
            except (KeyError, RuntimeError):
                pass

"""``_NativeEnd``: what ``Bus`` and ``RpcBus`` share. Each wraps one native object
(``TachyonBus`` / ``TachyonRpcBus``) that is built empty, then listens or connects once, and is
destroyed when the ``with`` block ends; only the object and the listen arguments differ."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Optional, Type

if TYPE_CHECKING:  # typing.Self is 3.11+; the annotations are strings (PEP 563)
    from typing import Self


class _NativeEnd:
    __slots__ = ()

    def _native(self) -> Any:
        """The native object this wraps (``Bus._bus``, ``RpcBus._rpc``)."""
        raise NotImplementedError

    @classmethod
    def _listening(cls, socket_path: str, *capacities: int) -> Self:
        end = cls()
        end._native().listen(socket_path, *capacities)
        return end

    @classmethod
    def _connected(cls, socket_path: str, timeout: Optional[float]) -> Self:
        end = cls()
        end._native().connect(socket_path, timeout=timeout)
        return end

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_val: Optional[BaseException],
        exc_tb: Optional[types.TracebackType],
    ) -> None:
        """Unmap the ring(s) and close their descriptors (a ``Bus`` publishes what it sent
        first)."""
        self._native().destroy()

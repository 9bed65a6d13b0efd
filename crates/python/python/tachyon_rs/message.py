"""The message ``Bus.__iter__`` yields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Message:
    """One received message: its type id, its size and a copy of its payload."""

    # Slots by hand: dataclass(slots=True) is 3.10+, and this package runs on 3.9.
    __slots__ = ("type_id", "size", "data")

    type_id: int
    size: int
    data: bytes | memoryview

"""The message ``Bus.__iter__`` yields."""

from dataclasses import dataclass


@dataclass(slots=True)
class Message:
    """One received message: its type id, its size and a copy of its payload."""

    type_id: int
    size: int
    data: bytes | memoryview

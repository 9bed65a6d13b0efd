"""The 16 + 16-bit type id: route in bits 31..16, message type in bits 15..0."""


def make_type_id(route: int, msg_type: int) -> int:
    """Pack ``route`` (bits 31..16) and ``msg_type`` (bits 15..0) into one type id.

    Route 0 keeps the 0.3.x meaning (``make_type_id(0, 42) == 42``); routes from 1 are for RPC.
    Raises ValueError when either is outside 0..65535.
    """
    for name, value in (("route", route), ("msg_type", msg_type)):
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"{name} must be in [0, 65535], got {value}")
    return route << 16 | msg_type


def route_id(type_id: int) -> int:
    """The route: bits 31..16 of ``type_id``."""
    return type_id >> 16 & 0xFFFF


def msg_type(type_id: int) -> int:
    """The message type: bits 15..0 of ``type_id``."""
    return type_id & 0xFFFF

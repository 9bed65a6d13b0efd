//! Type ids: a message's 32-bit tag, route id in the high half and message type in the low.
//!
//! Route ids of 1 and above are reserved for RPC by upstream; plain SPSC traffic uses route 0,
//! so its type id is just the message type.

/// The type id of message type `msg_type` on route `route_id`.
///
/// ```
/// use tachyon_ring::type_id;
/// let id = type_id::compose(2, 7);
/// assert_eq!(id, 0x0002_0007);
/// assert_eq!((type_id::route_id(id), type_id::msg_type(id)), (2, 7));
/// ```
pub const fn compose(route_id: u16, msg_type: u16) -> u32 {
    ((route_id as u32) << 16) | msg_type as u32
}

/// The route id: bits 31..16.
pub const fn route_id(type_id: u32) -> u16 {
    (type_id >> 16) as u16
}

/// The message type: bits 15..0.
pub const fn msg_type(type_id: u32) -> u16 {
    type_id as u16
}

//! tachyon-ipc's type-id helpers, on `tachyon_ring::type_id`.

/// The type id of `msg_type` on route `route` (route in bits 31..16).
#[inline]
pub fn make_type_id(route: u16, msg_type: u16) -> u32 {
    tachyon_ring::type_id::compose(route, msg_type)
}

/// Bits 31..16 of a type id.
#[inline]
pub fn route_id(type_id: u32) -> u16 {
    tachyon_ring::type_id::route_id(type_id)
}

/// Bits 15..0 of a type id.
#[inline]
pub fn msg_type(type_id: u32) -> u16 {
    tachyon_ring::type_id::msg_type(type_id)
}

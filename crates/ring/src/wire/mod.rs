// Floor: base (beside error and trace); imports nothing else from the crate.
//! The wire: what this crate and tachyon-ipc agree on byte for byte.
//!
//! - `layout`: every constant, offset and `#[repr(C)]` type of format version 4.
//! - `type_id`: a message's 32-bit tag, route and message type.
pub mod layout;
pub mod type_id;

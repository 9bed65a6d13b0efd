//! The wire format, shared with tachyon-ipc.
pub mod layout;
pub mod type_id;

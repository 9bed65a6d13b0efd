//! The C types of the ABI: the error and state enums and the message view, laid out as
//! upstream's `tachyon.h` lays them out (the tests assert sizes, offsets and values).
#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// What a call of the C ABI returned: 0 for success, upstream's numbers for every failure.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tachyon_error_t {
    /// The call succeeded.
    TACHYON_SUCCESS = 0,
    /// A required pointer (handle, payload, out-parameter) was NULL, or the handle was
    /// destroyed.
    TACHYON_ERR_NULL_PTR = 1,
    /// Out of memory.
    TACHYON_ERR_MEM = 2,
    /// The shared memory could not be created (`memfd_create`).
    TACHYON_ERR_OPEN = 3,
    /// The shared memory could not be sized (`ftruncate`).
    TACHYON_ERR_TRUNCATE = 4,
    /// The shared memory's mode could not be set (`fchmod`).
    TACHYON_ERR_CHMOD = 5,
    /// The shared memory could not be sealed.
    TACHYON_ERR_SEAL = 6,
    /// The shared memory could not be mapped, or its arena header is not tachyon's.
    TACHYON_ERR_MAP = 7,
    /// A size, capacity, node or correlation id out of range, or a NULL path on listen or
    /// connect (as upstream reports it).
    TACHYON_ERR_INVALID_SZ = 8,
    /// The ring has no room for the message.
    TACHYON_ERR_FULL = 9,
    /// The ring holds no message.
    TACHYON_ERR_EMPTY = 10,
    /// The Unix-socket bootstrap failed (nobody listening, address in use, short handshake).
    TACHYON_ERR_NETWORK = 11,
    /// Anything else: a commit or rollback without an acquire, a commit longer than the slot,
    /// a call on the wrong end, a failed system call.
    TACHYON_ERR_SYSTEM = 12,
    /// A signal interrupted the call.
    TACHYON_ERR_INTERRUPTED = 13,
    /// The peer speaks another wire format, or is the other kind of bus (SPSC vs RPC).
    TACHYON_ERR_ABI_MISMATCH = 14,
}

/// A ring's shared state word, as `tachyon_get_state` reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tachyon_state_t {
    /// Not formatted yet.
    TACHYON_STATE_UNINITIALIZED = 0,
    /// Being formatted.
    TACHYON_STATE_INITIALIZING = 1,
    /// Usable.
    TACHYON_STATE_READY = 2,
    /// Closed.
    TACHYON_STATE_DISCONNECTED = 3,
    /// Dead: a side found the ring corrupt, an RPC reply answered another call, or (here, not
    /// upstream) the peer process exited after everything it published was taken.
    TACHYON_STATE_FATAL_ERROR = 4,
    /// A NULL or destroyed handle, or a state word outside 0..=4.
    TACHYON_STATE_UNKNOWN = 5,
}

impl tachyon_state_t {
    /// The enum value of a state word read from shared memory.
    pub(crate) fn from_word(word: u32) -> tachyon_state_t {
        match word {
            0 => tachyon_state_t::TACHYON_STATE_UNINITIALIZED,
            1 => tachyon_state_t::TACHYON_STATE_INITIALIZING,
            2 => tachyon_state_t::TACHYON_STATE_READY,
            3 => tachyon_state_t::TACHYON_STATE_DISCONNECTED,
            4 => tachyon_state_t::TACHYON_STATE_FATAL_ERROR,
            _ => tachyon_state_t::TACHYON_STATE_UNKNOWN,
        }
    }
}

/// One message of a batch (`tachyon_acquire_rx_batch`, `tachyon_drain_batch`): 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tachyon_msg_view_t {
    /// The payload, in place in shared memory; valid until the batch is committed.
    pub ptr: *const c_void,
    /// Payload bytes.
    pub actual_size: usize,
    /// The whole slot's length (header, payload, padding); read by nothing but the library.
    pub reserved_: usize,
    /// Route id in bits 31..16, message type in bits 15..0.
    pub type_id: u32,
    /// Always 0.
    pub padding_: u32,
}

impl tachyon_msg_view_t {
    /// A view of nothing (what unused entries of a caller's array hold).
    pub(crate) const EMPTY: tachyon_msg_view_t = tachyon_msg_view_t {
        ptr: std::ptr::null(),
        actual_size: 0,
        reserved_: 0,
        type_id: 0,
        padding_: 0,
    };
}

//! The wire: every constant, offset and byte layout of Tachyon format version 4.
//!
//! This module is the only place the numbers of the wire live. Everything else in the crate
//! names them from here. `docs/wire-format.md` explains the format in prose; the compile-time
//! assertions at the end of this file (before its tests) pin the layouts to it.

use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::{Pod, Zeroable};

/// `"TACH"` read as a native-endian `u32`: first field of the handshake and of the arena.
pub const MAGIC: u32 = 0x5441_4348;
/// The format version this crate speaks.
pub const VERSION: u32 = 4;
/// Slot alignment and slot-header length: every slot starts on a 64-byte boundary of the ring.
pub const MSG_ALIGNMENT: u32 = 64;
/// Bytes of the slot header that precede each payload.
pub const SLOT_HEADER_LEN: usize = 64;
/// Bytes of the arena header that precede the ring in the shared region.
pub const ARENA_HEADER_LEN: usize = 768;
/// The smallest ring the format allows.
pub const MIN_CAPACITY: usize = 64;
/// The largest ring the handshake can describe: `shm_size = 768 + capacity` must fit a `u32`,
/// and the capacity must be a power of two, so 2 GiB is the largest.
pub const MAX_CAPACITY: usize = 1 << 31;
/// `size` value of a skip header: the rest of the ring up to its end is padding.
pub const SKIP_MARKER: u32 = u32::MAX;
/// The largest payload a slot header can describe.
pub const MAX_PAYLOAD: usize = u32::MAX as usize - SLOT_HEADER_LEN;
/// Both sides publish their cursor after this many commits (and on flush).
pub const PUBLISH_BATCH: u32 = 32;
/// Cursors count bytes since the ring was created and never wrap; no real stream gets past
/// 2^62 (about 146 years at 1 GB/s), so a larger cursor is corruption, and cursor arithmetic
/// below it cannot overflow.
pub const MAX_CURSOR: u64 = 1 << 62;
/// Handshake `flags` bit 0: the listener offers an RPC bus (two rings).
pub const FLAG_RPC: u32 = 1;

/// What a tachyon-ring consumer stores in [`ArenaHeader::consumer_features`] (offset 648,
/// padding to upstream): `"TRNG"` in the high half, feature bits in the low half.
pub const CONSUMER_FEATURES: u64 = (0x5452_4E47 << 32) | FEATURE_BARE_SKIP;
/// Feature bit: the consumer re-reads the head after following a skip marker, so a producer
/// may publish a skip marker on its own (upstream's consumer would read a stale slot there).
pub const FEATURE_BARE_SKIP: u64 = 1;

/// True when the `consumer_features` word holds [`CONSUMER_FEATURES`]-style bits including
/// `feature`.
pub const fn consumer_has_feature(features_word: u64, feature: u64) -> bool {
    features_word >> 32 == CONSUMER_FEATURES >> 32 && features_word & feature != 0
}

/// Values of the arena's `state` word.
pub mod state {
    /// Not yet formatted.
    pub const UNINITIALIZED: u32 = 0;
    /// The listener is writing the header.
    pub const INITIALIZING: u32 = 1;
    /// Formatted and usable; stored last, with release ordering.
    pub const READY: u32 = 2;
    /// A side has disconnected.
    pub const DISCONNECTED: u32 = 3;
    /// A consumer found a corrupt slot header; the ring is dead.
    pub const FATAL_ERROR: u32 = 4;
    /// Reserved by upstream.
    pub const UNKNOWN: u32 = 5;
}

/// Values of the arena's `consumer_sleeping` futex word.
pub mod sleeping {
    /// The consumer is awake (spinning or consuming).
    pub const AWAKE: u32 = 0;
    /// The consumer is, or is about to be, in `FUTEX_WAIT` on the word.
    pub const SLEEPING: u32 = 1;
    /// The consumer never sleeps; producers skip the fence and the wake.
    pub const PURE_SPIN: u32 = 2;
}

/// The 32-byte message the listener sends with the memfd(s): eight native-endian `u32`s.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Handshake {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u32,
    /// Ring bytes of the forward (or only) region.
    pub capacity_fwd: u32,
    /// `768 + capacity_fwd`.
    pub shm_size_fwd: u32,
    /// Ring bytes of the reverse region (RPC), else 0.
    pub capacity_rev: u32,
    /// `768 + capacity_rev` (RPC), else 0.
    pub shm_size_rev: u32,
    /// [`MSG_ALIGNMENT`].
    pub msg_alignment: u32,
    /// Bit 0: [`FLAG_RPC`].
    pub flags: u32,
}

impl Handshake {
    /// The handshake a listener sends for one ring (SPSC) or two (RPC). The capacities must
    /// be ones [`capacity_problem`] accepts (they then fit the `u32` fields).
    pub fn new(capacity_fwd: usize, capacity_rev: Option<usize>) -> Self {
        let shm = |cap: usize| (ARENA_HEADER_LEN + cap) as u32;
        Handshake {
            magic: MAGIC,
            version: VERSION,
            capacity_fwd: capacity_fwd as u32,
            shm_size_fwd: shm(capacity_fwd),
            capacity_rev: capacity_rev.unwrap_or(0) as u32,
            shm_size_rev: capacity_rev.map_or(0, shm),
            msg_alignment: MSG_ALIGNMENT,
            flags: if capacity_rev.is_some() { FLAG_RPC } else { 0 },
        }
    }
}

/// The part of a slot header that carries data: the first 24 of its 64 bytes.
///
/// Read once into a local copy before any bound is checked, so a peer that rewrites the header
/// while we look at it cannot make two checks see two different values.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SlotHeader {
    /// Payload bytes committed, or [`SKIP_MARKER`].
    pub size: u32,
    /// Bits 31..16 route id, bits 15..0 message type.
    pub type_id: u32,
    /// Whole slot length in bytes: [`slot_len`] of the requested maximum payload.
    pub reserved_size: u32,
    /// Always 0.
    pub padding: u32,
    /// RPC correlation id; 0 on SPSC buses.
    pub correlation_id: u64,
}

/// Bytes of padding in the shared region that nobody reads; `UnsafeCell` because the peer may
/// write them and we must not claim they are immutable.
#[repr(transparent)]
pub struct Padding<const N: usize>(UnsafeCell<[u8; N]>);

impl<const N: usize> core::fmt::Debug for Padding<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Padding<{N}>")
    }
}

/// The 768-byte arena header at the start of every shared region, as the peer sees it.
///
/// Every field the peer may write is an atomic, so a `&ArenaHeader` into shared memory never
/// asserts that bytes another process writes are immutable. Each cursor sits alone in its own
/// 128-byte block so producer and consumer never share a cache line.
#[repr(C)]
#[derive(Debug)]
pub struct ArenaHeader {
    /// [`MAGIC`].
    pub magic: AtomicU32,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// Ring bytes.
    pub capacity: AtomicU32,
    /// [`MSG_ALIGNMENT`].
    pub msg_alignment: AtomicU32,
    /// One of [`state`]'s values.
    pub state: AtomicU32,
    _pad_state: Padding<108>,
    /// Producer's published write cursor, in bytes since the start; never wraps.
    pub head: AtomicU64,
    _pad_head: Padding<120>,
    /// Consumer's published read cursor, in bytes since the start; never wraps.
    pub tail: AtomicU64,
    _pad_tail: Padding<120>,
    /// The futex word: one of [`sleeping`]'s values.
    pub consumer_sleeping: AtomicU32,
    _pad_sleeping: Padding<124>,
    /// Laid out by the format, never written by tachyon-ipc 0.5.1 nor by us.
    pub producer_heartbeat: AtomicU64,
    _pad_producer_heartbeat: Padding<120>,
    /// Laid out by the format, never written by tachyon-ipc 0.5.1 nor by us. Upstream's
    /// `tachyon-top` shows it as a TSC stamp ("Cons HB Age"), so nothing else may go here.
    pub consumer_heartbeat: AtomicU64,
    /// Padding to upstream (nothing of it reads or writes these bytes after formatting):
    /// our consumer advertises [`CONSUMER_FEATURES`] here, 0 otherwise.
    pub consumer_features: AtomicU64,
    _pad_consumer_heartbeat: Padding<112>,
}

/// Whole slot length for a payload of at most `max_payload` bytes: header plus payload,
/// rounded up to [`MSG_ALIGNMENT`]. `None` when the result would not fit the header's `u32`.
pub const fn slot_len(max_payload: usize) -> Option<usize> {
    if max_payload > MAX_PAYLOAD {
        return None;
    }
    let align = MSG_ALIGNMENT as usize;
    let len = (SLOT_HEADER_LEN + max_payload).div_ceil(align) * align;
    if len > u32::MAX as usize {
        None
    } else {
        Some(len)
    }
}

/// The largest payload a single slot can carry in a ring of `capacity` bytes.
pub const fn max_payload_for(capacity: usize) -> usize {
    capacity.saturating_sub(SLOT_HEADER_LEN)
}

/// Why a (head, tail) pair read from shared memory is impossible for a ring of `capacity`
/// bytes, or `None` when it is consistent.
pub const fn cursor_problem(head: u64, tail: u64, capacity: usize) -> Option<&'static str> {
    let align = SLOT_HEADER_LEN as u64;
    if tail > head {
        Some("tail is ahead of head")
    } else if head - tail > capacity as u64 {
        Some("head is more than a ring ahead of tail")
    } else if head > MAX_CURSOR {
        Some("head is beyond 2^62")
    } else if head % align != 0 || tail % align != 0 {
        Some("a cursor is not 64-byte aligned")
    } else {
        None
    }
}

/// Why `capacity` is not a ring size the format allows, or `None` when it is.
pub const fn capacity_problem(capacity: usize) -> Option<&'static str> {
    if capacity < MIN_CAPACITY {
        Some("it is below the minimum of 64 bytes")
    } else if !capacity.is_power_of_two() {
        Some("it is not a power of two")
    } else if capacity > MAX_CAPACITY {
        Some("it exceeds the maximum of 2 GiB (768 + capacity must fit a u32)")
    } else {
        None
    }
}

/// Bytes of one shared region holding a ring of `capacity` bytes.
pub const fn shm_size(capacity: usize) -> usize {
    ARENA_HEADER_LEN.saturating_add(capacity)
}

// The wire, pinned at compile time.
const _: () = {
    assert!(size_of::<Handshake>() == 32);
    assert!(offset_of!(Handshake, capacity_fwd) == 8);
    assert!(offset_of!(Handshake, shm_size_fwd) == 12);
    assert!(offset_of!(Handshake, capacity_rev) == 16);
    assert!(offset_of!(Handshake, shm_size_rev) == 20);
    assert!(offset_of!(Handshake, msg_alignment) == 24);
    assert!(offset_of!(Handshake, flags) == 28);

    assert!(size_of::<SlotHeader>() == 24);
    assert!(size_of::<SlotHeader>() <= SLOT_HEADER_LEN);
    assert!(offset_of!(SlotHeader, type_id) == 4);
    assert!(offset_of!(SlotHeader, reserved_size) == 8);
    assert!(offset_of!(SlotHeader, correlation_id) == 16);

    assert!(size_of::<ArenaHeader>() == ARENA_HEADER_LEN);
    assert!(offset_of!(ArenaHeader, capacity) == 8);
    assert!(offset_of!(ArenaHeader, msg_alignment) == 12);
    assert!(offset_of!(ArenaHeader, state) == 16);
    assert!(offset_of!(ArenaHeader, head) == 128);
    assert!(offset_of!(ArenaHeader, tail) == 256);
    assert!(offset_of!(ArenaHeader, consumer_sleeping) == 384);
    assert!(offset_of!(ArenaHeader, producer_heartbeat) == 512);
    assert!(offset_of!(ArenaHeader, consumer_heartbeat) == 640);
    assert!(offset_of!(ArenaHeader, consumer_features) == 648);
    assert!(ARENA_HEADER_LEN % SLOT_HEADER_LEN == 0);
    assert!(SLOT_HEADER_LEN == MSG_ALIGNMENT as usize);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_len_rounds_header_and_payload_up_to_64() {
        assert_eq!(slot_len(0), Some(64));
        assert_eq!(slot_len(1), Some(128));
        assert_eq!(slot_len(32), Some(128));
        assert_eq!(slot_len(64), Some(128));
        assert_eq!(slot_len(65), Some(192));
        assert_eq!(slot_len(400), Some(512));
        assert_eq!(slot_len(MAX_PAYLOAD - 63), Some(u32::MAX as usize - 63));
        assert_eq!(slot_len(MAX_PAYLOAD + 1), None);
    }

    #[test]
    fn capacity_rules() {
        assert!(capacity_problem(64).is_none());
        assert!(capacity_problem(1 << 20).is_none());
        assert!(capacity_problem(MAX_CAPACITY).is_none());
        assert!(capacity_problem(32).is_some());
        assert!(capacity_problem(1000).is_some());
        assert!(capacity_problem(MAX_CAPACITY * 2).is_some());
        assert_eq!(shm_size(64), 832);
        assert!(shm_size(MAX_CAPACITY) <= u32::MAX as usize);
    }

    #[test]
    fn handshake_bytes_match_the_spec() {
        let spsc = Handshake::new(1024, None);
        let words: [u32; 8] = bytemuck::cast(spsc);
        assert_eq!(words, [0x5441_4348, 4, 1024, 1792, 0, 0, 64, 0]);
        assert_eq!(&bytemuck::bytes_of(&spsc)[..4], &MAGIC.to_ne_bytes());
        let rpc = Handshake::new(4096, Some(2048));
        let words: [u32; 8] = bytemuck::cast(rpc);
        assert_eq!(words, [0x5441_4348, 4, 4096, 4864, 2048, 2816, 64, 1]);
    }

    #[test]
    fn slot_header_bytes_match_the_spec() {
        let header = SlotHeader {
            size: 5,
            type_id: 0x0002_0007,
            reserved_size: 128,
            padding: 0,
            correlation_id: 9,
        };
        let bytes = bytemuck::bytes_of(&header);
        assert_eq!(&bytes[0..4], &5u32.to_ne_bytes());
        assert_eq!(&bytes[4..8], &0x0002_0007u32.to_ne_bytes());
        assert_eq!(&bytes[8..12], &128u32.to_ne_bytes());
        assert_eq!(&bytes[16..24], &9u64.to_ne_bytes());
    }
}

//! What every entry point shares: the panic barrier, the liveness of a handle, and the
//! mapping from the ring's errors to upstream's codes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tachyon_ring::Error;

use crate::types::tachyon_error_t;

/// A handle's `magic` while it is in use ("TACHLIVE").
const LIVE: u64 = 0x5441_4348_4c49_5645;
/// A handle's `magic` once its last reference was destroyed ("TACHDEAD").
const DEAD: u64 = 0x5441_4348_4445_4144;

/// Runs one entry point's body; a panic inside it becomes `fallback` (the entry point's
/// error value) instead of unwinding into C.
pub(crate) fn ffi<T: Copy>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The life of a handle: its reference count and whether it was destroyed.
///
/// Handles are never freed: the last `destroy` closes the bus (rings unmapped, fds closed)
/// and leaves this header behind as a tombstone, so that a second `destroy` or any call on
/// a destroyed handle reads `DEAD` and fails cleanly instead of touching freed memory. The
/// cost is the small handle struct, once per bus.
#[derive(Debug)]
pub(crate) struct Life {
    magic: AtomicU64,
    refs: AtomicU32,
    /// The peer process exited (after everything it published was taken): reported as
    /// `TACHYON_STATE_FATAL_ERROR`, which upstream's bindings read as "peer dead".
    peer_gone: AtomicBool,
}

impl Life {
    pub(crate) fn new() -> Life {
        Life {
            magic: AtomicU64::new(LIVE),
            refs: AtomicU32::new(1),
            peer_gone: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.magic.load(Ordering::Acquire) == LIVE
    }

    /// One more reference (`tachyon_bus_ref`).
    pub(crate) fn acquire(&self) {
        if self.is_live() {
            self.refs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One reference less; true when it was the last (the caller then closes the bus).
    pub(crate) fn release(&self) -> bool {
        if !self.is_live() {
            return false;
        }
        // AcqRel: the last release sees every use made through the other references.
        let last = self
            .refs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |refs| {
                refs.checked_sub(1)
            })
            .is_ok_and(|before| before == 1);
        if last {
            self.magic.store(DEAD, Ordering::Release);
        }
        last
    }

    /// Records what an error says about the peer.
    pub(crate) fn note(&self, error: &Error) {
        if matches!(error, Error::PeerGone { .. }) {
            self.peer_gone.store(true, Ordering::Release);
        }
    }

    pub(crate) fn peer_gone(&self) -> bool {
        self.peer_gone.load(Ordering::Acquire)
    }
}

/// Upstream's code for an error of the ring.
pub(crate) fn code(error: &Error) -> tachyon_error_t {
    use tachyon_error_t::*;
    match error {
        Error::InvalidCapacity { .. }
        | Error::CapacityLimit { .. }
        | Error::ZeroCorrelationId
        | Error::PayloadLayout { .. } => TACHYON_ERR_INVALID_SZ,
        Error::Full { .. } | Error::MessageTooLarge { .. } | Error::CannotPlace { .. } => {
            TACHYON_ERR_FULL
        }
        Error::AbiMismatch { .. } => TACHYON_ERR_ABI_MISMATCH,
        Error::NobodyListening { .. } | Error::AddressInUse { .. } | Error::Handshake(_) => {
            TACHYON_ERR_NETWORK
        }
        Error::Interrupted(_) | Error::Cancelled(_) => TACHYON_ERR_INTERRUPTED,
        Error::Os { syscall, .. } => match *syscall {
            "memfd_create" => TACHYON_ERR_OPEN,
            "ftruncate" => TACHYON_ERR_TRUNCATE,
            "fchmod" => TACHYON_ERR_CHMOD,
            "fcntl(F_ADD_SEALS)" => TACHYON_ERR_SEAL,
            "mmap" | "madvise(MADV_DONTFORK)" => TACHYON_ERR_MAP,
            "socket" | "bind" | "listen" | "accept" | "accept4" | "connect" | "sendmsg"
            | "recvmsg" | "poll" => TACHYON_ERR_NETWORK,
            _ => TACHYON_ERR_SYSTEM,
        },
        _ => TACHYON_ERR_SYSTEM,
    }
}

/// The slot length upstream reserves for `max` payload bytes, as a payload length: a commit
/// of up to this many bytes is accepted, as upstream accepts any size within the 64-byte
/// rounded slot. `None` beyond what a slot header can describe.
pub(crate) fn padded_payload(max: usize) -> Option<usize> {
    const HEADER: usize = 64;
    if max > u32::MAX as usize - HEADER {
        return None;
    }
    Some((HEADER + max).div_ceil(HEADER) * HEADER - HEADER)
}

/// A socket path from C: NULL gives `None`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
pub(crate) unsafe fn path_from(path: *const std::ffi::c_char) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if path.is_null() {
        return None;
    }
    // SAFETY: the caller promises a NUL-terminated string (the ABI's contract).
    let bytes = unsafe { std::ffi::CStr::from_ptr(path) }.to_bytes();
    Some(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_fallback() {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let value = ffi(tachyon_error_t::TACHYON_ERR_SYSTEM, || panic!("inside"));
        std::panic::set_hook(hook);
        assert_eq!(value, tachyon_error_t::TACHYON_ERR_SYSTEM);
        assert_eq!(ffi(1u8, || 2), 2);
    }

    #[test]
    fn errors_map_to_upstreams_codes() {
        use tachyon_error_t::*;
        let os = |syscall| Error::Os {
            syscall,
            path: None,
            source: std::io::ErrorKind::PermissionDenied.into(),
        };
        assert_eq!(code(&os("memfd_create")), TACHYON_ERR_OPEN);
        assert_eq!(code(&os("ftruncate")), TACHYON_ERR_TRUNCATE);
        assert_eq!(code(&os("fchmod")), TACHYON_ERR_CHMOD);
        assert_eq!(code(&os("fcntl(F_ADD_SEALS)")), TACHYON_ERR_SEAL);
        assert_eq!(code(&os("mmap")), TACHYON_ERR_MAP);
        assert_eq!(code(&os("connect")), TACHYON_ERR_NETWORK);
        assert_eq!(code(&os("flock")), TACHYON_ERR_SYSTEM);
        assert_eq!(code(&Error::Full { needed: 1, free: 0 }), TACHYON_ERR_FULL);
        assert_eq!(code(&Error::Interrupted("x")), TACHYON_ERR_INTERRUPTED);
        assert_eq!(code(&Error::ZeroCorrelationId), TACHYON_ERR_INVALID_SZ);
        assert_eq!(code(&Error::Handshake("short".into())), TACHYON_ERR_NETWORK);
        assert_eq!(code(&Error::Corrupt("x".into())), TACHYON_ERR_SYSTEM);
    }

    #[test]
    fn slots_round_up_as_upstreams() {
        assert_eq!(padded_payload(0), Some(0));
        assert_eq!(padded_payload(1), Some(64));
        assert_eq!(padded_payload(64), Some(64));
        assert_eq!(padded_payload(65), Some(128));
        assert_eq!(
            padded_payload(u32::MAX as usize - 64),
            Some(u32::MAX as usize - 63)
        );
        assert_eq!(padded_payload(u32::MAX as usize - 63), None);
    }

    #[test]
    fn a_handle_dies_with_its_last_reference() {
        let life = Life::new();
        life.acquire();
        assert!(!life.release());
        assert!(life.is_live());
        assert!(life.release());
        assert!(!life.is_live());
        assert!(!life.release(), "a second destroy does nothing");
        life.acquire();
        assert!(!life.is_live(), "a ref does not revive it");
    }
}

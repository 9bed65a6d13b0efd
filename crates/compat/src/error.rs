//! `TachyonError`: upstream's error enum, and how each `tachyon_ring::Error` maps onto it.

use std::fmt;

/// The errors of tachyon-ipc 0.5.1, variant for variant. Upstream's C core reports a code
/// without detail; so does this enum (the `tachyon_ring` error it came from is mapped, not
/// kept, so that matching and `==` behave as upstream's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TachyonError {
    /// A null pointer inside upstream's C layer; here: a socket path with a NUL byte (RPC).
    NullPtr,
    /// Allocation failed.
    OutOfMemory,
    /// `memfd_create` failed.
    OpenFailed,
    /// `ftruncate` of the memfd failed.
    TruncateFailed,
    /// `fchmod` of the memfd failed.
    ChmodFailed,
    /// Sealing the memfd failed.
    SealFailed,
    /// `mmap` failed.
    MapFailed,
    /// A capacity that is not a power of two of at least 64, a NUMA node outside 0..64, an RPC
    /// reply to correlation id 0, or an RPC message type above `u16::MAX`.
    InvalidSize,
    /// No room in the ring for the slot asked for (also: a message that can never fit).
    BufferFull,
    /// No message available.
    BufferEmpty,
    /// A socket call of the handshake failed (nobody listening, a malformed handshake).
    NetworkError,
    /// Any other failure: a commit longer than its slot, a second guard on one bus while
    /// the first is alive, a `Bus` used in both ring roles.
    SystemError,
    /// A signal interrupted a blocking call.
    Interrupted,
    /// The peer speaks another wire version or another kind of bus.
    AbiMismatch,
    /// The peer's process has exited, or the ring was marked fatal (corrupt).
    PeerDead,
    /// A code upstream's C layer did not know; never produced here.
    Unknown(u32),
}

impl fmt::Display for TachyonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::NullPtr => "null pointer (or a path with a NUL byte)",
            Self::OutOfMemory => "out of memory",
            Self::OpenFailed => "cannot create the shared memory file",
            Self::TruncateFailed => "cannot size the shared memory file",
            Self::ChmodFailed => "cannot set the shared memory file's mode",
            Self::SealFailed => "cannot seal the shared memory file",
            Self::MapFailed => "cannot map the shared memory",
            Self::InvalidSize => "invalid size: capacities are powers of two of at least 64",
            Self::BufferFull => "ring buffer full",
            Self::BufferEmpty => "no message available",
            Self::NetworkError => "Unix socket handshake failed",
            Self::SystemError => "system error",
            Self::Interrupted => "interrupted by a signal",
            Self::AbiMismatch => "ABI mismatch: the peer speaks another wire format version",
            Self::PeerDead => "peer process gone, or the ring was marked fatal",
            Self::Unknown(code) => return write!(f, "unknown error code {code}"),
        };
        f.write_str(text)
    }
}

impl std::error::Error for TachyonError {}

impl From<tachyon_ring::Error> for TachyonError {
    /// Upstream's code for the same failure (its C layer's mapping, re-derived from its
    /// documented error codes).
    fn from(error: tachyon_ring::Error) -> Self {
        use tachyon_ring::Error as Ring;
        match error {
            Ring::NobodyListening { .. } | Ring::Handshake(_) => TachyonError::NetworkError,
            Ring::AbiMismatch { .. } => TachyonError::AbiMismatch,
            Ring::InvalidCapacity { .. } | Ring::ZeroCorrelationId => TachyonError::InvalidSize,
            Ring::Full { .. } | Ring::MessageTooLarge { .. } | Ring::CannotPlace { .. } => {
                TachyonError::BufferFull
            }
            Ring::Corrupt(_) | Ring::PeerGone { .. } | Ring::UnexpectedReply { .. } => {
                TachyonError::PeerDead
            }
            Ring::Cancelled(_) => TachyonError::Interrupted,
            Ring::Os { syscall, .. } => os_error(syscall),
            _ => TachyonError::SystemError,
        }
    }
}

/// Which of upstream's codes a failed system call becomes.
fn os_error(syscall: &str) -> TachyonError {
    match syscall {
        s if s.starts_with("memfd") => TachyonError::OpenFailed,
        s if s.starts_with("ftruncate") => TachyonError::TruncateFailed,
        s if s.starts_with("fchmod") => TachyonError::ChmodFailed,
        s if s.contains("SEAL") || s.contains("seal") => TachyonError::SealFailed,
        s if s.starts_with("mmap") => TachyonError::MapFailed,
        s if [
            "socket", "bind", "listen", "accept", "connect", "sendmsg", "recvmsg", "poll",
        ]
        .iter()
        .any(|call| s.starts_with(call)) =>
        {
            TachyonError::NetworkError
        }
        _ => TachyonError::SystemError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_errors_map_to_upstream_codes() {
        let full = tachyon_ring::Error::Full {
            needed: 128,
            free: 0,
        };
        assert_eq!(TachyonError::from(full), TachyonError::BufferFull);
        let gone = tachyon_ring::Error::PeerGone {
            pid: 1,
            messages: 0,
        };
        assert_eq!(TachyonError::from(gone), TachyonError::PeerDead);
        let corrupt = tachyon_ring::Error::Corrupt("x".into());
        assert_eq!(TachyonError::from(corrupt), TachyonError::PeerDead);
        assert_eq!(os_error("memfd_create"), TachyonError::OpenFailed);
        assert_eq!(os_error("connect"), TachyonError::NetworkError);
        assert_eq!(os_error("getrandom"), TachyonError::SystemError);
        // Our own wording (upstream's text is not copied).
        assert_eq!(
            TachyonError::Unknown(99).to_string(),
            "unknown error code 99"
        );
    }
}

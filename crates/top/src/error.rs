//! Why a ring, or a process, could not be looked at. Every variant names its cause; none of
//! them stops the rest of a snapshot.

use std::path::PathBuf;

/// Why a ring's header could not be read, or why what was read is not a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Opening the memfd (through `/proc/PID/fd/N` or `/proc/PID/map_files/START-END`) was
    /// refused: another uid, no ptrace right, or (for `map_files`) no `CAP_SYS_ADMIN`.
    #[error("cannot inspect: opening {path} was refused ({reason}); run as root or as its uid")]
    Refused {
        /// The `/proc` path tried last.
        path: PathBuf,
        /// The error the kernel gave.
        reason: String,
    },
    /// Every process that held the ring exited while we looked.
    #[error("the ring vanished while it was being inspected (its processes exited)")]
    Vanished,
    /// The file is not a sealable memfd, or not sealed against shrinking: its owner could
    /// truncate it under a mapping, so it is never mapped.
    #[error("not mapped: {0}")]
    Unsafe(String),
    /// The file is too short to hold what its header announces (a truncated memfd).
    #[error("truncated: the memfd holds {size} bytes, {needed} are needed ({what})")]
    Truncated {
        /// Bytes in the file.
        size: u64,
        /// Bytes a ring needs.
        needed: u64,
        /// What needs them.
        what: &'static str,
    },
    /// The header does not describe a tachyon ring (magic, version, alignment or capacity).
    #[error("not a tachyon ring: {0}")]
    NotARing(String),
    /// A system call failed.
    #[error("{call}: {reason}")]
    Os {
        /// The call.
        call: &'static str,
        /// The error.
        reason: String,
    },
}

impl InspectError {
    pub(crate) fn os(call: &'static str, error: impl std::fmt::Display) -> Self {
        InspectError::Os {
            call,
            reason: error.to_string(),
        }
    }
}

/// Errors of the monitor as a whole (not of one ring): `/proc` itself unreadable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/proc` could not be listed.
    #[error("cannot list /proc: {0}")]
    Proc(std::io::Error),
}

//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong on a bus, each variant naming its cause.
///
/// Variants carry the values involved ("peer sent version 3, we speak 4") so that a log line is
/// enough to act on. [`Error::is_fatal`] tells whether the bus can still be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `connect` found no listener at the path (no socket file, or nobody accepting).
    #[error("nobody is listening on {}: {source}", path.display())]
    NobodyListening {
        /// The socket path.
        path: PathBuf,
        /// What `connect(2)` said.
        source: io::Error,
    },

    /// Another process is listening on the socket path: `listen` refuses to take it over
    /// (as TCP's `EADDRINUSE`), where upstream would unlink its socket and strand it.
    #[error("address in use: a process is listening on {}; not replacing its socket", path.display())]
    AddressInUse {
        /// The socket path.
        path: PathBuf,
    },

    /// The peer speaks another version of the format, or another kind of bus.
    #[error("ABI mismatch: peer sent {field} {}, we speak {}", show(field, *.found), show(field, *.expected))]
    AbiMismatch {
        /// The field of the handshake or arena header that differs.
        field: &'static str,
        /// What this crate speaks.
        expected: u64,
        /// What the peer sent.
        found: u64,
    },

    /// The peer's handshake message was malformed (short, or without the right file descriptors).
    #[error("handshake failed: {0}")]
    Handshake(String),

    /// A ring capacity the format does not allow.
    #[error("invalid ring capacity {capacity}: {reason}")]
    InvalidCapacity {
        /// The capacity asked for or received.
        capacity: u64,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A listener announced a ring larger than this connector accepts
    /// ([`BusOptions::max_capacity`](crate::BusOptions::max_capacity)); nothing was mapped.
    #[error(
        "the listener announced a {capacity}-byte ring, above this connector's max_capacity of \
         {limit} bytes; refusing to map it"
    )]
    CapacityLimit {
        /// Ring bytes the listener announced.
        capacity: u64,
        /// The connector's limit.
        limit: usize,
    },

    /// A message that can never fit, whatever the consumer does.
    #[error("message of {len} bytes needs a {slot_len}-byte slot; the ring holds {capacity} bytes")]
    MessageTooLarge {
        /// Payload bytes asked for.
        len: usize,
        /// Whole slot bytes that payload needs (`u64::MAX` when beyond the format).
        slot_len: u64,
        /// Ring bytes.
        capacity: usize,
    },

    /// A commit claimed more bytes than the slot reserved.
    #[error("commit of {len} bytes into a slot reserved for {reserved} bytes")]
    CommitTooLong {
        /// Bytes claimed by the commit.
        len: usize,
        /// Payload bytes the slot was reserved for.
        reserved: usize,
    },

    /// The slot and the skip padding it needs before the ring's end exceed the whole ring, and
    /// the consumer (upstream's) cannot follow a skip marker published on its own. Permanent
    /// for this size at this ring position; a smaller message may still fit.
    #[error(
        "a {len}-byte message needs {needed} bytes with its wrap padding, more than the \
         {capacity}-byte ring; the consumer cannot take a bare skip marker"
    )]
    CannotPlace {
        /// Payload bytes asked for.
        len: usize,
        /// Skip padding plus slot bytes.
        needed: usize,
        /// Ring bytes.
        capacity: usize,
    },

    /// The ring has no room for the message now (non-blocking send).
    #[error("ring full: {needed} bytes needed, {free} free")]
    Full {
        /// Bytes the slot (and any skip) needs.
        needed: usize,
        /// Bytes free as far as the producer knows.
        free: usize,
    },

    /// A blocking call reached its deadline.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),

    /// The ring's shared state is inconsistent: a slot header or a cursor the format forbids.
    /// The ring is marked fatal (state 4) and cannot be used again.
    #[error("ring is corrupt: {0}")]
    Corrupt(String),

    /// The peer process exited. Every message it had published was delivered first.
    #[error("peer process {pid} has exited ({messages} messages passed on this end)")]
    PeerGone {
        /// The peer's process id.
        pid: i32,
        /// Messages this end received (consumer) or sent (producer) before noticing.
        messages: u64,
    },

    /// An RPC reply answered another call than the one waited for; the reply ring is marked
    /// fatal, as upstream does.
    #[error("RPC reply carries correlation id {found}, the call waited for is {expected}")]
    UnexpectedReply {
        /// The id waited for.
        expected: u64,
        /// The id the reply carried.
        found: u64,
    },

    /// A reply to correlation id 0, which no call has.
    #[error("refusing to reply to correlation id 0: calls are numbered from 1")]
    ZeroCorrelationId,

    /// A blocking call ended because its [`CancelToken`](crate::CancelToken) was cancelled;
    /// the text says what it was waiting for. Signals never cause this by themselves (a
    /// program turns the signals it wants into a cancel).
    #[error("cancelled while {0}")]
    Cancelled(&'static str),

    /// A blocking call that asked to end on a signal ([`Consumer::recv_interruptible`],
    /// [`Caller::wait_interruptible`], [`Callee::serve_interruptible`], a `listen` with
    /// [`BusOptions::interruptible_listen`]) had its wait interrupted (`EINTR`); nothing was
    /// taken. Every other call retries `EINTR` and never returns this.
    ///
    /// [`Consumer::recv_interruptible`]: crate::Consumer::recv_interruptible
    /// [`Caller::wait_interruptible`]: crate::Caller::wait_interruptible
    /// [`Callee::serve_interruptible`]: crate::Callee::serve_interruptible
    /// [`BusOptions::interruptible_listen`]: crate::BusOptions::interruptible_listen
    #[error("interrupted by a signal while {0}")]
    Interrupted(&'static str),

    /// A payload read or written as a typed value (`T: Pod`) does not fit the type.
    #[error(
        "payload of {len} bytes is not a {type_name} ({size} bytes, alignment {align}; payloads \
         are 64-byte aligned)"
    )]
    PayloadLayout {
        /// The type asked for.
        type_name: &'static str,
        /// Payload (or slot) bytes.
        len: usize,
        /// `size_of` the type.
        size: usize,
        /// `align_of` the type.
        align: usize,
    },

    /// The guard a [`WriteSlot`](crate::WriteSlot) was reserved through
    /// ([`WriteSlot::reserve_in`](crate::WriteSlot::reserve_in)) dereferenced to another
    /// producer when the slot was committed; nothing was written to either ring.
    #[error(
        "the guard given to reserve_in now reaches another producer than the one the slot was \
         reserved in; nothing was committed"
    )]
    GuardChanged,

    /// A system call failed.
    #[error("{syscall} failed{}: {source}", context_suffix(.path))]
    Os {
        /// The system call (or library call) that failed.
        syscall: &'static str,
        /// The path it was working on, when there is one.
        path: Option<PathBuf>,
        /// What the kernel said.
        source: io::Error,
    },
}

/// Magic numbers read best in hex, everything else in decimal.
fn show(field: &str, value: u64) -> String {
    if field == "magic" {
        format!("{value:#010x}")
    } else {
        value.to_string()
    }
}

fn context_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" on {}", path.display()),
        None => String::new(),
    }
}

impl Error {
    /// True when the bus can no longer be used (corrupt ring, ABI mismatch, OS failure).
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::Full { .. }
                | Error::Timeout(_)
                | Error::Cancelled(_)
                | Error::Interrupted(_)
                | Error::CommitTooLong { .. }
                | Error::MessageTooLarge { .. }
                | Error::CannotPlace { .. }
                | Error::ZeroCorrelationId
                | Error::PayloadLayout { .. }
                | Error::GuardChanged
        )
    }

    pub(crate) fn os(syscall: &'static str, source: impl Into<io::Error>) -> Self {
        Error::Os {
            syscall,
            path: None,
            source: source.into(),
        }
    }

    pub(crate) fn os_at(
        syscall: &'static str,
        path: &std::path::Path,
        source: impl Into<io::Error>,
    ) -> Self {
        Error::Os {
            syscall,
            path: Some(path.to_path_buf()),
            source: source.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let err = Error::AbiMismatch {
            field: "version",
            expected: 4,
            found: 3,
        };
        assert_eq!(
            err.to_string(),
            "ABI mismatch: peer sent version 3, we speak 4"
        );
        let err = Error::os_at(
            "connect",
            std::path::Path::new("/tmp/x.sock"),
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(
            err.to_string()
                .starts_with("connect failed on /tmp/x.sock: ")
        );
        assert!(!Error::Full { needed: 1, free: 0 }.is_fatal());
        assert!(Error::Corrupt("x".into()).is_fatal());
    }
}

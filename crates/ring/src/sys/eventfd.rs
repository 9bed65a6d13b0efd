//! The eventfd a cancel token makes readable, so that a `poll` on a socket can wait for the
//! cancel too.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A new eventfd with a count of 0, close-on-exec and non-blocking; `None` when the process
/// cannot have one (it is out of file descriptors).
pub(crate) fn eventfd() -> Option<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a non-negative result is a new fd that we own.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    (raw >= 0).then(|| {
        // SAFETY: `raw` was just returned by eventfd and is owned by nothing else.
        unsafe { OwnedFd::from_raw_fd(raw) }
    })
}

/// Adds 1 to the eventfd's count, which makes it readable. One `write`: async-signal-safe.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A failure (the
    // counter is full, which one write cannot cause) leaves it readable anyway.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

//! File locks: the `flock` a listener holds on its socket's directory.

use std::os::fd::{AsFd, AsRawFd};

/// Takes an exclusive `flock` on `file` without waiting (`LOCK_EX | LOCK_NB`). The lock is
/// released when the file's last fd closes. The error is the kernel's: `WouldBlock` while
/// another holder has it, `Interrupted` on a signal.
pub(crate) fn try_lock_exclusive(file: &impl AsFd) -> std::io::Result<()> {
    let fd = file.as_fd();
    // SAFETY: flock takes an fd that `file` owns and keeps open, and flags; no memory is
    // passed.
    let rc = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

//! Who is on the other end: the peer's credentials from the socket, and a pidfd that tells
//! when it has exited (upstream has no peer-death detection: its consumer waits forever).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, sockopt};

use crate::error::{Error, Result};
use crate::trace::lifecycle;

/// The peer process, as the kernel vouches for it at connect time (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// Watches the peer process through a pidfd: readable once it has exited.
#[derive(Debug)]
pub(crate) struct PeerWatch {
    pub(crate) credentials: PeerCredentials,
    pidfd: OwnedFd,
}

impl PeerWatch {
    /// Reads the peer's credentials from a connected Unix socket and takes a pidfd for it:
    /// `SO_PEERPIDFD` where the kernel has it (no pid-reuse race), else `pidfd_open(pid)`.
    pub(crate) fn from_socket(socket: &impl AsFd) -> Result<PeerWatch> {
        let cred = getsockopt(socket, sockopt::PeerCredentials)
            .map_err(|e| Error::os("getsockopt(SO_PEERCRED)", e))?;
        let credentials = PeerCredentials {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
        };
        let pidfd = match getsockopt(socket, sockopt::PeerPidfd) {
            Ok(fd) => fd,
            Err(_) => pidfd_open(credentials.pid)?,
        };
        Ok(PeerWatch { credentials, pidfd })
    }

    /// True once the peer process has exited. One `poll` syscall: call it only while waiting.
    pub(crate) fn has_exited(&self) -> bool {
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) => n > 0,
            Err(_) => false,
        }
    }

    /// Announces the peer a handshake completed with (a `tracing` event).
    pub(crate) fn announce(&self, role: &'static str) {
        let PeerCredentials { pid, uid, gid } = self.credentials;
        lifecycle!(info, pid, uid, gid, role, "peer connected");
        let _ = (pid, uid, gid, role);
    }

    /// The error a waiting end returns once the peer is gone and nothing is left to deliver.
    pub(crate) fn gone_error(&self, messages: u64) -> Error {
        lifecycle!(warn, pid = self.credentials.pid, messages, "peer gone");
        Error::PeerGone {
            pid: self.credentials.pid,
            messages,
        }
    }
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::os("pidfd_open", std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    debug_assert!(fd.as_raw_fd() >= 0);
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socketpair_peer_is_ourselves_and_alive() {
        let (a, _b) = UnixStream::pair().unwrap();
        let watch = PeerWatch::from_socket(&a).unwrap();
        assert_eq!(watch.credentials.pid, std::process::id() as i32);
        assert_eq!(watch.credentials.uid, nix::unistd::geteuid().as_raw());
        assert!(!watch.has_exited());
    }

    #[test]
    fn an_exited_child_is_seen_as_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pidfd = pidfd_open(child.id() as i32).unwrap();
        child.wait().unwrap();
        let watch = PeerWatch {
            credentials: PeerCredentials {
                pid: child.id() as i32,
                uid: 0,
                gid: 0,
            },
            pidfd,
        };
        assert!(watch.has_exited());
    }
}

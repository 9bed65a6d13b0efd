//! Who is on the other end: the peer's credentials from the socket, and a pidfd that tells
//! when it has exited (upstream has no peer-death detection: its consumer waits forever).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, sockopt};

use crate::error::{Error, Result};

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

    /// The error a waiting end returns once the peer is gone and nothing is left to deliver.
    pub(crate) fn gone_error(&self, messages: u64) -> Error {
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

#[cfg(test)]
pub(crate) mod mutant_kills {
    //! Peer watches for the ends' peer-death tests, and the claims of this module that a
    //! mutation test showed no other test would notice breaking.
    use super::*;

    /// A watch on a child process that has already exited.
    pub(crate) fn exited_peer() -> PeerWatch {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pidfd = pidfd_open(child.id() as i32).unwrap();
        child.wait().unwrap();
        PeerWatch {
            credentials: PeerCredentials {
                pid: child.id() as i32,
                uid: 0,
                gid: 0,
            },
            pidfd,
        }
    }

    #[test]
    fn the_gone_error_names_the_pid_and_the_count() {
        let peer = exited_peer();
        let pid = peer.credentials.pid;
        assert!(peer.has_exited());
        assert!(matches!(
            peer.gone_error(12_345),
            Error::PeerGone { pid: p, messages: 12_345 } if p == pid
        ));
    }

    #[test]
    fn a_socketpair_peer_has_our_gid_and_a_pidfd_of_a_live_process() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let watch = PeerWatch::from_socket(&a).unwrap();
        assert_eq!(watch.credentials.gid, nix::unistd::getegid().as_raw());
        assert!(!watch.has_exited());
        let ours = pidfd_open(std::process::id() as i32).unwrap();
        assert!(ours.as_raw_fd() >= 0);
        assert!(pidfd_open(-1).is_err(), "no process has pid -1");
    }
}

//! Who is on the other end: the peer's credentials from the socket, and a pidfd (or, without
//! one, its `/proc/PID/stat` start time) that tells when it has exited (upstream has no
//! peer-death detection: its consumer waits forever).

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

/// What a listener met before its peer was served: connectors it turned away, and how it
/// watches the one it served. With the `tracing` feature, each is also an event as it happens
/// (level `warn`, target `tachyon_ring`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenReport {
    /// Connectors refused for their uid ([`AllowedPeers`](crate::AllowedPeers)); each got
    /// its connection closed without any fd.
    pub refused: u32,
    /// Connectors gone before the handshake reached them (connected and closed: `EPIPE`,
    /// `ECONNRESET`), or whose credentials could not be read.
    pub vanished: u32,
    /// How the served peer's death is watched.
    pub liveness: PeerLiveness,
}

/// How a bus watches for its peer's death.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerLiveness {
    /// A pidfd (`SO_PEERPIDFD`, else `pidfd_open`): exact, immune to pid reuse.
    Pidfd,
    /// No pidfd could be had (kernel before 5.3, a sandbox that denies `pidfd_open`): the
    /// peer counts as gone once `/proc/PID/stat` no longer shows a live process that started
    /// when the peer did (its start time rules out a reused pid).
    ProcStat,
    /// Neither (the peer's pid is not visible in our PID namespace, or `/proc` is not
    /// mounted): the peer's death is not detected, as with upstream.
    Unknown,
}

/// Watches the peer process: a pidfd, readable once it has exited, or the fallbacks of
/// [`PeerLiveness`].
#[derive(Debug)]
pub(crate) struct PeerWatch {
    pub(crate) credentials: PeerCredentials,
    liveness: Liveness,
}

#[derive(Debug)]
enum Liveness {
    Pidfd(OwnedFd),
    /// The peer's start time in clock ticks after boot (`/proc/PID/stat` field 22).
    ProcStat(u64),
    Unknown,
}

impl PeerWatch {
    /// Reads the peer's credentials from a connected Unix socket and takes a pidfd for it:
    /// `SO_PEERPIDFD` where the kernel has it (no pid-reuse race), else `pidfd_open(pid)`,
    /// else the `/proc` fallback of [`PeerLiveness::ProcStat`]. Fails only when the
    /// credentials cannot be read.
    pub(crate) fn from_socket(socket: &impl AsFd) -> Result<PeerWatch> {
        let cred = getsockopt(socket, sockopt::PeerCredentials)
            .map_err(|e| Error::os("getsockopt(SO_PEERCRED)", e))?;
        let credentials = PeerCredentials {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
        };
        let liveness = match getsockopt(socket, sockopt::PeerPidfd) {
            Ok(fd) => Liveness::Pidfd(fd),
            Err(_) => match pidfd_open(credentials.pid) {
                Ok(fd) => Liveness::Pidfd(fd),
                Err(_) => Self::fallback(credentials.pid),
            },
        };
        Ok(PeerWatch {
            credentials,
            liveness,
        })
    }

    fn fallback(pid: i32) -> Liveness {
        // SO_PEERCRED reports pid 0 for a peer outside our PID namespace.
        match (pid > 0).then(|| proc_start_time(pid)).flatten() {
            Some(started) => Liveness::ProcStat(started),
            None => Liveness::Unknown,
        }
    }

    /// How this watch tells that the peer has exited.
    pub(crate) fn liveness(&self) -> PeerLiveness {
        match self.liveness {
            Liveness::Pidfd(_) => PeerLiveness::Pidfd,
            Liveness::ProcStat(_) => PeerLiveness::ProcStat,
            Liveness::Unknown => PeerLiveness::Unknown,
        }
    }

    /// True once the peer process has exited. One `poll` syscall (or one read of
    /// `/proc/PID/stat`): call it only while waiting.
    pub(crate) fn has_exited(&self) -> bool {
        match &self.liveness {
            Liveness::Pidfd(pidfd) => {
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::ZERO) {
                    Ok(n) => n > 0,
                    Err(_) => false,
                }
            }
            Liveness::ProcStat(started) => proc_start_time(self.credentials.pid) != Some(*started),
            Liveness::Unknown => false,
        }
    }

    /// Announces the peer a handshake completed with (a `tracing` event).
    pub(crate) fn announce(&self, role: &'static str) {
        let PeerCredentials { pid, uid, gid } = self.credentials;
        lifecycle!(info, pid, uid, gid, role, "peer connected");
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

/// Start time (field 22 of `/proc/PID/stat`) of a live process: `None` when it has exited,
/// is a zombie (exited, not yet reaped), or cannot be read.
fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: parse after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace(); // field 3 onwards
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok() // field 22
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
impl Liveness {
    fn is_unknown(&self) -> bool {
        matches!(self, Liveness::Unknown)
    }
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
            liveness: Liveness::Pidfd(pidfd),
        };
        assert!(watch.has_exited());
    }

    #[test]
    fn without_a_pidfd_proc_stat_tells_a_live_peer_from_an_exited_or_reused_one() {
        let credentials = |pid: u32| PeerCredentials {
            pid: pid as i32,
            uid: 0,
            gid: 0,
        };
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let watch = PeerWatch {
            credentials: credentials(child.id()),
            liveness: PeerWatch::fallback(child.id() as i32),
        };
        assert_eq!(watch.liveness(), PeerLiveness::ProcStat);
        assert!(!watch.has_exited());
        child.kill().unwrap();
        // Killed but not yet reaped (a zombie) already counts as gone.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(watch.has_exited());
        child.wait().unwrap();
        assert!(watch.has_exited());
        // Our own pid, but a start time that is not ours: a reused pid.
        let reused = PeerWatch {
            credentials: credentials(std::process::id()),
            liveness: Liveness::ProcStat(1),
        };
        assert!(reused.has_exited());
        // A peer outside our PID namespace (pid 0): not watched, never reported gone.
        assert!(PeerWatch::fallback(0).is_unknown());
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
            liveness: Liveness::Pidfd(pidfd),
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

//! Opening the bus end of either direction, through `tachyon-ring`'s public API.

use tachyon_ring::{Bus, CancelToken};

use crate::cli::BusArgs;

/// Listens (creating the ring) or connects, as the arguments say; the token ends the wait.
pub fn open(args: &BusArgs, cancel: CancelToken) -> tachyon_ring::Result<Bus> {
    let options = Bus::options()
        .cancel_token(cancel)
        .connect_timeout(args.connect_timeout);
    let bus = if args.listen {
        tracing::info!(socket = %args.socket.display(), capacity = args.capacity, "listening for the bus peer");
        options.listen(&args.socket, args.capacity)?
    } else {
        options.connect(&args.socket)?
    };
    if let Some(peer) = bus.peer_credentials() {
        tracing::info!(pid = peer.pid, uid = peer.uid, "bus peer connected");
    }
    Ok(bus)
}

/// Watches the bus peer's process through a pidfd: an idle producing end (`in` with nothing to
/// fetch) makes no ring call that would report the peer's exit, so it asks this between
/// fetches.
#[derive(Debug)]
pub struct PeerWatch {
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl PeerWatch {
    /// A watch on the peer the bus connected to (none on a bus without one).
    pub fn new(bus: &Bus) -> PeerWatch {
        let pidfd = bus.peer_credentials().and_then(|peer| {
            // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory
            // is passed.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, peer.pid, 0) };
            if fd < 0 {
                tracing::warn!(
                    pid = peer.pid,
                    "cannot watch the bus peer (pidfd_open failed)"
                );
                return None;
            }
            // SAFETY: the kernel just returned this fd to us and nothing else owns it.
            Some(unsafe {
                <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32)
            })
        });
        PeerWatch { pidfd }
    }

    /// Whether the peer process has exited (a pidfd polls readable from its exit on).
    pub fn is_gone(&self) -> bool {
        let Some(pidfd) = &self.pidfd else {
            return false;
        };
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(pidfd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & libc::POLLIN != 0
    }
}

//! `Listener`: one socket path that serves any number of connectors, each with a ring of its
//! own. Every ring is a standard v4 SPSC ring: a tachyon-ipc 0.5.1 peer's `Bus.connect` to the
//! path works unchanged, as often as it likes.

use std::fmt;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use crate::bus::{Bus, BusOptions};
use crate::error::Result;
use crate::handshake::{HandshakeListener, TurnedAway, WaitLimits};
use crate::ring::shm::Region;
use crate::wire::layout::Handshake;

/// A bound socket that hands a fresh ring to every admitted connector.
///
/// Each [`accept`](Listener::accept) waits for the next connector and returns its [`Bus`],
/// after the same checks as [`BusOptions::listen`]: the socket is `0600` from the moment it
/// appears (or as [`AllowedPeers`](crate::AllowedPeers) says), refused uids get no fd, and the
/// peer's process is watched for death. The socket file stays until the listener is dropped.
/// Feed the buses to a [`Selector`](crate::Selector) to receive from all of them on one thread.
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// use std::time::Duration;
/// use tachyon_ring::Bus;
///
/// let path = std::env::temp_dir().join(format!("tachyon-doc-many-{}.sock", std::process::id()));
/// let mut listener = Bus::options().listen_many(&path, 1 << 16)?;
/// let producers: Vec<_> = (0..3u8)
///     .map(|i| {
///         let path = path.clone();
///         std::thread::spawn(move || -> Result<(), tachyon_ring::Error> {
///             let mut producer = Bus::options()
///                 .connect_timeout(Duration::from_secs(5))
///                 .connect(&path)?
///                 .into_producer();
///             producer.send(1, &[i])?;
///             producer.flush();
///             Ok(())
///         })
///     })
///     .collect();
/// let mut seen = Vec::new();
/// for _ in 0..3 {
///     let mut consumer = listener.accept_timeout(Duration::from_secs(5))?.into_consumer();
///     seen.push(consumer.recv_timeout(Duration::from_secs(5))?.data()[0]);
/// }
/// seen.sort();
/// assert_eq!(seen, [0, 1, 2]);
/// for producer in producers {
///     producer.join().unwrap()?;
/// }
/// # Ok(()) }
/// ```
pub struct Listener {
    socket: HandshakeListener,
    capacity: usize,
    options: BusOptions,
    accepted: u64,
    /// Connectors turned away (refused, or lost before their handshake) so far, counted as
    /// each is turned away.
    turned_away: TurnedAway,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("path", &self.socket.path())
            .field("capacity", &self.capacity)
            .field("accepted", &self.accepted)
            .finish()
    }
}

impl BusOptions {
    /// Binds `path` for many connectors, each to get its own ring of `capacity` bytes; see
    /// [`Listener`]. Returns once bound, without waiting for anyone.
    pub fn listen_many(self, path: impl AsRef<Path>, capacity: usize) -> Result<Listener> {
        // Refuse a bad capacity now, not at the first connector.
        crate::ring::shm::check_capacity(capacity)?;
        let socket = HandshakeListener::bind(path.as_ref(), self.allowed_peers.clone())?;
        Ok(Listener {
            socket,
            capacity,
            options: self,
            accepted: 0,
            turned_away: TurnedAway::default(),
        })
    }
}

impl Listener {
    /// Waits for the next admitted connector (as long as the options' `listen_timeout` allows,
    /// or until their cancel token is cancelled) and returns its bus.
    pub fn accept(&mut self) -> Result<Bus> {
        let timeout = self.options.listen_timeout;
        self.accept_within(timeout)
    }

    /// Like [`accept`](Listener::accept), giving up with
    /// [`Error::Timeout`](crate::Error::Timeout) after `timeout`.
    pub fn accept_timeout(&mut self, timeout: Duration) -> Result<Bus> {
        self.accept_within(Some(timeout))
    }

    fn accept_within(&mut self, timeout: Option<Duration>) -> Result<Bus> {
        let label = format!("{}#{}", self.socket.path().display(), self.accepted);
        let (region, fd) = Region::create_memfd(&label, self.capacity)?;
        let handshake = Handshake::new(self.capacity, None);
        let limits = WaitLimits::new(timeout, self.options.cancel.as_ref());
        // Every connector's uid is checked as it is accepted, on this call as on the first.
        let (peer, report) =
            self.socket
                .hand_over(&handshake, &[fd.as_fd()], limits, &mut self.turned_away)?;
        peer.announce("connector");
        self.accepted += 1;
        let mut bus = Bus::assemble(region, Some(peer), self.options.clone());
        bus.listen_report = Some(report);
        Ok(bus)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// Connectors served so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Connectors refused so far (a uid not allowed), and connectors that left before their
    /// handshake; each was logged, and the listener waited on. Counted as each is turned away,
    /// so an accept that times out or is cancelled after refusing someone still shows them.
    pub fn turned_away(&self) -> (u64, u64) {
        (self.turned_away.refused, self.turned_away.vanished)
    }

    /// Ring bytes each connector gets.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::handshake::AllowedPeers;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::thread::JoinHandle;

    const BOUND: Duration = Duration::from_secs(10);
    /// The uid a stranger connects with when the test runs as root.
    const STRANGER: u32 = 65534;

    /// A socket path in a fresh directory that other uids may traverse (`0755`).
    fn open_dir(tag: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tr-listener-{tag}-"))
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("s.sock");
        (dir, path)
    }

    /// An admitted connector (our own thread) connects and is served by the next accept.
    fn serve_one(listener: &mut Listener) -> Bus {
        let path = listener.path().to_path_buf();
        let connector =
            std::thread::spawn(move || Bus::options().connect_timeout(BOUND).connect(&path));
        let served = listener
            .accept_timeout(BOUND)
            .expect("an admitted connector");
        connector.join().unwrap().expect("the admitted connector");
        served
    }

    /// Connects to `path` as a connector the listener must refuse, and returns, once its
    /// connection is queued, the thread that then counts the bytes it receives before the
    /// listener closes the connection. As root the thread takes uid 65534 for itself alone
    /// (`setresuid` as a raw system call changes only the calling thread); otherwise it stays
    /// our own uid, and the caller makes the listener count that uid as a stranger's.
    fn stranger_connects(path: &Path) -> JoinHandle<std::result::Result<usize, String>> {
        let path = path.to_path_buf();
        let (connected, queued) = mpsc::channel();
        let stranger = std::thread::spawn(move || {
            if nix::unistd::geteuid().is_root() {
                let keep: libc::c_long = -1;
                // SAFETY: setresuid takes three uids and no memory; on Linux the raw system
                // call changes the credentials of this thread only, which ends with the test.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_setresuid,
                        keep,
                        libc::c_long::from(STRANGER),
                        keep,
                    )
                };
                if rc != 0 {
                    return Err(format!("setresuid: {}", std::io::Error::last_os_error()));
                }
            }
            let mut stream = UnixStream::connect(&path).map_err(|e| format!("connect: {e}"))?;
            let _ = connected.send(());
            let mut received = Vec::new();
            stream
                .read_to_end(&mut received)
                .map_err(|e| format!("read: {e}"))?;
            Ok(received.len())
        });
        if queued.recv_timeout(BOUND).is_err() {
            panic!("the stranger did not connect: {:?}", stranger.join());
        }
        stranger
    }

    #[test]
    fn every_accept_checks_the_connectors_uid_and_counts_a_refusal_at_once() {
        let (_dir, path) = open_dir("uid");
        let own = nix::unistd::geteuid().as_raw();
        let mut listener = Bus::options()
            .allowed_peers(AllowedPeers::Uids(vec![65533]))
            .listen_many(&path, 4096)
            .unwrap();
        serve_one(&mut listener);
        for round in 1..=3u64 {
            // Accept number `round + 1`: a stranger comes first.
            if !nix::unistd::geteuid().is_root() {
                // No other uid to connect with: our own uid is made a stranger's for this
                // accept, and only for it.
                listener.socket.set_own_uid(own.wrapping_add(1));
            }
            let stranger = stranger_connects(&path);
            let outcome = listener.accept_timeout(Duration::from_millis(300));
            listener.socket.set_own_uid(own);
            assert!(
                matches!(outcome, Err(Error::Timeout(_))),
                "round {round}: the stranger was served: {:?}",
                outcome.map(|bus| bus.peer_credentials())
            );
            assert_eq!(
                stranger.join().unwrap(),
                Ok(0),
                "round {round}: the stranger received something"
            );
            // Counted as it happened, though this accept served nobody.
            assert_eq!(listener.turned_away(), (round, 0), "round {round}");
            let served = serve_one(&mut listener);
            let uid = served.peer_credentials().unwrap().uid;
            assert!(uid == own || uid == 0, "round {round}: served uid {uid}");
            assert_eq!(served.listen_report().unwrap().refused, 0);
            assert_eq!(listener.accepted(), round + 1);
        }
        assert_eq!(listener.turned_away(), (3, 0));
    }

    #[test]
    fn a_connector_that_vanished_is_counted_though_the_accept_times_out() {
        let (_dir, path) = open_dir("vanished");
        let mut listener = Bus::options().listen_many(&path, 4096).unwrap();
        assert_eq!(
            listener.capacity(),
            4096,
            "the ring size each connector gets"
        );
        for round in 1..=3u64 {
            drop(UnixStream::connect(&path).unwrap());
            let outcome = listener.accept_timeout(Duration::from_millis(200));
            assert!(matches!(outcome, Err(Error::Timeout(_))), "round {round}");
            assert_eq!(listener.turned_away(), (0, round), "round {round}");
        }
        serve_one(&mut listener);
        assert_eq!((listener.accepted(), listener.turned_away()), (1, (0, 3)));
    }
}

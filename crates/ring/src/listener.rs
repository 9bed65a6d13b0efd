//! `Listener`: one socket path that serves any number of connectors, each with a ring of its
//! own. Every ring is a standard v4 SPSC ring: a tachyon-ipc 0.5.1 peer's `Bus.connect` to the
//! path works unchanged, as often as it likes.

use std::fmt;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use crate::bus::{Bus, BusOptions};
use crate::error::Result;
use crate::handshake::{HandshakeListener, WaitLimits};
use crate::layout::Handshake;
use crate::shm::Region;

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
    /// Connectors turned away, and connectors lost before their handshake, so far.
    refused: u64,
    vanished: u64,
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
        crate::shm::check_capacity(capacity)?;
        let socket = HandshakeListener::bind(path.as_ref(), self.allowed_peers.clone())?;
        Ok(Listener {
            socket,
            capacity,
            options: self,
            accepted: 0,
            refused: 0,
            vanished: 0,
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
        let (peer, report) = self.socket.hand_over(&handshake, &[fd.as_fd()], limits)?;
        peer.announce("connector");
        self.accepted += 1;
        self.refused += u64::from(report.refused);
        self.vanished += u64::from(report.vanished);
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
    /// handshake; each was logged, and the listener waited on.
    pub fn turned_away(&self) -> (u64, u64) {
        (self.refused, self.vanished)
    }

    /// Ring bytes each connector gets.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

//! `Bus`: one ring, bootstrapped over a Unix socket (or in process), split into its two ends.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::consumer::Consumer;
use crate::error::Result;
use crate::handshake::{self, AllowedPeers};
use crate::layout::Handshake;
use crate::peer::{PeerCredentials, PeerWatch};
use crate::producer::Producer;
use crate::shm::Region;
use crate::trace::lifecycle;

/// Settings of a bus; build one with [`Bus::options`], then call `listen`, `connect` or
/// `in_memory` on it.
///
/// ```no_run
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// use std::time::Duration;
/// let bus = tachyon_ring::Bus::options()
///     .spin_threshold(50_000)
///     .connect_timeout(Duration::from_secs(5))
///     .connect("/tmp/market.sock")?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BusOptions {
    spin_threshold: u32,
    pure_spin: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) allowed_peers: AllowedPeers,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            spin_threshold: Self::DEFAULT_SPIN_THRESHOLD,
            pure_spin: false,
            connect_timeout: Duration::ZERO,
            allowed_peers: AllowedPeers::SameUser,
        }
    }
}

impl BusOptions {
    /// Upstream's default: spins on an empty ring before the consumer sleeps.
    pub const DEFAULT_SPIN_THRESHOLD: u32 = 10_000;

    /// How many times the consumer polls an empty ring before it sleeps on the futex.
    pub fn spin_threshold(mut self, spins: u32) -> Self {
        self.spin_threshold = spins;
        self
    }

    /// A consumer that never sleeps (burns a core, lowest latency). Producers see it in the
    /// shared futex word and skip their wake-up check.
    pub fn pure_spin(mut self, pure_spin: bool) -> Self {
        self.pure_spin = pure_spin;
        self
    }

    /// How long `connect` keeps retrying while nobody listens (default: no retry, as
    /// upstream).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Who a listener accepts (default: our own uid and root). A refused peer gets no fd.
    pub fn allowed_peers(mut self, allowed: AllowedPeers) -> Self {
        self.allowed_peers = allowed;
        self
    }

    /// Creates a ring of `capacity` bytes, listens at `path` and blocks until one peer has
    /// connected and received it. The socket file is gone when this returns.
    pub fn listen(self, path: impl AsRef<Path>, capacity: usize) -> Result<Bus> {
        let path = path.as_ref();
        let (region, fd) = Region::create_memfd(&path.to_string_lossy(), capacity)?;
        let handshake = Handshake::new(capacity, None);
        lifecycle!(info, path = %path.display(), capacity, kind = "spsc", "listening");
        let peer =
            handshake::listen_and_send(path, &handshake, &[fd.as_fd()], &self.allowed_peers)?;
        peer.announce("connector");
        Ok(Bus::assemble(region, Some(peer), self))
    }

    /// Connects to a listener at `path` and maps the ring it sends.
    pub fn connect(self, path: impl AsRef<Path>) -> Result<Bus> {
        let path = path.as_ref();
        let (handshake, fds, peer) =
            handshake::connect_and_receive(path, self.connect_timeout, false)?;
        let region = Region::attach(
            &fds[0],
            handshake.capacity_fwd as usize,
            handshake.shm_size_fwd as usize,
        )?;
        peer.announce("listener");
        Ok(Bus::assemble(region, Some(peer), self))
    }

    /// A consumer of `region` with these options' spin settings.
    pub(crate) fn consumer(&self, region: Arc<Region>, peer: Option<Arc<PeerWatch>>) -> Consumer {
        Consumer::new(region, self.spin_threshold, self.pure_spin, peer)
    }

    /// A ring on the heap, for both ends in one process (tests, benchmarks, threads).
    pub fn in_memory(self, capacity: usize) -> Result<Bus> {
        Ok(Bus::assemble(Region::heap(capacity)?, None, self))
    }
}

/// One single-producer, single-consumer ring shared with a peer, wire-compatible with
/// tachyon-ipc 0.5.1 (format version 4).
///
/// Either process may listen or connect, and either may then produce or consume: the
/// handshake roles and the ring roles are independent. Take the end you need with
/// [`into_producer`](Bus::into_producer) or [`into_consumer`](Bus::into_consumer); an
/// in-process bus gives both with [`split`](Bus::split).
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// use std::time::Duration;
/// use tachyon_ring::Bus;
///
/// let path = std::env::temp_dir().join(format!("tachyon-doc-{}.sock", std::process::id()));
/// let listener = {
///     let path = path.clone();
///     std::thread::spawn(move || -> Result<(), tachyon_ring::Error> {
///         let mut consumer = Bus::listen(&path, 1 << 16)?.into_consumer();
///         let message = consumer.recv_timeout(Duration::from_secs(5))?;
///         assert_eq!((message.type_id(), message.data()), (1, &b"hello"[..]));
///         Ok(())
///     })
/// };
/// let mut producer = Bus::options()
///     .connect_timeout(Duration::from_secs(5))
///     .connect(&path)?
///     .into_producer();
/// producer.send(1, b"hello")?;
/// listener.join().unwrap()?;
/// # Ok(()) }
/// ```
pub struct Bus {
    region: Arc<Region>,
    peer: Option<Arc<PeerWatch>>,
    options: BusOptions,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("capacity", &self.capacity())
            .field("peer", &self.peer_credentials())
            .field("options", &self.options)
            .finish()
    }
}

impl Bus {
    /// Default options; see [`BusOptions`].
    pub fn options() -> BusOptions {
        BusOptions::default()
    }

    /// [`BusOptions::listen`] with default options.
    pub fn listen(path: impl AsRef<Path>, capacity: usize) -> Result<Bus> {
        Bus::options().listen(path, capacity)
    }

    /// [`BusOptions::connect`] with default options (no retry when nobody listens).
    pub fn connect(path: impl AsRef<Path>) -> Result<Bus> {
        Bus::options().connect(path)
    }

    /// [`BusOptions::in_memory`] with default options.
    pub fn in_memory(capacity: usize) -> Result<Bus> {
        Bus::options().in_memory(capacity)
    }

    fn assemble(region: Region, peer: Option<PeerWatch>, options: BusOptions) -> Bus {
        Bus {
            region: Arc::new(region),
            peer: peer.map(Arc::new),
            options,
        }
    }

    /// Ring bytes.
    pub fn capacity(&self) -> usize {
        self.region.capacity()
    }

    /// The largest payload one message can carry on this ring.
    pub fn max_payload(&self) -> usize {
        crate::layout::max_payload_for(self.capacity())
    }

    /// The peer process as the kernel saw it at connect time; `None` for in-memory buses.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer.as_ref().map(|peer| peer.credentials)
    }

    /// Both ends. Across processes, use only the end your side of the protocol plays.
    pub fn split(self) -> (Producer, Consumer) {
        let producer = Producer::new(Arc::clone(&self.region), self.peer.clone());
        let consumer = self.into_consumer();
        (producer, consumer)
    }

    /// The producing end.
    pub fn into_producer(self) -> Producer {
        Producer::new(self.region, self.peer)
    }

    /// The consuming end.
    pub fn into_consumer(self) -> Consumer {
        self.options.consumer(self.region, self.peer)
    }
}

//! `Bus`: one ring, bootstrapped over a Unix socket (or in process), split into its two ends.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::handshake::{self, AllowedPeers, WaitLimits};
use crate::ring::consumer::Consumer;
use crate::ring::producer::Producer;
use crate::ring::shm::Region;
use crate::ring::state::RingState;
use crate::sys::peer::{ListenReport, PeerCredentials, PeerLiveness, PeerWatch};
use crate::trace::lifecycle;
use crate::wait::OnSignal;
use crate::wait::cancel::CancelToken;
use crate::wait::pace::SpinPolicy;
use crate::wire::layout::{FLAG_RPC, Handshake};

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
    pub(crate) spin_threshold: u32,
    pub(crate) spin_policy: SpinPolicy,
    pure_spin: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) listen_timeout: Option<Duration>,
    handshake_timeout: Duration,
    pub(crate) allowed_peers: AllowedPeers,
    pub(crate) cancel: Option<CancelToken>,
    max_capacity: usize,
    interruptible_listen: bool,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            spin_threshold: Self::DEFAULT_SPIN_THRESHOLD,
            spin_policy: SpinPolicy::default(),
            pure_spin: false,
            connect_timeout: Duration::ZERO,
            listen_timeout: None,
            handshake_timeout: handshake::RECEIVE_TIMEOUT,
            allowed_peers: AllowedPeers::SameUser,
            cancel: None,
            max_capacity: Self::DEFAULT_MAX_CAPACITY,
            interruptible_listen: false,
        }
    }
}

impl BusOptions {
    /// Upstream's default spin threshold (10,000 of its polls). Ours is a span of time, 37 ns
    /// per unit: a 370 µs spin on an empty ring before the consumer sleeps.
    pub const DEFAULT_SPIN_THRESHOLD: u32 = crate::ring::consumer::DEFAULT_SPIN_THRESHOLD;

    /// The largest ring a connector maps by default: 1 GiB per ring.
    pub const DEFAULT_MAX_CAPACITY: usize = 1 << 30;

    /// The largest ring a connector accepts from a listener, per ring (default
    /// [`DEFAULT_MAX_CAPACITY`](BusOptions::DEFAULT_MAX_CAPACITY)). Mapping populates every
    /// page, charged to the connector, so a hostile listener announcing 2 GiB rings could
    /// otherwise make us commit 4 GiB; a larger announcement fails with
    /// [`Error::CapacityLimit`] before anything is mapped.
    pub fn max_capacity(mut self, bytes: usize) -> Self {
        self.max_capacity = bytes;
        self
    }

    /// Refuses a ring the listener announced above [`max_capacity`](BusOptions::max_capacity).
    pub(crate) fn check_announced_capacity(&self, capacity: u32) -> Result<()> {
        if capacity as usize > self.max_capacity {
            return Err(Error::CapacityLimit {
                capacity: capacity.into(),
                limit: self.max_capacity,
            });
        }
        Ok(())
    }

    /// How long the consumer spins on an empty ring before it sleeps on the futex, in units of
    /// 37 ns (one poll of a whole look at the ring on the reference machine; upstream counts
    /// polls of its own loop). Measured in time, not polls, so the window does not shrink when
    /// a poll gets cheaper or a CPU faster: 10,000 (the default) is 370 µs, 0 sleeps at once.
    pub fn spin_threshold(mut self, spins: u32) -> Self {
        self.spin_threshold = spins;
        self
    }

    /// How the consumer (or selector) spends an empty ring within the spin threshold's
    /// window: [`SpinPolicy::Adaptive`] (default) spins only across the part of a gap where
    /// the next message is likely, sleeps at once when messages are too far apart to catch,
    /// and sizes its first nap to the feed; [`SpinPolicy::Fixed`] spins all of it every time;
    /// [`SpinPolicy::Frugal`] never spins (one sleep per message, the least CPU). See
    /// `docs/performance.md`, "Spin policy".
    pub fn spin_policy(mut self, policy: SpinPolicy) -> Self {
        self.spin_policy = policy;
        self
    }

    /// A consumer that never sleeps (burns a core, lowest latency). Producers see it in the
    /// shared futex word and skip their wake-up check.
    pub fn pure_spin(mut self, pure_spin: bool) -> Self {
        self.pure_spin = pure_spin;
        self
    }

    /// How long `connect` keeps retrying while nobody listens, or while the listener's
    /// connection backlog is full (it is not accepting), every 10 ms (default: no retry, as
    /// upstream). Each attempt is non-blocking, so neither case outlives this timeout or the
    /// cancel token; with no retry, a full backlog fails at once with
    /// [`Error::NobodyListening`] saying so, where upstream's
    /// blocking connect would wait for the listener to accept.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long `listen` waits for a peer before [`Error::Timeout`]
    /// (default: as long as it takes, as upstream). The socket file is removed either way.
    pub fn listen_timeout(mut self, timeout: Duration) -> Self {
        self.listen_timeout = Some(timeout);
        self
    }

    /// How long `connect` waits for the listener's handshake once connected (default 10 s):
    /// one deadline for the whole receive, which no signal restarts.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// A token that cancels `listen` / `connect` and, afterwards, every blocking call of the
    /// bus's ends ([`Error::Cancelled`]); see [`CancelToken`].
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Whether a signal that interrupts `listen`'s wait for a peer (SPSC or RPC) ends it with
    /// [`Error::Interrupted`] (default: no, the wait goes on, as every wait of the crate). For
    /// callers that must look at their own signals, as upstream's listen returns on `EINTR`
    /// (its Python binding then checks them and listens again); the socket file is removed
    /// either way.
    pub fn interruptible_listen(mut self, interruptible: bool) -> Self {
        self.interruptible_listen = interruptible;
        self
    }

    /// The limits of `listen`.
    pub(crate) fn listen_limits(&self) -> WaitLimits<'_> {
        WaitLimits {
            on_signal: if self.interruptible_listen {
                OnSignal::Interrupt
            } else {
                OnSignal::Retry
            },
            ..WaitLimits::new(self.listen_timeout, self.cancel.as_ref())
        }
    }

    /// The limits of `connect`.
    pub(crate) fn connect_limits(&self) -> WaitLimits<'_> {
        WaitLimits {
            receive_timeout: self.handshake_timeout,
            ..WaitLimits::new(Some(self.connect_timeout), self.cancel.as_ref())
        }
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
        let (peer, report) = handshake::listen_and_send(
            path,
            &handshake,
            &[fd.as_fd()],
            &self.allowed_peers,
            self.listen_limits(),
        )?;
        peer.announce("connector");
        let mut bus = Bus::assemble(region, Some(peer), self);
        bus.listen_report = Some(report);
        Ok(bus)
    }

    /// Connects to a listener at `path` and maps the ring it sends.
    pub fn connect(self, path: impl AsRef<Path>) -> Result<Bus> {
        let path = path.as_ref();
        let (handshake, fds, peer) =
            handshake::connect_and_receive(path, self.connect_limits(), false)?;
        let region = self.attach_received(&handshake, &fds)?.remove(0);
        peer.announce("listener");
        Ok(Bus::assemble(region, Some(peer), self))
    }

    /// The connector's side of what a listener sent (its handshake already validated): every
    /// announced ring within [`max_capacity`](BusOptions::max_capacity) before anything is
    /// mapped, then each fd checked and mapped by [`Region::attach`]. One region (SPSC) or
    /// two, forward first (RPC).
    pub(crate) fn attach_received(
        &self,
        handshake: &Handshake,
        fds: &[OwnedFd],
    ) -> Result<Vec<Region>> {
        let mut rings = vec![(handshake.capacity_fwd, handshake.shm_size_fwd)];
        if handshake.flags & FLAG_RPC != 0 {
            rings.push((handshake.capacity_rev, handshake.shm_size_rev));
        }
        if fds.len() != rings.len() {
            return Err(Error::Handshake(format!(
                "the listener sent {} file descriptors for {} rings",
                fds.len(),
                rings.len()
            )));
        }
        for &(capacity, _) in &rings {
            self.check_announced_capacity(capacity)?;
        }
        rings
            .iter()
            .zip(fds)
            .map(|(&(capacity, shm_size), fd)| {
                Region::attach(fd, capacity as usize, shm_size as usize)
            })
            .collect()
    }

    /// A consumer of `region` with these options' spin settings and cancel token.
    pub(crate) fn consumer(&self, region: Arc<Region>, peer: Option<Arc<PeerWatch>>) -> Consumer {
        let mut consumer = Consumer::new(region, self.spin_threshold, self.pure_spin, peer);
        consumer.set_cancel_token(self.cancel.clone());
        consumer.set_spin_policy(self.spin_policy);
        consumer
    }

    /// A producer of `region` with these options' cancel token.
    pub(crate) fn producer(&self, region: Arc<Region>, peer: Option<Arc<PeerWatch>>) -> Producer {
        let mut producer = Producer::new(region, peer);
        producer.set_cancel_token(self.cancel.clone());
        producer
    }

    /// A ring on the heap, for both ends in one process (tests, benchmarks, threads).
    pub fn in_memory(self, capacity: usize) -> Result<LocalBus> {
        Ok(LocalBus {
            region: Arc::new(Region::heap(capacity)?),
            options: self,
        })
    }
}

/// One single-producer, single-consumer ring shared with a peer, wire-compatible with
/// tachyon-ipc 0.5.1 (format version 4).
///
/// Either process may listen or connect, and either may then produce or consume: the
/// handshake roles and the ring roles are independent. Take the end you need with
/// [`into_producer`](Bus::into_producer) or [`into_consumer`](Bus::into_consumer). Only an
/// in-process [`LocalBus`] gives both ends: on a bus with a peer, the peer plays one of them,
/// and a second producer or consumer of ours would race it for the same slots.
///
/// ```compile_fail,E0599
/// # fn both_ends(bus: tachyon_ring::Bus) {
/// let (producer, consumer) = bus.split(); // no such method: the peer holds one end
/// # }
/// ```
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
    pub(crate) listen_report: Option<ListenReport>,
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
    pub fn in_memory(capacity: usize) -> Result<LocalBus> {
        Bus::options().in_memory(capacity)
    }

    pub(crate) fn assemble(region: Region, peer: Option<PeerWatch>, options: BusOptions) -> Bus {
        Bus {
            region: Arc::new(region),
            peer: peer.map(Arc::new),
            options,
            listen_report: None,
        }
    }

    /// Ring bytes.
    pub fn capacity(&self) -> usize {
        self.region.capacity()
    }

    /// The largest payload one message can carry on this ring.
    pub fn max_payload(&self) -> usize {
        crate::wire::layout::max_payload_for(self.capacity())
    }

    /// The peer process as the kernel saw it at connect time.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer.as_ref().map(|peer| peer.credentials)
    }

    /// On the listening side: the connectors turned away before the peer was served, and how
    /// the peer's death is watched. `None` on the connecting side.
    pub fn listen_report(&self) -> Option<ListenReport> {
        self.listen_report
    }

    /// How this bus notices its peer's death (a pidfd, or a fallback).
    pub fn peer_liveness(&self) -> Option<PeerLiveness> {
        self.peer.as_ref().map(|peer| peer.liveness())
    }

    /// A handle on the ring's shared state word, for any thread (see [`RingState`]).
    pub fn ring_state(&self) -> RingState {
        RingState::new(&self.region)
    }

    /// The producing end.
    pub fn into_producer(self) -> Producer {
        self.options.producer(self.region, self.peer)
    }

    /// The consuming end.
    pub fn into_consumer(self) -> Consumer {
        self.options.consumer(self.region, self.peer)
    }
}

/// A ring on the heap with both ends in this process ([`Bus::in_memory`]): for threads,
/// tests and benchmarks. Unlike [`Bus`], it can be [`split`](LocalBus::split), because no
/// other process plays either end.
pub struct LocalBus {
    region: Arc<Region>,
    options: BusOptions,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus")
            .field("capacity", &self.capacity())
            .field("options", &self.options)
            .finish()
    }
}

impl LocalBus {
    /// Ring bytes.
    pub fn capacity(&self) -> usize {
        self.region.capacity()
    }

    /// Both ends, one for each of two threads.
    pub fn split(self) -> (Producer, Consumer) {
        let producer = self.options.producer(Arc::clone(&self.region), None);
        let consumer = self.options.consumer(self.region, None);
        (producer, consumer)
    }
}

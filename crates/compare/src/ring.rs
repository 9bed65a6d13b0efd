//! The two implementations behind one trait: [`Ours`] (tachyon-ring) and, with the
//! `compare-upstream` feature, `upstream::Theirs` (tachyon-ipc 0.5.1's C++ core).
//!
//! Both are driven the same way: the producer copies each payload in, waits for space by
//! spinning when the ring is full (publishing what it has first, so the consumer can drain
//! it), and either batches (`send`: published every 32 commits, the wire's rule, or on
//! `flush`) or publishes each message (`send_publishing`: ours `Producer::send`, upstream's
//! `Bus::send`); the consumer receives one message at a time, reads it in place and releases
//! it.

use std::path::Path;
use std::time::Duration;

use tachyon_ring::{Bus, Consumer, Error, Producer};

use crate::Result;

/// Which implementation a trial runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Impl {
    /// tachyon-ring.
    Ours,
    /// tachyon-ipc 0.5.1 (C++ core), feature `compare-upstream`.
    Theirs,
    /// iceoryx2 0.10's publish-subscribe, feature `compare-iceoryx2` (the second anchor).
    Iceoryx2,
}

impl Impl {
    /// `ours` / `theirs`, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::Theirs => "theirs",
            Impl::Iceoryx2 => "iceoryx2",
        }
    }

    /// Whether this build can run it.
    pub fn available(self) -> bool {
        match self {
            Impl::Ours => true,
            Impl::Theirs => cfg!(feature = "compare-upstream"),
            Impl::Iceoryx2 => cfg!(feature = "compare-iceoryx2"),
        }
    }
}

/// How a consumer waits on an empty ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Wait {
    /// Spin 10,000 times, then sleep on the shared futex (both implementations' default).
    Hybrid,
    /// Never sleep; the futex word says so, and producers skip their fence and wake check.
    PureSpin,
}

/// Both implementations' default spin count before the futex.
pub const SPIN_THRESHOLD: u32 = 10_000;

/// How long a connector retries while its listener is not there yet.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The producing end.
pub trait Tx {
    /// Copies `payload` into a new message and commits it without publishing (batched),
    /// spinning while the ring is full.
    fn send(&mut self, type_id: u32, payload: &[u8]) -> Result<()>;
    /// Like `send`, but publishes the message at once: each implementation's own publishing
    /// send, the call a user writes for one message.
    fn send_publishing(&mut self, type_id: u32, payload: &[u8]) -> Result<()>;
    /// Publishes every commit now (and wakes a sleeping consumer).
    fn flush(&mut self);
}

/// The consuming end.
pub trait Rx {
    /// Waits for the next message, hands its type id and payload (in place) to `f`, then
    /// releases it.
    fn recv<R>(&mut self, f: impl FnOnce(u32, &[u8]) -> R) -> Result<R>;
}

/// One implementation: how to open each end, listening or connecting.
pub trait Ring {
    /// Producing end.
    type Tx: Tx;
    /// Consuming end.
    type Rx: Rx;
    /// Creates a ring at `path`, waits for the peer, and produces on it.
    fn listen_tx(path: &Path, capacity: usize) -> Result<Self::Tx>;
    /// Creates a ring at `path`, waits for the peer, and consumes from it.
    fn listen_rx(path: &Path, capacity: usize, wait: Wait) -> Result<Self::Rx>;
    /// Connects (retrying up to [`CONNECT_TIMEOUT`]) and produces.
    fn connect_tx(path: &Path) -> Result<Self::Tx>;
    /// Connects (retrying up to [`CONNECT_TIMEOUT`]) and consumes.
    fn connect_rx(path: &Path, wait: Wait) -> Result<Self::Rx>;
}

/// What a producer does each time it finds the ring full: spin, and yield now and then (two
/// cores shared with the peer and anything else running).
#[inline]
pub fn full_backoff(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if *spins % 1024 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// tachyon-ring.
#[derive(Debug)]
pub struct Ours;

/// tachyon-ring's producer.
#[derive(Debug)]
pub struct OursTx(Producer);

/// tachyon-ring's consumer.
#[derive(Debug)]
pub struct OursRx(Consumer);

fn options(wait: Wait) -> tachyon_ring::BusOptions {
    Bus::options()
        .spin_threshold(SPIN_THRESHOLD)
        .pure_spin(wait == Wait::PureSpin)
        .connect_timeout(CONNECT_TIMEOUT)
}

impl Ring for Ours {
    type Tx = OursTx;
    type Rx = OursRx;

    fn listen_tx(path: &Path, capacity: usize) -> Result<OursTx> {
        Ok(OursTx(
            options(Wait::Hybrid)
                .listen(path, capacity)?
                .into_producer(),
        ))
    }

    fn listen_rx(path: &Path, capacity: usize, wait: Wait) -> Result<OursRx> {
        Ok(OursRx(
            options(wait).listen(path, capacity)?.into_consumer(),
        ))
    }

    fn connect_tx(path: &Path) -> Result<OursTx> {
        Ok(OursTx(options(Wait::Hybrid).connect(path)?.into_producer()))
    }

    fn connect_rx(path: &Path, wait: Wait) -> Result<OursRx> {
        Ok(OursRx(options(wait).connect(path)?.into_consumer()))
    }
}

impl From<Producer> for OursTx {
    fn from(producer: Producer) -> Self {
        OursTx(producer)
    }
}

impl From<Consumer> for OursRx {
    fn from(consumer: Consumer) -> Self {
        OursRx(consumer)
    }
}

impl Tx for OursTx {
    #[inline]
    fn send(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        let mut spins = 0;
        loop {
            match self.0.send_unflushed(type_id, payload) {
                Ok(()) => return Ok(()),
                // `send_unflushed` has published our commits before reporting Full.
                Err(Error::Full { .. }) => full_backoff(&mut spins),
                Err(other) => return Err(other.into()),
            }
        }
    }

    #[inline]
    fn send_publishing(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        let mut spins = 0;
        loop {
            match self.0.send(type_id, payload) {
                Ok(()) => return Ok(()),
                Err(Error::Full { .. }) => full_backoff(&mut spins),
                Err(other) => return Err(other.into()),
            }
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.0.flush();
    }
}

impl Rx for OursRx {
    #[inline]
    fn recv<R>(&mut self, f: impl FnOnce(u32, &[u8]) -> R) -> Result<R> {
        let message = self.0.recv()?;
        Ok(f(message.type_id(), message.data()))
    }
}

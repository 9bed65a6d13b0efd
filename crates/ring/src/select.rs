//! `Selector`: one thread receiving from many rings, fairly, and sleeping on all of their
//! futex words at once when every ring is empty.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bus::BusOptions;
use crate::cancel::CancelToken;
use crate::consumer::{Consumer, Message, PEER_CHECK_INTERVAL, spin_window};
use crate::error::{Error, Result};
use crate::layout::sleeping;
use crate::wait::{self, Naps, Woke};

/// Spins between looks at the clock while every ring is empty.
const SPINS_PER_CLOCK_READ: u32 = 1024;
const SELECTING: &str = "waiting for a message on any ring";

/// Receives from many rings on one thread.
///
/// Each ring is a [`Consumer`] under a key of yours (a peer's pid, a venue name). Under load
/// the rings are served round-robin, one message each in turn, so no ring starves another.
/// When all are empty the selector spins (for the same span of time as a consumer, however many
/// rings it looks at), then sleeps on every ring's futex word at once (one
/// `futex_waitv`, Linux ≥ 5.16), so any producer's ordinary `FUTEX_WAKE`, this crate's or
/// tachyon-ipc's, wakes it. On older kernels it sleeps on the first ring's word and looks at
/// the others every 10 ms (also with more than 126 rings).
///
/// A ring whose producer exited is reported once, as [`Selected::Ended`] with
/// [`Error::PeerGone`], after every message the producer published was delivered; a ring
/// found corrupt is reported the same way with [`Error::Corrupt`]. Either way it leaves the
/// selector while the others keep flowing. Rings are added with [`add`](Selector::add), or from
/// other threads through a [`SelectorHandle`] (an acceptor thread feeding a [`Listener`]'s
/// buses, say), which wakes a sleeping selector.
///
/// [`Listener`]: crate::Listener
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// use tachyon_ring::{Bus, Selected, Selector};
///
/// let mut selector = Selector::new();
/// let mut producers = Vec::new();
/// for venue in ["xnas", "xlon"] {
///     let (producer, consumer) = Bus::in_memory(1 << 12)?.split();
///     selector.add(venue, consumer);
///     producers.push(producer);
/// }
/// producers[1].send(2, b"ask")?;
/// producers[1].flush();
/// match selector.select()? {
///     Selected::Message { key, message } => assert_eq!((*key, message.data()), ("xlon", &b"ask"[..])),
///     Selected::Ended { key, error } => panic!("{key} ended: {error}"),
/// }
/// # Ok(()) }
/// ```
pub struct Selector<K> {
    rings: Vec<Ring<K>>,
    /// Where the next scan starts: the ring after the last one served.
    next: usize,
    spin_threshold: u32,
    cancel: Option<CancelToken>,
    adds: Arc<Adds<K>>,
    sleeps: u64,
    wakeups: u64,
}

struct Ring<K> {
    key: K,
    consumer: Consumer,
}

/// Rings handed over by other threads, and a futex word that says "look at the queue".
struct Adds<K> {
    /// Bumped after every push; a sleeping selector waits on it with the rings' words.
    generation: AtomicU32,
    queue: Mutex<Vec<(K, Consumer)>>,
}

/// What [`Selector::select`] found.
pub enum Selected<'a, K> {
    /// The next message of ring `key`; dropping it releases its slot.
    Message {
        /// The ring's key.
        key: &'a K,
        /// The message, in place in shared memory.
        message: Message<'a>,
    },
    /// Ring `key` is finished and has left the selector: its producer exited after every
    /// message it published was delivered ([`Error::PeerGone`]), or the ring is corrupt.
    Ended {
        /// The ring's key.
        key: K,
        /// Why it ended.
        error: Error,
    },
}

impl<K: fmt::Debug> fmt::Debug for Selected<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selected::Message { key, message } => f
                .debug_struct("Message")
                .field("key", key)
                .field("message", message)
                .finish(),
            Selected::Ended { key, error } => f
                .debug_struct("Ended")
                .field("key", key)
                .field("error", error)
                .finish(),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for Selector<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field(
                "keys",
                &self.rings.iter().map(|r| &r.key).collect::<Vec<_>>(),
            )
            .field("sleeps", &self.sleeps)
            .field("wakeups", &self.wakeups)
            .finish()
    }
}

impl<K> Default for Selector<K> {
    fn default() -> Self {
        Selector::new()
    }
}

/// Adds rings to a [`Selector`] from any thread, waking it if it sleeps.
pub struct SelectorHandle<K> {
    adds: Arc<Adds<K>>,
}

impl<K> Clone for SelectorHandle<K> {
    fn clone(&self) -> Self {
        SelectorHandle {
            adds: Arc::clone(&self.adds),
        }
    }
}

impl<K> fmt::Debug for SelectorHandle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectorHandle").finish_non_exhaustive()
    }
}

impl<K> SelectorHandle<K> {
    /// Hands `consumer` to the selector under `key`; it joins before the selector's next look.
    pub fn add(&self, key: K, consumer: Consumer) {
        let adds = &self.adds;
        adds.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((key, consumer));
        // After the push: a selector that read the old generation before sleeping finds the
        // word changed (or is woken), then takes the queue.
        adds.generation.fetch_add(1, Ordering::SeqCst);
        wait::futex_wake_all(&adds.generation);
    }
}

impl<K> Selector<K> {
    /// An empty selector with the default spin threshold and no cancel token.
    pub fn new() -> Selector<K> {
        Selector::with_options(&BusOptions::default())
    }

    /// An empty selector that takes its spin threshold and cancel token from `options`.
    pub fn with_options(options: &BusOptions) -> Selector<K> {
        Selector {
            rings: Vec::new(),
            next: 0,
            spin_threshold: options.spin_threshold,
            cancel: options.cancel.clone(),
            adds: Arc::new(Adds {
                generation: AtomicU32::new(0),
                queue: Mutex::new(Vec::new()),
            }),
            sleeps: 0,
            wakeups: 0,
        }
    }

    /// Adds `consumer` under `key`. Its own spin and cancel settings are not used: the
    /// selector's are.
    pub fn add(&mut self, key: K, consumer: Consumer) {
        self.rings.push(Ring { key, consumer });
    }

    /// Removes and returns the ring under `key`.
    pub fn remove(&mut self, key: &K) -> Option<Consumer>
    where
        K: PartialEq,
    {
        self.take_adds();
        let index = self.rings.iter().position(|ring| ring.key == *key)?;
        Some(self.remove_at(index).1)
    }

    /// A handle that adds rings from other threads.
    pub fn handle(&self) -> SelectorHandle<K> {
        SelectorHandle {
            adds: Arc::clone(&self.adds),
        }
    }

    /// Rings in the selector (not counting those handed over but not yet taken).
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    /// True when no ring is in the selector.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// The keys of the rings in the selector, in service order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.rings.iter().map(|ring| &ring.key)
    }

    /// Sleeps on all rings at once so far, and how many of them a producer's wake ended.
    pub fn sleep_stats(&self) -> (u64, u64) {
        (self.sleeps, self.wakeups)
    }

    /// The next message from any ring, or the end of one, waiting as long as it takes.
    /// With no ring at all it waits for one to be added through a handle.
    pub fn select(&mut self) -> Result<Selected<'_, K>> {
        self.select_until(None)
    }

    /// Like [`select`](Selector::select), giving up with [`Error::Timeout`] after `timeout`.
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<Selected<'_, K>> {
        self.select_until(Some(timeout))
    }

    fn select_until(&mut self, timeout: Option<Duration>) -> Result<Selected<'_, K>> {
        let started = Instant::now();
        let deadline = timeout.and_then(|timeout| started.checked_add(timeout));
        // The spin lasts a span of time, as a consumer's does, however many rings are looked
        // at per poll; the clock is read every `polls_per_look` polls.
        let spin_until = started + spin_window(self.spin_threshold);
        let mut spinning = self.spin_threshold > 0;
        let polls_per_look = self.spin_threshold.clamp(1, SPINS_PER_CLOCK_READ);
        let mut polls_left = polls_per_look;
        let mut naps = Naps::new();
        let mut next_peer_check = started + PEER_CHECK_INTERVAL;
        loop {
            let generation = self.adds.generation.load(Ordering::SeqCst);
            self.take_adds();
            match self.find_ready() {
                Found::Ready(index, slot) => {
                    self.next = (index + 1) % self.rings.len();
                    let Ring { key, consumer } = &mut self.rings[index];
                    return Ok(Selected::Message {
                        key,
                        message: consumer.message(slot),
                    });
                }
                Found::Broken(index, error) => return Ok(self.ended(index, error)),
                Found::Nothing => {}
            }
            if spinning {
                polls_left -= 1;
                if polls_left > 0 {
                    std::hint::spin_loop();
                    continue;
                }
                polls_left = polls_per_look;
            }
            wait::check(self.cancel.as_ref(), SELECTING)?;
            let now = Instant::now();
            if deadline.is_some_and(|at| now >= at) {
                return Err(Error::Timeout(timeout.unwrap_or_default()));
            }
            if now >= next_peer_check {
                next_peer_check = now + PEER_CHECK_INTERVAL;
                if let Some((index, error)) = self.check_peers() {
                    return Ok(self.ended(index, error));
                }
            }
            if spinning {
                if now < spin_until {
                    std::hint::spin_loop();
                    continue;
                }
                spinning = false;
            }
            if self.sleep(generation, naps.next(deadline))? == Woke::TimedOut {
                if let Some((index, error)) = self.check_peers() {
                    return Ok(self.ended(index, error));
                }
                next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
            }
        }
    }

    /// The first ring, from `next` on, with a message ready (or broken).
    fn find_ready(&mut self) -> Found {
        let count = self.rings.len();
        for step in 0..count {
            let index = (self.next + step) % count;
            match self.rings[index].consumer.poll_slot() {
                Ok(Some(slot)) => return Found::Ready(index, slot),
                Ok(None) => {}
                Err(error) => return Found::Broken(index, error),
            }
        }
        Found::Nothing
    }

    /// Announces sleep on every ring, looks at every head once more, and sleeps on all the
    /// words (and the add queue's, and the cancel token's) for at most `nap`.
    fn sleep(&mut self, generation: u32, nap: Duration) -> Result<Woke> {
        let mut all_empty = true;
        for ring in &mut self.rings {
            all_empty &= ring.consumer.announce_sleep();
        }
        let woke = if all_empty {
            let mut words: Vec<(&AtomicU32, u32)> = self
                .rings
                .iter()
                .map(|ring| (ring.consumer.sleeping_word(), sleeping::SLEEPING))
                .collect();
            words.push((&self.adds.generation, generation));
            let rings = self.rings.len();
            self.sleeps += 1;
            let woke = wait::sleep_on(&words, nap, self.cancel.as_ref(), SELECTING);
            if matches!(woke, Ok(Woke::Woken(index)) if index < rings) {
                self.wakeups += 1;
            }
            woke
        } else {
            Ok(Woke::Changed)
        };
        for ring in &mut self.rings {
            ring.consumer.end_sleep();
        }
        woke
    }

    /// The first ring whose peer has exited (with nothing left to deliver) or marked it fatal.
    fn check_peers(&mut self) -> Option<(usize, Error)> {
        self.rings
            .iter_mut()
            .enumerate()
            .find_map(|(index, ring)| ring.consumer.check_peer().err().map(|e| (index, e)))
    }

    fn ended(&mut self, index: usize, error: Error) -> Selected<'_, K> {
        let (key, _consumer) = self.remove_at(index);
        Selected::Ended { key, error }
    }

    fn remove_at(&mut self, index: usize) -> (K, Consumer) {
        let Ring { key, consumer } = self.rings.remove(index);
        if self.next > index {
            self.next -= 1;
        }
        if self.next >= self.rings.len() {
            self.next = 0;
        }
        (key, consumer)
    }

    /// Takes the rings other threads handed over.
    fn take_adds(&mut self) {
        let mut queue = self
            .adds
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, consumer) in queue.drain(..) {
            self.rings.push(Ring { key, consumer });
        }
    }
}

/// What a scan of the rings found.
enum Found {
    Ready(usize, crate::consumer::Slot),
    Broken(usize, Error),
    Nothing,
}

//! `Selector`: one thread receiving from many rings, fairly, and sleeping on all of their
//! futex words at once when every ring is empty.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bus::BusOptions;
use crate::error::{Error, Result};
use crate::ring::consumer::{Consumer, Message, PEER_CHECK_INTERVAL, spin_window};
use crate::sys::futex::Woke;
use crate::wait::cancel::CancelToken;
use crate::wait::pace::{Pace, PaceStats, Plan};
use crate::wait::{self, Naps};
use crate::wire::layout::sleeping;

/// Spins between looks at the clock while every ring is empty.
const SPINS_PER_CLOCK_READ: u32 = 1024;
/// Calls that found a message ready between looks at the clock (to see whether the peers are
/// due their check). A clock read on every call would cost about as much as the scan of the
/// rings it sits beside; 64 calls of a selector that is kept busy take microseconds, nothing
/// beside [`PEER_CHECK_INTERVAL`].
const CALLS_PER_CLOCK_READ: u32 = 64;
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
/// selector while the others keep flowing. The peers are looked at every 50 ms whether the
/// selector waits or every call finds a message ready (then the clock is read every 64th
/// call), so a dead producer is reported even while the other rings never run dry. Likewise
/// the cancel token is looked at on every call (one atomic load): once it is cancelled, every
/// call fails with [`Error::Cancelled`], messages ready or not.
///
/// Rings are added with [`add`](Selector::add), or from other threads through a
/// [`SelectorHandle`] (an acceptor thread feeding a [`Listener`]'s buses, say), which wakes a
/// sleeping selector.
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
    /// How a wait on all-empty rings is spent, from the waits seen (across all rings).
    pace: Pace,
    cancel: Option<CancelToken>,
    adds: Arc<Adds<K>>,
    /// The add queue's generation when it was last taken.
    adds_taken: u32,
    /// When the peers are next due a look, across calls.
    next_peer_check: Instant,
    /// Calls that found a message ready, left before the next look at the clock.
    calls_until_clock: u32,
    sleep_ends: SleepEnds,
}

/// How the sleeps of a [`Selector`] on all of its rings at once ended, counted since it was
/// made; see [`Selector::sleep_ends`]. Each sleep ends in exactly one of these ways, so
/// `sleeps` is the sum of the other fields.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SleepEnds {
    /// Sleeps on every ring's futex word at once.
    pub sleeps: u64,
    /// Ended by a producer's wake on one of the rings.
    pub wakeups: u64,
    /// Ended by a ring handed over through a [`SelectorHandle`].
    pub added: u64,
    /// Ran to the end of their nap, nothing having woken them: wake-ups that bought nothing
    /// but a look at the peers.
    pub timed_out: u64,
    /// Naps the spin policy planned before a spin
    /// ([`SpinPolicy::Adaptive`](crate::wait::pace::SpinPolicy::Adaptive)) that ran to
    /// their end, as planned.
    pub planned: u64,
    /// Ended by the cancel token (the select returned [`Error::Cancelled`]); also a sleep the
    /// token was found cancelled just as it began.
    pub cancelled: u64,
    /// Never blocked: a word had changed when the kernel looked (a publish or an add landed
    /// between the selector's last look at the rings and the sleep).
    pub changed: u64,
}

impl SleepEnds {
    /// Counts one sleep on `rings` rings (and the add queue's word after them) that ended as
    /// `woke` says.
    fn count(&mut self, woke: &Result<Woke>, rings: usize, planned: bool) {
        self.sleeps += 1;
        let ending = match woke {
            Ok(Woke::TimedOut) if planned => &mut self.planned,
            Ok(Woke::Woken(index)) if *index < rings => &mut self.wakeups,
            // The word after the rings' is the add queue's.
            Ok(Woke::Woken(_)) => &mut self.added,
            Ok(Woke::TimedOut) => &mut self.timed_out,
            Ok(Woke::Changed) => &mut self.changed,
            // `sleep_on` fails only when the token is cancelled.
            Err(_) => &mut self.cancelled,
        };
        *ending += 1;
    }
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
            .field("sleep_ends", &self.sleep_ends)
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
        crate::sys::futex::futex_wake_all(&adds.generation);
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
            pace: Pace::new(options.spin_policy),
            cancel: options.cancel.clone(),
            adds: Arc::new(Adds {
                generation: AtomicU32::new(0),
                queue: Mutex::new(Vec::new()),
            }),
            adds_taken: 0,
            next_peer_check: Instant::now() + PEER_CHECK_INTERVAL,
            calls_until_clock: CALLS_PER_CLOCK_READ,
            sleep_ends: SleepEnds::default(),
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
    /// [`sleep_ends`](Selector::sleep_ends) says how the others ended.
    pub fn sleep_stats(&self) -> (u64, u64) {
        (self.sleep_ends.sleeps, self.sleep_ends.wakeups)
    }

    /// How the spin policy planned the waits so far and what the spins caught.
    pub fn pace_stats(&self) -> PaceStats {
        self.pace.stats()
    }

    /// How each sleep on all rings at once ended so far: a producer's wake, an add, the end of
    /// a nap, the cancel token. Readable after a select that failed, as the counters live in
    /// the selector.
    pub fn sleep_ends(&self) -> SleepEnds {
        self.sleep_ends
    }

    /// The next message from any ring, or the end of one, waiting as long as it takes.
    /// With no ring at all it waits for one to be added through a handle.
    pub fn select(&mut self) -> Result<Selected<'_, K>> {
        self.select_until(None, |selected| selected)
    }

    /// Like [`select`](Selector::select), giving up with [`Error::Timeout`] after `timeout`.
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<Selected<'_, K>> {
        self.select_until(Some(timeout), |selected| selected)
    }

    /// Hands what [`select`](Selector::select) would return to `hand`, where it was found,
    /// and returns what `hand` returns: `selector.select_with(f)` is `selector.select().map(f)`,
    /// a few nanoseconds a message cheaper on a busy stream. Returned by value, a message is
    /// built in memory by one path and read back by another (the result of a call that can
    /// also wait, end a ring or fail), which the CPU cannot forward from store to load;
    /// handed over in place it stays in registers. Use it when the message is done with
    /// inside `hand`.
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// use tachyon_ring::{Bus, Selected, Selector};
    ///
    /// let (mut producer, consumer) = Bus::in_memory(1 << 12)?.split();
    /// let mut selector = Selector::new();
    /// selector.add("xnas", consumer);
    /// producer.send(1, b"bid")?;
    /// producer.flush();
    /// let length = selector.select_with(|selected| match selected {
    ///     Selected::Message { message, .. } => message.len(),
    ///     Selected::Ended { .. } => 0,
    /// })?;
    /// assert_eq!(length, 3);
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn select_with<R>(&mut self, hand: impl FnOnce(Selected<'_, K>) -> R) -> Result<R> {
        self.select_until(None, hand)
    }

    /// [`select_with`](Selector::select_with), giving up with [`Error::Timeout`] (without
    /// calling `hand`) after `timeout`.
    #[inline]
    pub fn select_timeout_with<R>(
        &mut self,
        timeout: Duration,
        hand: impl FnOnce(Selected<'_, K>) -> R,
    ) -> Result<R> {
        self.select_until(Some(timeout), hand)
    }

    /// Scans the rings, round-robin from `next`, and hands the first message found to `hand`;
    /// while every ring is empty, takes one [`wait_step`](Self::wait_step) (out of line)
    /// between scans. The scan is inlined into the caller, so the located slot reaches the
    /// message in registers: a slot that also came back from a call (a second scan inside the
    /// wait) was kept in memory and read back wider than it was written, a stalled load on
    /// every message.
    #[inline]
    fn select_until<'s, R>(
        &'s mut self,
        timeout: Option<Duration>,
        hand: impl FnOnce(Selected<'s, K>) -> R,
    ) -> Result<R> {
        // On every call, a message ready or not: a stream that never runs dry never reaches
        // the looks of the wait, and must still end on a cancel and on a dead producer.
        wait::check(self.cancel.as_ref(), SELECTING)?;
        if let Some((index, error)) = self.peers_between_messages() {
            return Ok(hand(self.ended(index, error)));
        }
        // Set up (and the clock read) only once a scan found every ring empty.
        let mut waiting: Option<Waiting> = None;
        loop {
            let generation = self.take_adds();
            let count = self.rings.len();
            let mut index = self.next;
            for _ in 0..count {
                let consumer = &mut self.rings[index].consumer;
                let found = consumer.locate_slot();
                if found.is_some() || consumer.is_broken() {
                    // A message, or a broken ring's end: the wait (if any) is over.
                    if let Some(waiting) = &waiting {
                        waiting.found(&mut self.pace);
                    }
                    let Some(slot) = found else {
                        let error = self.rings[index].consumer.broken_error();
                        return Ok(hand(self.ended(index, error)));
                    };
                    // The next scan starts after this ring.
                    self.next = if index + 1 == count { 0 } else { index + 1 };
                    let Ring { key, consumer } = &mut self.rings[index];
                    return Ok(hand(Selected::Message {
                        key,
                        message: consumer.message(slot),
                    }));
                }
                // Wrapped by comparison, not `%`: a division per look was a tenth of the
                // selector's cost per message.
                index += 1;
                if index == count {
                    index = 0;
                }
            }
            if let Some((index, error)) = self.wait_step(&mut waiting, timeout, generation)? {
                return Ok(hand(self.ended(index, error)));
            }
        }
    }

    /// One step of the wait of a select whose scan found every ring empty, taken between
    /// scans: the first sets the wait up as the pace plans; then a poll of the spin, or a look
    /// at the token, the deadline and the peers (a ring that ended is returned), or a sleep
    /// on every ring's word.
    #[inline(never)]
    fn wait_step(
        &mut self,
        waiting: &mut Option<Waiting>,
        timeout: Option<Duration>,
        generation: u32,
    ) -> Result<Option<(usize, Error)>> {
        let waiting = waiting.get_or_insert_with(|| {
            let plan = self.pace.plan(spin_window(self.spin_threshold));
            Waiting::begin(timeout, plan, self.spin_threshold)
        });
        if std::mem::take(&mut waiting.spin_due) {
            waiting.start_spin();
        }
        if waiting.spinning {
            waiting.polls_left -= 1;
            if waiting.polls_left > 0 {
                std::hint::spin_loop();
                return Ok(None);
            }
            waiting.polls_left = waiting.polls_per_look;
        }
        wait::check(self.cancel.as_ref(), SELECTING)?;
        let now = Instant::now();
        if waiting.deadline.is_some_and(|at| now >= at) {
            return Err(Error::Timeout(timeout.unwrap_or_default()));
        }
        if let Some(ended) = self.peers_if_due(now) {
            return Ok(Some(ended));
        }
        if let Some(nap) = waiting.nap_before_spin.take() {
            let nap = Naps::starting_at(nap).next(waiting.deadline);
            self.sleep(generation, nap, true)?;
            waiting.spin_due = true;
            return Ok(None);
        }
        if waiting.spinning {
            if now < waiting.spin_until {
                std::hint::spin_loop();
                return Ok(None);
            }
            waiting.stop_spin(&mut self.pace, now);
        }
        let nap = waiting.naps.next(waiting.deadline);
        if self.sleep(generation, nap, false)? == Woke::TimedOut {
            // A good moment to look at the peers: nothing woke us for a whole nap.
            self.next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
            return Ok(self.check_peers());
        }
        Ok(None)
    }

    /// The peers' check of a call that may find a message ready at once: the clock is read
    /// every [`CALLS_PER_CLOCK_READ`] calls, and the peers looked at when they are due.
    #[inline]
    fn peers_between_messages(&mut self) -> Option<(usize, Error)> {
        self.calls_until_clock -= 1;
        if self.calls_until_clock > 0 {
            return None;
        }
        self.calls_until_clock = CALLS_PER_CLOCK_READ;
        self.peers_if_due(Instant::now())
    }

    /// [`check_peers`](Self::check_peers), if [`PEER_CHECK_INTERVAL`] has passed since the
    /// last look.
    fn peers_if_due(&mut self, now: Instant) -> Option<(usize, Error)> {
        if now < self.next_peer_check {
            return None;
        }
        self.next_peer_check = now + PEER_CHECK_INTERVAL;
        self.check_peers()
    }

    /// Announces sleep on every ring, looks at every head once more, and sleeps on all the
    /// words (and the add queue's, and the cancel token's) for at most `nap`.
    /// A `planned` nap is the spin policy's, before a spin: counted apart when it runs out.
    fn sleep(&mut self, generation: u32, nap: Duration, planned: bool) -> Result<Woke> {
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
            let woke = wait::sleep_on(&words, nap, self.cancel.as_ref(), SELECTING);
            self.sleep_ends.count(&woke, rings, planned);
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

    /// Takes the rings other threads handed over. Returns the add queue's generation as it
    /// was before the take: the value a sleep must still find, or an add came after the take.
    ///
    /// The queue's lock is taken only when the generation moved since the last take: every
    /// select calls this, and a lock and unlock per message is a cost a plain consumer does
    /// not pay. A push bumps the generation after
    /// it pushes, so a push this load misses is seen by the next call, or wakes the sleep
    /// that waits on the generation loaded here.
    #[inline]
    fn take_adds(&mut self) -> u32 {
        let generation = self.adds.generation.load(Ordering::SeqCst);
        if generation != self.adds_taken {
            self.move_adds_in(generation);
        }
        generation
    }

    /// Moves the queued rings in, as of `generation` (out of line: rare).
    #[cold]
    #[inline(never)]
    fn move_adds_in(&mut self, generation: u32) {
        self.adds_taken = generation;
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

/// The wait of one select that found every ring empty: spin for the consumer's span of time
/// (however many rings are looked at per poll; the clock is read every `polls_per_look`
/// polls), then sleep in growing naps.
struct Waiting {
    /// When the rings were found empty.
    started: Instant,
    deadline: Option<Instant>,
    /// A nap the spin policy planned before the spin, not yet taken.
    nap_before_spin: Option<Duration>,
    /// The planned nap is over: the spin starts if the next scan finds nothing.
    spin_due: bool,
    /// The spin's length, and when the current spin began and ends.
    spin: Duration,
    spin_started: Instant,
    spin_until: Instant,
    spinning: bool,
    polls_per_look: u32,
    polls_left: u32,
    naps: Naps,
}

impl Waiting {
    fn begin(timeout: Option<Duration>, plan: Plan, spin_threshold: u32) -> Waiting {
        let started = Instant::now();
        let polls_per_look = spin_threshold.clamp(1, SPINS_PER_CLOCK_READ);
        let nap_first = !plan.nap_before_spin.is_zero();
        Waiting {
            started,
            deadline: timeout.and_then(|timeout| started.checked_add(timeout)),
            nap_before_spin: nap_first.then_some(plan.nap_before_spin),
            spin_due: false,
            spin: plan.spin,
            spin_started: started,
            spin_until: started + plan.spin,
            spinning: !nap_first && !plan.spin.is_zero(),
            polls_per_look,
            polls_left: polls_per_look,
            naps: Naps::starting_at(plan.first_nap),
        }
    }

    /// The planned nap is over and the rings are still empty: the spin starts now.
    fn start_spin(&mut self) {
        let now = Instant::now();
        self.spin_started = now;
        self.spin_until = now + self.spin;
        self.spinning = !self.spin.is_zero();
    }

    /// The spin ran its time with nothing found.
    fn stop_spin(&mut self, pace: &mut Pace, now: Instant) {
        self.spinning = false;
        pace.spun_for(now.saturating_duration_since(self.spin_started));
    }

    /// A message was found after this wait began: counted by the pace (and as a catch if the
    /// spin found it).
    fn found(&self, pace: &mut Pace) {
        let now = Instant::now();
        if self.spinning {
            pace.spun_for(now.saturating_duration_since(self.spin_started));
            pace.caught_spinning();
        }
        pace.arrived_after(now.saturating_duration_since(self.started));
    }
}

#[cfg(test)]
mod mutant_kills {
    //! A ring's end found by the peers' checks, while the selector waits and while other rings
    //! keep it busy: claims a mutation test showed no other test in the fast set would notice
    //! breaking (the cross-process fan-in tests in `/tests` cover them too, outside it).
    use super::*;
    use crate::ring::producer::Producer;
    use crate::ring::shm::Region;

    const LONG: Duration = Duration::from_secs(10);

    fn ring() -> (Arc<Region>, Producer, Consumer) {
        let region = Arc::new(Region::heap(1 << 14).unwrap());
        let producer = Producer::new(Arc::clone(&region), None);
        let consumer = Consumer::new(Arc::clone(&region), 0, false, None);
        (region, producer, consumer)
    }

    #[test]
    fn a_sleep_finding_any_ring_published_does_not_sleep() {
        // A message published between the scan and the sleep (before the word said SLEEPING,
        // so no wake comes): the sleep's own look at every head must see it and not sleep.
        let (_region_a, _producer_a, a) = ring();
        let (_region_b, mut producer_b, b) = ring();
        let mut selector = Selector::new();
        selector.add("a", a);
        selector.add("b", b);
        let generation = selector.take_adds();
        producer_b.send(1, b"late").unwrap();
        producer_b.flush();
        let started = Instant::now();
        let woke = selector
            .sleep(generation, Duration::from_secs(2), false)
            .unwrap();
        assert_eq!(woke, Woke::Changed);
        assert!(started.elapsed() < Duration::from_secs(1), "it slept");
        assert_eq!(selector.sleep_ends().sleeps, 0);
        match selector.select_timeout(LONG).unwrap() {
            Selected::Message { key, message } => {
                assert_eq!((*key, message.data()), ("b", &b"late"[..]))
            }
            Selected::Ended { key, error } => panic!("{key} ended: {error}"),
        }
    }

    #[test]
    fn a_ring_the_scan_finds_corrupt_ends_at_once_with_its_own_cause() {
        // A head no producer may publish (not 64-byte aligned): the scan's reload refuses it
        // and poisons the ring with the cause. The select must report that ring, with that
        // cause, from the scan itself: not wait on it as if it were empty until the peers'
        // look finds the state word (a later, vaguer "marked fatal"), never sleeping.
        let (_region_a, _producer_a, a) = ring();
        let (region_b, _producer_b, b) = ring();
        let mut selector = Selector::new();
        selector.add("a", a);
        selector.add("b", b);
        region_b.header().head.store(65, Ordering::Release);
        match selector.select_timeout(LONG).unwrap() {
            Selected::Ended { key, error } => {
                assert_eq!(key, "b");
                let text = error.to_string();
                assert!(text.contains("published head 65"), "{text}");
            }
            Selected::Message { key, .. } => panic!("a message on {key}"),
        }
        assert_eq!(selector.sleep_ends().sleeps, 0, "it slept before reporting");
        assert_eq!(selector.pace_stats(), PaceStats::default(), "it waited");
        // The same through `select_timeout_with`.
        let (region_c, _producer_c, c) = ring();
        selector.add("c", c);
        region_c.header().head.store(65, Ordering::Release);
        let ended = selector.select_timeout_with(LONG, |selected| match selected {
            Selected::Ended { key, error } => (key, error.to_string()),
            Selected::Message { key, .. } => panic!("a message on {key}"),
        });
        let (key, text) = ended.unwrap();
        assert_eq!(key, "c");
        assert!(text.contains("published head 65"), "{text}");
        assert_eq!(selector.sleep_ends().sleeps, 0, "it slept before reporting");
        assert_eq!(selector.keys().copied().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn a_ring_marked_fatal_leaves_a_waiting_selector() {
        let (_region_a, _producer_a, a) = ring();
        let (region_b, _producer_b, b) = ring();
        let mut selector = Selector::new();
        selector.add("a", a);
        selector.add("b", b);
        let marker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            region_b.mark_fatal();
        });
        match selector.select_timeout(LONG) {
            Ok(Selected::Ended { key, error }) => {
                assert_eq!(key, "b");
                assert!(matches!(error, Error::Corrupt(_)), "{error}");
            }
            Ok(Selected::Message { key, .. }) => panic!("a message on {key}"),
            Err(error) => panic!("the fatal ring was never reported: {error}"),
        }
        marker.join().unwrap();
        assert_eq!(selector.keys().copied().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn a_ring_marked_fatal_is_reported_while_another_never_runs_dry() {
        // Every call finds a message on `busy`, so only the peers' check between messages
        // (the clock read every 64th call) can find `dead`; the selector first idles past
        // its first check's due time, so a check that is due must be made, not skipped.
        let (dead_region, _dead_producer, dead) = ring();
        let (_busy_region, mut busy_producer, busy) = ring();
        let mut selector = Selector::new();
        selector.add("dead", dead);
        selector.add("busy", busy);
        dead_region.mark_fatal();
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        for call in 0.. {
            busy_producer.send(1, b"x").unwrap();
            busy_producer.flush();
            match selector.select_timeout(LONG).unwrap() {
                Selected::Message { key, .. } => assert_eq!(*key, "busy"),
                Selected::Ended { key, error } => {
                    assert_eq!(key, "dead");
                    assert!(matches!(error, Error::Corrupt(_)), "{error}");
                    assert!(call <= CALLS_PER_CLOCK_READ, "found only at call {call}");
                    break;
                }
            }
            assert!(
                started.elapsed() < LONG,
                "the fatal ring was not reported in {call} calls"
            );
        }
    }

    /// The selector follows its pace's plan, counted: after a slow feed an adaptive selector
    /// sleeps at once on its empty rings; after a fast one it spins at once.
    #[test]
    fn an_adaptive_selector_sleeps_at_once_after_a_slow_feed_and_spins_after_a_fast_one() {
        let wait_once = |waits_us: fn(u64) -> u64| {
            let (_region, _producer, consumer) = ring();
            let options =
                BusOptions::default().spin_policy(crate::wait::pace::SpinPolicy::Adaptive);
            let mut selector = Selector::with_options(&options);
            selector.add("a", consumer);
            for i in 0..32 {
                selector
                    .pace
                    .arrived_after(Duration::from_micros(waits_us(i)));
            }
            let timed_out = matches!(
                selector.select_timeout(Duration::from_millis(2)),
                Err(Error::Timeout(_))
            );
            assert!(timed_out, "nothing was sent");
            selector.pace_stats()
        };
        let slow = wait_once(|i| 5_000 + i * 1_400);
        assert_eq!((slow.slept_at_once, slow.spun_at_once), (1, 0), "{slow:?}");
        assert_eq!(slow.spin_nanos, 0, "{slow:?}");
        let fast = wait_once(|i| 10 + i * 50 / 31);
        assert_eq!((fast.slept_at_once, fast.spun_at_once), (0, 1), "{fast:?}");
    }
}

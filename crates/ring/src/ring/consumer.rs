//! The consuming end of a ring.

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::DerefMut;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ring::shm::Region;
use crate::ring::state::RingState;
use crate::ring::stats::ConsumerStats;
use crate::sys::futex::Woke;
use crate::sys::peer::PeerWatch;
use crate::wait::cancel::CancelToken;
use crate::wait::pace::{Pace, PaceStats, Plan, SpinPolicy, WaitEnd};
use crate::wait::{self, Naps, OnSignal};
use crate::wire::layout::{
    CONSUMER_FEATURES, MAX_CURSOR, PUBLISH_BATCH, SKIP_MARKER, SLOT_HEADER_LEN, SlotHeader,
    sleeping, state,
};

/// How often a waiting consumer asks whether the peer has exited or marked the ring fatal.
pub(crate) const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// What a cancelled receive reports it was doing.
const RECEIVING: &str = "waiting for a message";
/// Spins between looks at the clock while waiting.
const SPINS_PER_CLOCK_READ: u32 = 1024;
/// How far past the tail a consumer with a backlog prefetches (two lines from there): 16
/// lines, enough transfers in flight to outrun one-at-a-time fetches, measured best of 512,
/// 768, 1,024 and 2,048 bytes on the Intel host (see [`Consumer::prefetch`]).
const PREFETCH_AHEAD: u64 = 1024;
/// Published bytes that must lie beyond the prefetched lines: the prefetch is for a consumer a
/// long way behind. With 4 KiB here, a producer publishing every message (the consumer a few
/// KiB behind) lost 10-20 % of its rate (`publishing send` 1.2-1.3× upstream's against 1.5);
/// with 64 KiB it kept it, and the lagging stream kept its gain (256 KiB gave some of it up).
const PREFETCH_GUARD: u64 = 64 * 1024;
/// What one unit of the spin threshold is worth in time. Upstream's threshold counts polls of
/// its own loop; ours spins for a span of time instead, so the window does not depend on how
/// cheap our poll is: 37 ns is what a whole look at the ring took per poll on the reference
/// machine, which made the default 10,000 a 370 µs window (upstream's measured 470 µs the same
/// way, docs/performance.md).
pub(crate) const SPIN_POLL_NANOS: u64 = 37;

/// Upstream's default spin threshold (10,000 of its polls): with [`SPIN_POLL_NANOS`] a unit,
/// a 370 µs spin on an empty ring before the consumer sleeps. `BusOptions` takes its default
/// from here.
pub(crate) const DEFAULT_SPIN_THRESHOLD: u32 = 10_000;

/// How long a waiting end spins on empty rings before it sleeps, for a spin threshold
/// ([`BusOptions::spin_threshold`](crate::BusOptions::spin_threshold)): [`SPIN_POLL_NANOS`] per
/// unit. A consumer and a selector over many rings spin for the same time.
pub(crate) fn spin_window(spin_threshold: u32) -> Duration {
    Duration::from_nanos(u64::from(spin_threshold) * SPIN_POLL_NANOS)
}

/// Reads messages from the ring. One per ring; `Send`, not `Sync`.
///
/// The read cursor (tail) is published every 32 messages, as upstream does, and also whenever
/// the consumer finds the ring empty: so a producer waiting for space always gets it back, and
/// rings of any size (even 2 slots) cannot deadlock with this consumer.
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// use std::time::Duration;
/// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
/// producer.send(1, b"tick")?;
/// let message = consumer.recv_timeout(Duration::from_secs(1))?;
/// assert_eq!(message.data(), b"tick");
/// # Ok(()) }
/// ```
pub struct Consumer {
    region: Arc<Region>,
    ring: *const u8,
    capacity: usize,
    /// `capacity - 1`: ring offsets are `cursor & mask` (the capacity is a power of two).
    mask: u64,
    /// Our read cursor, ahead of the published one by the unpublished releases.
    tail: u64,
    /// The tail as the producer last saw it (behind `tail` after releases or skips).
    published_tail: u64,
    /// Last head we read from the producer; refreshed only when we catch up with it.
    cached_head: u64,
    /// Messages released since the tail was last published.
    unpublished: u32,
    /// Messages received since the bus opened, and their payload bytes.
    received: u64,
    received_bytes: u64,
    /// Futex sleeps, and how many of them a producer's wake ended.
    sleeps: u64,
    wakeups: u64,
    /// Naps that ran to their timeout although the producer had published meanwhile: a
    /// producer that published without waking us (lost wake-ups; upstream's producer has the
    /// window, ours does not).
    missed_wakes: u64,
    /// Naps that ran to their timeout with nothing published: the bound on a missed wake and
    /// the moments the peer is looked at, each a wasted wake-up. A nap the pace planned
    /// before a spin is not counted here.
    naps_run_out: u64,
    /// How the next wait is spent (spin, sleep, or nap then spin), from the waits seen.
    /// Boxed: its history is used only when the ring is empty, and a consumer stays small
    /// enough to sit in an enum beside a producer.
    pace: Box<Pace>,
    /// How the wait for the last message handed out ended.
    last_wait: WaitEnd,
    /// How long to spin on an empty ring before sleeping, in units of [`SPIN_POLL_NANOS`].
    spin_threshold: u32,
    /// Never sleep (the futex word holds `PURE_SPIN`).
    pure_spin: bool,
    /// Why the ring is dead, once a corrupt header or cursor was seen.
    poisoned: Option<String>,
    peer: Option<Arc<PeerWatch>>,
    /// Ends every wait of ours early (see [`CancelToken`]).
    cancel: Option<CancelToken>,
    /// An RPC ring, whose slot headers carry a correlation id. On an SPSC ring those header
    /// bytes are whatever was there before (upstream's producer writes only 12 header bytes).
    rpc: bool,
    /// RPC replies with an id from 1 up to below this are released unread: answers to calls
    /// the caller no longer waits for.
    discard_ids_below: u64,
    /// What a signal does to the current wait's sleep: `Retry` except inside
    /// [`recv_interruptible`](Consumer::recv_interruptible).
    on_signal: OnSignal,
    /// The slots of the last [`Batch`](crate::ring::batch::Batch), kept so that the next
    /// batch reuses the allocation.
    pub(crate) batch_slots: Vec<Slot>,
}

// SAFETY: the consumer owns its end of the ring exclusively; the raw pointer points into the
// region that the `Arc` keeps alive, which is valid from any thread.
unsafe impl Send for Consumer {}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity)
            .field("tail", &self.tail)
            .field("cached_head", &self.cached_head)
            .field("received", &self.received)
            .field("pure_spin", &self.pure_spin)
            .finish()
    }
}

/// How a wait ended, from how its last sleep did (`None`: it did not sleep, the look before
/// the sleep found the message).
fn ended_by(woke: Option<Woke>) -> WaitEnd {
    match woke {
        Some(Woke::TimedOut) => WaitEnd::NapRanOut,
        Some(Woke::Woken(_) | Woke::Changed) => WaitEnd::Woken,
        None => WaitEnd::Spinning,
    }
}

/// Why a consumer naps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nap {
    /// Planned by the pace: sleep until the span where the next message is likely, then spin.
    BeforeSpin,
    /// Bounds a missed wake and spaces the looks at the peer.
    Bound,
}

/// What bounds one wait for a message: its timeout, and when to look at the peer next.
struct WaitBounds {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    next_peer_check: Instant,
}

/// A validated slot, located but not yet handed out (a plain value, so wait loops can find
/// it without holding a borrow of the consumer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    header: SlotHeader,
    ring_pos: usize,
}

impl Consumer {
    pub(crate) fn new(
        region: Arc<Region>,
        spin_threshold: u32,
        pure_spin: bool,
        peer: Option<Arc<PeerWatch>>,
    ) -> Consumer {
        let header = region.header();
        // Loaded once and checked as loaded (the peer may change them under us): every later
        // advance of ours keeps the tail aligned and in range.
        let (head, tail) = (region.load_head(), region.load_tail());
        let poisoned = region.start_cursor_problem(head, tail);
        if pure_spin {
            header
                .consumer_sleeping
                .store(sleeping::PURE_SPIN, Ordering::Release);
        }
        header
            .consumer_features
            .store(CONSUMER_FEATURES, Ordering::Release);
        Consumer {
            ring: region.ring(),
            capacity: region.capacity(),
            mask: region.capacity() as u64 - 1,
            region,
            tail,
            published_tail: tail,
            cached_head: tail,
            unpublished: 0,
            received: 0,
            received_bytes: 0,
            sleeps: 0,
            wakeups: 0,
            missed_wakes: 0,
            naps_run_out: 0,
            pace: Box::new(Pace::new(SpinPolicy::default())),
            last_wait: WaitEnd::None,
            spin_threshold,
            pure_spin,
            poisoned,
            peer,
            cancel: None,
            rpc: false,
            discard_ids_below: 0,
            on_signal: OnSignal::Retry,
            batch_slots: Vec::new(),
        }
    }

    /// Releases RPC messages whose correlation id is from 1 up to below `id` as they arrive:
    /// a caller waiting for `id` discards late replies to calls it gave up on.
    pub(crate) fn discard_correlation_ids_below(&mut self, id: u64) {
        self.discard_ids_below = id;
    }

    /// This consumer reads an RPC ring: [`Message::correlation_id`] is then the slot's.
    pub(crate) fn reading_rpc(mut self) -> Consumer {
        self.rpc = true;
        self
    }

    /// Ring bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A handle on this ring's shared state word, for any thread (see [`RingState`]).
    pub fn ring_state(&self) -> RingState {
        RingState::new(&self.region)
    }

    /// Messages received since the bus opened.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// This end's counters, and the ring's depth now (one atomic load of the head).
    pub fn stats(&self) -> ConsumerStats {
        let head = self.region.header().head.load(Ordering::Acquire);
        ConsumerStats {
            received: self.received,
            received_bytes: self.received_bytes,
            sleeps: self.sleeps,
            wakeups: self.wakeups,
            naps_run_out: self.naps_run_out,
            missed_wakes: self.missed_wakes,
            pace: self.pace.stats(),
            depth_bytes: head.saturating_sub(self.tail).min(self.capacity as u64),
            capacity: self.capacity as u64,
        }
    }

    /// Changes how long the consumer spins on an empty ring before sleeping, in the units of
    /// [`BusOptions::spin_threshold`](crate::BusOptions::spin_threshold) (upstream takes it on
    /// every blocking receive; here it is a setting of the consumer).
    pub fn set_spin_threshold(&mut self, spins: u32) {
        self.spin_threshold = spins;
    }

    /// How the consumer spends an empty ring before it sleeps: [`SpinPolicy::Adaptive`] (the
    /// default, from the gaps it has seen), [`SpinPolicy::Fixed`] (spin the whole window) or
    /// [`SpinPolicy::Frugal`] (never spin); see [`BusOptions::spin_policy`](crate::BusOptions::spin_policy).
    pub fn set_spin_policy(&mut self, policy: SpinPolicy) {
        self.pace.set_policy(policy);
    }

    /// The spin policy in force.
    pub fn spin_policy(&self) -> SpinPolicy {
        self.pace.policy()
    }

    /// How the wait for the last message a blocking receive returned ended: no wait, caught
    /// by the spin, woken, or found when a nap ran out (for latency per kind of wait).
    pub fn last_wait(&self) -> WaitEnd {
        self.last_wait
    }

    /// How the spin policy planned the waits so far and what the spins caught.
    pub fn pace_stats(&self) -> PaceStats {
        self.pace.stats()
    }

    /// The pace, for a waiter that waits for this consumer (the async end plans its naps with
    /// it and tells it the waits it saw).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn pace_mut(&mut self) -> &mut Pace {
        &mut self.pace
    }

    /// Switches pure-spin mode (never sleep) on or off, and tells producers through the shared
    /// futex word, as [`BusOptions::pure_spin`](crate::BusOptions::pure_spin) does at start.
    pub fn set_pure_spin(&mut self, pure_spin: bool) {
        if self.pure_spin == pure_spin {
            return;
        }
        self.pure_spin = pure_spin;
        self.advertise_awake();
    }

    /// Futex sleeps so far, and how many of them ended in a producer's wake (rather than a
    /// nap's timeout): the evidence that the peer's wake-ups reach us.
    pub fn sleep_stats(&self) -> (u64, u64) {
        (self.sleeps, self.wakeups)
    }

    /// Naps that ran to their timeout although a message had been published meanwhile and the
    /// sleeping word was left as it was: a producer that published without waking us, or
    /// whose wake had not come yet. This crate's producer never skips the wake, so with it a
    /// nap runs out this way only while the producer is descheduled between its head store
    /// and its wake (a late wake, not a lost one); upstream's can also lose its wake (it has a
    /// window, see `docs/wire-format.md`). Each costs at most the nap, the first of which is
    /// 5 ms.
    pub fn missed_wakes(&self) -> u64 {
        self.missed_wakes
    }

    /// Watch `token` in every blocking call from now on (replacing the bus's), or nothing.
    pub fn set_cancel_token(&mut self, token: Option<CancelToken>) {
        self.cancel = token;
    }

    /// The next message, if one has been published; never waits.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Option<Message<'_>>> {
        Ok(self.next_slot()?.map(|slot| Message::new(self, slot)))
    }

    /// The next message, waiting for it as long as it takes: spin up to the spin threshold,
    /// then sleep on the futex until the producer wakes us.
    ///
    /// Returns [`Error::PeerGone`] once the producer's process has exited and every message it
    /// published has been delivered (cross-process buses only).
    #[inline]
    pub fn recv(&mut self) -> Result<Message<'_>> {
        let slot = self.wait_for_slot(None)?;
        Ok(Message::new(self, slot))
    }

    /// Like [`recv`](Consumer::recv), but gives up with [`Error::Timeout`] after `timeout`.
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>> {
        let slot = self.wait_for_slot(Some(timeout))?;
        Ok(Message::new(self, slot))
    }

    /// Like [`recv`](Consumer::recv) (or [`recv_timeout`](Consumer::recv_timeout) with a
    /// `timeout`), but a signal that interrupts the futex sleep ends the wait with
    /// [`Error::Interrupted`] instead of sleeping on: for a caller that must look at its own
    /// signals (a C or Python binding), as upstream's blocking receive returns on `EINTR`.
    /// Every other receive retries `EINTR`.
    pub fn recv_interruptible(&mut self, timeout: Option<Duration>) -> Result<Message<'_>> {
        let slot = self.wait_for_slot_on(timeout, OnSignal::Interrupt)?;
        Ok(Message::new(self, slot))
    }

    /// The next slot, waiting for it as [`recv`](Self::recv) does, with `on_signal` deciding
    /// what a signal during the sleep does (for the `_interruptible` calls and batches).
    pub(crate) fn wait_for_slot_on(
        &mut self,
        timeout: Option<Duration>,
        on_signal: OnSignal,
    ) -> Result<Slot> {
        self.on_signal = on_signal;
        let slot = self.wait_for_slot(timeout);
        self.on_signal = OnSignal::Retry;
        slot
    }

    /// Waits (spin, then futex) until a message is ready, without taking it: `Ok(true)` when
    /// one is, `Ok(false)` after `timeout`. Pairs with [`drain`](Consumer::drain) or
    /// [`try_recv`](Consumer::try_recv) in loops that must look up now and then (for signals,
    /// progress reports).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<bool> {
        match self.wait_for_slot(Some(timeout)) {
            Ok(_) => Ok(true),
            Err(Error::Timeout(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The next slot if one is published, located and checked but not taken (for the async
    /// end, which looks before it borrows).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    #[inline]
    pub(crate) fn poll_slot(&mut self) -> Result<Option<Slot>> {
        self.next_slot()
    }

    /// Why [`locate_slot`](Self::locate_slot) found the ring broken: every failure to locate a
    /// slot poisons the consumer with its cause first.
    #[cold]
    pub(crate) fn broken_error(&self) -> Error {
        self.poisoned_error()
    }

    /// The message in `slot`, which [`poll_slot`](Self::poll_slot) just returned.
    #[inline]
    pub(crate) fn message(&mut self, slot: Slot) -> Message<'_> {
        Message::new(self, slot)
    }

    /// Where `slot`'s payload starts in this consumer's ring.
    #[inline]
    fn payload_of(&self, slot: &Slot) -> *const u8 {
        // SAFETY: `slot` was located and checked in this ring (`slot_fits` proved
        // ring_pos + 64 + size <= ring_pos + reserved_size <= capacity, on the same copy of
        // the header that `Message::len` reads), so the offset stays inside the mapping.
        unsafe { self.ring.add(slot.ring_pos + SLOT_HEADER_LEN) }
    }

    /// Our read cursor: a head past it means a message is published.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn read_cursor(&self) -> u64 {
        self.tail
    }

    /// The futex word this ring's consumer sleeps on.
    pub(crate) fn sleeping_word(&self) -> &std::sync::atomic::AtomicU32 {
        &self.region.header().consumer_sleeping
    }

    /// The shared region, for a waiter that must keep it mapped while it watches it.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// The cancel token this end watches.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn cancel_token(&self) -> Option<&CancelToken> {
        self.cancel.as_ref()
    }

    /// Hands every message already published, up to `max`, to `each` in order, and returns
    /// how many it handed. Never waits.
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
    /// for i in 0..3u8 {
    ///     producer.send_unflushed(1, &[i])?;
    /// }
    /// producer.flush(); // one publish for the three
    /// let mut seen = Vec::new();
    /// assert_eq!(consumer.drain(10, |m| seen.push(m.data()[0]))?, 3);
    /// assert_eq!(seen, [0, 1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn drain(&mut self, max: usize, mut each: impl FnMut(&Message<'_>)) -> Result<usize> {
        let mut handed = 0;
        while handed < max {
            let Some(slot) = self.next_slot()? else { break };
            let message = Message::new(self, slot);
            each(&message);
            handed += 1;
        }
        Ok(handed)
    }

    /// Publishes the read cursor now, returning the space of every released message to the
    /// producer.
    #[inline]
    pub fn flush(&mut self) {
        if self.tail != self.published_tail {
            self.publish_tail();
        }
    }

    /// The next slot, waiting for it: spin, then sleep. The first look is inlined into the
    /// caller (a message that is already there costs no call and no clock read); the wait is
    /// not.
    #[inline]
    fn wait_for_slot(&mut self, timeout: Option<Duration>) -> Result<Slot> {
        match self.next_slot()? {
            Some(slot) => {
                self.last_wait = WaitEnd::None;
                Ok(slot)
            }
            None => self.wait_for_slot_slow(timeout),
        }
    }

    /// The wait of [`wait_for_slot`](Self::wait_for_slot), once the ring was found empty: spin,
    /// then sleep. The spin polls the published head alone (a load, a compare, a pause), so a
    /// message is seen within a pause of landing, and it lasts a span of *time*
    /// ([`spin_window`]), not a count of polls, so a cheaper poll does not
    /// shorten it: ticks a few hundred microseconds apart still find the consumer spinning. The
    /// clock is read, and the cancel token and the peer checked, every 1024 polls (fewer for a
    /// small threshold), after a nap that timed out, and every 50 ms.
    #[inline(never)]
    fn wait_for_slot_slow(&mut self, timeout: Option<Duration>) -> Result<Slot> {
        let started = Instant::now();
        let mut bounds = WaitBounds {
            timeout,
            deadline: timeout.and_then(|timeout| started.checked_add(timeout)),
            next_peer_check: started + PEER_CHECK_INTERVAL,
        };
        if self.pure_spin {
            return self.spin_purely(started, &mut bounds);
        }
        let plan = self.pace.plan(spin_window(self.spin_threshold));
        let (slot, found_at) = self.wait_as_planned(started, plan, &mut bounds)?;
        self.pace
            .arrived_after(found_at.saturating_duration_since(started));
        Ok(slot)
    }

    /// A pure-spin consumer's wait. It never sleeps, so it plans nothing, and no clock read
    /// stands between a message landing and its hand-over: one there cost ~25 ns a hop, a
    /// tenth of a 32-byte round trip (`tachyon-compare run --only round-trip`, 15 pairs, ~250
    /// against ~310 ns). The clock is read every [`SPINS_PER_CLOCK_READ`] polls, for the
    /// token, the deadline and the peer, and the spin time is counted at those reads: a wait
    /// shorter than that is caught but not timed.
    fn spin_purely(&mut self, started: Instant, bounds: &mut WaitBounds) -> Result<Slot> {
        self.pace.spins_purely();
        let mut timed_until = started;
        let mut polls_left = SPINS_PER_CLOCK_READ;
        loop {
            if self.head_moved() {
                if let Some(slot) = self.next_slot()? {
                    self.pace.caught_spinning();
                    self.last_wait = WaitEnd::Spinning;
                    return Ok(slot);
                }
            }
            polls_left -= 1;
            if polls_left == 0 {
                polls_left = SPINS_PER_CLOCK_READ;
                let now = Instant::now();
                self.pace
                    .spun_for(now.saturating_duration_since(timed_until));
                timed_until = now;
                self.look_up(now, bounds)?;
            }
            std::hint::spin_loop();
        }
    }

    /// The wait of one [`Plan`]: a nap before the spin if planned (a producer's wake ends it
    /// early), the spin, then naps from the plan's first, growing to [`wait::MAX_NAP`].
    /// Returns the slot and when it was found (one clock read serves the pace's spin time and
    /// its wait).
    fn wait_as_planned(
        &mut self,
        started: Instant,
        plan: Plan,
        bounds: &mut WaitBounds,
    ) -> Result<(Slot, Instant)> {
        if !plan.nap_before_spin.is_zero() {
            self.look_up(started, bounds)?;
            let mut woke = None;
            if self.announce_sleep() {
                let nap = Naps::starting_at(plan.nap_before_spin).next(bounds.deadline);
                woke = Some(self.sleep(nap, Nap::BeforeSpin)?);
            }
            self.end_sleep();
            if let Some(slot) = self.next_slot()? {
                // After a planned nap that ran out, the message was found awake.
                self.last_wait = match woke {
                    Some(Woke::TimedOut) => WaitEnd::Spinning,
                    other => ended_by(other),
                };
                return Ok((slot, Instant::now()));
            }
        }
        if !plan.spin.is_zero() {
            let spin_started = Instant::now();
            let spin_until = spin_started + plan.spin;
            if let Some(found) = self.spin(spin_started, spin_until, bounds)? {
                self.last_wait = WaitEnd::Spinning;
                return Ok(found);
            }
        }
        let mut naps = Naps::starting_at(plan.first_nap);
        let mut woke = None;
        loop {
            if let Some(slot) = self.next_slot()? {
                self.last_wait = ended_by(woke);
                return Ok((slot, Instant::now()));
            }
            self.look_up(Instant::now(), bounds)?;
            woke = None;
            if self.announce_sleep() {
                let nap = naps.next(bounds.deadline);
                let ended = self.sleep(nap, Nap::Bound)?;
                woke = Some(ended);
                if ended == Woke::TimedOut {
                    // A good moment to look at the peer: nothing woke us for a whole nap.
                    self.check_peer()?;
                    bounds.next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
                }
            }
            self.end_sleep();
        }
    }

    /// The spin of [`wait_as_planned`](Self::wait_as_planned), begun at `spin_started`, until
    /// `spin_until`: the slot and when it was found, once one lands; `None` when the time is
    /// up. Its time and its catches are counted in the pace's stats.
    #[inline]
    fn spin(
        &mut self,
        spin_started: Instant,
        spin_until: Instant,
        bounds: &mut WaitBounds,
    ) -> Result<Option<(Slot, Instant)>> {
        let outcome = self.spin_until(spin_until, bounds);
        let now = Instant::now();
        self.pace
            .spun_for(now.saturating_duration_since(spin_started));
        Ok(match outcome? {
            Some(slot) => {
                self.pace.caught_spinning();
                Some((slot, now))
            }
            None => None,
        })
    }

    /// The loop of [`spin`](Self::spin).
    #[inline]
    fn spin_until(&mut self, spin_until: Instant, bounds: &mut WaitBounds) -> Result<Option<Slot>> {
        // A small threshold is looked at sooner, so its short window is not overrun.
        let polls_per_look = self.spin_threshold.clamp(1, SPINS_PER_CLOCK_READ);
        let mut polls_left = polls_per_look;
        loop {
            if self.head_moved() {
                if let Some(slot) = self.next_slot()? {
                    return Ok(Some(slot));
                }
            }
            polls_left -= 1;
            if polls_left == 0 {
                polls_left = polls_per_look;
                let now = Instant::now();
                self.look_up(now, bounds)?;
                if now >= spin_until {
                    return Ok(None);
                }
            }
            std::hint::spin_loop();
        }
    }

    /// A waiting consumer's look up from the ring: a cancel, the deadline, and (every 50 ms)
    /// the peer.
    fn look_up(&mut self, now: Instant, bounds: &mut WaitBounds) -> Result<()> {
        wait::check(self.cancel.as_ref(), RECEIVING)?;
        if bounds.deadline.is_some_and(|at| now >= at) {
            return Err(Error::Timeout(bounds.timeout.unwrap_or_default()));
        }
        if now >= bounds.next_peer_check {
            bounds.next_peer_check = now + PEER_CHECK_INTERVAL;
            self.check_peer()?;
        }
        Ok(())
    }

    /// Whether the producer has published past our read cursor (the spin's only question).
    #[inline]
    fn head_moved(&self) -> bool {
        self.region.load_head() != self.tail
    }

    /// The futex protocol's consumer side, step 1: announce sleep, full fence, look at the
    /// head once more. True when the ring is still empty and [`sleep`](Self::sleep) may block.
    /// A producer that published before seeing the announcement is caught by the look; one that
    /// publishes after it sees SLEEPING and (ours) swaps it back to AWAKE before waking, so the
    /// sleep finds the word changed and returns at once.
    pub(crate) fn announce_sleep(&mut self) -> bool {
        let header = self.region.header();
        header
            .consumer_sleeping
            .store(sleeping::SLEEPING, Ordering::Release);
        fence(Ordering::SeqCst);
        header.head.load(Ordering::Acquire) == self.tail
    }

    /// Step 2: sleep while the word still says SLEEPING, at most `nap`, or until cancelled.
    /// A nap that times out with a message published meanwhile, the word still SLEEPING, is a
    /// missed wake; one that times out with nothing published is a nap run out (both counted;
    /// a nap the pace planned before a spin is meant to run out, and is not).
    fn sleep(&mut self, nap: Duration, kind: Nap) -> Result<Woke> {
        let word = &self.region.header().consumer_sleeping;
        self.sleeps += 1;
        let woke = wait::sleep_on_with(
            &[(word, sleeping::SLEEPING)],
            nap,
            self.cancel.as_ref(),
            RECEIVING,
            self.on_signal,
        )?;
        match woke {
            Woke::Woken(_) => self.wakeups += 1,
            // A planned nap is meant to run out just before the message is likely: one that
            // lands as it ends is found awake, not a lost wake.
            Woke::TimedOut if kind == Nap::BeforeSpin => {}
            Woke::TimedOut => {
                // Missed: a message landed during the nap and nobody swapped the word back
                // (our producer always does when it publishes onto a SLEEPING word).
                let header = self.region.header();
                if header.consumer_sleeping.load(Ordering::Acquire) == sleeping::SLEEPING
                    && header.head.load(Ordering::Acquire) != self.tail
                {
                    self.missed_wakes += 1;
                } else {
                    self.naps_run_out += 1;
                }
            }
            Woke::Changed => {}
        }
        Ok(woke)
    }

    /// Step 3: awake again (whatever ended the sleep, the caller looks at the ring next).
    ///
    /// A pure-spin consumer whose ring a selector or the async reactor slept on gets its
    /// advertisement back, so producers keep skipping the wake for it.
    pub(crate) fn end_sleep(&mut self) {
        self.advertise_awake();
    }

    /// Writes the futex word an awake consumer shows producers: `PURE_SPIN` (skip the wake)
    /// for a pure-spin consumer, `AWAKE` otherwise.
    fn advertise_awake(&self) {
        let awake = if self.pure_spin {
            sleeping::PURE_SPIN
        } else {
            sleeping::AWAKE
        };
        self.region
            .header()
            .consumer_sleeping
            .store(awake, Ordering::Release);
    }

    /// The peer's checks while waiting: a ring it marked fatal (state 4) ends the wait at
    /// once; an exited peer ends it once everything it published has been delivered.
    pub(crate) fn check_peer(&mut self) -> Result<()> {
        if self.region.header().state.load(Ordering::Acquire) == state::FATAL_ERROR {
            let why = "the producer marked the ring fatal (state 4)".to_string();
            self.poisoned = Some(why.clone());
            return Err(Error::Corrupt(why));
        }
        self.check_peer_alive()
    }

    /// Once the producer's process has exited, nothing more will be published: deliver what
    /// was (the caller loops back to `next_slot`), and only then report it gone.
    fn check_peer_alive(&mut self) -> Result<()> {
        let Some(peer) = &self.peer else {
            return Ok(());
        };
        if !peer.has_exited() {
            return Ok(());
        }
        let published_head = self.region.header().head.load(Ordering::Acquire);
        if published_head != self.tail {
            return Ok(());
        }
        Err(peer.gone_error(self.received))
    }

    /// Locates and validates the next message, following a skip marker if there is one.
    /// When the ring is empty it publishes our tail, so the producer gets all space back.
    #[inline(always)]
    fn next_slot(&mut self) -> Result<Option<Slot>> {
        match self.locate_slot() {
            Some(slot) => Ok(Some(slot)),
            None if self.is_broken() => Err(self.poisoned_error()),
            None => Ok(None),
        }
    }

    /// [`next_slot`](Self::next_slot)'s work, saying `None` both for an empty ring and for a
    /// broken one (which it has poisoned with the cause first; [`is_broken`](Self::is_broken)
    /// tells them apart).
    ///
    /// Inlined into every receive, with no error value on its way: only the head's reload is
    /// out of line, answering with a flag. A slot that shares a result with an error returned
    /// from a call is kept in memory and read back wider than it was written, a stalled load
    /// on every message (callgrind could not see it; the selector lost a fifth of its rate).
    /// The selector calls it directly, as it looks at many rings before it borrows one.
    #[inline(always)]
    pub(crate) fn locate_slot(&mut self) -> Option<Slot> {
        loop {
            if (self.tail == self.cached_head || self.poisoned.is_some())
                && !self.refresh_when_empty()
            {
                return None;
            }
            let ring_pos = (self.tail & self.mask) as usize;
            self.prefetch(ring_pos);
            // SAFETY: ring_pos is 64-aligned (the tail was checked aligned at start and every
            // advance is a multiple of 64) and below the capacity, a multiple of 64, so the 24
            // bytes read lie inside the ring. Read once, volatile: every check below looks at
            // this copy, never at shared memory.
            let header =
                unsafe { std::ptr::read_volatile(self.ring.add(ring_pos) as *const SlotHeader) };
            if header.size == SKIP_MARKER {
                if self.follow_skip(ring_pos).is_err() {
                    return None;
                }
                continue;
            }
            if !self.slot_fits(&header, ring_pos) {
                self.refuse_slot(header, ring_pos);
                return None;
            }
            let slot = Slot { header, ring_pos };
            if self.rpc && (1..self.discard_ids_below).contains(&header.correlation_id) {
                self.release(&slot);
                continue;
            }
            return Some(slot);
        }
    }

    /// True once the ring was found corrupt (here or by the producer): every receive fails.
    #[inline]
    pub(crate) fn is_broken(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The tail reached the cached head (or the ring is poisoned): reload the head. False when
    /// the ring is still empty (after publishing our tail, so the producer gets all space
    /// back) or broken (poisoned, with the cause).
    #[inline(never)]
    fn refresh_when_empty(&mut self) -> bool {
        if self.poisoned.is_some() {
            return false;
        }
        if self.tail == self.cached_head {
            if self.refresh_head().is_err() {
                return false;
            }
            if self.tail == self.cached_head {
                self.flush();
                return false;
            }
        }
        true
    }

    /// Starts loading the lines the next reads will want, so that their transfers from the
    /// producer's core overlap instead of following one another:
    ///
    /// - the payload's first line (the line after the 64-byte slot header), while the header
    ///   is read, as upstream's consumer does;
    /// - with a backlog, a pair of lines [`PREFETCH_AHEAD`] bytes past the tail. A consumer
    ///   that has fallen behind reads lines the producer wrote a lap ago, one cross-core
    ///   transfer each; fetched one at a time they bound it at ~29 ns a 64-byte line on the
    ///   Intel host (0-byte messages at 0.72× upstream's rate), a few in flight at once lift it
    ///   past upstream's (`docs/performance.md`, stream 0 B). Only when the published region
    ///   reaches [`PREFETCH_GUARD`] further still: nearer the producer's head it cost a
    ///   producer that publishes every message part of its rate.
    ///
    /// Only published lines are touched; the producer writes none of them again until we have
    /// released them.
    #[inline(always)]
    fn prefetch(&self, ring_pos: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let published = self.cached_head - self.tail;
            if published > SLOT_HEADER_LEN as u64 && ring_pos + SLOT_HEADER_LEN < self.capacity {
                // SAFETY: a prefetch is a hint that never faults, and the address is inside
                // the ring (checked above).
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(self.ring.add(ring_pos + SLOT_HEADER_LEN).cast());
                }
            }
            if published > PREFETCH_AHEAD + PREFETCH_GUARD {
                for line in [PREFETCH_AHEAD, PREFETCH_AHEAD + SLOT_HEADER_LEN as u64] {
                    let at = ((self.tail + line) & self.mask) as usize;
                    // SAFETY: as above: a hint that never faults, at an offset the mask keeps
                    // inside the ring.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(self.ring.add(at).cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = ring_pos;
    }

    /// The next slot if one is published (following a skip marker at the tail), for the
    /// first message of a batch.
    #[inline]
    pub(crate) fn batch_first(&mut self) -> Result<Option<Slot>> {
        if self.rpc {
            // RPC rings discard stale replies while locating; batches are for SPSC rings.
            return Ok(None);
        }
        self.next_slot()
    }

    /// The slot `ahead` bytes past the tail, when a whole sound one is published there and it
    /// is not a skip marker: the next message of a batch, under the same checks as
    /// [`next_slot`](Self::next_slot) (on a private copy of the header). `None` ends the
    /// batch; a slot refused here is refused (and reported) again as the next batch's first.
    pub(crate) fn batch_next(&self, ahead: u64) -> Option<Slot> {
        let cursor = self.tail + ahead;
        if cursor >= self.cached_head {
            return None;
        }
        let ring_pos = (cursor & self.mask) as usize;
        // SAFETY: as in `next_slot`: the cursor is 64-aligned (the tail is, and `ahead` is a
        // sum of checked reserved sizes, multiples of 64) and below the capacity after the
        // mask, so the 24 bytes read lie inside the ring; read once, volatile, into a copy.
        let header =
            unsafe { std::ptr::read_volatile(self.ring.add(ring_pos) as *const SlotHeader) };
        if header.size == SKIP_MARKER {
            return None;
        }
        slot_problem(&header, ring_pos, self.capacity, self.cached_head - cursor)
            .is_none()
            .then_some(Slot { header, ring_pos })
    }

    /// The payload of a located slot and its length and type id (for a batch's views).
    pub(crate) fn slot_view(&self, slot: &Slot) -> (*const u8, usize, u32) {
        (
            self.payload_of(slot),
            slot.header.size as usize,
            slot.header.type_id,
        )
    }

    /// The whole slot length, what releasing it advances the tail by.
    pub(crate) fn slot_len(slot: &Slot) -> u64 {
        u64::from(slot.header.reserved_size)
    }

    /// Releases the slots of a batch, in order (each one exactly as a dropped [`Message`]).
    pub(crate) fn release_batch(&mut self, slots: &[Slot]) {
        for slot in slots {
            self.release(slot);
        }
    }

    /// A poisoned ring's error, again (cold: only after corruption).
    #[cold]
    fn poisoned_error(&self) -> Error {
        Error::Corrupt(self.poisoned.clone().unwrap_or_default())
    }

    /// Passes a skip marker at `ring_pos`: the tail moves to the ring's start.
    #[inline(never)]
    fn follow_skip(&mut self, ring_pos: usize) -> Result<()> {
        let to_end = (self.capacity - ring_pos) as u64;
        if ring_pos == 0 {
            // No producer skips a whole ring; following it could loop forever.
            return Err(self.corrupt("skip marker at ring offset 0".into()));
        }
        if to_end > self.cached_head - self.tail {
            return Err(self.corrupt(format!(
                "skip marker at ring offset {ring_pos} runs {to_end} bytes past the published \
                 head"
            )));
        }
        self.tail += to_end;
        Ok(())
    }

    /// The format's corruption rules, plus ours: the slot lies wholly inside both the ring and
    /// the published region. After this, every slice we form is in bounds.
    #[inline]
    fn slot_fits(&self, header: &SlotHeader, ring_pos: usize) -> bool {
        slot_problem(
            header,
            ring_pos,
            self.capacity,
            self.cached_head - self.tail,
        )
        .is_none()
    }

    /// Marks the ring fatal for a slot [`slot_fits`](Self::slot_fits) refused, saying why
    /// (the receive then fails with that cause). The header by value: a reference made the
    /// receive keep its copy in memory and read it back wider than it was written, stalling
    /// on every message.
    #[cold]
    #[inline(never)]
    fn refuse_slot(&mut self, header: SlotHeader, ring_pos: usize) {
        let problem = slot_problem(
            &header,
            ring_pos,
            self.capacity,
            self.cached_head - self.tail,
        )
        .unwrap_or("slot refused");
        self.corrupt(format!(
            "{problem}: slot at ring offset {ring_pos} has size {}, reserved_size {}, ring \
             capacity {}",
            header.size, header.reserved_size, self.capacity
        ));
    }

    /// Reloads the producer's head; a head the format forbids marks the ring fatal.
    #[inline]
    fn refresh_head(&mut self) -> Result<()> {
        let head = self.region.load_head();
        if head < self.cached_head
            || head - self.tail > self.capacity as u64
            || head > MAX_CURSOR
            || head % SLOT_HEADER_LEN as u64 != 0
        {
            return Err(self.head_error(head));
        }
        self.cached_head = head;
        Ok(())
    }

    #[cold]
    fn head_error(&mut self, head: u64) -> Error {
        self.corrupt(format!(
            "producer published head {head}, outside [{}, {} + {}] (last seen head, tail + \
             capacity), beyond 2^62 or not 64-byte aligned",
            self.cached_head, self.tail, self.capacity
        ))
    }

    /// Marks the ring dead, here and in shared memory (state 4), and says why.
    #[cold]
    fn corrupt(&mut self, detail: String) -> Error {
        crate::trace::lifecycle!(error, end = "consumer", detail = %detail, "ring corrupt");
        self.poisoned = Some(detail.clone());
        self.region.mark_fatal();
        Error::Corrupt(detail)
    }

    #[inline]
    fn release(&mut self, slot: &Slot) {
        self.tail += u64::from(slot.header.reserved_size);
        self.received += 1;
        self.received_bytes += u64::from(slot.header.size);
        self.unpublished += 1;
        if self.unpublished >= PUBLISH_BATCH {
            self.publish_tail();
        }
    }

    #[inline(never)]
    fn publish_tail(&mut self) {
        self.region
            .header()
            .tail
            .store(self.tail, Ordering::Release);
        self.published_tail = self.tail;
        self.unpublished = 0;
    }
}

/// What is wrong with a slot header at `ring_pos` of a ring of `capacity` bytes, `published`
/// bytes of which lie between our tail and the head; `None` when it is sound.
#[inline]
fn slot_problem(
    header: &SlotHeader,
    ring_pos: usize,
    capacity: usize,
    published: u64,
) -> Option<&'static str> {
    let reserved = header.reserved_size as usize;
    if reserved < SLOT_HEADER_LEN {
        Some("reserved_size below the 64-byte header")
    } else if reserved > capacity {
        Some("reserved_size larger than the ring")
    } else if reserved % SLOT_HEADER_LEN != 0 {
        Some("reserved_size not a multiple of 64")
    } else if header.size as usize > reserved - SLOT_HEADER_LEN {
        Some("size larger than the slot's payload area")
    } else if ring_pos + reserved > capacity {
        Some("slot runs past the ring's end")
    } else if reserved as u64 > published {
        Some("slot runs past the published head")
    } else {
        None
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.flush();
        let header = self.region.header();
        header.consumer_features.store(0, Ordering::Release);
        if self.pure_spin {
            header
                .consumer_sleeping
                .store(sleeping::AWAKE, Ordering::Release);
        }
    }
}

/// A received message, read in place in shared memory. Dropping it releases its slot.
///
/// # Trust
/// The bytes are the producer's. A peer that follows the protocol never touches them until we
/// release the slot, so [`data`](Message::data) is a plain in-place view. A peer that breaks
/// it (a hostile or buggy process mapping the same memory) can rewrite them while we look:
/// this crate still never reads outside the slot (every bound was checked on a private copy of
/// the header), but the bytes seen through `data` may then change or be torn. Callers that must
/// not act on torn data copy out first with [`to_vec`](Message::to_vec) or
/// [`copy_to`](Message::copy_to), which read shared memory through raw pointers, never through
/// a reference, and validate the copy.
///
/// `C` is how the message holds its consumer: `&mut Consumer` from [`Consumer::recv`] and
/// friends, or any guard that dereferences to one (a `RefMut`, a `MutexGuard`) from
/// [`Message::recv_in`], for consumers kept behind a cell and shared by `&` reference.
pub struct Message<'a, C: DerefMut<Target = Consumer> = &'a mut Consumer> {
    consumer: C,
    slot: Slot,
    /// The base of the ring the slot was validated against. Every read of the payload goes
    /// through it, never through `consumer` again: a guard `C` may dereference to another
    /// consumer the second time ([`Message::recv_in`]). On drop it tells whether the guard
    /// still reaches the consumer the slot came from.
    ring: *const u8,
    /// Keeps that ring mapped when the message holds its consumer through a guard, which
    /// could drop the consumer while the message lives. `None` for `&'a mut Consumer`, whose
    /// borrow already keeps it. Let go of by hand on drop, out of line: as a plain field its
    /// drop kept the message's whole drop from being inlined into a receive loop.
    mapping: ManuallyDrop<Option<Arc<Region>>>,
    _borrow: PhantomData<&'a mut Consumer>,
}

// SAFETY: the raw pointers point into a ring kept mapped by the consumer's borrow or by
// `mapping` (an `Arc<Region>`, which is `Send`), and shared memory is valid from any thread;
// so the message may move to another thread exactly when its guard may.
unsafe impl<C: DerefMut<Target = Consumer> + Send> Send for Message<'_, C> {}

impl<C: DerefMut<Target = Consumer>> fmt::Debug for Message<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("type_id", &self.type_id())
            .field("len", &self.len())
            .finish()
    }
}

impl<'a> Message<'a> {
    #[inline]
    fn new(consumer: &'a mut Consumer, slot: Slot) -> Self {
        Message {
            ring: consumer.ring,
            mapping: ManuallyDrop::new(None),
            consumer,
            slot,
            _borrow: PhantomData,
        }
    }

    /// Rejects this message as a protocol violation: the ring is marked fatal and the slot is
    /// left unconsumed (what upstream does with an RPC reply of the wrong id).
    pub(crate) fn reject(self, detail: String) -> Error {
        let error = self.consumer.corrupt(detail);
        std::mem::forget(self);
        error
    }
}

impl<C: DerefMut<Target = Consumer>> Message<'_, C> {
    /// [`Consumer::recv`] for a consumer reached through a guard `C`, which the message keeps
    /// until it is dropped.
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// use std::cell::RefCell;
    /// use tachyon_ring::Message;
    /// let (mut producer, consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
    /// let shared = RefCell::new(consumer);
    /// producer.send(1, b"tick")?;
    /// let message = Message::recv_in(shared.borrow_mut())?;
    /// assert_eq!(message.data(), b"tick");
    /// # Ok(()) }
    /// ```
    ///
    /// The guard is dereferenced once to find and check the slot; the message then reads only
    /// the ring it found it in (kept mapped by the message), so a guard that later reaches
    /// another consumer cannot make it read elsewhere. Such a guard's message is not released
    /// into the other consumer on drop either: its slot stays unreleased.
    pub fn recv_in(mut consumer: C) -> Result<Self> {
        let found: &mut Consumer = &mut consumer;
        let slot = found.wait_for_slot(None)?;
        let ring = found.ring;
        let mapping = Some(Arc::clone(&found.region));
        Ok(Message {
            consumer,
            slot,
            ring,
            mapping: ManuallyDrop::new(mapping),
            _borrow: PhantomData,
        })
    }

    /// The message's type id: route id in bits 31..16, message type in 15..0.
    #[inline]
    pub fn type_id(&self) -> u32 {
        self.slot.header.type_id
    }

    /// The RPC correlation id; always 0 on SPSC buses, whatever stale bytes the slot header
    /// holds there (upstream's SPSC producer does not write them).
    pub fn correlation_id(&self) -> u64 {
        if self.consumer.rpc {
            self.slot.header.correlation_id
        } else {
            0
        }
    }

    /// Payload bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.slot.header.size as usize
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start of the payload in shared memory, in the ring the slot was checked against.
    #[inline]
    fn payload_ptr(&self) -> *const u8 {
        // SAFETY: `ring` is the base of the ring `slot` was located and checked in (kept
        // mapped by the consumer's borrow or `mapping`), and `slot_fits` proved
        // ring_pos + 64 + size <= capacity there, so the offset stays inside that mapping
        // (as in `Consumer::payload_of`).
        unsafe { self.ring.add(self.slot.ring_pos + SLOT_HEADER_LEN) }
    }

    /// The payload, in place in shared memory (see the type's notes on trust).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the `len` bytes at `payload_ptr` lie inside the ring (see `payload_ptr`);
        // the producer published them (acquire on head) and, following the protocol, will not
        // reuse them until we release the slot.
        unsafe { std::slice::from_raw_parts(self.payload_ptr(), self.len()) }
    }

    /// Copies the payload out of shared memory.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut copy = vec![0; self.len()];
        self.copy_into(&mut copy);
        copy
    }

    /// Copies the payload into `buffer` and returns its length, or `None` (copying nothing)
    /// when the buffer is too small.
    pub fn copy_to(&self, buffer: &mut [u8]) -> Option<usize> {
        let target = buffer.get_mut(..self.len())?;
        self.copy_into(target);
        Some(target.len())
    }

    fn copy_into(&self, target: &mut [u8]) {
        debug_assert_eq!(target.len(), self.len());
        // SAFETY: source: `len` bytes inside the ring (see `payload_ptr`), read through a raw
        // pointer; target: a distinct, exclusively borrowed buffer of exactly `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(self.payload_ptr(), target.as_mut_ptr(), target.len())
        };
    }
}

impl<C: DerefMut<Target = Consumer>> Drop for Message<'_, C> {
    #[inline]
    fn drop(&mut self) {
        let consumer: &mut Consumer = &mut self.consumer;
        // Only into the consumer the slot came from: releasing it into another would move
        // that ring's tail over bytes nobody read.
        if consumer.ring == self.ring {
            consumer.release(&self.slot);
        }
        if self.mapping.is_some() {
            self.let_go_of_mapping();
        }
    }
}

impl<C: DerefMut<Target = Consumer>> Message<'_, C> {
    /// Drops the message's hold on its ring's mapping (a guard's message only).
    #[cold]
    #[inline(never)]
    fn let_go_of_mapping(&mut self) {
        drop(self.mapping.take());
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod mutant_kills;

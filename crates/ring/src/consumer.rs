//! The consuming end of a ring.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::layout::{
    CONSUMER_FEATURES, MAX_CURSOR, PUBLISH_BATCH, SKIP_MARKER, SLOT_HEADER_LEN, SlotHeader,
    sleeping, state,
};
use crate::peer::PeerWatch;
use crate::shm::Region;
use crate::wait::{self, Naps, Woke};

/// How often a waiting consumer asks whether the peer has exited or marked the ring fatal.
pub(crate) const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// What a cancelled receive reports it was doing.
const RECEIVING: &str = "waiting for a message";
/// Spins between looks at the clock while waiting.
const SPINS_PER_CLOCK_READ: u32 = 1024;

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
/// producer.flush();
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
    /// Messages received since the bus opened.
    received: u64,
    /// Futex sleeps, and how many of them a producer's wake ended.
    sleeps: u64,
    wakeups: u64,
    /// Naps that ran to their timeout although the producer had published meanwhile: a
    /// producer that published without waking us (lost wake-ups; upstream's producer has the
    /// window, ours does not).
    missed_wakes: u64,
    /// Spins on an empty ring before sleeping on the futex.
    spin_threshold: u32,
    /// Never sleep (the futex word holds `PURE_SPIN`).
    pure_spin: bool,
    /// Why the ring is dead, once a corrupt header or cursor was seen.
    poisoned: Option<String>,
    peer: Option<Arc<PeerWatch>>,
    /// Ends every wait of ours early (see [`CancelToken`]).
    cancel: Option<CancelToken>,
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
        let tail = header.tail.load(Ordering::Acquire);
        // Checked once here: every later advance of ours keeps the tail aligned and in range.
        let poisoned = region.start_cursor_problem();
        if pure_spin {
            header
                .consumer_sleeping
                .store(sleeping::PURE_SPIN, Ordering::Release);
        }
        header
            .consumer_heartbeat
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
            sleeps: 0,
            wakeups: 0,
            missed_wakes: 0,
            spin_threshold,
            pure_spin,
            poisoned,
            peer,
            cancel: None,
        }
    }

    /// Ring bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages received since the bus opened.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Futex sleeps so far, and how many of them ended in a producer's wake (rather than a
    /// nap's timeout): the evidence that the peer's wake-ups reach us.
    pub fn sleep_stats(&self) -> (u64, u64) {
        (self.sleeps, self.wakeups)
    }

    /// Naps that ran to their timeout although a message had been published meanwhile and the
    /// sleeping word was left as it was: each one a producer that published without waking
    /// us. Always 0 with this crate's producer;
    /// upstream's can cause them (its wake has a window, see `docs/wire-format.md`), and each
    /// costs at most the nap, the first of which is 0.5 ms.
    pub fn missed_wakes(&self) -> u64 {
        self.missed_wakes
    }

    /// Watch `token` in every blocking call from now on (replacing the bus's), or nothing.
    pub fn set_cancel_token(&mut self, token: Option<CancelToken>) {
        self.cancel = token;
    }

    /// The next message, if one has been published; never waits.
    pub fn try_recv(&mut self) -> Result<Option<Message<'_>>> {
        Ok(self.next_slot()?.map(|slot| Message {
            consumer: self,
            slot,
        }))
    }

    /// The next message, waiting for it as long as it takes: spin up to the spin threshold,
    /// then sleep on the futex until the producer wakes us.
    ///
    /// Returns [`Error::PeerGone`] once the producer's process has exited and every message it
    /// published has been delivered (cross-process buses only).
    pub fn recv(&mut self) -> Result<Message<'_>> {
        let slot = self.wait_for_slot(None)?;
        Ok(Message {
            consumer: self,
            slot,
        })
    }

    /// Like [`recv`](Consumer::recv), but gives up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>> {
        let slot = self.wait_for_slot(Some(timeout))?;
        Ok(Message {
            consumer: self,
            slot,
        })
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

    /// The next slot if one is published, located and checked but not taken (for the
    /// selector, which looks at many rings before it borrows one).
    pub(crate) fn poll_slot(&mut self) -> Result<Option<Slot>> {
        self.next_slot()
    }

    /// The message in `slot`, which [`poll_slot`](Self::poll_slot) just returned.
    pub(crate) fn message(&mut self, slot: Slot) -> Message<'_> {
        Message {
            consumer: self,
            slot,
        }
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
    ///     producer.send(1, &[i])?;
    /// }
    /// producer.flush();
    /// let mut seen = Vec::new();
    /// assert_eq!(consumer.drain(10, |m| seen.push(m.data()[0]))?, 3);
    /// assert_eq!(seen, [0, 1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn drain(&mut self, max: usize, mut each: impl FnMut(&Message<'_>)) -> Result<usize> {
        let mut handed = 0;
        while handed < max {
            let Some(slot) = self.next_slot()? else { break };
            let message = Message {
                consumer: self,
                slot,
            };
            each(&message);
            handed += 1;
        }
        Ok(handed)
    }

    /// Publishes the read cursor now, returning the space of every released message to the
    /// producer.
    pub fn flush(&mut self) {
        if self.tail != self.published_tail {
            self.publish_tail();
        }
    }

    /// The next slot, waiting for it: spin, then sleep. The clock is read, and the peer
    /// checked, only after the ring was found empty, and then only every 1024 spins, after
    /// a nap that timed out, or every 50 ms.
    fn wait_for_slot(&mut self, timeout: Option<Duration>) -> Result<Slot> {
        if let Some(slot) = self.next_slot()? {
            return Ok(slot);
        }
        let deadline = timeout.and_then(wait::deadline_after);
        let mut next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
        let mut naps = Naps::new();
        let mut spins: u32 = 0;
        loop {
            if let Some(slot) = self.next_slot()? {
                return Ok(slot);
            }
            let may_sleep = !self.pure_spin && spins >= self.spin_threshold;
            if may_sleep || spins % SPINS_PER_CLOCK_READ == SPINS_PER_CLOCK_READ - 1 {
                wait::check(self.cancel.as_ref(), RECEIVING)?;
                let now = Instant::now();
                if deadline.is_some_and(|at| now >= at) {
                    return Err(Error::Timeout(timeout.unwrap_or_default()));
                }
                if now >= next_peer_check {
                    next_peer_check = now + PEER_CHECK_INTERVAL;
                    self.check_peer()?;
                }
            }
            if !may_sleep {
                spins = spins.wrapping_add(1);
                std::hint::spin_loop();
                continue;
            }
            if self.announce_sleep() {
                let nap = naps.next(deadline);
                if self.sleep(nap)? == Woke::TimedOut {
                    // A good moment to look at the peer: nothing woke us for a whole nap.
                    self.check_peer()?;
                    next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
                }
            }
            self.end_sleep();
        }
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
    /// missed wake (counted).
    fn sleep(&mut self, nap: Duration) -> Result<Woke> {
        let word = &self.region.header().consumer_sleeping;
        self.sleeps += 1;
        let woke = wait::sleep_on(
            &[(word, sleeping::SLEEPING)],
            nap,
            self.cancel.as_ref(),
            RECEIVING,
        )?;
        match woke {
            Woke::Woken(_) => self.wakeups += 1,
            Woke::TimedOut => {
                // Missed: a message landed during the nap and nobody swapped the word back
                // (our producer always does when it publishes onto a SLEEPING word).
                let header = self.region.header();
                if header.consumer_sleeping.load(Ordering::Acquire) == sleeping::SLEEPING
                    && header.head.load(Ordering::Acquire) != self.tail
                {
                    self.missed_wakes += 1;
                }
            }
            Woke::Changed => {}
        }
        Ok(woke)
    }

    /// Step 3: awake again (whatever ended the sleep, the caller looks at the ring next).
    pub(crate) fn end_sleep(&mut self) {
        self.region
            .header()
            .consumer_sleeping
            .store(sleeping::AWAKE, Ordering::Release);
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
    fn next_slot(&mut self) -> Result<Option<Slot>> {
        if let Some(why) = &self.poisoned {
            return Err(Error::Corrupt(why.clone()));
        }
        loop {
            if self.tail == self.cached_head {
                self.refresh_head()?;
                if self.tail == self.cached_head {
                    self.flush();
                    return Ok(None);
                }
            }
            let ring_pos = (self.tail & self.mask) as usize;
            // SAFETY: ring_pos is 64-aligned (the tail was checked aligned at start and every
            // advance is a multiple of 64) and below the capacity, a multiple of 64, so the 24
            // bytes read lie inside the ring. Read once, volatile: every check below looks at
            // this copy, never at shared memory.
            let header =
                unsafe { std::ptr::read_volatile(self.ring.add(ring_pos) as *const SlotHeader) };
            if header.size == SKIP_MARKER {
                let to_end = (self.capacity - ring_pos) as u64;
                if ring_pos == 0 {
                    // No producer skips a whole ring; following it could loop forever.
                    return Err(self.corrupt("skip marker at ring offset 0".into()));
                }
                if to_end > self.cached_head - self.tail {
                    return Err(self.corrupt(format!(
                        "skip marker at ring offset {ring_pos} runs {to_end} bytes past the \
                         published head"
                    )));
                }
                self.tail += to_end;
                continue;
            }
            self.check_slot_header(&header, ring_pos)?;
            return Ok(Some(Slot { header, ring_pos }));
        }
    }

    /// The format's corruption rules, plus ours: the slot lies wholly inside both the ring and
    /// the published region. After this, every slice we form is in bounds.
    fn check_slot_header(&mut self, header: &SlotHeader, ring_pos: usize) -> Result<()> {
        let reserved = header.reserved_size as usize;
        let problem = if reserved < SLOT_HEADER_LEN {
            Some("reserved_size below the 64-byte header")
        } else if reserved > self.capacity {
            Some("reserved_size larger than the ring")
        } else if reserved % SLOT_HEADER_LEN != 0 {
            Some("reserved_size not a multiple of 64")
        } else if header.size as usize > reserved - SLOT_HEADER_LEN {
            Some("size larger than the slot's payload area")
        } else if ring_pos + reserved > self.capacity {
            Some("slot runs past the ring's end")
        } else if reserved as u64 > self.cached_head - self.tail {
            Some("slot runs past the published head")
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(self.corrupt(format!(
                "{problem}: slot at ring offset {ring_pos} has size {}, reserved_size {reserved}, \
                 ring capacity {}",
                header.size, self.capacity
            ))),
        }
    }

    /// Reloads the producer's head; a head the format forbids marks the ring fatal.
    fn refresh_head(&mut self) -> Result<()> {
        let head = self.region.header().head.load(Ordering::Acquire);
        if head < self.cached_head || head - self.tail > self.capacity as u64 || head > MAX_CURSOR {
            return Err(self.corrupt(format!(
                "producer published head {head}, outside [{}, {} + {}] (last seen head, tail + \
                 capacity) or beyond 2^62",
                self.cached_head, self.tail, self.capacity
            )));
        }
        self.cached_head = head;
        Ok(())
    }

    /// Marks the ring dead, here and in shared memory (state 4), and says why.
    fn corrupt(&mut self, detail: String) -> Error {
        self.poisoned = Some(detail.clone());
        self.region.mark_fatal();
        Error::Corrupt(detail)
    }

    fn release(&mut self, slot: &Slot) {
        self.tail += u64::from(slot.header.reserved_size);
        self.received += 1;
        self.unpublished += 1;
        if self.unpublished >= PUBLISH_BATCH {
            self.publish_tail();
        }
    }

    fn publish_tail(&mut self) {
        self.region
            .header()
            .tail
            .store(self.tail, Ordering::Release);
        self.published_tail = self.tail;
        self.unpublished = 0;
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.flush();
        let header = self.region.header();
        header.consumer_heartbeat.store(0, Ordering::Release);
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
pub struct Message<'a> {
    consumer: &'a mut Consumer,
    slot: Slot,
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("type_id", &self.type_id())
            .field("len", &self.len())
            .finish()
    }
}

impl Message<'_> {
    /// The message's type id: route id in bits 31..16, message type in 15..0.
    pub fn type_id(&self) -> u32 {
        self.slot.header.type_id
    }

    /// The RPC correlation id (0 on SPSC buses).
    pub fn correlation_id(&self) -> u64 {
        self.slot.header.correlation_id
    }

    /// Payload bytes.
    pub fn len(&self) -> usize {
        self.slot.header.size as usize
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start of the payload in shared memory.
    fn payload_ptr(&self) -> *const u8 {
        // SAFETY: `check_slot_header` proved ring_pos + 64 + size <= ring_pos + reserved_size
        // <= capacity, using the same local copy of the header that `len` reads.
        unsafe { self.consumer.ring.add(self.slot.ring_pos + SLOT_HEADER_LEN) }
    }

    /// The payload, in place in shared memory (see the type's notes on trust).
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

    /// Rejects this message as a protocol violation: the ring is marked fatal and the slot is
    /// left unconsumed (what upstream does with an RPC reply of the wrong id).
    pub(crate) fn reject(self, detail: String) -> Error {
        let error = self.consumer.corrupt(detail);
        std::mem::forget(self);
        error
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        self.consumer.release(&self.slot);
    }
}

#[cfg(test)]
mod tests {
    //! The futex protocol's interleavings, driven step by step: each step is one call, so the
    //! order is the test's, not the scheduler's.
    use super::*;
    use crate::producer::Producer;

    fn pair() -> (Producer, Consumer, Arc<Region>) {
        let region = Arc::new(Region::heap(1 << 12).unwrap());
        let producer = Producer::new(Arc::clone(&region), None);
        let consumer = Consumer::new(Arc::clone(&region), 0, false, None);
        (producer, consumer, region)
    }

    /// Consumer announces sleep and finds the ring empty; our producer publishes and wakes
    /// while nobody waits yet; the consumer then blocks. The producer swapped the word back
    /// to AWAKE, so the block returns at once (value changed) instead of sleeping its nap.
    #[test]
    fn our_producers_wake_cannot_be_lost_between_the_look_and_the_block() {
        let (mut producer, mut consumer, region) = pair();
        assert!(consumer.announce_sleep(), "step 1: the ring is empty");
        producer.send(5, b"tick").unwrap();
        producer.flush(); // step 2: publish + wake, before the consumer blocks
        assert_eq!(
            region.header().consumer_sleeping.load(Ordering::Relaxed),
            sleeping::AWAKE,
            "the producer cleared the sleeping word before waking"
        );
        // Step 3: a nap far longer than the test; a lost wake would sleep it all.
        let woke = consumer.sleep(Duration::from_secs(30)).unwrap();
        assert_eq!(woke, Woke::Changed, "the block saw the word changed");
        consumer.end_sleep();
        assert_eq!(consumer.missed_wakes(), 0);
        let message = consumer.try_recv().unwrap().expect("delivered at once");
        assert_eq!(message.data(), b"tick");
    }

    /// The same interleaving with a producer that keeps upstream's window (wakes without
    /// touching the word): the wake is lost, and what bounds the stall is the first nap,
    /// which is short. The missed wake is counted.
    #[test]
    fn a_producer_that_wakes_too_early_costs_only_the_first_short_nap() {
        let (mut producer, mut consumer, _region) = pair();
        assert!(consumer.announce_sleep(), "step 1: the ring is empty");
        producer.send(5, b"tick").unwrap();
        producer.publish_as_upstream(); // step 2: publish + wake nobody, word left SLEEPING
        let nap = Naps::new().next(None);
        assert!(nap <= Duration::from_millis(1), "first nap {nap:?}");
        let woke = consumer.sleep(nap).unwrap(); // step 3: the wake is gone; the nap runs out
        assert_eq!(woke, Woke::TimedOut);
        consumer.end_sleep();
        assert_eq!(consumer.missed_wakes(), 1, "the lost wake is counted");
        let message = consumer
            .try_recv()
            .unwrap()
            .expect("delivered after the nap");
        assert_eq!(message.data(), b"tick");
    }

    /// The other order: the producer publishes before the consumer's look. The look sees the
    /// message and the consumer never blocks.
    #[test]
    fn a_message_published_before_the_look_is_seen_by_the_look() {
        let (mut producer, mut consumer, _region) = pair();
        consumer
            .region
            .header()
            .consumer_sleeping
            .store(sleeping::AWAKE, Ordering::Relaxed);
        producer.send(5, b"tick").unwrap();
        producer.flush();
        assert!(!consumer.announce_sleep(), "the look saw the head move");
        consumer.end_sleep();
        assert!(consumer.try_recv().unwrap().is_some());
    }

    /// A blocked consumer is woken by our producer (a real FUTEX_WAKE, counted).
    #[test]
    fn a_blocked_consumer_is_woken_by_the_publish() {
        let (mut producer, mut consumer, region) = pair();
        let sleeper = std::thread::spawn(move || {
            assert!(consumer.announce_sleep());
            let woke = consumer.sleep(Duration::from_secs(30)).unwrap();
            consumer.end_sleep();
            (woke, consumer.sleep_stats())
        });
        // Publish only once the consumer is inside FUTEX_WAIT: a wake on the word that
        // reaches a waiter is proof (the word stays SLEEPING until our publish swaps it).
        let give_up = Instant::now() + Duration::from_secs(30);
        while region.header().consumer_sleeping.load(Ordering::Relaxed) != sleeping::SLEEPING {
            assert!(
                Instant::now() < give_up,
                "the consumer never announced sleep"
            );
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        producer.send(1, b"x").unwrap();
        producer.flush();
        let (woke, (sleeps, wakeups)) = sleeper.join().unwrap();
        assert!(matches!(woke, Woke::Woken(0) | Woke::Changed));
        assert_eq!(sleeps, 1);
        if producer.wakes() == 1 {
            assert_eq!((woke, wakeups), (Woke::Woken(0), 1), "our wake reached it");
        }
    }

    /// A cancel reaches a consumer blocked in its futex sleep, and every later receive.
    #[test]
    fn a_cancel_ends_a_blocked_receive_and_every_later_one() {
        for _ in 0..20 {
            let (_producer, mut consumer, _region) = pair();
            let token = CancelToken::new();
            consumer.set_cancel_token(Some(token.clone()));
            let receiver = std::thread::spawn(move || {
                let outcome = consumer.recv().map(|_| ());
                let again = consumer.recv_timeout(Duration::from_secs(30)).map(|_| ());
                (outcome, again)
            });
            std::thread::sleep(Duration::from_millis(3));
            token.cancel();
            let (outcome, again) = receiver.join().unwrap();
            assert!(matches!(outcome, Err(Error::Cancelled(RECEIVING))));
            assert!(matches!(again, Err(Error::Cancelled(_))));
        }
    }

    /// A ring the peer marked fatal ends a waiting receive within the peer-check interval.
    #[test]
    fn a_peer_marking_the_ring_fatal_ends_the_wait() {
        let (_producer, mut consumer, region) = pair();
        region.mark_fatal();
        let outcome = consumer.recv_timeout(Duration::from_secs(30));
        assert!(
            matches!(&outcome, Err(Error::Corrupt(why)) if why.contains("state 4")),
            "{outcome:?}"
        );
    }
}

#[cfg(test)]
mod mutant_kills {
    //! Claims of this module that a mutation test (`cargo mutants`, `docs/reliability.md`)
    //! showed no other test would notice breaking. Every wait is bounded.
    use super::*;
    use crate::peer::mutant_kills::exited_peer;
    use crate::producer::Producer;

    fn pair_with(
        peer: Option<PeerWatch>,
        spin_threshold: u32,
        pure_spin: bool,
    ) -> (Producer, Consumer) {
        let region = Arc::new(Region::heap(1 << 12).unwrap());
        let producer = Producer::new(Arc::clone(&region), None);
        let consumer = Consumer::new(region, spin_threshold, pure_spin, peer.map(Arc::new));
        (producer, consumer)
    }

    #[test]
    fn a_dead_producers_messages_are_delivered_before_it_is_reported_gone() {
        let (mut producer, mut consumer) = pair_with(Some(exited_peer()), 0, false);
        for i in 0..3u8 {
            producer.send(1, &[i]).unwrap();
        }
        producer.flush();
        // Published and not yet delivered: the peer's death is not reported yet.
        assert!(consumer.check_peer().is_ok());
        for i in 0..3u8 {
            let message = consumer.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(message.data(), [i]);
        }
        match consumer.recv_timeout(Duration::from_secs(30)) {
            Err(Error::PeerGone { messages, .. }) => assert_eq!(messages, 3),
            other => panic!("expected PeerGone, got {:?}", other.map(|m| m.len())),
        }
    }

    #[test]
    fn a_live_or_absent_producer_is_waited_for_until_the_timeout() {
        let (_producer, mut consumer) = pair_with(None, 0, false);
        assert!(consumer.check_peer().is_ok());
        assert!(matches!(
            consumer.recv_timeout(Duration::from_millis(120)),
            Err(Error::Timeout(_))
        ));
    }

    #[test]
    fn a_message_published_while_the_consumer_sleeps_is_received() {
        let (mut producer, mut consumer) = pair_with(None, 0, false);
        let receiver = std::thread::spawn(move || {
            let message = consumer
                .recv_timeout(Duration::from_secs(30))
                .map(|m| m.to_vec());
            (message, consumer.sleep_stats())
        });
        std::thread::sleep(Duration::from_millis(30));
        producer.send(4, b"late").unwrap();
        producer.flush();
        let (message, (sleeps, _)) = receiver.join().unwrap();
        assert_eq!(message.unwrap(), b"late");
        assert!(sleeps > 0, "a consumer with no spin budget sleeps");
    }

    #[test]
    fn a_pure_spin_consumer_never_sleeps_and_still_times_out() {
        let (_producer, mut consumer) = pair_with(None, 0, true);
        assert_eq!(
            consumer.sleeping_word().load(Ordering::Relaxed),
            sleeping::PURE_SPIN,
            "the producer is told not to wake us"
        );
        assert!(matches!(
            consumer.recv_timeout(Duration::from_millis(20)),
            Err(Error::Timeout(_))
        ));
        assert_eq!(consumer.sleep_stats(), (0, 0));
        drop(consumer);
    }

    #[test]
    fn a_nap_that_times_out_on_an_empty_ring_is_no_missed_wake() {
        let (_producer, mut consumer) = pair_with(None, 0, false);
        assert!(consumer.announce_sleep());
        assert_eq!(
            consumer.sleep(Duration::from_millis(1)).unwrap(),
            Woke::TimedOut
        );
        consumer.end_sleep();
        assert_eq!(consumer.missed_wakes(), 0);
        assert_eq!(consumer.sleep_stats(), (1, 0));
        assert_eq!(
            consumer.sleeping_word().load(Ordering::Relaxed),
            sleeping::AWAKE
        );
    }

    #[test]
    fn dropping_the_consumer_returns_its_space_and_withdraws_its_features() {
        let region = Arc::new(Region::heap(1 << 12).unwrap());
        let mut producer = Producer::new(Arc::clone(&region), None);
        let mut consumer = Consumer::new(Arc::clone(&region), 0, true, None);
        assert_eq!(
            region.header().consumer_heartbeat.load(Ordering::Acquire),
            CONSUMER_FEATURES
        );
        for _ in 0..5 {
            producer.send(1, &[]).unwrap();
        }
        producer.flush();
        for _ in 0..2 {
            drop(consumer.try_recv().unwrap().unwrap());
        }
        assert_eq!(
            region.header().tail.load(Ordering::Acquire),
            0,
            "not yet published"
        );
        drop(consumer);
        let header = region.header();
        assert_eq!(
            header.tail.load(Ordering::Acquire),
            128,
            "published on drop"
        );
        assert_eq!(header.consumer_heartbeat.load(Ordering::Acquire), 0);
        assert_eq!(
            header.consumer_sleeping.load(Ordering::Acquire),
            sleeping::AWAKE
        );
    }
}

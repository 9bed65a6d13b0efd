//! The consuming end of a ring.

use std::fmt;
use std::marker::PhantomData;
use std::ops::DerefMut;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{
    CONSUMER_FEATURES, MAX_CURSOR, PUBLISH_BATCH, SKIP_MARKER, SLOT_HEADER_LEN, SlotHeader,
    sleeping,
};
use crate::peer::PeerWatch;
use crate::shm::Region;
use crate::stats::ConsumerStats;
use crate::wait::{self, MAX_FUTEX_WAIT};

/// How often a waiting consumer asks whether the peer has exited.
const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(50);
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
    /// Spins on an empty ring before sleeping on the futex.
    spin_threshold: u32,
    /// Never sleep (the futex word holds `PURE_SPIN`).
    pure_spin: bool,
    /// Why the ring is dead, once a corrupt header or cursor was seen.
    poisoned: Option<String>,
    peer: Option<Arc<PeerWatch>>,
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
struct Slot {
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
            received_bytes: 0,
            sleeps: 0,
            wakeups: 0,
            spin_threshold,
            pure_spin,
            poisoned,
            peer,
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

    /// This end's counters, and the ring's depth now (one atomic load of the head).
    pub fn stats(&self) -> ConsumerStats {
        let head = self.region.header().head.load(Ordering::Acquire);
        ConsumerStats {
            received: self.received,
            received_bytes: self.received_bytes,
            sleeps: self.sleeps,
            wakeups: self.wakeups,
            depth_bytes: head.saturating_sub(self.tail).min(self.capacity as u64),
            capacity: self.capacity as u64,
        }
    }

    /// Changes how many times the consumer polls an empty ring before sleeping (upstream
    /// takes it on every blocking receive; here it is a setting of the consumer).
    pub fn set_spin_threshold(&mut self, spins: u32) {
        self.spin_threshold = spins;
    }

    /// Switches pure-spin mode (never sleep) on or off, and tells producers through the shared
    /// futex word, as [`BusOptions::pure_spin`](crate::BusOptions::pure_spin) does at start.
    pub fn set_pure_spin(&mut self, pure_spin: bool) {
        if self.pure_spin == pure_spin {
            return;
        }
        self.pure_spin = pure_spin;
        let word = if pure_spin {
            sleeping::PURE_SPIN
        } else {
            sleeping::AWAKE
        };
        self.region
            .header()
            .consumer_sleeping
            .store(word, Ordering::Release);
    }

    /// Futex sleeps so far, and how many of them ended in a producer's wake (rather than the
    /// 200 ms timeout): the evidence that the peer's wake-ups reach us.
    pub fn sleep_stats(&self) -> (u64, u64) {
        (self.sleeps, self.wakeups)
    }

    /// The next message, if one has been published; never waits.
    pub fn try_recv(&mut self) -> Result<Option<Message<'_>>> {
        Ok(self.next_slot()?.map(|slot| Message::new(self, slot)))
    }

    /// The next message, waiting for it as long as it takes: spin up to the spin threshold,
    /// then sleep on the futex until the producer wakes us.
    ///
    /// Returns [`Error::PeerGone`] once the producer's process has exited and every message it
    /// published has been delivered (cross-process buses only).
    pub fn recv(&mut self) -> Result<Message<'_>> {
        let slot = self.wait_for_slot(None)?;
        Ok(Message::new(self, slot))
    }

    /// Like [`recv`](Consumer::recv), but gives up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>> {
        let slot = self.wait_for_slot(Some(timeout))?;
        Ok(Message::new(self, slot))
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
    pub fn flush(&mut self) {
        if self.tail != self.published_tail {
            self.publish_tail();
        }
    }

    /// The next slot, waiting for it: spin, then sleep. The clock is read, and the peer
    /// checked, only after the ring was found empty, and then only every 1024 spins, after
    /// a futex timeout, or every 50 ms.
    fn wait_for_slot(&mut self, timeout: Option<Duration>) -> Result<Slot> {
        if let Some(slot) = self.next_slot()? {
            return Ok(slot);
        }
        let deadline = timeout.and_then(wait::deadline_after);
        let mut next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
        let mut spins: u32 = 0;
        loop {
            if let Some(slot) = self.next_slot()? {
                return Ok(slot);
            }
            let may_sleep = !self.pure_spin && spins >= self.spin_threshold;
            if may_sleep || spins % SPINS_PER_CLOCK_READ == SPINS_PER_CLOCK_READ - 1 {
                let now = Instant::now();
                if deadline.is_some_and(|at| now >= at) {
                    return Err(Error::Timeout(timeout.unwrap_or_default()));
                }
                if now >= next_peer_check {
                    next_peer_check = now + PEER_CHECK_INTERVAL;
                    self.check_peer_alive()?;
                }
            }
            if !may_sleep {
                spins = spins.wrapping_add(1);
                std::hint::spin_loop();
                continue;
            }
            if !self.sleep_until_published(deadline) {
                // Timed out rather than woken: a good moment to look at the peer.
                self.check_peer_alive()?;
                next_peer_check = Instant::now() + PEER_CHECK_INTERVAL;
            }
            spins = 0;
        }
    }

    /// The futex protocol's consumer side: announce sleep, full fence, look at the head once
    /// more (a producer that published before seeing our announcement is caught here), then
    /// sleep at most 200 ms (bounds a missed wake-up) or until the deadline. True when a
    /// producer's wake (or a head already moved) ended it.
    fn sleep_until_published(&mut self, deadline: Option<Instant>) -> bool {
        let header = self.region.header();
        let word = &header.consumer_sleeping;
        word.store(sleeping::SLEEPING, Ordering::Release);
        fence(Ordering::SeqCst);
        let mut woken = true;
        if header.head.load(Ordering::Acquire) == self.tail {
            let mut nap = MAX_FUTEX_WAIT;
            if let Some(deadline) = deadline {
                nap = nap.min(deadline.saturating_duration_since(Instant::now()));
            }
            self.sleeps += 1;
            woken = wait::futex_wait(word, sleeping::SLEEPING, nap);
            self.wakeups += u64::from(woken);
        }
        word.store(sleeping::AWAKE, Ordering::Release);
        woken
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
        crate::trace::lifecycle!(error, end = "consumer", detail = %detail, "ring corrupt");
        self.poisoned = Some(detail.clone());
        self.region.mark_fatal();
        Error::Corrupt(detail)
    }

    fn release(&mut self, slot: &Slot) {
        self.tail += u64::from(slot.header.reserved_size);
        self.received += 1;
        self.received_bytes += u64::from(slot.header.size);
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
///
/// `C` is how the message holds its consumer: `&mut Consumer` from [`Consumer::recv`] and
/// friends, or any guard that dereferences to one (a `RefMut`, a `MutexGuard`) from
/// [`Message::recv_in`], for consumers kept behind a cell and shared by `&` reference.
pub struct Message<'a, C: DerefMut<Target = Consumer> = &'a mut Consumer> {
    consumer: C,
    slot: Slot,
    _borrow: PhantomData<&'a mut Consumer>,
}

impl<C: DerefMut<Target = Consumer>> fmt::Debug for Message<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("type_id", &self.type_id())
            .field("len", &self.len())
            .finish()
    }
}

impl<'a> Message<'a> {
    fn new(consumer: &'a mut Consumer, slot: Slot) -> Self {
        Message {
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
    pub fn recv_in(mut consumer: C) -> Result<Self> {
        let slot = consumer.wait_for_slot(None)?;
        Ok(Message {
            consumer,
            slot,
            _borrow: PhantomData,
        })
    }

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
}

impl<C: DerefMut<Target = Consumer>> Drop for Message<'_, C> {
    fn drop(&mut self) {
        self.consumer.release(&self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_spin_switches_and_producers_see_it_in_the_futex_word() {
        let region = Arc::new(Region::heap(4096).unwrap());
        let mut consumer = Consumer::new(Arc::clone(&region), 10, false, None);
        let word = || region.header().consumer_sleeping.load(Ordering::Acquire);
        assert_eq!(word(), sleeping::AWAKE);
        consumer.set_pure_spin(true);
        assert_eq!(word(), sleeping::PURE_SPIN);
        consumer.set_pure_spin(false);
        assert_eq!(word(), sleeping::AWAKE);
    }
}

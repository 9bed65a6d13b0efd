//! The producing end of a ring.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ring::shm::Region;
use crate::ring::state::RingState;
use crate::ring::stats::ProducerStats;
use crate::sys::peer::PeerWatch;
use crate::wait::cancel::CancelToken;
use crate::wait::{self, SpaceWait};
use crate::wire::layout::{
    self, PUBLISH_BATCH, SKIP_MARKER, SLOT_HEADER_LEN, SlotHeader, sleeping,
};

/// Writes messages into the ring. One per ring; `Send`, not `Sync`.
///
/// [`send`](Producer::send), [`send_timeout`](Producer::send_timeout) and
/// [`WriteSlot::commit`] *publish* at once: the message is visible to the consumer (and a
/// sleeping consumer woken) when they return, as upstream's `send` and `commit` do.
///
/// Batching is explicit: [`send_unflushed`](Producer::send_unflushed),
/// [`send_timeout_unflushed`](Producer::send_timeout_unflushed) and
/// [`WriteSlot::commit_unflushed`] commit without publishing; their messages become visible
/// every 32 commits (the wire format's rule), on [`flush`](Producer::flush), when the ring is
/// found full, or when the producer is dropped. One publish per batch instead of one per
/// message is what streaming throughput is made of.
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
/// producer.send(7, b"hello")?; // published now
/// let message = consumer.try_recv()?.expect("published");
/// assert_eq!((message.type_id(), message.data()), (7, &b"hello"[..]));
/// drop(message);
///
/// for tick in 0..3u8 {
///     producer.send_unflushed(1, &[tick])?; // committed, not yet visible
/// }
/// assert!(consumer.try_recv()?.is_none());
/// producer.flush(); // all three at once
/// assert_eq!(consumer.drain(10, |_| {})?, 3);
/// # Ok(()) }
/// ```
pub struct Producer {
    region: Arc<Region>,
    ring: *mut u8,
    capacity: usize,
    /// `capacity - 1`: ring offsets are `cursor & mask` (the capacity is a power of two).
    mask: u64,
    /// Our write cursor, ahead of the published one by the unpublished commits.
    head: u64,
    /// Last tail we read from the consumer; refreshed only when it says the ring is full.
    cached_tail: u64,
    /// Commits since the head was last published.
    unpublished: u32,
    /// Messages committed since the bus opened, and their payload bytes.
    committed: u64,
    committed_bytes: u64,
    /// Times a placement found the ring full, counted once per stretch of fullness.
    full_events: u64,
    /// The last placement found the ring full (cleared by the next commit).
    found_full: bool,
    /// Sleeping consumers this producer's publishes woke.
    wakes: u64,
    peer: Option<Arc<PeerWatch>>,
    /// Why the ring cannot be written, when the cursors found at start were corrupt.
    poisoned: Option<String>,
    /// Ends every wait for space early (see [`CancelToken`]).
    cancel: Option<CancelToken>,
}

// SAFETY: the producer owns its end of the ring exclusively; the raw pointer points into the
// region that the `Arc` keeps alive, which is valid from any thread.
unsafe impl Send for Producer {}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity)
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail)
            .field("unpublished", &self.unpublished)
            .finish()
    }
}

/// Where a reserved slot goes: `skip` bytes of padding to the ring's end first (0 when the
/// slot fits before it), then `slot_len` bytes at ring offset `offset`.
#[derive(Clone, Copy, Debug)]
struct Placement {
    skip: usize,
    offset: usize,
    slot_len: usize,
}

/// How often a producer waiting for space asks whether the consumer has exited.
const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

impl Producer {
    pub(crate) fn new(region: Arc<Region>, peer: Option<Arc<PeerWatch>>) -> Producer {
        // Loaded once and checked as loaded: a peer may change them between two loads.
        let (head, cached_tail) = (region.load_head(), region.load_tail());
        let poisoned = region.start_cursor_problem(head, cached_tail);
        Producer {
            ring: region.ring(),
            capacity: region.capacity(),
            mask: region.capacity() as u64 - 1,
            region,
            head,
            cached_tail,
            unpublished: 0,
            committed: 0,
            committed_bytes: 0,
            full_events: 0,
            found_full: false,
            wakes: 0,
            peer,
            poisoned,
            cancel: None,
        }
    }

    /// Watch `token` in every blocking call from now on (replacing the bus's), or nothing.
    pub fn set_cancel_token(&mut self, token: Option<CancelToken>) {
        self.cancel = token;
    }

    /// Ring bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A handle on this ring's shared state word, for any thread (see [`RingState`]).
    pub fn ring_state(&self) -> RingState {
        RingState::new(&self.region)
    }

    /// The largest payload one message can carry on this ring.
    pub fn max_payload(&self) -> usize {
        layout::max_payload_for(self.capacity)
    }

    /// Reserves a slot for up to `max_len` payload bytes without waiting.
    ///
    /// Write the payload through the returned slot (it derefs to `&mut [u8]` of `max_len`
    /// bytes, straight into shared memory), then [`commit`](WriteSlot::commit) it. Dropping it
    /// uncommitted rolls it back. Fails with [`Error::Full`] when the consumer has not freed
    /// enough space, and [`Error::MessageTooLarge`] when no amount of space would do.
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
    /// let mut slot = producer.reserve(16)?;
    /// slot[..3].copy_from_slice(b"abc");
    /// slot.commit(3, 1)?; // publishes; `commit_unflushed` would batch
    /// assert_eq!(consumer.try_recv()?.unwrap().data(), b"abc");
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn reserve(&mut self, max_len: usize) -> Result<WriteSlot<'_>> {
        let placement = self.try_place(max_len)?;
        Ok(WriteSlot::new(self, placement, max_len))
    }

    /// Like [`reserve`](Producer::reserve), but waits for space (spin, yield, then short
    /// sleeps) up to `timeout`; [`Error::Timeout`] after it, [`Error::Full`] at once for a
    /// zero timeout.
    pub fn reserve_timeout(&mut self, max_len: usize, timeout: Duration) -> Result<WriteSlot<'_>> {
        let placement = self.place_waiting(max_len, timeout)?;
        Ok(WriteSlot::new(self, placement, max_len))
    }

    /// Copies `payload` into a new message, commits it and publishes it (with every earlier
    /// unpublished commit), without waiting for space: [`Error::Full`] at once when full.
    #[inline]
    pub fn send(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        self.send_unflushed(type_id, payload)?;
        self.flush();
        Ok(())
    }

    /// Like [`send`](Producer::send), but leaves the message unpublished until the batch of
    /// 32 fills, [`flush`](Producer::flush) is called, or the ring is found full.
    #[inline]
    pub fn send_unflushed(&mut self, type_id: u32, payload: &[u8]) -> Result<()> {
        let placement = self.try_place(payload.len())?;
        self.write_and_commit(placement, type_id, payload);
        Ok(())
    }

    /// Like [`send`](Producer::send) (publishing), but waits for space up to `timeout`.
    ///
    /// Upstream's producer fails at once when full; this one first publishes what it has
    /// committed (so the consumer can drain it) and then waits.
    pub fn send_timeout(&mut self, type_id: u32, payload: &[u8], timeout: Duration) -> Result<()> {
        self.send_timeout_unflushed(type_id, payload, timeout)?;
        self.flush();
        Ok(())
    }

    /// Like [`send_timeout`](Producer::send_timeout), but batched as
    /// [`send_unflushed`](Producer::send_unflushed) is.
    pub fn send_timeout_unflushed(
        &mut self,
        type_id: u32,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<()> {
        let placement = self.place_waiting(payload.len(), timeout)?;
        self.write_and_commit(placement, type_id, payload);
        Ok(())
    }

    /// Publishes every commit now and wakes the consumer if it sleeps. Needed only after the
    /// `_unflushed` calls; harmless (and cheap) when nothing is pending.
    #[inline]
    pub fn flush(&mut self) {
        if self.unpublished > 0 {
            self.publish();
        }
    }

    /// How many times publishing woke a consumer asleep on the futex.
    pub fn wakes(&self) -> u64 {
        self.wakes
    }

    /// Commits not yet visible to the consumer.
    pub fn unpublished(&self) -> u32 {
        self.unpublished
    }

    /// This end's counters, and the ring's depth now (one atomic load of the tail).
    pub fn stats(&self) -> ProducerStats {
        let tail = self.region.header().tail.load(Ordering::Acquire);
        ProducerStats {
            committed: self.committed,
            committed_bytes: self.committed_bytes,
            published: self.committed - u64::from(self.unpublished),
            full_events: self.full_events,
            wakes: self.wakes,
            depth_bytes: self.head.saturating_sub(tail).min(self.capacity as u64),
            capacity: self.capacity as u64,
        }
    }

    #[inline]
    fn write_and_commit(&mut self, placement: Placement, type_id: u32, payload: &[u8]) {
        // SAFETY: `placement` came from `try_place`, so the slot's payload area is inside the
        // ring and owned by the producer until the head is published past it; `payload.len()`
        // is the max_len it was placed for.
        unsafe {
            std::ptr::copy_nonoverlapping(
                payload.as_ptr(),
                self.ring.add(placement.offset + SLOT_HEADER_LEN),
                payload.len(),
            );
        }
        self.commit(placement, payload.len(), type_id, 0);
    }

    /// Finds room for a slot of `max_len` payload bytes, or says why there is none.
    #[inline]
    fn try_place(&mut self, max_len: usize) -> Result<Placement> {
        // Fast path: a healthy ring with room before its end and a cached tail that says so.
        if self.poisoned.is_none() && max_len <= self.capacity {
            let slot_len = (SLOT_HEADER_LEN + max_len).next_multiple_of(SLOT_HEADER_LEN);
            let placement = self.placement_for(slot_len);
            if placement.skip == 0 && slot_len <= self.capacity && self.free_bytes() >= slot_len {
                return Ok(placement);
            }
        }
        self.try_place_slow(max_len)
    }

    /// [`try_place`](Producer::try_place) in full: errors, skips, refreshing the tail.
    #[inline(never)]
    fn try_place_slow(&mut self, max_len: usize) -> Result<Placement> {
        if let Some(why) = &self.poisoned {
            return Err(Error::Corrupt(why.clone()));
        }
        let slot_len = match layout::slot_len(max_len) {
            Some(len) if len <= self.capacity => len,
            other => {
                return Err(Error::MessageTooLarge {
                    len: max_len,
                    slot_len: other.map_or(u64::MAX, |len| len as u64),
                    capacity: self.capacity,
                });
            }
        };
        loop {
            let placement = self.placement_for(slot_len);
            let needed = placement.skip + slot_len;
            if self.free_bytes() >= needed {
                return Ok(placement);
            }
            self.refresh_tail()?;
            if self.free_bytes() >= needed {
                return Ok(placement);
            }
            if needed > self.capacity {
                // Even an empty ring cannot hold the skip and the slot together.
                if !self.consumer_follows_bare_skips() {
                    self.flush();
                    return Err(Error::CannotPlace {
                        len: max_len,
                        needed,
                        capacity: self.capacity,
                    });
                }
                if self.free_bytes() >= placement.skip {
                    // Publish the skip alone; the slot goes at offset 0 once the consumer has
                    // passed it. The skip stays in the stream even if this reserve is then
                    // rolled back, as upstream's skips do.
                    self.write_skip(self.ring_pos(self.head));
                    self.head += placement.skip as u64;
                    self.publish();
                    continue;
                }
            }
            // Let the consumer see everything we have, so it can free what we need.
            self.flush();
            if !self.found_full {
                self.found_full = true;
                self.full_events += 1;
            }
            return Err(Error::Full {
                needed,
                free: self.free_bytes(),
            });
        }
    }

    #[inline]
    fn ring_pos(&self, cursor: u64) -> usize {
        (cursor & self.mask) as usize
    }

    /// Where a slot of `slot_len` bytes goes from the current head.
    #[inline]
    fn placement_for(&self, slot_len: usize) -> Placement {
        let ring_pos = self.ring_pos(self.head);
        let room_to_end = self.capacity - ring_pos;
        if room_to_end < slot_len {
            Placement {
                skip: room_to_end,
                offset: 0,
                slot_len,
            }
        } else {
            Placement {
                skip: 0,
                offset: ring_pos,
                slot_len,
            }
        }
    }

    /// Whether the consumer advertises that it re-reads the head after a skip marker (ours
    /// does; upstream's reads a stale slot instead, so it never gets a bare skip).
    fn consumer_follows_bare_skips(&self) -> bool {
        let word = self
            .region
            .header()
            .consumer_features
            .load(Ordering::Acquire);
        layout::consumer_has_feature(word, layout::FEATURE_BARE_SKIP)
    }

    /// `try_place`, retried while the ring is full, until `timeout`. The clock, the peer
    /// check and the ring's state are looked at only once the ring was found full.
    fn place_waiting(&mut self, max_len: usize, timeout: Duration) -> Result<Placement> {
        let full = match self.try_place(max_len) {
            Err(full @ Error::Full { .. }) => full,
            other => return other,
        };
        if timeout.is_zero() {
            return Err(full);
        }
        let deadline = wait::deadline_after(timeout);
        let mut next_peer_check = Instant::now();
        let mut space_wait = SpaceWait::new();
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout(timeout));
            }
            if now >= next_peer_check {
                next_peer_check = now + PEER_CHECK_INTERVAL;
                self.check_peer()?;
            }
            space_wait.step(deadline, self.cancel.as_ref())?;
            match self.try_place(max_len) {
                Err(Error::Full { .. }) => {}
                other => return other,
            }
        }
    }

    /// While waiting for space: a ring the consumer marked fatal, or a consumer that has
    /// exited (nothing will free space any more), ends the wait.
    pub(crate) fn check_peer(&self) -> Result<()> {
        if self.region.header().state.load(Ordering::Acquire) == layout::state::FATAL_ERROR {
            return Err(Error::Corrupt(
                "the consumer marked the ring fatal (state 4)".into(),
            ));
        }
        match &self.peer {
            Some(peer) if peer.has_exited() => Err(peer.gone_error(self.committed)),
            _ => Ok(()),
        }
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

    #[inline]
    fn free_bytes(&self) -> usize {
        self.capacity - (self.head - self.cached_tail) as usize
    }

    /// Reloads the consumer's tail; a tail the format forbids marks the ring fatal.
    #[inline(never)]
    fn refresh_tail(&mut self) -> Result<()> {
        let tail = self.region.load_tail();
        if tail < self.cached_tail || tail > self.head || tail % SLOT_HEADER_LEN as u64 != 0 {
            self.region.mark_fatal();
            let detail = format!(
                "consumer published tail {tail}, outside [{}, {}] (our last seen tail, our head) \
                 or not 64-byte aligned",
                self.cached_tail, self.head
            );
            crate::trace::lifecycle!(error, end = "producer", detail = %detail, "ring corrupt");
            return Err(Error::Corrupt(detail));
        }
        self.cached_tail = tail;
        Ok(())
    }

    /// Writes the skip (if any) and the slot header, advances the head, and publishes every
    /// 32 commits. `correlation_id` is 0 on SPSC buses.
    #[inline]
    fn commit(&mut self, placement: Placement, len: usize, type_id: u32, correlation_id: u64) {
        if placement.skip > 0 {
            self.write_skip(self.ring_pos(self.head));
        }
        self.write_header(
            placement.offset,
            SlotHeader {
                size: len as u32,
                type_id,
                reserved_size: placement.slot_len as u32,
                padding: 0,
                correlation_id,
            },
        );
        self.head += (placement.skip + placement.slot_len) as u64;
        self.unpublished += 1;
        self.committed += 1;
        self.committed_bytes += len as u64;
        self.found_full = false;
        if self.unpublished >= PUBLISH_BATCH {
            self.publish();
        }
    }

    /// A skip header: size = SKIP_MARKER and the rest of its 64 bytes zero.
    fn write_skip(&mut self, ring_pos: usize) {
        self.write_header(
            ring_pos,
            SlotHeader {
                size: SKIP_MARKER,
                ..SlotHeader::default()
            },
        );
        // SAFETY: ring_pos + 64 <= capacity because the bytes left to the ring's end are a
        // nonzero multiple of 64, and they are free (not yet published).
        unsafe {
            std::ptr::write_bytes(
                self.ring.add(ring_pos + size_of::<SlotHeader>()),
                0,
                SLOT_HEADER_LEN - size_of::<SlotHeader>(),
            )
        };
    }

    /// Where a placed slot's payload starts in this producer's ring.
    #[inline]
    fn payload_of(&self, placement: &Placement) -> *mut u8 {
        // SAFETY: `try_place` put the slot (header and payload) before the ring's end, so
        // offset + 64 stays inside the mapping.
        unsafe { self.ring.add(placement.offset + SLOT_HEADER_LEN) }
    }

    #[inline]
    fn write_header(&mut self, ring_pos: usize, header: SlotHeader) {
        // SAFETY: `ring_pos` is a 64-aligned offset of a slot the producer owns (not yet
        // published), with at least 64 bytes before the ring's end.
        unsafe { std::ptr::write_volatile(self.ring.add(ring_pos) as *mut SlotHeader, header) };
    }

    /// Release-stores the head, then wakes the consumer if it sleeps (the futex protocol: a
    /// full fence orders our store before reading the word, pairing with the consumer's fence between storing "sleeping" and re-reading the head).
    ///
    /// The word is swapped from SLEEPING back to AWAKE *before* the wake: a consumer that
    /// announced sleep but has not reached `FUTEX_WAIT` yet then finds the word changed and
    /// looks at the ring again, instead of sleeping through a wake that came too early.
    #[inline(never)]
    fn publish(&mut self) {
        let header = self.region.header();
        header.head.store(self.head, Ordering::Release);
        self.unpublished = 0;
        let word = &header.consumer_sleeping;
        // The fence comes before any read of the word, PURE_SPIN included: a value read
        // before it may be older than our head store is to the consumer (store-load
        // reordering), so a consumer that has just left pure spin and announced sleep could
        // be skipped, costing it a nap.
        fence(Ordering::SeqCst);
        if word.load(Ordering::Relaxed) == sleeping::SLEEPING
            && word
                .compare_exchange(
                    sleeping::SLEEPING,
                    sleeping::AWAKE,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            && crate::sys::futex::futex_wake(word)
        {
            self.wakes += 1;
        }
    }
}

#[cfg(test)]
impl Producer {
    /// Publishes the head and wakes *without* swapping the word back to AWAKE: upstream's
    /// producer, whose wake can land before the consumer reaches `FUTEX_WAIT`. For tests that
    /// drive that interleaving step by step.
    pub(crate) fn publish_as_upstream(&mut self) {
        let header = self.region.header();
        header.head.store(self.head, Ordering::Release);
        fence(Ordering::SeqCst);
        if header.consumer_sleeping.load(Ordering::Relaxed) == sleeping::SLEEPING {
            crate::sys::futex::futex_wake(&header.consumer_sleeping);
        }
        self.unpublished = 0;
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A reserved slot: write the payload through `DerefMut<Target = [u8]>`, then commit.
/// Dropped uncommitted, it is rolled back: nothing of it reaches the consumer. (A *bare* skip
/// marker that `reserve` had to publish to make room stays in the stream, as upstream's skips
/// do; the consumer passes over it.)
///
/// `P` is how the slot holds its producer: `&mut Producer` from [`Producer::reserve`], or any
/// guard that dereferences to one (a `RefMut`, a `MutexGuard`) from
/// [`WriteSlot::reserve_in`], for producers kept behind a cell and shared by `&` reference.
pub struct WriteSlot<'a, P: DerefMut<Target = Producer> = &'a mut Producer> {
    producer: P,
    placement: Placement,
    max_len: usize,
    /// The payload area, located when the slot was placed, in the ring it was placed in.
    /// Writes go through it, never through `producer` again: a guard `P` may dereference to
    /// another producer the second time ([`WriteSlot::reserve_in`]).
    payload: *mut u8,
    /// That ring's base, to refuse a commit through a guard that now reaches another one.
    ring: *const u8,
    /// Keeps that ring mapped when the slot holds its producer through a guard (which could
    /// drop the producer); `None` for `&'a mut Producer`, whose borrow keeps it.
    _mapping: Option<Arc<Region>>,
    _borrow: PhantomData<&'a mut Producer>,
}

// SAFETY: the raw pointers point into a ring kept mapped by the producer's borrow or by
// `_mapping` (an `Arc<Region>`, which is `Send`); shared memory is valid from any thread, so
// the slot may move to another thread exactly when its guard may.
unsafe impl<P: DerefMut<Target = Producer> + Send> Send for WriteSlot<'_, P> {}

impl<P: DerefMut<Target = Producer>> fmt::Debug for WriteSlot<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteSlot")
            .field("max_len", &self.max_len)
            .field("placement", &self.placement)
            .finish()
    }
}

impl<'a> WriteSlot<'a> {
    #[inline]
    fn new(producer: &'a mut Producer, placement: Placement, max_len: usize) -> Self {
        WriteSlot {
            payload: producer.payload_of(&placement),
            ring: producer.ring,
            _mapping: None,
            producer,
            placement,
            max_len,
            _borrow: PhantomData,
        }
    }
}

impl<'a, P: DerefMut<Target = Producer>> WriteSlot<'a, P> {
    /// [`Producer::reserve`] for a producer reached through a guard `P`, which the slot keeps
    /// until it is committed or dropped.
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// use std::cell::RefCell;
    /// use tachyon_ring::WriteSlot;
    /// let (producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
    /// let shared = RefCell::new(producer);
    /// let mut slot = WriteSlot::reserve_in(shared.borrow_mut(), 4)?;
    /// slot.copy_from_slice(b"tick");
    /// slot.commit(4, 1)?;
    /// assert_eq!(consumer.try_recv()?.unwrap().data(), b"tick");
    /// # Ok(()) }
    /// ```
    ///
    /// The guard is dereferenced once to place the slot; the slot then writes only into the
    /// ring it was placed in (kept mapped by the slot), and a commit through a guard that now
    /// reaches another producer is refused with [`Error::GuardChanged`].
    #[inline]
    pub fn reserve_in(mut producer: P, max_len: usize) -> Result<Self> {
        let placed_in: &mut Producer = &mut producer;
        let placement = placed_in.try_place(max_len)?;
        let (payload, ring) = (placed_in.payload_of(&placement), placed_in.ring);
        let mapping = Some(Arc::clone(&placed_in.region));
        Ok(WriteSlot {
            producer,
            placement,
            max_len,
            payload,
            ring,
            _mapping: mapping,
            _borrow: PhantomData,
        })
    }

    /// Commits the first `len` bytes of the slot as a message of type `type_id` and publishes
    /// it (with every earlier unpublished commit). [`Error::CommitTooLong`] (and a rollback)
    /// when `len` exceeds the reserved length.
    #[inline]
    pub fn commit(self, len: usize, type_id: u32) -> Result<()> {
        let mut producer = self.commit_with(len, type_id, 0)?;
        producer.flush();
        Ok(())
    }

    /// Like [`commit`](WriteSlot::commit), but leaves the message unpublished until the batch
    /// of 32 fills or [`Producer::flush`] is called (upstream's `commit_unflushed`).
    #[inline]
    pub fn commit_unflushed(self, len: usize, type_id: u32) -> Result<()> {
        self.commit_with(len, type_id, 0).map(drop)
    }

    /// Commits with an RPC correlation id and publishes at once (a caller or callee waits on
    /// every message, so nothing is batched).
    pub(crate) fn commit_rpc(self, len: usize, type_id: u32, correlation_id: u64) -> Result<()> {
        let mut producer = self.commit_with(len, type_id, correlation_id)?;
        producer.flush();
        Ok(())
    }

    fn commit_with(self, len: usize, type_id: u32, correlation_id: u64) -> Result<P> {
        if len > self.max_len {
            return Err(Error::CommitTooLong {
                len,
                reserved: self.max_len,
            });
        }
        let mut producer = self.producer;
        let placed_in: &mut Producer = &mut producer;
        if placed_in.ring != self.ring.cast_mut() {
            return Err(Error::GuardChanged);
        }
        placed_in.commit(self.placement, len, type_id, correlation_id);
        Ok(producer)
    }

    /// Drops the slot without committing it (what dropping does; this names the intent).
    pub fn rollback(self) {}
}

impl<P: DerefMut<Target = Producer>> Deref for WriteSlot<'_, P> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: the payload area [offset + 64, offset + 64 + max_len) lies inside the ring
        // it was placed in (`slot_len` covers it and fits before the ring's end), which the
        // borrow or `_mapping` keeps mapped, and belongs to the producer until it publishes a
        // head past it, which cannot happen while this slot lives.
        unsafe { std::slice::from_raw_parts(self.payload, self.max_len) }
    }
}

impl<P: DerefMut<Target = Producer>> DerefMut for WriteSlot<'_, P> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference to those bytes
        // in this process.
        unsafe { std::slice::from_raw_parts_mut(self.payload, self.max_len) }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod mutant_kills;

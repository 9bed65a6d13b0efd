// Floor: ring (a module of the consumer's); imports ring, wait and base only.
//! Batches: several consecutive messages of one ring, read in place and held together until
//! the batch is released (upstream's `acquire_rx_batch` / `commit_rx_batch`).
//!
//! Every slot of a batch passes the checks a single receive makes, on a private copy of its
//! header. A batch is one run of slots: it follows a skip marker only before its first slot,
//! so its slots lie end to end in the ring and releasing it moves the tail past all of them.

use std::fmt;
use std::time::Duration;

use crate::error::Result;
use crate::ring::consumer::{Consumer, Slot};
use crate::wait::OnSignal;

/// Up to `max` consecutive messages, read in place; dropping the batch (or
/// [`commit`](Batch::commit)) releases them all, in order, as if each had been received and
/// dropped. [`commit_first`](Batch::commit_first) releases only a prefix: the rest are
/// delivered again by the next receive.
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
/// for i in 0..3u8 {
///     producer.send(7, &[i])?;
/// }
/// let batch = consumer.try_batch(10)?;
/// assert_eq!(batch.len(), 3);
/// let firsts: Vec<u8> = batch.iter().map(|m| m.data()[0]).collect();
/// assert_eq!(firsts, [0, 1, 2]);
/// batch.commit();
/// assert!(consumer.try_recv()?.is_none());
/// # Ok(()) }
/// ```
///
/// The same trust notes as for [`Message`](crate::Message) hold for the bytes.
pub struct Batch<'a> {
    consumer: &'a mut Consumer,
    slots: Vec<Slot>,
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.slots.len())
            .finish()
    }
}

/// One message of a [`Batch`], read in place.
#[derive(Clone, Copy)]
pub struct BatchMessage<'b> {
    data: &'b [u8],
    type_id: u32,
    slot_len: u64,
}

impl fmt::Debug for BatchMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchMessage")
            .field("type_id", &self.type_id)
            .field("len", &self.data.len())
            .finish()
    }
}

impl<'b> BatchMessage<'b> {
    /// The payload, in place in shared memory.
    pub fn data(&self) -> &'b [u8] {
        self.data
    }

    /// The message's type id: route id in bits 31..16, message type in 15..0.
    pub fn type_id(&self) -> u32 {
        self.type_id
    }

    /// The whole slot the message occupies (header, payload and padding), in bytes: what
    /// upstream's views call `reserved_`.
    pub fn slot_len(&self) -> u64 {
        self.slot_len
    }
}

impl Consumer {
    /// The messages already published, up to `max`, held together; never waits (the batch
    /// may be empty).
    pub fn try_batch(&mut self, max: usize) -> Result<Batch<'_>> {
        let first = if max == 0 { None } else { self.batch_first()? };
        Ok(self.batch_from(first, max))
    }

    /// Waits (spin, then futex, as [`recv`](Consumer::recv) does) for at least one message,
    /// at most `timeout` when one is given, then holds up to `max` of those published. With
    /// `max` 0 it returns an empty batch at once.
    pub fn recv_batch(&mut self, max: usize, timeout: Option<Duration>) -> Result<Batch<'_>> {
        self.wait_batch(max, timeout, OnSignal::Retry)
    }

    /// Like [`recv_batch`](Consumer::recv_batch), but a signal that interrupts the sleep ends
    /// it with [`Error::Interrupted`](crate::Error::Interrupted), as
    /// [`recv_interruptible`](Consumer::recv_interruptible) does.
    pub fn recv_batch_interruptible(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Batch<'_>> {
        self.wait_batch(max, timeout, OnSignal::Interrupt)
    }

    fn wait_batch(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        on_signal: OnSignal,
    ) -> Result<Batch<'_>> {
        if max == 0 {
            return Ok(self.batch_from(None, 0));
        }
        let first = self.wait_for_slot_on(timeout, on_signal)?;
        Ok(self.batch_from(Some(first), max))
    }

    /// The batch that starts at `first` (already located and checked at the tail): the sound
    /// slots that follow it end to end, up to `max` in all.
    fn batch_from(&mut self, first: Option<Slot>, max: usize) -> Batch<'_> {
        let mut slots = std::mem::take(&mut self.batch_slots);
        slots.clear();
        if let Some(first) = first {
            let mut ahead = Consumer::slot_len(&first);
            slots.push(first);
            while slots.len() < max {
                let Some(next) = self.batch_next(ahead) else {
                    break;
                };
                ahead += Consumer::slot_len(&next);
                slots.push(next);
            }
        }
        Batch {
            consumer: self,
            slots,
        }
    }
}

impl Batch<'_> {
    /// Messages held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `index`th message.
    pub fn get(&self, index: usize) -> Option<BatchMessage<'_>> {
        self.slots.get(index).map(|slot| self.message(slot))
    }

    /// The messages, in ring order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchMessage<'_>> + '_ {
        self.slots.iter().map(|slot| self.message(slot))
    }

    fn message(&self, slot: &Slot) -> BatchMessage<'_> {
        let (payload, len, type_id) = self.consumer.slot_view(slot);
        // SAFETY: the slot was located and checked in this consumer's ring (`batch_first` /
        // `batch_next`, which ran `slot_problem` on the copied header), so its `len` payload
        // bytes lie inside the ring, published (acquire on head) and not reused by a
        // conforming producer until the batch releases them; the borrow of `self` keeps the
        // consumer, and with it the mapping, alive.
        let data = unsafe { std::slice::from_raw_parts(payload, len) };
        BatchMessage {
            data,
            type_id,
            slot_len: Consumer::slot_len(slot),
        }
    }

    /// Releases every message of the batch (what dropping it does; this names the intent).
    pub fn commit(self) {}

    /// Releases the first `count` messages (all of them when `count` exceeds the batch) and
    /// leaves the rest in the ring, to be received again.
    pub fn commit_first(mut self, count: usize) {
        let keep = count.min(self.slots.len());
        self.slots.truncate(keep);
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.consumer.release_batch(&self.slots);
        self.consumer.batch_slots = std::mem::take(&mut self.slots);
    }
}

//! `Bus` and its guards: upstream's `&self` API over one `tachyon_ring` end kept in a
//! `RefCell` (a `Bus` is `Send`, not `Sync`, as upstream's).

use std::cell::{Cell, RefCell, RefMut};
use std::marker::PhantomData;

use tachyon_ring::{Consumer, Message, Producer, WriteSlot};

use crate::error::TachyonError;

/// The end of the ring this process plays, fixed by the first call that needs one.
enum End {
    /// Connected, no role taken yet.
    Unused(tachyon_ring::Bus),
    Producer(Producer),
    Consumer(Consumer),
    /// Only while switching from `Unused` to a role.
    Switching,
}

/// One SPSC bus: tachyon-ipc 0.5.1's `Bus`. `Send`, not `Sync`.
///
/// The first `send` / `acquire_tx` makes this process the producer, the first `acquire_rx` /
/// `drain_batch` the consumer; using the other role afterwards fails with
/// [`TachyonError::SystemError`] (upstream lets one process play both on one bus).
pub struct Bus {
    end: RefCell<End>,
    /// `set_polling_mode`, applied to the consumer at each receive.
    pure_spin: Cell<bool>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match self.end.try_borrow().as_deref() {
            Ok(End::Producer(_)) => "producer",
            Ok(End::Consumer(_)) => "consumer",
            Ok(_) => "unused",
            Err(_) => "in use",
        };
        f.debug_struct("Bus").field("role", &role).finish()
    }
}

impl Bus {
    /// Creates a ring of `capacity` bytes and blocks until one peer has connected (a signal
    /// does not end the wait, as with upstream's binding: tachyon-ring retries `EINTR`).
    pub fn listen(socket_path: &str, capacity: usize) -> Result<Self, TachyonError> {
        Ok(Bus::wrap(tachyon_ring::Bus::listen(socket_path, capacity)?))
    }

    /// Connects to a listener; fails at once when nobody listens.
    pub fn connect(socket_path: &str) -> Result<Self, TachyonError> {
        Ok(Bus::wrap(tachyon_ring::Bus::connect(socket_path)?))
    }

    fn wrap(bus: tachyon_ring::Bus) -> Bus {
        Bus {
            end: RefCell::new(End::Unused(bus)),
            pure_spin: Cell::new(false),
        }
    }

    /// Checks `node_id` as upstream does (0..64, else [`TachyonError::InvalidSize`]) and
    /// binds nothing: the pages stay where the kernel placed them (see the crate docs).
    pub fn set_numa_node(&self, node_id: i32) -> Result<(), TachyonError> {
        if !(0..64).contains(&node_id) {
            return Err(TachyonError::InvalidSize);
        }
        Ok(())
    }

    /// `1`: the consumer of this bus never sleeps and tells producers so (they skip the wake
    /// check); `0`: spin, then sleep. Affects this process's consumer only, from its next
    /// receive.
    pub fn set_polling_mode(&self, spin_mode: i32) {
        self.pure_spin.set(spin_mode != 0);
    }

    /// Copies `data` into a message, commits and publishes it. [`TachyonError::BufferFull`]
    /// at once when the ring has no room.
    pub fn send(&self, data: &[u8], type_id: u32) -> Result<(), TachyonError> {
        Ok(self.producer()?.send(type_id, data)?)
    }

    /// Reserves a slot of up to `max_size` bytes to write in place; commit the guard, or drop
    /// it to roll back. [`TachyonError::BufferFull`] at once when the ring has no room.
    pub fn acquire_tx(&self, max_size: usize) -> Result<TxGuard<'_>, TachyonError> {
        let slot = WriteSlot::reserve_in(self.producer()?, max_size)?;
        Ok(TxGuard {
            slot: RefCell::new(slot),
            max_size,
        })
    }

    /// Waits for the next message (spin `spin_threshold` times, then sleep on the futex) and
    /// hands it out in place.
    pub fn acquire_rx(&self, spin_threshold: u32) -> Result<RxGuard<'_>, TachyonError> {
        let mut consumer = self.consumer()?;
        consumer.set_spin_threshold(spin_threshold);
        let message = Message::recv_in(consumer)?;
        Ok(RxGuard {
            actual_size: message.len(),
            type_id: message.type_id(),
            message,
        })
    }

    /// Waits for at least one message, then takes every published one up to `max_msgs`
    /// (copied out: see the crate docs). `max_msgs == 0` returns an empty batch at once.
    pub fn drain_batch(
        &self,
        max_msgs: usize,
        spin_threshold: u32,
    ) -> Result<RxBatchGuard<'_>, TachyonError> {
        let mut received = Vec::new();
        if max_msgs > 0 {
            let mut consumer = self.consumer()?;
            consumer.set_spin_threshold(spin_threshold);
            received.push(Received::of(&consumer.recv()?));
            consumer.drain(max_msgs - 1, |message| {
                received.push(Received::of(message));
            })?;
        }
        Ok(RxBatchGuard {
            count: received.len(),
            received,
            _bus: PhantomData,
        })
    }

    /// Publishes every commit made with [`TxGuard::commit_unflushed`]. Does nothing on a
    /// consumer, or while a [`TxGuard`] of this bus is alive.
    pub fn flush(&self) {
        if let Ok(mut end) = self.end.try_borrow_mut() {
            if let End::Producer(producer) = &mut *end {
                producer.flush();
            }
        }
    }

    fn producer(&self) -> Result<RefMut<'_, Producer>, TachyonError> {
        let end = self.take_role(|bus| End::Producer(bus.into_producer()))?;
        RefMut::filter_map(end, |end| match end {
            End::Producer(producer) => Some(producer),
            _ => None,
        })
        .map_err(|_| TachyonError::SystemError)
    }

    fn consumer(&self) -> Result<RefMut<'_, Consumer>, TachyonError> {
        let end = self.take_role(|bus| End::Consumer(bus.into_consumer()))?;
        let mut consumer = RefMut::filter_map(end, |end| match end {
            End::Consumer(consumer) => Some(consumer),
            _ => None,
        })
        .map_err(|_| TachyonError::SystemError)?;
        consumer.set_pure_spin(self.pure_spin.get());
        Ok(consumer)
    }

    /// The end, taking a role with `become_end` if none is taken yet. A guard still alive
    /// holds the end: [`TachyonError::SystemError`].
    fn take_role(
        &self,
        become_end: impl FnOnce(tachyon_ring::Bus) -> End,
    ) -> Result<RefMut<'_, End>, TachyonError> {
        let mut end = self
            .end
            .try_borrow_mut()
            .map_err(|_| TachyonError::SystemError)?;
        if matches!(*end, End::Unused(_)) {
            if let End::Unused(bus) = std::mem::replace(&mut *end, End::Switching) {
                *end = become_end(bus);
            }
        }
        Ok(end)
    }
}

/// A reserved slot: tachyon-ipc's `TxGuard`. Write, then [`commit`](TxGuard::commit)
/// (publishes) or [`commit_unflushed`](TxGuard::commit_unflushed) (batches); dropped
/// uncommitted, it rolls back.
pub struct TxGuard<'bus> {
    slot: RefCell<WriteSlot<'bus, RefMut<'bus, Producer>>>,
    max_size: usize,
}

impl std::fmt::Debug for TxGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxGuard")
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl TxGuard<'_> {
    /// Copies `data` to the start of the slot.
    ///
    /// # Panics
    /// When `data` is longer than the slot, as upstream's does.
    pub fn write(&self, data: &[u8]) {
        assert!(
            data.len() <= self.max_size,
            "TxGuard::write of {} bytes into a slot reserved for {}",
            data.len(),
            self.max_size
        );
        self.slot.borrow_mut()[..data.len()].copy_from_slice(data);
    }

    /// The whole slot, to write in place.
    ///
    /// # Safety
    /// None needed here: the slice is exactly the slot, so no write can leave it. The
    /// function stays `unsafe` because upstream's is, so that callers' `unsafe` blocks
    /// compile unchanged.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        self.slot.get_mut()
    }

    /// Bytes reserved.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Commits the first `actual_size` bytes as a message of `type_id` and publishes it.
    /// [`TachyonError::SystemError`] (and a rollback) when `actual_size` exceeds the slot.
    pub fn commit(self, actual_size: usize, type_id: u32) -> Result<(), TachyonError> {
        Ok(self.slot.into_inner().commit(actual_size, type_id)?)
    }

    /// Commits without publishing: visible after 32 commits or [`Bus::flush`].
    pub fn commit_unflushed(self, actual_size: usize, type_id: u32) -> Result<(), TachyonError> {
        Ok(self
            .slot
            .into_inner()
            .commit_unflushed(actual_size, type_id)?)
    }
}

/// A received message, in place: tachyon-ipc's `RxGuard`. [`commit`](RxGuard::commit) or
/// drop it to release the slot.
pub struct RxGuard<'bus> {
    message: Message<'bus, RefMut<'bus, Consumer>>,
    /// Payload bytes.
    pub actual_size: usize,
    /// The message's type id.
    pub type_id: u32,
}

impl std::fmt::Debug for RxGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxGuard")
            .field("actual_size", &self.actual_size)
            .field("type_id", &self.type_id)
            .finish()
    }
}

impl RxGuard<'_> {
    /// The payload, in place in shared memory.
    pub fn data(&self) -> &[u8] {
        self.message.data()
    }

    /// Releases the slot.
    pub fn commit(self) -> Result<(), TachyonError> {
        drop(self.message);
        Ok(())
    }
}

/// One message of a batch, copied out of the ring.
#[derive(Debug)]
struct Received {
    type_id: u32,
    data: Vec<u8>,
}

impl Received {
    fn of<C: std::ops::DerefMut<Target = Consumer>>(message: &Message<'_, C>) -> Received {
        Received {
            type_id: message.type_id(),
            data: message.to_vec(),
        }
    }
}

/// Messages taken by [`Bus::drain_batch`]: tachyon-ipc's `RxBatchGuard`.
#[derive(Debug)]
pub struct RxBatchGuard<'bus> {
    received: Vec<Received>,
    /// Messages in the batch.
    pub count: usize,
    _bus: PhantomData<&'bus Bus>,
}

impl RxBatchGuard<'_> {
    /// Message `i`, if the batch has one.
    pub fn get(&self, i: usize) -> Option<RxMsgView<'_>> {
        self.received.get(i).map(RxMsgView::new)
    }

    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.received.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.received.is_empty()
    }

    /// The messages in order.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            inner: self.received.iter(),
        }
    }

    /// Releases the batch.
    pub fn commit(self) -> Result<(), TachyonError> {
        Ok(())
    }
}

impl<'bus> IntoIterator for &'bus RxBatchGuard<'bus> {
    type Item = RxMsgView<'bus>;
    type IntoIter = BatchIter<'bus>;

    fn into_iter(self) -> BatchIter<'bus> {
        self.iter()
    }
}

/// Iterator over a batch: tachyon-ipc's `BatchIter`.
#[derive(Debug)]
pub struct BatchIter<'batch> {
    inner: std::slice::Iter<'batch, Received>,
}

impl<'batch> Iterator for BatchIter<'batch> {
    type Item = RxMsgView<'batch>;

    fn next(&mut self) -> Option<RxMsgView<'batch>> {
        self.inner.next().map(RxMsgView::new)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

/// One message of a batch: tachyon-ipc's `RxMsgView`.
#[derive(Debug, Clone, Copy)]
pub struct RxMsgView<'batch> {
    received: &'batch Received,
}

impl<'batch> RxMsgView<'batch> {
    fn new(received: &'batch Received) -> Self {
        RxMsgView { received }
    }

    /// The payload, valid as long as the batch.
    pub fn data(&self) -> &'batch [u8] {
        &self.received.data
    }

    /// Payload bytes.
    pub fn actual_size(&self) -> usize {
        self.received.data.len()
    }

    /// The message's type id.
    pub fn type_id(&self) -> u32 {
        self.received.type_id
    }
}

//! Typed messages: plain-old-data values (`T: bytemuck::Pod`) sent and read without hand
//! byte-slicing. Payloads start 64-byte aligned in the ring, so a view in place works for
//! any `T` aligned to 64 or less; packed types (such as the seed's MarketTick, whose u64 sits
//! at offset 20) are read by copy.

use std::ops::DerefMut;
use std::time::Duration;

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::ring::consumer::{Consumer, Message};
use crate::ring::producer::{Producer, WriteSlot};

fn layout_error<T>(len: usize) -> Error {
    Error::PayloadLayout {
        type_name: std::any::type_name::<T>(),
        len,
        size: size_of::<T>(),
        align: align_of::<T>(),
    }
}

impl Producer {
    /// Sends `value`'s bytes as one message and publishes it ([`send`](Producer::send)).
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// #[repr(C)]
    /// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    /// struct Quote { price: f64, quantity: u32, venue: u32 }
    ///
    /// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
    /// let quote = Quote { price: 101.5, quantity: 7, venue: 3 };
    /// producer.send_pod(1, &quote)?;
    /// let message = consumer.try_recv()?.expect("published");
    /// assert_eq!(message.as_pod::<Quote>()?, &quote); // in place
    /// assert_eq!(message.read_pod::<Quote>()?, quote); // copied out
    /// # Ok(()) }
    /// ```
    pub fn send_pod<T: Pod>(&mut self, type_id: u32, value: &T) -> Result<()> {
        self.send(type_id, bytemuck::bytes_of(value))
    }

    /// [`send_pod`](Producer::send_pod), batched as
    /// [`send_unflushed`](Producer::send_unflushed) is.
    pub fn send_pod_unflushed<T: Pod>(&mut self, type_id: u32, value: &T) -> Result<()> {
        self.send_unflushed(type_id, bytemuck::bytes_of(value))
    }

    /// [`send_pod`](Producer::send_pod), waiting for space up to `timeout`.
    pub fn send_pod_timeout<T: Pod>(
        &mut self,
        type_id: u32,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.send_timeout(type_id, bytemuck::bytes_of(value), timeout)
    }

    /// Reserves a slot sized for one `T`, to fill in place through
    /// [`WriteSlot::pod_mut`] and commit with [`WriteSlot::commit_pod`].
    pub fn reserve_pod<T: Pod>(&mut self) -> Result<WriteSlot<'_>> {
        self.reserve(size_of::<T>())
    }
}

impl<P: DerefMut<Target = Producer>> WriteSlot<'_, P> {
    /// The start of the slot as a `T`, written in place. [`Error::PayloadLayout`] when the
    /// slot is shorter than a `T` (or `T` needs more than the payload's 64-byte alignment).
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(4096)?.split();
    /// let mut slot = producer.reserve_pod::<[u64; 4]>()?;
    /// *slot.pod_mut::<[u64; 4]>()? = [1, 2, 3, 4];
    /// slot.commit_pod::<[u64; 4]>(9)?;
    /// assert_eq!(consumer.try_recv()?.unwrap().read_pod::<[u64; 4]>()?, [1, 2, 3, 4]);
    /// # Ok(()) }
    /// ```
    pub fn pod_mut<T: Pod>(&mut self) -> Result<&mut T> {
        let len = self.len();
        let bytes = self
            .get_mut(..size_of::<T>())
            .ok_or_else(|| layout_error::<T>(len))?;
        bytemuck::try_from_bytes_mut(bytes).map_err(|_| layout_error::<T>(len))
    }

    /// Commits one `T` (its size in bytes) and publishes it.
    pub fn commit_pod<T: Pod>(self, type_id: u32) -> Result<()> {
        self.commit(size_of::<T>(), type_id)
    }
}

impl<C: DerefMut<Target = Consumer>> Message<'_, C> {
    /// The payload as a `T`, in place. [`Error::PayloadLayout`] when the payload is not
    /// exactly `size_of::<T>()` bytes or `T` needs more than its 64-byte alignment; for
    /// packed types, or to act on a copy a hostile peer cannot change, use
    /// [`read_pod`](Message::read_pod).
    pub fn as_pod<T: Pod>(&self) -> Result<&T> {
        bytemuck::try_from_bytes(self.data()).map_err(|_| layout_error::<T>(self.len()))
    }

    /// A copy of the payload as a `T`, whatever `T`'s alignment (packed types included).
    /// [`Error::PayloadLayout`] when the payload is not exactly `size_of::<T>()` bytes.
    pub fn read_pod<T: Pod>(&self) -> Result<T> {
        let mut value = T::zeroed();
        match self.copy_to(bytemuck::bytes_of_mut(&mut value)) {
            Some(len) if len == size_of::<T>() => Ok(value),
            _ => Err(layout_error::<T>(self.len())),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use crate::{Bus, Error};

    /// The seed's MarketTick layout: packed, so its u64 at offset 20 is unaligned.
    #[repr(C, packed)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct PackedTick {
        symbol: [u8; 8],
        price: f64,
        quantity: u32,
        timestamp: u64,
        padding: [u8; 4],
    }

    #[test]
    fn packed_values_round_trip_by_copy() {
        let (mut producer, mut consumer) = Bus::in_memory(4096).unwrap().split();
        let tick = PackedTick {
            symbol: *b"BTCUSDT\0",
            price: 65000.5,
            quantity: 7,
            timestamp: 1_700_000_000_123_456_789,
            padding: [0; 4],
        };
        producer.send_pod(1, &tick).unwrap();
        let message = consumer.try_recv().unwrap().unwrap();
        assert_eq!(message.len(), 32);
        let copy = message.read_pod::<PackedTick>().unwrap();
        let (price, timestamp) = (copy.price, copy.timestamp);
        assert_eq!((price, timestamp), (65000.5, 1_700_000_000_123_456_789));
    }

    #[test]
    fn a_payload_of_the_wrong_size_is_refused_and_named() {
        let (mut producer, mut consumer) = Bus::in_memory(4096).unwrap().split();
        producer.send(1, &[0; 31]).unwrap();
        let message = consumer.try_recv().unwrap().unwrap();
        let Err(err) = message.read_pod::<PackedTick>() else {
            panic!("31 bytes read as a 32-byte tick");
        };
        assert!(
            matches!(
                err,
                Error::PayloadLayout {
                    len: 31,
                    size: 32,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("PackedTick"), "{err}");
        assert!(message.as_pod::<u64>().is_err());
        assert!(!err.is_fatal());
    }

    #[test]
    fn in_place_views_work_up_to_the_payload_alignment() {
        #[repr(C, align(64))]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct Line([u64; 8]);
        let (mut producer, mut consumer) = Bus::in_memory(4096).unwrap().split();
        for shift in 0..3u64 {
            // Slots of different sizes move the next payload around the ring: always aligned.
            producer.send(0, &vec![0; 64 * shift as usize + 1]).unwrap();
            producer.send_pod(2, &Line([shift; 8])).unwrap();
            drop(consumer.try_recv().unwrap().unwrap());
            let message = consumer.try_recv().unwrap().unwrap();
            assert_eq!(message.as_pod::<Line>().unwrap().0, [shift; 8]);
        }
    }

    #[test]
    fn a_typed_slot_shorter_than_the_type_is_refused() {
        let (mut producer, _consumer) = Bus::in_memory(4096).unwrap().split();
        let mut slot = producer.reserve(4).unwrap();
        assert!(matches!(
            slot.pod_mut::<u64>(),
            Err(Error::PayloadLayout {
                len: 4,
                size: 8,
                ..
            })
        ));
    }
}

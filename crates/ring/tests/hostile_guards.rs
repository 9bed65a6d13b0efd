//! `Message::recv_in` and `WriteSlot::reserve_in` take any guard that dereferences to a
//! consumer or producer. Safe code can write a guard whose `Deref` returns another end the
//! second time; the slot must still be read and written only in the ring it was taken from,
//! never out of another ring's bounds (before the fix, a slot checked in an 8 MiB ring was
//! read through a 4 KiB one).

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use tachyon_ring::{Bus, Consumer, Error, Message, Producer, WriteSlot};

/// Dereferences to `first` once, then to `then` for ever after.
struct Fickle<'a, T> {
    first: &'a mut T,
    then: &'a mut T,
    derefs: Cell<u32>,
}

impl<'a, T> Fickle<'a, T> {
    fn new(first: &'a mut T, then: &'a mut T) -> Self {
        Fickle {
            first,
            then,
            derefs: Cell::new(0),
        }
    }
}

impl<T> Deref for Fickle<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        let n = self.derefs.get();
        self.derefs.set(n + 1);
        if n == 0 { self.first } else { self.then }
    }
}

impl<T> DerefMut for Fickle<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        let n = self.derefs.get();
        self.derefs.set(n + 1);
        if n == 0 { self.first } else { self.then }
    }
}

/// A large ring whose next slot lies near its end, and a small one with a message at 0.
fn large_and_small() -> ((Producer, Consumer), (Producer, Consumer)) {
    let (mut large_producer, mut large_consumer) = Bus::in_memory(8 << 20).unwrap().split();
    // Move the large ring's cursors to its last 64 KiB.
    let filler = vec![0u8; 64 << 10];
    for _ in 0..(8 << 20) / (64 << 10) - 1 {
        large_producer.send(1, &filler[..(64 << 10) - 64]).unwrap();
        drop(large_consumer.try_recv().unwrap().unwrap());
    }
    large_consumer.flush();
    let small = Bus::in_memory(4096).unwrap().split();
    ((large_producer, large_consumer), small)
}

#[test]
fn a_message_reads_the_ring_its_slot_came_from_whatever_the_guard_says_later() {
    let ((mut large_producer, mut large_consumer), (mut small_producer, mut small_consumer)) =
        large_and_small();
    large_producer.send(7, b"from the large ring").unwrap();
    small_producer.send(9, b"small ring bytes!!!").unwrap();
    {
        let guard = Fickle::new(&mut large_consumer, &mut small_consumer);
        let message = Message::recv_in(guard).unwrap();
        assert_eq!(message.type_id(), 7);
        assert_eq!(message.data(), b"from the large ring");
        assert_eq!(message.to_vec(), b"from the large ring");
        let mut copy = [0u8; 19];
        assert_eq!(message.copy_to(&mut copy), Some(19));
        assert_eq!(&copy, b"from the large ring");
        // Dropped through a guard that now reaches the small consumer: not released there.
    }
    let untouched = small_consumer.try_recv().unwrap().unwrap();
    assert_eq!(
        untouched.data(),
        b"small ring bytes!!!",
        "the small ring's message is intact"
    );
    drop(untouched);
    // The large ring's slot was not released into the other consumer, so it is still next.
    assert_eq!(
        large_consumer.try_recv().unwrap().unwrap().data(),
        b"from the large ring"
    );
}

#[test]
fn a_slot_writes_the_ring_it_was_placed_in_and_refuses_a_commit_into_another() {
    let ((mut large_producer, mut large_consumer), (mut small_producer, mut small_consumer)) =
        large_and_small();
    {
        let guard = Fickle::new(&mut large_producer, &mut small_producer);
        let mut slot = WriteSlot::reserve_in(guard, 32).unwrap();
        slot[..5].copy_from_slice(b"hello");
        assert_eq!(&slot[..5], b"hello");
        let refused = slot.commit(5, 3);
        assert!(matches!(refused, Err(Error::GuardChanged)), "{refused:?}");
        assert!(!Error::GuardChanged.is_fatal());
        assert!(Error::GuardChanged.to_string().contains("another producer"));
    }
    assert!(
        small_consumer.try_recv().unwrap().is_none(),
        "nothing reached the small ring"
    );
    assert!(
        large_consumer.try_recv().unwrap().is_none(),
        "nor the large one"
    );
    // Both producers still work.
    small_producer.send(1, b"s").unwrap();
    large_producer.send(1, b"l").unwrap();
    assert_eq!(small_consumer.try_recv().unwrap().unwrap().data(), b"s");
    assert_eq!(large_consumer.try_recv().unwrap().unwrap().data(), b"l");
}

#[test]
fn an_honest_guard_still_commits_and_releases() {
    let (producer, consumer) = Bus::in_memory(4096).unwrap().split();
    let (producer, consumer) = (
        std::sync::Mutex::new(producer),
        std::sync::Mutex::new(consumer),
    );
    for round in 0..100u8 {
        let mut slot = WriteSlot::reserve_in(producer.lock().unwrap(), 1).unwrap();
        slot[0] = round;
        slot.commit(1, 1).unwrap();
        let message = Message::recv_in(consumer.lock().unwrap()).unwrap();
        assert_eq!(message.data(), [round]);
    }
}

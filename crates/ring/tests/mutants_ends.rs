//! The ends' documented behaviour at its edges, in one process: where a mutation test
//! (`cargo mutants`, `docs/reliability.md`) found a claim no other test would notice breaking.
//! Every wait is bounded, and every assertion is on an outcome, never on how long it took.

use std::time::Duration;

use tachyon_ring::{Bus, Consumer, Error, Producer};

/// 64 slots of 64 bytes: an empty message takes exactly one.
const SLOTS: usize = 64;

fn pair() -> (Producer, Consumer) {
    Bus::in_memory(SLOTS * 64).unwrap().split()
}

/// Receives (and releases) `n` published messages without waiting.
fn take(consumer: &mut Consumer, n: usize) {
    for i in 0..n {
        assert!(
            consumer.try_recv().unwrap().is_some(),
            "message {i} of {n} was published"
        );
    }
}

#[test]
fn commits_are_published_every_32_and_not_before() {
    let (mut producer, mut consumer) = pair();
    for sent in 1..=31 {
        producer.send_unflushed(1, &[]).unwrap();
        assert_eq!(producer.unpublished(), sent);
    }
    assert!(
        consumer.try_recv().unwrap().is_none(),
        "31 commits are not published yet"
    );
    producer.send_unflushed(1, &[]).unwrap();
    assert_eq!(
        producer.unpublished(),
        0,
        "the 32nd commit published the batch"
    );
    take(&mut consumer, 32);
    assert!(consumer.try_recv().unwrap().is_none());
    // A flush with nothing committed publishes nothing new, and leaves the count at 0.
    producer.flush();
    assert_eq!(producer.unpublished(), 0);
    assert!(consumer.try_recv().unwrap().is_none());
    assert_eq!(consumer.received(), 32);
}

#[test]
fn the_consumer_returns_space_every_32_messages_while_the_ring_is_not_empty() {
    let (mut producer, mut consumer) = pair();
    for _ in 0..SLOTS {
        producer.send(1, &[]).unwrap();
    }
    assert!(matches!(producer.send(1, &[]), Err(Error::Full { .. })));
    // 31 released of 64: the ring is not empty, so the tail stays unpublished.
    take(&mut consumer, 31);
    assert!(
        matches!(producer.send(1, &[]), Err(Error::Full { .. })),
        "31 releases do not publish the tail"
    );
    // The 32nd release publishes it: 32 slots are free again, and no more.
    take(&mut consumer, 1);
    for i in 0..32 {
        producer
            .send(1, &[])
            .unwrap_or_else(|e| panic!("send {i} after 32 releases: {e}"));
    }
    assert!(matches!(producer.send(1, &[]), Err(Error::Full { .. })));
    // An explicit flush returns what was released since.
    take(&mut consumer, 3);
    assert!(matches!(producer.send(1, &[]), Err(Error::Full { .. })));
    consumer.flush();
    for _ in 0..3 {
        producer.send(1, &[]).unwrap();
    }
}

#[test]
fn a_ring_exactly_full_to_its_end_needs_no_skip() {
    // Four 64-byte slots fill a 256-byte ring to the byte; the last one fits at the end.
    let (mut producer, mut consumer) = Bus::in_memory(256).unwrap().split();
    for i in 0..4u8 {
        producer.send(u32::from(i), &[]).unwrap();
    }
    producer.flush();
    for i in 0..4u8 {
        assert_eq!(
            consumer.try_recv().unwrap().unwrap().type_id(),
            u32::from(i)
        );
    }
}

#[test]
fn a_zero_timeout_on_a_full_ring_fails_at_once_with_full() {
    let (mut producer, _consumer) = pair();
    for _ in 0..SLOTS {
        producer.send(1, &[]).unwrap();
    }
    assert!(matches!(
        producer.send_timeout(1, &[], Duration::ZERO),
        Err(Error::Full { .. })
    ));
    assert!(matches!(
        producer.reserve_timeout(0, Duration::ZERO),
        Err(Error::Full { .. })
    ));
    // A nonzero timeout waits, then says so with the timeout it was given.
    let timeout = Duration::from_millis(20);
    match producer.send_timeout(1, &[], timeout) {
        Err(Error::Timeout(reported)) => assert_eq!(reported, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn a_waiting_send_gets_the_space_the_consumer_frees() {
    let (mut producer, mut consumer) = pair();
    for _ in 0..SLOTS {
        producer.send(1, &[]).unwrap();
    }
    let freer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        // Empties the ring: finding it empty publishes the tail.
        while consumer.try_recv().unwrap().is_some() {}
        consumer
    });
    producer
        .send_timeout(9, b"late", Duration::from_secs(30))
        .expect("space freed while waiting");
    producer.flush();
    let mut consumer = freer.join().unwrap();
    let message = consumer
        .recv_timeout(Duration::from_secs(30))
        .expect("the message sent after waiting");
    assert_eq!((message.type_id(), message.data()), (9, &b"late"[..]));
}

#[test]
fn an_empty_ring_times_out_with_the_timeout_it_was_given() {
    let (_producer, mut consumer) = pair();
    let timeout = Duration::from_millis(20);
    match consumer.recv_timeout(timeout) {
        Err(Error::Timeout(reported)) => assert_eq!(reported, timeout),
        other => panic!("expected a timeout, got {:?}", other.map(|m| m.len())),
    }
    assert!(!consumer.wait_ready(timeout).unwrap(), "nothing is ready");
    assert_eq!(consumer.received(), 0);
}

#[test]
fn wait_ready_says_ready_without_taking_the_message() {
    let (mut producer, mut consumer) = pair();
    producer.send(3, b"abc").unwrap();
    producer.flush();
    assert!(consumer.wait_ready(Duration::from_secs(30)).unwrap());
    assert!(
        consumer.wait_ready(Duration::from_secs(30)).unwrap(),
        "still there"
    );
    assert_eq!(consumer.received(), 0);
    assert_eq!(consumer.try_recv().unwrap().unwrap().data(), b"abc");
    assert_eq!(consumer.received(), 1);
}

#[test]
fn drain_hands_at_most_max_and_leaves_the_rest() {
    let (mut producer, mut consumer) = pair();
    for i in 0..5u8 {
        producer.send(1, &[i]).unwrap();
    }
    producer.flush();
    let mut seen = Vec::new();
    assert_eq!(consumer.drain(2, |m| seen.push(m.data()[0])).unwrap(), 2);
    assert_eq!(consumer.drain(0, |m| seen.push(m.data()[0])).unwrap(), 0);
    assert_eq!(seen, [0, 1]);
    assert_eq!(consumer.drain(10, |m| seen.push(m.data()[0])).unwrap(), 3);
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert_eq!(consumer.received(), 5);
}

#[test]
fn the_largest_payload_fits_and_one_byte_more_does_not() {
    for capacity in [256, 4096] {
        let (mut producer, mut consumer) = Bus::in_memory(capacity).unwrap().split();
        assert_eq!(producer.capacity(), capacity);
        assert_eq!(consumer.capacity(), capacity);
        let largest = producer.max_payload();
        assert!(largest > 0 && largest < capacity, "{largest} of {capacity}");
        assert!(producer.reserve(largest + 1).is_err(), "one byte more");
        let payload = vec![0xa5; largest];
        producer.send(2, &payload).unwrap();
        producer.flush();
        assert_eq!(consumer.try_recv().unwrap().unwrap().data(), &payload[..]);
    }
}

#[test]
fn a_commit_longer_than_the_reservation_is_refused_and_rolled_back() {
    let (mut producer, mut consumer) = pair();
    let slot = producer.reserve(4).unwrap();
    assert_eq!(slot.len(), 4);
    assert!(matches!(
        slot.commit(5, 1),
        Err(Error::CommitTooLong {
            len: 5,
            reserved: 4
        })
    ));
    let mut slot = producer.reserve(4).unwrap();
    slot[..4].copy_from_slice(b"four");
    slot.commit(4, 2).unwrap();
    producer.flush();
    let message = consumer.try_recv().unwrap().unwrap();
    assert_eq!((message.type_id(), message.data()), (2, &b"four"[..]));
    drop(message);
    assert!(
        consumer.try_recv().unwrap().is_none(),
        "only the committed one"
    );
}

#[test]
fn no_wake_is_counted_when_nobody_slept() {
    let (mut producer, mut consumer) = pair();
    for _ in 0..SLOTS {
        producer.send(1, &[]).unwrap();
    }
    producer.flush();
    take(&mut consumer, SLOTS);
    assert_eq!(producer.wakes(), 0);
    assert_eq!(consumer.sleep_stats(), (0, 0));
    assert_eq!(consumer.missed_wakes(), 0);
}

//! Claims of this module that a mutation test (`cargo mutants`, `docs/reliability.md`)
//! showed no other test would notice breaking. Every wait is bounded.

use super::*;
use crate::ring::producer::Producer;
use crate::sys::peer::mutant_kills::exited_peer;

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
fn the_spin_threshold_set_later_decides_whether_a_wait_sleeps() {
    // Set high: 10^9 units of 37 ns is a 37 s spin, so a 20 ms wait never sleeps.
    let (_producer, mut consumer) = pair_with(None, 0, false);
    consumer.set_spin_threshold(1_000_000_000);
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(20)),
        Err(Error::Timeout(_))
    ));
    assert_eq!(
        consumer.sleep_stats().0,
        0,
        "a 37 s spin window never sleeps in 20 ms"
    );
    // Set back to 0: the next wait sleeps at once.
    consumer.set_spin_threshold(0);
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(20)),
        Err(Error::Timeout(_))
    ));
    assert!(
        consumer.sleep_stats().0 > 0,
        "no spin window: the wait sleeps"
    );
}

#[test]
fn a_message_knows_whether_it_is_empty() {
    let (mut producer, mut consumer) = pair_with(None, 0, false);
    producer.send(1, b"").unwrap();
    producer.send(2, b"x").unwrap();
    let empty = consumer.try_recv().unwrap().unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.data(), b"");
    drop(empty);
    let one = consumer.try_recv().unwrap().unwrap();
    assert!(!one.is_empty());
}

#[test]
fn the_default_spin_window_is_370_microseconds() {
    assert_eq!(
        spin_window(DEFAULT_SPIN_THRESHOLD),
        Duration::from_micros(370)
    );
    assert_eq!(spin_window(1), Duration::from_nanos(SPIN_POLL_NANOS));
    assert_eq!(spin_window(0), Duration::ZERO);
}

#[test]
fn a_spinning_consumer_sees_a_message_published_while_it_spins() {
    // Pure spin: only the spin's polls can see the message (no sleep path behind them).
    let (mut producer, mut consumer) = pair_with(None, 0, true);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        producer.send(1, b"seen").unwrap();
        producer
    });
    let message = consumer.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(message.data(), b"seen");
    drop(message);
    drop(sender.join().unwrap());
}

#[test]
fn a_small_spin_threshold_ends_the_spin_after_its_window() {
    // 1,000 units: a 37 µs window, looked at every 1,000 polls; a 200 ms wait sleeps.
    let (_producer, mut consumer) = pair_with(None, 1_000, false);
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(200)),
        Err(Error::Timeout(_))
    ));
    assert!(consumer.sleep_stats().0 > 0);
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
        consumer
            .sleep(Duration::from_millis(1), Nap::Bound)
            .unwrap(),
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
        region.header().consumer_features.load(Ordering::Acquire),
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
    assert_eq!(header.consumer_features.load(Ordering::Acquire), 0);
    assert_eq!(
        header.consumer_sleeping.load(Ordering::Acquire),
        sleeping::AWAKE
    );
}

/// A message taken through a guard holds its ring's mapping while it lives and lets go of it
/// when dropped (by hand, as the field is `ManuallyDrop`): no mapping leaks per message.
#[test]
fn a_guard_message_lets_go_of_the_mapping_it_held() {
    let (mut producer, consumer) = pair_with(None, 0, false);
    let shared = std::cell::RefCell::new(consumer);
    let region = Arc::clone(&shared.borrow().region);
    let held_before = Arc::strong_count(&region);
    for i in 0..3u8 {
        producer.send(1, &[i]).unwrap();
        producer.flush();
        let message = Message::recv_in(shared.borrow_mut()).unwrap();
        assert_eq!(message.data(), [i]);
        assert_eq!(
            Arc::strong_count(&region),
            held_before + 1,
            "the message holds it"
        );
        drop(message);
        assert_eq!(
            Arc::strong_count(&region),
            held_before,
            "message {i} kept the mapping"
        );
    }
}

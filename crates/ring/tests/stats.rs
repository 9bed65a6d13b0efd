//! Each end's counters through the public API: messages, bytes, depth, fill and full-ring
//! events.

use std::time::Duration;

use tachyon_ring::{Bus, Error};

#[test]
fn both_ends_count_messages_bytes_depth_and_full_events() {
    let (mut producer, mut consumer) = Bus::in_memory(1024).unwrap().split();
    producer.send(1, &[7; 100]).unwrap();
    producer.send_unflushed(1, &[7; 10]).unwrap();
    let stats = producer.stats();
    assert_eq!(
        (stats.committed, stats.committed_bytes, stats.published),
        (2, 110, 1)
    );
    assert_eq!((stats.depth_bytes, stats.capacity), (192 + 128, 1024));
    assert_eq!(
        consumer.stats().depth_bytes,
        192,
        "only the published message"
    );
    producer.flush();

    // Fill the ring: one full event, however many times the send retries.
    while producer.send(1, &[7; 100]).is_ok() {}
    assert!(matches!(
        producer.send_timeout(1, &[7; 100], Duration::from_millis(20)),
        Err(Error::Timeout(_))
    ));
    assert_eq!(producer.stats().full_events, 1);
    // 192 + 128, then three more 192-byte slots: 128 bytes left, too few for a fourth.
    assert_eq!(producer.stats().fill(), 896.0 / 1024.0);

    let mut received_bytes = 0;
    while let Some(message) = consumer.try_recv().unwrap() {
        received_bytes += message.len() as u64;
    }
    let stats = consumer.stats();
    assert_eq!(stats.received, producer.stats().committed);
    assert_eq!(stats.received_bytes, received_bytes);
    assert_eq!((stats.depth_bytes, stats.fill()), (0, 0.0));
    producer.send(1, &[]).unwrap();
    producer.send(1, &[]).unwrap();
    let _ = producer.send(1, &[]);
    assert_eq!(
        producer.stats().full_events,
        1,
        "space came back: no new event"
    );
}

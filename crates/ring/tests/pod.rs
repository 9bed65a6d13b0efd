//! Typed messages through the public API: packed values by copy, in-place views up to the
//! payload's 64-byte alignment, and `PayloadLayout` for a payload or slot of the wrong size.

use tachyon_ring::{Bus, Error};

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

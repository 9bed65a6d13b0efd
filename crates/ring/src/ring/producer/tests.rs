use super::*;

fn producer_on(capacity: usize) -> (Producer, Arc<Region>) {
    let region = Arc::new(Region::heap(capacity).unwrap());
    (Producer::new(Arc::clone(&region), None), region)
}

#[test]
fn a_tail_past_our_head_or_going_backwards_is_corrupt() {
    for bogus_tail in [u64::MAX, 64 * 1000] {
        let (mut producer, region) = producer_on(256);
        for _ in 0..4 {
            producer.send(1, &[]).unwrap();
        }
        region.header().tail.store(bogus_tail, Ordering::Release);
        let err = producer.send(1, &[]).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert_eq!(
            region.header().state.load(Ordering::Acquire),
            crate::wire::layout::state::FATAL_ERROR
        );
    }
    let (mut producer, region) = producer_on(256);
    for _ in 0..4 {
        producer.send(1, &[]).unwrap();
    }
    assert!(matches!(producer.send(1, &[]), Err(Error::Full { .. })));
    region.header().tail.store(128, Ordering::Release);
    producer.send(1, &[]).unwrap();
    producer.send(1, &[]).unwrap();
    region.header().tail.store(64, Ordering::Release);
    assert!(
        matches!(producer.send(1, &[]), Err(Error::Corrupt(_))),
        "tail went backwards"
    );
}

fn published_head(region: &Region) -> u64 {
    region.header().head.load(Ordering::Acquire)
}

#[test]
fn send_and_commit_publish_at_once() {
    let (mut producer, region) = producer_on(4096);
    producer.send(1, b"a").unwrap();
    assert_eq!(published_head(&region), 128);
    producer
        .send_timeout(1, b"b", Duration::from_secs(1))
        .unwrap();
    assert_eq!(published_head(&region), 256);
    let mut slot = producer.reserve(8).unwrap();
    slot[0] = 1;
    slot.commit(1, 1).unwrap();
    assert_eq!(published_head(&region), 384);
    assert_eq!(producer.unpublished(), 0);
}

#[test]
fn unflushed_calls_wait_for_flush_or_the_batch_of_32() {
    let (mut producer, region) = producer_on(1 << 16);
    producer.send_unflushed(1, b"a").unwrap();
    producer
        .send_timeout_unflushed(1, b"b", Duration::from_secs(1))
        .unwrap();
    producer.reserve(8).unwrap().commit_unflushed(1, 1).unwrap();
    assert_eq!(published_head(&region), 0, "nothing published before flush");
    assert_eq!(producer.unpublished(), 3);
    producer.flush();
    assert_eq!(published_head(&region), 3 * 128);
    for _ in 0..PUBLISH_BATCH - 1 {
        producer.send_unflushed(1, b"c").unwrap();
    }
    assert_eq!(
        published_head(&region),
        3 * 128,
        "31 commits stay unpublished"
    );
    producer.send_unflushed(1, b"c").unwrap();
    assert_eq!(
        published_head(&region),
        (3 + 32) * 128,
        "the 32nd publishes"
    );
}

#[test]
fn a_publishing_send_publishes_earlier_unflushed_commits_too() {
    let (mut producer, region) = producer_on(4096);
    producer.send_unflushed(1, b"a").unwrap();
    producer.send(1, b"b").unwrap();
    assert_eq!(published_head(&region), 256);
}

#[test]
fn a_dropped_slot_publishes_nothing() {
    let (mut producer, region) = producer_on(4096);
    {
        let mut slot = producer.reserve(8).unwrap();
        slot[0] = 1;
    }
    producer.flush();
    assert_eq!(published_head(&region), 0);
    assert_eq!(producer.head, 0, "the head returned to the slot's start");
}

#[test]
fn cursors_found_at_start_are_checked() {
    let region = Arc::new(Region::heap(256).unwrap());
    region.header().head.store(100, Ordering::Release);
    let mut producer = Producer::new(Arc::clone(&region), None);
    assert!(matches!(producer.send(1, b"x"), Err(Error::Corrupt(_))));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a 2 s race; under Miri the scripted peer of the fuzzing tests covers it"
)]
fn start_cursors_a_peer_flips_are_checked_as_loaded() {
    // Valid pairs, one misaligned near the ring's end: a producer that takes head and tail
    // from one load and checks another could start with tail > head (free space
    // underflows) or at ring offset 252 (header writes past the ring).
    let region = Arc::new(Region::heap(256).unwrap());
    let _peer = crate::ring::shm::CursorFlipper::start(&region, &[(0, 0), (64, 64), (252, 252)]);
    let started = Instant::now();
    loop {
        let mut producer = Producer::new(Arc::clone(&region), None);
        for _ in 0..4 {
            match producer.send(1, &[7; 8]) {
                Ok(()) | Err(Error::Full { .. }) => {}
                Err(Error::Corrupt(_)) => break,
                Err(other) => panic!("{other}"),
            }
        }
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
}

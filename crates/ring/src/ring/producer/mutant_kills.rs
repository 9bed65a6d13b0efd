//! Claims of this module that a mutation test (`cargo mutants`, `docs/reliability.md`)
//! showed no other test would notice breaking. Every wait is bounded.

use super::*;
use crate::sys::peer::mutant_kills::exited_peer;

fn full_producer(peer: Option<PeerWatch>) -> (Producer, Arc<Region>) {
    let region = Arc::new(Region::heap(256).unwrap());
    let mut producer = Producer::new(Arc::clone(&region), peer.map(Arc::new));
    for _ in 0..4 {
        producer.send(1, &[]).unwrap();
    }
    assert!(matches!(producer.send(1, &[]), Err(Error::Full { .. })));
    (producer, region)
}

#[test]
fn a_flush_with_nothing_pending_leaves_a_sleeping_consumer_alone() {
    // An idle producer that flushes often (the seed's does every 64 ticks) must not wake a
    // sleeping consumer each time, nor republish.
    let region = Arc::new(Region::heap(4096).unwrap());
    let mut producer = Producer::new(Arc::clone(&region), None);
    producer.send(1, b"x").unwrap();
    let word = &region.header().consumer_sleeping;
    word.store(sleeping::SLEEPING, Ordering::Release);
    producer.flush();
    assert_eq!(word.load(Ordering::Acquire), sleeping::SLEEPING);
    assert_eq!(producer.wakes(), 0);
}

#[test]
fn a_producer_waiting_for_space_beside_a_live_consumer_waits_its_whole_timeout() {
    // The peer is this process (alive): past several 50 ms peer checks, the wait ends
    // with its own timeout, never with PeerGone.
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let live = PeerWatch::from_socket(&a).unwrap();
    let (mut producer, _region) = full_producer(Some(live));
    let timeout = Duration::from_millis(180);
    match producer.send_timeout(1, &[], timeout) {
        Err(Error::Timeout(t)) => assert_eq!(t, timeout),
        other => panic!("expected the timeout, got {other:?}"),
    }
}

#[test]
fn a_reserved_slot_reads_back_what_was_written_into_it() {
    let region = Arc::new(Region::heap(4096).unwrap());
    let mut producer = Producer::new(Arc::clone(&region), None);
    for round in 0..3u8 {
        let mut slot = producer.reserve(8).unwrap();
        slot.copy_from_slice(&[round; 8]);
        let read_back: &[u8] = &slot;
        assert_eq!(read_back, [round; 8]);
        slot.commit(8, 1).unwrap();
    }
}

#[test]
fn dropping_a_producer_publishes_its_unflushed_commits() {
    let region = Arc::new(Region::heap(4096).unwrap());
    let mut producer = Producer::new(Arc::clone(&region), None);
    let mut consumer = crate::ring::consumer::Consumer::new(Arc::clone(&region), 0, false, None);
    producer.send_unflushed(1, b"last words").unwrap();
    assert!(consumer.try_recv().unwrap().is_none(), "not published yet");
    drop(producer);
    assert_eq!(consumer.try_recv().unwrap().unwrap().data(), b"last words");
}

#[test]
fn a_producer_waiting_for_space_ends_when_the_consumer_has_exited() {
    let (mut producer, _region) = full_producer(Some(exited_peer()));
    match producer.send_timeout(1, &[], Duration::from_secs(30)) {
        Err(Error::PeerGone { messages, .. }) => assert_eq!(messages, 4),
        other => panic!("expected PeerGone, got {other:?}"),
    }
}

#[test]
fn a_producer_waiting_for_space_ends_when_the_ring_is_marked_fatal() {
    let (mut producer, region) = full_producer(None);
    region.mark_fatal();
    let outcome = producer.send_timeout(1, &[], Duration::from_secs(30));
    assert!(
        matches!(&outcome, Err(Error::Corrupt(why)) if why.contains("state 4")),
        "{outcome:?}"
    );
}

#[test]
fn a_publish_onto_a_sleeping_word_with_nobody_blocked_clears_it_and_counts_no_wake() {
    let region = Arc::new(Region::heap(256).unwrap());
    let mut producer = Producer::new(Arc::clone(&region), None);
    let word = &region.header().consumer_sleeping;
    word.store(sleeping::SLEEPING, Ordering::Release);
    producer.send(1, &[]).unwrap();
    producer.flush();
    assert_eq!(word.load(Ordering::Acquire), sleeping::AWAKE);
    assert_eq!(producer.wakes(), 0, "nobody was in FUTEX_WAIT");
    // A pure-spin consumer's word is left alone.
    word.store(sleeping::PURE_SPIN, Ordering::Release);
    producer.send(1, &[]).unwrap();
    producer.flush();
    assert_eq!(word.load(Ordering::Acquire), sleeping::PURE_SPIN);
    assert_eq!(region.header().head.load(Ordering::Acquire), 128);
}

#[test]
fn a_slot_that_needs_more_than_the_ring_with_its_skip_waits_for_a_consumer_that_follows_bare_skips()
{
    // Head at 64 of a 256-byte ring: a 256-byte slot needs a 192-byte skip first.
    let region = Arc::new(Region::heap(256).unwrap());
    let mut producer = Producer::new(Arc::clone(&region), None);
    producer.send(1, &[]).unwrap();
    producer.flush();
    region.header().tail.store(64, Ordering::Release);
    let largest = producer.max_payload();
    assert!(matches!(
        producer.send(2, &vec![0; largest]),
        Err(Error::CannotPlace {
            needed: 448,
            capacity: 256,
            ..
        })
    ));
    // A consumer that says it follows bare skips gets the skip alone, then the slot.
    region
        .header()
        .consumer_features
        .store(layout::CONSUMER_FEATURES, Ordering::Release);
    assert!(matches!(
        producer.send(2, &vec![0; largest]),
        Err(Error::Full { .. })
    ));
    assert_eq!(
        region.header().head.load(Ordering::Acquire),
        256,
        "the bare skip is published"
    );
    region.header().tail.store(256, Ordering::Release);
    producer.send(2, &vec![0; largest]).unwrap();
    producer.flush();
    assert_eq!(region.header().head.load(Ordering::Acquire), 512);
}

//! The futex protocol's interleavings, driven step by step: each step is one call, so the
//! order is the test's, not the scheduler's.

use super::*;
use crate::ring::producer::Producer;

fn pair() -> (Producer, Consumer, Arc<Region>) {
    let region = Arc::new(Region::heap(1 << 12).unwrap());
    let producer = Producer::new(Arc::clone(&region), None);
    let consumer = Consumer::new(Arc::clone(&region), 0, false, None);
    (producer, consumer, region)
}

/// Consumer announces sleep and finds the ring empty; our producer publishes and wakes
/// while nobody waits yet; the consumer then blocks. The producer swapped the word back
/// to AWAKE, so the block returns at once (value changed) instead of sleeping its nap.
#[test]
fn our_producers_wake_cannot_be_lost_between_the_look_and_the_block() {
    let (mut producer, mut consumer, region) = pair();
    assert!(consumer.announce_sleep(), "step 1: the ring is empty");
    producer.send(5, b"tick").unwrap();
    producer.flush(); // step 2: publish + wake, before the consumer blocks
    assert_eq!(
        region.header().consumer_sleeping.load(Ordering::Relaxed),
        sleeping::AWAKE,
        "the producer cleared the sleeping word before waking"
    );
    // Step 3: a nap far longer than the test; a lost wake would sleep it all.
    let woke = consumer.sleep(Duration::from_secs(30), Nap::Bound).unwrap();
    assert_eq!(woke, Woke::Changed, "the block saw the word changed");
    consumer.end_sleep();
    assert_eq!(consumer.missed_wakes(), 0);
    let message = consumer.try_recv().unwrap().expect("delivered at once");
    assert_eq!(message.data(), b"tick");
}

/// The same interleaving with a producer that keeps upstream's window (wakes without
/// touching the word): the wake is lost, and what bounds the stall is the first nap,
/// which is short. The missed wake is counted.
#[test]
fn a_producer_that_wakes_too_early_costs_only_the_first_short_nap() {
    let (mut producer, mut consumer, _region) = pair();
    assert!(consumer.announce_sleep(), "step 1: the ring is empty");
    producer.send_unflushed(5, b"tick").unwrap(); // committed, not yet published
    producer.publish_as_upstream(); // step 2: publish + wake nobody, word left SLEEPING
    let nap = Naps::new().next(None);
    assert!(nap <= Duration::from_millis(5), "first nap {nap:?}");
    let woke = consumer.sleep(nap, Nap::Bound).unwrap(); // step 3: the wake is gone; the nap runs out
    assert_eq!(woke, Woke::TimedOut);
    consumer.end_sleep();
    assert_eq!(consumer.missed_wakes(), 1, "the lost wake is counted");
    let message = consumer
        .try_recv()
        .unwrap()
        .expect("delivered after the nap");
    assert_eq!(message.data(), b"tick");
}

/// The other order: the producer publishes before the consumer's look. The look sees the
/// message and the consumer never blocks.
#[test]
fn a_message_published_before_the_look_is_seen_by_the_look() {
    let (mut producer, mut consumer, _region) = pair();
    consumer
        .region
        .header()
        .consumer_sleeping
        .store(sleeping::AWAKE, Ordering::Relaxed);
    producer.send(5, b"tick").unwrap();
    producer.flush();
    assert!(!consumer.announce_sleep(), "the look saw the head move");
    consumer.end_sleep();
    assert!(consumer.try_recv().unwrap().is_some());
}

/// A blocked consumer is woken by our producer (a real FUTEX_WAKE, counted).
#[test]
fn a_blocked_consumer_is_woken_by_the_publish() {
    let (mut producer, mut consumer, region) = pair();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let sleeper = std::thread::spawn(move || {
        tid_tx.send(nix::unistd::gettid()).unwrap();
        assert!(consumer.announce_sleep());
        let woke = consumer.sleep(Duration::from_secs(30), Nap::Bound).unwrap();
        consumer.end_sleep();
        (woke, consumer.sleep_stats())
    });
    // Publish only once the consumer is blocked inside its futex wait (announced, and its
    // thread asleep in the kernel: the only blocking call after the announcement), so the
    // wake must reach it and be counted on both sides.
    let tid = tid_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let give_up = Instant::now() + Duration::from_secs(30);
    while region.header().consumer_sleeping.load(Ordering::Relaxed) != sleeping::SLEEPING
        || !thread_is_blocked(tid)
    {
        assert!(
            Instant::now() < give_up,
            "the consumer never blocked in its sleep"
        );
        std::thread::yield_now();
    }
    producer.send(1, b"x").unwrap();
    producer.flush();
    let (woke, (sleeps, wakeups)) = sleeper.join().unwrap();
    assert_eq!(sleeps, 1);
    assert_eq!(producer.wakes(), 1, "the publish woke one sleeper");
    assert_eq!((woke, wakeups), (Woke::Woken(0), 1), "our wake reached it");
}

/// Whether thread `tid` of this process is blocked in the kernel (state S in its stat).
fn thread_is_blocked(tid: nix::unistd::Pid) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name.split_whitespace().next() == Some("S")
}

/// A cancel reaches a consumer blocked in its futex sleep, and every later receive.
#[test]
fn a_cancel_ends_a_blocked_receive_and_every_later_one() {
    for _ in 0..20 {
        let (_producer, mut consumer, _region) = pair();
        let token = CancelToken::new();
        consumer.set_cancel_token(Some(token.clone()));
        let receiver = std::thread::spawn(move || {
            let outcome = consumer.recv().map(|_| ());
            let again = consumer.recv_timeout(Duration::from_secs(30)).map(|_| ());
            (outcome, again)
        });
        std::thread::sleep(Duration::from_millis(3));
        token.cancel();
        let (outcome, again) = receiver.join().unwrap();
        assert!(matches!(outcome, Err(Error::Cancelled(RECEIVING))));
        assert!(matches!(again, Err(Error::Cancelled(_))));
    }
}

/// A ring the peer marked fatal ends a waiting receive within the peer-check interval.
#[test]
fn a_peer_marking_the_ring_fatal_ends_the_wait() {
    let (_producer, mut consumer, region) = pair();
    region.mark_fatal();
    let outcome = consumer.recv_timeout(Duration::from_secs(30));
    assert!(
        matches!(&outcome, Err(Error::Corrupt(why)) if why.contains("state 4")),
        "{outcome:?}"
    );
}

use crate::ring::shm::CursorFlipper;

#[test]
fn features_are_advertised_outside_the_heartbeat_upstreams_tools_read() {
    // tachyon-top shows consumer_heartbeat as a TSC stamp: a feature word there would read
    // as a heartbeat from the future (age 0, "just now"). It must stay 0, as upstream's.
    let region = Arc::new(Region::heap(256).unwrap());
    let consumer = Consumer::new(Arc::clone(&region), 0, false, None);
    let header = region.header();
    assert_eq!(header.consumer_heartbeat.load(Ordering::Acquire), 0);
    assert_eq!(
        header.consumer_features.load(Ordering::Acquire),
        CONSUMER_FEATURES
    );
    drop(consumer);
    assert_eq!(header.consumer_features.load(Ordering::Acquire), 0);
    assert_eq!(header.consumer_heartbeat.load(Ordering::Acquire), 0);
}

#[test]
fn an_spsc_message_has_correlation_id_0_whatever_its_header_bytes() {
    let region = Arc::new(Region::heap(256).unwrap());
    let stale = SlotHeader {
        size: 3,
        type_id: 1,
        reserved_size: 128,
        padding: 0,
        correlation_id: 0xdead_beef,
    };
    // SAFETY: the fresh region's ring holds 256 bytes; nobody else writes it.
    unsafe { std::ptr::write(region.ring() as *mut SlotHeader, stale) };
    region.header().head.store(128, Ordering::Release);
    let mut spsc = Consumer::new(Arc::clone(&region), 0, false, None);
    assert_eq!(spsc.try_recv().unwrap().unwrap().correlation_id(), 0);
    drop(spsc);
    region.header().tail.store(0, Ordering::Release);
    let mut rpc = Consumer::new(region, 0, false, None).reading_rpc();
    assert_eq!(
        rpc.try_recv().unwrap().unwrap().correlation_id(),
        0xdead_beef
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a 2 s race; under Miri the scripted peer of the fuzzing tests covers it"
)]
fn start_cursors_a_peer_flips_are_checked_as_loaded() {
    // A valid pair and a misaligned one: a consumer that takes its tail from one load and
    // checks another could start at ring offset 4 (a misaligned header read).
    let region = Arc::new(Region::heap(256).unwrap());
    let _peer = CursorFlipper::start(&region, &[(128, 0), (128, 4)]);
    let started = Instant::now();
    loop {
        let mut consumer = Consumer::new(Arc::clone(&region), 0, false, None);
        for _ in 0..4 {
            match consumer.try_recv() {
                Ok(_) => {}
                Err(Error::Corrupt(_)) => break,
                Err(other) => panic!("{other}"),
            }
        }
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
}

/// Writes `header` at ring offset `at` of `region`, as a hostile producer could.
fn put(region: &Region, at: usize, header: SlotHeader) {
    // SAFETY: tests only: `at` + 24 lies inside the ring, which nobody else writes now.
    unsafe { std::ptr::write_volatile(region.ring().add(at) as *mut SlotHeader, header) };
}

fn assert_fatal(region: &Region, outcome: Result<Option<usize>>, rule: &str) {
    match outcome {
        Err(Error::Corrupt(why)) => assert!(why.contains(rule), "{rule}: {why}"),
        other => panic!("{rule}: expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        region.header().state.load(Ordering::Acquire),
        state::FATAL_ERROR,
        "{rule}: the ring was not marked fatal (state 4)"
    );
}

/// A skip marker that claims more bytes than the producer published.
#[test]
fn a_skip_past_the_published_head_is_fatal() {
    let region = Arc::new(Region::heap(256).unwrap());
    let skip = SlotHeader {
        size: SKIP_MARKER,
        ..SlotHeader::default()
    };
    put(&region, 128, skip); // runs 128 bytes to the ring's end...
    region.header().tail.store(128, Ordering::Release);
    region.header().head.store(192, Ordering::Release); // ...but only 64 are published
    let mut consumer = Consumer::new(Arc::clone(&region), 0, false, None);
    let outcome = consumer.try_recv().map(|m| m.map(|m| m.len()));
    assert_fatal(&region, outcome, "past the published head");
}

/// A slot header of `reserved_size` bytes holding one payload byte of `type_id`.
fn one_byte_slot(reserved_size: u32, type_id: u32) -> SlotHeader {
    SlotHeader {
        size: 1,
        type_id,
        reserved_size,
        padding: 0,
        correlation_id: 0,
    }
}

/// A 256-byte ring whose first 128-byte slot was delivered (tail 128); then the producer
/// publishes `head`, and the consumer looks again.
fn look_after_the_head_moves_to(head: u64) -> (Arc<Region>, Result<Option<usize>>) {
    let region = Arc::new(Region::heap(256).unwrap());
    put(&region, 0, one_byte_slot(128, 7));
    region.header().head.store(128, Ordering::Release);
    let mut consumer = Consumer::new(Arc::clone(&region), 0, false, None);
    assert_eq!(consumer.try_recv().unwrap().map(|m| m.type_id()), Some(7));
    region.header().head.store(head, Ordering::Release);
    let outcome = consumer.try_recv().map(|m| m.map(|m| m.len()));
    (region, outcome)
}

/// A head that moves backwards after messages were delivered.
#[test]
fn a_head_moving_backwards_mid_stream_is_fatal() {
    let (region, outcome) = look_after_the_head_moves_to(64);
    assert_fatal(&region, outcome, "outside");
}

/// A head published more than a whole ring ahead of the tail (128 + 320).
#[test]
fn a_head_more_than_a_ring_ahead_is_fatal() {
    let (region, outcome) = look_after_the_head_moves_to(128 + 256 + 64);
    assert_fatal(&region, outcome, "outside");
}

/// A slot that claims more bytes than were published, met after the tail moved (the
/// published span is head - tail, not head).
#[test]
fn a_slot_past_the_published_head_is_fatal_mid_stream() {
    let region = Arc::new(Region::heap(1024).unwrap());
    put(&region, 0, one_byte_slot(128, 7));
    put(&region, 128, one_byte_slot(256, 8)); // 256 bytes, only 128 published after it
    region.header().head.store(256, Ordering::Release);
    let mut consumer = Consumer::new(Arc::clone(&region), 0, false, None);
    assert_eq!(consumer.try_recv().unwrap().map(|m| m.type_id()), Some(7));
    let outcome = consumer.try_recv().map(|m| m.map(|m| m.len()));
    assert_fatal(&region, outcome, "slot runs past the published head");
}

#[test]
fn a_pure_spin_consumer_slept_on_by_another_waiter_keeps_its_advertisement() {
    // A selector or the async reactor announces sleep on the ring (so producers wake it)
    // and ends it: the word goes back to PURE_SPIN, not AWAKE.
    let (_producer, mut consumer, region) = pair();
    consumer.set_pure_spin(true);
    let word = || region.header().consumer_sleeping.load(Ordering::Acquire);
    assert!(consumer.announce_sleep());
    assert_eq!(word(), sleeping::SLEEPING);
    consumer.end_sleep();
    assert_eq!(word(), sleeping::PURE_SPIN);
    consumer.set_pure_spin(false);
    assert!(consumer.announce_sleep());
    consumer.end_sleep();
    assert_eq!(word(), sleeping::AWAKE);
}

#[test]
fn pure_spin_switches_and_producers_see_it_in_the_futex_word() {
    let region = Arc::new(Region::heap(4096).unwrap());
    let mut consumer = Consumer::new(Arc::clone(&region), 10, false, None);
    let word = || region.header().consumer_sleeping.load(Ordering::Acquire);
    assert_eq!(word(), sleeping::AWAKE);
    consumer.set_pure_spin(true);
    assert_eq!(word(), sleeping::PURE_SPIN);
    consumer.set_pure_spin(false);
    assert_eq!(word(), sleeping::AWAKE);
}

/// Fills `consumer`'s pace with `n` waits of `waits_us` µs each, as if it had seen them.
fn seen_waits(consumer: &mut Consumer, waits_us: impl Fn(u64) -> u64, n: u64) {
    for i in 0..n {
        consumer
            .pace_mut()
            .arrived_after(Duration::from_micros(waits_us(i)));
    }
}

/// The consumer follows its pace's plan, counted: after a slow feed (waits of 5-50 ms) an
/// adaptive consumer's wait on an empty ring sleeps at once and spins not at all; after a
/// fast feed (10-60 µs) it spins at once; a fixed one spins whatever it saw.
#[test]
fn an_adaptive_consumer_sleeps_at_once_after_a_slow_feed_and_spins_after_a_fast_one() {
    let wait_once = |policy: SpinPolicy, waits_us: fn(u64) -> u64| {
        let (_producer, mut consumer, _region) = pair();
        consumer.set_spin_threshold(DEFAULT_SPIN_THRESHOLD);
        consumer.set_spin_policy(policy);
        seen_waits(&mut consumer, waits_us, 32);
        let timed_out = matches!(
            consumer.recv_timeout(Duration::from_millis(2)),
            Err(Error::Timeout(_))
        );
        assert!(timed_out, "nothing was sent");
        consumer.pace_stats()
    };
    let slow = wait_once(SpinPolicy::Adaptive, |i| 5_000 + i * 1_400);
    assert_eq!((slow.slept_at_once, slow.spun_at_once), (1, 0), "{slow:?}");
    assert_eq!(slow.spin_nanos, 0, "no spin after a slow feed: {slow:?}");

    let fast = wait_once(SpinPolicy::Adaptive, |i| 10 + i * 50 / 31);
    assert_eq!((fast.slept_at_once, fast.spun_at_once), (0, 1), "{fast:?}");
    assert!(fast.spin_nanos > 0, "{fast:?}");

    let fixed = wait_once(SpinPolicy::Fixed, |i| 5_000 + i * 1_400);
    assert_eq!(
        (fixed.slept_at_once, fixed.spun_at_once),
        (0, 1),
        "{fixed:?}"
    );
    assert!(fixed.spin_nanos > 0, "{fixed:?}");
}

/// A pure-spin consumer plans nothing and never sleeps, whatever its pace has seen: a wait on
/// an empty ring counts as spun at once and is timed at the spin's clock reads; a message
/// published while it spins is handed over, without a sleep, and a wait that caught it is
/// counted as a catch.
#[test]
fn a_pure_spin_wait_plans_nothing_never_sleeps_and_counts_its_catch() {
    let (mut producer, mut consumer, _region) = pair();
    consumer.set_pure_spin(true);
    // A slow feed: an adaptive plan would sleep at once.
    seen_waits(&mut consumer, |i| 5_000 + i * 1_400, 32);
    let timed_out = matches!(
        consumer.recv_timeout(Duration::from_millis(2)),
        Err(Error::Timeout(_))
    );
    assert!(timed_out, "nothing was sent");
    let spun = consumer.pace_stats();
    assert_eq!(
        (spun.spun_at_once, spun.slept_at_once, spun.napped_then_spun),
        (1, 0, 0),
        "{spun:?}"
    );
    assert_eq!(spun.caught_spinning, 0, "{spun:?}");
    assert!(
        spun.spin_nanos >= 1_000_000,
        "2 ms of spin, timed at its clock reads: {spun:?}"
    );

    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        producer.send(7, b"spun").unwrap();
        producer
    });
    assert_eq!(consumer.recv().unwrap().data(), b"spun");
    let _producer = sender.join().unwrap();
    let after = consumer.pace_stats();
    // The recv waited (spun at once, then caught) unless the sender was first.
    let waited = after.spun_at_once - spun.spun_at_once;
    assert_eq!(after.caught_spinning, waited, "{after:?}");
    assert_eq!(consumer.stats().sleeps, 0);
}

/// A planned nap before the spin is ended by our producer's wake like any sleep, and the
/// message it brings is not counted as caught by a spin.
#[test]
fn a_planned_nap_is_ended_by_the_producers_wake() {
    let (mut producer, mut consumer, region) = pair();
    consumer.set_spin_threshold(DEFAULT_SPIN_THRESHOLD);
    // The plan of a nap before a spin, long enough (45 ms) that the nap cannot run out before
    // the sender's step 2, followed as the pace's plans are.
    let plan = Plan {
        nap_before_spin: Duration::from_millis(45),
        spin: spin_window(DEFAULT_SPIN_THRESHOLD),
        first_nap: wait::FIRST_NAP,
    };
    let sender = std::thread::spawn(move || {
        // Step 1: the consumer announced its planned nap (the only sleep before the spin).
        while region.header().consumer_sleeping.load(Ordering::Acquire) != sleeping::SLEEPING {
            std::thread::yield_now();
        }
        // Step 2: publish and wake, whether or not it is inside the futex call yet.
        producer.send(3, b"early").unwrap();
        producer.flush();
        producer
    });
    let started = Instant::now();
    let mut bounds = WaitBounds {
        timeout: None,
        deadline: None,
        next_peer_check: started + PEER_CHECK_INTERVAL,
    };
    let (slot, _) = consumer
        .wait_as_planned(started, plan, &mut bounds)
        .unwrap();
    assert_eq!(consumer.message(slot).data(), b"early");
    let _producer = sender.join().unwrap();
    assert_eq!(consumer.last_wait(), WaitEnd::Woken);
    assert_eq!(consumer.pace_stats().caught_spinning, 0);
    // One sleep, ended by the wake (or, had the wake come before the futex call, by the
    // word it changed), never by running out.
    let stats = consumer.stats();
    assert_eq!(stats.sleeps, 1, "{stats:?}");
    assert_eq!(
        (stats.naps_run_out, stats.missed_wakes),
        (0, 0),
        "{stats:?}"
    );
}

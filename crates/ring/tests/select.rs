//! The selector in one process: fair order, sleeping on every ring at once, adds from other
//! threads, cancellation. (Across processes and against the real package: `tests/fan_in.rs`.)

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tachyon_ring::{Bus, CancelToken, Consumer, Error, Producer, Selected, Selector};

const LONG: Duration = Duration::from_secs(20);

fn rings(n: usize) -> (Vec<Producer>, Vec<Consumer>) {
    (0..n)
        .map(|_| Bus::in_memory(1 << 14).unwrap().split())
        .unzip()
}

fn next_key(selector: &mut Selector<usize>) -> usize {
    match selector.select_timeout(LONG).unwrap() {
        Selected::Message { key, .. } => *key,
        Selected::Ended { key, error } => panic!("ring {key} ended: {error}"),
    }
}

/// Three rings, each with plenty waiting: they are served one message each in turn, so a
/// busy ring never starves the others.
#[test]
fn rings_with_traffic_are_served_in_turn() {
    let (mut producers, consumers) = rings(3);
    let mut selector = Selector::new();
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    for producer in &mut producers {
        for i in 0..50u8 {
            producer.send(1, &[i]).unwrap();
        }
        producer.flush();
    }
    let order: Vec<usize> = (0..30).map(|_| next_key(&mut selector)).collect();
    let expected: Vec<usize> = (0..30).map(|i| i % 3).collect();
    assert_eq!(order, expected);
}

/// A ring that is empty costs the others nothing, and one that fills again rejoins the turn.
#[test]
fn messages_arrive_in_order_within_each_ring() {
    let (mut producers, consumers) = rings(4);
    let mut selector = Selector::new();
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    for (ring, producer) in producers.iter_mut().enumerate() {
        for i in 0..(ring as u32 * 10) {
            producer.send(1, &i.to_le_bytes()).unwrap();
        }
        producer.flush();
    }
    let mut next = [0u32; 4];
    for _ in 0..60 {
        match selector.select_timeout(LONG).unwrap() {
            Selected::Message { key, message } => {
                let value = u32::from_le_bytes(message.data().try_into().unwrap());
                assert_eq!(value, next[*key], "ring {key} out of order");
                next[*key] += 1;
            }
            Selected::Ended { key, error } => panic!("ring {key} ended: {error}"),
        }
    }
    assert_eq!(next, [0, 10, 20, 30]);
    assert!(matches!(
        selector.select_timeout(Duration::from_millis(20)),
        Err(Error::Timeout(_))
    ));
}

/// Asleep on five rings, the selector is woken by an ordinary publish on any one of them,
/// and counts the wake (a real FUTEX_WAKE, not a timeout: the naps are far longer).
#[test]
fn a_publish_on_any_ring_wakes_the_sleeping_selector() {
    for woken in 0..5 {
        let (mut producers, consumers) = rings(5);
        let selector = std::thread::spawn(move || {
            let mut selector = Selector::with_options(&Bus::options().spin_threshold(10));
            for (key, consumer) in consumers.into_iter().enumerate() {
                selector.add(key, consumer);
            }
            let key = next_key(&mut selector);
            (key, selector.sleep_stats())
        });
        // Usually asleep by now; if not, the publish finds it awake and no wake is counted
        // (checked below against the producer's own count of wakes that reached a sleeper).
        std::thread::sleep(Duration::from_millis(30));
        producers[woken].send(1, b"x").unwrap();
        producers[woken].flush();
        let (key, (sleeps, wakeups)) = selector.join().unwrap();
        assert_eq!(key, woken);
        assert!(sleeps >= 1, "the selector never slept");
        if producers[woken].wakes() == 1 {
            assert_eq!(wakeups, 1, "our wake reached it but was not counted");
        }
    }
}

/// A ring handed over from another thread wakes a selector that sleeps on nothing else.
#[test]
fn a_ring_added_through_a_handle_joins_a_sleeping_selector() {
    let mut selector: Selector<&str> = Selector::new();
    let handle = selector.handle();
    let adder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        let (mut producer, consumer) = Bus::in_memory(4096).unwrap().split();
        producer.send(9, b"late").unwrap();
        producer.flush();
        handle.add("late", consumer);
        producer
    });
    match selector.select_timeout(LONG).unwrap() {
        Selected::Message { key, message } => {
            assert_eq!((*key, message.data()), ("late", &b"late"[..]))
        }
        Selected::Ended { key, error } => panic!("{key} ended: {error}"),
    }
    drop(adder.join().unwrap());
    assert_eq!(selector.keys().copied().collect::<Vec<_>>(), ["late"]);
    assert!(selector.remove(&"late").is_some());
    assert!(selector.is_empty());
}

/// A cancel ends a selector asleep on many rings, in every round (racing its start too).
#[test]
fn a_cancel_ends_a_sleeping_select() {
    for round in 0..25u64 {
        let (_producers, consumers) = rings(3);
        let token = CancelToken::new();
        let worker = {
            let token = token.clone();
            std::thread::spawn(move || {
                let mut selector = Selector::with_options(&Bus::options().cancel_token(token));
                for (key, consumer) in consumers.into_iter().enumerate() {
                    selector.add(key, consumer);
                }
                selector.select_timeout(LONG).map(|_| ())
            })
        };
        std::thread::sleep(Duration::from_micros(round % 5 * 700));
        token.cancel();
        assert!(matches!(worker.join().unwrap(), Err(Error::Cancelled(_))));
    }
}

/// A cancel ends a select even when every call finds a message ready (a stream that never
/// runs dry never reaches the waits that watch the token): the token is looked at on every
/// call, and every later call fails too.
#[test]
fn a_cancel_ends_a_select_with_messages_ready() {
    let (mut producers, consumers) = rings(2);
    let token = CancelToken::new();
    let mut selector = Selector::with_options(&Bus::options().cancel_token(token.clone()));
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    for producer in &mut producers {
        for i in 0..10u8 {
            producer.send(1, &[i]).unwrap();
        }
    }
    assert_eq!(next_key(&mut selector), 0);
    token.cancel();
    for _ in 0..3 {
        assert!(matches!(
            selector.select_timeout(LONG),
            Err(Error::Cancelled(_))
        ));
    }
}

/// Thread `tid`'s state letter (`S`: blocked in the kernel) and how many times it has blocked
/// so far (`voluntary_ctxt_switches`), from one read of its status file.
fn thread_blocks(tid: nix::unistd::Pid) -> (char, u64) {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    let state = field("State:").chars().next().unwrap();
    let blocks = field("voluntary_ctxt_switches:").parse().unwrap();
    (state, blocks)
}

/// The cancel token itself ends a selector's sleep on its rings, rather than the end of a nap
/// followed by a look at the token (which also returns `Cancelled`, up to 50 ms late, and is
/// what a sleep that does not watch the token would do).
///
/// The selector idles 300 ms, well into its 50 ms naps; the test then waits until the thread
/// blocks once more (its count of voluntary switches grows, state `S`: a nap just began), so
/// the cancel lands early in a nap and cannot race the nap's end. The selector's counters,
/// read after the select returned, must show that sleep ended by the token.
#[test]
fn a_cancel_ends_the_selectors_sleep_through_the_token() {
    for round in 0..20 {
        let (_producers, consumers) = rings(3);
        let token = CancelToken::new();
        let (tids, tid) = mpsc::channel();
        let worker = {
            let token = token.clone();
            std::thread::spawn(move || {
                tids.send(nix::unistd::gettid()).unwrap();
                let mut selector = Selector::with_options(&Bus::options().cancel_token(token));
                for (key, consumer) in consumers.into_iter().enumerate() {
                    selector.add(key, consumer);
                }
                let outcome = selector.select().map(|_| ());
                (outcome, selector.sleep_ends())
            })
        };
        let tid = tid.recv().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let give_up = Instant::now() + LONG;
        let (_, blocked_before) = thread_blocks(tid);
        loop {
            let (state, blocks) = thread_blocks(tid);
            if state == 'S' && blocks > blocked_before {
                break;
            }
            assert!(
                Instant::now() < give_up,
                "round {round}: the selector never blocked again (state {state})"
            );
            std::hint::spin_loop();
        }
        token.cancel();
        let (outcome, ends) = worker.join().unwrap();
        assert!(
            matches!(outcome, Err(Error::Cancelled(_))),
            "round {round}: {outcome:?}"
        );
        assert_eq!(
            ends.cancelled, 1,
            "round {round}: the sleep was not ended by the token: {ends:?}"
        );
        assert!(
            ends.timed_out >= 5,
            "round {round}: 300 ms idle is several naps: {ends:?}"
        );
        assert_eq!(
            (ends.wakeups, ends.added),
            (0, 0),
            "round {round}: {ends:?}"
        );
        assert_eq!(
            ends.sleeps,
            ends.wakeups + ends.added + ends.timed_out + ends.cancelled + ends.changed,
            "round {round}: every sleep ends one way: {ends:?}"
        );
    }
}

/// The counters of the sleeps: a publish's wake and an add's are told apart, and a nap that
/// ran out is counted as such.
#[test]
fn each_sleep_is_counted_by_what_ended_it() {
    let (_producers, consumers) = rings(2);
    let mut selector = Selector::with_options(&Bus::options().spin_threshold(10));
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    assert!(matches!(
        selector.select_timeout(Duration::from_millis(20)),
        Err(Error::Timeout(_))
    ));
    let ends = selector.sleep_ends();
    assert!(ends.timed_out >= 1, "{ends:?}");
    assert_eq!((ends.wakeups, ends.added, ends.cancelled), (0, 0, 0));
    assert_eq!(selector.sleep_stats(), (ends.sleeps, 0));

    // Asleep, then an add: counted as the add's wake, never a producer's.
    let handle = selector.handle();
    let (mut late_producer, late) = Bus::in_memory(4096).unwrap().split();
    let adder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        late_producer.send(1, b"late").unwrap();
        handle.add(2, late);
        late_producer
    });
    assert_eq!(next_key(&mut selector), 2);
    drop(adder.join().unwrap());
    let after_add = selector.sleep_ends();
    assert_eq!(after_add.wakeups, 0, "{after_add:?}");
    assert!(
        after_add.added + after_add.changed >= 1,
        "the add ended a sleep: {after_add:?}"
    );
    assert_eq!(
        after_add.sleeps,
        after_add.wakeups
            + after_add.added
            + after_add.timed_out
            + after_add.cancelled
            + after_add.changed
    );
}

/// Removing a ring keeps the turn where it was: the ring after the last one served is next,
/// whether the removed ring came before it or was it.
#[test]
fn after_a_ring_is_removed_the_turn_goes_on_from_the_ring_after() {
    let (mut producers, consumers) = rings(4);
    let mut selector = Selector::new();
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    for producer in &mut producers {
        for i in 0..10u8 {
            producer.send(1, &[i]).unwrap();
        }
        producer.flush();
    }
    assert_eq!(next_key(&mut selector), 0);
    assert_eq!(next_key(&mut selector), 1);
    // Ring 2 is next; removing ring 0, before it, changes nothing.
    assert!(selector.remove(&0).is_some());
    assert_eq!(next_key(&mut selector), 2);
    // Ring 3 is next; removing it hands the turn to the ring after it (1, wrapping round).
    assert!(selector.remove(&3).is_some());
    assert_eq!(next_key(&mut selector), 1);
    assert_eq!(next_key(&mut selector), 2);
}

/// `len` and `is_empty` follow adds and removes.
#[test]
fn len_and_is_empty_count_the_rings() {
    let (_producers, consumers) = rings(2);
    let mut selector = Selector::new();
    assert!(selector.is_empty());
    assert_eq!(selector.len(), 0);
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    assert!(!selector.is_empty());
    assert_eq!(selector.len(), 2);
    assert!(selector.remove(&0).is_some());
    assert_eq!(selector.len(), 1);
}

/// A selector that took a ring through a handle still sleeps when idle: its sleeps expect the
/// add queue's word as it is now, so they run out as naps rather than return at once.
#[test]
fn a_selector_that_took_an_add_still_sleeps_when_idle() {
    let (_producers, mut consumers) = rings(2);
    let mut selector = Selector::new();
    selector.add(0, consumers.remove(0));
    selector.handle().add(1, consumers.remove(0));
    assert!(matches!(
        selector.select_timeout(Duration::from_millis(20)),
        Err(Error::Timeout(_))
    ));
    assert_eq!(selector.len(), 2, "the add was taken");
    let before = selector.sleep_ends();
    assert!(matches!(
        selector.select_timeout(Duration::from_millis(100)),
        Err(Error::Timeout(_))
    ));
    let after = selector.sleep_ends();
    assert!(
        after.timed_out >= before.timed_out + 2,
        "idle 100 ms without a nap running out: {before:?} -> {after:?}"
    );
}

/// A select that gives up before its spin window ends never sleeps: the selector spins for the
/// whole window (37 ms at a threshold of 1,000,000) before it sleeps, and looks at the clock
/// (deadline first) every 1024 polls meanwhile.
#[test]
fn a_select_shorter_than_the_spin_window_never_sleeps() {
    let (_producers, consumers) = rings(2);
    let mut selector = Selector::with_options(&Bus::options().spin_threshold(1_000_000));
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    for _ in 0..3 {
        assert!(matches!(
            selector.select_timeout(Duration::from_millis(10)),
            Err(Error::Timeout(_))
        ));
    }
    assert_eq!(
        selector.sleep_ends().sleeps,
        0,
        "{:?}",
        selector.sleep_ends()
    );
}

/// `select_with` hands over what `select` returns, in the same turn and order, calling `hand`
/// once per message; a timeout is an error with `hand` never called; a ring's end is handed
/// over like a message.
#[test]
fn select_with_hands_over_what_select_returns() {
    let (mut producers, consumers) = rings(3);
    let mut selector = Selector::new();
    for (key, consumer) in consumers.into_iter().enumerate() {
        selector.add(key, consumer);
    }
    for (ring, producer) in producers.iter_mut().enumerate() {
        for i in 0..(5 + ring as u32) {
            producer.send(1, &i.to_le_bytes()).unwrap();
        }
        producer.flush();
    }
    let mut handed = 0;
    let mut taken = Vec::new();
    for call in 0..18 {
        let take = |selected: Selected<'_, usize>| match selected {
            Selected::Message { key, message } => {
                (*key, u32::from_le_bytes(message.data().try_into().unwrap()))
            }
            Selected::Ended { key, error } => panic!("ring {key} ended: {error}"),
        };
        // Alternate the two calls: they share the turn.
        let next = if call % 2 == 0 {
            selector.select_with(|selected| {
                handed += 1;
                take(selected)
            })
        } else {
            selector.select_timeout_with(LONG, |selected| {
                handed += 1;
                take(selected)
            })
        };
        taken.push(next.unwrap());
    }
    assert_eq!(handed, 18);
    let expected: Vec<(usize, u32)> = (0..5)
        .flat_map(|i| (0..3).map(move |ring| (ring, i)))
        .chain([(1, 5), (2, 5), (2, 6)])
        .collect();
    assert_eq!(taken, expected);
    let timed_out = selector.select_timeout_with(Duration::from_millis(20), |_| handed += 1);
    assert!(matches!(timed_out, Err(Error::Timeout(_))), "{timed_out:?}");
    assert_eq!(handed, 18, "a timeout called hand");

    // A ring whose region is marked fatal ends, handed over once, and leaves the selector.
    let (producer, consumer) = Bus::in_memory(1 << 14).unwrap().split();
    selector.add(7, consumer);
    producer.ring_state().mark_fatal();
    let ended = selector.select_timeout_with(LONG, |selected| match selected {
        Selected::Ended { key, error } => (key, error.to_string()),
        Selected::Message { key, .. } => panic!("a message on {key}"),
    });
    let (key, error) = ended.unwrap();
    assert_eq!(key, 7);
    assert!(error.contains("fatal"), "{error}");
    assert_eq!(selector.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
}

//! The selector in one process: fair order, sleeping on every ring at once, adds from other
//! threads, cancellation. (Across processes and against the real package: `tests/fan_in.rs`.)

use std::time::Duration;

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

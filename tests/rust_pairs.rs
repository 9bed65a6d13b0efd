//! Rust ↔ Rust across processes: the `producer` and `consumer` examples, in both handshake
//! arrangements (so every end plays every role: listen+produce, connect+consume,
//! listen+consume, connect+produce), with payloads checked byte for byte.

use std::time::Duration;

use tachyon_itest::{
    Finished, assert_delivered, command, role, run_pair, rust_bin, serial, socket_path,
};

const LIMIT: Duration = Duration::from_secs(120);

/// Runs one producer/consumer pair; `producer_listens` picks the arrangement. Returns both
/// ends' summaries (producer, consumer).
fn pair_run(
    producer_listens: bool,
    producer_args: &[&str],
    consumer_args: &[&str],
) -> (Finished, Finished) {
    let socket = socket_path("pair");
    let path = socket.to_str().unwrap();
    let mut producer = command(
        rust_bin("producer"),
        &["--socket", path, role(producer_listens)],
    );
    producer.args(producer_args);
    let mut consumer = command(
        rust_bin("consumer"),
        &["--socket", path, role(!producer_listens)],
    );
    consumer.args(consumer_args);
    if producer_listens {
        run_pair(
            &socket,
            ("producer", producer),
            ("consumer", consumer),
            LIMIT,
        )
    } else {
        let (consumer, producer) = run_pair(
            &socket,
            ("consumer", consumer),
            ("producer", producer),
            LIMIT,
        );
        (producer, consumer)
    }
}

/// [`pair_run`], checking the consumer saw every message intact; returns their number.
fn pair(producer_listens: bool, producer_args: &[&str], consumer_args: &[&str]) -> u64 {
    let (producer, consumer) = pair_run(producer_listens, producer_args, consumer_args);
    assert_delivered(&producer, &consumer)
}

#[test]
fn fixed_size_stream_both_arrangements() {
    let _serial = serial();
    for producer_listens in [true, false] {
        assert_eq!(
            pair(
                producer_listens,
                &["--count", "200000", "--size", "32"],
                &[]
            ),
            200_000
        );
    }
}

#[test]
fn every_size_up_to_the_largest_that_fits() {
    let _serial = serial();
    // A 4 KiB ring: payloads 0..=4032, the last filling the whole ring in one slot.
    for producer_listens in [true, false] {
        let args = [
            "--capacity",
            "4096",
            "--count",
            "4033",
            "--sweep",
            "0..4032",
        ];
        let (producer_args, consumer_args): (&[&str], &[&str]) = if producer_listens {
            (&args, &[])
        } else {
            (&args[2..], &args[..2])
        };
        assert_eq!(pair(producer_listens, producer_args, consumer_args), 4033);
    }
}

#[test]
fn random_sizes_across_many_wraps() {
    let _serial = serial();
    for (producer_listens, seed) in [(true, "7"), (false, "8")] {
        let sizes = ["--count", "50000", "--sizes", "0..3000", "--seed", seed];
        let capacity = ["--capacity", "65536"];
        let (p, c): (Vec<&str>, Vec<&str>) = if producer_listens {
            ([&capacity[..], &sizes[..]].concat(), vec![])
        } else {
            (sizes.to_vec(), capacity.to_vec())
        };
        assert_eq!(pair(producer_listens, &p, &c), 50_000);
    }
}

#[test]
fn rings_of_one_and_two_slots_do_not_deadlock() {
    let _serial = serial();
    // 64 bytes: one empty-payload slot. 1024 bytes with 400-byte payloads: two slots, the case
    // that hangs two upstream peers.
    assert_eq!(
        pair(
            true,
            &["--capacity", "64", "--count", "20000", "--size", "0"],
            &[]
        ),
        20_000
    );
    assert_eq!(
        pair(
            false,
            &["--count", "20000", "--size", "400"],
            &["--capacity", "1024"]
        ),
        20_000
    );
}

#[test]
fn sleeping_consumer_is_woken_and_pure_spin_works() {
    let _serial = serial();
    // The producer pauses 300 ms, far past the consumer's 100-spin threshold: it must sleep on
    // the futex and be woken by the next publish.
    let pause = [
        "--count",
        "5000",
        "--size",
        "100",
        "--pause-after",
        "1000",
        "--pause-ms",
        "300",
    ];
    let (producer, consumer) = pair_run(true, &pause, &["--spin", "100"]);
    assert_eq!(assert_delivered(&producer, &consumer), 5000);
    assert!(
        consumer.field("wakeups") >= 1,
        "never woken: {}",
        consumer.stdout
    );
    assert!(
        producer.field("wakes") >= 1,
        "never woke anyone: {}",
        producer.stdout
    );
    // Whether a wake was ever lost is `no_wake_up_is_lost_in_thousands_of_sleep_races`'s
    // question: a nap can also run out while this producer is descheduled between its head
    // store and its wake, which only that test's timed publishes can tell apart.
    // Pure spin: the consumer never sleeps, so the producer never wakes.
    let (producer, consumer) = pair_run(
        false,
        &["--count", "100000", "--sizes", "0..500"],
        &["--pure-spin"],
    );
    assert_eq!(assert_delivered(&producer, &consumer), 100_000);
    assert_eq!(
        (consumer.field("sleeps"), producer.field("wakes")),
        (0, 0),
        "pure spin slept or was woken: {} / {}",
        consumer.stdout,
        producer.stdout
    );
}

/// Sparse traffic: a publish after a random 0–300 µs gap, again and again, so the consumer
/// (spin threshold 50) falls asleep at every moment relative to a publish. With our producer
/// no wake may be lost: every nap that ran out with a message waiting is counted, with the
/// message it found, and each must be one whose publish the producer saw held up (descheduled
/// for over 20 µs between its head store and its wake, where a nap can run out with nothing
/// lost). A missing wake on a publish that ran at full speed fails the test.
#[test]
fn no_wake_up_is_lost_in_thousands_of_sleep_races() {
    let _serial = serial();
    let (producer, consumer) = pair_run(
        true,
        &["--count", "5000", "--size", "32", "--gap-us", "0..300"],
        &["--spin", "50"],
    );
    assert_eq!(assert_delivered(&producer, &consumer), 5000);
    assert!(
        consumer.field("sleeps") >= 500,
        "the race was hardly exercised: {}",
        consumer.stdout
    );
    assert!(consumer.field("wakeups") >= 1, "{}", consumer.stdout);
    let held = producer.json()["held_publishes"].clone();
    let held: Vec<u64> = serde_json::from_value(held).expect("held_publishes: a list of indices");
    let missed: Vec<u64> = serde_json::from_value(consumer.json()["missed_at"].clone())
        .expect("missed_at: a list of indices");
    assert_eq!(
        missed.len() as u64,
        consumer.field("missed_wakes"),
        "{}",
        consumer.stdout
    );
    let unexplained: Vec<u64> = missed.into_iter().filter(|i| !held.contains(i)).collect();
    assert!(
        unexplained.is_empty(),
        "wake-ups were lost: naps ran out with messages {unexplained:?} waiting, whose publish \
         was not held up (held: {held:?}); consumer {}",
        consumer.stdout
    );
}

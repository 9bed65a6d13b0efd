//! The ring crate against the real, pip-installed tachyon-ipc 0.5.1 (C++ core under Python):
//! both directions, both handshake arrangements, every payload size, the futex path,
//! pure spin and the smallest rings. Python runs `python/producer.py` / `python/consumer.py`;
//! Rust runs the `producer` / `consumer` examples. Every payload is checked byte for byte.
//!
//! These tests need the real package; `python()` installs it or fails the test, never skips.

use std::process::Command;
use std::time::Duration;

use tachyon_itest::{
    Finished, assert_delivered, command, python_script, role, run_pair, rust_bin, serial,
    socket_path,
};

const LIMIT: Duration = Duration::from_secs(180);

/// A Python pattern producer → Rust consumer run; the ring is created by whichever side
/// listens, with `capacity` bytes.
fn python_to_rust(
    python_listens: bool,
    capacity: usize,
    producer_args: &[&str],
    consumer_args: &[&str],
) -> Run {
    let socket = socket_path("py2rs");
    let path = socket.to_str().unwrap();
    let capacity = capacity.to_string();
    let mut producer = python_script("producer.py");
    producer.args([
        "--pattern",
        "--socket",
        path,
        role(python_listens),
        "--capacity",
        &capacity,
    ]);
    producer.args(producer_args);
    let mut consumer = command(
        rust_bin("consumer"),
        &["--socket", path, role(!python_listens)],
    );
    consumer.args(["--capacity", &capacity]).args(consumer_args);
    finish(
        python_listens,
        &socket,
        ("python producer", producer),
        ("rust consumer", consumer),
    )
}

/// A Rust producer → Python pattern consumer run.
fn rust_to_python(
    python_listens: bool,
    capacity: usize,
    producer_args: &[&str],
    consumer_args: &[&str],
) -> Run {
    let socket = socket_path("rs2py");
    let path = socket.to_str().unwrap();
    let capacity = capacity.to_string();
    let mut producer = command(
        rust_bin("producer"),
        &["--socket", path, role(!python_listens)],
    );
    producer.args(["--capacity", &capacity]).args(producer_args);
    let mut consumer = python_script("consumer.py");
    consumer.args([
        "--mode",
        "pattern",
        "--socket",
        path,
        role(python_listens),
        "--capacity",
        &capacity,
    ]);
    consumer.args(consumer_args);
    finish(
        !python_listens,
        &socket,
        ("rust producer", producer),
        ("python consumer", consumer),
    )
}

/// Both ends of a finished run.
struct Run {
    producer: Finished,
    consumer: Finished,
}

impl Run {
    /// Messages delivered, after checking every one arrived intact.
    fn delivered(&self) -> u64 {
        assert_delivered(&self.producer, &self.consumer)
    }
}

fn finish(
    producer_listens: bool,
    socket: &std::path::Path,
    producer: (&str, Command),
    consumer: (&str, Command),
) -> Run {
    if producer_listens {
        let (producer, consumer) = run_pair(socket, producer, consumer, LIMIT);
        Run { producer, consumer }
    } else {
        let (consumer, producer) = run_pair(socket, consumer, producer, LIMIT);
        Run { producer, consumer }
    }
}

#[test]
fn python_producer_every_size_to_the_largest_that_fits() {
    let _serial = serial();
    // Upstream's producer cannot place a slot that needs a skip plus itself beyond the ring's
    // size, so it sweeps from the largest size down: 4032 (one slot filling the 4 KiB ring)
    // to 0. It retries on "full", which it hits whenever our consumer is behind.
    for python_listens in [true, false] {
        let sweep = ["--count", "4033", "--sweep", "4032..0", "--retry-full"];
        assert_eq!(
            python_to_rust(python_listens, 4096, &sweep, &[]).delivered(),
            4033
        );
    }
}

#[test]
fn python_producer_random_sizes_across_wraps() {
    let _serial = serial();
    for (python_listens, seed) in [(true, "3"), (false, "4")] {
        let args = [
            "--count",
            "30000",
            "--sizes",
            "0..3000",
            "--seed",
            seed,
            "--retry-full",
        ];
        assert_eq!(
            python_to_rust(python_listens, 65536, &args, &[]).delivered(),
            30_000
        );
    }
}

#[test]
fn rust_producer_every_size_a_python_consumer_can_take() {
    let _serial = serial();
    // Upstream's consumer returns space only every 32 messages, so a stream to it must fit 33
    // of its largest slots: on a 64 KiB ring, slots up to 1920 bytes (payload 1856), swept up
    // and down so each size meets every ring position class.
    for python_listens in [true, false] {
        let up = ["--count", "1857", "--sweep", "0..1856"];
        assert_eq!(
            rust_to_python(python_listens, 65536, &up, &[]).delivered(),
            1857
        );
        let down = ["--count", "1857", "--sweep", "1856..0"];
        assert_eq!(
            rust_to_python(python_listens, 65536, &down, &[]).delivered(),
            1857
        );
    }
}

#[test]
fn rust_producer_largest_message_to_python() {
    let _serial = serial();
    // The largest payload that fits: one slot of the whole 64 KiB ring. After it no space
    // comes back from upstream's consumer, so there is no sentinel; it expects one message.
    for python_listens in [true, false] {
        let producer = ["--count", "1", "--size", "65472", "--no-sentinel"];
        assert_eq!(
            rust_to_python(python_listens, 65536, &producer, &["--expect", "1"]).delivered(),
            1
        );
    }
}

#[test]
fn rust_producer_random_sizes_across_wraps() {
    let _serial = serial();
    for (python_listens, seed) in [(true, "5"), (false, "6")] {
        let args = ["--count", "50000", "--sizes", "0..1800", "--seed", seed];
        assert_eq!(
            rust_to_python(python_listens, 65536, &args, &[]).delivered(),
            50_000
        );
    }
}

#[test]
fn futex_sleep_and_wake_both_ways() {
    let _serial = serial();
    // Each producer pauses 300 ms mid-stream, far past the consumer's spin threshold: the
    // consumer sleeps on the shared futex and must be woken by the other implementation.
    // Not 400 ms: upstream's consumer sleeps in 200 ms timeouts, spinning between them, so a
    // 400 ms pause ended just as its second sleep did, and now and then found it awake and
    // spinning (no wake needed, none counted: a 5x loop failed so). At 300 ms it is ~100 ms
    // into that sleep.
    let pause = ["--pause-after", "1000", "--pause-ms", "300"];
    for python_listens in [true, false] {
        let args = [&["--count", "3000", "--size", "100"][..], &pause].concat();
        // The Rust consumer counts the futex waits that a wake (not the timeout) ended.
        let run = python_to_rust(python_listens, 1 << 20, &args, &["--spin", "100"]);
        assert_eq!(run.delivered(), 3000);
        assert!(
            run.consumer.field("wakeups") >= 1,
            "never woken by Python: {}",
            run.consumer.stdout
        );
        // The Rust producer counts the sleepers its FUTEX_WAKE actually woke.
        let run = rust_to_python(python_listens, 1 << 20, &args, &[]);
        assert_eq!(run.delivered(), 3000);
        assert!(
            run.producer.field("wakes") >= 1,
            "never woke Python: {}",
            run.producer.stdout
        );
    }
}

#[test]
fn pure_spin_consumer_with_python_producer() {
    let _serial = serial();
    for python_listens in [true, false] {
        let args = ["--count", "20000", "--sizes", "0..500", "--retry-full"];
        let run = python_to_rust(python_listens, 1 << 20, &args, &["--pure-spin"]);
        assert_eq!(run.delivered(), 20_000);
        assert_eq!(
            run.consumer.field("sleeps"),
            0,
            "pure spin slept: {}",
            run.consumer.stdout
        );
    }
}

#[test]
fn two_slot_ring_with_python_producer_completes() {
    let _serial = serial();
    // 1024-byte ring, 400-byte payloads: two slots. Two upstream peers deadlock here; our
    // consumer returns space whenever it drains the ring, so a producer retrying on "full"
    // gets through.
    for python_listens in [true, false] {
        let args = ["--count", "5000", "--size", "400", "--retry-full"];
        assert_eq!(
            python_to_rust(python_listens, 1024, &args, &[]).delivered(),
            5000
        );
    }
}

/// The async example (`async_consumer`, one tokio worker, the reactor thread doing all the
/// waiting) against the real Python producer, both arrangements, with pauses that make it
/// wait as a task: every message arrives intact.
#[test]
fn async_consumer_with_python_producer() {
    let _serial = serial();
    for python_listens in [true, false] {
        let socket = socket_path("py2async");
        let path = socket.to_str().unwrap();
        let mut producer = python_script("producer.py");
        producer.args(["--pattern", "--socket", path, role(python_listens)]);
        producer.args(["--count", "20000", "--sizes", "0..2000", "--retry-full"]);
        producer.args(["--pause-after", "10000", "--pause-ms", "200"]);
        let consumer = command(
            rust_bin("async_consumer"),
            &["--socket", path, role(!python_listens)],
        );
        let run = finish(
            python_listens,
            &socket,
            ("python producer", producer),
            ("async_consumer", consumer),
        );
        assert_eq!(run.delivered(), 20_000);
    }
}

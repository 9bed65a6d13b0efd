//! The product's main job: the seed's Python producer on the real tachyon-ipc package feeding
//! `tachyon-consumer`, in both handshake arrangements; the futex path, pure spin, a two-slot
//! ring; and the consumer's errors on bad input.

use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use tachyon_itest::{
    Finished, Proc, command, python_script, role, run_pair, rust_bin, serial, socket_path,
};

const LIMIT: Duration = Duration::from_secs(300);

/// Runs `producer.py` (ticks) against `tachyon-consumer --json`; returns (producer, consumer).
fn ticks(
    consumer_listens: bool,
    producer_args: &[&str],
    consumer_args: &[&str],
) -> (Finished, Finished) {
    let socket = socket_path("market");
    let path = socket.to_str().unwrap();
    let mut consumer = command(
        rust_bin("tachyon-consumer"),
        &["--json", "--socket", path, role(consumer_listens)],
    );
    consumer.args(consumer_args);
    // --retry-full: a consumer descheduled for a few ms on a loaded machine fills the ring;
    // that is back-pressure, not a failure (the count checks below catch any loss).
    let mut producer = python_script("producer.py");
    producer
        .args(["--socket", path, role(!consumer_listens), "--retry-full"])
        .args(producer_args);
    if consumer_listens {
        let (consumer, producer) = run_pair(
            &socket,
            ("tachyon-consumer", consumer),
            ("producer.py", producer),
            LIMIT,
        );
        (producer, consumer)
    } else {
        run_pair(
            &socket,
            ("producer.py", producer),
            ("tachyon-consumer", consumer),
            LIMIT,
        )
    }
}

/// Every tick arrived, split exactly into bids and asks, with a latency for each.
fn assert_all_ticks(count: u64, producer: &Finished, consumer: &Finished) {
    assert_eq!(producer.field("sent"), count);
    let summary = consumer.json();
    assert_eq!(summary["received"], count, "{summary}");
    assert_eq!(summary["bids"], count.div_ceil(2), "{summary}");
    assert_eq!(summary["asks"], count / 2, "{summary}");
    assert_eq!(summary["other"], 0, "{summary}");
    assert_eq!(summary["malformed"], 0, "{summary}");
    // Quantities are 1 + i % 1000: the sum proves every tick's fields were decoded at their
    // offsets, not just counted.
    let volume: u64 = (0..count).map(|i| 1 + i % 1000).sum();
    assert_eq!(summary["volume"], volume, "{summary}");
    assert_eq!(summary["latency_ns"]["samples"], count, "{summary}");
    // Latencies from the ticks' own time.time_ns() stamps (read unaligned at offset 20): a
    // stamp read from the wrong bytes gives no sample or one of years. Ordered percentiles,
    // the median positive and far below a second.
    let latency = |key: &str| {
        summary["latency_ns"][key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key}: {summary}"))
    };
    let keys = ["p50", "p90", "p99", "p999", "max"];
    let values: Vec<u64> = keys.iter().map(|key| latency(key)).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{summary}");
    assert!(
        values[0] > 0 && values[0] < 1_000_000_000,
        "one-way latency p50 {} ns: {summary}",
        values[0]
    );
}

#[test]
fn a_million_ticks_from_python_in_both_arrangements() {
    let _serial = serial();
    for consumer_listens in [true, false] {
        let (producer, consumer) = ticks(consumer_listens, &["--count", "1000000"], &[]);
        assert_all_ticks(1_000_000, &producer, &consumer);
    }
}

#[test]
fn the_consumer_sleeps_and_is_woken_and_pure_spin_works() {
    let _serial = serial();
    let pause = [
        "--count",
        "20000",
        "--pause-after",
        "5000",
        "--pause-ms",
        "500",
    ];
    let (producer, consumer) = ticks(true, &pause, &["--spin", "1000"]);
    assert_all_ticks(20_000, &producer, &consumer);
    // The 500 ms pause put the consumer to sleep; the Python producer's FUTEX_WAKE (not the
    // consumer's own timeout) must have ended at least one of its sleeps.
    assert!(
        consumer.field("wakeups") >= 1,
        "never woken: {}",
        consumer.stdout
    );
    let (producer, consumer) = ticks(false, &["--count", "200000"], &["--pure-spin"]);
    assert_all_ticks(200_000, &producer, &consumer);
    assert_eq!(
        consumer.field("sleeps"),
        0,
        "pure spin slept: {}",
        consumer.stdout
    );
}

#[test]
fn a_ring_of_two_slots_completes() {
    let _serial = serial();
    // 256 bytes hold two 128-byte tick slots. Upstream's own consumer would deadlock here;
    // ours returns space whenever it drains the ring, so a producer retrying on "full" ends.
    let (producer, consumer) = ticks(true, &["--count", "20000"], &["--capacity", "256"]);
    assert_all_ticks(20_000, &producer, &consumer);
}

#[test]
fn nobody_listening_is_a_clear_error() {
    let _serial = serial();
    let missing = socket_path("missing");
    let consumer = Proc::spawn(
        "tachyon-consumer",
        command(
            rust_bin("tachyon-consumer"),
            &[
                "--connect",
                "--connect-timeout",
                "200ms",
                "--socket",
                missing.to_str().unwrap(),
            ],
        ),
    )
    .finish(LIMIT);
    assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
    let line = consumer.stderr.trim();
    assert!(
        line.starts_with("tachyon-consumer: nobody is listening on "),
        "{line}"
    );
    assert!(!line.contains("panicked"), "{line}");
}

/// A listener that sends a handshake with one field changed, and a real memfd.
fn bad_listener(socket: &std::path::Path, word: usize, value: u32) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut words = [0x5441_4348u32, 4, 1024, 1792, 0, 0, 64, 0];
        words[word] = value;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let memfd =
            nix::sys::memfd::memfd_create("bad", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
        let fds = [memfd.as_raw_fd()];
        sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    })
}

/// `tachyon-consumer --connect` against [`bad_listener`]`(word, value)`.
fn connect_to_bad_listener(word: usize, value: u32) -> Finished {
    let socket = socket_path("bad");
    let listener = bad_listener(&socket, word, value);
    let consumer = Proc::spawn(
        "tachyon-consumer",
        command(
            rust_bin("tachyon-consumer"),
            &["--connect", "--socket", socket.to_str().unwrap()],
        ),
    )
    .finish(LIMIT);
    // A consumer that never connected leaves the accept waiting: one connection of ours ends
    // it (harmless when the consumer did connect), so a broken consumer fails, never hangs.
    let _unblock = std::os::unix::net::UnixStream::connect(&socket);
    listener.join().unwrap();
    let _ = std::fs::remove_file(&socket);
    consumer
}

#[test]
fn a_listener_speaking_another_version_or_kind_is_refused() {
    let _serial = serial();
    for (word, value, expect) in [
        (1, 3, "ABI mismatch: peer sent version 3, we speak 4"),
        (
            0,
            0xdead_beef,
            "ABI mismatch: peer sent magic 0xdeadbeef, we speak 0x54414348",
        ),
        (7, 1, "an SPSC connector met an RPC listener"),
    ] {
        let consumer = connect_to_bad_listener(word, value);
        assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
        let line = consumer.stderr.lines().last().unwrap_or_default();
        assert!(line.contains(expect), "expected {expect:?} in {line:?}");
    }
}

#[test]
fn an_unsealed_memfd_is_refused_before_mapping() {
    let _serial = serial();
    // Version and sizes right, but the memfd carries no seals: mapping it would let the
    // listener truncate it under us (SIGBUS). bad_listener's memfd is unsealed.
    let consumer = connect_to_bad_listener(1, 4);
    assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
    assert!(
        consumer.stderr.contains("not sealed against shrinking"),
        "{}",
        consumer.stderr
    );
}

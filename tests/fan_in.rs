//! Many producers into one consumer: `tachyon-consumer --producers N` against N real
//! tachyon-ipc 0.5.1 Python producers on one socket path, each with its own ring (and one
//! Python process connecting twice, each connection a producer of its own).

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tachyon_itest::{
    Finished, Proc, command, python, python_script, rust_bin, serial, socket_path, wait_for_socket,
};

const LIMIT: Duration = Duration::from_secs(300);

fn consumer(socket: &Path, producers: usize) -> Proc {
    let mut consumer = Proc::spawn(
        "tachyon-consumer",
        command(
            rust_bin("tachyon-consumer"),
            &[
                "--json",
                "--socket",
                socket.to_str().unwrap(),
                "--producers",
                &producers.to_string(),
                "--spin",
                "1000",
            ],
        ),
    );
    wait_for_socket(socket, LIMIT);
    consumer.wait_for_stderr("listening on", LIMIT);
    consumer
}

fn producer(socket: &Path, args: &[&str]) -> Proc {
    let mut producer = python_script("producer.py");
    producer
        .args([
            "--connect",
            "--socket",
            socket.to_str().unwrap(),
            "--retry-full",
        ])
        .args(args);
    Proc::spawn("producer.py", producer)
}

/// Σ quantity of ticks 0..count (the producer's quantity is 1 + i % 1000).
fn volume(count: u64) -> u64 {
    (0..count).map(|i| 1 + i % 1000).sum()
}

/// The summary's entry whose `field` is `value` (the first, for a pid several connections
/// share).
fn figures_by(consumer: &Finished, field: &str, value: u64) -> serde_json::Value {
    let summary = consumer.json();
    summary["producers"]
        .as_array()
        .unwrap_or_else(|| panic!("no per-producer figures: {summary}"))
        .iter()
        .find(|p| p[field] == value)
        .unwrap_or_else(|| panic!("no figures for {field} {value}: {summary}"))
        .clone()
}

/// The summary's entry for `pid`.
fn figures(consumer: &Finished, pid: u32) -> serde_json::Value {
    figures_by(consumer, "pid", u64::from(pid))
}

fn assert_complete(consumer: &Finished, pid: u32, count: u64) {
    assert_figures(&figures(consumer, pid), count);
}

/// One producer's entry says it sent `count` ticks (of the Python producer's pattern) and its
/// sentinel, and that every one arrived.
fn assert_figures(mine: &serde_json::Value, count: u64) {
    assert_eq!(mine["received"], count, "{mine}");
    assert_eq!(mine["bids"], count.div_ceil(2), "{mine}");
    assert_eq!(mine["asks"], count / 2, "{mine}");
    assert_eq!(mine["volume"], volume(count), "{mine}");
    assert_eq!(mine["ended"], "sentinel", "{mine}");
    assert_eq!(mine["latency_ns"]["samples"], count, "{mine}");
}

#[test]
fn four_python_producers_are_merged_with_exact_counts_each() {
    let _serial = serial();
    let socket = socket_path("fanin");
    let consumer = consumer(&socket, 4);
    let counts = [50_000u64, 20_000, 35_000, 1];
    let producers: Vec<Proc> = counts
        .iter()
        .map(|count| producer(&socket, &["--count", &count.to_string()]))
        .collect();
    let pids: Vec<u32> = producers.iter().map(Proc::pid).collect();
    for producer in producers {
        producer.finish(LIMIT).assert_success();
    }
    let consumer = consumer.finish(LIMIT);
    consumer.assert_success();
    for (pid, count) in pids.iter().zip(counts) {
        assert_complete(&consumer, *pid, count);
    }
    let total: u64 = counts.iter().sum();
    assert_eq!(consumer.json()["received"], total);
    assert!(!socket.exists(), "the socket file was left behind");
}

/// One producer is SIGKILLed after publishing 5,000 ticks: the others complete, the dead one is
/// named by pid with everything it published delivered, and the exit code is 1.
#[test]
fn a_killed_producer_is_reported_after_its_messages_while_the_others_complete() {
    let _serial = serial();
    let socket = socket_path("fanin-death");
    let consumer = consumer(&socket, 3);
    let good = [
        producer(&socket, &["--count", "30000"]),
        producer(&socket, &["--count", "30000"]),
    ];
    let doomed = producer(&socket, &["--count", "1000000", "--die-after", "5000"]);
    let doomed_pid = doomed.pid();
    let doomed = doomed.finish(LIMIT);
    assert_eq!(doomed.status.signal(), Some(9), "{doomed:?}");
    let pids: Vec<u32> = good.iter().map(Proc::pid).collect();
    for producer in good {
        producer.finish(LIMIT).assert_success();
    }
    let consumer = consumer.finish(LIMIT);
    assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
    assert!(
        consumer.stderr.contains(&format!(
            "(pid {doomed_pid}) exited before its sentinel; received 5000 messages"
        )),
        "{}",
        consumer.stderr
    );
    for pid in pids {
        assert_complete(&consumer, pid, 30_000);
    }
    let dead = figures(&consumer, doomed_pid);
    assert_eq!(
        (dead["received"].as_u64(), dead["ended"].as_str()),
        (Some(5000), Some("died"))
    );
}

/// A producer that connects after another has streamed (and pauses, so the consumer sleeps
/// on both rings and must be woken by the Python producers' own FUTEX_WAKE), and a connector
/// of another user among them: the good ones are served in full, the stranger is refused
/// before it gets anything and disturbs nobody.
#[test]
fn a_late_producer_and_a_refused_stranger_among_good_ones() {
    let _serial = serial();
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs a connector as another uid, which needs root"
    );
    let socket = socket_path("fanin-late");
    let mut consumer = consumer(&socket, 2);
    // uid 65534 tries to connect (the system Python: world-executable, no venv needed).
    let stranger = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket, sys\n\
             s = socket.socket(socket.AF_UNIX)\n\
             try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    sys.exit(0)\n\
             sys.exit('the stranger got through')",
            socket.to_str().unwrap(),
        ])
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(stranger.success(), "uid 65534 was not refused: {stranger}");
    let early = producer(
        &socket,
        &[
            "--count",
            "20000",
            "--pause-after",
            "10000",
            "--pause-ms",
            "300",
        ],
    );
    let early_pid = early.pid();
    consumer.wait_for_stderr(&format!("connected to pid {early_pid}"), LIMIT);
    consumer.wait_for_stderr("tachyon-consumer: received", LIMIT);
    let late = producer(
        &socket,
        &[
            "--count",
            "20000",
            "--pause-after",
            "5000",
            "--pause-ms",
            "300",
        ],
    );
    let late_pid = late.pid();
    early.finish(LIMIT).assert_success();
    late.finish(LIMIT).assert_success();
    let consumer = consumer.finish(LIMIT);
    consumer.assert_success();
    assert_complete(&consumer, early_pid, 20_000);
    assert_complete(&consumer, late_pid, 20_000);
    // The pauses put the selector to sleep on every ring; the Python producers' FUTEX_WAKE
    // (not a timeout) ended at least one of those sleeps.
    let summary = consumer.json();
    assert!(summary["wakeups"].as_u64() >= Some(1), "{summary}");
}

/// One Python process, two connections: each streams ticks of its own (interleaved) and sends
/// its own sentinel. A producer is a connection, not a pid: both are counted apart, in full,
/// under their connection's index with the one pid beside it, and the run ends when both
/// sentinels have arrived (keyed by pid, the two merged, and the run never ended).
#[test]
fn two_connections_from_one_process_are_two_producers() {
    const SCRIPT: &str = r#"
import os, struct, sys, time
import tachyon

TICK = struct.Struct("<8sdIQ4x")

def send(bus, payload, type_id):
    while True:
        try:
            bus.send(payload, type_id=type_id)
            return
        except tachyon.PeerDeadError:
            raise
        except tachyon.TachyonError:  # the ring is full: let the consumer drain it
            time.sleep(0.0001)

path, counts = sys.argv[1], [int(count) for count in sys.argv[2:]]
buses = [tachyon.Bus.connect(path) for _ in counts]
for i in range(max(counts)):
    for bus, count in zip(buses, counts):
        if i < count:
            tick = TICK.pack(b"BTCUSDT\0", 65000.0 + (i % 100) * 0.5, 1 + i % 1000, time.time_ns())
            send(bus, tick, 1 + (i & 1))
for bus in buses:
    send(bus, b"", 0)
print(os.getpid())
"#;
    let _serial = serial();
    let socket = socket_path("fanin-one-pid");
    let consumer = consumer(&socket, 2);
    // The first connection (accepted first: index 0) sends more, so the second's sentinel
    // comes while the first still streams.
    let counts = [30_000u64, 20_000];
    let twice = Proc::spawn(
        "two-connections.py",
        command(
            python(),
            &[
                "-c",
                SCRIPT,
                socket.to_str().unwrap(),
                &counts[0].to_string(),
                &counts[1].to_string(),
            ],
        ),
    );
    let pid = twice.pid();
    // Bounded well below LIMIT: a run that does not end fails here.
    let limit = Duration::from_secs(60);
    twice.finish(limit).assert_success();
    let consumer = consumer.finish(limit);
    consumer.assert_success();
    for (index, count) in counts.into_iter().enumerate() {
        let mine = figures_by(&consumer, "connection", index as u64);
        assert_eq!(mine["pid"], pid, "{mine}");
        assert_figures(&mine, count);
    }
    let summary = consumer.json();
    assert_eq!(summary["producers"].as_array().map(Vec::len), Some(2));
    assert_eq!(summary["received"], counts.iter().sum::<u64>());
}

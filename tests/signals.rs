//! SIGINT and SIGTERM in every phase of tachyon-consumer and the examples: exit 128 + signal
//! within 200 ms, with the summary so far on stdout and no socket file left behind.
//!
//! Each phase runs in a loop: a signal that can fall between a check and a block shows up as
//! a hang (bounded by `LIMIT`, so a failure, never a stuck suite).

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tachyon_itest::{Finished, Proc, command, rust_bin, serial, socket_path};

/// Far longer than any phase: a lost signal fails the test here.
const LIMIT: Duration = Duration::from_secs(30);
/// The promise: a signal ends the program this quickly in every phase.
const PROMPT: Duration = Duration::from_millis(200);

fn signal_for(round: usize) -> Signal {
    if round % 2 == 0 {
        Signal::SIGINT
    } else {
        Signal::SIGTERM
    }
}

/// Signals `proc`, waits for it, and checks the exit code, the time it took, that the
/// summary's `counter` field is present, and that `socket` (if any) is gone.
fn stop(proc: Proc, signal: Signal, counter: &str, socket: Option<&Path>) -> Finished {
    let sent = Instant::now();
    proc.signal(signal);
    let finished = proc.finish(LIMIT);
    let took = sent.elapsed();
    assert_eq!(
        finished.status.code(),
        Some(128 + signal as i32),
        "{signal}: {finished:?}"
    );
    assert!(
        took < PROMPT,
        "{}: exited {took:?} after {signal}",
        finished.name
    );
    finished.field(counter); // the summary so far, as the last line
    if let Some(socket) = socket {
        assert!(
            !socket.exists(),
            "{} left its socket file behind",
            finished.name
        );
    }
    finished
}

/// The programs that can listen, with their summary's counter field.
fn listeners(socket: &str) -> Vec<(&'static str, Command, &'static str)> {
    let example = |name: &str, extra: &[&str]| {
        let mut args = vec!["--listen", "--socket", socket];
        args.extend_from_slice(extra);
        command(rust_bin(name), &args)
    };
    vec![
        (
            "tachyon-consumer",
            command(
                rust_bin("tachyon-consumer"),
                &["--json", "--socket", socket],
            ),
            "received",
        ),
        ("consumer", example("consumer", &[]), "received"),
        ("producer", example("producer", &[]), "sent"),
        (
            "rpc_echo",
            command(rust_bin("rpc_echo"), &["--socket", socket]),
            "served",
        ),
    ]
}

/// Listening, signalled the instant the socket file appears (the file is watched by a tight
/// loop, so the signal lands as close to the bind as a test can put it).
#[test]
fn a_signal_the_moment_the_socket_appears_ends_the_listener() {
    let _serial = serial();
    for round in 0..50 {
        for (name, command, counter) in listeners(&socket_path("appear").to_string_lossy()) {
            if name != "tachyon-consumer" && round % 10 != 0 {
                continue; // the examples share the code: 5 rounds each
            }
            let socket = command
                .get_args()
                .skip_while(|arg| *arg != "--socket")
                .nth(1)
                .map(std::path::PathBuf::from)
                .unwrap();
            let proc = Proc::spawn(name, command);
            let give_up = Instant::now() + LIMIT;
            while !socket.exists() {
                assert!(Instant::now() < give_up, "{name} never bound its socket");
                std::hint::spin_loop();
            }
            stop(proc, signal_for(round), counter, Some(&socket));
        }
    }
}

/// Connecting while nobody listens (retrying), and receiving the handshake from a listener
/// that accepted and never sends.
#[test]
fn a_signal_ends_a_connect_retry_and_a_handshake_receive() {
    let _serial = serial();
    let connectors = |socket: &str| {
        vec![
            (
                "tachyon-consumer",
                command(
                    rust_bin("tachyon-consumer"),
                    &[
                        "--json",
                        "--connect",
                        "--connect-timeout",
                        "30s",
                        "--socket",
                        socket,
                    ],
                ),
                "received",
            ),
            (
                "consumer",
                command(rust_bin("consumer"), &["--connect", "--socket", socket]),
                "received",
            ),
            (
                "producer",
                command(rust_bin("producer"), &["--connect", "--socket", socket]),
                "sent",
            ),
            (
                "rpc_call",
                command(rust_bin("rpc_call"), &["--socket", socket]),
                "calls",
            ),
        ]
    };
    for round in 0..20 {
        // Nobody listens: the program retries its connect.
        let socket = socket_path("retry");
        for (name, command, counter) in connectors(&socket.to_string_lossy()) {
            if name != "tachyon-consumer" && round % 5 != 0 {
                continue;
            }
            let mut proc = Proc::spawn(name, command);
            proc.wait_for_handler(Signal::SIGINT, LIMIT);
            std::thread::sleep(Duration::from_millis(round as u64 % 7));
            stop(proc, signal_for(round), counter, None);
        }
        // A listener that accepts and never sends: the program waits for the handshake.
        let socket = socket_path("silent");
        let listener = UnixListener::bind(&socket).unwrap();
        for (name, command, counter) in connectors(&socket.to_string_lossy()) {
            if name != "tachyon-consumer" && round % 5 != 0 {
                continue;
            }
            let proc = Proc::spawn(name, command);
            let (accepted, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(round as u64 % 7));
            stop(proc, signal_for(round), counter, None);
            drop(accepted);
        }
        drop(listener);
        let _ = std::fs::remove_file(&socket);
    }
}

/// Asleep on an empty ring (the producer sent one message and pauses), and streaming; each
/// with SIGINT and with SIGTERM.
#[test]
fn a_signal_ends_a_consumer_asleep_or_streaming_with_the_summary_so_far() {
    let _serial = serial();
    for round in 0..20 {
        let streaming = round % 4 >= 2;
        let socket = socket_path("asleep");
        let path = socket.to_string_lossy().to_string();
        let mut consumer = Proc::spawn(
            "tachyon-consumer",
            command(rust_bin("tachyon-consumer"), &["--json", "--socket", &path]),
        );
        let producer_args: &[&str] = if streaming {
            &["--count", "1000000000", "--size", "32"]
        } else {
            &[
                "--count",
                "1",
                "--pause-after",
                "1",
                "--pause-ms",
                "60000",
                "--no-sentinel",
            ]
        };
        let mut args = vec!["--connect", "--socket", &path];
        args.extend_from_slice(producer_args);
        let producer = Proc::spawn("producer", command(rust_bin("producer"), &args));
        consumer.wait_for_stderr("connected to pid", LIMIT);
        // Asleep: past the spin phase. Streaming: well into the stream.
        std::thread::sleep(Duration::from_millis(30 + round as u64 % 7));
        let finished = stop(consumer, signal_for(round), "received", Some(&socket));
        let received = finished.field("received");
        if streaming {
            assert!(received > 0, "{}", finished.stdout);
        } else {
            assert_eq!(received, 1, "{}", finished.stdout);
        }
        drop(producer);
    }
}

/// `--producers 2` with both rings streaming and never running dry (two Rust producers, each
/// faster than the consumer, into 16 MiB rings): SIGINT and SIGTERM still end it within
/// 200 ms, with the summary so far. The selector looks at the token on every call, so a
/// signal does not wait for every ring to run empty (which it may never do).
#[test]
fn a_signal_ends_a_fan_in_whose_rings_never_run_dry() {
    let _serial = serial();
    for round in 0..16 {
        let socket = socket_path("fanin-streaming");
        let path = socket.to_string_lossy().to_string();
        let mut consumer = Proc::spawn(
            "tachyon-consumer --producers 2",
            command(
                rust_bin("tachyon-consumer"),
                &[
                    "--json",
                    "--socket",
                    &path,
                    "--producers",
                    "2",
                    "--capacity",
                    "16777216",
                ],
            ),
        );
        consumer.wait_for_stderr("listening on", LIMIT);
        let producers: Vec<Proc> = (0..2)
            .map(|_| {
                Proc::spawn(
                    "producer",
                    command(
                        rust_bin("producer"),
                        &[
                            "--connect",
                            "--socket",
                            &path,
                            "--count",
                            "1000000000",
                            "--size",
                            "32",
                        ],
                    ),
                )
            })
            .collect();
        for producer in &producers {
            consumer.wait_for_stderr(&format!("connected to pid {} ", producer.pid()), LIMIT);
        }
        // Well into both streams.
        std::thread::sleep(Duration::from_millis(50 + round as u64 % 7));
        let finished = stop(consumer, signal_for(round), "received", Some(&socket));
        assert!(finished.field("received") > 0, "{}", finished.stdout);
        drop(producers);
    }
}

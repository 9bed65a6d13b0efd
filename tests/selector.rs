//! The selector across processes: a producer that dies is reported while another ring keeps
//! streaming, however busy that ring keeps the selector. (In one process: `crates/ring/tests/
//! select.rs`; through `tachyon-consumer --producers N`: `fan_in.rs` and `signals.rs`.)

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tachyon_itest::{rust_bin, serial, socket_path};
use tachyon_ring::{Bus, Error, Selected, Selector};

/// Far longer than any round: a dead producer never reported fails the test here.
const LIMIT: Duration = Duration::from_secs(20);
/// The promise: a dead producer is reported this soon after it died, whatever the other rings
/// do (its remaining messages delivered first; the peers are looked at every 50 ms).
const PROMPT: Duration = Duration::from_millis(250);
/// The doomed producer publishes this many messages, then flushes and SIGKILLs itself.
const DIE_AFTER: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ring {
    /// Fed by a thread of ours as fast as the selector drains it.
    Busy,
    /// A child process's ring; the child kills itself.
    Doomed,
}

/// Ten rounds: a child producer streams, publishes [`DIE_AFTER`] messages and dies by SIGKILL
/// while an in-process ring is kept full by a feeder thread (so the selector finds a message
/// ready on nearly every call and seldom or never waits). The selector still delivers every
/// message the child published, in order, then reports it gone, within [`PROMPT`] of its
/// death as its parent saw it.
#[test]
fn a_killed_producer_is_reported_promptly_while_another_ring_streams() {
    let _serial = serial();
    let mut lateness = Vec::new();
    for round in 0..10 {
        let (mut feeder_end, busy) = Bus::in_memory(1 << 22).unwrap().split();
        let feeding = Arc::new(AtomicBool::new(true));
        let feeder = {
            let feeding = Arc::clone(&feeding);
            std::thread::spawn(move || {
                while feeding.load(Ordering::Relaxed) {
                    // Full: wait for space a little, then look at the flag again.
                    let _ = feeder_end.send_timeout(1, &[7; 32], Duration::from_millis(10));
                }
            })
        };
        let socket = socket_path("select-death");
        let mut doomed = Command::new(rust_bin("producer"))
            .args(["--connect", "--socket", socket.to_str().unwrap()])
            .args(["--count", "1000000000", "--size", "32"])
            .args(["--die-after", &DIE_AFTER.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let bus = Bus::options()
            .listen_timeout(LIMIT)
            .listen(&socket, 1 << 20)
            .unwrap();
        // Its death, as its parent sees it (the moment `wait` returns).
        let died = std::thread::spawn(move || {
            let status = doomed.wait().unwrap();
            (Instant::now(), status)
        });
        let mut selector = Selector::new();
        selector.add(Ring::Busy, busy);
        selector.add(Ring::Doomed, bus.into_consumer());
        let (mut from_busy, mut from_doomed) = (0u64, 0u64);
        let give_up = Instant::now() + LIMIT;
        let (error, ended_at) = loop {
            match selector.select_timeout(LIMIT).unwrap() {
                Selected::Message {
                    key: Ring::Busy, ..
                } => from_busy += 1,
                Selected::Message {
                    key: Ring::Doomed,
                    message,
                } => {
                    // The producer example's pattern: message i has type id 1 + i % 1000.
                    assert_eq!(
                        u64::from(message.type_id()),
                        1 + from_doomed % 1000,
                        "round {round}: message {from_doomed} of the doomed ring"
                    );
                    from_doomed += 1;
                }
                Selected::Ended {
                    key: Ring::Doomed,
                    error,
                } => break (error, Instant::now()),
                Selected::Ended { key, error } => panic!("round {round}: {key:?} ended: {error}"),
            }
            assert!(
                Instant::now() < give_up,
                "round {round}: the dead producer was not reported within {LIMIT:?} while the \
                 other ring streamed ({from_doomed} of its messages and {from_busy} of the busy \
                 ring's delivered)"
            );
        };
        let sleeps = selector.sleep_ends().sleeps;
        feeding.store(false, Ordering::Relaxed);
        drop(selector);
        feeder.join().unwrap();
        let (died_at, status): (Instant, ExitStatus) = died.join().unwrap();
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");
        assert!(
            matches!(error, Error::PeerGone { .. }),
            "round {round}: {error}"
        );
        assert_eq!(
            from_doomed, DIE_AFTER,
            "round {round}: every message it published comes before its end"
        );
        let late = ended_at.saturating_duration_since(died_at);
        assert!(
            late < PROMPT,
            "round {round}: reported {late:?} after the producer died (the busy ring gave \
             {from_busy} messages; the selector slept {sleeps} times)"
        );
        lateness.push((late, from_busy, sleeps));
    }
    eprintln!("reported after the death (lateness, busy messages, sleeps): {lateness:?}");
}

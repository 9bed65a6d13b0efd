//! Proof 5: `in` is SIGKILLed after K messages went through and started again (on a new bus
//! socket, since its ring died with it): every message arrives, in order, and the duplicates
//! are at most the window it had committed but not yet acknowledged, counted.

mod support;

use std::time::Duration;

use support::*;

const COUNT: u64 = 20_000;
const KILL_AFTER: u64 = 7_000;

#[test]
fn in_killed_and_restarted_delivers_everything_with_at_most_the_unacked_window_again() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    let a = dir.path().join("a.sock");
    let (b1, b2) = (dir.path().join("b1.sock"), dir.path().join("b2.sock"));
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&a, &server.url(), "R", "r")),
    );
    let in1 = Bridge::start(
        dir.path(),
        "in1",
        &strs(&in_args(&b1, &server.url(), "R", "r-in", "r")),
    );
    let (producer, _) = produce(a, COUNT, 8, Duration::from_secs(120));
    // Payloads of 8 bytes or more name their index, so a duplicate is recognised.
    let (consumer, received) = consume_from(
        vec![b1, b2.clone()],
        COUNT,
        8,
        true,
        Duration::from_secs(240),
        Duration::ZERO,
    );

    assert!(
        wait_for(&received, KILL_AFTER, Duration::from_secs(120)),
        "{KILL_AFTER} never arrived; in log:\n{}",
        in1.log_text()
    );
    in1.kill();
    eprintln!("in killed after {KILL_AFTER}+ messages");
    let in2 = Bridge::start(
        dir.path(),
        "in2",
        &strs(&in_args(&b2, &server.url(), "R", "r-in", "r")),
    );

    join_producer(producer, &out);
    let received = consumer
        .join()
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}; in2 log:\n{}", in2.log_text()));
    assert_eq!(received.messages, COUNT);
    // The window: what `in` had committed but not acknowledged: at most its max_ack_pending.
    assert!(
        received.duplicates <= 1024,
        "{} duplicates",
        received.duplicates
    );
    assert_eq!(stream_state(&server.url(), "R"), (COUNT, COUNT));
    let (status, in_stats) = in2.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{in_stats}");
    eprintln!(
        "duplicates after the restart: {}\nin2: {in_stats}",
        received.duplicates
    );
    let (status, _) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143));
}

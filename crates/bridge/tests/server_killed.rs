//! Proof 3: the server is SIGKILLed for 5 s mid-stream and restarted on the same store
//! (`sync_interval: always`): no message lost, none stored or delivered twice, order kept.

mod support;

use std::time::{Duration, Instant};

use support::*;

const COUNT: u64 = 12_000;

#[test]
fn a_server_killed_for_five_seconds_mid_stream_loses_and_doubles_nothing() {
    let dir = temp_dir();
    let mut server = NatsServer::start_synced(dir.path(), "");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let started = Instant::now();
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&a, &server.url(), "K", "k")),
    );
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&b, &server.url(), "K", "k-in", "k")),
    );
    let (producer, sent) = produce(a, COUNT, 0, Duration::from_secs(120));
    let (consumer, received) = consume(b, COUNT, 0, false, Duration::from_secs(240));

    wait_for_a_quarter(&received, COUNT, &out, &inb);
    server.kill();
    let at_kill = (
        sent.load(std::sync::atomic::Ordering::Relaxed),
        received.load(std::sync::atomic::Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_secs(5));
    server.restart();
    eprintln!("server killed at {at_kill:?} (sent, received), back after 5 s");

    let received = join_both(producer, consumer, &out, &inb);
    assert_eq!(received.messages, COUNT);
    assert!(
        at_kill.1 < COUNT,
        "the kill came after the end: {at_kill:?}"
    );
    assert_eq!(
        stream_state(&server.url(), "K"),
        (COUNT, COUNT),
        "stored once each"
    );

    let (status, out_stats) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{out_stats}");
    assert_eq!(out_stats["messages"], COUNT, "{out_stats}");
    let (status, in_stats) = inb.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{in_stats}");
    assert_eq!(in_stats["messages"], COUNT, "{in_stats}");
    eprintln!(
        "in {:?}\nout: {out_stats}\nin: {in_stats}",
        started.elapsed()
    );
}

//! SIGINT/SIGTERM in every phase before the stream flows: waiting for the bus peer, waiting
//! for an absent server: each exits at once with 130/143 and prints its statistics.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn stops_promptly(bridge: Bridge, signal: i32) {
    let asked = Instant::now();
    let (status, stats) = bridge.stop(signal, Duration::from_secs(10));
    assert_eq!(status.code(), Some(128 + signal), "{stats}");
    assert_eq!(stats["ended_by"], format!("signal {signal}"), "{stats}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
}

#[test]
fn a_signal_while_waiting_for_the_bus_peer_exits_130_or_143() {
    let dir = temp_dir();
    let url = format!("nats://127.0.0.1:{}", free_port()); // never contacted
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&dir.path().join("a.sock"), &url, "S", "s")),
    );
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&dir.path().join("b.sock"), &url, "S", "d", "s")),
    );
    std::thread::sleep(Duration::from_millis(500));
    stops_promptly(out, libc::SIGTERM);
    stops_promptly(inb, libc::SIGINT);
}

#[test]
fn a_signal_while_the_server_is_absent_exits_130_or_143() {
    let dir = temp_dir();
    let url = format!("nats://127.0.0.1:{}", free_port()); // nobody listens there
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let out = Bridge::start(dir.path(), "out", &strs(&out_args(&a, &url, "S", "s")));
    let inb = Bridge::start(dir.path(), "in", &strs(&in_args(&b, &url, "S", "d", "s")));
    // Bus peers connect (and stay), so both bridges are past the bus and retrying NATS.
    let producer = tachyon_ring::Bus::options()
        .connect_timeout(Duration::from_secs(10))
        .connect(&a)
        .expect("connect to out");
    let consumer = tachyon_ring::Bus::options()
        .connect_timeout(Duration::from_secs(10))
        .connect(&b)
        .expect("connect to in");
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        out.log_text().contains("NATS client error"),
        "{}",
        out.log_text()
    );
    stops_promptly(out, libc::SIGINT);
    stops_promptly(inb, libc::SIGTERM);
    drop((producer, consumer));
}

//! Proof 1: 100,000 messages of 0..=4096 bytes, our producer → `out` → JetStream (the real
//! nats-server) → `in` → our consumer: byte-exact, in order, and the stream holds exactly N.

mod support;

use std::time::{Duration, Instant};

use support::*;

const COUNT: u64 = 100_000;

#[test]
fn hundred_thousand_mixed_messages_arrive_byte_exact_in_order_once() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let started = Instant::now();
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&a, &server.url(), "RT", "rt")),
    );
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&b, &server.url(), "RT", "rt-in", "rt")),
    );
    let (producer, _) = produce(a, COUNT, 0, Duration::from_secs(60));
    let (consumer, _) = consume(b, COUNT, 0, false, Duration::from_secs(240));
    let produced = producer.join().unwrap();
    let received = consumer.join().unwrap();
    assert!(
        produced.is_ok(),
        "{produced:?}; out log:\n{}",
        out.log_text()
    );
    let received = received.unwrap_or_else(|err| {
        panic!(
            "{err}; out log:\n{}\nin log:\n{}",
            out.log_text(),
            inb.log_text()
        )
    });
    assert_eq!(received.messages, COUNT);
    let (messages, last) = stream_state(&server.url(), "RT");
    assert_eq!(
        (messages, last),
        (COUNT, COUNT),
        "the stream holds each message once"
    );
    eprintln!(
        "{COUNT} messages, {} bytes, in {:?}",
        received.bytes,
        started.elapsed()
    );

    let (status, out_stats) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{out_stats}");
    assert_eq!(out_stats["messages"], COUNT, "{out_stats}");
    assert_eq!(out_stats["bytes"], received.bytes, "{out_stats}");
    assert!(
        out_stats["inflight_high_water"].as_u64().unwrap() <= 256,
        "{out_stats}"
    );
    let (status, in_stats) = inb.stop(libc::SIGINT, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{in_stats}");
    assert_eq!(in_stats["messages"], COUNT, "{in_stats}");
    assert_eq!(in_stats["duplicates"], 0, "{in_stats}");
    eprintln!("out: {out_stats}\nin: {in_stats}");
}

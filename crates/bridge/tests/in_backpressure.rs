//! `in` back-pressure: a consumer that does not read holds the ring full, and `in` stops
//! fetching: the durable consumer has delivered no more than a ring's worth and one batch,
//! while the stream holds everything; then everything arrives, in order.

mod support;

use std::time::Duration;

use support::*;

const COUNT: u64 = 5_000;

#[test]
fn a_full_ring_stops_in_from_fetching() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&a, &server.url(), "BP", "bp")),
    );
    let (producer, _) = produce(a, COUNT, 0, Duration::from_secs(60));
    assert!(producer.join().unwrap().is_ok());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stream_state(&server.url(), "BP").0 < COUNT {
        assert!(std::time::Instant::now() < deadline, "{}", out.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut in_argv = in_args(&b, &server.url(), "BP", "bp-in", "bp");
    in_argv.extend([
        "--capacity".into(),
        "65536".into(),
        "--batch".into(),
        "64".into(),
    ]);
    let inb = Bridge::start(dir.path(), "in", &strs(&in_argv));
    let pause = Duration::from_secs(4);
    let (consumer, _) = consume_from(vec![b], COUNT, 0, false, Duration::from_secs(120), pause);
    std::thread::sleep(pause / 2);
    // 64 KiB holds at most 1,024 slots (empty payloads), far fewer of these: plus one batch.
    let (delivered, unacked) = consumer_state(&server.url(), "BP", "bp-in");
    assert!(
        delivered <= 1024 + 64,
        "in kept fetching into a full ring: {delivered} delivered; log:\n{}",
        inb.log_text()
    );
    assert!(unacked <= 64, "{unacked} unacknowledged");
    eprintln!(
        "while the ring was full: {delivered} delivered, {unacked} unacknowledged, of {COUNT}"
    );

    let received = consumer
        .join()
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}; log:\n{}", inb.log_text()));
    assert_eq!(received.messages, COUNT);
    let (status, in_stats) = inb.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{in_stats}");
    assert_eq!(in_stats["messages"], COUNT);
    let (status, _) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143));
}

//! Proof 4: no server at start while the producer runs: the ring fills, the producer waits in
//! `send_timeout`, and everything arrives once the server starts.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::*;

const COUNT: u64 = 5_000;

#[test]
fn with_no_server_the_ring_fills_the_producer_waits_and_all_arrives_later() {
    let dir = temp_dir();
    let mut server = NatsServer::configure(dir.path(), free_port(), false, "");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let mut out_argv = out_args(&a, &server.url(), "ABS", "abs");
    out_argv.extend(["--capacity".into(), "65536".into()]);
    let out = Bridge::start(dir.path(), "out", &strs(&out_argv));
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&b, &server.url(), "ABS", "abs-in", "abs")),
    );
    let (producer, sent) = produce(a, COUNT, 0, Duration::from_secs(120));
    let (consumer, received) = consume(b, COUNT, 0, false, Duration::from_secs(180));

    // The ring (64 KiB) fills and stays full: the producer is stuck in send_timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sent.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break;
        }
        last = now;
        assert!(
            Instant::now() < deadline,
            "the producer never stalled ({now} sent)"
        );
    }
    let stalled_at = sent.load(Ordering::Relaxed);
    assert!(
        stalled_at < COUNT / 10,
        "only a ring's worth fits: {stalled_at} sent"
    );
    assert!(!producer.is_finished(), "the producer waits");
    assert_eq!(received.load(Ordering::Relaxed), 0);
    eprintln!("producer waiting after {stalled_at} messages; starting the server");

    server.restart();
    let received = join_both(producer, consumer, &out, &inb);
    assert_eq!(received.messages, COUNT);
    assert_eq!(stream_state(&server.url(), "ABS"), (COUNT, COUNT));
    let (status, out_stats) = out.stop(libc::SIGINT, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{out_stats}");
    assert_eq!(out_stats["messages"], COUNT, "{out_stats}");
    eprintln!("out: {out_stats}");
}

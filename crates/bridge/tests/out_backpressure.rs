//! Back-pressure from the server: a stream that refuses new messages (`discard: new`, full at
//! 1,000) stops acknowledgements, `out`'s window fills, `out` stops draining, the ring fills
//! and our producer waits in `send_timeout`. Once the stream has room, everything arrives in
//! order, once.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::*;

const COUNT: u64 = 3_000;
const LIMIT: i64 = 1_000;

fn set_max_messages(url: &str, max_messages: i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.create_or_update_stream(async_nats::jetstream::stream::Config {
            name: "FULL".into(),
            subjects: vec!["f.>".into()],
            discard: async_nats::jetstream::stream::DiscardPolicy::New,
            max_messages,
            ..Default::default()
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_full_stream_fills_the_window_then_the_ring_then_the_producer_waits() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    set_max_messages(&server.url(), LIMIT);
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let mut argv = out_args(&a, &server.url(), "FULL", "f");
    argv.extend([
        "--capacity".into(),
        "65536".into(),
        "--max-inflight".into(),
        "64".into(),
    ]);
    let out = Bridge::start(dir.path(), "out", &strs(&argv));
    let (producer, sent) = produce(a, COUNT, 0, Duration::from_secs(120));

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sent.load(Ordering::Relaxed);
        if now == last && now >= LIMIT as u64 {
            break;
        }
        last = now;
        assert!(
            Instant::now() < deadline,
            "the producer never stalled ({now} sent)"
        );
    }
    let stalled_at = sent.load(Ordering::Relaxed);
    // The stream's 1,000, the window's 64, the 64 KiB ring's few dozen: no more.
    assert!(stalled_at < LIMIT as u64 + 64 + 1024, "{stalled_at} sent");
    assert!(!producer.is_finished());
    assert_eq!(stream_state(&server.url(), "FULL").0, LIMIT as u64);
    eprintln!("producer waiting after {stalled_at}; the stream holds {LIMIT}; lifting the limit");

    set_max_messages(&server.url(), -1);
    assert!(producer.join().unwrap().is_ok(), "{}", out.log_text());
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&b, &server.url(), "FULL", "full-in", "f")),
    );
    let (consumer, _) = consume(b, COUNT, 0, false, Duration::from_secs(120));
    let received = consumer
        .join()
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}; out log:\n{}", out.log_text()));
    assert_eq!(received.messages, COUNT);
    assert_eq!(stream_state(&server.url(), "FULL"), (COUNT, COUNT));
    let (status, stats) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{stats}");
    assert!(
        stats["inflight_high_water"].as_u64().unwrap() <= 64,
        "{stats}"
    );
    assert!(stats["retries"].as_u64().unwrap() > 0, "{stats}");
    let (status, _) = inb.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143));
    eprintln!("out: {stats}");
}

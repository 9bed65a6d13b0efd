//! A delivery `in` never sees (here taken by the test from the same durable consumer and never
//! acknowledged, as when a pull is lost with a consumer leader) would otherwise come back only
//! after `ack_wait`, behind newer messages. `in` notices the gap, restarts its consumer after
//! the last message it committed, and the order holds.

mod support;

use std::time::Duration;

use support::*;

const COUNT: u64 = 3_000;

#[test]
fn a_lost_delivery_is_fetched_again_in_order() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    publish_pattern(&server.url(), "LOST", "l", COUNT, 0);
    let b = dir.path().join("b.sock");
    let mut argv = in_args(&b, &server.url(), "LOST", "lost-in", "l");
    argv.extend([
        "--capacity".into(),
        "65536".into(),
        "--batch".into(),
        "32".into(),
    ]);
    let inb = Bridge::start(dir.path(), "in", &strs(&argv));
    // The consumer reads nothing for 3 s: the ring fills, in holds one batch and fetches no
    // more, and the next message goes to the thief.
    let (consumer, _) = consume_from(
        vec![b],
        COUNT,
        0,
        false,
        Duration::from_secs(120),
        Duration::from_secs(3),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let stolen = steal_one_delivery(&server.url(), "LOST", "lost-in");
    eprintln!("stole the delivery of stream sequence {stolen}");
    let received = consumer
        .join()
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}; in log:\n{}", inb.log_text()));
    assert_eq!(received.messages, COUNT);
    let log = inb.log_text();
    assert!(log.contains("skipped ahead"), "{log}");
    let (status, stats) = inb.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{stats}");
    assert_eq!(stats["messages"], COUNT, "{stats}");
    assert!(
        stats["retries"].as_u64().unwrap() >= 1,
        "the gap was seen: {stats}"
    );
}

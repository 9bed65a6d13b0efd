//! `in` on a stream shared with other subjects: its filter leaves gaps in the stream sequence,
//! which `in` must tell from a lost delivery (asking the stream for the next matching message)
//! and pass without restarting its consumer. The messages are published straight to the real
//! server here, each with the mapping's subject and type-id header, others interleaved.

mod support;

use std::time::Duration;

use support::*;

const COUNT: u64 = 2_000;

#[test]
fn gaps_of_other_subjects_are_not_lost_deliveries() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    publish_pattern(&server.url(), "MIX", "g", COUNT, 3);

    let b = dir.path().join("b.sock");
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&b, &server.url(), "MIX", "mix-in", "g")),
    );
    let (consumer, _) = consume(b, COUNT, 0, false, Duration::from_secs(120));
    let received = consumer
        .join()
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}; in log:\n{}", inb.log_text()));
    assert_eq!(received.messages, COUNT);
    let (status, stats) = inb.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{stats}");
    assert_eq!(stats["messages"], COUNT, "{stats}");
    assert_eq!(
        stats["retries"], 0,
        "no restart for a legitimate gap: {stats}"
    );
}

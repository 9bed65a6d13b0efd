//! `in` replaces its durable consumer (delete, then create after the floor) at start and after
//! a lost delivery. A run that dies between the two leaves no consumer; the floor it recorded
//! first (JetStream key-value bucket `tachyon-bridge-in`) lets the next run resume after it
//! instead of delivering the whole stream again. The test leaves exactly that state behind.

mod support;

use std::time::Duration;

use support::*;

const COUNT: u64 = 4_000;

/// Waits until every message `in` committed is acknowledged on the server (its acks were
/// flushed at exit), then leaves what a run dying mid-replacement leaves: the floor recorded,
/// the consumer deleted.
fn crash_between_delete_and_create(url: &str, stream: &str, durable: &str, committed: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(stream).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let floor = loop {
            let info = stream.consumer_info(durable).await.unwrap();
            let floor = info.ack_floor.stream_sequence;
            if floor >= committed || std::time::Instant::now() > deadline {
                break floor;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let progress = js.get_key_value("tachyon-bridge-in").await.unwrap();
        progress
            .put(
                format!("{}.{durable}", stream.cached_info().config.name),
                floor.to_string().into(),
            )
            .await
            .unwrap();
        stream.delete_consumer(durable).await.unwrap();
        floor
    })
}

#[test]
fn a_run_that_died_mid_replacement_is_resumed_after_its_recorded_floor() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    publish_pattern(&server.url(), "RC", "rc", COUNT, 0);
    let (b1, b2) = (dir.path().join("b1.sock"), dir.path().join("b2.sock"));
    let in1 = Bridge::start(
        dir.path(),
        "in1",
        &strs(&in_args(&b1, &server.url(), "RC", "rc-in", "rc")),
    );
    // The consumer reads about half, then in1 is stopped cleanly (its acks flushed).
    let (consumer, received) = consume_from(
        vec![b1, b2.clone()],
        COUNT,
        0,
        false,
        Duration::from_secs(120),
        Duration::ZERO,
    );
    assert!(
        wait_for(&received, COUNT / 2, Duration::from_secs(60)),
        "{}",
        in1.log_text()
    );
    let (status, stats1) = in1.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{stats1}");
    let committed = stats1["messages"].as_u64().unwrap();
    let floor = crash_between_delete_and_create(&server.url(), "RC", "rc-in", committed);
    assert_eq!(floor, stats1["messages"].as_u64().unwrap(), "{stats1}");
    eprintln!("consumer deleted after floor {floor}, the floor recorded");

    let in2 = Bridge::start(
        dir.path(),
        "in2",
        &strs(&in_args(&b2, &server.url(), "RC", "rc-in", "rc")),
    );
    // Strict check: a replay from the start would show message 0 again.
    let received = consumer
        .join()
        .unwrap()
        .unwrap_or_else(|err| panic!("{err}; in2 log:\n{}", in2.log_text()));
    assert_eq!(received.messages, COUNT);
    assert!(
        in2.log_text().contains("resuming after the floor recorded"),
        "{}",
        in2.log_text()
    );
    let (status, stats2) = in2.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{stats2}");
    assert_eq!(
        stats2["messages"].as_u64().unwrap(),
        COUNT - floor,
        "{stats2}"
    );
}

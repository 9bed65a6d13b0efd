//! A message larger than the server's max_payload is never dropped silently: `out` stops with
//! an error naming both sizes, or with `--oversize skip` skips it and counts it.

mod support;

use std::time::Duration;

use support::*;

const COUNT: u64 = 200;

#[test]
fn an_oversize_message_stops_out_with_both_sizes() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "max_payload: 2048");
    let a = dir.path().join("a.sock");
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&a, &server.url(), "O", "o")),
    );
    let (producer, _) = produce(a, COUNT, 0, Duration::from_secs(5));
    let (status, stats) = out.wait(Duration::from_secs(30));
    let _ = producer.join();
    assert_eq!(status.code(), Some(1), "{stats}");
    assert_eq!(stats["ended_by"], "error");
    let log = std::fs::read_to_string(dir.path().join("out.log")).unwrap();
    assert!(
        log.contains("exceeds the server's max_payload of 2048 bytes"),
        "{log}"
    );
}

#[test]
fn oversize_skip_skips_and_counts() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "max_payload: 2048");
    let a = dir.path().join("a.sock");
    let mut argv = out_args(&a, &server.url(), "O", "o");
    argv.extend(["--oversize".into(), "skip".into()]);
    let out = Bridge::start(dir.path(), "out", &strs(&argv));
    let (producer, _) = produce(a, COUNT, 0, Duration::from_secs(30));
    assert!(producer.join().unwrap().is_ok());
    // The producer is a thread of this process, so `out` sees no peer exit: stop it.
    std::thread::sleep(Duration::from_secs(1));
    let (status, stats) = out.stop(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(143), "{stats}");
    let (published, skipped) = (
        stats["messages"].as_u64().unwrap(),
        stats["oversize_skipped"].as_u64().unwrap(),
    );
    assert!(skipped > 0 && published > 0, "{stats}");
    assert_eq!(published + skipped, COUNT, "{stats}");
    assert_eq!(stream_state(&server.url(), "O").0, published);
}

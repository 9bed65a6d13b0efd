//! Proof 2: the real tachyon-ipc 0.5.1 (pip-installed, Python) at both ends: its producer →
//! `out` → JetStream → `in` → its consumer, byte-exact and in order.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const COUNT: u64 = 20_000;

fn peer(mode: &str, socket: &std::path::Path) -> Killed {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/peer.py");
    Killed(
        Command::new(python())
            .arg(script)
            .arg(mode)
            .arg("--socket")
            .arg(socket)
            .arg("--count")
            .arg(COUNT.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the Python peer"),
    )
}

/// Waits (bounded) for the peer and returns its one JSON line.
fn finish(mut peer: Killed, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = peer.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the Python peer did not finish in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut line = String::new();
    std::io::Read::read_to_string(&mut peer.0.stdout.take().expect("stdout"), &mut line)
        .expect("read the peer's output");
    let report: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|err| panic!("peer output {line:?} ({err}), status {status}"));
    assert!(status.success(), "the Python peer failed: {report}");
    report
}

#[test]
fn the_real_python_producer_and_consumer_at_both_ends() {
    let dir = temp_dir();
    let server = NatsServer::start(dir.path(), "");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let out = Bridge::start(
        dir.path(),
        "out",
        &strs(&out_args(&a, &server.url(), "PY", "py")),
    );
    let inb = Bridge::start(
        dir.path(),
        "in",
        &strs(&in_args(&b, &server.url(), "PY", "py-in", "py")),
    );
    let producer = peer("produce", &a);
    let consumer = peer("consume", &b);
    let sent = finish(producer, Duration::from_secs(120));
    assert_eq!(sent["sent"], COUNT, "{sent}");
    let seen = finish(consumer, Duration::from_secs(120));
    assert_eq!(
        seen["received"],
        COUNT,
        "{seen}; in log:\n{}",
        inb.log_text()
    );
    assert_eq!(stream_state(&server.url(), "PY"), (COUNT, COUNT));
    // Both bus peers have exited: each bridge ends by itself, 0, once everything is across.
    let (status, out_stats) = out.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{out_stats}");
    assert_eq!(out_stats["ended_by"], "peer gone");
    assert_eq!(out_stats["messages"], COUNT);
    assert_eq!(out_stats["bytes"], seen["bytes"]);
    let (status, in_stats) = inb.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{in_stats}");
    assert_eq!(in_stats["messages"], COUNT);
    eprintln!("python producer: {sent}\npython consumer: {seen}\nout: {out_stats}\nin: {in_stats}");
}

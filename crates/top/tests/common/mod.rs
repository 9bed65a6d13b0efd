//! What the tachyon-top tests share: running the binary, reading its JSON, and the bus pairs
//! it is pointed at (started through the root package's harness, so the real Python peer is
//! bootstrapped, or the test fails loudly without it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tachyon_itest::{Proc, command, python_script, rust_bin, wait_for_socket};

/// The tachyon-top binary cargo built for these tests.
pub fn top() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tachyon-top"))
}

/// A socket path unique to this test, under /tmp (labels are matched by glob).
pub fn socket(tag: &str) -> PathBuf {
    tachyon_itest::socket_path(&format!("top-{tag}"))
}

/// Runs `tachyon-top ARGS`, which must exit with `code`; returns its stdout.
pub fn run_top(args: &[&str], code: i32) -> String {
    let output = top().args(args).output().expect("run tachyon-top");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "tachyon-top {args:?} exited {:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One `--json` snapshot of the rings labelled `label`, rates over `interval` seconds.
pub fn snapshot(label: &Path, extra: &[&str]) -> Value {
    let glob = label.to_str().unwrap();
    let mut args = vec!["--json", "--interval", "0.3", "--label", glob];
    args.extend_from_slice(extra);
    let stdout = run_top(&args, 0);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The rings of a snapshot.
pub fn rings(snapshot: &Value) -> &Vec<Value> {
    snapshot["rings"].as_array().expect("rings is an array")
}

/// The pids listed for a ring, sorted.
pub fn pids(ring: &Value) -> Vec<u64> {
    let mut pids: Vec<u64> = ring["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    pids
}

/// The process entry of `pid` in a ring.
pub fn process(ring: &Value, pid: u32) -> &Value {
    ring["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == u64::from(pid))
        .unwrap_or_else(|| panic!("pid {pid} is not listed: {ring}"))
}

/// The alarm kinds raised on a ring.
pub fn alarms(ring: &Value) -> Vec<String> {
    ring["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `check` until it gives `Some`, up to `limit`; panics with `what` past it.
pub fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our `tachyon-consumer` listening at `socket` (1 MiB ring unless `capacity`), and the real
/// Python producer connected, which sends `ticks` 32-byte ticks, then pauses 60 s
/// (`--pause-after`), so both stay attached while tachyon-top looks.
pub fn python_into_ours(socket: &Path, capacity: usize, ticks: u64) -> (Proc, Proc) {
    let consumer = our_consumer_listening(socket, capacity);
    let ticks = ticks.to_string();
    let producer = python_producer_connecting(
        socket,
        &[
            "--count",
            "1000000",
            "--pause-after",
            &ticks,
            "--pause-ms",
            "60000",
        ],
    );
    (consumer, producer)
}

/// Our `tachyon-consumer` listening at `socket` with a ring of `capacity` bytes; returns once
/// the socket is there.
pub fn our_consumer_listening(socket: &Path, capacity: usize) -> Proc {
    let consumer = Proc::spawn(
        "tachyon-consumer",
        command(
            rust_bin("tachyon-consumer"),
            &[
                "--listen",
                "--socket",
                socket.to_str().unwrap(),
                "--capacity",
                &capacity.to_string(),
            ],
        ),
    );
    wait_for_socket(socket, Duration::from_secs(20));
    consumer
}

/// The real Python consumer (`python/consumer.py`) listening at `socket`, checking the
/// pattern our producer example writes; returns once the socket is there.
pub fn python_consumer_listening(socket: &Path) -> Proc {
    let mut consumer = python_script("consumer.py");
    consumer.args([
        "--listen",
        "--socket",
        socket.to_str().unwrap(),
        "--mode",
        "pattern",
    ]);
    let consumer = Proc::spawn("python consumer", consumer);
    wait_for_socket(socket, Duration::from_secs(30));
    consumer
}

/// The real Python producer (`python/producer.py`) connecting to `socket`, with `args` after
/// `--connect --socket PATH`.
pub fn python_producer_connecting(socket: &Path, args: &[&str]) -> Proc {
    let mut producer = python_script("producer.py");
    producer.args(["--connect", "--socket", socket.to_str().unwrap()]);
    producer.args(args);
    Proc::spawn("python producer", producer)
}

/// Waits until one ring labelled `socket` is held by both `pids`; returns the snapshot.
pub fn wait_for_pair(socket: &Path, pids: &[u32], extra: &[&str]) -> Value {
    let mut want: Vec<u64> = pids.iter().map(|p| u64::from(*p)).collect();
    want.sort_unstable();
    wait_for(Duration::from_secs(30), "both processes attached", || {
        let snapshot = snapshot(socket, extra);
        let found = rings(&snapshot);
        (found.len() == 1 && pids_of(&found[0]) == want).then_some(snapshot)
    })
}

fn pids_of(ring: &Value) -> Vec<u64> {
    pids(ring)
}

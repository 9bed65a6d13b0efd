//! The socket path against the real package: paths up to its limit (107 bytes) both ways, and
//! a live Python listener's path is not taken over.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tachyon_itest::{Proc, command, python_script, run_pair, rust_bin, serial, wait_for_socket};

const LIMIT: Duration = Duration::from_secs(120);

/// A fresh path of exactly `len` bytes under the temp dir (its last directory padded).
fn path_of_len(tag: &str, len: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix(tag).tempdir().unwrap();
    let base = dir.path().as_os_str().len() + "/".len() + "/t.sock".len();
    let padded = dir.path().join("d".repeat(len - base));
    std::fs::create_dir(&padded).unwrap();
    let path = padded.join("t.sock");
    assert_eq!(path.as_os_str().len(), len);
    (dir, path)
}

fn consumer(path: &Path, role: &str) -> std::process::Command {
    command(
        rust_bin("tachyon-consumer"),
        &["--json", "--socket", path.to_str().unwrap(), role],
    )
}

fn producer(path: &Path, role: &str) -> std::process::Command {
    let mut producer = python_script("producer.py");
    producer.args([
        "--socket",
        path.to_str().unwrap(),
        role,
        "--count",
        "1000",
        "--no-timestamp",
    ]);
    producer
}

#[test]
fn a_107_byte_socket_path_works_with_the_real_package_both_ways() {
    let _serial = serial();
    for rust_listens in [true, false] {
        let (_dir, path) = path_of_len("tachyon-len-", 107);
        let (consumer, _) = if rust_listens {
            run_pair(
                &path,
                ("tachyon-consumer", consumer(&path, "--listen")),
                ("producer.py", producer(&path, "--connect")),
                LIMIT,
            )
        } else {
            let (producer, consumer) = run_pair(
                &path,
                ("producer.py", producer(&path, "--listen")),
                ("tachyon-consumer", consumer(&path, "--connect")),
                LIMIT,
            );
            (consumer, producer)
        };
        assert_eq!(
            consumer.field("received"),
            1000,
            "rust listens: {rust_listens}"
        );
    }
}

#[test]
fn a_live_python_listeners_path_is_refused_not_taken() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("market.sock");
    let python = Proc::spawn("producer.py", producer(&path, "--listen"));
    wait_for_socket(&path, LIMIT);
    let second = Proc::spawn("tachyon-consumer", consumer(&path, "--listen")).finish(LIMIT);
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    assert!(
        second.stderr.contains("address in use"),
        "{}",
        second.stderr
    );
    // The Python listener still owns its path and serves a connector through it.
    let consumer = Proc::spawn("tachyon-consumer", consumer(&path, "--connect")).finish(LIMIT);
    consumer.assert_success();
    assert_eq!(consumer.field("received"), 1000);
    python.finish(LIMIT).assert_success();
}

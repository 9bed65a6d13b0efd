//! tachyon-compat against the real pip-installed tachyon-ipc 0.5.1: programs written only
//! against upstream's Rust API (`crates/compat-programs`, which depends on tachyon-compat
//! under the name `tachyon-ipc`), in the shapes its users write, talking to the real Python
//! package. The seed consumer is the very source file `crates/compare` builds against the real
//! upstream crate.

use std::time::Duration;

use tachyon_itest::{
    Finished, assert_delivered, command, compat_program, python_script, role, run_pair, serial,
    socket_path,
};

const LIMIT: Duration = Duration::from_secs(300);
const TICKS: u64 = 200_000;

/// The seed's Python producer into the seed's consumer loop (`acquire_rx` + `commit`).
fn seed_ticks(consumer_listens: bool) -> (Finished, Finished) {
    let socket = socket_path("compat-seed");
    let path = socket.to_str().unwrap();
    let consumer = command(
        compat_program("compat-seed-consumer"),
        &["--json", "--socket", path, role(consumer_listens)],
    );
    let mut producer = python_script("producer.py");
    producer.args(["--socket", path, role(!consumer_listens)]);
    producer.args(["--count", &TICKS.to_string(), "--retry-full"]);
    if consumer_listens {
        let (consumer, producer) = run_pair(
            &socket,
            ("compat-seed-consumer", consumer),
            ("producer.py", producer),
            LIMIT,
        );
        (producer, consumer)
    } else {
        run_pair(
            &socket,
            ("producer.py", producer),
            ("compat-seed-consumer", consumer),
            LIMIT,
        )
    }
}

#[test]
fn the_seed_consumer_on_compat_reads_every_tick_of_the_python_producer() {
    let _serial = serial();
    for consumer_listens in [true, false] {
        let (producer, consumer) = seed_ticks(consumer_listens);
        assert_eq!(producer.field("sent"), TICKS);
        let summary = consumer.json();
        assert_eq!(summary["received"], TICKS, "{summary}");
        assert_eq!(summary["bids"], TICKS / 2, "{summary}");
        assert_eq!(summary["asks"], TICKS / 2, "{summary}");
        assert_eq!(summary["other"], 0, "{summary}");
        assert_eq!(summary["malformed"], 0, "{summary}");
    }
}

#[test]
fn a_batching_producer_on_compat_feeds_the_python_consumer_through_back_pressure() {
    let _serial = serial();
    for producer_listens in [false, true] {
        let socket = socket_path("compat-batch");
        let path = socket.to_str().unwrap();
        // 32 KiB holds ~100 of the largest slots (upstream's consumer needs 33): small enough
        // that the producer finds it full and must back off.
        let capacity = (32 * 1024).to_string();
        let mut consumer = python_script("consumer.py");
        consumer.args([
            "--socket",
            path,
            role(!producer_listens),
            "--mode",
            "pattern",
        ]);
        consumer.args(["--capacity", &capacity]);
        let mut producer = command(
            compat_program("compat-batch-producer"),
            &["--socket", path, "--count", "200000", "--max-size", "256"],
        );
        producer.args(["--capacity", &capacity]);
        if producer_listens {
            producer.arg("--listen");
        }
        let (producer, consumer) = if producer_listens {
            run_pair(
                &socket,
                ("compat-batch-producer", producer),
                ("consumer.py", consumer),
                LIMIT,
            )
        } else {
            let (consumer, producer) = run_pair(
                &socket,
                ("consumer.py", consumer),
                ("compat-batch-producer", producer),
                LIMIT,
            );
            (producer, consumer)
        };
        assert_eq!(assert_delivered(&producer, &consumer), 200_000);
        assert!(
            producer.field("full_retries") > 0,
            "the ring never filled, so back-pressure went untested: {}",
            producer.stdout
        );
    }
}

#[test]
fn a_python_caller_gets_every_reply_from_a_compat_callee() {
    let _serial = serial();
    let socket = socket_path("compat-callee");
    let path = socket.to_str().unwrap();
    let mut caller = python_script("rpc_caller.py");
    caller.args(["--socket", path, "--count", "5000", "--sizes", "1..4096"]);
    let (callee, caller) = run_pair(
        &socket,
        (
            "compat-rpc-callee",
            command(compat_program("compat-rpc-callee"), &["--socket", path]),
        ),
        ("rpc_caller.py", caller),
        LIMIT,
    );
    assert_eq!(caller.field("calls"), 5000);
    assert_eq!(caller.field("bad"), 0);
    assert_eq!(callee.field("served"), 5001);
}

#[test]
fn a_compat_caller_gets_every_reply_from_a_python_callee() {
    let _serial = serial();
    let socket = socket_path("compat-caller");
    let path = socket.to_str().unwrap();
    let mut callee = python_script("rpc_callee.py");
    callee.args(["--socket", path]);
    let (callee, caller) = run_pair(
        &socket,
        ("rpc_callee.py", callee),
        (
            "compat-rpc-caller",
            command(
                compat_program("compat-rpc-caller"),
                &["--socket", path, "--count", "5000", "--max-size", "4096"],
            ),
        ),
        LIMIT,
    );
    assert_eq!(caller.field("calls"), 5000);
    assert_eq!(caller.field("bad"), 0);
    assert_eq!(callee.field("served"), 5001);
}

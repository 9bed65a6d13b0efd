//! tachyon-top against live buses: the real tachyon-ipc 0.5.1 Python package on one end (or
//! both), our binaries or an in-process `Bus` on the other.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use tachyon_itest::{Proc, command, python_script, rust_bin, serial, wait_for_socket};

/// The real Python producer into our `tachyon-consumer`: one ring, both pids, the label, the
/// capacity, the cursors of the 100 ticks sent, and which end each process is (our consumer
/// is recognised sleeping on the ring's futex word).
#[test]
fn python_producer_into_our_consumer_is_one_ring_with_both_processes() {
    let _serial = serial();
    let socket = socket("py-into-ours");
    let (consumer, producer) = python_into_ours(&socket, 1 << 20, 100);
    let first = wait_for_pair(&socket, &[consumer.pid(), producer.pid()], &[]);
    let ring = &rings(&first)[0];
    assert_eq!(ring["label"], socket.to_str().unwrap());
    assert_eq!(ring["socket_path"], socket.to_str().unwrap());
    assert_eq!(ring["kind"], "spsc");
    assert_eq!(ring["error"], serde_json::Value::Null);
    let state = &ring["ring"];
    assert_eq!(state["capacity"], 1 << 20);
    assert_eq!(state["state"], "ready");
    // 100 ticks of 32 bytes: 128-byte slots, all consumed (ours returns space when empty).
    let done = wait_for(Duration::from_secs(20), "the 100 ticks consumed", || {
        let snapshot = snapshot(&socket, &[]);
        let state = rings(&snapshot)[0]["ring"].clone();
        (state["tail"] == 100 * 128).then_some(snapshot)
    });
    let ring = &rings(&done)[0];
    assert_eq!(ring["ring"]["head"], 100 * 128);
    assert_eq!(ring["ring"]["fill_bytes"], 0);
    assert_eq!(ring["ring"]["consumer"]["implementation"], "tachyon-ring");
    assert_eq!(ring["alarms"], serde_json::json!([]));
    // The Python package keeps its memfd open: found by fd (and by its mapping).
    let python = process(ring, producer.pid());
    assert!(
        python["found_by"]
            .as_array()
            .unwrap()
            .contains(&"fd".into()),
        "{python}"
    );
    assert!(
        python["comm"].as_str().unwrap().starts_with("python"),
        "{python}"
    );
    // So does ours, one fd per ring end: found both ways.
    let ours = process(ring, consumer.pid());
    assert_eq!(ours["comm"], "tachyon-consume");
    assert_eq!(
        ours["found_by"],
        serde_json::json!(["fd", "maps"]),
        "{ours}"
    );
    // The idle consumer sleeps on the word at offset 384: that tells the ends apart.
    let ended = wait_for(Duration::from_secs(20), "the ends told apart", || {
        let snapshot = snapshot(&socket, &[]);
        let ring = rings(&snapshot)[0].clone();
        (process(&ring, consumer.pid())["end"] == "consumer").then_some(ring)
    });
    assert_eq!(process(&ended, producer.pid())["end"], "producer");

    // Filters: by pid (either end), by a glob, and ones that match nothing.
    let by_pid = run_top(
        &[
            "--json",
            "--interval",
            "0.1",
            "--pid",
            &producer.pid().to_string(),
        ],
        0,
    );
    assert!(by_pid.contains(socket.to_str().unwrap()), "{by_pid}");
    let glob = format!(
        "{}*",
        &socket.to_str().unwrap()[..socket.to_str().unwrap().len() - 6]
    );
    let globbed = snapshot(std::path::Path::new(&glob), &[]);
    assert_eq!(rings(&globbed).len(), 1, "{globbed}");
    let other = run_top(
        &["--json", "--interval", "0.1", "--label", "/nonexistent/*"],
        0,
    );
    assert!(!other.contains(socket.to_str().unwrap()), "{other}");
    drop((consumer, producer));
}

/// Our producer example into the real Python consumer, with `--peek`: the messages the
/// Python consumer has not released yet (it publishes its tail every 32) are walked and
/// counted by type id; our producer's consumer is "other".
#[test]
fn our_producer_into_the_python_consumer_is_seen_and_peeked() {
    let _serial = serial();
    let socket = socket("ours-into-py");
    let consumer = python_consumer_listening(&socket);
    let producer = Proc::spawn(
        "producer",
        command(
            rust_bin("producer"),
            &[
                "--connect",
                "--socket",
                socket.to_str().unwrap(),
                "--count",
                "100000",
                "--size",
                "64",
                "--flush-each",
                "--pause-after",
                "100",
                "--pause-ms",
                "60000",
            ],
        ),
    );
    wait_for_pair(&socket, &[consumer.pid(), producer.pid()], &[]);
    let snapshot = wait_for(
        Duration::from_secs(20),
        "the 100 messages published",
        || {
            let snapshot = snapshot(&socket, &["--peek"]);
            (rings(&snapshot)[0]["ring"]["head"] == 100 * 128).then_some(snapshot)
        },
    );
    let ring = &rings(&snapshot)[0];
    let state = &ring["ring"];
    assert_eq!(state["consumer"]["implementation"], "other");
    // Upstream's consumer released 96 of 100 (every 32): 4 slots of 128 bytes pending.
    let fill = state["fill_bytes"].as_u64().unwrap();
    assert_eq!(fill % 128, 0, "{state}");
    let pending = fill / 128;
    let peek = &state["peek"];
    assert_eq!(peek["pending_messages"], pending, "{peek}");
    assert_eq!(peek["error"], serde_json::Value::Null);
    // Message i has type 1 + i % 1000: the pending ones are the last `pending` of 100.
    let expected: serde_json::Map<String, serde_json::Value> = (100 - pending..100)
        .map(|i| ((1 + i).to_string(), serde_json::json!(1)))
        .collect();
    assert_eq!(
        peek["type_counts"],
        serde_json::Value::Object(expected),
        "{peek}"
    );
    if pending > 0 {
        assert_eq!(peek["mean_slot_bytes"], 128.0);
    }
    drop((consumer, producer));
}

/// The real Python callee and our caller example: two rings with one label, paired as the
/// request and reply rings of one RPC bus, each listing both processes.
#[test]
fn an_rpc_bus_is_two_paired_rings_with_both_processes() {
    let _serial = serial();
    let socket = socket("rpc");
    let mut callee = python_script("rpc_callee.py");
    callee.args(["--socket", socket.to_str().unwrap()]);
    let callee = Proc::spawn("python callee", callee);
    wait_for_socket(&socket, Duration::from_secs(30));
    let mut caller = python_script("rpc_caller.py");
    caller.args([
        "--socket",
        socket.to_str().unwrap(),
        "--count",
        "100000000",
        "--sizes",
        "1..64",
    ]);
    let caller = Proc::spawn("python caller", caller);
    let mut want = vec![u64::from(callee.pid()), u64::from(caller.pid())];
    want.sort_unstable();
    let snapshot = wait_for(Duration::from_secs(30), "both rings with both pids", || {
        let snapshot = snapshot(&socket, &[]);
        let found = rings(&snapshot);
        (found.len() == 2 && found.iter().all(|r| pids(r) == want)).then_some(snapshot)
    });
    let found = rings(&snapshot);
    let kinds: Vec<&str> = found.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"rpc-requests") && kinds.contains(&"rpc-replies"),
        "{kinds:?}"
    );
    assert_eq!(found[0]["pair"], found[1]["id"]);
    assert_eq!(found[1]["pair"], found[0]["id"]);
    for ring in found {
        assert_eq!(ring["label"], socket.to_str().unwrap());
        assert_eq!(ring["ring"]["capacity"], 1 << 20);
        assert_eq!(ring["ring"]["state"], "ready");
    }
    drop((callee, caller));
}

/// A paused (SIGSTOP) consumer: the real producer keeps sending until the ring is full; the
/// ring shows its fill, the stalled alarm, and `--check` fails naming it.
#[test]
fn a_paused_consumer_is_stalled_and_fails_the_check() {
    let _serial = serial();
    let socket = socket("stalled");
    let consumer = our_consumer_listening(&socket, 65536);
    let producer = python_producer_connecting(
        &socket,
        &["--count", "100000000", "--retry-full", "--gap-us", "20..20"],
    );
    wait_for_pair(&socket, &[consumer.pid(), producer.pid()], &[]);
    let healthy = snapshot(&socket, &["--stall-after", "0.5"]);
    assert_eq!(
        alarms(&rings(&healthy)[0]),
        Vec::<String>::new(),
        "{healthy}"
    );
    consumer.signal(Signal::SIGSTOP);
    let stalled = wait_for(Duration::from_secs(20), "the stalled alarm", || {
        let snapshot = snapshot(&socket, &["--interval", "1", "--stall-after", "1"]);
        let ring = rings(&snapshot)[0].clone();
        alarms(&ring)
            .contains(&"stalled".to_string())
            .then_some(ring)
    });
    let state = &stalled["ring"];
    assert!(state["fill_ratio"].as_f64().unwrap() > 0.9, "{state}");
    assert_eq!(state["full"], true, "{state}");
    assert!(state["tail_still_s"].as_f64().unwrap() >= 1.0, "{state}");
    let label = socket.to_str().unwrap();
    let check = run_top(
        &[
            "--check",
            "--interval",
            "0.5",
            "--stall-after",
            "1",
            "--label",
            label,
        ],
        1,
    );
    assert!(check.contains(&format!("STALLED: {label}")), "{check}");
    consumer.signal(Signal::SIGCONT);
    drop((consumer, producer));
}

/// An in-process `Bus` of ours (the test process is the consumer) fed by the real producer;
/// the test corrupts a slot through the producer's memfd, our consumer marks the ring fatal,
/// and tachyon-top shows `fatal` and fails `--check`.
#[test]
fn a_corrupted_ring_is_fatal() {
    let _serial = serial();
    let socket = socket("fatal");
    let listening = {
        let socket = socket.clone();
        std::thread::spawn(move || tachyon_ring::Bus::listen(&socket, 1 << 16))
    };
    wait_for_socket(&socket, Duration::from_secs(20));
    let producer = python_producer_connecting(
        &socket,
        &[
            "--count",
            "1000",
            "--pause-after",
            "3",
            "--pause-ms",
            "60000",
        ],
    );
    let bus = listening.join().unwrap().expect("the producer connects");
    let mut consumer = bus.into_consumer();
    for _ in 0..3 {
        consumer
            .recv_timeout(Duration::from_secs(20))
            .expect("a tick from the real producer");
    }
    let me = std::process::id();
    let attached = wait_for_pair(&socket, &[me, producer.pid()], &[]);
    assert_eq!(rings(&attached)[0]["ring"]["state"], "ready");

    // Corrupt: a slot whose reserved_size is not a multiple of 64, published at the head.
    let memfd = std::fs::read_dir(format!("/proc/{}/fd", producer.pid()))
        .unwrap()
        .flatten()
        .find(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| {
                link.to_string_lossy() == format!("/memfd:{} (deleted)", socket.display())
            })
        })
        .expect("the Python producer holds the ring's memfd");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(memfd.path())
        .unwrap();
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 128).unwrap();
    let head = u64::from_ne_bytes(head);
    let slot = 768 + head % (1 << 16);
    let mut header = [0u8; 64];
    header[8..12].copy_from_slice(&100u32.to_ne_bytes()); // reserved_size 100
    file.write_all_at(&header, slot).unwrap();
    file.write_all_at(&(head + 128).to_ne_bytes(), 128).unwrap();
    let error = consumer
        .recv_timeout(Duration::from_secs(5))
        .expect_err("the corrupt slot is refused");
    assert!(matches!(error, tachyon_ring::Error::Corrupt(_)), "{error}");

    let fatal = snapshot(&socket, &[]);
    let ring = &rings(&fatal)[0];
    assert_eq!(ring["ring"]["state"], "fatal", "{ring}");
    assert_eq!(ring["ring"]["state_code"], 4);
    assert!(alarms(ring).contains(&"fatal".to_string()), "{ring}");
    let label = socket.to_str().unwrap();
    let check = run_top(&["--check", "--interval", "0.1", "--label", label], 1);
    assert!(check.contains(&format!("FATAL: {label}")), "{check}");
    drop((consumer, producer));
}

/// Our producer dies (SIGKILL) under the real Python consumer, which cannot notice (the
/// package has no peer-death detection): tachyon-top calls the ring orphaned, and a
/// `--watch` that saw the producer names it as exited.
#[test]
fn a_vanished_peer_leaves_an_orphaned_ring() {
    let _serial = serial();
    let socket = socket("orphan");
    let consumer = python_consumer_listening(&socket);
    let label = socket.to_str().unwrap().to_string();
    let producer = Proc::spawn(
        "producer",
        command(
            rust_bin("producer"),
            &[
                "--connect",
                "--socket",
                &label,
                "--count",
                "1000",
                "--pause-after",
                "10",
                "--pause-ms",
                "3000",
                "--die-after",
                "11",
            ],
        ),
    );
    wait_for_pair(&socket, &[consumer.pid(), producer.pid()], &[]);
    let watch = Proc::spawn(
        "tachyon-top --watch",
        command(
            env!("CARGO_BIN_EXE_tachyon-top"),
            &[
                "--watch",
                "--interval",
                "0.5",
                "--count",
                "14",
                "--label",
                &label,
            ],
        ),
    );
    let finished = producer.finish(Duration::from_secs(30));
    assert!(!finished.status.success(), "the producer kills itself");
    let orphaned = snapshot(&socket, &[]);
    let ring = &rings(&orphaned)[0];
    assert_eq!(pids(ring), vec![u64::from(consumer.pid())]);
    assert_eq!(alarms(ring), vec!["orphaned".to_string()], "{ring}");
    let message = ring["alarms"][0]["message"].as_str().unwrap();
    assert!(message.contains("nobody listens at"), "{message}");
    let check = run_top(&["--check", "--interval", "0.1", "--label", &label], 1);
    assert!(check.contains(&format!("ORPHANED: {label}")), "{check}");
    // The watch saw both, then one: it names the producer's pid as exited.
    let watched = watch.finish(Duration::from_secs(30));
    watched.assert_success();
    let last: serde_json::Value =
        serde_json::from_str(watched.stdout.lines().last().unwrap()).unwrap();
    let message = last["rings"][0]["alarms"][0]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        message.contains("exited") && message.contains("(producer)"),
        "{last}"
    );
    assert_eq!(watched.stdout.lines().count(), 14);
    drop(consumer);
}

/// Memfds named like rings that are not (zeros; a header announcing more than the file
/// holds; a ring that is not sealed against shrinking) give rows with errors, and tachyon-top
/// neither crashes nor maps them.
#[test]
fn files_that_are_not_rings_give_error_rows() {
    let _serial = serial();
    let prefix = format!("/tmp/tachyon-top-bad-{}", std::process::id());
    let memfd = |suffix: &str, size: i64, header: bool, seal: bool| {
        use nix::fcntl::{FcntlArg, SealFlag, fcntl};
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create(
            format!("{prefix}-{suffix}").as_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .unwrap();
        nix::unistd::ftruncate(&fd, size).unwrap();
        let file = std::fs::File::from(fd);
        if header {
            let mut bytes = [0u8; 768];
            for (offset, value) in [(0, 0x5441_4348u32), (4, 4), (8, 1 << 20), (12, 64), (16, 2)] {
                bytes[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
            }
            file.write_all_at(&bytes, 0).unwrap();
        } else {
            (&file).write_all(b"just some bytes").unwrap();
        }
        if seal {
            fcntl(&file, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).unwrap();
        }
        file
    };
    let _files = [
        memfd("zeros.sock", 4096, false, true),
        memfd("truncated.sock", 4096, true, true),
        memfd("unsealed.sock", 768 + (1 << 20), true, false),
        memfd("short.sock", 100, false, true),
    ];
    let snapshot = snapshot(std::path::Path::new(&format!("{prefix}-*")), &[]);
    let errors: std::collections::BTreeMap<String, String> = rings(&snapshot)
        .iter()
        .map(|r| {
            assert_eq!(r["ring"], serde_json::Value::Null, "{r}");
            assert_eq!(pids(r), vec![u64::from(std::process::id())]);
            (
                r["label"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches(&prefix)
                    .to_string(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors["-zeros.sock"].starts_with("not a tachyon ring: magic"),
        "{errors:?}"
    );
    assert!(
        errors["-truncated.sock"].starts_with("truncated: the memfd holds 4096 bytes, 1049344"),
        "{errors:?}"
    );
    assert!(
        errors["-unsealed.sock"].contains("not sealed against shrinking"),
        "{errors:?}"
    );
    assert!(
        errors["-short.sock"].starts_with("truncated: the memfd holds 100 bytes, 768"),
        "{errors:?}"
    );
    // Errors are warnings for --check, not alarms.
    let check = run_top(
        &[
            "--check",
            "--interval",
            "0.1",
            "--label",
            &format!("{prefix}-*"),
        ],
        0,
    );
    assert_eq!(
        check.matches(&format!("WARNING: {prefix}-")).count(),
        4,
        "{check}"
    );
}

/// `--prometheus FILE` and `--listen ADDR` expose one ring's metrics, labelled.
#[test]
fn prometheus_exposition_in_a_file_and_over_http() {
    let _serial = serial();
    let socket = socket("prometheus");
    let (consumer, producer) = python_into_ours(&socket, 1 << 16, 10);
    wait_for_pair(&socket, &[consumer.pid(), producer.pid()], &[]);
    let label = socket.to_str().unwrap();
    let file = std::env::temp_dir().join(format!("tachyon-top-{}.prom", std::process::id()));
    run_top(
        &[
            "--prometheus",
            file.to_str().unwrap(),
            "--interval",
            "0.1",
            "--label",
            label,
        ],
        0,
    );
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let capacity = text
        .lines()
        .find(|l| l.starts_with("tachyon_ring_capacity_bytes{") && l.contains(label))
        .unwrap_or_else(|| panic!("no capacity line for {label}:\n{text}"));
    assert!(capacity.ends_with(" 65536.0"), "{capacity}");
    assert!(capacity.contains("kind=\"spsc\""), "{capacity}");
    assert!(text.contains("alarm=\"stalled\"} 0"), "{text}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let server = Proc::spawn(
        "tachyon-top --listen",
        command(
            env!("CARGO_BIN_EXE_tachyon-top"),
            &["--listen", &address, "--interval", "0.2", "--label", label],
        ),
    );
    let body = wait_for(Duration::from_secs(20), "/metrics with the ring", || {
        let mut stream = std::net::TcpStream::connect(&address).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response
            .contains(&format!("label=\"{label}\""))
            .then_some(response)
    });
    assert!(
        body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"),
        "{body}"
    );
    assert!(body.contains("tachyon_ring_processes{"), "{body}");
    server.signal(Signal::SIGINT);
    let stopped = server.finish(Duration::from_secs(10));
    assert_eq!(stopped.status.code(), Some(130), "{stopped:?}");
    drop((consumer, producer));
}

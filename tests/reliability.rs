//! Beyond upstream: peer-death detection, access control, the socket path, and signals,
//! against the real Python package where a peer is involved, and Rust peers too.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tachyon_itest::{
    Proc, against_listener, command, python_script, role, run_pair, rust_bin, serial, socket_path,
    wait_for_socket, world_executable,
};

const LIMIT: Duration = Duration::from_secs(120);

/// `tachyon-consumer --json` and `producer.py`, the consumer started first in its role.
fn market(consumer_listens: bool, producer_args: &[&str]) -> (Proc, Proc) {
    let socket = socket_path("death");
    let path = socket.to_str().unwrap();
    let consumer = command(
        rust_bin("tachyon-consumer"),
        &["--json", "--socket", path, role(consumer_listens)],
    );
    let mut producer = python_script("producer.py");
    producer
        .args(["--socket", path, role(!consumer_listens)])
        .args(producer_args);
    if consumer_listens {
        let consumer = Proc::spawn("tachyon-consumer", consumer);
        wait_for_socket(&socket, LIMIT);
        (consumer, Proc::spawn("producer.py", producer))
    } else {
        let producer = Proc::spawn("producer.py", producer);
        wait_for_socket(&socket, LIMIT);
        (Proc::spawn("tachyon-consumer", consumer), producer)
    }
}

#[test]
fn a_killed_python_producer_is_noticed_in_both_arrangements() {
    let _serial = serial();
    for consumer_listens in [true, false] {
        let (mut consumer, producer) = market(
            consumer_listens,
            &["--count", "100000000", "--no-timestamp", "--retry-full"],
        );
        // Once the stream runs (the first progress line), kill -9 the producer mid-stream.
        consumer.wait_for_stderr("tachyon-consumer: received", LIMIT);
        let pid = producer.pid();
        producer.signal(Signal::SIGKILL);
        let killed_at = Instant::now();
        let consumer = consumer.finish(LIMIT);
        let noticed_after = killed_at.elapsed();
        eprintln!("consumer noticed the producer's death after {noticed_after:?}");
        assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
        // The README's bound: a dead peer is noticed within 250 ms (a 50 ms check interval,
        // a nap of at most 50 ms, and the process's exit).
        assert!(
            noticed_after < Duration::from_millis(250),
            "the producer's death was noticed after {noticed_after:?}"
        );
        assert!(
            consumer.stderr.contains(&format!(
                "the producer (pid {pid}) exited before its sentinel"
            )),
            "{}",
            consumer.stderr
        );
        assert!(consumer.field("received") > 0);
        let producer = producer.finish(LIMIT);
        assert_eq!(
            producer.status.signal(),
            Some(9),
            "the producer was not the one killed: {producer:?}"
        );
    }
}

#[test]
fn everything_a_dead_python_producer_published_is_delivered_first() {
    let _serial = serial();
    for consumer_listens in [true, false] {
        // The producer flushes 12,345 ticks, then SIGKILLs itself.
        let (consumer, producer) = market(
            consumer_listens,
            &["--count", "1000000", "--die-after", "12345", "--retry-full"],
        );
        let consumer = consumer.finish(LIMIT);
        assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
        let summary = consumer.json();
        assert_eq!(summary["received"], 12345, "{summary}");
        assert_eq!(summary["bids"], 6173, "{summary}");
        assert_eq!(summary["asks"], 6172, "{summary}");
        assert!(
            consumer.stderr.contains("received 12345 messages"),
            "{}",
            consumer.stderr
        );
        let producer = producer.finish(LIMIT);
        assert_eq!(producer.status.signal(), Some(9), "{producer:?}");
    }
}

#[test]
fn rust_peers_notice_each_others_death() {
    let _serial = serial();
    // A Rust producer that dies after 5,000 flushed messages: the consumer gets all 5,000.
    let socket = socket_path("rdeath");
    let path = socket.to_str().unwrap();
    let dying = [
        "--listen",
        "--socket",
        path,
        "--count",
        "100000",
        "--die-after",
        "5000",
    ];
    let consumer = against_listener(
        &socket,
        ("producer", command(rust_bin("producer"), &dying)),
        (
            "consumer",
            command(rust_bin("consumer"), &["--connect", "--socket", path]),
        ),
        LIMIT,
    );
    assert_eq!(consumer.status.code(), Some(2), "{consumer:?}");
    assert!(
        consumer.stderr.contains("has exited (5000 messages"),
        "{}",
        consumer.stderr
    );

    // A producer waiting for space whose consumer (Rust, then the real Python one) dies: it
    // stops waiting and says so. (64 KiB: upstream's consumer needs room for 33 messages.)
    for python_consumer in [false, true] {
        let socket = socket_path("cdeath");
        let path = socket.to_str().unwrap();
        let producer = Proc::spawn(
            "producer",
            command(
                rust_bin("producer"),
                &[
                    "--listen",
                    "--socket",
                    path,
                    "--capacity",
                    "65536",
                    "--count",
                    "10000000",
                    "--size",
                    "100",
                ],
            ),
        );
        wait_for_socket(&socket, LIMIT);
        let mut consumer_cmd = if python_consumer {
            python_script("consumer.py")
        } else {
            command(rust_bin("consumer"), &[])
        };
        consumer_cmd.args(["--connect", "--socket", path, "--die-after", "1000"]);
        let consumer = Proc::spawn("consumer", consumer_cmd);
        let consumer_pid = consumer.pid();
        let producer = producer.finish(LIMIT);
        drop(consumer);
        assert_eq!(producer.status.code(), Some(1), "{producer:?}");
        assert!(
            producer
                .stderr
                .contains(&format!("peer process {consumer_pid} has exited")),
            "{}",
            producer.stderr
        );
    }
}

/// The socket file must never be reachable with wider permissions: it appears at its path as a
/// link (or rename) of a socket already `0600`, never by a bind there followed by a chmod (the
/// path sees no attribute change after it appears), and no socket may be bound anywhere else in
/// the directory. Watched with inotify, so even a chmod a microsecond after the bind is seen
/// (polling `stat` could miss it).
#[test]
fn the_socket_is_0600_from_the_moment_it_appears() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent};
    fn named(event: InotifyEvent) -> (String, AddWatchFlags) {
        let name = event.name.map(|n| n.to_string_lossy().into_owned());
        (name.unwrap_or_default(), event.mask)
    }
    let _serial = serial();
    for round in 0..20 {
        let dir = std::env::temp_dir().join(format!("tachyon-mode-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let socket = dir.join("market.sock");
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        inotify
            .add_watch(
                &dir,
                AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ATTRIB,
            )
            .unwrap();
        let listener = Proc::spawn(
            "consumer",
            command(
                rust_bin("consumer"),
                &["--listen", "--socket", socket.to_str().unwrap()],
            ),
        );
        let deadline = Instant::now() + LIMIT;
        let mut seen = Vec::new();
        // Until the socket has arrived and the directory holds nothing else (the listener
        // cleaned up whatever it staged).
        loop {
            match inotify.read_events() {
                Ok(events) => seen.extend(events.into_iter().map(named)),
                Err(nix::errno::Errno::EAGAIN) => std::thread::yield_now(),
                Err(err) => panic!("inotify: {err}"),
            }
            let entries: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|entry| entry.file_name())
                .collect();
            if entries.len() == 1 && entries[0] == "market.sock" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the socket never settled: {entries:?}"
            );
        }
        // Events queued before the listing above are still unread.
        while let Ok(events) = inotify.read_events() {
            seen.extend(events.into_iter().map(named));
        }
        let mode = std::fs::symlink_metadata(&socket)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(mode, 0o600, "socket mode {mode:o}");
        for (name, mask) in &seen {
            if name == "market.sock" {
                // One event per arrival: `link` reports a create, `rename` a move; a chmod after
                // the socket appeared would add an attribute event under the same name.
                assert!(
                    *mask == AddWatchFlags::IN_CREATE || *mask == AddWatchFlags::IN_MOVED_TO,
                    "the socket path saw {mask:?} (events: {seen:?})"
                );
            } else {
                // Only a private staging directory may be made beside it.
                assert!(
                    mask.contains(AddWatchFlags::IN_ISDIR),
                    "{name:?} appeared beside the socket with {mask:?}: a socket bound where \
                     others can reach it (events: {seen:?})"
                );
            }
        }
        assert!(
            seen.iter().any(|(name, _)| name == "market.sock"),
            "the socket's arrival was not seen: {seen:?}"
        );
    }
}

#[test]
fn only_admitted_uids_get_the_ring() {
    let _serial = serial();
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs connectors as uids 65533 and 65534 and must run as root (it does in CI)"
    );
    // The listener admits uid 65533 besides its own: its socket file is 0666 so others can
    // reach it, and the SO_PEERCRED check must refuse uid 65534 before sending any fd.
    let socket = socket_path("uid");
    let path = socket.to_str().unwrap();
    let listener = Proc::spawn(
        "consumer",
        command(
            rust_bin("consumer"),
            &[
                "--listen",
                "--socket",
                path,
                "--allow-uid",
                "65533",
                "--idle-timeout",
                "20s",
            ],
        ),
    );
    wait_for_socket(&socket, LIMIT);
    let as_uid = |uid: u32| {
        let mut producer = command(
            world_executable("producer"),
            &["--connect", "--socket", path, "--count", "10"],
        );
        producer.uid(uid).gid(uid);
        Proc::spawn(&format!("producer as uid {uid}"), producer).finish(LIMIT)
    };
    let stranger = as_uid(65534);
    assert_eq!(stranger.status.code(), Some(1), "{stranger:?}");
    assert!(
        stranger.stderr.contains("received 0 bytes"),
        "{}",
        stranger.stderr
    );
    // The listener is still waiting, and serves the admitted uid.
    as_uid(65533).assert_success();
    let listener = listener.finish(LIMIT);
    listener.assert_success();
    assert_eq!(listener.field("received"), 10);
}

#[test]
fn by_default_only_our_own_uid_can_even_reach_the_socket() {
    let _serial = serial();
    let socket = socket_path("uid0600");
    let path = socket.to_str().unwrap();
    let listener = Proc::spawn(
        "consumer",
        command(rust_bin("consumer"), &["--listen", "--socket", path]),
    );
    wait_for_socket(&socket, LIMIT);
    let mut stranger = command(
        world_executable("producer"),
        &["--connect", "--socket", path, "--count", "10"],
    );
    stranger.uid(65534).gid(65534);
    let stranger = Proc::spawn("producer as uid 65534", stranger).finish(LIMIT);
    drop(listener);
    assert_eq!(stranger.status.code(), Some(1), "{stranger:?}");
    assert!(
        stranger.stderr.contains("Permission denied"),
        "{}",
        stranger.stderr
    );
}

#[test]
fn listen_replaces_a_stale_socket_and_refuses_anything_else() {
    let _serial = serial();
    // A regular file and a directory at the path: refused, untouched.
    let file = socket_path("file");
    std::fs::write(&file, b"precious").unwrap();
    let dir = socket_path("dir");
    std::fs::create_dir(&dir).unwrap();
    let link = socket_path("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    for (path, kind) in [
        (&file, "regular file"),
        (&dir, "directory"),
        (&link, "symbolic link"),
    ] {
        let consumer = Proc::spawn(
            "tachyon-consumer",
            command(
                rust_bin("tachyon-consumer"),
                &["--listen", "--socket", path.to_str().unwrap()],
            ),
        )
        .finish(LIMIT);
        assert_eq!(consumer.status.code(), Some(1), "{consumer:?}");
        assert!(
            consumer
                .stderr
                .contains(&format!("the path holds a {kind}, not a socket")),
            "{}",
            consumer.stderr
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(&link).unwrap();
    assert!(dir.is_dir());
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir(&dir).unwrap();

    // A stale socket (its listener gone): replaced, and the bus works.
    let stale = socket_path("stale");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let (producer, consumer) = run_pair(
        &stale,
        (
            "producer",
            command(
                rust_bin("producer"),
                &[
                    "--listen",
                    "--socket",
                    stale.to_str().unwrap(),
                    "--count",
                    "100",
                ],
            ),
        ),
        (
            "consumer",
            command(
                rust_bin("consumer"),
                &["--connect", "--socket", stale.to_str().unwrap()],
            ),
        ),
        LIMIT,
    );
    assert_eq!(consumer.field("received"), producer.field("sent"));
}

#[test]
fn signals_print_the_summary_and_exit_130_or_143() {
    let _serial = serial();
    // SIGINT while listen still waits for its peer: exit 130, socket file removed.
    let socket = socket_path("sigint");
    let consumer = Proc::spawn(
        "tachyon-consumer",
        command(
            rust_bin("tachyon-consumer"),
            &["--json", "--socket", socket.to_str().unwrap()],
        ),
    );
    wait_for_socket(&socket, LIMIT);
    consumer.signal(Signal::SIGINT);
    let consumer = consumer.finish(LIMIT);
    assert_eq!(consumer.status.code(), Some(130), "{consumer:?}");
    assert!(
        !socket.exists(),
        "the interrupted listener left its socket file behind"
    );
    assert_eq!(consumer.field("received"), 0);

    // SIGTERM mid-stream: the summary so far, exit 143.
    let (mut consumer, producer) = market(
        true,
        &["--count", "100000000", "--no-timestamp", "--retry-full"],
    );
    consumer.wait_for_stderr("tachyon-consumer: received", LIMIT);
    consumer.signal(Signal::SIGTERM);
    let consumer = consumer.finish(LIMIT);
    drop(producer);
    assert_eq!(consumer.status.code(), Some(143), "{consumer:?}");
    assert!(consumer.field("received") > 0, "{}", consumer.stdout);
    assert!(
        consumer.stderr.contains("stopped by signal 15"),
        "{}",
        consumer.stderr
    );
}

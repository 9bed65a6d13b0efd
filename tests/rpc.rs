//! The RPC bus across processes: Rust↔Rust, and against the real tachyon-ipc 0.5.1 RpcBus
//! in both directions (Python caller → `rpc_echo`, `rpc_call` → Python callee and its
//! RpcDispatcher), plus kind mismatches (SPSC meets RPC) both ways.

use std::time::Duration;

use tachyon_itest::{
    Finished, Proc, against_listener, command, python_script, run_pair, rust_bin, serial,
    socket_path, wait_for_socket,
};

const LIMIT: Duration = Duration::from_secs(180);

fn echo(path: &str, cap: usize) -> std::process::Command {
    let cap = cap.to_string();
    command(
        rust_bin("rpc_echo"),
        &["--socket", path, "--cap-fwd", &cap, "--cap-rev", &cap],
    )
}

fn call(path: &str, args: &[&str]) -> std::process::Command {
    let mut command = command(rust_bin("rpc_call"), &["--socket", path]);
    command.args(args);
    command
}

/// Runs `callee` (listening) and `caller`; checks the caller saw no bad reply.
fn calls(
    socket: &std::path::Path,
    callee: (&str, std::process::Command),
    caller: (&str, std::process::Command),
) -> (Finished, Finished) {
    let (callee, caller) = run_pair(socket, callee, caller, LIMIT);
    assert_eq!(
        caller.field("bad"),
        0,
        "{}: {}\n{}",
        caller.name,
        caller.stdout,
        caller.stderr
    );
    (callee, caller)
}

#[test]
fn rust_to_rust_every_size_from_0_to_the_largest_that_fits() {
    let _serial = serial();
    // 16 KiB rings: requests and replies of every size 0..=16320, the last filling a ring.
    let socket = socket_path("rpc-all");
    let path = socket.to_str().unwrap();
    let (callee, caller) = calls(
        &socket,
        ("rpc_echo", echo(path, 16384)),
        (
            "rpc_call",
            call(path, &["--count", "16321", "--sweep", "0..16320"]),
        ),
    );
    assert_eq!(caller.field("calls"), 16321);
    assert_eq!(callee.field("served"), 16322);
}

#[test]
fn rust_to_rust_random_sizes() {
    let _serial = serial();
    let socket = socket_path("rpc-rand");
    let path = socket.to_str().unwrap();
    let (_, caller) = calls(
        &socket,
        ("rpc_echo", echo(path, 65536)),
        (
            "rpc_call",
            call(
                path,
                &["--count", "20000", "--sizes", "0..3000", "--seed", "9"],
            ),
        ),
    );
    assert_eq!(caller.field("calls"), 20000);
}

#[test]
fn an_spsc_end_meeting_an_rpc_end_is_an_abi_mismatch_both_ways() {
    let _serial = serial();
    // SPSC connector → RPC listener.
    let socket = socket_path("kind1");
    let path = socket.to_str().unwrap();
    let callee = Proc::spawn("rpc_echo", echo(path, 4096));
    wait_for_socket(&socket, LIMIT);
    let consumer = Proc::spawn(
        "consumer",
        command(rust_bin("consumer"), &["--connect", "--socket", path]),
    )
    .finish(LIMIT);
    drop(callee);
    assert_eq!(consumer.status.code(), Some(2), "{consumer:?}");
    assert!(
        consumer
            .stderr
            .contains("an SPSC connector met an RPC listener"),
        "{}",
        consumer.stderr
    );

    // RPC connector → SPSC listener.
    let socket = socket_path("kind2");
    let path = socket.to_str().unwrap();
    let producer = Proc::spawn(
        "producer",
        command(rust_bin("producer"), &["--listen", "--socket", path]),
    );
    wait_for_socket(&socket, LIMIT);
    let caller = Proc::spawn("rpc_call", call(path, &["--count", "1"])).finish(LIMIT);
    drop(producer);
    assert_eq!(caller.status.code(), Some(2), "{caller:?}");
    assert!(
        caller
            .stderr
            .contains("an RPC connector met an SPSC listener"),
        "{}",
        caller.stderr
    );
}

fn python_callee(path: &str, cap: usize, extra: &[&str]) -> std::process::Command {
    let cap = cap.to_string();
    let mut callee = python_script("rpc_callee.py");
    callee
        .args(["--socket", path, "--cap-fwd", &cap, "--cap-rev", &cap])
        .args(extra);
    callee
}

fn python_caller(path: &str, extra: &[&str]) -> std::process::Command {
    let mut caller = python_script("rpc_caller.py");
    caller.args(["--socket", path]).args(extra);
    caller
}

// Upstream's consumers return space only every 32 messages, so a stream of calls to or from
// the real package must fit 33 of its largest slots: 256 KiB rings take payloads up to 7616
// bytes that way. The largest payload that fits at all (262,080 bytes, one slot filling the
// ring) goes as a single call on fresh rings; after it the Python side cannot free space for
// the closing call, so the test stops that side itself.
const PY_CAP: usize = 256 * 1024;
const LARGEST_CALL: &[&str] = &["--count", "1", "--sweep", "262080..262080", "--no-final"];

/// One call of the largest payload on fresh rings; the callee is stopped afterwards.
fn largest_single_call<'a>(
    callee: impl FnOnce(&str) -> (&'a str, std::process::Command),
    caller: impl FnOnce(&str) -> (&'a str, std::process::Command),
) {
    let socket = socket_path("rpc-max");
    let path = socket.to_str().unwrap();
    let caller = against_listener(&socket, callee(path), caller(path), LIMIT);
    caller.assert_success();
    assert_eq!((caller.field("calls"), caller.field("bad")), (1, 0));
}

#[test]
fn python_caller_against_rpc_echo() {
    let _serial = serial();
    let socket = socket_path("pycall");
    let path = socket.to_str().unwrap();
    let (callee, caller) = calls(
        &socket,
        ("rpc_echo", echo(path, PY_CAP)),
        (
            "rpc_caller.py",
            python_caller(path, &["--count", "7616", "--sweep", "1..7616"]),
        ),
    );
    assert_eq!(caller.field("calls"), 7616);
    assert_eq!(callee.field("served"), 7617);

    largest_single_call(
        |path| ("rpc_echo", echo(path, PY_CAP)),
        |path| ("rpc_caller.py", python_caller(path, LARGEST_CALL)),
    );
}

#[test]
fn rpc_call_against_a_python_callee() {
    let _serial = serial();
    let socket = socket_path("pyserve");
    let path = socket.to_str().unwrap();
    let (callee, caller) = calls(
        &socket,
        ("rpc_callee.py", python_callee(path, PY_CAP, &[])),
        (
            "rpc_call",
            call(path, &["--count", "7616", "--sweep", "1..7616"]),
        ),
    );
    assert_eq!(caller.field("calls"), 7616);
    assert_eq!(callee.field("served"), 7617);

    largest_single_call(
        |path| ("rpc_callee.py", python_callee(path, PY_CAP, &[])),
        |path| ("rpc_call", call(path, LARGEST_CALL)),
    );
}

#[test]
fn rpc_call_against_the_python_dispatcher_with_a_failing_handler() {
    let _serial = serial();
    // Handlers echo with type + 1; the handler of type 13 raises, which upstream's dispatcher
    // answers with message type 0xFFFF.
    let socket = socket_path("pydispatch");
    let path = socket.to_str().unwrap();
    let (callee, caller) = calls(
        &socket,
        (
            "rpc_callee.py --dispatcher",
            python_callee(path, 1 << 20, &["--dispatcher", "--failing-type", "13"]),
        ),
        (
            "rpc_call",
            call(
                path,
                &[
                    "--count",
                    "3000",
                    "--sizes",
                    "1..2000",
                    "--failing-type",
                    "13",
                ],
            ),
        ),
    );
    assert_eq!(caller.field("calls"), 3000);
    assert_eq!(
        callee.field("errors"),
        3,
        "calls 12, 1012 and 2012 have type 13: {}",
        callee.stdout
    );
}

#[test]
fn kind_mismatches_with_the_real_package_both_ways() {
    let _serial = serial();
    let expect_failure = |name: &str,
                          listener: std::process::Command,
                          socket: &std::path::Path,
                          connector: std::process::Command,
                          needle: &str| {
        let connector = against_listener(socket, ("listener", listener), (name, connector), LIMIT);
        assert!(
            !connector.status.success(),
            "{name} succeeded: {connector:?}"
        );
        assert!(
            connector.stderr.contains(needle),
            "{name}: expected {needle:?} in\n{}",
            connector.stderr
        );
    };
    // Python SPSC producer → our RPC listener; Python RPC caller → our SPSC listener.
    let socket = socket_path("mm1");
    let path = socket.to_str().unwrap();
    let mut producer = python_script("producer.py");
    producer.args([
        "--connect",
        "--connect-timeout",
        "0",
        "--socket",
        path,
        "--count",
        "1",
    ]);
    expect_failure(
        "producer.py",
        echo(path, 4096),
        &socket,
        producer,
        "ABI mismatch",
    );
    // Upstream's RPC connector finds one fd where it wants two and says only "Unable to bind,
    // listen, or connect"; that the handshake really happened shows on our side: the listener
    // took the connector's pidfd and reports it gone once the Python process has exited.
    let socket = socket_path("mm2");
    let path = socket.to_str().unwrap();
    let listener = Proc::spawn(
        "consumer",
        command(rust_bin("consumer"), &["--listen", "--socket", path]),
    );
    wait_for_socket(&socket, LIMIT);
    let caller = Proc::spawn(
        "rpc_caller.py",
        python_caller(path, &["--connect-timeout", "0", "--count", "1"]),
    );
    let caller_pid = caller.pid();
    let (caller, listener) = (caller.finish(LIMIT), listener.finish(LIMIT));
    assert!(!caller.status.success(), "{caller:?}");
    assert!(
        caller.stderr.contains("ConnectionError"),
        "{}",
        caller.stderr
    );
    assert_eq!(listener.status.code(), Some(2), "{listener:?}");
    assert!(
        listener
            .stderr
            .contains(&format!("peer process {caller_pid} has exited")),
        "{}",
        listener.stderr
    );
    // Our SPSC consumer → Python RPC callee; our RPC caller → Python SPSC producer.
    let socket = socket_path("mm3");
    let path = socket.to_str().unwrap();
    expect_failure(
        "consumer",
        python_callee(path, 4096, &[]),
        &socket,
        command(rust_bin("consumer"), &["--connect", "--socket", path]),
        "an SPSC connector met an RPC listener",
    );
    let socket = socket_path("mm4");
    let path = socket.to_str().unwrap();
    let mut producer = python_script("producer.py");
    producer.args(["--listen", "--socket", path, "--count", "1"]);
    expect_failure(
        "rpc_call",
        producer,
        &socket,
        call(path, &["--count", "1"]),
        "an RPC connector met an SPSC listener",
    );
}

#[test]
fn a_caller_notices_a_killed_python_callee() {
    let _serial = serial();
    // Peer-death detection holds on RPC rings too: upstream's caller would wait forever.
    let socket = socket_path("rpc-death");
    let path = socket.to_str().unwrap();
    let callee = Proc::spawn("rpc_callee.py", python_callee(path, 1 << 20, &[]));
    wait_for_socket(&socket, LIMIT);
    let mut caller = Proc::spawn(
        "rpc_call",
        call(path, &["--count", "100000000", "--sizes", "1..100"]),
    );
    caller.wait_for_stderr("rpc_call: connected to pid", LIMIT);
    let pid = callee.pid();
    callee.signal(nix::sys::signal::Signal::SIGKILL);
    let caller = caller.finish(LIMIT);
    drop(callee);
    assert_eq!(caller.status.code(), Some(2), "{caller:?}");
    assert!(
        caller
            .stderr
            .contains(&format!("peer process {pid} has exited")),
        "{}",
        caller.stderr
    );
}

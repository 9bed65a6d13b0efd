//! The RPC bus across processes: Rust↔Rust, and against the real tachyon-ipc 0.5.1 RpcBus
//! in both directions (Python caller → `rpc_echo`, `rpc_call` → Python callee and its
//! RpcDispatcher), plus kind mismatches (SPSC meets RPC) both ways.

use std::time::Duration;

use tachyon_itest::{
    Finished, Proc, command, python_script, run_pair, rust_bin, serial, socket_path,
    wait_for_socket,
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

//! A Rust callee that drops a request unanswered answers the real package's caller with the
//! error reply its own dispatcher sends for a failing handler.

use std::time::Duration;

use tachyon_itest::{command, python_script, run_pair, rust_bin, serial, socket_path};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_dropped_request_gives_a_python_caller_upstreams_error_reply() {
    let _serial = serial();
    let socket = socket_path("rpc-drop");
    let path = socket.to_str().unwrap();
    let callee = command(
        rust_bin("rpc_echo"),
        &["--socket", path, "--drop-type", "5"],
    );
    let mut caller = python_script("rpc_caller.py");
    caller.args([
        "--socket",
        path,
        "--count",
        "200",
        "--sizes",
        "1..64",
        "--expect-error-type",
        "5",
    ]);
    let (callee, caller) = run_pair(
        &socket,
        ("rpc_echo", callee),
        ("rpc_caller.py", caller),
        LIMIT,
    );
    // Calls i = 4, 1004, ... have msg_type 5: of 200 calls, call 4 only.
    assert_eq!(caller.field("calls"), 200);
    assert_eq!(caller.field("bad"), 0);
    assert_eq!(caller.field("error_replies"), 1);
    assert_eq!(callee.field("served"), 201);
}

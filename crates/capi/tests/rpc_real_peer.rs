//! RPC through the C ABI against the real tachyon-ipc 0.5.1 Python package, both ways: our
//! caller (`tachyon_rpc_connect`, `_call`, `_wait`) against its callee, and our callee
//! (`tachyon_rpc_listen`, `_serve`, `_acquire_reply_tx`, `_commit_reply`) against its caller.
//! The package must be installed (`./just` does it); a missing one fails the test.

mod common;

use std::ffi::CString;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::ptr::{self, null_mut};
use std::time::{Duration, Instant};

use common::{finish, python, socket};
use tachyon::rpc::*;
use tachyon::types::tachyon_error_t::*;
use tachyon::types::tachyon_state_t::*;

const CALLS: u32 = 2_000;

fn python_peer(script: &str, path: &str) -> Child {
    Command::new(python())
        .args(["-c", script, path, &CALLS.to_string()])
        .env_remove("PYTHONPATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python starts")
}

/// The payload of call `i`: 1 to 300 bytes of a pattern.
fn payload(i: u32) -> Vec<u8> {
    (0..1 + (i as usize * 7) % 300)
        .map(|j| (i as usize + j) as u8)
        .collect()
}

const PYTHON_CALLEE: &str = r#"
import sys, tachyon
path, calls = sys.argv[1], int(sys.argv[2])
with tachyon.RpcBus.rpc_listen(path, 1 << 16, 1 << 16) as callee:
    for _ in range(calls):
        with callee.serve() as rx:
            cid, kind = rx.correlation_id, rx.type_id
            with memoryview(rx) as mv:
                data = mv.tobytes()
        callee.reply(cid, data[::-1], msg_type=kind + 1)
print("served", calls)
"#;

#[test]
fn our_c_caller_against_the_real_python_callee() {
    let path = socket("rpc", "py-callee");
    let callee = python_peer(PYTHON_CALLEE, &path);
    let c_path = CString::new(path.clone()).unwrap();
    let give_up = Instant::now() + Duration::from_secs(30);
    let caller = loop {
        let mut rpc = null_mut();
        // SAFETY: a valid path and out-pointer.
        match unsafe { tachyon_rpc_connect(c_path.as_ptr(), &mut rpc) } {
            TACHYON_SUCCESS => break rpc,
            TACHYON_ERR_NETWORK if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => panic!("rpc connect: {other:?}"),
        }
    };
    for i in 0..CALLS {
        let request = payload(i);
        let (mut cid, mut size, mut msg_type) = (0u64, 0usize, 0u32);
        // SAFETY: a live handle and valid pointers; the reply is read before its commit.
        unsafe {
            if i % 2 == 0 {
                assert_eq!(
                    tachyon_rpc_call(
                        caller,
                        request.as_ptr().cast(),
                        request.len(),
                        i % 1000,
                        &mut cid
                    ),
                    TACHYON_SUCCESS
                );
            } else {
                let slot = tachyon_rpc_acquire_tx(caller, request.len()).cast::<u8>();
                assert!(!slot.is_null());
                ptr::copy_nonoverlapping(request.as_ptr(), slot, request.len());
                assert_eq!(
                    tachyon_rpc_commit_call(caller, request.len(), i % 1000, &mut cid),
                    TACHYON_SUCCESS
                );
            }
            assert_eq!(cid, u64::from(i) + 1);
            let reply = tachyon_rpc_wait(caller, cid, &mut size, &mut msg_type, 10_000);
            assert!(!reply.is_null(), "call {i}");
            let data = std::slice::from_raw_parts(reply.cast::<u8>(), size);
            let mut expected = request.clone();
            expected.reverse();
            assert_eq!((msg_type, data), (i % 1000 + 1, &expected[..]), "call {i}");
            assert_eq!(tachyon_rpc_commit_rx(caller), TACHYON_SUCCESS);
        }
    }
    // SAFETY: a live handle.
    unsafe {
        assert_eq!(tachyon_rpc_get_state(caller), TACHYON_STATE_READY);
        tachyon_rpc_destroy(caller);
    }
    let served = String::from_utf8(finish(callee, "the Python callee").stdout).unwrap();
    assert!(served.contains(&format!("served {CALLS}")));
}

const PYTHON_CALLER: &str = r#"
import sys, time, tachyon
path, calls = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while True:
    try:
        caller = tachyon.RpcBus.rpc_connect(path)
        break
    except ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.02)
with caller:
    for i in range(calls):
        request = bytes((i + j) % 256 for j in range(1 + (i * 7) % 300))
        cid = caller.call(request, msg_type=i % 1000)
        assert cid == i + 1, (cid, i)
        with caller.wait(cid) as rx:
            with memoryview(rx) as mv:
                got = mv.tobytes()
            assert rx.type_id == i % 1000 + 1, (rx.type_id, i)
        assert got == bytes(b ^ 0xFF for b in request), i
print("called", calls)
"#;

#[test]
fn our_c_callee_against_the_real_python_caller() {
    let path = socket("rpc", "py-caller");
    let c_path = CString::new(path.clone()).unwrap();
    let listening = std::thread::spawn(move || {
        let mut rpc = null_mut();
        // SAFETY: a valid path and out-pointer.
        let code = unsafe { tachyon_rpc_listen(c_path.as_ptr(), 1 << 16, 1 << 16, &mut rpc) };
        assert_eq!(code, TACHYON_SUCCESS);
        rpc as usize
    });
    while !Path::new(&path).exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let caller = python_peer(PYTHON_CALLER, &path);
    let callee = listening.join().unwrap() as *mut tachyon_rpc_bus_t;
    for i in 0..CALLS {
        let (mut cid, mut msg_type, mut size) = (0u64, 0u32, 0usize);
        // SAFETY: a live handle and valid pointers; the request is read while held, and
        // the reply written in place meanwhile.
        unsafe {
            let request = tachyon_rpc_serve(callee, &mut cid, &mut msg_type, &mut size, 10_000);
            assert!(!request.is_null(), "request {i}");
            assert_eq!((cid, msg_type), (u64::from(i) + 1, i % 1000));
            assert_eq!(
                std::slice::from_raw_parts(request.cast::<u8>(), size),
                &payload(i)[..]
            );
            let reply = tachyon_rpc_acquire_reply_tx(callee, size).cast::<u8>();
            assert!(!reply.is_null());
            for j in 0..size {
                *reply.add(j) = !*request.cast::<u8>().add(j);
            }
            assert_eq!(
                tachyon_rpc_commit_reply(callee, cid, size, msg_type + 1),
                TACHYON_SUCCESS
            );
            assert_eq!(tachyon_rpc_commit_serve(callee), TACHYON_SUCCESS);
        }
    }
    let called = String::from_utf8(finish(caller, "the Python caller").stdout).unwrap();
    assert!(called.contains(&format!("called {CALLS}")));
    // SAFETY: a live handle.
    unsafe { tachyon_rpc_destroy(callee) };
}

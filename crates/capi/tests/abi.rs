//! The C ABI through its C functions: layouts and values, every error path, reference
//! counting, and round trips between two of our ends (SPSC and RPC), in one process.

use std::ffi::{CString, c_void};
use std::mem::{align_of, offset_of, size_of};
use std::ptr::{self, null, null_mut};
use std::time::{Duration, Instant};

use tachyon::bus::*;
use tachyon::rpc::*;
use tachyon::types::tachyon_error_t::*;
use tachyon::types::tachyon_state_t::*;
use tachyon::types::{tachyon_error_t, tachyon_msg_view_t, tachyon_state_t};

/// A raw handle that may cross threads in a test.
struct Send<T>(*mut T);
// SAFETY: the tests hand a handle to one other thread at a time, as the ABI allows.
unsafe impl<T> std::marker::Send for Send<T> {}

fn socket_path(name: &str) -> CString {
    let path = std::env::temp_dir().join(format!("capi-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    CString::new(path.into_os_string().into_encoded_bytes()).unwrap()
}

/// Runs `listen` on a thread while `connect` is retried here for up to 10 s (the listener may
/// not be up yet): the handshake both kinds of pair share. (listener's handle, connector's).
fn listen_and_connect<H: 'static>(
    name: &str,
    what: &str,
    listen: impl FnOnce(&CString, &mut *mut H) -> tachyon_error_t + std::marker::Send + 'static,
    connect: impl Fn(&CString, &mut *mut H) -> tachyon_error_t,
) -> (*mut H, *mut H) {
    let path = socket_path(name);
    let listening = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut handle = null_mut();
            let code = listen(&path, &mut handle);
            assert_eq!(code, TACHYON_SUCCESS);
            Send(handle)
        })
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    let connected = loop {
        let mut handle = null_mut();
        match connect(&path, &mut handle) {
            TACHYON_SUCCESS => break handle,
            _ if Instant::now() < give_up => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("{what}: {other:?}"),
        }
    };
    (listening.join().unwrap().0, connected)
}

/// Listens on a thread and connects here: (listener's handle, connector's handle).
fn spsc_pair(name: &str, capacity: usize) -> (*mut tachyon_bus_t, *mut tachyon_bus_t) {
    listen_and_connect(
        name,
        "connect",
        // SAFETY: a valid path and out-pointer.
        move |path, bus| unsafe { tachyon_bus_listen(path.as_ptr(), capacity, bus) },
        // SAFETY: a valid path and out-pointer.
        |path, bus| unsafe { tachyon_bus_connect(path.as_ptr(), bus) },
    )
}

fn rpc_pair(name: &str) -> (*mut tachyon_rpc_bus_t, *mut tachyon_rpc_bus_t) {
    listen_and_connect(
        name,
        "rpc connect",
        // SAFETY: a valid path and out-pointer.
        |path, rpc| unsafe { tachyon_rpc_listen(path.as_ptr(), 1 << 16, 1 << 16, rpc) },
        // SAFETY: a valid path and out-pointer.
        |path, rpc| unsafe { tachyon_rpc_connect(path.as_ptr(), rpc) },
    )
}

/// Serves one request, spinning up to 100 times, and asserts one came: the start of every
/// callee loop here. (correlation id, message type, size, request).
///
/// # Safety
/// `callee` is a live RPC handle.
unsafe fn serve_one(callee: *mut tachyon_rpc_bus_t) -> (u64, u32, usize, *const c_void) {
    let (mut cid, mut msg_type, mut size) = (0u64, 0u32, 0usize);
    // SAFETY: a live handle (the caller's promise) and valid out-pointers.
    let request = unsafe { tachyon_rpc_serve(callee, &mut cid, &mut msg_type, &mut size, 100) };
    assert!(!request.is_null());
    (cid, msg_type, size, request)
}

/// Sends `payload` as one message through acquire / commit / flush.
fn send(bus: *mut tachyon_bus_t, type_id: u32, payload: &[u8]) {
    // SAFETY: a live handle; the slot has room for the payload.
    unsafe {
        let slot = tachyon_acquire_tx(bus, payload.len()).cast::<u8>();
        assert!(!slot.is_null(), "acquire_tx");
        ptr::copy_nonoverlapping(payload.as_ptr(), slot, payload.len());
        assert_eq!(
            tachyon_commit_tx(bus, payload.len(), type_id),
            TACHYON_SUCCESS
        );
        tachyon_flush(bus);
    }
}

/// Receives one message (blocking) and copies it out.
fn recv(bus: *mut tachyon_bus_t) -> (u32, Vec<u8>) {
    let (mut type_id, mut size) = (0u32, 0usize);
    // SAFETY: a live handle and writable out-pointers; the payload is read before commit.
    unsafe {
        let payload = tachyon_acquire_rx_blocking(bus, &mut type_id, &mut size, 1000);
        assert!(!payload.is_null(), "acquire_rx_blocking");
        let data = std::slice::from_raw_parts(payload.cast::<u8>(), size).to_vec();
        assert_eq!(tachyon_commit_rx(bus), TACHYON_SUCCESS);
        (type_id, data)
    }
}

#[test]
fn layouts_and_values_are_upstreams() {
    assert_eq!(size_of::<tachyon_msg_view_t>(), 32);
    assert_eq!(align_of::<tachyon_msg_view_t>(), 8);
    assert_eq!(offset_of!(tachyon_msg_view_t, ptr), 0);
    assert_eq!(offset_of!(tachyon_msg_view_t, actual_size), 8);
    assert_eq!(offset_of!(tachyon_msg_view_t, reserved_), 16);
    assert_eq!(offset_of!(tachyon_msg_view_t, type_id), 24);
    assert_eq!(offset_of!(tachyon_msg_view_t, padding_), 28);
    assert_eq!(size_of::<tachyon_error_t>(), 4, "a C enum is an int");
    assert_eq!(size_of::<tachyon_state_t>(), 4);
    let errors = [
        (TACHYON_SUCCESS, 0),
        (TACHYON_ERR_NULL_PTR, 1),
        (TACHYON_ERR_MEM, 2),
        (TACHYON_ERR_OPEN, 3),
        (TACHYON_ERR_TRUNCATE, 4),
        (TACHYON_ERR_CHMOD, 5),
        (TACHYON_ERR_SEAL, 6),
        (TACHYON_ERR_MAP, 7),
        (TACHYON_ERR_INVALID_SZ, 8),
        (TACHYON_ERR_FULL, 9),
        (TACHYON_ERR_EMPTY, 10),
        (TACHYON_ERR_NETWORK, 11),
        (TACHYON_ERR_SYSTEM, 12),
        (TACHYON_ERR_INTERRUPTED, 13),
        (TACHYON_ERR_ABI_MISMATCH, 14),
    ];
    for (error, value) in errors {
        assert_eq!(error as u32, value, "{error:?}");
    }
    let states = [
        (TACHYON_STATE_UNINITIALIZED, 0),
        (TACHYON_STATE_INITIALIZING, 1),
        (TACHYON_STATE_READY, 2),
        (TACHYON_STATE_DISCONNECTED, 3),
        (TACHYON_STATE_FATAL_ERROR, 4),
        (TACHYON_STATE_UNKNOWN, 5),
    ];
    for (state, value) in states {
        assert_eq!(state as u32, value, "{state:?}");
    }
}

#[test]
fn the_header_declares_the_36_functions_and_the_types() {
    let functions = [
        "tachyon_memory_barrier_acquire",
        "tachyon_bus_listen",
        "tachyon_bus_connect",
        "tachyon_bus_ref",
        "tachyon_bus_destroy",
        "tachyon_bus_set_numa_node",
        "tachyon_acquire_tx",
        "tachyon_commit_tx",
        "tachyon_rollback_tx",
        "tachyon_acquire_rx",
        "tachyon_acquire_rx_spin",
        "tachyon_acquire_rx_blocking",
        "tachyon_commit_rx",
        "tachyon_acquire_rx_batch",
        "tachyon_drain_batch",
        "tachyon_commit_rx_batch",
        "tachyon_bus_set_polling_mode",
        "tachyon_flush",
        "tachyon_get_state",
        "tachyon_rpc_listen",
        "tachyon_rpc_connect",
        "tachyon_rpc_destroy",
        "tachyon_rpc_call",
        "tachyon_rpc_wait",
        "tachyon_rpc_commit_rx",
        "tachyon_rpc_serve",
        "tachyon_rpc_commit_serve",
        "tachyon_rpc_reply",
        "tachyon_rpc_acquire_tx",
        "tachyon_rpc_commit_call",
        "tachyon_rpc_rollback_call",
        "tachyon_rpc_acquire_reply_tx",
        "tachyon_rpc_commit_reply",
        "tachyon_rpc_rollback_reply",
        "tachyon_rpc_set_polling_mode",
        "tachyon_rpc_get_state",
    ];
    assert_eq!(functions.len(), 36);
    let header = tachyon::HEADER;
    for function in functions {
        assert!(
            header.contains(&format!(" {function}(")) || header.contains(&format!("*{function}(")),
            "{function} missing"
        );
    }
    assert_eq!(header.matches("TACHYON_NOEXCEPT;").count(), 36);
    for declaration in [
        "typedef struct tachyon_bus_t tachyon_bus_t;",
        "typedef struct tachyon_rpc_bus_t tachyon_rpc_bus_t;",
        "} tachyon_msg_view_t;",
        "} tachyon_error_t;",
        "} tachyon_state_t;",
        "#define TACHYON_TYPE_ID(route, type)",
        "#define TACHYON_ROUTE_ID(type_id)",
        "#define TACHYON_MSG_TYPE(type_id)",
        "extern \"C\" {",
    ] {
        assert!(header.contains(declaration), "{declaration} missing");
    }
}

/// The system's `cc` or `c++`, else the venv's zig wrapper (python/bootstrap.sh installs it).
fn compiler(name: &str) -> std::path::PathBuf {
    let works = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if works {
        name.into()
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../.venv/bin/zig-{name}"))
    }
}

/// The header compiles as C99 and as C++, and C sees the same layout and values.
#[test]
fn the_header_compiles_and_c_sees_the_same_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tachyon.h"), tachyon::HEADER).unwrap();
    let check = r#"
#include <stddef.h>
#include "tachyon.h"
_Static_assert(sizeof(tachyon_msg_view_t) == 32, "view size");
_Static_assert(offsetof(tachyon_msg_view_t, ptr) == 0, "ptr");
_Static_assert(offsetof(tachyon_msg_view_t, actual_size) == 8, "actual_size");
_Static_assert(offsetof(tachyon_msg_view_t, reserved_) == 16, "reserved_");
_Static_assert(offsetof(tachyon_msg_view_t, type_id) == 24, "type_id");
_Static_assert(offsetof(tachyon_msg_view_t, padding_) == 28, "padding_");
_Static_assert(sizeof(tachyon_error_t) == 4, "error enum");
_Static_assert(TACHYON_ERR_ABI_MISMATCH == 14 && TACHYON_ERR_INTERRUPTED == 13, "errors");
_Static_assert(TACHYON_STATE_UNKNOWN == 5 && TACHYON_STATE_FATAL_ERROR == 4, "states");
_Static_assert(TACHYON_TYPE_ID(1, 2) == 0x10002u, "type id");
_Static_assert(TACHYON_ROUTE_ID(0x10002u) == 1 && TACHYON_MSG_TYPE(0x10002u) == 2, "split");
int main(void) { return 0; }
"#;
    std::fs::write(dir.path().join("check.c"), check).unwrap();
    let c = std::process::Command::new(compiler("cc"))
        .args(["-std=c99", "-Wall", "-Werror", "-pedantic", "-fsyntax-only"])
        .arg(dir.path().join("check.c"))
        .status()
        .expect("cc runs");
    assert!(
        c.success(),
        "the header does not compile as C99 with the layout asserted"
    );
    std::fs::write(
        dir.path().join("check.cpp"),
        "#include \"tachyon.h\"\nstatic_assert(sizeof(tachyon_msg_view_t) == 32, \"\");\nint main() { return 0; }\n",
    )
    .unwrap();
    let cpp = std::process::Command::new(compiler("c++"))
        .args(["-std=c++17", "-Wall", "-Werror", "-fsyntax-only"])
        .arg(dir.path().join("check.cpp"))
        .status()
        .expect("c++ runs");
    assert!(cpp.success(), "the header does not compile as C++");
}

#[test]
fn null_handles_and_null_arguments_give_upstreams_codes() {
    let (mut type_id, mut size) = (0u32, 0usize);
    let mut views = [tachyon_msg_view_t {
        ptr: null(),
        actual_size: 0,
        reserved_: 0,
        type_id: 0,
        padding_: 0,
    }; 4];
    let mut out_bus = null_mut();
    let mut out_rpc = null_mut();
    let mut cid = 0u64;
    let path = socket_path("nulls");
    // SAFETY: NULL handles and arguments are what is being tested; every other pointer is
    // valid.
    unsafe {
        assert_eq!(
            tachyon_bus_listen(null(), 4096, &mut out_bus),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_bus_listen(path.as_ptr(), 4096, null_mut()),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_bus_listen(path.as_ptr(), 0, &mut out_bus),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_bus_listen(path.as_ptr(), 1000, &mut out_bus),
            TACHYON_ERR_INVALID_SZ,
            "not a power of two"
        );
        assert_eq!(
            tachyon_bus_connect(null(), &mut out_bus),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_bus_connect(path.as_ptr(), null_mut()),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_bus_connect(path.as_ptr(), &mut out_bus),
            TACHYON_ERR_NETWORK,
            "nobody listens"
        );
        assert!(out_bus.is_null());
        tachyon_bus_ref(null_mut());
        tachyon_bus_destroy(null_mut());
        assert_eq!(tachyon_bus_set_numa_node(null(), 0), TACHYON_ERR_NULL_PTR);
        assert!(tachyon_acquire_tx(null_mut(), 8).is_null());
        assert_eq!(tachyon_commit_tx(null_mut(), 0, 1), TACHYON_ERR_NULL_PTR);
        assert_eq!(tachyon_rollback_tx(null_mut()), TACHYON_ERR_NULL_PTR);
        assert!(tachyon_acquire_rx(null_mut(), &mut type_id, &mut size).is_null());
        assert!(tachyon_acquire_rx_spin(null_mut(), &mut type_id, &mut size, 10).is_null());
        assert!(tachyon_acquire_rx_blocking(null_mut(), &mut type_id, &mut size, 10).is_null());
        assert_eq!(tachyon_commit_rx(null_mut()), TACHYON_ERR_NULL_PTR);
        assert_eq!(
            tachyon_acquire_rx_batch(null_mut(), views.as_mut_ptr(), 4),
            0
        );
        assert_eq!(
            tachyon_drain_batch(null_mut(), views.as_mut_ptr(), 4, 10),
            0
        );
        assert_eq!(
            tachyon_commit_rx_batch(null_mut(), views.as_ptr(), 1),
            TACHYON_ERR_NULL_PTR
        );
        tachyon_bus_set_polling_mode(null(), 1);
        tachyon_flush(null_mut());
        assert_eq!(tachyon_get_state(null()), TACHYON_STATE_UNKNOWN);

        assert_eq!(
            tachyon_rpc_listen(null(), 4096, 4096, &mut out_rpc),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_rpc_listen(path.as_ptr(), 0, 4096, &mut out_rpc),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_rpc_listen(path.as_ptr(), 4096, 0, &mut out_rpc),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_rpc_connect(null(), &mut out_rpc),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_rpc_connect(path.as_ptr(), &mut out_rpc),
            TACHYON_ERR_NETWORK
        );
        tachyon_rpc_destroy(null_mut());
        let payload = [0u8; 4];
        assert_eq!(
            tachyon_rpc_call(null_mut(), payload.as_ptr().cast(), 4, 1, &mut cid),
            TACHYON_ERR_NULL_PTR
        );
        assert!(tachyon_rpc_wait(null_mut(), 1, &mut size, &mut type_id, 10).is_null());
        assert_eq!(tachyon_rpc_commit_rx(null_mut()), TACHYON_ERR_NULL_PTR);
        assert!(tachyon_rpc_serve(null_mut(), &mut cid, &mut type_id, &mut size, 10).is_null());
        assert_eq!(tachyon_rpc_commit_serve(null_mut()), TACHYON_ERR_NULL_PTR);
        assert_eq!(
            tachyon_rpc_reply(null_mut(), 1, payload.as_ptr().cast(), 4, 1),
            TACHYON_ERR_NULL_PTR
        );
        assert!(tachyon_rpc_acquire_tx(null_mut(), 8).is_null());
        assert_eq!(
            tachyon_rpc_commit_call(null_mut(), 0, 1, &mut cid),
            TACHYON_ERR_NULL_PTR
        );
        tachyon_rpc_rollback_call(null_mut());
        assert!(tachyon_rpc_acquire_reply_tx(null_mut(), 8).is_null());
        assert_eq!(
            tachyon_rpc_commit_reply(null_mut(), 1, 0, 1),
            TACHYON_ERR_NULL_PTR
        );
        tachyon_rpc_rollback_reply(null_mut());
        tachyon_rpc_set_polling_mode(null(), 1);
        assert_eq!(tachyon_rpc_get_state(null()), TACHYON_STATE_UNKNOWN);
    }
}

#[test]
fn spsc_error_paths_on_live_handles() {
    let (consumer, producer) = spsc_pair("errors", 4096);
    let (mut type_id, mut size) = (0u32, 0usize);
    // SAFETY: live handles and valid pointers, except the NULLs under test.
    unsafe {
        assert_eq!(tachyon_get_state(producer), TACHYON_STATE_READY);
        assert_eq!(
            tachyon_bus_set_numa_node(producer, -1),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_bus_set_numa_node(producer, 64),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(tachyon_bus_set_numa_node(producer, 0), TACHYON_SUCCESS);
        // Commit and rollback without an acquire.
        assert_eq!(tachyon_commit_tx(producer, 0, 1), TACHYON_ERR_SYSTEM);
        assert_eq!(tachyon_rollback_tx(producer), TACHYON_ERR_SYSTEM);
        // Larger than the ring: NULL.
        assert!(tachyon_acquire_tx(producer, 4096).is_null());
        assert!(tachyon_acquire_tx(producer, usize::MAX).is_null());
        // A size beyond the slot (rounded up to 64 bytes as upstream's): refused, and the
        // slot is gone.
        assert!(!tachyon_acquire_tx(producer, 10).is_null());
        assert_eq!(tachyon_commit_tx(producer, 65, 1), TACHYON_ERR_SYSTEM);
        assert_eq!(tachyon_commit_tx(producer, 10, 1), TACHYON_ERR_SYSTEM);
        // Within the rounded slot, as upstream allows.
        assert!(!tachyon_acquire_tx(producer, 10).is_null());
        assert_eq!(tachyon_commit_tx(producer, 64, 7), TACHYON_SUCCESS);
        // Rolled back: never delivered.
        assert!(!tachyon_acquire_tx(producer, 10).is_null());
        assert_eq!(tachyon_rollback_tx(producer), TACHYON_SUCCESS);
        tachyon_flush(producer);
        // The producer's handle cannot receive, the consumer's cannot send.
        assert!(tachyon_acquire_rx(producer, &mut type_id, &mut size).is_null());
        // NULL out-parameters.
        assert!(tachyon_acquire_rx(consumer, null_mut(), &mut size).is_null());
        assert!(tachyon_acquire_rx(consumer, &mut type_id, null_mut()).is_null());
        assert_eq!(tachyon_acquire_rx_batch(consumer, null_mut(), 4), 0);
        // Commit without an acquire: success, as upstream's.
        assert_eq!(tachyon_commit_rx(consumer), TACHYON_SUCCESS);
        // That receive call gave the handle its role: it cannot send now.
        assert!(tachyon_acquire_tx(consumer, 8).is_null());
        assert_eq!(tachyon_commit_tx(consumer, 0, 1), TACHYON_ERR_SYSTEM);
        assert_eq!(
            tachyon_commit_rx_batch(consumer, null(), 0),
            TACHYON_SUCCESS
        );
        assert_eq!(
            tachyon_commit_rx_batch(consumer, null(), 1),
            TACHYON_ERR_NULL_PTR
        );
        // The one committed message, 64 bytes, then nothing.
        let payload = tachyon_acquire_rx(consumer, &mut type_id, &mut size);
        assert!(!payload.is_null());
        assert_eq!((type_id, size), (7, 64));
        // Acquired again before commit: the same message, as upstream.
        let again = tachyon_acquire_rx(consumer, &mut type_id, &mut size);
        assert_eq!(again, payload);
        assert_eq!(tachyon_commit_rx(consumer), TACHYON_SUCCESS);
        assert!(tachyon_acquire_rx(consumer, &mut type_id, &mut size).is_null());
        assert!(tachyon_acquire_rx_spin(consumer, &mut type_id, &mut size, 100).is_null());
        assert_eq!(tachyon_get_state(consumer), TACHYON_STATE_READY);
        tachyon_bus_destroy(producer);
        tachyon_bus_destroy(consumer);
    }
}

#[test]
fn reference_counting_and_destroyed_handles() {
    let (consumer, producer) = spsc_pair("refs", 4096);
    let (mut type_id, mut size) = (0u32, 0usize);
    // SAFETY: handles from this library (destroyed ones included, which stay readable).
    unsafe {
        tachyon_bus_ref(producer);
        tachyon_bus_ref(producer);
        tachyon_bus_destroy(producer);
        tachyon_bus_destroy(producer);
        assert_eq!(
            tachyon_get_state(producer),
            TACHYON_STATE_READY,
            "one reference left"
        );
        send(producer, 3, b"still open");
        assert_eq!(recv(consumer), (3, b"still open".to_vec()));
        tachyon_bus_destroy(producer);
        // Destroyed: every call fails cleanly, a second destroy and a ref do nothing.
        assert_eq!(tachyon_get_state(producer), TACHYON_STATE_UNKNOWN);
        assert!(tachyon_acquire_tx(producer, 8).is_null());
        assert_eq!(tachyon_commit_tx(producer, 0, 1), TACHYON_ERR_NULL_PTR);
        assert_eq!(tachyon_bus_set_numa_node(producer, 0), TACHYON_ERR_NULL_PTR);
        tachyon_bus_destroy(producer);
        tachyon_bus_ref(producer);
        tachyon_bus_destroy(producer);
        tachyon_flush(producer);
        assert_eq!(tachyon_get_state(producer), TACHYON_STATE_UNKNOWN);
        // A consumer destroyed while it holds a message releases it.
        send_from_fresh_pair_and_destroy_holding();
        tachyon_bus_destroy(consumer);
        assert!(tachyon_acquire_rx(consumer, &mut type_id, &mut size).is_null());
        assert_eq!(tachyon_commit_rx(consumer), TACHYON_ERR_NULL_PTR);
        tachyon_bus_destroy(consumer);
    }
}

fn send_from_fresh_pair_and_destroy_holding() {
    let (consumer, producer) = spsc_pair("holding", 4096);
    let (mut type_id, mut size) = (0u32, 0usize);
    send(producer, 1, b"held");
    // SAFETY: live handles and valid out-pointers.
    unsafe {
        assert!(!tachyon_acquire_rx(consumer, &mut type_id, &mut size).is_null());
        assert!(!tachyon_acquire_tx(producer, 8).is_null());
        tachyon_bus_destroy(consumer);
        tachyon_bus_destroy(producer);
    }
}

#[test]
fn spsc_round_trip_single_spin_blocking_and_batches() {
    let (consumer, producer) = spsc_pair("roundtrip", 1 << 16);
    let producer = Send(producer);
    let sender = std::thread::spawn(move || {
        let producer = producer;
        for i in 0..100u32 {
            send(producer.0, i, &i.to_le_bytes());
        }
        producer
    });
    for i in 0..100u32 {
        assert_eq!(recv(consumer), (i, i.to_le_bytes().to_vec()));
    }
    let producer = sender.join().unwrap().0;
    let (mut type_id, mut size) = (0u32, 0usize);
    let mut views = [tachyon_msg_view_t {
        ptr: null(),
        actual_size: 0,
        reserved_: 0,
        type_id: 0,
        padding_: 0,
    }; 8];
    // SAFETY: live handles, valid pointers; payloads read before their commit.
    unsafe {
        // Zero-length payloads, and the spin receive.
        send(producer, 9, b"");
        let payload = tachyon_acquire_rx_spin(consumer, &mut type_id, &mut size, 0);
        assert!(!payload.is_null());
        assert_eq!((type_id, size), (9, 0));
        assert_eq!(tachyon_commit_rx(consumer), TACHYON_SUCCESS);
        // Batches: 5 messages published by one flush, held together.
        for i in 0..5u8 {
            let slot = tachyon_acquire_tx(producer, 1).cast::<u8>();
            *slot = i;
            assert_eq!(
                tachyon_commit_tx(producer, 1, 100 + u32::from(i)),
                TACHYON_SUCCESS
            );
        }
        tachyon_flush(producer);
        assert_eq!(tachyon_acquire_rx_batch(consumer, views.as_mut_ptr(), 3), 3);
        for (i, view) in views[..3].iter().enumerate() {
            assert_eq!(view.actual_size, 1);
            assert_eq!(view.type_id, 100 + i as u32);
            assert_eq!(view.reserved_, 128);
            assert_eq!(view.padding_, 0);
            assert_eq!(*view.ptr.cast::<u8>(), i as u8);
        }
        // Nothing more while the batch is held; then the first two are committed, so the
        // third comes again.
        assert!(tachyon_acquire_rx(consumer, &mut type_id, &mut size).is_null());
        assert_eq!(
            tachyon_commit_rx_batch(consumer, views.as_ptr(), 2),
            TACHYON_SUCCESS
        );
        assert_eq!(tachyon_drain_batch(consumer, views.as_mut_ptr(), 8, 100), 3);
        let types: Vec<u32> = views[..3].iter().map(|view| view.type_id).collect();
        assert_eq!(types, [102, 103, 104]);
        assert_eq!(
            tachyon_commit_rx_batch(consumer, views.as_ptr(), 3),
            TACHYON_SUCCESS
        );
        assert_eq!(tachyon_acquire_rx_batch(consumer, views.as_mut_ptr(), 8), 0);
        // A blocking batch waits for the producer.
        let producer = Send(producer);
        let later = std::thread::spawn(move || {
            let producer = producer;
            std::thread::sleep(Duration::from_millis(50));
            send(producer.0, 77, b"late");
            producer
        });
        assert_eq!(tachyon_drain_batch(consumer, views.as_mut_ptr(), 8, 10), 1);
        assert_eq!(views[0].type_id, 77);
        assert_eq!(
            tachyon_commit_rx_batch(consumer, views.as_ptr(), 1),
            TACHYON_SUCCESS
        );
        let producer = later.join().unwrap().0;
        // Polling mode on the consumer shows in the shared word the producer reads; the
        // round trip still works.
        tachyon_bus_set_polling_mode(consumer, 1);
        send(producer, 5, b"spin");
        assert_eq!(recv(consumer), (5, b"spin".to_vec()));
        tachyon_bus_set_polling_mode(consumer, 0);
        tachyon_memory_barrier_acquire();
        tachyon_bus_destroy(producer);
        tachyon_bus_destroy(consumer);
    }
}

/// A wrap-around: slots that do not fit before the ring's end are placed at its start (a
/// skip marker between), and both single and batch receives follow.
#[test]
fn spsc_wraps_around_the_ring() {
    let (consumer, producer) = spsc_pair("wrap", 1024);
    let mut views = [tachyon_msg_view_t {
        ptr: null(),
        actual_size: 0,
        reserved_: 0,
        type_id: 0,
        padding_: 0,
    }; 16];
    for round in 0..40u32 {
        let payload = vec![round as u8; 100 + (round as usize * 37) % 200];
        // The consumer returns space when it finds the ring empty (a receive that returns
        // NULL), not at each commit: upstream's rule, which a 1 KiB ring makes visible.
        // SAFETY: live handles, valid out-pointers.
        unsafe {
            let (mut type_id, mut size) = (0u32, 0usize);
            assert!(tachyon_acquire_rx(consumer, &mut type_id, &mut size).is_null());
        }
        send(producer, round, &payload);
        if round % 3 == 0 {
            assert_eq!(recv(consumer), (round, payload));
        } else {
            // SAFETY: live handle, room for 16 views; read before commit.
            unsafe {
                assert_eq!(tachyon_drain_batch(consumer, views.as_mut_ptr(), 16, 10), 1);
                let data =
                    std::slice::from_raw_parts(views[0].ptr.cast::<u8>(), views[0].actual_size);
                assert_eq!((views[0].type_id, data), (round, &payload[..]));
                assert_eq!(
                    tachyon_commit_rx_batch(consumer, views.as_ptr(), 1),
                    TACHYON_SUCCESS
                );
            }
        }
    }
    // SAFETY: live handles.
    unsafe {
        tachyon_bus_destroy(producer);
        tachyon_bus_destroy(consumer);
    }
}

extern "C" fn on_signal(_: libc::c_int) {}

/// Signals `thread` (SIGUSR1) every 20 ms until `handle` has finished, at most 30 s: a signal
/// that lands before the thread blocks is lost, the next one is not.
fn signal_until_done<T>(thread: libc::pthread_t, handle: &std::thread::JoinHandle<T>) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !handle.is_finished() {
        assert!(Instant::now() < give_up, "the signalled call never ended");
        // SAFETY: the thread is not joined yet, so its id is valid; the handler does nothing.
        unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A signal that interrupts a blocking receive's sleep makes it return NULL (upstream's
/// convention, so a binding can check its signals); the bus stays usable.
#[test]
fn a_signal_ends_a_blocking_receive_with_null() {
    let (consumer, producer) = spsc_pair("eintr", 4096);
    // SAFETY: installs a handler that does nothing, without SA_RESTART, so the futex sleep
    // returns EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &action, null_mut()), 0);
    }
    let consumer = Send(consumer);
    let (started, waiting) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        let consumer = consumer;
        // SAFETY: pthread_self is always safe.
        started.send(unsafe { libc::pthread_self() }).unwrap();
        let (mut type_id, mut size) = (0u32, 0usize);
        let began = Instant::now();
        // SAFETY: a live handle and valid out-pointers.
        let payload =
            unsafe { tachyon_acquire_rx_blocking(consumer.0, &mut type_id, &mut size, 0) };
        (consumer, payload.is_null(), began.elapsed())
    });
    let thread = waiting.recv().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    signal_until_done(thread, &receiver);
    let (consumer, was_null, waited) = receiver.join().unwrap();
    assert!(was_null, "the interrupted receive returned a message");
    assert!(waited < Duration::from_secs(30));
    // SAFETY: live handles.
    unsafe {
        assert_eq!(tachyon_get_state(consumer.0), TACHYON_STATE_READY);
        send(producer, 1, b"after");
        assert_eq!(recv(consumer.0), (1, b"after".to_vec()));
        tachyon_bus_destroy(producer);
        tachyon_bus_destroy(consumer.0);
    }
}

#[test]
fn connecting_spsc_to_an_rpc_listener_is_an_abi_mismatch() {
    let path = socket_path("mismatch");
    let listening = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut rpc = null_mut();
            // SAFETY: a valid path and out-pointer.
            let code = unsafe { tachyon_rpc_listen(path.as_ptr(), 4096, 4096, &mut rpc) };
            (code, Send(rpc))
        })
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let mut bus = null_mut();
        // SAFETY: a valid path and out-pointer.
        match unsafe { tachyon_bus_connect(path.as_ptr(), &mut bus) } {
            TACHYON_ERR_NETWORK if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => break other,
        }
    };
    assert_eq!(code, TACHYON_ERR_ABI_MISMATCH);
    let (_, rpc) = listening.join().unwrap();
    // SAFETY: NULL or a handle from this library.
    unsafe { tachyon_rpc_destroy(rpc.0) };
}

#[test]
fn rpc_round_trips_copying_and_in_place() {
    let (callee, caller) = rpc_pair("rpc");
    let callee = Send(callee);
    let serving = std::thread::spawn(move || {
        let callee = callee;
        for _ in 0..2 {
            // SAFETY: a live handle, valid pointers; the request is read before its commit.
            unsafe {
                let (cid, msg_type, size, request) = serve_one(callee.0);
                let mut answer = std::slice::from_raw_parts(request.cast::<u8>(), size).to_vec();
                answer.reverse();
                if msg_type == 1 {
                    // Copying, with the request still held.
                    assert_eq!(
                        tachyon_rpc_reply(callee.0, cid, answer.as_ptr().cast(), size, 2),
                        TACHYON_SUCCESS
                    );
                    assert_eq!(tachyon_rpc_commit_serve(callee.0), TACHYON_SUCCESS);
                } else {
                    // In place, after the request is released; the call is named at commit.
                    assert_eq!(tachyon_rpc_commit_serve(callee.0), TACHYON_SUCCESS);
                    let slot = tachyon_rpc_acquire_reply_tx(callee.0, size).cast::<u8>();
                    assert!(!slot.is_null());
                    ptr::copy_nonoverlapping(answer.as_ptr(), slot, size);
                    assert_eq!(
                        tachyon_rpc_commit_reply(callee.0, 0, size, msg_type + 1),
                        TACHYON_ERR_INVALID_SZ,
                        "id 0 is refused, the reply stays acquired"
                    );
                    assert_eq!(
                        tachyon_rpc_commit_reply(callee.0, cid, size, msg_type + 1),
                        TACHYON_SUCCESS
                    );
                }
            }
        }
        callee
    });
    let (mut size, mut msg_type, mut cid) = (0usize, 0u32, 0u64);
    // SAFETY: a live handle and valid pointers; replies read before their commit.
    unsafe {
        assert_eq!(tachyon_rpc_get_state(caller), TACHYON_STATE_READY);
        let payload = b"hello";
        assert_eq!(
            tachyon_rpc_call(caller, payload.as_ptr().cast(), 5, 1, &mut cid),
            TACHYON_SUCCESS
        );
        assert_eq!(cid, 1, "ids start at 1");
        let reply = tachyon_rpc_wait(caller, cid, &mut size, &mut msg_type, 100);
        assert!(!reply.is_null());
        assert_eq!(
            (
                msg_type,
                std::slice::from_raw_parts(reply.cast::<u8>(), size)
            ),
            (2, &b"olleh"[..])
        );
        assert_eq!(tachyon_rpc_commit_rx(caller), TACHYON_SUCCESS);
        // In place.
        let slot = tachyon_rpc_acquire_tx(caller, 8).cast::<u8>();
        assert!(!slot.is_null());
        ptr::copy_nonoverlapping(b"zerocopy".as_ptr(), slot, 8);
        assert_eq!(
            tachyon_rpc_commit_call(caller, 8, 7, &mut cid),
            TACHYON_SUCCESS
        );
        assert_eq!(cid, 2);
        let reply = tachyon_rpc_wait(caller, cid, &mut size, &mut msg_type, 100);
        assert!(!reply.is_null());
        assert_eq!(
            (
                msg_type,
                std::slice::from_raw_parts(reply.cast::<u8>(), size)
            ),
            (8, &b"ypocorez"[..])
        );
        assert_eq!(tachyon_rpc_commit_rx(caller), TACHYON_SUCCESS);
    }
    let callee = serving.join().unwrap().0;
    // SAFETY: live handles; error paths on them.
    unsafe {
        // Commits without an acquire; the wrong role; message types beyond 16 bits.
        assert_eq!(
            tachyon_rpc_commit_call(caller, 0, 1, &mut cid),
            TACHYON_ERR_SYSTEM
        );
        assert_eq!(
            tachyon_rpc_commit_reply(callee, 1, 0, 1),
            TACHYON_ERR_SYSTEM
        );
        assert!(tachyon_rpc_acquire_tx(callee, 8).is_null());
        assert!(tachyon_rpc_acquire_reply_tx(caller, 8).is_null());
        let payload = [0u8; 4];
        assert_eq!(
            tachyon_rpc_call(caller, payload.as_ptr().cast(), 4, 0x1_0000, &mut cid),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_rpc_reply(callee, 0, payload.as_ptr().cast(), 4, 1),
            TACHYON_ERR_INVALID_SZ
        );
        assert_eq!(
            tachyon_rpc_call(caller, null(), 4, 1, &mut cid),
            TACHYON_ERR_NULL_PTR
        );
        assert!(tachyon_rpc_wait(caller, 0, &mut size, &mut msg_type, 1).is_null());
        // Too large for the ring: full, as upstream reports it.
        let big = vec![0u8; 1 << 16];
        assert_eq!(
            tachyon_rpc_call(caller, big.as_ptr().cast(), big.len(), 1, &mut cid),
            TACHYON_ERR_FULL
        );
        // An acquired call rolled back is never sent; a rollback without one marks the
        // request ring fatal, as upstream's does.
        assert!(!tachyon_rpc_acquire_tx(caller, 8).is_null());
        tachyon_rpc_rollback_call(caller);
        assert_eq!(tachyon_rpc_get_state(caller), TACHYON_STATE_READY);
        tachyon_rpc_rollback_call(caller);
        assert_eq!(tachyon_rpc_get_state(caller), TACHYON_STATE_FATAL_ERROR);
        assert_eq!(tachyon_rpc_get_state(callee), TACHYON_STATE_FATAL_ERROR);
        tachyon_rpc_set_polling_mode(caller, 1);
        tachyon_rpc_destroy(caller);
        tachyon_rpc_destroy(caller);
        assert_eq!(tachyon_rpc_get_state(caller), TACHYON_STATE_UNKNOWN);
        tachyon_rpc_destroy(callee);
        assert!(tachyon_rpc_acquire_reply_tx(callee, 8).is_null());
    }
}

/// A C caller that never sets the out-parameter's memory gets a view-sized write only for
/// the messages it asked for.
#[test]
fn a_batch_writes_no_more_views_than_messages() {
    let (consumer, producer) = spsc_pair("views", 4096);
    send(producer, 1, b"a");
    send(producer, 2, b"b");
    let sentinel = tachyon_msg_view_t {
        ptr: std::ptr::dangling::<c_void>(),
        actual_size: 99,
        reserved_: 99,
        type_id: 99,
        padding_: 99,
    };
    let mut views = [sentinel; 4];
    // SAFETY: a live handle and room for 4 views.
    unsafe {
        assert_eq!(tachyon_acquire_rx_batch(consumer, views.as_mut_ptr(), 4), 2);
        assert_eq!(views[2].type_id, 99);
        assert_eq!(
            tachyon_commit_rx_batch(consumer, views.as_ptr(), 2),
            TACHYON_SUCCESS
        );
        tachyon_bus_destroy(producer);
        tachyon_bus_destroy(consumer);
    }
}

/// A callee answers in place while it still reads the request (upstream allows both at
/// once): the request stays readable until the reply is committed, even when
/// `tachyon_rpc_commit_serve` comes first; a rollback of such a reply releases nothing early.
#[test]
fn rpc_reply_in_place_while_the_request_is_held() {
    let (callee, caller) = rpc_pair("inplace");
    let callee = Send(callee);
    let serving = std::thread::spawn(move || {
        let callee = callee;
        for round in 0..3 {
            // SAFETY: a live handle, valid pointers; the request is read while held.
            unsafe {
                let (cid, msg_type, size, request) = serve_one(callee.0);
                let request = request.cast::<u8>();
                if round == 1 {
                    // A reply acquired and rolled back first: the request is still held.
                    assert!(!tachyon_rpc_acquire_reply_tx(callee.0, size).is_null());
                    tachyon_rpc_rollback_reply(callee.0);
                    assert_eq!(tachyon_rpc_get_state(callee.0), TACHYON_STATE_READY);
                }
                let reply = tachyon_rpc_acquire_reply_tx(callee.0, size).cast::<u8>();
                assert!(!reply.is_null());
                // A second request cannot be served meanwhile.
                let (mut c, mut m, mut n) = (0u64, 0u32, 0usize);
                assert!(tachyon_rpc_serve(callee.0, &mut c, &mut m, &mut n, 1).is_null());
                if round == 2 {
                    // Released early: it stays readable until the reply is committed.
                    assert_eq!(tachyon_rpc_commit_serve(callee.0), TACHYON_SUCCESS);
                }
                for i in 0..size {
                    *reply.add(i) = (*request.add(i)).to_ascii_uppercase();
                }
                assert_eq!(
                    tachyon_rpc_reply(callee.0, cid, request.cast(), size, 1),
                    TACHYON_ERR_SYSTEM,
                    "a reply is already acquired"
                );
                assert_eq!(
                    tachyon_rpc_commit_reply(callee.0, cid, size, msg_type + 1),
                    TACHYON_SUCCESS
                );
                assert_eq!(tachyon_rpc_commit_serve(callee.0), TACHYON_SUCCESS);
            }
        }
        callee
    });
    for (round, word) in [&b"one"[..], b"two", b"three"].iter().enumerate() {
        let (mut size, mut msg_type, mut cid) = (0usize, 0u32, 0u64);
        // SAFETY: a live handle and valid pointers; the reply is read before its commit.
        unsafe {
            assert_eq!(
                tachyon_rpc_call(caller, word.as_ptr().cast(), word.len(), 10, &mut cid),
                TACHYON_SUCCESS
            );
            assert_eq!(cid, round as u64 + 1);
            let reply = tachyon_rpc_wait(caller, cid, &mut size, &mut msg_type, 100);
            assert!(!reply.is_null());
            let data = std::slice::from_raw_parts(reply.cast::<u8>(), size);
            assert_eq!((msg_type, data), (11, &word.to_ascii_uppercase()[..]));
            assert_eq!(tachyon_rpc_commit_rx(caller), TACHYON_SUCCESS);
        }
    }
    let callee = serving.join().unwrap().0;
    // SAFETY: live handles.
    unsafe {
        assert_eq!(tachyon_rpc_get_state(caller), TACHYON_STATE_READY);
        tachyon_rpc_destroy(caller);
        tachyon_rpc_destroy(callee);
    }
}

/// Upstream's thread rules: one thread consumes while others read the state and take and
/// drop references; none of them waits for the blocked receive.
#[test]
fn state_and_references_from_other_threads_while_a_receive_blocks() {
    let (consumer, producer) = spsc_pair("threads", 4096);
    let blocked = consumer as usize;
    let consumer = Send(consumer);
    let receiver = std::thread::spawn(move || {
        let consumer = consumer;
        let (mut type_id, mut size) = (0u32, 0usize);
        // SAFETY: a live handle and valid out-pointers.
        let payload =
            unsafe { tachyon_acquire_rx_blocking(consumer.0, &mut type_id, &mut size, 0) };
        assert!(!payload.is_null());
        // SAFETY: as above.
        assert_eq!(unsafe { tachyon_commit_rx(consumer.0) }, TACHYON_SUCCESS);
        (consumer, type_id)
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let watchers: Vec<_> = (0..4)
        .map(|_| {
            let producer = Send(producer);
            std::thread::spawn(move || {
                let producer = producer;
                for _ in 0..1000 {
                    // SAFETY: a live handle; references taken and dropped in pairs.
                    unsafe {
                        assert_eq!(tachyon_get_state(producer.0), TACHYON_STATE_READY);
                        let blocked = blocked as *const tachyon_bus_t;
                        assert_eq!(tachyon_get_state(blocked), TACHYON_STATE_READY);
                        tachyon_bus_ref(producer.0);
                        tachyon_bus_destroy(producer.0);
                    }
                }
            })
        })
        .collect();
    for watcher in watchers {
        watcher.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    send(producer, 42, b"x");
    let (consumer, type_id) = receiver.join().unwrap();
    assert_eq!(type_id, 42);
    // SAFETY: live handles; the producer's count is back to one.
    unsafe {
        assert_eq!(tachyon_get_state(consumer.0), TACHYON_STATE_READY);
        tachyon_bus_destroy(producer);
        assert_eq!(tachyon_get_state(producer), TACHYON_STATE_UNKNOWN);
        tachyon_bus_destroy(consumer.0);
    }
}

/// A caller calls, and acquires calls, while it still holds a reply (as upstream allows);
/// waiting again for the held reply's id hands it out again.
#[test]
fn rpc_calls_while_a_reply_is_held() {
    let (callee, caller) = rpc_pair("pipelined");
    let callee = Send(callee);
    let serving = std::thread::spawn(move || {
        let callee = callee;
        for _ in 0..3 {
            // SAFETY: a live handle and valid pointers; the request is read while held.
            unsafe {
                let (cid, msg_type, size, request) = serve_one(callee.0);
                assert_eq!(
                    tachyon_rpc_reply(callee.0, cid, request, size, msg_type),
                    TACHYON_SUCCESS
                );
                assert_eq!(tachyon_rpc_commit_serve(callee.0), TACHYON_SUCCESS);
            }
        }
        callee
    });
    let (mut size, mut msg_type) = (0usize, 0u32);
    let (mut first, mut second, mut third) = (0u64, 0u64, 0u64);
    // SAFETY: a live handle and valid pointers; replies read before their commit.
    unsafe {
        assert_eq!(
            tachyon_rpc_call(caller, b"one".as_ptr().cast(), 3, 1, &mut first),
            TACHYON_SUCCESS
        );
        let reply = tachyon_rpc_wait(caller, first, &mut size, &mut msg_type, 100);
        assert!(!reply.is_null());
        // Still holding the first reply: a call by copy, and one in place.
        assert_eq!(
            tachyon_rpc_call(caller, reply, size, 2, &mut second),
            TACHYON_SUCCESS
        );
        let slot = tachyon_rpc_acquire_tx(caller, 5).cast::<u8>();
        assert!(!slot.is_null());
        ptr::copy_nonoverlapping(b"three".as_ptr(), slot, 5);
        assert_eq!(
            tachyon_rpc_commit_call(caller, 5, 3, &mut third),
            TACHYON_SUCCESS
        );
        assert_eq!((first, second, third), (1, 2, 3));
        // The held reply again for its own id; nothing for another until it is committed.
        assert_eq!(
            tachyon_rpc_wait(caller, first, &mut size, &mut msg_type, 100),
            reply
        );
        assert!(tachyon_rpc_wait(caller, second, &mut size, &mut msg_type, 100).is_null());
        assert_eq!(tachyon_rpc_commit_rx(caller), TACHYON_SUCCESS);
        for (id, expected, kind) in [(second, &b"one"[..], 2), (third, b"three", 3)] {
            let reply = tachyon_rpc_wait(caller, id, &mut size, &mut msg_type, 100);
            assert!(!reply.is_null());
            let data = std::slice::from_raw_parts(reply.cast::<u8>(), size);
            assert_eq!((msg_type, data), (kind, expected));
            assert_eq!(tachyon_rpc_commit_rx(caller), TACHYON_SUCCESS);
        }
    }
    let callee = serving.join().unwrap().0;
    // SAFETY: live handles.
    unsafe {
        tachyon_rpc_destroy(caller);
        tachyon_rpc_destroy(callee);
    }
}

/// A signal during `tachyon_bus_listen` / `tachyon_rpc_listen`'s wait for a peer gives
/// `TACHYON_ERR_INTERRUPTED` (upstream's code; its Python binding then checks its signals and
/// listens again), and the socket file is gone.
#[test]
fn a_signal_ends_a_listen_with_interrupted() {
    // SAFETY: a handler that does nothing, without SA_RESTART.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &action, null_mut()), 0);
    }
    for rpc in [false, true] {
        let path = socket_path(if rpc {
            "listen-rpc-eintr"
        } else {
            "listen-eintr"
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let listening = {
            let path = path.clone();
            std::thread::spawn(move || {
                // SAFETY: pthread_self has no preconditions.
                tx.send(unsafe { libc::pthread_self() }).unwrap();
                // SAFETY: a valid path and out-pointers.
                unsafe {
                    if rpc {
                        let mut handle = null_mut();
                        tachyon_rpc_listen(path.as_ptr(), 4096, 4096, &mut handle)
                    } else {
                        let mut handle = null_mut();
                        tachyon_bus_listen(path.as_ptr(), 4096, &mut handle)
                    }
                }
            })
        };
        let thread = rx.recv().unwrap();
        let file = std::path::PathBuf::from(path.to_str().unwrap());
        let give_up = Instant::now() + Duration::from_secs(10);
        while !file.exists() {
            assert!(Instant::now() < give_up, "never listened");
            std::thread::sleep(Duration::from_millis(5));
        }
        signal_until_done(thread, &listening);
        assert_eq!(listening.join().unwrap(), TACHYON_ERR_INTERRUPTED);
        assert!(!file.exists(), "the socket file was left behind");
    }
}

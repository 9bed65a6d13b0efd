//! Upstream's documented behaviour, each as a test against this crate: the examples of
//! tachyon-ipc 0.5.1's README and docs, and the guarantees its guards state. Two threads of
//! one process, one bus each, as upstream's own tests run them.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tachyon_compat::{Bus, RpcBus, TachyonError, make_type_id, msg_type, route_id};

const CAPACITY: usize = 1 << 16;
/// Long enough that a published message would have arrived many times over.
const NOT_PUBLISHED: Duration = Duration::from_millis(300);
const ARRIVES: Duration = Duration::from_secs(10);

fn socket(tag: &str) -> String {
    let path = std::env::temp_dir().join(format!("compat-{}-{tag}.sock", std::process::id()));
    path.to_str().unwrap().to_owned()
}

fn connect(path: &str) -> Bus {
    for _ in 0..2000 {
        if let Ok(bus) = Bus::connect(path) {
            return bus;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("nobody listened on {path}");
}

fn rpc_connect(path: &str) -> RpcBus {
    for _ in 0..2000 {
        if let Ok(bus) = RpcBus::connect(path) {
            return bus;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("nobody listened on {path}");
}

/// A consumer thread listening at `path` that forwards each (type id, payload) it receives.
fn forwarding_consumer(path: &str, messages: usize) -> mpsc::Receiver<(u32, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    let path = path.to_owned();
    thread::spawn(move || {
        let bus = Bus::listen(&path, CAPACITY).unwrap();
        for _ in 0..messages {
            let guard = bus.acquire_rx(10_000).unwrap();
            tx.send((guard.type_id, guard.data().to_vec())).unwrap();
            guard.commit().unwrap();
        }
    });
    rx
}

#[test]
fn send_publishes_at_once() {
    let path = socket("send");
    let received = forwarding_consumer(&path, 1);
    let bus = connect(&path);
    bus.send(b"hello_tachyon", 42).unwrap();
    // No flush: upstream's `send` commits and flushes.
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (42, b"hello_tachyon".to_vec())
    );
}

#[test]
fn commit_publishes_and_commit_unflushed_waits_for_flush() {
    let path = socket("commit");
    let received = forwarding_consumer(&path, 3);
    let bus = connect(&path);

    let guard = bus.acquire_tx(8).unwrap();
    guard.write(b"now");
    guard.commit(3, 7).unwrap();
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (7, b"now".to_vec())
    );

    for (data, type_id) in [(&b"later-1"[..], 8), (b"later-2", 9)] {
        let guard = bus.acquire_tx(data.len()).unwrap();
        guard.write(data);
        guard.commit_unflushed(data.len(), type_id).unwrap();
    }
    assert!(
        received.recv_timeout(NOT_PUBLISHED).is_err(),
        "commit_unflushed published without a flush"
    );
    bus.flush();
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (8, b"later-1".to_vec())
    );
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (9, b"later-2".to_vec())
    );
}

#[test]
fn a_dropped_tx_guard_rolls_back() {
    let path = socket("rollback");
    let received = forwarding_consumer(&path, 1);
    let bus = connect(&path);
    {
        let guard = bus.acquire_tx(32).unwrap();
        guard.write(b"never sent");
    }
    bus.flush();
    bus.send(b"committed", 99).unwrap();
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (99, b"committed".to_vec()),
        "the rolled-back slot reached the consumer"
    );
}

#[test]
fn a_commit_longer_than_its_slot_fails_and_sends_nothing() {
    let path = socket("toolong");
    let received = forwarding_consumer(&path, 1);
    let bus = connect(&path);
    let guard = bus.acquire_tx(4).unwrap();
    assert_eq!(guard.max_size(), 4);
    assert_eq!(guard.commit(5, 1), Err(TachyonError::SystemError));
    bus.send(b"next", 2).unwrap();
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (2, b"next".to_vec())
    );
}

#[test]
#[should_panic(expected = "TxGuard::write of 5 bytes into a slot reserved for 4")]
fn writing_past_the_slot_panics_as_upstream() {
    let bus_and_guard = {
        let path = socket("writepanic");
        let _consumer = forwarding_consumer(&path, 0);
        connect(&path)
    };
    let guard = bus_and_guard.acquire_tx(4).unwrap();
    guard.write(b"12345");
}

#[test]
fn a_full_ring_fails_at_once_with_buffer_full() {
    let path = socket("full");
    let listener = {
        let path = path.clone();
        thread::spawn(move || Bus::listen(&path, 1024).unwrap())
    };
    let bus = connect(&path);
    let _consumer = listener.join().unwrap();
    let mut sent = 0;
    let error = loop {
        match bus.send(&[0; 100], 1) {
            Ok(()) => sent += 1,
            Err(error) => break error,
        }
    };
    assert_eq!(error, TachyonError::BufferFull);
    assert_eq!(sent, 1024 / 192, "slots of 192 bytes in a 1 KiB ring");
    assert_eq!(bus.acquire_tx(100).unwrap_err(), TachyonError::BufferFull);
}

#[test]
fn zero_copy_writes_through_as_mut_slice() {
    let path = socket("mutslice");
    let received = forwarding_consumer(&path, 1);
    let bus = connect(&path);
    let mut guard = bus.acquire_tx(16).unwrap();
    // SAFETY: the slice is the slot (upstream's contract: write within max_size).
    let slot = unsafe { guard.as_mut_slice() };
    assert_eq!(slot.len(), 16);
    slot[..5].copy_from_slice(b"slice");
    guard.commit(5, 3).unwrap();
    assert_eq!(
        received.recv_timeout(ARRIVES).unwrap(),
        (3, b"slice".to_vec())
    );
}

#[test]
fn drain_batch_takes_every_published_message_in_order() {
    let path = socket("batch");
    let (tx, rx) = mpsc::channel();
    let consumer = {
        let path = path.clone();
        thread::spawn(move || {
            let bus = Bus::listen(&path, CAPACITY).unwrap();
            tx.send(()).unwrap();
            let batch = bus.drain_batch(64, 10_000).unwrap();
            let seen: Vec<(u32, usize, Vec<u8>)> = (&batch)
                .into_iter()
                .map(|m| (m.type_id(), m.actual_size(), m.data().to_vec()))
                .collect();
            assert_eq!((batch.len(), batch.count, batch.is_empty()), (5, 5, false));
            assert_eq!(batch.iter().len(), 5);
            assert_eq!(batch.get(4).map(|m| m.type_id()), Some(4));
            assert!(batch.get(5).is_none());
            batch.commit().unwrap();
            seen
        })
    };
    let bus = connect(&path);
    rx.recv().unwrap();
    for i in 0u32..5 {
        let guard = bus.acquire_tx(4).unwrap();
        guard.write(&(i * 10).to_le_bytes());
        guard.commit_unflushed(4, i).unwrap();
    }
    bus.flush();
    let seen = consumer.join().unwrap();
    let expected: Vec<_> = (0u32..5)
        .map(|i| (i, 4, (i * 10).to_le_bytes().to_vec()))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn one_bus_plays_one_role() {
    let path = socket("roles");
    let _consumer = forwarding_consumer(&path, 1);
    let bus = connect(&path);
    bus.send(b"x", 1).unwrap();
    assert_eq!(bus.acquire_rx(10).unwrap_err(), TachyonError::SystemError);
    let _guard = bus.acquire_tx(1).unwrap();
    assert_eq!(
        bus.acquire_tx(1).unwrap_err(),
        TachyonError::SystemError,
        "a second guard while the first is alive"
    );
}

#[test]
fn type_ids_split_into_route_and_message_type() {
    assert_eq!(make_type_id(0, 42), 42);
    assert_eq!((route_id(42), msg_type(42)), (0, 42));
    let id = make_type_id(1, 99);
    assert_eq!((route_id(id), msg_type(id)), (1, 99));
    assert_eq!(make_type_id(0, 0), 0);
}

#[test]
fn connect_without_a_listener_fails_at_once() {
    let error = Bus::connect(&socket("nobody")).unwrap_err();
    assert_eq!(error, TachyonError::NetworkError);
    assert_eq!(
        Bus::listen(&socket("badcap"), 1000).unwrap_err(),
        TachyonError::InvalidSize
    );
}

#[test]
fn numa_node_is_checked_as_upstream() {
    let path = socket("numa");
    let _consumer = forwarding_consumer(&path, 0);
    let bus = connect(&path);
    assert_eq!(bus.set_numa_node(0), Ok(()));
    assert_eq!(bus.set_numa_node(64), Err(TachyonError::InvalidSize));
    assert_eq!(bus.set_numa_node(-1), Err(TachyonError::InvalidSize));
}

#[test]
fn rpc_round_trip_in_both_styles() {
    let path = socket("rpc");
    let callee = {
        let path = path.clone();
        thread::spawn(move || {
            let bus = RpcBus::listen(&path, CAPACITY, CAPACITY).unwrap();
            // Copying reply.
            let request = bus.serve(10_000).unwrap();
            assert_eq!((request.type_id, request.data()), (1, &b"hello"[..]));
            let (cid, reversed) = (
                request.correlation_id,
                request.data().iter().rev().copied().collect::<Vec<u8>>(),
            );
            request.commit().unwrap();
            bus.reply(cid, &reversed, 2).unwrap();
            // Zero-copy reply.
            let request = bus.serve(10_000).unwrap();
            let cid = request.correlation_id;
            request.commit().unwrap();
            assert_eq!(
                bus.acquire_reply(0, 4).unwrap_err(),
                TachyonError::InvalidSize
            );
            let guard = bus.acquire_reply(cid, 4).unwrap();
            guard.write(&42u32.to_le_bytes());
            assert_eq!(guard.commit(4, 9).unwrap(), 0);
        })
    };
    let bus = rpc_connect(&path);
    let cid = bus.call(b"hello", 1).unwrap();
    assert_eq!(cid, 1, "calls are numbered from 1");
    let reply = bus.wait(cid, 10_000).unwrap();
    assert_eq!((reply.type_id, reply.data()), (2, &b"olleh"[..]));
    reply.commit().unwrap();

    // A dropped call guard sends nothing: the next call is the one answered.
    drop(bus.acquire_call(32).unwrap());
    let guard = bus.acquire_call(4).unwrap();
    guard.write(b"ping");
    let cid = guard.commit(4, 7).unwrap();
    assert_eq!(cid, 2);
    let reply = bus.wait(cid, 10_000).unwrap();
    assert_eq!((reply.type_id, reply.actual_size), (9, 4));
    assert_eq!(reply.data(), 42u32.to_le_bytes());
    reply.commit().unwrap();
    callee.join().unwrap();
}

#[test]
fn rpc_replies_come_back_in_call_order() {
    const CALLS: u32 = 8;
    let path = socket("rpcorder");
    let callee = {
        let path = path.clone();
        thread::spawn(move || {
            let bus = RpcBus::listen(&path, CAPACITY * 4, CAPACITY * 4).unwrap();
            bus.set_polling_mode(true);
            for _ in 0..CALLS {
                let request = bus.serve(10_000).unwrap();
                let (cid, value) = (request.correlation_id, request.data().to_vec());
                request.commit().unwrap();
                bus.reply(cid, &value, 0).unwrap();
            }
        })
    };
    let bus = rpc_connect(&path);
    let sent: Vec<u32> = (0..CALLS).map(|i| i * 100).collect();
    let cids: Vec<u64> = sent
        .iter()
        .map(|v| bus.call(&v.to_le_bytes(), 0).unwrap())
        .collect();
    assert_eq!(cids, (1..=u64::from(CALLS)).collect::<Vec<_>>());
    for (value, cid) in sent.iter().zip(cids) {
        let reply = bus.wait(cid, 10_000).unwrap();
        assert_eq!(reply.data(), value.to_le_bytes());
        reply.commit().unwrap();
    }
    callee.join().unwrap();
}

#[test]
fn an_rpc_bus_is_shared_across_threads() {
    // Upstream's RpcBus is Sync: one thread waits while another calls.
    let path = socket("rpcsync");
    let callee = {
        let path = path.clone();
        thread::spawn(move || {
            let bus = RpcBus::listen(&path, CAPACITY, CAPACITY).unwrap();
            let request = bus.serve(10_000).unwrap();
            let cid = request.correlation_id;
            request.commit().unwrap();
            bus.reply(cid, b"pong", 1).unwrap();
        })
    };
    let bus = rpc_connect(&path);
    thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let reply = bus.wait(1, 10_000).unwrap();
            reply.data().to_vec()
        });
        thread::sleep(Duration::from_millis(50));
        assert_eq!(bus.call(b"ping", 0).unwrap(), 1);
        assert_eq!(waiter.join().unwrap(), b"pong");
    });
    callee.join().unwrap();
}

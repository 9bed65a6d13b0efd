//! An RPC caller in upstream's shape: `call` (or `acquire_call` + `write` + `commit`), then
//! `wait(cid, spin)`, check, `commit`. Call i has msg_type `1 + i % 1000`, the test pattern,
//! and a size cycling through 1..=`--max-size`; the reply must carry msg_type + 1 and the
//! same bytes. A last call of msg_type 0 stops the callee. Last stdout line:
//! {"calls": N, "bad": B}; exit 1 when B > 0.
//!
//! `--socket PATH [--count N] [--max-size BYTES]`

use tachyon_compat_programs::{arg, pattern_byte, retry_connect};
use tachyon_ipc::{RpcBus, TachyonError};

fn call_retrying(bus: &RpcBus, payload: &[u8], msg_type: u32, in_place: bool) -> u64 {
    loop {
        let called = if in_place {
            bus.acquire_call(payload.len()).and_then(|guard| {
                guard.write(payload);
                guard.commit(payload.len(), msg_type)
            })
        } else {
            bus.call(payload, msg_type)
        };
        match called {
            Ok(cid) => return cid,
            Err(TachyonError::BufferFull) => std::thread::yield_now(),
            Err(other) => panic!("call: {other}"),
        }
    }
}

fn main() {
    let socket: String = arg("--socket", "/tmp/tachyon_rpc.sock".into());
    let count: u64 = arg("--count", 1000);
    let max_size: usize = arg("--max-size", 1024);
    let bus = retry_connect(|| RpcBus::connect(&socket));
    let mut bad = 0u64;
    for i in 0..count {
        let size = 1 + (i as usize % max_size);
        let payload: Vec<u8> = (0..size).map(|j| pattern_byte(i, j)).collect();
        let msg_type = 1 + (i % 1000) as u32;
        let cid = call_retrying(&bus, &payload, msg_type, i % 2 == 1);
        let reply = bus.wait(cid, 10_000).expect("wait");
        let ok = reply.correlation_id == cid
            && reply.type_id == msg_type + 1
            && reply.actual_size == size
            && reply.data() == &payload[..];
        reply.commit().expect("commit reply");
        if !ok {
            bad += 1;
            eprintln!("bad reply to call {i} (cid {cid})");
        }
    }
    let cid = call_retrying(&bus, b"\0", 0, false);
    bus.wait(cid, 10_000)
        .expect("wait for the stop call")
        .commit()
        .expect("commit");
    println!("{}", serde_json::json!({"calls": count, "bad": bad}));
    if bad > 0 {
        std::process::exit(1);
    }
}

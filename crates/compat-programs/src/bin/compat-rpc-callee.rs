//! An RPC callee in upstream's shape: `serve`, read, `commit`, then `reply` by correlation
//! id with the payload and msg_type + 1 (retrying while the reply ring is full). A request of
//! msg_type 0 is answered, then the program exits. Last stdout line: {"served": N}.
//!
//! `--socket PATH [--cap BYTES]`

use tachyon_compat_programs::arg;
use tachyon_ipc::{RpcBus, TachyonError};

fn main() {
    let socket: String = arg("--socket", "/tmp/tachyon_rpc.sock".into());
    let cap: usize = arg("--cap", 1 << 20);
    let bus = RpcBus::listen(&socket, cap, cap).expect("listen");
    let mut served = 0u64;
    loop {
        let request = bus.serve(10_000).expect("serve");
        let (cid, msg_type) = (request.correlation_id, request.type_id);
        let payload = request.data().to_vec();
        request.commit().expect("commit request");
        // Every other reply is written in place, to exercise both ways of replying.
        loop {
            let sent = if served % 2 == 0 {
                bus.reply(cid, &payload, msg_type + 1)
            } else {
                bus.acquire_reply(cid, payload.len()).and_then(|mut guard| {
                    guard.as_mut_slice()[..payload.len()].copy_from_slice(&payload);
                    guard.commit(payload.len(), msg_type + 1).map(drop)
                })
            };
            match sent {
                Ok(()) => break,
                Err(TachyonError::BufferFull) => std::thread::yield_now(),
                Err(other) => panic!("reply to {cid}: {other}"),
            }
        }
        served += 1;
        if msg_type == 0 {
            break;
        }
    }
    println!("{}", serde_json::json!({ "served": served }));
}

//! A batching producer in the shape upstream's users write it: `acquire_tx`, `write`,
//! `commit_unflushed`, a `flush` every 64 messages, and back-pressure on `BufferFull` (flush,
//! back off, retry). Message i has type id `1 + i % 1000` and the test pattern; a type-0
//! sentinel ends the stream. Last stdout line: {"sent", "bytes", "full_retries"}.
//!
//! `--socket PATH [--listen] [--capacity BYTES] [--count N] [--max-size BYTES]`

use tachyon_compat_programs::{arg, flag, pattern_byte, retry_connect};
use tachyon_ipc::{Bus, TachyonError, make_type_id};

const FLUSH_EVERY: u64 = 64;

fn main() {
    let socket: String = arg("--socket", "/tmp/tachyon_market.sock".into());
    let count: u64 = arg("--count", 100_000);
    let max_size: usize = arg("--max-size", 256);
    let bus = if flag("--listen") {
        Bus::listen(&socket, arg("--capacity", 1 << 20)).expect("listen")
    } else {
        retry_connect(|| Bus::connect(&socket))
    };
    let mut payload = vec![0u8; max_size];
    let (mut bytes, mut full_retries) = (0u64, 0u64);
    for i in 0..count {
        let size = (i as usize * 7919) % (max_size + 1);
        for (j, byte) in payload[..size].iter_mut().enumerate() {
            *byte = pattern_byte(i, j);
        }
        let type_id = make_type_id(0, 1 + (i % 1000) as u16);
        loop {
            match bus.acquire_tx(size) {
                Ok(guard) => {
                    guard.write(&payload[..size]);
                    guard.commit_unflushed(size, type_id).expect("commit");
                    break;
                }
                Err(TachyonError::BufferFull) => {
                    // Let the consumer see what is committed, then give it time.
                    bus.flush();
                    full_retries += 1;
                    std::thread::yield_now();
                }
                Err(other) => panic!("acquire_tx: {other}"),
            }
        }
        bytes += size as u64;
        if (i + 1) % FLUSH_EVERY == 0 {
            bus.flush();
        }
    }
    loop {
        match bus.send(&[], 0) {
            Ok(()) => break,
            Err(TachyonError::BufferFull) => std::thread::yield_now(),
            Err(other) => panic!("send sentinel: {other}"),
        }
    }
    let summary = serde_json::json!({"sent": count, "bytes": bytes, "full_retries": full_retries});
    println!("{summary}");
}

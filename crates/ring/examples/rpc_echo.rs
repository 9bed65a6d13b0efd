//! RPC callee: listens, answers each request with the same payload and message type + 1,
//! and exits 0 after answering a request of message type 0. Prints `{"served": N}`.
//!
//! ```text
//! cargo run --release -p tachyon-ring --example rpc_echo -- --socket /tmp/rpc.sock
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tachyon_ring::Bus;

mod common;

#[derive(Parser, Debug)]
#[command(about = "Echo RPC callee on a tachyon RPC bus")]
struct Args {
    /// Unix socket path of the handshake.
    #[arg(long, default_value = "/tmp/tachyon_rpc.sock")]
    socket: PathBuf,
    /// Request (caller → callee) ring bytes.
    #[arg(long, default_value_t = 1 << 20)]
    cap_fwd: usize,
    /// Reply (callee → caller) ring bytes.
    #[arg(long, default_value_t = 1 << 20)]
    cap_rev: usize,
    /// Drop requests of this message type unanswered: the crate then sends upstream's error
    /// reply (0xFFFF), as its dispatcher does for a failing handler.
    #[arg(long, value_name = "T")]
    drop_type: Option<u16>,
}

/// How long a reply waits for room in the reply ring (the caller frees it by reading).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match common::install_stop("rpc_echo") {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    let mut served = 0;
    let outcome = run(&args, &stop, &mut served);
    // The summary: when done, or so far when a signal stopped us.
    if outcome.is_ok() || stop.caught().is_some() {
        println!("{}", serde_json::json!({ "served": served }));
    }
    common::exit_code("rpc_echo", outcome.map(|()| true), &stop, 1)
}

fn run(args: &Args, stop: &common::StopSignal, served: &mut u64) -> tachyon_ring::Result<()> {
    let mut callee = Bus::options().cancel_token(stop.token()).rpc_listen(
        &args.socket,
        args.cap_fwd,
        args.cap_rev,
    )?;
    loop {
        let mut request = callee.serve()?;
        let msg_type = request.msg_type();
        if Some(msg_type) == args.drop_type {
            drop(request);
            *served += 1;
            continue;
        }
        let len = request.data().len();
        // Zero copy: from the request slot straight into the reply slot.
        let (data, mut reply) = request.reserve_reply(len, REPLY_TIMEOUT)?;
        reply.copy_from_slice(data);
        reply.commit(len, msg_type.wrapping_add(1))?;
        *served += 1;
        if msg_type == 0 {
            return Ok(());
        }
    }
}

//! RPC caller: makes `--count` calls (payload byte j of call i is `(i*31 + j) mod 256`,
//! message type `1 + (i mod 1000)`), checks each reply (same payload, type + 1), then sends
//! one call of type 0 and prints `{"calls": N, "bad": K}`; exits 0 only when K is 0.
//!
//! ```text
//! cargo run --release -p tachyon-ring --example rpc_call -- --socket /tmp/rpc.sock --count 1000 --sizes 0..4000
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tachyon_ring::Bus;

#[derive(Parser, Debug)]
#[command(about = "Checking RPC caller on a tachyon RPC bus")]
struct Args {
    /// Unix socket path of the handshake.
    #[arg(long, default_value = "/tmp/tachyon_rpc.sock")]
    socket: PathBuf,
    /// Calls before the final type-0 call.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Payload sizes drawn uniformly from MIN..MAX (inclusive).
    #[arg(long, value_parser = common::parse_size_range, default_value = "1..1024")]
    sizes: (usize, usize),
    /// Sizes in turn FROM, FROM±1, ..., TO (every size when `--count` is |TO-FROM|+1).
    #[arg(long, value_parser = common::parse_sweep)]
    sweep: Option<(usize, usize)>,
    /// Skip the final type-0 call (a callee that cannot take more is stopped by the test).
    #[arg(long)]
    no_final: bool,
    /// Seed of the size draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Calls of this message type expect upstream's error reply (type 0xFFFF) instead.
    #[arg(long)]
    failing_type: Option<u16>,
    /// Longest wait for each reply ("30s", "500ms").
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    reply_timeout: Duration,
}

/// What the dispatcher of tachyon-ipc answers when a handler raises.
const ERROR_REPLY_TYPE: u16 = 0xFFFF;

/// What the last line reports.
#[derive(Debug, Default)]
struct Summary {
    calls: u64,
    bad: u64,
    elapsed_s: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match common::install_stop("rpc_call") {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    let mut summary = Summary::default();
    let outcome = run(&args, &stop, &mut summary);
    let Summary {
        calls,
        bad,
        elapsed_s,
    } = summary;
    // The summary: when done, or so far when a signal stopped us.
    if outcome.is_ok() || stop.caught().is_some() {
        println!(
            "{}",
            serde_json::json!({
                "calls": calls, "bad": bad,
                "elapsed_s": elapsed_s, "calls_per_s": calls as f64 / elapsed_s.max(1e-9),
            })
        );
    }
    common::exit_code("rpc_call", outcome.map(|()| bad == 0), &stop, 2)
}

fn run(args: &Args, stop: &common::StopSignal, summary: &mut Summary) -> tachyon_ring::Result<()> {
    let mut caller = Bus::options()
        .cancel_token(stop.token())
        .connect_timeout(Duration::from_secs(5))
        .rpc_connect(&args.socket)?;
    if let Some(peer) = caller.peer_credentials() {
        eprintln!("rpc_call: connected to pid {} (uid {})", peer.pid, peer.uid);
    }
    let started = Instant::now();
    let outcome = call_all(args, &mut caller, summary);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    outcome?;
    if !args.no_final {
        let timeout = args.reply_timeout;
        let mut slot = caller.reserve_call_timeout(1, timeout)?;
        slot[0] = 0;
        let id = slot.commit(1, 0)?;
        drop(caller.wait_timeout(id, timeout)?);
    }
    Ok(())
}

fn call_all(
    args: &Args,
    caller: &mut tachyon_ring::Caller,
    summary: &mut Summary,
) -> tachyon_ring::Result<()> {
    let timeout = args.reply_timeout;
    let mut rng = SmallRng::seed_from_u64(args.seed);
    for i in 0..args.count {
        let len = match args.sweep {
            Some(sweep) => common::sweep_size(i, sweep),
            None => rng.random_range(args.sizes.0..=args.sizes.1),
        };
        let msg_type = common::pattern_type_id(i) as u16;
        let mut slot = caller.reserve_call_timeout(len, timeout)?;
        common::fill_pattern(i, &mut slot[..len]);
        let id = slot.commit(len, msg_type)?;
        let reply = caller.wait_timeout(id, timeout)?;
        let ok = if args.failing_type == Some(msg_type) {
            // Upstream's dispatcher answers with the failing message type, u16 big endian.
            reply.msg_type() == ERROR_REPLY_TYPE && reply.data() == msg_type.to_be_bytes()
        } else {
            reply.msg_type() == msg_type + 1
                && reply.data().len() == len
                && common::follows_pattern(i, reply.data())
        };
        summary.calls += 1;
        if !ok {
            summary.bad += 1;
            eprintln!(
                "call {i} (id {id}, type {msg_type}, {len} bytes): reply type {}, {} bytes",
                reply.msg_type(),
                reply.data().len()
            );
        }
    }
    Ok(())
}

//! `tachyon-consumer-upstream`: `tachyon-consumer` rebuilt on the upstream crate (crates.io
//! tachyon-ipc 0.5.1, the C++ core), the comparator of the end-to-end benchmark.
//!
//! Same arguments (tachyon-consumer's `cli.rs`), same tick decoding, same statistics and the same `--json` summary: the
//! decoding and statistics are tachyon-consumer's own source files (`crates/consumer/src/
//! tick.rs`, `stats.rs`), compiled in here, so both consumers measure identically and differ
//! only in the ring underneath. The loop mirrors tachyon-consumer's (quotes get a latency
//! sample, the clock is read for progress only every 4096 messages); it receives one message
//! at a time with `acquire_rx(spin)` (spin, then futex) and `commit`, as upstream's examples
//! do.

#[path = "../../../consumer/src/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../../../consumer/src/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../../../consumer/src/tick.rs"]
mod tick;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tachyon_compare::Result;
use tachyon_ipc::Bus;

use crate::cli::Args;
use crate::stats::Stats;
use crate::tick::{MarketTick, SENTINEL};

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = Args::parse();
    let mut stats = Stats::new();
    match run(&args, &mut stats) {
        Ok(()) => {
            if args.json {
                println!("{}", stats.to_json());
            } else {
                print!("{}", stats.to_table());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tachyon-consumer-upstream: {err}");
            ExitCode::FAILURE
        }
    }
}

fn open(args: &Args) -> Result<Bus> {
    let socket = args.socket.to_str().ok_or("the socket path is not UTF-8")?;
    if !args.connect {
        eprintln!(
            "tachyon-consumer-upstream: listening on {socket} ({} byte ring)",
            args.capacity
        );
        return Ok(Bus::listen(socket, args.capacity)?);
    }
    let deadline = Instant::now() + args.connect_timeout;
    loop {
        match Bus::connect(socket) {
            Ok(bus) => return Ok(bus),
            Err(err) if Instant::now() >= deadline => return Err(err.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn run(args: &Args, stats: &mut Stats) -> Result<()> {
    let bus = open(args)?;
    let spin = if args.pure_spin {
        bus.set_polling_mode(1);
        u32::MAX
    } else {
        args.spin
    };
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        let message = bus.acquire_rx(spin)?;
        if message.type_id == SENTINEL {
            stats.finish(Instant::now());
            message.commit()?;
            return Ok(());
        }
        stats.record_tick(message.type_id, MarketTick::decode(message.data()));
        message.commit()?;
        if stats.received % 4096 == 0 {
            // Look up now and then, as tachyon-consumer does: progress.
            let now = Instant::now();
            if now >= next_progress {
                eprintln!("tachyon-consumer-upstream: {}", stats.progress_line());
                next_progress = now + PROGRESS_EVERY;
            }
        }
    }
}

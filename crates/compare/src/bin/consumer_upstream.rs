//! `tachyon-consumer-upstream`: `tachyon-consumer` rebuilt on the upstream crate (crates.io
//! tachyon-ipc 0.5.1, the C++ core), the comparator of the end-to-end benchmark.
//!
//! Same arguments, same tick decoding, same statistics and the same `--json` summary: the
//! decoding and statistics are tachyon-consumer's own source files (`crates/consumer/src/
//! tick.rs`, `stats.rs`), compiled in here, so both consumers measure identically and differ
//! only in the ring underneath. The loop mirrors tachyon-consumer's (quotes get a latency
//! sample, the clock is read for progress only every 4096 messages); it receives one message
//! at a time with `acquire_rx(spin)` (spin, then futex) and `commit`, as upstream's examples
//! do.

#[allow(dead_code)]
#[path = "../../../consumer/src/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../../../consumer/src/tick.rs"]
mod tick;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tachyon_compare::Result;
use tachyon_ipc::Bus;

use crate::stats::Stats;
use crate::tick::{ASK, BID, MarketTick, SENTINEL};

/// Receive MarketTicks from a tachyon bus through upstream tachyon-ipc 0.5.1 and report
/// counts, rate and one-way latency (tachyon-consumer's summary).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Unix socket path of the bus handshake.
    #[arg(long, default_value = "/tmp/tachyon_market.sock")]
    socket: PathBuf,
    /// Create the ring and wait for the producer (the default).
    #[arg(long, conflicts_with = "connect")]
    listen: bool,
    /// Connect to a listening producer.
    #[arg(long)]
    connect: bool,
    /// Ring bytes when listening: a power of two, at least 64.
    #[arg(long, default_value_t = 1 << 20)]
    capacity: usize,
    /// With --connect: seconds to keep retrying while nobody listens.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Polls of an empty ring before sleeping on the futex.
    #[arg(long, default_value_t = 10_000)]
    spin: u32,
    /// Never sleep: spin on an empty ring.
    #[arg(long)]
    pure_spin: bool,
    /// Print the final summary as one JSON object, the last line on stdout.
    #[arg(long)]
    json: bool,
}

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
    let timeout = Duration::try_from_secs_f64(args.connect_timeout)
        .map_err(|err| format!("--connect-timeout {}: {err}", args.connect_timeout))?;
    let deadline = Instant::now() + timeout;
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
        let tick = MarketTick::decode(message.data()).filter(|tick| tick.price().is_finite());
        let is_quote = matches!(message.type_id, BID | ASK);
        let latency = tick
            .filter(|_| is_quote)
            .and_then(|tick| one_way_latency_ns(tick.timestamp_ns()));
        stats.record(message.type_id, tick.map(|tick| tick.quantity()), latency);
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

/// Receive time minus the tick's timestamp, both `CLOCK_REALTIME` (as tachyon-consumer).
fn one_way_latency_ns(timestamp_ns: u64) -> Option<u64> {
    if timestamp_ns == 0 {
        return None;
    }
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos() as u64;
    Some(now_ns.saturating_sub(timestamp_ns))
}

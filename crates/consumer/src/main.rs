//! `tachyon-consumer`: reads market ticks from a tachyon bus (the pip-installed tachyon-ipc
//! Python producer, or any conforming peer) through the pure-Rust `tachyon-ring` crate, and
//! reports counts, rate and one-way latency.

mod cli;
mod stats;
mod tick;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tachyon_ring::{Bus, Consumer, Error};

use crate::cli::Args;
use crate::stats::{Stats, one_way_latency_ns};
use crate::tick::{ASK, BID, MarketTick, SENTINEL};

/// How often the receive loop looks up to check for signals and print progress.
const LOOK_UP: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = Args::parse();
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(err) = signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
        {
            eprintln!("tachyon-consumer: cannot install the handler of signal {sig}: {err}");
            return ExitCode::FAILURE;
        }
    }
    let mut stats = Stats::new();
    let outcome = run(&args, &signal, &mut stats);
    let caught = signal.load(Ordering::Relaxed) as i32;
    match outcome {
        Ok(()) if caught == 0 => {
            report(&args, &stats);
            ExitCode::SUCCESS
        }
        Ok(()) | Err(Error::Interrupted(_)) if caught != 0 => {
            eprintln!(
                "tachyon-consumer: stopped by signal {caught} after {} messages",
                stats.received
            );
            report(&args, &stats);
            ExitCode::from(128 + caught as u8)
        }
        Ok(()) => unreachable!("caught is 0 in the first arm"),
        Err(Error::PeerGone { pid, messages }) => {
            eprintln!(
                "tachyon-consumer: the producer (pid {pid}) exited before its sentinel; received \
                 {messages} messages, everything it had published"
            );
            report(&args, &stats);
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("tachyon-consumer: {err}");
            ExitCode::FAILURE
        }
    }
}

fn report(args: &Args, stats: &Stats) {
    if args.json {
        println!("{}", stats.to_json());
    } else {
        print!("{}", stats.to_table());
    }
}

fn open(args: &Args) -> tachyon_ring::Result<Consumer> {
    let options = Bus::options()
        .spin_threshold(args.spin)
        .pure_spin(args.pure_spin)
        .connect_timeout(args.connect_timeout);
    let bus = if args.connect {
        options.connect(&args.socket)?
    } else {
        eprintln!(
            "tachyon-consumer: listening on {} ({} byte ring)",
            args.socket.display(),
            args.capacity
        );
        options.listen(&args.socket, args.capacity)?
    };
    if let Some(peer) = bus.peer_credentials() {
        eprintln!(
            "tachyon-consumer: connected to pid {} (uid {})",
            peer.pid, peer.uid
        );
    }
    Ok(bus.into_consumer())
}

/// Receives until the sentinel or a signal; `Ok` in both cases (the caller tells them apart).
fn run(args: &Args, signal: &AtomicUsize, stats: &mut Stats) -> tachyon_ring::Result<()> {
    let mut consumer = open(args)?;
    let outcome = receive(&mut consumer, signal, stats);
    stats.sleeps = consumer.sleep_stats();
    outcome
}

fn receive(
    consumer: &mut Consumer,
    signal: &AtomicUsize,
    stats: &mut Stats,
) -> tachyon_ring::Result<()> {
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        if signal.load(Ordering::Relaxed) != 0 {
            return Ok(());
        }
        // One message, taken the moment it lands (spin, then futex); the timeout only makes the
        // loop look up now and then for signals and progress.
        match consumer.recv_timeout(LOOK_UP) {
            Ok(message) => {
                if message.type_id() == SENTINEL {
                    stats.finish(Instant::now());
                    return Ok(());
                }
                // Copied out (the tick is packed): a payload that is not one tick is `Err`.
                let tick = message
                    .read_pod::<MarketTick>()
                    .ok()
                    .filter(|tick| tick.price().is_finite());
                let is_quote = matches!(message.type_id(), BID | ASK);
                let latency = tick
                    .filter(|_| is_quote)
                    .and_then(|tick| one_way_latency_ns(tick.timestamp_ns()));
                stats.record(message.type_id(), tick.map(|tick| tick.quantity()), latency);
                if stats.received % 4096 != 0 {
                    continue;
                }
            }
            Err(Error::Timeout(_)) => {}
            Err(err) => return Err(err),
        }
        let now = Instant::now();
        if now >= next_progress {
            eprintln!("tachyon-consumer: {}", stats.progress_line());
            next_progress = now + PROGRESS_EVERY;
        }
    }
}

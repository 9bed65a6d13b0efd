//! `tachyon-consumer`: reads market ticks from a tachyon bus (the pip-installed tachyon-ipc
//! Python producer, or any conforming peer) through the pure-Rust `tachyon-ring` crate, and
//! reports counts, rate and one-way latency.

mod cli;
mod fan_in;
mod signals;
mod stats;
mod tick;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tachyon_ring::{Bus, Consumer, Error};

use crate::cli::Args;
use crate::signals::StopSignal;
use crate::stats::{Stats, WaitSummary};
use crate::tick::{MarketTick, SENTINEL};

/// How often the receive loop looks up to print progress (signals end it at once).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match StopSignal::install() {
        Ok(stop) => stop,
        Err(err) => {
            eprintln!("tachyon-consumer: cannot install the SIGINT/SIGTERM handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.producers > 1 {
        return run_fan_in(&args, &stop);
    }
    let mut stats = Stats::new();
    let outcome = run(&args, &stop, &mut stats);
    match (outcome, stop.caught()) {
        // The sentinel arrived: done, whatever signal came after it.
        (Ok(()), _) => {
            report(&args, &stats);
            ExitCode::SUCCESS
        }
        (Err(Error::Cancelled(_)), Some(caught)) => {
            eprintln!(
                "tachyon-consumer: stopped by signal {caught} after {} messages",
                stats.received
            );
            report(&args, &stats);
            ExitCode::from(128 + caught as u8)
        }
        (Err(Error::PeerGone { pid, messages }), _) => {
            eprintln!(
                "tachyon-consumer: the producer (pid {pid}) exited before its sentinel; received \
                 {messages} messages, everything it had published"
            );
            report(&args, &stats);
            ExitCode::FAILURE
        }
        (Err(err), _) => {
            eprintln!("tachyon-consumer: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--producers N` (N > 1): exit 0 when every producer sent its sentinel, 1 when any died
/// (after the others completed) or on an error, 128 + signal on SIGINT/SIGTERM.
fn run_fan_in(args: &Args, stop: &StopSignal) -> ExitCode {
    let mut fan_in = fan_in::FanIn::new(usize::from(args.producers));
    let outcome = fan_in::run(args, stop, &mut fan_in);
    let code = match (&outcome, stop.caught()) {
        (Ok(()), _) if fan_in.dead() == 0 => ExitCode::SUCCESS,
        (Ok(()), _) => {
            eprintln!(
                "tachyon-consumer: {} of {} producers died before their sentinel",
                fan_in.dead(),
                args.producers
            );
            ExitCode::FAILURE
        }
        (Err(Error::Cancelled(_)), Some(caught)) => {
            eprintln!(
                "tachyon-consumer: stopped by signal {caught} after {} messages",
                fan_in.total.received
            );
            ExitCode::from(128 + caught as u8)
        }
        (Err(err), _) => {
            eprintln!("tachyon-consumer: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", fan_in.to_json());
    } else {
        print!("{}", fan_in.to_table());
    }
    code
}

fn report(args: &Args, stats: &Stats) {
    if args.json {
        println!("{}", stats.to_json());
    } else {
        print!("{}", stats.to_table());
    }
}

fn open(args: &Args, stop: &StopSignal) -> tachyon_ring::Result<Consumer> {
    let options = Bus::options()
        .cancel_token(stop.token())
        .spin_threshold(args.spin)
        .spin_policy(args.spin_policy.into())
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

/// Receives until the sentinel (`Ok`) or a signal (`Err(Cancelled)`).
fn run(args: &Args, stop: &StopSignal, stats: &mut Stats) -> tachyon_ring::Result<()> {
    let mut consumer = open(args, stop)?;
    let outcome = receive(&mut consumer, stop, stats);
    stats.sleeps = consumer.sleep_stats();
    stats.wait = Some(WaitSummary::of(&consumer.stats()));
    outcome
}

fn receive(
    consumer: &mut Consumer,
    stop: &StopSignal,
    stats: &mut Stats,
) -> tachyon_ring::Result<()> {
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        // One message, taken the moment it lands (spin, then futex); the timeout only makes the
        // loop look up now and then for progress. A signal cancels the wait itself.
        // Copied out (the tick is packed): a payload that is not one tick is `Err`.
        let received = match consumer.recv_timeout(PROGRESS_EVERY) {
            Ok(message) => Some((message.type_id(), message.read_pod::<MarketTick>().ok())),
            Err(Error::Timeout(_)) => None,
            Err(err) => return Err(err),
        };
        if let Some((type_id, tick)) = received {
            if type_id == SENTINEL {
                stats.finish(Instant::now());
                return Ok(());
            }
            let latency = stats.record_tick(type_id, tick);
            stats.record_wait(consumer.last_wait(), latency);
            if stats.received % 4096 != 0 {
                continue;
            }
            // A ring that never runs empty never reaches the wait that watches the token:
            // look at it here too, every 4096 messages.
            if stop.token().is_cancelled() {
                stats.finish(Instant::now());
                return Err(Error::Cancelled("receiving a stream that never ran dry"));
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            eprintln!("tachyon-consumer: {}", stats.progress_line());
            next_progress = now + PROGRESS_EVERY;
        }
    }
}

//! Receives test-pattern messages until the sentinel (type id 0), checks each one, and prints
//! `{"received": N, "bytes": B, "bad": K}` as its last line; exits 0 only when K is 0.
//!
//! ```text
//! cargo run --release -p tachyon-ring --example consumer -- --listen --socket /tmp/t.sock
//! ```

mod common;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tachyon_ring::Bus;

#[derive(Parser, Debug)]
#[command(about = "Receive and verify test-pattern messages from a tachyon bus")]
struct Args {
    #[command(flatten)]
    endpoint: common::Endpoint,
    /// Spins on an empty ring before sleeping on the futex.
    #[arg(long, default_value_t = tachyon_ring::BusOptions::DEFAULT_SPIN_THRESHOLD)]
    spin: u32,
    /// Never sleep.
    #[arg(long)]
    pure_spin: bool,
    /// Give up when no message arrives for this many seconds.
    #[arg(long, value_parser = common::parse_seconds, default_value = "60")]
    idle_timeout: Duration,
    /// After this many messages, kill this process with SIGKILL (tests a producer waiting for
    /// space on a dead consumer).
    #[arg(long)]
    die_after: Option<u64>,
    /// Print each bad message's index and reason on stderr.
    #[arg(long)]
    verbose: bool,
}

/// What the last line reports.
#[derive(Debug, Default)]
struct Summary {
    received: u64,
    bytes: u64,
    bad: u64,
    sleeps: u64,
    wakeups: u64,
    missed_wakes: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match common::install_stop("consumer") {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    let mut summary = Summary::default();
    let outcome = run(&args, &stop, &mut summary);
    let Summary {
        received,
        bytes,
        bad,
        sleeps,
        wakeups,
        missed_wakes,
    } = summary;
    // The summary: at the sentinel, or so far when a signal stopped us.
    if outcome.is_ok() || stop.caught().is_some() {
        println!(
            "{}",
            serde_json::json!({
                "received": received, "bytes": bytes, "bad": bad,
                "sleeps": sleeps, "wakeups": wakeups, "missed_wakes": missed_wakes,
            })
        );
    }
    common::exit_code("consumer", outcome.map(|()| bad == 0), &stop, 2)
}

fn run(args: &Args, stop: &common::StopSignal, summary: &mut Summary) -> tachyon_ring::Result<()> {
    let options = Bus::options()
        .cancel_token(stop.token())
        .spin_threshold(args.spin)
        .pure_spin(args.pure_spin);
    let mut consumer = args.endpoint.open(options)?.into_consumer();
    let outcome = receive(args, &mut consumer, summary);
    (summary.sleeps, summary.wakeups) = consumer.sleep_stats();
    summary.missed_wakes = consumer.missed_wakes();
    outcome
}

fn receive(
    args: &Args,
    consumer: &mut tachyon_ring::Consumer,
    summary: &mut Summary,
) -> tachyon_ring::Result<()> {
    let idle = args.idle_timeout;
    let Summary {
        received,
        bytes,
        bad,
        ..
    } = summary;
    loop {
        let message = consumer.recv_timeout(idle)?;
        if message.type_id() == 0 {
            if !message.is_empty() {
                *bad += 1;
            }
            return Ok(());
        }
        let type_ok = message.type_id() == common::pattern_type_id(*received);
        let data_ok = common::follows_pattern(*received, message.data());
        if !(type_ok && data_ok) {
            *bad += 1;
            if args.verbose {
                eprintln!(
                    "message {received}: type_id {} (want {}), {} bytes, payload {}",
                    message.type_id(),
                    common::pattern_type_id(*received),
                    message.len(),
                    if data_ok { "ok" } else { "wrong" }
                );
            }
        }
        *received += 1;
        *bytes += message.len() as u64;
        if args.die_after == Some(*received) {
            common::die();
        }
    }
}

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
    /// Give up when no message arrives for this long ("60s", "500ms").
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    idle_timeout: Duration,
    /// After this many messages, kill this process with SIGKILL (tests a producer waiting for
    /// space on a dead consumer).
    #[arg(long)]
    die_after: Option<u64>,
    /// Print each bad message's index and reason on stderr.
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("consumer: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> tachyon_ring::Result<u64> {
    let options = Bus::options()
        .spin_threshold(args.spin)
        .pure_spin(args.pure_spin);
    let mut consumer = args.endpoint.open(options)?.into_consumer();
    let idle = args.idle_timeout;
    let (mut received, mut bytes, mut bad) = (0u64, 0u64, 0u64);
    loop {
        let message = consumer.recv_timeout(idle)?;
        if message.type_id() == 0 {
            if !message.is_empty() {
                bad += 1;
            }
            break;
        }
        let type_ok = message.type_id() == common::pattern_type_id(received);
        let data_ok = common::follows_pattern(received, message.data());
        if !(type_ok && data_ok) {
            bad += 1;
            if args.verbose {
                eprintln!(
                    "message {received}: type_id {} (want {}), {} bytes, payload {}",
                    message.type_id(),
                    common::pattern_type_id(received),
                    message.len(),
                    if data_ok { "ok" } else { "wrong" }
                );
            }
        }
        received += 1;
        bytes += message.len() as u64;
        if args.die_after == Some(received) {
            common::die();
        }
    }
    let (sleeps, wakeups) = consumer.sleep_stats();
    println!(
        "{}",
        serde_json::json!({
            "received": received, "bytes": bytes, "bad": bad,
            "sleeps": sleeps, "wakeups": wakeups,
        })
    );
    Ok(bad)
}

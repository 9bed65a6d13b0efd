//! Receives test-pattern messages until the sentinel (type id 0), checks each one, and prints
//! `{"received": N, "bytes": B, "bad": K}` as its last line; exits 0 only when K is 0.
//!
//! ```text
//! cargo run --release -p tachyon-ring --example consumer -- --listen --socket /tmp/t.sock
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use common::receiving::{Args, Summary};
use tachyon_ring::Bus;

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match common::install_stop("consumer") {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    let mut summary = Summary::default();
    let outcome = run(&args, &stop, &mut summary);
    // The summary: at the sentinel, or so far when a signal stopped us.
    if outcome.is_ok() || stop.caught().is_some() {
        summary.print();
    }
    common::exit_code("consumer", outcome.map(|()| summary.bad == 0), &stop, 2)
}

fn run(args: &Args, stop: &common::StopSignal, summary: &mut Summary) -> tachyon_ring::Result<()> {
    let options = Bus::options()
        .cancel_token(stop.token())
        .spin_threshold(args.spin)
        .pure_spin(args.pure_spin);
    let bus = args.endpoint.open(options)?;
    // Connectors a listener turned away or lost before the handshake.
    if let Some(report) = bus.listen_report() {
        summary.refused = Some(report.refused);
        summary.vanished = Some(report.vanished);
    }
    let mut consumer = bus.into_consumer();
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
    loop {
        let (missed_before, index) = (consumer.missed_wakes(), summary.received);
        let message = consumer.recv_timeout(args.idle_timeout)?;
        let sentinel = summary.take(args, message.type_id(), message.data());
        drop(message);
        if consumer.missed_wakes() != missed_before {
            summary.missed_at.push(index);
        }
        if sentinel {
            return Ok(());
        }
    }
}

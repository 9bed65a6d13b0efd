//! `tachyon-bridge`: carries a tachyon bus across machines through NATS JetStream.
//!
//! ```text
//! tachyon-bridge out --socket P (--listen|--connect) --nats URL --stream S --subject-prefix X
//! tachyon-bridge in  --nats URL --stream S --durable D [--filter 'X.>'] --socket P (--listen|--connect)
//! ```
//!
//! `out` consumes the bus and publishes each message on `X.{route_id}.{msg_type}`; `in` pulls
//! the stream through a durable consumer and produces onto another bus. Messages arrive in
//! order, each once; docs/bridge.md states the guarantees and their limits.
//!
//! Exit codes: 0 when the bus peer exited and everything was bridged, 1 on an error,
//! 128 + N on signal N (130 SIGINT, 143 SIGTERM) after draining what was in flight. The
//! statistics go to stdout (one JSON object with `--json`), the log to stderr (`RUST_LOG`).

mod bus;
mod cli;
mod inbound;
mod mapping;
mod nats;
mod out;
mod signals;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Args, Command, NatsArgs};
use crate::signals::StopSignal;
use crate::stats::Stats;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,async_nats=warn".into()),
        )
        .init();
    let stop = match StopSignal::install() {
        Ok(stop) => stop,
        Err(err) => {
            eprintln!("tachyon-bridge: cannot install the SIGINT/SIGTERM handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tachyon-bridge: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stats = Stats::default();
    let (nats_args, outcome) = match &args.command {
        Command::Out(out_args) => (
            &out_args.nats,
            run_out(out_args, &stop, &runtime, &mut stats),
        ),
        Command::In(in_args) => (&in_args.nats, run_in(in_args, &stop, &runtime, &mut stats)),
    };
    // The NATS client's tasks end with the runtime; do not wait for their reconnect loops.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    finish(nats_args, &stop, outcome, &mut stats)
}

/// How a run ended, in the terms of the exit code.
enum Outcome {
    Signal,
    PeerGone,
    Failed(String),
}

fn run_out(
    args: &cli::OutArgs,
    stop: &StopSignal,
    runtime: &tokio::runtime::Runtime,
    stats: &mut Stats,
) -> Outcome {
    let consumer = match bus::open(&args.bus, stop.token()) {
        Ok(bus) => bus.into_consumer(),
        Err(tachyon_ring::Error::Cancelled(_)) => return Outcome::Signal,
        Err(err) => return Outcome::Failed(format!("bus {}: {err}", args.bus.socket.display())),
    };
    match out::run(args, consumer, stop.token(), stop.watch(), runtime, stats) {
        Ok(out::Ended::Signal) => Outcome::Signal,
        Ok(out::Ended::PeerGone) => Outcome::PeerGone,
        Ok(out::Ended::Oversize(oversize)) => Outcome::Failed(format!(
            "{oversize} (use --oversize skip to skip and count such messages)"
        )),
        Ok(out::Ended::Ring(err)) => Outcome::Failed(format!("bus: {err}")),
        Err(err) => Outcome::Failed(err),
    }
}

fn run_in(
    args: &cli::InArgs,
    stop: &StopSignal,
    runtime: &tokio::runtime::Runtime,
    stats: &mut Stats,
) -> Outcome {
    let (peer, producer) = match bus::open(&args.bus, stop.token()) {
        Ok(bus) => (bus::PeerWatch::new(&bus), bus.into_producer()),
        Err(tachyon_ring::Error::Cancelled(_)) => return Outcome::Signal,
        Err(err) => return Outcome::Failed(format!("bus {}: {err}", args.bus.socket.display())),
    };
    match inbound::run(args, producer, peer, stop.watch(), runtime, stats) {
        Ok(inbound::Ended::Signal) => Outcome::Signal,
        Ok(inbound::Ended::PeerGone) => Outcome::PeerGone,
        Ok(inbound::Ended::Ring(err)) => Outcome::Failed(format!("bus: {err}")),
        Ok(inbound::Ended::Mapping(err)) => Outcome::Failed(err),
        Err(err) => Outcome::Failed(err),
    }
}

fn finish(args: &NatsArgs, stop: &StopSignal, outcome: Outcome, stats: &mut Stats) -> ExitCode {
    let code = match (&outcome, stop.caught()) {
        (Outcome::Failed(err), _) => {
            eprintln!("tachyon-bridge: {err}");
            stats.ended_by = "error".into();
            ExitCode::FAILURE
        }
        (_, Some(signal)) => {
            stats.ended_by = format!("signal {signal}");
            ExitCode::from(128 + signal as u8)
        }
        (Outcome::PeerGone, None) => {
            stats.ended_by = "peer gone".into();
            ExitCode::SUCCESS
        }
        (Outcome::Signal, None) => {
            stats.ended_by = "stopped".into();
            ExitCode::SUCCESS
        }
    };
    if args.json {
        println!("{}", stats.to_json());
    } else {
        print!("{}", stats.to_table());
    }
    code
}

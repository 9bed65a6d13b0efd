//! The `consumer` example on the async ends (feature `tokio`): the same command line and the
//! same summary line, but every wait is an `.await` on a tokio runtime, served by the
//! process's one reactor thread instead of a blocked worker.
//!
//! ```text
//! cargo run --release -p tachyon-ring --features tokio --example async_consumer -- --listen
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use common::receiving::{Args, Summary};
use tachyon_ring::{AsyncConsumer, Bus, Error};

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match common::install_stop("async_consumer") {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("async_consumer: cannot start the tokio runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let mut summary = Summary::default();
    let outcome = runtime.block_on(run(&args, &stop, &mut summary));
    if outcome.is_ok() || stop.caught().is_some() {
        summary.print();
    }
    common::exit_code(
        "async_consumer",
        outcome.map(|()| summary.bad == 0),
        &stop,
        2,
    )
}

async fn run(
    args: &Args,
    stop: &common::StopSignal,
    summary: &mut Summary,
) -> tachyon_ring::Result<()> {
    let options = Bus::options()
        .cancel_token(stop.token())
        .spin_threshold(args.spin)
        .pure_spin(args.pure_spin);
    // The handshake blocks (one socket exchange): off the runtime's thread.
    let endpoint = args.endpoint.clone();
    let bus = tokio::task::spawn_blocking(move || endpoint.open(options))
        .await
        .map_err(|err| Error::Handshake(format!("the handshake task failed: {err}")))??;
    let mut consumer = AsyncConsumer::new(bus.into_consumer());
    loop {
        let message = match tokio::time::timeout(args.idle_timeout, consumer.recv()).await {
            Ok(received) => received?,
            Err(_) => return Err(Error::Timeout(args.idle_timeout)),
        };
        if summary.take(args, message.type_id(), message.data()) {
            return Ok(());
        }
    }
}

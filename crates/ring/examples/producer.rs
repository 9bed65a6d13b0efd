//! Sends `--count` test-pattern messages, then a sentinel (type id 0, empty payload).
//!
//! Message i has type id `1 + (i mod 1000)` and payload byte j equal to `(i*31 + j) mod 256`;
//! its size is `--size S`, uniform in `--sizes MIN..MAX` drawn from `--seed K`, or every size
//! in turn with `--sweep MIN..MAX`. When the
//! ring is full the producer waits for space (up to `--send-timeout`), which upstream cannot.
//!
//! ```text
//! cargo run --release -p tachyon-ring --example producer -- --connect --socket /tmp/t.sock --count 1000 --sizes 0..4000
//! ```

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tachyon_ring::Bus;

#[derive(Parser, Debug)]
#[command(about = "Send test-pattern messages on a tachyon bus")]
struct Args {
    #[command(flatten)]
    endpoint: common::Endpoint,
    /// Messages to send before the sentinel.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Payload bytes of every message.
    #[arg(long, conflicts_with = "sizes")]
    size: Option<usize>,
    /// Payload sizes drawn uniformly from MIN..MAX (inclusive).
    #[arg(long, value_parser = common::parse_size_range)]
    sizes: Option<(usize, usize)>,
    /// Sizes in turn FROM, FROM±1, ..., TO, FROM, ... (every size is sent when `--count` is
    /// at least |TO-FROM|+1); descending when FROM > TO.
    #[arg(long, value_parser = common::parse_sweep, conflicts_with_all = ["size", "sizes"])]
    sweep: Option<(usize, usize)>,
    /// Seed of the size draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Publish every message (`commit`) instead of batching (`commit_unflushed`: every 32).
    #[arg(long)]
    flush_each: bool,
    /// After this many messages, flush and pause for `--pause-ms` (exercises the consumer's
    /// futex sleep).
    #[arg(long)]
    pause_after: Option<u64>,
    /// Length of that pause, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pause_ms: u64,
    /// Do not send the sentinel (for a consumer told how many messages to expect).
    #[arg(long)]
    no_sentinel: bool,
    /// After this many messages, flush and kill this process with SIGKILL (tests peer-death
    /// detection: the consumer must deliver all of them, then report the peer gone).
    #[arg(long)]
    die_after: Option<u64>,
    /// Longest wait for space in a full ring ("60s", "500ms").
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    send_timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("producer: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> tachyon_ring::Result<()> {
    let bus = args.endpoint.open(Bus::options())?;
    let (min, max) = match (args.sizes, args.sweep) {
        (Some(range), _) => range,
        (None, Some((from, to))) => (from.min(to), from.max(to)),
        (None, None) => (args.size.unwrap_or(32), args.size.unwrap_or(32)),
    };
    if max > bus.max_payload() {
        return Err(tachyon_ring::Error::MessageTooLarge {
            len: max,
            slot_len: tachyon_ring::layout::slot_len(max).map_or(u64::MAX, |n| n as u64),
            capacity: bus.capacity(),
        });
    }
    let mut producer = bus.into_producer();
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let timeout = args.send_timeout;
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..args.count {
        let len = match args.sweep {
            Some(sweep) => common::sweep_size(i, sweep),
            None => rng.random_range(min..=max),
        };
        let mut slot = producer.reserve_timeout(len, timeout)?;
        common::fill_pattern(i, &mut slot[..len]);
        if args.flush_each {
            slot.commit(len, common::pattern_type_id(i))?;
        } else {
            slot.commit_unflushed(len, common::pattern_type_id(i))?;
        }
        bytes += len as u64;
        if args.die_after == Some(i + 1) {
            producer.flush();
            common::die();
        }
        if args.pause_after == Some(i + 1) {
            producer.flush();
            std::thread::sleep(Duration::from_millis(args.pause_ms));
        }
    }
    if !args.no_sentinel {
        producer.send_timeout(0, &[], timeout)?;
    }
    producer.flush(); // publishes the batch when there is no sentinel
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "sent": args.count,
            "bytes": bytes,
            "elapsed_s": elapsed,
            "msgs_per_s": args.count as f64 / elapsed.max(1e-9),
            "wakes": producer.wakes(),
        })
    );
    Ok(())
}

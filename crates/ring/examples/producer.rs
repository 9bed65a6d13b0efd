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
    /// After every message, publish and wait a gap drawn from MIN..MAX microseconds (busy
    /// wait): sparse traffic, in which the consumer falls asleep at every moment relative to a
    /// publish (the futex protocol's race, exercised thousands of times).
    #[arg(long, value_parser = common::parse_size_range)]
    gap_us: Option<(usize, usize)>,
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

/// What the last line reports.
#[derive(Debug, Default)]
struct Summary {
    sent: u64,
    bytes: u64,
    elapsed_s: f64,
    wakes: u64,
    /// With `--gap-us`: the messages whose publish (the flush that stores the head and wakes
    /// a sleeping consumer) took longer than [`HELD_PUBLISH`], the thread descheduled in it.
    /// A consumer's nap can run out inside such a publish, between the head store and the
    /// wake, without any wake being lost.
    held_publishes: Vec<u64>,
}

/// A publish normally takes a few microseconds, its `FUTEX_WAKE` included; one that took
/// longer was held up by the scheduler (or the hypervisor).
const HELD_PUBLISH: Duration = Duration::from_micros(20);

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = match common::install_stop("producer") {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    let mut summary = Summary::default();
    let outcome = run(&args, &stop, &mut summary);
    // The summary: when done, or so far when a signal stopped us.
    if outcome.is_ok() || stop.caught().is_some() {
        let Summary {
            sent,
            bytes,
            elapsed_s,
            wakes,
            held_publishes,
        } = summary;
        println!(
            "{}",
            serde_json::json!({
                "sent": sent,
                "bytes": bytes,
                "elapsed_s": elapsed_s,
                "msgs_per_s": sent as f64 / elapsed_s.max(1e-9),
                "wakes": wakes,
                "held_publishes": held_publishes,
            })
        );
    }
    common::exit_code("producer", outcome.map(|()| true), &stop, 1)
}

fn run(args: &Args, stop: &common::StopSignal, summary: &mut Summary) -> tachyon_ring::Result<()> {
    let bus = args
        .endpoint
        .open(Bus::options().cancel_token(stop.token()))?;
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
    let started = Instant::now();
    let outcome = send_all(args, &mut producer, summary, min, max);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.wakes = producer.wakes();
    outcome
}

fn send_all(
    args: &Args,
    producer: &mut tachyon_ring::Producer,
    summary: &mut Summary,
    min: usize,
    max: usize,
) -> tachyon_ring::Result<()> {
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let timeout = args.send_timeout;
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
        summary.sent += 1;
        summary.bytes += len as u64;
        if let Some((min, max)) = args.gap_us {
            let publish = Instant::now();
            producer.flush();
            if publish.elapsed() > HELD_PUBLISH {
                summary.held_publishes.push(i);
            }
            let gap = Duration::from_micros(rng.random_range(min..=max) as u64);
            let until = Instant::now() + gap;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
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
    Ok(())
}

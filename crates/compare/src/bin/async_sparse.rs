//! `AsyncConsumer::recv().await` against the blocking `Consumer::recv`, both fed by the real
//! tachyon-ipc Python producer (`python/producer.py`) sending sparse ticks: the case where an
//! async end used to sleep through tachyon-ipc's wake (its producer leaves the sleeping word
//! set) until its nap ran out. Same gaps, alternating trials, one table.
//!
//! ```text
//! cargo build --release -p tachyon-compare --bin tachyon-compare-async
//! target/release/tachyon-compare-async --pairs 5 --ticks 30 --gap-ms 100..150
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hdrhistogram::Histogram;
use tachyon_ring::{AsyncConsumer, Bus, Consumer, Error};

#[derive(Parser, Debug)]
#[command(
    about = "AsyncConsumer vs the blocking Consumer on the real Python producer's sparse ticks"
)]
struct Args {
    /// Trials of each consumer, alternating.
    #[arg(long, default_value_t = 5)]
    pairs: u32,
    /// Ticks per trial.
    #[arg(long, default_value_t = 30)]
    ticks: u64,
    /// The producer's gap before each tick, MIN..MAX milliseconds.
    #[arg(long, default_value = "100..150")]
    gap_ms: String,
    /// The venv's Python, with tachyon-ipc installed.
    #[arg(long)]
    python: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Waiter {
    Blocking,
    Async,
}

/// One trial's one-way latencies, and the async end's wake counts.
struct Trial {
    p50_us: f64,
    p99_us: f64,
    missed_wakes: u64,
    woken_by_ring: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    if !python.exists() {
        return Err(format!(
            "{} not found: run ./just build first (it installs the real tachyon-ipc)",
            python.display()
        )
        .into());
    }
    let (lo, hi) = args
        .gap_ms
        .split_once("..")
        .ok_or("--gap-ms takes MIN..MAX")?;
    let gap_us = format!(
        "{}..{}",
        lo.parse::<u64>()? * 1000,
        hi.parse::<u64>()? * 1000
    );
    let producer = root.join("python/producer.py");
    let mut results: Vec<(Waiter, Trial)> = Vec::new();
    for pair in 0..args.pairs {
        // Alternate which goes first, so drift on the machine hits both alike.
        let order = if pair % 2 == 0 {
            [Waiter::Blocking, Waiter::Async]
        } else {
            [Waiter::Async, Waiter::Blocking]
        };
        for waiter in order {
            let trial = trial(waiter, &python, &producer, args.ticks, &gap_us)?;
            eprintln!(
                "pair {pair} {waiter:?}: p50 {:.1} µs, p99 {:.1} µs, woken {} missed {}",
                trial.p50_us, trial.p99_us, trial.woken_by_ring, trial.missed_wakes
            );
            results.push((waiter, trial));
        }
    }
    let median = |waiter: Waiter, of: fn(&Trial) -> f64| {
        let mut values: Vec<f64> = results
            .iter()
            .filter(|(w, _)| *w == waiter)
            .map(|(_, t)| of(t))
            .collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ratios = |of: fn(&Trial) -> f64| {
        let blocking: Vec<f64> = results
            .iter()
            .filter(|(w, _)| *w == Waiter::Blocking)
            .map(|(_, t)| of(t))
            .collect();
        let asynchronous: Vec<f64> = results
            .iter()
            .filter(|(w, _)| *w == Waiter::Async)
            .map(|(_, t)| of(t))
            .collect();
        let mut ratios: Vec<f64> = asynchronous
            .iter()
            .zip(&blocking)
            .map(|(a, b)| a / b)
            .collect();
        ratios.sort_by(f64::total_cmp);
        (
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        )
    };
    let missed: u64 = results.iter().map(|(_, t)| t.missed_wakes).sum();
    println!(
        "| measure | blocking `Consumer::recv` | `AsyncConsumer::recv` | async / blocking (median of {} pairs, range) |",
        args.pairs
    );
    println!("|---|---|---|---|");
    for (name, of) in [
        ("one-way p50", (|t: &Trial| t.p50_us) as fn(&Trial) -> f64),
        ("one-way p99", |t: &Trial| t.p99_us),
    ] {
        let (ratio, low, high) = ratios(of);
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {ratio:.2} ({low:.2}–{high:.2}) |",
            median(Waiter::Blocking, of),
            median(Waiter::Async, of)
        );
    }
    println!("| async missed wakes, all trials | | {missed} | |");
    Ok(())
}

/// One trial: listen, start the Python producer, receive `ticks` ticks and its sentinel.
fn trial(
    waiter: Waiter,
    python: &Path,
    producer: &Path,
    ticks: u64,
    gap_us: &str,
) -> Result<Trial, Box<dyn std::error::Error>> {
    let socket = std::env::temp_dir().join(format!(
        "tachyon-async-sparse-{}-{waiter:?}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&socket);
    let mut child = Command::new(python)
        .arg(producer)
        .args([
            "--socket",
            socket.to_str().ok_or("socket path")?,
            "--connect",
        ])
        .args(["--count", &ticks.to_string(), "--gap-us", gap_us])
        .stdout(Stdio::null())
        .spawn()?;
    let consumer = Bus::options()
        .listen_timeout(Duration::from_secs(60))
        .listen(&socket, 1 << 20)?
        .into_consumer();
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut record = |data: &[u8]| {
        // MarketTick: symbol (8), price (8), quantity (4), timestamp ns (8), padding (4).
        if let Some(stamp) = data.get(20..28) {
            let sent = u64::from_le_bytes(stamp.try_into().unwrap_or_default());
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let _ = latencies.record(now.saturating_sub(sent).max(1));
        }
    };
    let (woken_by_ring, missed_wakes) = match waiter {
        Waiter::Blocking => {
            receive_blocking(consumer, &mut record)?;
            (0, 0)
        }
        Waiter::Async => receive_async(consumer, &mut record)?,
    };
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("producer.py exited with {status}").into());
    }
    if latencies.len() != ticks {
        return Err(format!("received {} of {ticks} ticks", latencies.len()).into());
    }
    Ok(Trial {
        p50_us: latencies.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: latencies.value_at_quantile(0.99) as f64 / 1e3,
        missed_wakes,
        woken_by_ring,
    })
}

fn receive_blocking(mut consumer: Consumer, record: &mut impl FnMut(&[u8])) -> Result<(), Error> {
    loop {
        let message = consumer.recv()?;
        if message.type_id() == 0 {
            return Ok(());
        }
        record(message.data());
    }
}

fn receive_async(consumer: Consumer, record: &mut impl FnMut(&[u8])) -> Result<(u64, u64), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::Handshake(format!("tokio runtime: {e}")))?;
    runtime.block_on(async move {
        let mut consumer = AsyncConsumer::new(consumer);
        loop {
            let message = consumer.recv().await?;
            if message.type_id() == 0 {
                break;
            }
            record(message.data());
        }
        let stats = consumer.wake_stats();
        Ok((stats.woken_by_ring, stats.missed_wakes))
    })
}

//! `tachyon-compare-fan-in`: many producers into one consumer (issue 13), ours (one thread, a
//! `Selector`) beside what a user of upstream has (a thread per ring), alternating pairs; and
//! the CPU that consumers of 8 idle rings burn. See docs/performance.md.
//!
//! A binary of its own beside `tachyon-compare`, so the two suites evolve without touching
//! each other; it shares the harness library (rings, children, rows, table).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::json;

use tachyon_compare::Result;
use tachyon_compare::fan_in::{self, FanInResult, Load};
use tachyon_compare::idle::{self, IDLE_RINGS, IdleCpu, TARGET_CORES, Waiter};
use tachyon_compare::report::{self, Kind, Row};
use tachyon_compare::ring::Impl;

/// Fan-in and idle-CPU benchmarks of tachyon-ring (ours) and tachyon-ipc 0.5.1 (theirs).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run both benchmarks and print their tables (also written to OUT_DIR as fan_in.md and
    /// fan_in.json, with every trial's values).
    Run(RunArgs),
    /// One fan-in trial: prints its rate and latency.
    Trial {
        #[arg(long, value_enum, default_value = "ours")]
        r#impl: Impl,
        #[arg(long, default_value_t = 4)]
        producers: usize,
        #[arg(long, default_value_t = 500_000)]
        per_producer: u64,
        #[arg(long, default_value_t = 0)]
        gap_us: u64,
    },
    /// The other side of a trial (spawned by `run`).
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        role: Role,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Pairs (ours, theirs) per fan-in comparison.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// Producer counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8])]
    producers: Vec<usize>,
    /// Messages of a throughput trial, all producers together.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Messages per producer of a latency trial.
    #[arg(long, default_value_t = 2_000)]
    paced_messages: u64,
    /// Pause of a latency trial's producers after each message, µs.
    #[arg(long, default_value_t = 100)]
    gap_us: u64,
    /// Window of each idle-CPU measurement, s.
    #[arg(long, default_value_t = 10.0)]
    idle_secs: f64,
    /// Skip the idle-CPU measurement.
    #[arg(long)]
    no_idle: bool,
    /// Skip the fan-in comparison.
    #[arg(long)]
    no_fan_in: bool,
    /// Measure our side only, even when the upstream is built in.
    #[arg(long)]
    ours_only: bool,
    /// Where fan_in.md and fan_in.json go.
    #[arg(long, default_value = "target/compare")]
    out_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// One producer thread per socket; prints {"sent"}.
    Producers {
        #[arg(long = "socket", required = true)]
        sockets: Vec<PathBuf>,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        gap_us: u64,
        /// Send one message, then stay connected and idle until killed.
        #[arg(long)]
        hold: bool,
    },
    /// Consume idle rings and measure this process's CPU; prints {"cores", "switches_per_s"}.
    Idle {
        #[arg(long, value_enum)]
        waiter: Waiter,
        #[arg(long = "socket", required = true)]
        sockets: Vec<PathBuf>,
        #[arg(long)]
        window_ms: u64,
    },
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Run(args) => run(&args),
        Command::Trial {
            r#impl,
            producers,
            per_producer,
            gap_us,
        } => fan_in::trial(
            r#impl,
            Load {
                producers,
                per_producer,
                gap: Duration::from_micros(gap_us),
            },
        )
        .map(|result| {
            println!(
                "{}",
                json!({
                    "impl": r#impl.name(),
                    "producers": producers,
                    "msgs_per_s": result.msgs_per_s,
                    "p50_ns": result.latency.p50,
                    "p99_ns": result.latency.p99,
                    "msgs_per_consumer_cpu_s": result.msgs_per_cpu_s,
                })
            );
        }),
        Command::Child { role } => {
            tachyon_compare::work::die_with_parent();
            match role {
                Role::Producers {
                    sockets,
                    count,
                    gap_us,
                    hold,
                } => fan_in::child_producers(&sockets, count, Duration::from_micros(gap_us), hold),
                Role::Idle {
                    waiter,
                    sockets,
                    window_ms,
                } => idle::child_idle(waiter, &sockets, Duration::from_millis(window_ms)),
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tachyon-compare-fan-in: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The 1-minute load average, as a noise indicator printed with the tables.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn run(args: &RunArgs) -> Result<()> {
    if args.pairs == 0 {
        return Err("--pairs must be at least 1".into());
    }
    let theirs = !args.ours_only && Impl::Theirs.available();
    if !args.ours_only && !theirs {
        eprintln!(
            "tachyon-compare-fan-in: built without feature compare-upstream: measuring ours only"
        );
    }
    let started = Instant::now();
    let load_before = load_average();
    let mut out = String::new();
    let mut document = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_average_before": load_before,
    });

    if !args.no_fan_in {
        let rows = fan_in_rows(args, theirs)?;
        let table = report::table(&rows, args.pairs);
        println!("{table}");
        out += &table;
        document["fan_in"] = rows.iter().map(Row::to_json).collect();
    }
    if !args.no_idle {
        let (idle, measured) = idle_rows(args, theirs)?;
        println!("{idle}");
        document["idle"] = measured.into();
        out += "\n";
        out += &idle;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = format!(
        "{} pairs per fan-in row, ratios are medians of per-pair ratios ours / theirs (range: \
         smallest and largest pair); measured in {elapsed:.0} s; 1-min load average {} before, \
         {} after, on {} cores",
        args.pairs,
        load_before,
        load_average(),
        document["cores"],
    );
    println!("{summary}");
    out += &format!("\n{summary}\n");
    document["elapsed_s"] = json!(elapsed);
    std::fs::create_dir_all(&args.out_dir)?;
    std::fs::write(args.out_dir.join("fan_in.md"), out)?;
    std::fs::write(
        args.out_dir.join("fan_in.json"),
        serde_json::to_string_pretty(&document)?,
    )?;
    eprintln!(
        "tachyon-compare-fan-in: wrote {}",
        args.out_dir.join("fan_in.json").display()
    );
    Ok(())
}

/// For each producer count: throughput pairs, then paced latency pairs, ours then theirs.
fn fan_in_rows(args: &RunArgs, theirs: bool) -> Result<Vec<Row>> {
    eprintln!(
        "fan-in: N producer threads in a child, each on its own ring; ours: 1 consumer thread \
         with a Selector; theirs: N consumer threads"
    );
    let mut rows = Vec::new();
    for &n in &args.producers {
        let n = n.max(1);
        let flat_out = Load {
            producers: n,
            per_producer: (args.messages / n as u64).max(1),
            gap: Duration::ZERO,
        };
        let paced = Load {
            producers: n,
            per_producer: args.paced_messages.max(1),
            gap: Duration::from_micros(args.gap_us),
        };
        let mut rate = Row::new(
            format!("fan-in {n} → 1, 32 B, total rate"),
            Kind::Rate { size: 32 },
            None,
        );
        let mut efficiency = Row::new(
            format!("fan-in {n} → 1, msgs per consumer CPU-second"),
            Kind::Rate { size: 32 },
            None,
        );
        // Says which of its two states a flat-out trial settled in (see the progress line).
        let mut queued = Row::new(
            format!("fan-in {n} → 1, one-way p50 (flat out)"),
            Kind::Latency { floor_ns: None },
            None,
        );
        let mut p50 = Row::new(
            format!("fan-in {n} → 1, one-way p50 (paced)"),
            Kind::Latency { floor_ns: None },
            None,
        );
        let mut p99 = Row::new(
            format!("fan-in {n} → 1, one-way p99 (paced)"),
            Kind::Latency { floor_ns: None },
            None,
        );
        for pair in 1..=args.pairs {
            let mut sides = vec![Impl::Ours];
            if theirs {
                sides.push(Impl::Theirs);
            }
            let mut shown = Vec::new();
            for side in sides {
                let fast: FanInResult = fan_in::trial(side, flat_out)?;
                let slow: FanInResult = fan_in::trial(side, paced)?;
                let (rates, per_cpu, queued_p50s, p50s, p99s) = match side {
                    Impl::Ours => (
                        &mut rate.ours,
                        &mut efficiency.ours,
                        &mut queued.ours,
                        &mut p50.ours,
                        &mut p99.ours,
                    ),
                    Impl::Theirs | Impl::Iceoryx2 => (
                        &mut rate.theirs,
                        &mut efficiency.theirs,
                        &mut queued.theirs,
                        &mut p50.theirs,
                        &mut p99.theirs,
                    ),
                };
                rates.push(fast.msgs_per_s);
                per_cpu.push(fast.msgs_per_cpu_s);
                queued_p50s.push(fast.latency.p50);
                p50s.push(slow.latency.p50);
                p99s.push(slow.latency.p99);
                // The flat-out p50 tells the trial's state: near a microsecond when the
                // consumer kept up (the producer then paid for every line the consumer took
                // warm), hundreds when the ring stayed full (the consumer's own pace).
                shown.push(format!(
                    "{} {:.2} M/s (p50 {:.1} µs), paced {:.1}/{:.1} µs",
                    side.name(),
                    fast.msgs_per_s / 1e6,
                    fast.latency.p50 / 1e3,
                    slow.latency.p50 / 1e3,
                    slow.latency.p99 / 1e3
                ));
            }
            eprintln!(
                "  fan-in {n} → 1  pair {pair}/{}  {}",
                args.pairs,
                shown.join("  ")
            );
        }
        rows.extend([rate, efficiency, queued, p50, p99]);
    }
    Ok(rows)
}

/// One measurement per waiter, ours and theirs alternating; a table of its own (an absolute
/// target, not a ratio).
fn idle_rows(args: &RunArgs, theirs: bool) -> Result<(String, Vec<serde_json::Value>)> {
    let window = Duration::from_secs_f64(args.idle_secs.max(0.1));
    eprintln!(
        "idle CPU: {IDLE_RINGS} connected rings, one message each then nothing, {:.0} s per \
         consumer process",
        window.as_secs_f64()
    );
    let mut waiters = vec![Waiter::Selector];
    if theirs {
        waiters.push(Waiter::Threads);
    }
    waiters.push(Waiter::Async);
    let mut measured = Vec::new();
    let mut table = String::from(
        "| consumer process over 8 idle rings | CPU (% of one core) | context switches/s | target | met? |\n\
         |---|---|---|---|---|\n",
    );
    for waiter in waiters {
        let IdleCpu {
            cores,
            switches_per_s,
        } = idle::measure(waiter, IDLE_RINGS, window)?;
        eprintln!(
            "  {:<58} {:.3} % of a core, {switches_per_s:.0} switches/s",
            waiter.label(),
            cores * 100.0
        );
        let (target, met) = match waiter {
            Waiter::Threads => ("—".to_string(), "—"),
            _ => (
                format!("< {:.0} %", TARGET_CORES * 100.0),
                if cores < TARGET_CORES {
                    "yes"
                } else {
                    "**no**"
                },
            ),
        };
        measured.push(json!({
            "waiter": waiter.name(),
            "cores": cores,
            "switches_per_s": switches_per_s,
        }));
        table += &format!(
            "| {} | {:.3} % | {switches_per_s:.0} | {target} | {met} |\n",
            waiter.label(),
            cores * 100.0
        );
    }
    Ok((table, measured))
}

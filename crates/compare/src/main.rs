//! `tachyon-compare`: benchmarks tachyon-ring against tachyon-ipc 0.5.1's C++ core, side by
//! side in one run, and prints one table. See docs/performance.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use tachyon_compare::ring::Impl;
use tachyon_compare::suite::{self, Bench, Config};
use tachyon_compare::work::{self, EndToEndPaths};
use tachyon_compare::{Result, lost_wake, plot};

/// Side-by-side benchmarks of tachyon-ring (ours) and tachyon-ipc 0.5.1 (theirs).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the comparison and print the table (also written to OUT_DIR with the raw values and
    /// the streaming plot).
    Run(RunArgs),
    /// Redraw the streaming plot from a results.json.
    Plot {
        /// results.json of a run.
        #[arg(long)]
        from: PathBuf,
        /// PNG to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// One thread sends a batch, flushes, receives it, over and over: for callgrind
    /// (`valgrind --tool=callgrind tachyon-compare profile --impl ours`), where instruction
    /// counts per message are exact.
    Profile {
        #[arg(long, value_enum, default_value = "ours")]
        r#impl: Impl,
        /// Payload bytes.
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Messages per batch.
        #[arg(long, default_value_t = 256)]
        batch: u64,
        /// Messages in all.
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        /// Ours behind a `Selector` of one ring instead of a plain consumer.
        #[arg(long)]
        selector: bool,
        /// With `--selector`: receive through `Selector::select_with`, not `select`.
        #[arg(long, requires = "selector")]
        select_with: bool,
    },
    /// One streaming trial (for exploring sizes the suite does not run): prints msgs/s.
    Stream {
        #[arg(long, value_enum, default_value = "ours")]
        r#impl: Impl,
        /// Payload bytes.
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Messages.
        #[arg(long, default_value_t = 3_000_000)]
        count: u64,
        /// Two threads in this process instead of two processes.
        #[arg(long)]
        in_process: bool,
    },
    /// Ours against iceoryx2 0.10 (the second anchor, issue 23): round trip, streaming, and
    /// one message per millisecond (latency and receiver CPU per spin policy), alternating;
    /// writes OUT_DIR/iceoryx2.{md,json}. Needs feature compare-iceoryx2.
    #[cfg(feature = "compare-iceoryx2")]
    Iceoryx2 {
        /// Pairs of trials (ours, then iceoryx2).
        #[arg(long, default_value_t = 7)]
        pairs: usize,
        /// Round trips timed per trial.
        #[arg(long, default_value_t = 200_000)]
        round_trips: u64,
        /// Messages per streaming trial.
        #[arg(long, default_value_t = 20_000_000)]
        stream_messages: u64,
        /// Measured messages per sparse trial.
        #[arg(long, default_value_t = 2_000)]
        sparse_messages: u64,
        /// The sparse trial's gap, µs.
        #[arg(long, default_value_t = 1_000)]
        gap_us: u64,
        /// Where the table and the raw values go.
        #[arg(long, default_value = "target/compare")]
        out_dir: PathBuf,
    },
    /// The other side of a cross-process trial (spawned by `run`).
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        role: Role,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Pairs (ours, theirs) per comparison; the verdicts use the median of their ratios.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// Only these benchmarks (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Bench>,
    /// Measure our side and the floors only, even when the upstream is built in.
    #[arg(long)]
    ours_only: bool,
    /// Keep pairs during which other processes used the CPUs (default: run them again, up to
    /// 3 times each).
    #[arg(long)]
    keep_busy: bool,
    /// Divide every message count by this (smoke runs).
    #[arg(long, default_value_t = 1)]
    scale_down: u64,
    /// Where results.json, table.md and streaming.png go.
    #[arg(long, default_value = "target/compare")]
    out_dir: PathBuf,
    /// Our consumer binary (end to end).
    #[arg(long)]
    consumer: Option<PathBuf>,
    /// Upstream's consumer binary (end to end); default: next to this binary.
    #[arg(long)]
    upstream_consumer: Option<PathBuf>,
    /// Python with the real tachyon-ipc package.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The seed's producer script.
    #[arg(long)]
    producer: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Connect and consume a stream; print {"messages", "msgs_per_s"}.
    StreamRx {
        #[arg(long, value_enum)]
        r#impl: Impl,
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        warm: u64,
    },
    /// Connect to both rings and echo until the sentinel; print {"echoed"}.
    Echo {
        #[arg(long, value_enum)]
        r#impl: Impl,
        #[arg(long)]
        ping: PathBuf,
        #[arg(long)]
        pong: PathBuf,
    },
    /// Listen and consume one message at a time, printing each one's delay from the publish
    /// stamp in its payload (the lost wake-up trial's consumer).
    LostWakeRx {
        #[arg(long, value_enum)]
        r#impl: Impl,
        #[arg(long)]
        socket: PathBuf,
    },
    /// Connect and receive one message per gap until the sentinel; print the latency and
    /// this process's CPU share (the sparse trial's receiver).
    SparseRx {
        #[arg(long, value_enum)]
        end: tachyon_compare::sparse::SparseEnd,
        #[arg(long)]
        socket: PathBuf,
    },
    /// Map the floor's page and echo ping values; print {"echoed"}.
    Floor {
        #[arg(long)]
        shm: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Plot { from, out } => replot(&from, &out),
        Command::Profile {
            r#impl,
            size,
            batch,
            messages,
            selector,
            select_with,
        } => profile(r#impl, size, batch.max(1), messages, selector, select_with),
        Command::Stream {
            r#impl,
            size,
            count,
            in_process,
        } => {
            let rate = if in_process {
                work::in_process_stream(r#impl, size, count)
            } else {
                work::cross_process_stream(r#impl, size, count, work::Publish::Batched)
            };
            rate.map(|rate| {
                println!(
                    "{}",
                    json!({"impl": r#impl.name(), "size": size, "msgs_per_s": rate})
                );
            })
        }
        #[cfg(feature = "compare-iceoryx2")]
        Command::Iceoryx2 {
            pairs,
            round_trips,
            stream_messages,
            sparse_messages,
            gap_us,
            out_dir,
        } => anchor(
            tachyon_compare::anchor::AnchorConfig {
                pairs: pairs.max(1),
                round_trips,
                stream_messages,
                sparse_messages,
                gap: std::time::Duration::from_micros(gap_us),
            },
            &out_dir,
        ),
        Command::Child { role } => {
            work::die_with_parent();
            child(role)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tachyon-compare: {err}");
            ExitCode::FAILURE
        }
    }
}

fn child(role: Role) -> Result<()> {
    match role {
        Role::StreamRx {
            r#impl,
            socket,
            size,
            warm,
        } => work::child_stream_rx(r#impl, &socket, size, warm),
        Role::Echo { r#impl, ping, pong } => work::child_echo(r#impl, &ping, &pong),
        Role::Floor { shm } => work::child_floor(&shm),
        Role::LostWakeRx { r#impl, socket } => lost_wake::child(r#impl, &socket),
        Role::SparseRx { end, socket } => tachyon_compare::sparse::child(end, &socket),
    }
}

/// Runs the iceoryx2 anchor, prints its table and writes it with the raw values.
#[cfg(feature = "compare-iceoryx2")]
fn anchor(config: tachyon_compare::anchor::AnchorConfig, out_dir: &Path) -> Result<()> {
    let results = tachyon_compare::anchor::run(config)?;
    let table = results.table();
    println!("{table}");
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(out_dir.join("iceoryx2.md"), &table)?;
    let meta = json!({
        "config": format!("{config:?}"),
        "date": utc_now(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
    });
    std::fs::write(
        out_dir.join("iceoryx2.json"),
        serde_json::to_string_pretty(&results.to_json(meta))?,
    )?;
    eprintln!("wrote {}/iceoryx2.{{md,json}}", out_dir.display());
    Ok(())
}

fn profile(
    imp: Impl,
    size: usize,
    batch: u64,
    messages: u64,
    selector: bool,
    select_with: bool,
) -> Result<()> {
    let rounds = messages.div_ceil(batch);
    let run = match (imp, selector) {
        (Impl::Ours, true) => work::single_thread_selected(size, batch, rounds, select_with)?,
        (_, true) => return Err("--selector is ours only".into()),
        (_, false) => work::single_thread(imp, size, batch, rounds)?,
    };
    let sent = rounds * batch;
    let per_message = |time: Duration| time.as_nanos() as f64 / sent as f64;
    println!(
        "{}",
        json!({
            "impl": imp.name(),
            "selector": selector,
            "select_with": select_with,
            "size": size,
            "messages": sent,
            "ns_per_message": per_message(run.elapsed),
            "ns_per_receive": per_message(run.receiving),
        })
    );
    Ok(())
}

/// The workspace root, as this crate was built from it.
fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn run(args: RunArgs) -> Result<()> {
    if args.pairs == 0 {
        return Err("--pairs must be at least 1".into());
    }
    let theirs = !args.ours_only && Impl::Theirs.available();
    if !args.ours_only && !theirs {
        eprintln!(
            "tachyon-compare: built without feature compare-upstream: measuring ours and the \
             floors only (crates/compare/build-upstream.sh builds the comparator)"
        );
    }
    let root = workspace_root();
    let exe_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let benches = if args.only.is_empty() {
        vec![
            Bench::InProcess,
            Bench::Stream,
            Bench::RoundTrip,
            Bench::EndToEnd,
            Bench::Sparse,
            Bench::LostWake,
        ]
    } else {
        args.only.clone()
    };
    let config = Config {
        pairs: args.pairs,
        scale_down: args.scale_down.max(1),
        theirs,
        benches,
        rerun_busy: !args.keep_busy,
        e2e: EndToEndPaths {
            ours_consumer: args
                .consumer
                .unwrap_or_else(|| root.join("target/release/tachyon-consumer")),
            theirs_consumer: args
                .upstream_consumer
                .unwrap_or_else(|| exe_dir.join("tachyon-consumer-upstream")),
            python: args.python.unwrap_or_else(|| root.join(".venv/bin/python")),
            producer: args
                .producer
                .unwrap_or_else(|| root.join("python/producer.py")),
        },
    };
    let meta = machine_meta(&config);
    eprintln!(
        "tachyon-compare: {} on {} ({} cores), {} pairs per comparison",
        meta["date"].as_str().unwrap_or(""),
        meta["cpu"].as_str().unwrap_or("?"),
        meta["cores"],
        config.pairs
    );
    let results = suite::run(&config)?;
    let table = results.table();
    println!("{table}");
    println!(
        "{} pairs, ratios are medians of per-pair ratios ours / theirs (range: smallest and \
         largest pair); measured in {:.0} s; pairs run again because other processes used more \
         than {} cores meanwhile: {}, kept busy after {} tries: {}",
        config.pairs,
        results.elapsed.as_secs_f64(),
        suite::BUSY_NEIGHBOUR,
        results.contention.reruns,
        suite::MAX_RERUNS,
        results.contention.kept_busy
    );

    std::fs::create_dir_all(&args.out_dir)?;
    let json_path = args.out_dir.join("results.json");
    let (series, memcpy) = results.streaming();
    let mut document = results.to_json(meta.clone());
    document["streaming"] = json!({
        "sizes": series.iter().map(|p| p.0).collect::<Vec<_>>(),
        "ours_msgs_per_s": series.iter().map(|p| p.1).collect::<Vec<_>>(),
        "theirs_msgs_per_s": series.iter().map(|p| p.2).collect::<Vec<_>>(),
        "memcpy_64k_bytes_per_s": memcpy,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&document)?)?;
    std::fs::write(args.out_dir.join("table.md"), &table)?;
    if !series.is_empty() {
        let png = args.out_dir.join("streaming.png");
        plot::streaming_png(&png, &series, memcpy, &plot_note(&meta))?;
        eprintln!("tachyon-compare: wrote {}", png.display());
    }
    eprintln!("tachyon-compare: wrote {}", json_path.display());
    Ok(())
}

fn plot_note(meta: &Value) -> String {
    format!(
        "{} · {} ({} cores) · medians of {} trials each · producer and consumer in two processes",
        meta["date"].as_str().unwrap_or(""),
        meta["cpu"].as_str().unwrap_or("?"),
        meta["cores"],
        meta["pairs"]
    )
}

fn replot(from: &Path, out: &Path) -> Result<()> {
    let document: Value = serde_json::from_str(&std::fs::read_to_string(from)?)?;
    let streaming = &document["streaming"];
    let column = |key: &str| -> Vec<f64> {
        streaming[key]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect()
            })
            .unwrap_or_default()
    };
    let sizes: Vec<usize> = streaming["sizes"]
        .as_array()
        .ok_or("results.json has no streaming.sizes")?
        .iter()
        .map(|v| v.as_u64().unwrap_or(0) as usize)
        .collect();
    let (ours, theirs) = (column("ours_msgs_per_s"), column("theirs_msgs_per_s"));
    let series: Vec<(usize, f64, f64)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            (
                size,
                ours.get(i).copied().unwrap_or(f64::NAN),
                theirs.get(i).copied().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let memcpy = streaming["memcpy_64k_bytes_per_s"].as_f64();
    plot::streaming_png(out, &series, memcpy, &plot_note(&document["meta"]))
}

/// Date, CPU, cores, kernel, command: what docs/performance.md records with the table.
fn machine_meta(config: &Config) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    json!({
        "date": utc_now(),
        "cpu": cpu,
        "cores": cores,
        "kernel": kernel,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "upstream": config.theirs,
        "pairs": config.pairs,
        "scale_down": config.scale_down,
    })
}

/// `YYYY-MM-DD HH:MM UTC`, from the system clock (no date crate needed).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

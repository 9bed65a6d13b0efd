//! Issue 22: what `tachyon-bridge` costs, against the real nats-server from `.venv`.
//!
//! 1. **Throughput through `out`**: our `producer` example (`--size 32`, the test pattern,
//!    type ids 1..=1000) → ring → `tachyon-bridge out` → JetStream (acknowledged, pipelined,
//!    window `--max-inflight`), against the same async-nats client publishing the same
//!    messages (same subjects, same payloads, the same `Nats-Msg-Id`, `Tachyon-Type-Id` and
//!    `Nats-Expected-Last-Sequence` headers `out` sends) straight from memory, with the same
//!    in-flight window and every acknowledgement awaited. The two alternate (bridge, direct,
//!    bridge, direct, …); the verdict is the median of the per-pair ratios bridge / direct.
//!    The bridge's rate is its own statistics' `messages / elapsed_s` (first message taken off
//!    the ring to the last acknowledgement); the direct rate is N over first publish to last
//!    acknowledgement. Each trial gets a fresh stream, checked to hold exactly N messages and
//!    then deleted. Beside the rates, the CPU time each process spent: the producer and `out`
//!    (reaped children, `getrusage`), the direct client (this process during its timed part)
//!    and the server (`/proc/PID/stat`).
//! 2. **End-to-end one-way latency**: a producer thread here sends 32 B messages at a fixed
//!    rate into `out`'s ring, each stamped with `CLOCK_MONOTONIC` nanoseconds at send; `out` →
//!    server → `in` → a consumer thread here, which records receive time minus stamp in an HDR
//!    histogram. One latency trial follows each throughput pair.
//!
//! ```text
//! cargo build --release -p tachyon-ring --example producer
//! cargo bench -p tachyon-bridge --bench bridge -- --pairs 5
//! ```
//!
//! Writes `target/bridge-bench/{results.json,table.md}`; docs/performance.md explains the rows.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use support::{Bridge, NatsServer, in_args, out_args, strs, workspace_root};
use tachyon_ring::{Bus, Error as RingError};

#[derive(Parser, Debug)]
#[command(
    about = "tachyon-bridge benchmarks (issue 22): out against direct publishing, end-to-end latency"
)]
struct Args {
    /// Throughput pairs (bridge, direct); one latency trial follows each pair.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// Messages per throughput trial.
    #[arg(long, default_value_t = 300_000)]
    messages: u64,
    /// Payload bytes (at least 16: the latency stamp and index).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// In-flight window of both sides (`out --max-inflight`).
    #[arg(long, default_value_t = 256)]
    max_inflight: usize,
    /// Messages of the unrecorded warm-up pair (0: none).
    #[arg(long, default_value_t = 30_000)]
    warmup_messages: u64,
    /// Latency trials' send rate, messages per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Recorded seconds per latency trial.
    #[arg(long, default_value_t = 10.0)]
    latency_seconds: f64,
    /// Seconds sent at the start of each latency trial and left out of the histogram.
    #[arg(long, default_value_t = 1.0)]
    latency_warmup_seconds: f64,
    /// What to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "throughput,latency"
    )]
    only: Vec<Part>,
    /// The `producer` example (default: `examples/producer` beside this benchmark's `deps/`).
    #[arg(long)]
    producer: Option<PathBuf>,
    /// Where results.json and table.md go (default: `target/bridge-bench` in the workspace).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    Throughput,
    Latency,
}

/// The stream settings `out` creates its stream with (crates/bridge/src/nats.rs, defaults of
/// crates/bridge/src/cli.rs).
fn stream_config(name: &str, prefix: &str) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(600),
        num_replicas: 1,
        ..Default::default()
    }
}

/// `out`'s `--ack-timeout` default, used for the direct client too.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    // As tachyon-bridge's own runtime (crates/bridge/src/main.rs).
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU seconds (user + system) of `who`: this process or its reaped children.
fn rusage_cpu_s(who: libc::c_int) -> f64 {
    // SAFETY: an all-zero rusage is a valid value, and getrusage fills the one we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    unsafe { libc::getrusage(who, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU seconds (user + system) the server has used so far, from `/proc/PID/stat`.
fn server_cpu_s(server: &NatsServer) -> f64 {
    let Some(pid) = server.pid() else {
        return f64::NAN;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis start at field 3 (state); utime and
    // stime are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second
}

// ---- throughput ---------------------------------------------------------------------------

/// One side of `out`'s throughput: our producer example into the bridge.
fn bridge_trial(
    dir: &Path,
    server: &NatsServer,
    producer: &Path,
    args: &Args,
    name: &str,
    count: u64,
) -> Result<Value, String> {
    let stream = name.to_uppercase();
    let socket = dir.join(format!("{name}.sock"));
    let mut bridge_args = out_args(&socket, &server.url(), &stream, name);
    bridge_args.extend(["--max-inflight".into(), args.max_inflight.to_string()]);
    let (children0, server0) = (rusage_cpu_s(libc::RUSAGE_CHILDREN), server_cpu_s(server));
    let wall = Instant::now();
    let out = Bridge::start(dir, name, &strs(&bridge_args));
    let status = Command::new(producer)
        .args(["--connect", "--socket"])
        .arg(&socket)
        .args(["--count", &count.to_string()])
        .args(["--size", &args.size.to_string()])
        .args(["--no-sentinel", "--send-timeout", "120s"])
        .stdout(Stdio::null())
        .status()
        .map_err(|err| format!("spawn {}: {err}", producer.display()))?;
    if !status.success() {
        return Err(format!("producer: {status}; out log:\n{}", out.log_text()));
    }
    let children1 = rusage_cpu_s(libc::RUSAGE_CHILDREN); // the producer is reaped
    let (status, stats) = out.wait(Duration::from_secs(600));
    let wall_s = wall.elapsed().as_secs_f64();
    // `out` is reaped too; the server is not (it runs on), so it is read from /proc.
    let (children2, server1) = (rusage_cpu_s(libc::RUSAGE_CHILDREN), server_cpu_s(server));
    if status.code() != Some(0) || stats["messages"].as_u64() != Some(count) {
        return Err(format!("out: {status}, {stats}"));
    }
    let elapsed = stats["elapsed_s"].as_f64().unwrap_or(0.0);
    check_and_delete(&server.url(), &stream, count)?;
    Ok(json!({
        "side": "bridge",
        "messages": count,
        "elapsed_s": elapsed,
        "msg_per_s": count as f64 / elapsed,
        "wall_s_including_start": wall_s,
        "cpu_s": {
            "producer": children1 - children0,
            "out": children2 - children1,
            "server": server1 - server0,
        },
        "out_stats": stats,
    }))
}

/// The other side: the same messages, published by the same client straight from memory.
fn direct_trial(server: &NatsServer, args: &Args, name: &str, count: u64) -> Result<Value, String> {
    let stream = name.to_uppercase();
    let url = server.url();
    let window = args.max_inflight;
    let size = args.size;
    let server0 = server_cpu_s(server);
    let (elapsed, client_cpu) = runtime().block_on(async {
        let client = async_nats::ConnectOptions::new()
            .request_timeout(Some(ACK_TIMEOUT))
            .connect(&url)
            .await
            .map_err(|err| format!("connect: {err}"))?;
        // As `out` builds its context (crates/bridge/src/out.rs).
        let js = jetstream::context::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .max_ack_inflight(1 << 24)
            .backpressure_on_inflight(true)
            .build(client);
        js.create_stream(stream_config(&stream, name))
            .await
            .map_err(|err| format!("create stream: {err}"))?;
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_micros();
        // Everything a message needs, built before the clock starts.
        let messages: Vec<(String, PublishMessage)> = (0..count)
            .map(|i| {
                let type_id = 1 + (i % 1000) as u32;
                let payload: Vec<u8> = (0..size)
                    .map(|j| (i.wrapping_mul(31).wrapping_add(j as u64) % 256) as u8)
                    .collect();
                let mut message = PublishMessage::build()
                    .payload(Bytes::from(payload))
                    .message_id(format!("bench:direct~{epoch}~{i}"))
                    .header("Tachyon-Type-Id", type_id.to_string().as_str());
                if i > 0 {
                    // A fresh stream: message i is stored at sequence i + 1.
                    message = message.expected_last_sequence(i);
                }
                let subject = format!("{name}.{}.{}", type_id >> 16, type_id & 0xFFFF);
                (subject, message)
            })
            .collect();
        let (started, cpu0) = (Instant::now(), rusage_cpu_s(libc::RUSAGE_SELF));
        let mut pending = FuturesUnordered::new();
        for (subject, message) in messages {
            while pending.len() >= window {
                let ack: Result<_, _> = pending.next().await.expect("pending is not empty");
                ack.map_err(|err| format!("ack: {err}"))?;
            }
            let ack = js
                .send_publish(subject, message)
                .await
                .map_err(|err| format!("publish: {err}"))?;
            pending.push(ack.into_future());
        }
        while let Some(ack) = pending.next().await {
            ack.map_err(|err| format!("ack: {err}"))?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        Ok::<_, String>((elapsed, rusage_cpu_s(libc::RUSAGE_SELF) - cpu0))
    })?;
    let server1 = server_cpu_s(server);
    check_and_delete(&url, &stream, count)?;
    Ok(json!({
        "side": "direct",
        "messages": count,
        "elapsed_s": elapsed,
        "msg_per_s": count as f64 / elapsed,
        "cpu_s": {
            // This whole process during the timed part: the client and its runtime.
            "client": client_cpu,
            "server": server1 - server0,
        },
    }))
}

/// The stream holds each message once; then it goes, so every trial starts on an empty store.
fn check_and_delete(url: &str, stream: &str, count: u64) -> Result<(), String> {
    let state = support::stream_state(url, stream);
    if state != (count, count) {
        return Err(format!(
            "stream {stream} holds {state:?} (messages, last sequence), expected {count}"
        ));
    }
    runtime().block_on(async {
        let client = async_nats::connect(url)
            .await
            .map_err(|err| format!("connect: {err}"))?;
        jetstream::new(client)
            .delete_stream(stream)
            .await
            .map_err(|err| format!("delete {stream}: {err}"))?;
        Ok(())
    })
}

// ---- latency ------------------------------------------------------------------------------

/// One latency trial: producer thread → out → server → in → consumer thread.
fn latency_trial(
    dir: &Path,
    server: &NatsServer,
    args: &Args,
    name: &str,
) -> Result<(Value, Histogram<u64>), String> {
    let stream = name.to_uppercase();
    let url = server.url();
    let (a, b) = (
        dir.join(format!("{name}-out.sock")),
        dir.join(format!("{name}-in.sock")),
    );
    let out = Bridge::start(
        dir,
        &format!("{name}-out"),
        &strs(&out_args(&a, &url, &stream, name)),
    );
    let inb = Bridge::start(
        dir,
        &format!("{name}-in"),
        &strs(&in_args(&b, &url, &stream, &format!("{name}-in"), name)),
    );
    let rate = args.rate;
    let warm = (rate as f64 * args.latency_warmup_seconds) as u64;
    let total = warm + (rate as f64 * args.latency_seconds) as u64;
    let size = args.size;
    let failed = Arc::new(AtomicBool::new(false));

    let consumer_failed = Arc::clone(&failed);
    let consumer = std::thread::spawn(move || -> Result<(Histogram<u64>, u64), String> {
        let mut consumer = Bus::options()
            .connect_timeout(Duration::from_secs(60))
            .connect(&b)
            .map_err(|err| format!("consumer connect: {err}"))?
            .into_consumer();
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).expect("histogram bounds");
        let (mut received, mut out_of_order) = (0u64, 0u64);
        let deadline = Instant::now() + Duration::from_secs_f64(total as f64 / rate as f64 + 120.0);
        while received < total {
            if consumer_failed.load(Ordering::Relaxed) {
                return Err("the producer failed".into());
            }
            match consumer.recv_timeout(Duration::from_millis(500)) {
                Ok(message) => {
                    let now = mono_ns();
                    let data = message.data();
                    let sent = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
                    let index = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
                    if index != received {
                        out_of_order += 1;
                    }
                    if index >= warm {
                        histogram
                            .record(now.saturating_sub(sent).max(1))
                            .map_err(|err| format!("record: {err}"))?;
                    }
                    received += 1;
                }
                Err(RingError::Timeout(_)) if Instant::now() < deadline => {}
                Err(err) => return Err(format!("consumer after {received} messages: {err}")),
            }
        }
        Ok((histogram, out_of_order))
    });

    let producer_failed = Arc::clone(&failed);
    let producer = std::thread::spawn(move || -> Result<u64, String> {
        let result = (|| {
            let mut producer = Bus::options()
                .connect_timeout(Duration::from_secs(30))
                .connect(&a)
                .map_err(|err| format!("producer connect: {err}"))?
                .into_producer();
            let period_ns = 1_000_000_000 / rate;
            let mut payload = vec![0u8; size];
            let mut late = 0u64;
            let started = Instant::now();
            for i in 0..total {
                let due = started + Duration::from_nanos(period_ns * i);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                } else if now - due > Duration::from_millis(1) {
                    late += 1;
                }
                payload[8..16].copy_from_slice(&i.to_le_bytes());
                payload[..8].copy_from_slice(&mono_ns().to_le_bytes());
                producer
                    .send_timeout(1, &payload, Duration::from_secs(30))
                    .map_err(|err| format!("producer, message {i}: {err}"))?;
            }
            Ok(late)
        })();
        if result.is_err() {
            producer_failed.store(true, Ordering::Relaxed);
        }
        result
    });

    let late = producer.join().expect("producer thread")?;
    let consumed = consumer.join().expect("consumer thread");
    let (histogram, out_of_order) =
        consumed.map_err(|err| format!("{err}; in log:\n{}", inb.log_text()))?;
    // Both bus peers are threads of this process, which lives on: the bridges would not see
    // them gone, so they are stopped as an operator would (everything has arrived by now).
    let (out_status, out_stats) = out.stop(libc::SIGTERM, Duration::from_secs(60));
    let (in_status, in_stats) = inb.stop(libc::SIGTERM, Duration::from_secs(60));
    if out_status.code() != Some(143) || in_status.code() != Some(143) {
        return Err(format!(
            "out {out_status} {out_stats}; in {in_status} {in_stats}"
        ));
    }
    check_and_delete(&url, &stream, total)?;
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let trial = json!({
        "messages": total,
        "recorded": histogram.len(),
        "rate": rate,
        "sends_late_over_1ms": late,
        "out_of_order": out_of_order,
        "p50_us": us(0.50),
        "p90_us": us(0.90),
        "p99_us": us(0.99),
        "p99_9_us": us(0.999),
        "max_us": histogram.max() as f64 / 1000.0,
        "mean_us": histogram.mean() / 1000.0,
        "in_stats": in_stats,
    });
    Ok((trial, histogram))
}

// ---- the run ------------------------------------------------------------------------------

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn machine() -> Value {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(workspace_root())
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_owned();
    json!({
        "date_utc": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "commit": git(&["rev-parse", "--short", "HEAD"]),
        "dirty": !git(&["status", "--porcelain"]).is_empty(),
        "loadavg": read("/proc/loadavg"),
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "nats_server": Command::new(support::nats_server_binary())
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default(),
    })
}

fn main() {
    let args = Args::parse();
    assert!(
        args.size >= 16,
        "--size must be at least 16 (latency stamp and index)"
    );
    let producer = args.producer.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .join("examples/producer")
    });
    if args.only.contains(&Part::Throughput) {
        assert!(
            producer.is_file(),
            "{} is missing: cargo build --release -p tachyon-ring --example producer",
            producer.display()
        );
    }
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace_root().join("target/bridge-bench"));
    std::fs::create_dir_all(&out_dir).expect("out dir");

    let before = machine();
    eprintln!("before: {before}");
    let dir = support::temp_dir();
    let server = NatsServer::start(dir.path(), "");
    let throughput = args.only.contains(&Part::Throughput);
    let latency = args.only.contains(&Part::Latency);

    if throughput && args.warmup_messages > 0 {
        eprintln!("warm-up pair, {} messages", args.warmup_messages);
        bridge_trial(
            dir.path(),
            &server,
            &producer,
            &args,
            "warmb",
            args.warmup_messages,
        )
        .expect("warm-up bridge trial");
        direct_trial(&server, &args, "warmd", args.warmup_messages).expect("warm-up direct trial");
    }

    let (mut pairs, mut latencies) = (Vec::new(), Vec::new());
    let mut merged = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).expect("bounds");
    for k in 0..args.pairs {
        if throughput {
            let bridge = bridge_trial(
                dir.path(),
                &server,
                &producer,
                &args,
                &format!("tpb{k}"),
                args.messages,
            )
            .unwrap_or_else(|err| panic!("bridge trial {k}: {err}"));
            let direct = direct_trial(&server, &args, &format!("tpd{k}"), args.messages)
                .unwrap_or_else(|err| panic!("direct trial {k}: {err}"));
            let ratio =
                bridge["msg_per_s"].as_f64().unwrap() / direct["msg_per_s"].as_f64().unwrap();
            eprintln!(
                "pair {k}: bridge {:.0} msg/s, direct {:.0} msg/s, ratio {ratio:.3}",
                bridge["msg_per_s"].as_f64().unwrap(),
                direct["msg_per_s"].as_f64().unwrap()
            );
            pairs.push(json!({"bridge": bridge, "direct": direct, "ratio": ratio}));
        }
        if latency {
            let (trial, histogram) = latency_trial(dir.path(), &server, &args, &format!("lat{k}"))
                .unwrap_or_else(|err| panic!("latency trial {k}: {err}"));
            eprintln!(
                "latency {k}: p50 {} µs, p99 {} µs, max {} µs, {} sends late, {} out of order",
                trial["p50_us"],
                trial["p99_us"],
                trial["max_us"],
                trial["sends_late_over_1ms"],
                trial["out_of_order"]
            );
            merged.add(&histogram).expect("merge histograms");
            latencies.push(trial);
        }
    }
    drop(server);
    let after = machine();
    eprintln!("after: {after}");

    let field = |rows: &[Value], path: &[&str]| -> Vec<f64> {
        rows.iter()
            .map(|row| {
                path.iter()
                    .fold(row, |value, key| &value[*key])
                    .as_f64()
                    .unwrap_or(f64::NAN)
            })
            .collect()
    };
    let mut table = String::new();
    let mut summary = json!({});
    writeln!(
        table,
        "Run: {}, commit `{}`{}, {}, {} CPUs, Linux {}, {}\n\
         Load average before: {}; after: {}\n",
        before["date_utc"].as_str().unwrap_or(""),
        before["commit"].as_str().unwrap_or(""),
        if before["dirty"].as_bool() == Some(true) {
            " (with uncommitted changes)"
        } else {
            ""
        },
        before["cpu"].as_str().unwrap_or(""),
        before["cpus"],
        before["kernel"].as_str().unwrap_or(""),
        before["nats_server"].as_str().unwrap_or(""),
        before["loadavg"].as_str().unwrap_or(""),
        after["loadavg"].as_str().unwrap_or(""),
    )
    .unwrap();
    if !pairs.is_empty() {
        let bridge = field(&pairs, &["bridge", "msg_per_s"]);
        let direct = field(&pairs, &["direct", "msg_per_s"]);
        let ratios = field(&pairs, &["ratio"]);
        let (low, high) = range(&ratios);
        let (b_low, b_high) = range(&bridge);
        let (d_low, d_high) = range(&direct);
        writeln!(
            table,
            "| {} B messages, window {}, {} per trial | bridge: producer → ring → out → JetStream | direct: async-nats from memory | bridge / direct: median (range) | pairs |\n|---|---|---|---|---|\n\
             | msg/s, median (range) | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {:.3} ({:.3}–{:.3}) | {} |\n",
            args.size, args.max_inflight, args.messages,
            median(&bridge), b_low, b_high, median(&direct), d_low, d_high,
            median(&ratios), low, high, ratios.len()
        )
        .unwrap();
        let per_message_us = |path: &[&str]| {
            let values: Vec<f64> = field(&pairs, path)
                .iter()
                .map(|cpu_s| cpu_s * 1e6 / args.messages as f64)
                .collect();
            median(&values)
        };
        let cpu = json!({
            "bridge_producer_us_per_msg": per_message_us(&["bridge", "cpu_s", "producer"]),
            "bridge_out_us_per_msg": per_message_us(&["bridge", "cpu_s", "out"]),
            "bridge_server_us_per_msg": per_message_us(&["bridge", "cpu_s", "server"]),
            "direct_client_us_per_msg": per_message_us(&["direct", "cpu_s", "client"]),
            "direct_server_us_per_msg": per_message_us(&["direct", "cpu_s", "server"]),
        });
        writeln!(
            table,
            "| CPU per message, median of {} trials | bridge | direct |\n|---|---|---|\n\
             | producer example | {:.2} µs | — |\n\
             | `out` / the direct client | {:.2} µs | {:.2} µs |\n\
             | nats-server | {:.2} µs | {:.2} µs |\n",
            ratios.len(),
            cpu["bridge_producer_us_per_msg"]
                .as_f64()
                .unwrap_or(f64::NAN),
            cpu["bridge_out_us_per_msg"].as_f64().unwrap_or(f64::NAN),
            cpu["direct_client_us_per_msg"].as_f64().unwrap_or(f64::NAN),
            cpu["bridge_server_us_per_msg"].as_f64().unwrap_or(f64::NAN),
            cpu["direct_server_us_per_msg"].as_f64().unwrap_or(f64::NAN),
        )
        .unwrap();
        summary["throughput_cpu"] = cpu;
        summary["throughput"] = json!({
            "bridge_msg_per_s_median": median(&bridge),
            "direct_msg_per_s_median": median(&direct),
            "ratio_median": median(&ratios),
            "ratio_min": low,
            "ratio_max": high,
            "pairs": ratios.len(),
        });
    }
    if !latencies.is_empty() {
        let p50 = field(&latencies, &["p50_us"]);
        let p99 = field(&latencies, &["p99_us"]);
        let p999 = field(&latencies, &["p99_9_us"]);
        let (p50_low, p50_high) = range(&p50);
        let (p99_low, p99_high) = range(&p99);
        let (p999_low, p999_high) = range(&p999);
        let merged_us = |q: f64| merged.value_at_quantile(q) as f64 / 1000.0;
        writeln!(
            table,
            "| one-way, producer → out → server → in → consumer, {} msg/s, {} B | median of {} trials (range) | all trials' messages in one histogram |\n|---|---|---|\n\
             | p50 | {:.1} µs ({:.1}–{:.1}) | {:.1} µs |\n\
             | p99 | {:.1} µs ({:.1}–{:.1}) | {:.1} µs |\n\
             | p99.9 | {:.1} µs ({:.1}–{:.1}) | {:.1} µs |\n\
             | max | | {:.1} µs |\n\
             | messages recorded | | {} |",
            args.rate, args.size, latencies.len(),
            median(&p50), p50_low, p50_high, merged_us(0.5),
            median(&p99), p99_low, p99_high, merged_us(0.99),
            median(&p999), p999_low, p999_high, merged_us(0.999),
            merged.max() as f64 / 1000.0,
            merged.len(),
        )
        .unwrap();
        summary["latency"] = json!({
            "p50_us_median": median(&p50), "p50_us_min": p50_low, "p50_us_max": p50_high,
            "p99_us_median": median(&p99), "p99_us_min": p99_low, "p99_us_max": p99_high,
            "merged_p50_us": merged_us(0.5), "merged_p99_us": merged_us(0.99),
            "merged_p99_9_us": merged_us(0.999), "merged_max_us": merged.max() as f64 / 1000.0,
            "recorded": merged.len(), "trials": latencies.len(),
        });
    }
    let results = json!({
        "args": format!("{args:?}"),
        "machine_before": before,
        "machine_after": after,
        "summary": summary,
        "pairs": pairs,
        "latency_trials": latencies,
    });
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .expect("write results.json");
    std::fs::write(out_dir.join("table.md"), &table).expect("write table.md");
    println!("{table}");
    eprintln!("wrote {}/{{results.json,table.md}}", out_dir.display());
}

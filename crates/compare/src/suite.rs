//! The whole comparison: every benchmark, ours and theirs alternating (A B A B …) with the
//! floors measured between them, gathered into [`report::Row`]s.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::report::{self, Kind, Row, Target};
use crate::ring::Impl;
use crate::work::{self, EndToEndPaths, Latency};
use crate::{Result, SIZES, size_label};

/// The benchmarks, selectable with `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    /// In-process streaming throughput by payload size.
    InProcess,
    /// Cross-process streaming throughput by payload size, and a plain memcpy at 64 KiB.
    Stream,
    /// Cross-process round trip (ping-pong over two rings), and the atomic ping-pong floor.
    RoundTrip,
    /// The Python producer into our consumer and into upstream's.
    EndToEnd,
    /// The Python producer with random gaps of 20–600 µs between ticks (the consumer falls
    /// asleep between most): latency percentiles and the consumer's CPU.
    Sparse,
    /// A raw-wire producer that publishes without waking just after the consumer fell
    /// asleep: how long until each consumer delivers.
    LostWake,
}

/// How much to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Pairs per comparison (at least 5 for a verdict).
    pub pairs: usize,
    /// Divide every message count by this (smoke tests).
    pub scale_down: u64,
    /// Run upstream's side too (needs the `compare-upstream` feature).
    pub theirs: bool,
    /// Which benchmarks.
    pub benches: Vec<Bench>,
    /// Programs of the end-to-end benchmark.
    pub e2e: EndToEndPaths,
    /// Run a pair again when other processes used the CPUs meanwhile.
    pub rerun_busy: bool,
}

/// Messages per streaming trial, by payload size: about 0.2–0.5 s each here.
pub fn stream_count(size: usize) -> u64 {
    match size {
        0..=64 => 3_000_000,
        65..=512 => 2_000_000,
        513..=2048 => 1_000_000,
        2049..=8192 => 400_000,
        _ => 40_000,
    }
}

/// Round trips per trial (after as many warm-up ones as a tenth of that).
pub const ROUND_TRIPS: u64 = 100_000;
/// Round-trip pairs per pair of the other benchmarks (a round-trip trial is short).
pub const ROUND_TRIP_PAIRS_PER_PAIR: usize = 3;
/// Ticks the Python producer sends per end-to-end trial.
pub const E2E_TICKS: u64 = 200_000;
/// Ticks per sparse trial: about 1.3 s at a mean gap of 310 µs, enough samples for a p99.9
/// (the 4th slowest).
pub const SPARSE_TICKS: u64 = 4_000;
/// The sparse regime's gaps: from shorter than the consumers' spin phase to well past it.
pub const SPARSE_GAP: work::GapUs = work::GapUs { min: 20, max: 600 };
/// Lost wake-ups per trial: upstream's consumer takes up to its 200 ms futex timeout for each.
pub const LOST_WAKE_SAMPLES: usize = 12;

/// Everything one run measured.
#[derive(Debug)]
pub struct Results {
    /// The comparison rows, in table order.
    pub rows: Vec<Row>,
    /// Pairs per comparison.
    pub pairs: usize,
    /// Wall time of the measurements.
    pub elapsed: Duration,
    /// Pairs disturbed by other processes.
    pub contention: Contention,
}

impl Results {
    /// The table.
    pub fn table(&self) -> String {
        report::table(&self.rows, self.pairs)
    }

    /// Cross-process streaming medians by size, for the plot: (size, ours msg/s, theirs
    /// msg/s), and the memcpy bandwidth at 64 KiB.
    pub fn streaming(&self) -> (Vec<(usize, f64, f64)>, Option<f64>) {
        let mut series = Vec::new();
        let mut memcpy = None;
        for row in &self.rows {
            match row.kind {
                Kind::Rate { size } if row.metric.starts_with("stream") => {
                    series.push((size, report::median(&row.ours), report::median(&row.theirs)))
                }
                Kind::Bandwidth if row.theirs_label == Some("memcpy") => {
                    memcpy = Some(report::median(&row.theirs));
                }
                _ => {}
            }
        }
        (series, memcpy)
    }

    /// Every value of every trial, as JSON.
    pub fn to_json(&self, meta: Value) -> Value {
        json!({
            "meta": meta,
            "pairs": self.pairs,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "pairs_rerun_busy": self.contention.reruns,
            "pairs_kept_busy": self.contention.kept_busy,
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        })
    }
}

fn progress(what: &str, pair: usize, pairs: usize, ours: &str, theirs: &str) {
    eprintln!("  {what:<34} pair {pair}/{pairs}  ours {ours:>14}  theirs {theirs:>14}");
}

fn rate(value: f64) -> String {
    format!("{:.3} M/s", value / 1e6)
}

fn ns(value: f64) -> String {
    format!("{value:.0} ns")
}

/// CPU time the rest of the machine used: all CPUs' busy time (/proc/stat, steal included)
/// minus this process's and its reaped children's.
#[derive(Clone, Copy, Debug)]
struct CpuMeter {
    at: Instant,
    busy_s: f64,
    ours_s: f64,
}

impl CpuMeter {
    fn now() -> Option<CpuMeter> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<f64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let busy: f64 = fields.iter().take(8).sum::<f64>()
            - fields.get(3).copied().unwrap_or(0.0)
            - fields.get(4).copied().unwrap_or(0.0);
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut ours_s = 0.0;
        for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
            // SAFETY: getrusage fills the struct we pass, which lives across the call.
            let usage = unsafe {
                let mut usage = std::mem::zeroed::<libc::rusage>();
                libc::getrusage(who, &mut usage);
                usage
            };
            for time in [usage.ru_utime, usage.ru_stime] {
                ours_s += time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
            }
        }
        Some(CpuMeter {
            at: Instant::now(),
            busy_s: busy / hz.max(1.0),
            ours_s,
        })
    }

    /// Cores' worth of CPU that other processes used since `self` (0.5 = half a core).
    fn foreign_since(self) -> f64 {
        let Some(now) = CpuMeter::now() else {
            return 0.0;
        };
        let wall = now.at.duration_since(self.at).as_secs_f64();
        let foreign = (now.busy_s - self.busy_s) - (now.ours_s - self.ours_s);
        if wall > 0.0 {
            (foreign / wall).max(0.0)
        } else {
            0.0
        }
    }
}

/// A pair during which other processes used more than this many cores is run again (at most
/// [`MAX_RERUNS`] times per pair), so that a neighbour's burst does not decide a ratio.
pub const BUSY_NEIGHBOUR: f64 = 0.15;
/// Re-runs allowed per pair before a contended pair is kept anyway.
pub const MAX_RERUNS: usize = 3;

/// Counts of contended pairs, for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Contention {
    /// Pairs run again because the machine was busy.
    pub reruns: usize,
    /// Pairs kept although the machine was busy (after [`MAX_RERUNS`]).
    pub kept_busy: usize,
}

/// Runs `trial` for ours and (when configured) theirs, `pairs` times, alternating; returns the
/// per-trial values. A pair disturbed by other processes is run again.
/// `floor`, when it returns a value, is measured between the two (A, floor, B) and returned
/// per pair too.
fn alternate<T, F>(
    config: &Config,
    contention: &mut Contention,
    what: &str,
    show: impl Fn(&T) -> String,
    mut trial: impl FnMut(Impl) -> Result<T>,
    mut floor: impl FnMut() -> Result<Option<F>>,
) -> Result<(Vec<T>, Vec<T>, Vec<F>)> {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut floors = Vec::new();
    for pair in 1..=config.pairs {
        let mut reruns = 0;
        loop {
            let meter = CpuMeter::now();
            // Odd pairs run ours first, even pairs theirs: a drift of the machine's state
            // over a pair then favours neither side.
            let theirs_first = config.theirs && pair % 2 == 0;
            let early = if theirs_first {
                Some(trial(Impl::Theirs)?)
            } else {
                None
            };
            let a = trial(Impl::Ours)?;
            let f = floor()?;
            let b = match early {
                Some(b) => Some(b),
                None if config.theirs => Some(trial(Impl::Theirs)?),
                None => None,
            };
            let foreign = meter.map_or(0.0, CpuMeter::foreign_since);
            let busy = foreign > BUSY_NEIGHBOUR;
            if busy && reruns < MAX_RERUNS && config.rerun_busy {
                reruns += 1;
                contention.reruns += 1;
                eprintln!(
                    "  {what:<34} pair {pair}/{} again: other processes used {foreign:.2} cores",
                    config.pairs
                );
                continue;
            }
            if busy {
                contention.kept_busy += 1;
            }
            progress(
                what,
                pair,
                config.pairs,
                &show(&a),
                &b.as_ref().map_or("—".into(), &show),
            );
            ours.push(a);
            theirs.extend(b);
            floors.extend(f);
            break;
        }
    }
    Ok((ours, theirs, floors))
}

fn row_from<T, F>(
    mut row: Row,
    (ours, theirs, _): &(Vec<T>, Vec<T>, Vec<F>),
    value: impl Fn(&T) -> f64,
) -> Row {
    row.ours = ours.iter().map(&value).collect();
    row.theirs = theirs.iter().map(&value).collect();
    row
}

/// Runs the configured benchmarks.
pub fn run(config: &Config) -> Result<Results> {
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut contention = Contention::default();
    let scaled = |count: u64| (count / config.scale_down).max(100);

    if config.benches.contains(&Bench::InProcess) {
        eprintln!("in-process streaming (two threads, one ring)");
        for size in SIZES {
            let what = format!("in-process {}", size_label(size));
            let trials = alternate(
                config,
                &mut contention,
                &what,
                |v| rate(*v),
                |imp| work::in_process_stream(imp, size, scaled(stream_count(size))),
                || Ok(None::<()>),
            )?;
            rows.push(row_from(
                Row::new(
                    format!("in-process stream {}", size_label(size)),
                    Kind::Rate { size },
                    None,
                ),
                &trials,
                |v| *v,
            ));
        }
    }

    if config.benches.contains(&Bench::Stream) {
        eprintln!("cross-process streaming (producer here, consumer in a child)");
        let mut memcpy = Row::new(
            format!("stream {} vs plain memcpy", size_label(65536)),
            Kind::Bandwidth,
            Some(Target::AtLeast(0.70)),
        );
        memcpy.theirs_label = Some("memcpy");
        for size in SIZES {
            let what = format!("stream {}", size_label(size));
            let count = scaled(stream_count(size));
            let trials = alternate(
                config,
                &mut contention,
                &what,
                |v| rate(*v),
                |imp| work::cross_process_stream(imp, size, count, work::Publish::Batched),
                // The floor of the memcpy row, in the same pair: the same bytes, plain memcpy.
                || {
                    Ok((size == 65536).then(|| {
                        work::memcpy_rate(
                            size,
                            work::stream_capacity(size),
                            Duration::from_millis(200),
                        )
                    }))
                },
            )?;
            let target = match size {
                32 => Some(Target::AtLeast(1.2)),
                1024.. => Some(Target::AtLeast(1.0)),
                _ => None,
            };
            rows.push(row_from(
                Row::new(what, Kind::Rate { size }, target),
                &trials,
                |v| *v,
            ));
            if size == 65536 {
                memcpy.ours = trials.0.iter().map(|v| v * size as f64).collect();
                memcpy.theirs = trials.2.clone();
            }
        }
        rows.push(memcpy);

        // The call a user writes for one message: ours `Producer::send` against upstream's
        // `Bus::send`, both publishing (and waking the consumer) every message. (Not named
        // "stream …": the streaming plot takes only the batched rows.)
        let size = 32;
        let what = format!("publishing send {}", size_label(size));
        let count = scaled(stream_count(size)) / 3;
        let trials = alternate(
            config,
            &mut contention,
            &what,
            |v| rate(*v),
            |imp| work::cross_process_stream(imp, size, count, work::Publish::EachMessage),
            || Ok(None::<()>),
        )?;
        rows.push(row_from(
            Row::new(
                format!("{what}, each message published"),
                Kind::Rate { size },
                Some(Target::AtLeast(1.0)),
            ),
            &trials,
            |v| *v,
        ));
    }

    if config.benches.contains(&Bench::RoundTrip) {
        eprintln!("cross-process round trip, 32 B, pure spin (and the atomic ping-pong floor)");
        let samples = scaled(ROUND_TRIPS);
        // A trial lasts ~70 ms and this VM's cores move between a fast (~300 ns) and a slow
        // (~900 ns) state about as often: a pair that straddles a move gives a ratio near 0.3
        // or 3. Three times the pairs keep the median among the pairs that did not.
        let round_trip_config = Config {
            pairs: config.pairs * ROUND_TRIP_PAIRS_PER_PAIR,
            ..config.clone()
        };
        let trials = alternate(
            &round_trip_config,
            &mut contention,
            "round trip p50 / p99",
            |l: &Latency| format!("{}/{}", ns(l.p50), ns(l.p99)),
            |imp| work::round_trip(imp, samples / 10, samples),
            || work::floor(samples / 10, samples).map(Some),
        )?;
        let floors = &trials.2;
        let floor_p50 = report::median(&floors.iter().map(|l| l.p50).collect::<Vec<_>>());
        let floor_p99 = report::median(&floors.iter().map(|l| l.p99).collect::<Vec<_>>());
        for (name, pick) in [
            (
                "floor: atomic ping-pong RT p50",
                (|l: &Latency| l.p50) as fn(&Latency) -> f64,
            ),
            ("floor: atomic ping-pong RT p99", |l| l.p99),
        ] {
            let mut row = Row::new(name, Kind::Latency { floor_ns: None }, None);
            row.ours = floors.iter().map(pick).collect();
            rows.push(row);
        }
        for (name, floor, target, pick) in [
            (
                "round trip 32 B p50",
                floor_p50,
                Some(Target::AtMost(0.9)),
                (|l: &Latency| l.p50) as fn(&Latency) -> f64,
            ),
            (
                "round trip 32 B p99",
                floor_p99,
                Some(Target::AtMost(1.0)),
                |l| l.p99,
            ),
            ("round trip 32 B p99.9", f64::NAN, None, |l| l.p999),
        ] {
            let floor_ns = (!floor.is_nan()).then_some(floor);
            rows.push(row_from(
                Row::new(name, Kind::Latency { floor_ns }, target),
                &trials,
                pick,
            ));
        }
    }

    if config.benches.contains(&Bench::EndToEnd) {
        eprintln!(
            "end to end: python/producer.py into tachyon-consumer / tachyon-consumer-upstream"
        );
        let ticks = scaled(E2E_TICKS);
        let trials = alternate(
            config,
            &mut contention,
            "e2e producer rate / one-way p50",
            |e: &work::EndToEnd| {
                let full = if e.full_retries > 0 {
                    format!(" ({} full)", e.full_retries)
                } else {
                    String::new()
                };
                format!(
                    "{}/{}{full}",
                    rate(e.producer_msgs_per_s),
                    ns(e.latency.p50)
                )
            },
            |imp| work::end_to_end(imp, ticks, &config.e2e, None),
            || Ok(None::<()>),
        )?;
        // One way is half a round trip: the floor of a one-way latency is half the floor's RT.
        let one_way_floor = rows
            .iter()
            .find(|row| row.metric == "floor: atomic ping-pong RT p50")
            .map(|row| report::median(&row.ours) / 2.0);
        rows.push(row_from(
            Row::new(
                "e2e Python producer rate (32 B ticks)",
                Kind::Rate { size: 32 },
                Some(Target::AtLeast(1.0)),
            ),
            &trials,
            |e| e.producer_msgs_per_s,
        ));
        rows.push(row_from(
            Row::new(
                "e2e one-way latency p50",
                Kind::Latency {
                    floor_ns: one_way_floor,
                },
                // Issue 9: back to parity (it was 0.9 before; see docs/performance.md).
                Some(Target::AtMost(1.0)),
            ),
            &trials,
            |e| e.latency.p50,
        ));
        rows.push(row_from(
            Row::new(
                "e2e one-way latency p99",
                Kind::Latency { floor_ns: None },
                None,
            ),
            &trials,
            |e| e.latency.p99,
        ));
    }

    if config.benches.contains(&Bench::Sparse) {
        rows.extend(sparse(config, &mut contention)?);
    }
    if config.benches.contains(&Bench::LostWake) {
        rows.extend(lost_wake(config, &mut contention)?);
    }

    Ok(Results {
        rows,
        pairs: config.pairs,
        elapsed: started.elapsed(),
        contention,
    })
}

/// The sparse regime: the Python producer with a random gap before each tick.
fn sparse(config: &Config, contention: &mut Contention) -> Result<Vec<Row>> {
    eprintln!(
        "sparse: python/producer.py --gap-us {}..{} into tachyon-consumer / \
         tachyon-consumer-upstream",
        SPARSE_GAP.min, SPARSE_GAP.max
    );
    let ticks = (SPARSE_TICKS / config.scale_down).max(20);
    let trials = alternate(
        config,
        contention,
        "sparse p50 / p99 / cpu",
        |e: &work::EndToEnd| {
            format!(
                "{}/{}/{:.2}",
                ns(e.latency.p50),
                ns(e.latency.p99),
                e.consumer_cpu_per_s
            )
        },
        |imp| work::end_to_end(imp, ticks, &config.e2e, Some(SPARSE_GAP)),
        || Ok(None::<()>),
    )?;
    let latency = |name: &str, target| {
        Row::new(
            format!("sparse one-way latency {name}"),
            Kind::Latency { floor_ns: None },
            target,
        )
    };
    Ok(vec![
        row_from(latency("p50", Some(Target::AtMost(1.0))), &trials, |e| {
            e.latency.p50
        }),
        row_from(latency("p99", None), &trials, |e| e.latency.p99),
        row_from(latency("p99.9", None), &trials, |e| e.latency.p999),
        row_from(latency("max", None), &trials, |e| e.latency.max),
        row_from(
            Row::new("sparse consumer CPU per second", Kind::Cores, None),
            &trials,
            |e| e.consumer_cpu_per_s,
        ),
        // Upstream's consumer does not count its sleeps: ours only.
        {
            let mut row = Row::new("sparse futex sleeps per tick (ours)", Kind::Share, None);
            row.ours = trials.0.iter().map(|e| e.sleeps_per_tick).collect();
            row
        },
    ])
}

/// The forced lost wake-up: publish without waking just after the consumer fell asleep.
fn lost_wake(config: &Config, contention: &mut Contention) -> Result<Vec<Row>> {
    eprintln!(
        "lost wake-up: a raw producer publishes without waking the sleeping consumer \
         (cap {:?} per sample)",
        crate::lost_wake::CAP
    );
    let samples = (LOST_WAKE_SAMPLES / config.scale_down as usize).max(2);
    let trials = alternate(
        config,
        contention,
        "lost wake-up delay p50 / max",
        |l: &crate::lost_wake::LostWake| {
            let capped = if l.capped > 0 { " (capped)" } else { "" };
            format!(
                "{}/{}{capped}",
                short_ns(report::median(&l.delays_ns)),
                short_ns(l.delays_ns.iter().copied().fold(f64::NAN, f64::max)),
            )
        },
        |imp| crate::lost_wake::trial(imp, samples),
        || Ok(None::<()>),
    )?;
    let delay = |name: &str| {
        Row::new(
            format!("lost wake-up: delivery delay {name}"),
            Kind::Latency { floor_ns: None },
            None,
        )
    };
    Ok(vec![
        row_from(delay("p50"), &trials, |l| report::median(&l.delays_ns)),
        row_from(delay("max"), &trials, |l| {
            l.delays_ns.iter().copied().fold(f64::NAN, f64::max)
        }),
        row_from(
            Row::new(
                "lost wake-up: awake (spinning) before sleeping again, p50",
                Kind::Latency { floor_ns: None },
                None,
            ),
            &trials,
            |l| report::median(&l.awake_ns),
        ),
    ])
}

/// A duration in ns, in the unit that suits it.
fn short_ns(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1} ms", value / 1e6)
    } else {
        format!("{:.1} µs", value / 1e3)
    }
}

//! Counts and one-way latency of the ticks received, and the summary printed at the end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

use tachyon_ring::WaitEnd;

use crate::tick::{ASK, BID, MarketTick};

/// The `--json` summary (the last stdout line), as tests and the benchmark read it.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub received: u64,
    pub bids: u64,
    pub asks: u64,
    pub other: u64,
    pub malformed: u64,
    pub volume: u64,
    pub sleeps: u64,
    pub wakeups: u64,
    pub elapsed_s: f64,
    pub msgs_per_s: f64,
    /// This process's CPU time (user + system) so far, and per second of the stream.
    pub cpu_s: f64,
    pub cpu_per_s: f64,
    pub latency_ns: LatencySummary,
    /// How the waits on an empty ring went (single-producer runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSummary>,
    /// Messages and latency per kind of wait (single-producer runs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_wait: Vec<WaitKindSummary>,
}

/// The kinds of wait a message's latency is filed under, as the summary names them.
pub const WAIT_KINDS: [&str; 4] = ["none", "spin", "woken", "nap_ran_out"];

/// One kind of wait in the summary.
#[derive(Debug, Serialize)]
pub struct WaitKindSummary {
    pub kind: &'static str,
    pub messages: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// A latency histogram: 1 ns to 10 min, 3 significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// How the consumer's waits on an empty ring went: what distinguishes a producer's wake from
/// a nap running out, and what the spin cost and caught (`ConsumerStats`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WaitSummary {
    /// Naps that ran out with nothing published (wasted wake-ups).
    pub naps_run_out: u64,
    /// Naps that ran out with a message published and no wake (a lost or late wake).
    pub missed_wakes: u64,
    /// Waits the spin policy began with a spin, with a nap then a spin, or with a sleep.
    pub spun_at_once: u64,
    pub napped_then_spun: u64,
    pub slept_at_once: u64,
    /// Messages a spin caught, and the time spent spinning on an empty ring.
    pub caught_spinning: u64,
    pub spin_s: f64,
}

impl WaitSummary {
    pub fn of(stats: &tachyon_ring::ConsumerStats) -> WaitSummary {
        WaitSummary {
            naps_run_out: stats.naps_run_out,
            missed_wakes: stats.missed_wakes,
            spun_at_once: stats.pace.spun_at_once,
            napped_then_spun: stats.pace.napped_then_spun,
            slept_at_once: stats.pace.slept_at_once,
            caught_spinning: stats.pace.caught_spinning,
            spin_s: stats.pace.spin_nanos as f64 / 1e9,
        }
    }
}

/// One-way latency percentiles of the summary, in ns.
#[derive(Debug, Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Running totals; latency in an HDR histogram (bounded memory whatever the message count).
pub struct Stats {
    pub received: u64,
    pub bids: u64,
    pub asks: u64,
    pub other: u64,
    /// Bids or asks whose payload is not one 32-byte tick with a finite price.
    pub malformed: u64,
    /// Sum of the quantities of all bids and asks.
    pub volume: u64,
    /// Futex sleeps, and how many a producer's wake ended (`Consumer::sleep_stats`).
    pub sleeps: (u64, u64),
    /// How the waits went, once the consumer is done.
    pub wait: Option<WaitSummary>,
    /// Per kind of wait ([`WAIT_KINDS`]): messages, and their latency.
    by_wait: [(u64, Histogram<u64>); 4],
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    /// The process's CPU time at the first message and at the end: what the stream cost us,
    /// startup and the wait for the producer left out.
    cpu_at_first: Option<Duration>,
    cpu_at_last: Option<Duration>,
    latency_ns: Histogram<u64>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            received: 0,
            bids: 0,
            asks: 0,
            other: 0,
            malformed: 0,
            volume: 0,
            sleeps: (0, 0),
            wait: None,
            by_wait: std::array::from_fn(|_| (0, latency_histogram())),
            first_at: None,
            last_at: None,
            cpu_at_first: None,
            cpu_at_last: None,
            latency_ns: latency_histogram(),
        }
    }

    /// Counts one message of `type_id` carrying `quantity` when it decoded as a tick;
    /// `latency_ns` when it carried a timestamp. The clocks are read for the first message
    /// only; the stream's end is stamped by [`finish`](Stats::finish).
    pub fn record(&mut self, type_id: u32, quantity: Option<u32>, latency_ns: Option<u64>) {
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
            self.cpu_at_first = Some(process_cpu_time());
        }
        self.received += 1;
        match (type_id, quantity) {
            (BID | ASK, None) => self.malformed += 1,
            (BID, Some(quantity)) => {
                self.bids += 1;
                self.volume = self.volume.saturating_add(u64::from(quantity));
            }
            (ASK, Some(quantity)) => {
                self.asks += 1;
                self.volume = self.volume.saturating_add(u64::from(quantity));
            }
            _ => self.other += 1,
        }
        if let Some(ns) = latency_ns {
            self.latency_ns.saturating_record(ns.max(1));
        }
    }

    /// Counts one message and its tick; see [`reading`].
    /// Returns the tick's one-way latency, if it had one.
    pub fn record_tick(&mut self, type_id: u32, tick: Option<MarketTick>) -> Option<u64> {
        let (quantity, latency) = reading(type_id, tick);
        self.record(type_id, quantity, latency);
        latency
    }

    /// Counts how the wait for one message ended, with its latency if it had one: the
    /// summary's latency per kind of wait says which kind the tail is made of.
    pub fn record_wait(&mut self, ended: WaitEnd, latency_ns: Option<u64>) {
        let index = match ended {
            WaitEnd::Spinning => 1,
            WaitEnd::Woken => 2,
            WaitEnd::NapRanOut => 3,
            _ => 0,
        };
        let kind = &mut self.by_wait[index];
        kind.0 += 1;
        if let Some(ns) = latency_ns {
            kind.1.saturating_record(ns.max(1));
        }
    }

    /// The stream's end: the sentinel's arrival, or the moment the run stopped.
    pub fn finish(&mut self, now: Instant) {
        if self.first_at.is_some() {
            self.last_at = Some(now);
            self.cpu_at_last = Some(process_cpu_time());
        }
    }

    /// CPU time (all threads, user + system) from the first message to the end (or to now).
    pub fn cpu_time(&self) -> Duration {
        match self.cpu_at_first {
            Some(first) => self
                .cpu_at_last
                .unwrap_or_else(process_cpu_time)
                .saturating_sub(first),
            None => Duration::ZERO,
        }
    }

    /// Cores' worth of CPU the stream cost: CPU time per second of wall time (1.0 = one core
    /// busy throughout, as a consumer that never sleeps is).
    pub fn cpu_per_second(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.cpu_time().as_secs_f64() / secs
        } else {
            0.0
        }
    }

    /// First message to the sentinel (or, while running, to now).
    pub fn elapsed(&self) -> Duration {
        match (self.first_at, self.last_at) {
            (Some(first), Some(last)) => last - first,
            (Some(first), None) => first.elapsed(),
            _ => Duration::ZERO,
        }
    }

    pub fn rate(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.received as f64 / secs
        } else {
            0.0
        }
    }

    fn percentile(&self, q: f64) -> u64 {
        if self.latency_ns.is_empty() {
            0
        } else {
            self.latency_ns.value_at_quantile(q)
        }
    }

    /// One progress line for stderr.
    pub fn progress_line(&self) -> String {
        format!(
            "received {} ({:.0} msg/s), latency p50 {} ns, p99 {} ns",
            self.received,
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.99)
        )
    }

    /// Messages and latency per kind of wait, for the summary (kinds with no message left
    /// out).
    fn by_wait(&self) -> Vec<WaitKindSummary> {
        WAIT_KINDS
            .iter()
            .zip(&self.by_wait)
            .filter(|(_, (count, _))| *count > 0)
            .map(|(name, (count, histogram))| WaitKindSummary {
                kind: name,
                messages: *count,
                p50_ns: histogram.value_at_quantile(0.50),
                p99_ns: histogram.value_at_quantile(0.99),
                max_ns: histogram.max(),
            })
            .collect()
    }

    pub fn to_json(&self) -> String {
        // Numbers and nested structs only: serde_json cannot fail on them.
        serde_json::to_string(&self.summary()).expect("a summary of numbers serializes")
    }

    /// The `--json` summary's fields, named as printed.
    pub fn summary(&self) -> Summary {
        Summary {
            received: self.received,
            bids: self.bids,
            asks: self.asks,
            other: self.other,
            malformed: self.malformed,
            volume: self.volume,
            sleeps: self.sleeps.0,
            wakeups: self.sleeps.1,
            elapsed_s: self.elapsed().as_secs_f64(),
            msgs_per_s: self.rate(),
            cpu_s: self.cpu_time().as_secs_f64(),
            cpu_per_s: self.cpu_per_second(),
            latency_ns: LatencySummary {
                samples: self.latency_ns.len(),
                p50: self.percentile(0.50),
                p90: self.percentile(0.90),
                p99: self.percentile(0.99),
                p999: self.percentile(0.999),
                max: self.latency_ns.max(),
            },
            wait: self.wait,
            by_wait: self.by_wait(),
        }
    }

    pub fn to_table(&self) -> String {
        let row = |name: &str, value: String| format!("  {name:<16} {value:>16}\n");
        let mut table = String::from("tachyon-consumer summary\n");
        table += &row("received", self.received.to_string());
        table += &row("bids", self.bids.to_string());
        table += &row("asks", self.asks.to_string());
        table += &row("other", self.other.to_string());
        if self.malformed > 0 {
            table += &row("malformed", self.malformed.to_string());
        }
        table += &row("volume", self.volume.to_string());
        table += &row("elapsed", format!("{:.3} s", self.elapsed().as_secs_f64()));
        table += &row("rate", format!("{:.0} msg/s", self.rate()));
        table += &row(
            "cpu",
            format!(
                "{:.3} s ({:.2} cores)",
                self.cpu_time().as_secs_f64(),
                self.cpu_per_second()
            ),
        );
        if self.latency_ns.is_empty() {
            table += "  one-way latency: no timestamped ticks\n";
        } else {
            table += "  one-way latency (receive time - tick timestamp, CLOCK_REALTIME)\n";
            for (name, q) in [
                ("p50", 0.50),
                ("p90", 0.90),
                ("p99", 0.99),
                ("p99.9", 0.999),
            ] {
                table += &row(
                    name,
                    format!("{:.2} µs", self.percentile(q) as f64 / 1000.0),
                );
            }
            table += &row(
                "max",
                format!("{:.2} µs", self.latency_ns.max() as f64 / 1000.0),
            );
        }
        table
    }
}

/// This process's CPU time so far, all threads, user and system (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives across the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// What one received message of `type_id` carrying `tick` (`None`: not one 32-byte tick)
/// counts for: the quantity of a tick with a finite price and, for a stamped bid or ask, its
/// one-way latency. One clock read, so a message recorded twice (fan-in: per producer and in
/// total) counts the same latency twice.
pub fn reading(type_id: u32, tick: Option<MarketTick>) -> (Option<u32>, Option<u64>) {
    let tick = tick.filter(|tick| tick.price().is_finite());
    let latency = tick
        .filter(|_| matches!(type_id, BID | ASK))
        .and_then(|tick| one_way_latency_ns(tick.timestamp_ns()));
    (tick.map(|tick| tick.quantity()), latency)
}

/// Receive time minus the tick's timestamp, both `CLOCK_REALTIME`; `None` for an unstamped
/// tick. A stamp from the future (clock stepped) counts as 0.
pub fn one_way_latency_ns(timestamp_ns: u64) -> Option<u64> {
    if timestamp_ns == 0 {
        return None;
    }
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos() as u64;
    Some(now_ns.saturating_sub(timestamp_ns))
}

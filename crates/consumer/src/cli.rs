//! The command line of `tachyon-consumer`, shared with its upstream-based twin in
//! `crates/compare` so both take exactly the same arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Receive MarketTicks from a tachyon bus and report counts, rate and one-way latency.
///
/// The consumer stops at the sentinel (type id 0) and exits 0. Errors end with one line naming
/// the cause and exit 1; SIGINT and SIGTERM print the summary so far and exit 130 and 143.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
pub struct Args {
    /// Unix socket path of the bus handshake.
    #[arg(long, default_value = "/tmp/tachyon_market.sock")]
    pub socket: PathBuf,
    /// Create the ring and wait for the producer (the default; the seed's order: the consumer
    /// starts first and owns the socket).
    #[arg(long, conflicts_with = "connect")]
    pub listen: bool,
    /// Connect to a listening producer (upstream's example order).
    #[arg(long)]
    pub connect: bool,
    /// Ring bytes when listening: a power of two, at least 64.
    #[arg(long, default_value_t = 1 << 20)]
    pub capacity: usize,
    /// With --connect: how long to keep retrying while nobody listens ("5s", "200ms").
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub connect_timeout: Duration,
    /// Polls of an empty ring before sleeping on the futex.
    #[arg(long, conflicts_with = "pure_spin", default_value_t = tachyon_ring::BusOptions::DEFAULT_SPIN_THRESHOLD)]
    pub spin: u32,
    /// Never sleep: spin on an empty ring (lowest latency, one busy core).
    #[arg(long)]
    pub pure_spin: bool,
    /// Print the final summary as one JSON object, the last line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Listen for this many producers on the one socket, each with its own ring, and merge
    /// them; stop when every one has sent its sentinel or died (a dead one makes the exit
    /// code 1). The summary adds per-producer figures.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..), conflicts_with_all = ["connect", "pure_spin"])]
    pub producers: u16,
}

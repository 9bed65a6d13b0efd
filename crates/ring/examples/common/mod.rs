//! What the `producer` and `consumer` examples share: the command-line flags that open a bus,
//! and the test pattern every payload follows.
#![allow(dead_code)] // each example uses its own half

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tachyon_ring::{AllowedPeers, Bus, BusOptions, Error};

pub mod receiving;

/// SIGINT/SIGTERM turned into a cancel, shared with tachyon-consumer.
#[path = "../../../consumer/src/signals.rs"]
mod signals;
pub use signals::StopSignal;

/// Installs the SIGINT/SIGTERM edge, or ends the example with a one-line error.
pub fn install_stop(name: &str) -> Result<StopSignal, ExitCode> {
    StopSignal::install().map_err(|err| {
        eprintln!("{name}: cannot install the SIGINT/SIGTERM handlers: {err}");
        ExitCode::from(2)
    })
}

/// The exit of an example: `Ok(true)` 0, `Ok(false)` 1, a signal's cancel 128 + the signal
/// (the caller has printed its summary so far), any other error `error_code` after one line.
pub fn exit_code(
    name: &str,
    outcome: tachyon_ring::Result<bool>,
    stop: &StopSignal,
    error_code: u8,
) -> ExitCode {
    match (outcome, stop.caught()) {
        (Ok(true), _) => ExitCode::SUCCESS,
        (Ok(false), _) => ExitCode::FAILURE,
        (Err(Error::Cancelled(_)), Some(signal)) => {
            eprintln!("{name}: stopped by signal {signal}");
            ExitCode::from(128 + signal as u8)
        }
        (Err(err), _) => {
            eprintln!("{name}: {err}");
            ExitCode::from(error_code)
        }
    }
}

/// How to reach the peer.
#[derive(clap::Args, Clone, Debug)]
pub struct Endpoint {
    /// Unix socket path of the handshake.
    #[arg(long, default_value = "/tmp/tachyon_example.sock")]
    pub socket: PathBuf,
    /// Create the ring and wait for the peer to connect.
    #[arg(long, conflicts_with = "connect")]
    pub listen: bool,
    /// Connect to a listening peer, retrying for up to 5 s (the default role).
    #[arg(long)]
    pub connect: bool,
    /// Ring bytes, when listening: a power of two, at least 64.
    #[arg(long, default_value_t = 1 << 20)]
    pub capacity: usize,
    /// When listening, also admit this uid (repeatable; default: our own uid and root).
    #[arg(long = "allow-uid")]
    pub allow_uids: Vec<u32>,
}

impl Endpoint {
    pub fn open(&self, options: BusOptions) -> tachyon_ring::Result<Bus> {
        if self.listen {
            let options = if self.allow_uids.is_empty() {
                options
            } else {
                options.allowed_peers(AllowedPeers::Uids(self.allow_uids.clone()))
            };
            options.listen(&self.socket, self.capacity)
        } else {
            options
                .connect_timeout(Duration::from_secs(5))
                .connect(&self.socket)
        }
    }
}

/// Ends this process as a crash would: SIGKILL, no destructors, no flush.
pub fn die() -> ! {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    unreachable!("SIGKILL cannot be caught")
}

/// Payload byte `j` of message `i`.
pub fn pattern_byte(i: u64, j: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(j as u64) % 256) as u8
}

/// Type id of message `i` (0 is the sentinel).
pub fn pattern_type_id(i: u64) -> u32 {
    1 + (i % 1000) as u32
}

pub fn fill_pattern(i: u64, payload: &mut [u8]) {
    for (j, byte) in payload.iter_mut().enumerate() {
        *byte = pattern_byte(i, j);
    }
}

pub fn follows_pattern(i: u64, payload: &[u8]) -> bool {
    payload
        .iter()
        .enumerate()
        .all(|(j, &byte)| byte == pattern_byte(i, j))
}

/// `MIN..MAX` (inclusive), or a single number.
pub fn parse_size_range(text: &str) -> Result<(usize, usize), String> {
    let (min, max) = parse_sweep(text)?;
    if min > max {
        return Err(format!("{min} is above {max}"));
    }
    Ok((min, max))
}

/// `FROM..TO` (inclusive, either direction), or a single number.
pub fn parse_sweep(text: &str) -> Result<(usize, usize), String> {
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|e| format!("{s:?}: {e}"));
    match text.split_once("..") {
        Some((from, to)) => Ok((parse(from)?, parse(to.trim_start_matches('='))?)),
        None => Ok((parse(text)?, parse(text)?)),
    }
}

/// Size of message `i` of a sweep from `from` to `to` (inclusive, either direction), cycling.
pub fn sweep_size(i: u64, (from, to): (usize, usize)) -> usize {
    let step = (i % (from.abs_diff(to) as u64 + 1)) as usize;
    if from <= to { from + step } else { from - step }
}

//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// See every tachyon bus on this machine (tachyon-ring's and tachyon-ipc's) without touching
/// it. With no output flag, an interactive view; run as root to see every process's rings.
#[derive(Parser, Debug)]
#[command(name = "tachyon-top", version, args_override_self = true)]
pub(crate) struct Cli {
    /// Print one snapshot as JSON (schema tachyon-top/1) after one --interval, and exit.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print a JSON snapshot (one line, NDJSON) every --interval until interrupted.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Exit 1 naming every fatal, stalled or orphaned ring (after observing for
    /// max(--interval, --stall-after)); exit 0 when there is none.
    #[arg(long)]
    pub(crate) check: bool,
    /// Write the Prometheus text exposition to FILE (atomically: FILE.tmp, then rename), for
    /// node-exporter's textfile collector; every --interval with --watch or --listen.
    #[arg(long, value_name = "FILE")]
    pub(crate) prometheus: Option<PathBuf>,
    /// Serve the Prometheus exposition at http://ADDR/metrics until interrupted.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Seconds between samples (rates are over this window).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_seconds)]
    pub(crate) interval: Duration,
    /// Only rings this process holds (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pub(crate) pids: Vec<u32>,
    /// Only rings whose label (socket path) matches GLOB.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub(crate) label: Option<glob::Pattern>,
    /// Walk slot headers between tail and head: true msg/s and per-type counts (maps the
    /// whole ring read-only; costs a cache-line read per pending message per sample).
    #[arg(long)]
    pub(crate) peek: bool,
    /// Seconds without the tail moving, while the consumer has work, before a ring is
    /// called stalled.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_seconds)]
    pub(crate) stall_after: Duration,
    /// Also list memfds that are not rings when their names do not look like socket paths.
    #[arg(long)]
    pub(crate) all: bool,
    /// With --watch or --listen: stop after this many snapshots.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.01..=3600.0).contains(&seconds) {
        return Err(format!("{seconds} s is outside 0.01..3600"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_glob(text: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(text).map_err(|e| format!("bad glob {text:?}: {e}"))
}

impl Cli {
    pub(crate) fn options(&self) -> tachyon_top::Options {
        tachyon_top::Options {
            peek: self.peek,
            stall_after: self.stall_after,
            all_memfds: self.all,
            pids: self.pids.clone(),
            label: self.label.clone(),
        }
    }

    /// No output flag: the interactive view.
    pub(crate) fn interactive(&self) -> bool {
        !(self.json || self.watch || self.check || self.prometheus.is_some())
            && self.listen.is_none()
    }
}

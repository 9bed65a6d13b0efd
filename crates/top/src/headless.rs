//! The non-interactive modes: `--json`, `--watch`, `--check`, `--prometheus FILE` and
//! `--listen ADDR`, all driven by one sampling loop.

use std::io::Write;
use std::path::Path;

use tachyon_top::{Monitor, Snapshot};

use crate::cli::Cli;
use crate::serve::MetricsServer;
use crate::signals::Stop;

/// Runs the modes the command line asks for; returns the exit status.
pub(crate) fn run(cli: &Cli, stop: &Stop) -> Result<i32, String> {
    let mut monitor = Monitor::new(cli.options());
    let server = cli
        .listen
        .map(MetricsServer::start)
        .transpose()
        .map_err(|e| format!("--listen: {e}"))?;
    let repeating = cli.watch || server.is_some();
    sample(&mut monitor)?;
    if !repeating {
        // One snapshot, with rates over one interval; --check watches long enough to judge a
        // stall.
        let observe = if cli.check {
            cli.interval.max(cli.stall_after)
        } else {
            cli.interval
        };
        let mut left = observe;
        while !left.is_zero() {
            let step = left.min(cli.interval);
            if stop.sleep(step) {
                return Ok(stop.exit_code().unwrap_or(130));
            }
            left -= step;
            if !left.is_zero() {
                sample(&mut monitor)?;
            }
        }
        let snapshot = sample(&mut monitor)?;
        if cli.json {
            print_json(&snapshot)?;
        }
        if let Some(file) = &cli.prometheus {
            write_prometheus(file, &snapshot)?;
        }
        return Ok(if cli.check { check(&snapshot) } else { 0 });
    }
    let mut snapshots = 0u64;
    loop {
        if stop.sleep(cli.interval) {
            return Ok(stop.exit_code().unwrap_or(130));
        }
        let snapshot = sample(&mut monitor)?;
        if cli.watch {
            print_json(&snapshot)?;
        }
        if let Some(file) = &cli.prometheus {
            write_prometheus(file, &snapshot)?;
        }
        if let Some(server) = &server {
            server.publish(tachyon_top::prometheus::exposition(&snapshot));
        }
        snapshots += 1;
        if cli.count.is_some_and(|count| snapshots >= count) {
            return Ok(if cli.check { check(&snapshot) } else { 0 });
        }
    }
}

fn sample(monitor: &mut Monitor) -> Result<Snapshot, String> {
    monitor.sample().map_err(|e| e.to_string())
}

fn print_json(snapshot: &Snapshot) -> Result<(), String> {
    let line = serde_json::to_string(snapshot).map_err(|e| format!("JSON: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// Writes `FILE.tmp` and renames it over `FILE`, so the textfile collector never reads half a
/// file.
fn write_prometheus(file: &Path, snapshot: &Snapshot) -> Result<(), String> {
    let mut temporary = file.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, tachyon_top::prometheus::exposition(snapshot))
        .and_then(|()| std::fs::rename(&temporary, file))
        .map_err(|e| format!("--prometheus {}: {e}", file.display()))
}

/// Prints one line per alarm (and per ring that could not be read) and returns 1 when any
/// alarm is raised, else 0.
fn check(snapshot: &Snapshot) -> i32 {
    let mut alarms = 0;
    for ring in &snapshot.rings {
        for alarm in &ring.alarms {
            alarms += 1;
            println!(
                "{}: {} ({}, pids {}): {}",
                alarm.kind.name().to_uppercase(),
                ring.label,
                ring.id,
                pids(ring),
                alarm.message
            );
        }
        if let Some(error) = &ring.error {
            println!(
                "WARNING: {} ({}, pids {}): {error}",
                ring.label,
                ring.id,
                pids(ring)
            );
        }
    }
    if !snapshot.uninspectable.is_empty() {
        println!(
            "WARNING: {} processes could not be inspected (run as root to see their rings)",
            snapshot.uninspectable.len()
        );
    }
    if alarms == 0 {
        println!("ok: {} rings, no alarm", snapshot.rings.len());
        0
    } else {
        1
    }
}

fn pids(ring: &tachyon_top::RingReport) -> String {
    let pids: Vec<String> = ring.processes.iter().map(|p| p.pid.to_string()).collect();
    if pids.is_empty() {
        "none".into()
    } else {
        pids.join(",")
    }
}

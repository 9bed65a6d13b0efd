//! The Rust half of `crates/python/bench/idle_cpu.py`: listens at the socket path given, and
//! once a producer has connected, prints as one JSON line the CPU this process spent (every
//! thread, `getrusage(RUSAGE_SELF)`) while `Consumer::recv_timeout` waited on the idle ring for
//! the seconds given.
//!
//! ```text
//! cargo run --release -p tachyon-python --example idle_cpu -- /tmp/idle.sock 5
//! ```

use std::time::{Duration, Instant};

use tachyon_ring::{Bus, Error};

/// User + system CPU seconds of this process so far, and its voluntary context switches.
fn usage() -> (f64, i64) {
    // SAFETY: a zeroed rusage is a valid value of the plain C struct getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass, which lives across the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
        usage.ru_nvcsw,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(seconds)) = (args.next(), args.next()) else {
        return Err("usage: idle_cpu SOCKET_PATH SECONDS".into());
    };
    let seconds: f64 = seconds.parse()?;
    let mut consumer = Bus::listen(&path, 1 << 16)?.into_consumer();
    let (cpu_before, switches_before) = usage();
    let started = Instant::now();
    match consumer.recv_timeout(Duration::from_secs_f64(seconds)) {
        Err(Error::Timeout(_)) => {}
        Ok(_) => return Err("a message arrived on the idle ring".into()),
        Err(other) => return Err(other.into()),
    }
    let wall = started.elapsed().as_secs_f64();
    let (cpu_after, switches_after) = usage();
    println!(
        "{{\"wall_s\": {wall:.6}, \"cpu_s\": {:.6}, \"voluntary_switches\": {}}}",
        cpu_after - cpu_before,
        switches_after - switches_before
    );
    Ok(())
}

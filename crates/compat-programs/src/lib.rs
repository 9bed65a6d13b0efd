//! Helpers the programs share that upstream's users would write themselves: argument
//! reading and the test pattern. Nothing here touches the bus; the programs in `src/bin`
//! use only `tachyon_ipc`'s API (tachyon-compat under upstream's name).

use std::time::{Duration, Instant};

/// Payload byte `j` of message `i`: the pattern `python/consumer.py` and
/// `python/rpc_caller.py` check.
pub fn pattern_byte(i: u64, j: usize) -> u8 {
    ((i.wrapping_mul(31)).wrapping_add(j as u64) % 256) as u8
}

/// The value after `--name` on the command line, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}: cannot parse {value:?}"))
        })
        .unwrap_or(default)
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// Retries `connect` for up to ten seconds: upstream's fails at once while nobody listens,
/// so its users retry, as its examples do.
pub fn retry_connect<T, E: std::fmt::Display>(mut connect: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect() {
            Ok(bus) => return bus,
            Err(err) if Instant::now() >= deadline => panic!("connect: {err}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

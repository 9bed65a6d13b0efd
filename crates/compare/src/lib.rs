//! Side-by-side benchmarks of `tachyon-ring` (ours) against tachyon-ipc 0.5.1's C++ core
//! (theirs, crates.io `tachyon-ipc` through `tachyon-sys`, feature `compare-upstream`).
//!
//! Every comparison runs ours and theirs alternately in one process run (A B A B …) and reports
//! the median of the per-pair ratios ours / theirs. Both implementations sit behind the small
//! [`ring::Ring`] trait, so each benchmark is one generic function. Cross-process benchmarks
//! spawn this same binary with a `child` subcommand for the other side.
//!
//! The floors measured in the same run: a bare atomic ping-pong between two processes through a
//! shared mapping ([`work::floor`]) and a plain `memcpy` of the same bytes
//! ([`work::memcpy_rate`]).

#[cfg(feature = "compare-iceoryx2")]
pub mod anchor;
pub mod cpu;
pub mod fan_in;
#[cfg(feature = "compare-iceoryx2")]
pub mod iceoryx2;
pub mod idle;
pub mod lost_wake;
pub mod plot;
pub mod report;
pub mod ring;
pub mod sparse;
pub mod suite;
#[cfg(feature = "compare-upstream")]
pub mod upstream;
pub mod work;

/// Errors of the harness: anything, with its message.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Payload sizes of the throughput benchmarks: 0, 32, 256 B, 1, 4, 64 KiB.
pub const SIZES: [usize; 6] = [0, 32, 256, 1024, 4096, 65536];

/// `0 B`, `32 B`, `1 KiB`, …
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

//! See every tachyon bus on the machine, tachyon-ring's and tachyon-ipc's, without touching
//! it: the discovery and sampling behind the `tachyon-top` binary, as a library.
//!
//! # What it reads
//! - `/proc/*/fd`: memfd links (`/memfd:NAME (deleted)`), the way tachyon-ipc's own
//!   `tachyon-top` finds rings;
//! - `/proc/*/maps`: shared memfd mappings, so a process that mapped its ring and closed the
//!   fd is found too;
//! - each ring's 768-byte header, mapped `PROT_READ` through `/proc/PID/fd/N` or, failing
//!   that, `/proc/PID/map_files/START-END` (root or `CAP_SYS_ADMIN`); with
//!   [`Options::peek`] the ring too, still read-only and never populated;
//! - `/proc/net/unix` (is anyone still listening at a ring's socket path) and, while a
//!   consumer sleeps, `/proc/PID/task/*/syscall` (which process waits on the ring's futex
//!   word: that one consumes).
//!
//! Rings are grouped by the memfd's (device, inode), so every process holding one is listed
//! under it.
//!
//! # Guarantees
//! - Nothing is ever written to a ring: every mapping is `PROT_READ`.
//! - A file is mapped only after one check (a memfd on
//!   tmpfs, sealed against shrinking, long enough for its header, then for the capacity the
//!   header announces): a truncated or hostile file gives a ring with an
//!   [`error`](RingReport::error), never a `SIGBUS`.
//! - A process whose `/proc` entries may not be read is listed in
//!   [`Snapshot::uninspectable`], not skipped silently.
//!
//! # Example
//! ```no_run
//! let mut monitor = tachyon_top::Monitor::new(tachyon_top::Options::default());
//! let snapshot = monitor.sample()?;
//! println!("{}", serde_json::to_string(&snapshot).unwrap());
//! print!("{}", tachyon_top::prometheus::exposition(&snapshot));
//! # Ok::<(), tachyon_top::Error>(())
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod discover;
mod error;
mod map;
mod monitor;
mod peek;
mod procfs;
pub mod prometheus;
mod report;

pub use discover::RingKey;
pub use error::{Error, InspectError};
pub use monitor::{Monitor, Options};
pub use peek::MAX_WALK;
pub use report::{
    Alarm, AlarmKind, ConsumerState, End, Kind, PeekReport, ProcessReport, RingReport, RingState,
    SCHEMA, Snapshot, Uninspectable, sleeping_name, state_name,
};

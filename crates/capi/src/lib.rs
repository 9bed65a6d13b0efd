//! tachyon-ipc 0.5.1's C ABI (`tachyon.h`) on [`tachyon_ring`]: `libtachyon.so` and
//! `libtachyon.a`, with a header generated from these declarations by cbindgen
//! ([`HEADER`]; `./just capi` installs both into `target/capi/`).
//!
//! The same 36 functions, with upstream's symbol names, argument and struct layouts, enum
//! values, ownership and reference counting (`tachyon_bus_ref` / `tachyon_bus_destroy`),
//! return conventions (NULL, 0 or an error code) and units (spin counts, bytes). A program
//! built against upstream's header links against this library unchanged, and either end of a
//! bus may still be upstream's library or package: the wire is format version 4.
//!
//! # Rules every entry point keeps
//! - A panic never crosses into C: each entry point catches it and returns its error value
//!   (NULL, 0, `TACHYON_ERR_SYSTEM` or `TACHYON_STATE_UNKNOWN`).
//! - NULL handles and out-pointers give upstream's codes, never a crash; so do destroyed
//!   handles (they stay behind as small tombstones, see the README), double destroys,
//!   commits and rollbacks without an acquire, and sizes beyond the slot.
//! - Blocking receives return NULL (or 0), and the listens `TACHYON_ERR_INTERRUPTED`, when a
//!   signal interrupts their wait, so a binding can look at its signals and call again, as
//!   upstream's Python binding does.
//!
//! # Threads
//! As upstream: a bus has one producing thread and one consuming thread at a time (an RPC
//! bus one calling and one serving), `tachyon_bus_ref`, `tachyon_bus_destroy` (of a
//! reference that is not the last) and the `get_state` calls may come from any thread, and
//! the last destroy must not race any other call. Here every handle also serializes its calls
//! with a mutex, so misuse from more threads is safe, merely slow.
//!
//! The differences from upstream are listed in `crates/capi/README.md`.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod bus;
mod handle;
pub mod rpc;
pub mod types;

/// The generated C header (`tachyon.h`), as cbindgen wrote it from this crate's
/// declarations at build time.
pub const HEADER: &str = include_str!(concat!(env!("OUT_DIR"), "/tachyon.h"));

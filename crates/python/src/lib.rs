//! `tachyon_rs`: tachyon-ipc 0.5.1's Python API on the pure-Rust ring ([`tachyon_ring`]).
//!
//! This crate is the native half of the Python package `tachyon_rs` (built by maturin from
//! `crates/python/pyproject.toml`); the pure-Python half (`python/tachyon_rs/`) holds the
//! high-level `Bus` / `RpcBus` wrappers and the RPC dispatcher, as upstream's does.
//!
//! Module map:
//! - [`errors`]: the exception hierarchy, one class per kind of [`tachyon_ring::Error`];
//! - [`wait`]: the one place a call waits (GIL released, woken by signals through `signals`);
//! - [`staging`]: the private buffers guards export through the buffer protocol and DLPack;
//! - `guard`: what every guard shares (its buffer, live exports, the end of its block);
//! - [`bus`]: `TachyonBus` and its guards; [`rpc`]: `TachyonRpcBus` and its guards.
//!
//! # Differences from tachyon-ipc 0.5.1's Python API
//! Additions are keyword arguments and new names only: `timeout=` on every call that waits or
//! may find the ring full, `Bus.send_batch`, `TachyonBus.send` / `recv` /
//! `acquire_tx_flushing`, and the exception subclasses of [`errors`]. Beyond those:
//! - one abi3 wheel for Python 3.11 and later (the buffer protocol joined the stable ABI in
//!   3.11);
//! - guards lend a private buffer, never the ring ([`staging`]): one copy per message;
//! - a bus takes the producer or consumer role at its first send or receive, and keeps it;
//! - `set_polling_mode` and `set_numa_node` check their arguments but change nothing, and
//!   `spin_threshold` is accepted and unused (the ring crate has no setting for them after a bus
//!   is built);
//! - out-of-range integers raise `OverflowError` / `ValueError` instead of being truncated, and
//!   messages name the cause in the ring crate's words;
//! - a second thread calling into a bus that is blocked in another thread gets `RuntimeError`.
//!
//! The README's Python section says the same for users.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod bus;
pub mod errors;
mod guard;
pub mod rpc;
mod signals;
pub mod staging;
pub mod wait;

use pyo3::prelude::*;

/// The extension module `tachyon_rs._tachyon_rs`.
#[pymodule(name = "_tachyon_rs")]
fn tachyon_rs_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<bus::TachyonBus>()?;
    m.add_class::<bus::TxGuard>()?;
    m.add_class::<bus::RxGuard>()?;
    m.add_class::<bus::RxBatchGuard>()?;
    m.add_class::<bus::RxMsgView>()?;
    m.add_class::<rpc::TachyonRpcBus>()?;
    m.add_class::<rpc::RpcTxGuard>()?;
    m.add_class::<rpc::RpcRxGuard>()?;
    Ok(())
}

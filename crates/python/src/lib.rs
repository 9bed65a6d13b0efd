//! `tachyon_rs`: tachyon-ipc 0.5.1's Python API on the pure-Rust ring ([`tachyon_ring`]).
//!
//! This crate is the native half of the Python package `tachyon_rs` (built by maturin from
//! `crates/python/pyproject.toml`); the pure-Python half (`python/tachyon_rs/`) holds the
//! high-level `Bus` / `RpcBus` wrappers and the RPC dispatcher, as upstream's does.
//!
//! Module map:
//! - [`errors`]: the exception hierarchy, one class per kind of [`tachyon_ring::Error`];
//! - [`wait`]: the one place a call waits (GIL released, in slices, signals checked);
//! - [`staging`]: the private buffers guards export through the buffer protocol and DLPack;
//! - [`bus`]: `TachyonBus` and its guards; [`rpc`]: `TachyonRpcBus` and its guards.
//!
//! Differences from upstream's extension are listed in the README's Python section.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod bus;
pub mod errors;
pub mod rpc;
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

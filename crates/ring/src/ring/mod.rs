// Floor: ring, above wait, beside handshake; never imports handshake (bus joins the two).
//! One ring in shared memory and its two ends.
//!
//! - `shm`: the region (a sealed memfd's mapping, or an in-memory arena) and its header.
//! - `producer`, `consumer`: the two ends, one per ring.
//! - `pod`: typed messages (`T: bytemuck::Pod`) on both ends.
//! - `stats`: each end's counters.
//! - `state`: the shared state word, for any thread.
//! - `batch`: several consecutive messages held at once and released together.
pub(crate) mod batch;
pub(crate) mod consumer;
mod pod;
pub(crate) mod producer;
pub(crate) mod shm;
pub(crate) mod state;
pub(crate) mod stats;

//! One ring and its two ends.
pub(crate) mod consumer;
mod pod;
pub(crate) mod producer;
pub(crate) mod shm;
pub(crate) mod stats;

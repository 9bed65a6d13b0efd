//! System calls.
pub(crate) mod peer;
pub(crate) mod sock_diag;

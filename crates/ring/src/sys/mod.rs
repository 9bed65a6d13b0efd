// Floor: sys, above base; imports only error, trace and wire, and names no type above error.
//! The only place the crate issues raw system calls (through `libc`, in `unsafe`); the code
//! above calls these functions instead. (The safe `nix` and `memmap2` wrappers that `ring::shm`
//! and `handshake` use for memfds, their mappings and sockets stay with those modules.) Plain
//! values in, plain values or [`Error`](crate::error::Error) out: no policy type (a cancel
//! token, a ring) reaches down here.
//!
//! - `futex`: `FUTEX_WAIT` / `FUTEX_WAKE` on one shared word, `futex_waitv` over many words,
//!   and whether this kernel has it.
//! - `eventfd`: the eventfd a cancel token makes readable for socket waits.
//! - `fs`: the directory `flock` a listener takes around its socket path.
//! - `memory`: the guarded anonymous mapping behind an in-memory ring.
//! - `peer`: the peer's credentials (`SO_PEERCRED`) and its pidfd, to notice its death.
//! - `sock_diag`: which Unix sockets are listening, from one netlink dump.
pub(crate) mod eventfd;
pub(crate) mod fs;
pub(crate) mod futex;
#[cfg(not(miri))]
pub(crate) mod memory;
pub(crate) mod peer;
pub(crate) mod sock_diag;

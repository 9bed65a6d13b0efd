//! tachyon-ipc 0.5.1's Rust API, name for name, on [`tachyon_ring`]: no C or C++ is compiled.
//!
//! A project on crates.io `tachyon-ipc` switches by changing one line of its `Cargo.toml`,
//! and nothing in its source:
//!
//! ```toml
//! [dependencies]
//! tachyon-ipc = { package = "tachyon-compat", path = "…/crates/compat" }
//! ```
//!
//! Its `use tachyon_ipc::{Bus, …}` then resolve here. The wire is the same (format version 4),
//! so either end may still be the real package (Python or C++).
//!
//! ```
//! use tachyon_ipc::{Bus, TachyonError};
//! # extern crate tachyon_compat as tachyon_ipc;
//! # fn main() -> Result<(), TachyonError> {
//! let path = std::env::temp_dir().join(format!("compat-doc-{}.sock", std::process::id()));
//! let path = path.to_str().unwrap().to_owned();
//! let consumer = {
//!     let path = path.clone();
//!     std::thread::spawn(move || -> Result<(u32, Vec<u8>), TachyonError> {
//!         let bus = Bus::listen(&path, 1 << 16)?;
//!         let guard = bus.acquire_rx(10_000)?;
//!         let got = (guard.type_id, guard.data().to_vec());
//!         guard.commit()?;
//!         Ok(got)
//!     })
//! };
//! let bus = loop {
//!     match Bus::connect(&path) {
//!         Ok(bus) => break bus,
//!         Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
//!     }
//! };
//! bus.send(b"hello", 42)?; // publishes at once, as upstream's
//! assert_eq!(consumer.join().unwrap()?, (42, b"hello".to_vec()));
//! # Ok(()) }
//! ```
//!
//! # What is the same
//! Every public type, method, field and function of tachyon-ipc 0.5.1 (`Bus`, `TxGuard`,
//! `RxGuard`, `RxBatchGuard`, `RxMsgView`, `BatchIter`, `RpcBus`, `RpcTxGuard`, `RpcRxGuard`,
//! `TachyonError`, `make_type_id`, `route_id`, `msg_type`), with its signature, `Send` /
//! `Sync`-ness and documented behaviour: `send`, `TxGuard::commit` and the RPC calls and
//! replies publish at once; `commit_unflushed` waits for `flush` (or 32 commits); a dropped
//! `TxGuard` rolls back; a dropped `RxGuard` releases its slot; `acquire_tx` and `send` fail
//! with `BufferFull` instead of waiting; `acquire_rx`, `drain_batch`, `wait` and `serve` block
//! (spin, then futex) and retry on a signal; `connect` does not retry; a reply to another call
//! ends `wait` with `PeerDead`; `TxGuard::write` panics on a write longer than the slot.
//!
//! # What differs, and why
//! - **Peer death is noticed.** Upstream's consumer waits forever for a producer that died;
//!   here `acquire_rx`, `drain_batch`, `wait` and `serve` return [`TachyonError::PeerDead`]
//!   once every message the peer published was delivered.
//! - **Peers of another user are refused** by a listener (tachyon-ring's default access
//!   control); upstream accepts whoever can open the socket.
//! - **One role per `Bus`.** The first `send`/`acquire_tx` makes a bus the producer, the first
//!   `acquire_rx`/`drain_batch` the consumer; the other role then fails with
//!   [`TachyonError::SystemError`]. Upstream allows both on one bus (only a loopback in one
//!   process would use it).
//! - **One guard at a time per `Bus`.** A second `acquire_tx`/`acquire_rx`/`send` while a
//!   guard of the same bus is alive fails with [`TachyonError::SystemError`]; upstream hands
//!   out the same slot twice. `flush` while a `TxGuard` is alive does nothing.
//! - **`drain_batch` copies** the messages out and releases their slots at once (upstream
//!   views them in place until the batch is committed); the API and the data are the same.
//!   `drain_batch(0, _)` returns an empty batch instead of blocking forever.
//! - **RPC guards copy.** `RpcRxGuard` holds a copy of the request or reply (its slot is
//!   released when it is taken); `RpcTxGuard` writes into a staging buffer, copied into the
//!   slot on `commit`. Room is still checked, and kept, at `acquire_call`/`acquire_reply`:
//!   the guard holds the side's lock, so a `wait` on the same thread while an `RpcTxGuard` is
//!   alive deadlocks (commit or drop it first). RPC message types above `u16::MAX` fail with
//!   [`TachyonError::InvalidSize`] (upstream would spill them into the reserved route id).
//! - **`set_numa_node` binds nothing**: it checks its argument (0..64) as upstream does; the
//!   pages stay where the kernel placed them.
//! - **Polling mode is the consumer's.** `set_polling_mode` makes this process's consumer of
//!   the bus never sleep and announces it in the shared futex word, as upstream's does; unlike
//!   upstream's it also keeps that consumer from sleeping after `spin_threshold`, and called on
//!   a producer-only bus it has no effect. `RpcBus::set_polling_mode` applies at the next
//!   `wait` or `serve`.
//! - **Errors** are upstream's codes (mapped from [`tachyon_ring::Error`]); the detail
//!   tachyon-ring gives is not kept, so that matching and `==` work as upstream's.
//! - **Platforms:** Linux only, as tachyon-ring (upstream also builds on macOS).
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bus;
mod error;
mod rpc;
mod type_id;

pub use bus::{BatchIter, Bus, RxBatchGuard, RxGuard, RxMsgView, TxGuard};
pub use error::TachyonError;
pub use rpc::{RpcBus, RpcRxGuard, RpcTxGuard};
pub use type_id::{make_type_id, msg_type, route_id};

const _: () = {
    const fn is_send<T: Send>() {}
    const fn is_send_sync<T: Send + Sync>() {}
    is_send::<Bus>();
    is_send_sync::<RpcBus>();
    is_send_sync::<TachyonError>();
};

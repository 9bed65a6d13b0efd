//! A pure-Rust implementation of the [tachyon-ipc] shared-memory bus, wire-compatible with its
//! format version 4: a process using this crate and one using tachyon-ipc 0.5.1 (Python or C++)
//! share one ring, in either role. No C or C++ is compiled.
//!
//! # What a bus is
//! One single-producer, single-consumer ring of messages in a memfd shared by two processes on
//! one machine. The *listener* creates the memfd and hands it to one *connector* over a Unix
//! socket (`SCM_RIGHTS`); after that the socket is gone and every message moves through shared
//! memory alone. Handshake roles and ring roles are independent: either side may produce.
//!
//! Messages are variable-length byte payloads tagged with a 32-bit [`type_id`]. The producer
//! writes in place ([`Producer::reserve`]) or copies ([`Producer::send`]); the consumer reads in
//! place ([`Consumer::recv`]) and releases the slot when the [`Message`] is dropped.
//!
//! # Guarantees
//! - Messages arrive in order, each exactly once, with the bytes and type id committed.
//! - [`Producer::send`], [`Producer::send_timeout`] and [`WriteSlot::commit`] publish at once,
//!   as upstream's `send` and `commit` do. Batching is explicit: the `_unflushed` variants
//!   publish every 32 commits (the format's rule) and on [`Producer::flush`].
//! - With this crate's consumer, no ring size deadlocks: it returns space whenever it finds
//!   the ring empty, not only every 32 messages as upstream does.
//! - A full ring fails [`Producer::send`] at once ([`Error::Full`]);
//!   [`Producer::send_timeout`] waits for space instead.
//! - An empty ring makes [`Consumer::recv`] spin, then sleep on a shared futex that any
//!   conforming producer wakes; [`BusOptions::pure_spin`] never sleeps.
//! - A consumer or a producer waiting on a peer that has exited returns [`Error::PeerGone`]
//!   within 250 ms, after every message the peer published was delivered.
//! - Whatever the peer writes into shared memory, this crate neither panics nor reads outside
//!   the mapping: headers are copied once and checked before any slice is formed, and a
//!   corrupt ring is marked fatal (state 4) and reported as [`Error::Corrupt`].
//! - The hot path neither allocates nor makes system calls, except the futex wake of a
//!   consumer that sleeps.
//!
//! # Example
//! ```
//! # fn main() -> Result<(), tachyon_ring::Error> {
//! let (mut producer, mut consumer) = tachyon_ring::Bus::in_memory(1 << 16)?.split();
//! producer.send(tachyon_ring::type_id::compose(0, 1), b"bid")?;
//! let message = consumer.try_recv()?.expect("send publishes");
//! assert_eq!(message.data(), b"bid");
//! # Ok(()) }
//! ```
//! Across processes, see [`Bus`].
//!
//! [tachyon-ipc]: https://pypi.org/project/tachyon-ipc/
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bus;
mod consumer;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
pub mod layout;
mod peer;
mod pod;
mod producer;
mod rpc;
mod shm;
pub mod type_id;
mod wait;

pub use bus::{Bus, BusOptions};
pub use consumer::{Consumer, Message};
pub use error::{Error, Result};
pub use handshake::AllowedPeers;
pub use peer::PeerCredentials;
pub use producer::{Producer, WriteSlot};
pub use rpc::{CallSlot, Callee, Caller, Reply, ReplySlot, Request, RpcBus};

const _: () = {
    const fn is_send<T: Send>() {}
    const fn is_send_sync<T: Send + Sync>() {}
    is_send::<Producer>();
    is_send::<Consumer>();
    is_send_sync::<Error>();
};

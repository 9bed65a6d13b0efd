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
//! - Commits become visible in batches of 32 and on [`Producer::flush`], as the format says.
//! - With this crate's consumer, no ring size deadlocks: it returns space whenever it finds
//!   the ring empty, not only every 32 messages as upstream does.
//! - A full ring fails [`Producer::send`] at once ([`Error::Full`]);
//!   [`Producer::send_timeout`] waits for space instead.
//! - An empty ring makes [`Consumer::recv`] spin, then sleep on a shared futex that any
//!   conforming producer wakes; [`BusOptions::pure_spin`] never sleeps.
//! - A consumer or a producer waiting on a peer that has exited returns [`Error::PeerGone`]
//!   within 250 ms, after every message the peer published was delivered.
//! - Every blocking call ends at its deadline or when its [`CancelToken`] is cancelled, at once;
//!   signals never end or extend a wait (see [`CancelToken`] for the Ctrl-C pattern).
//! - A wake-up from this crate's producer is never lost; one from another producer that wakes
//!   too early costs this crate's consumer at most its current nap (0.5 ms when it has just
//!   fallen asleep, growing to 50 ms).
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
//! producer.flush();
//! let message = consumer.try_recv()?.expect("flushed");
//! assert_eq!(message.data(), b"bid");
//! # Ok(()) }
//! ```
//! Across processes, see [`Bus`].
//!
//! [tachyon-ipc]: https://pypi.org/project/tachyon-ipc/
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "async")]
mod asynchronous;
mod bus;
mod cancel;
mod consumer;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
pub mod layout;
mod listener;
mod peer;
mod producer;
#[cfg(feature = "async")]
mod reactor;
mod rpc;
mod select;
mod shm;
mod sock_diag;
mod socket_file;
pub mod type_id;
mod wait;

#[cfg(feature = "async")]
pub use asynchronous::{AsyncConsumer, AsyncProducer, Recv, Reserve, reactor_sleeps};
pub use bus::{Bus, BusOptions, LocalBus};
pub use cancel::CancelToken;
pub use consumer::{Consumer, Message};
pub use error::{Error, Result};
pub use handshake::AllowedPeers;
pub use listener::Listener;
pub use peer::{ListenReport, PeerCredentials, PeerLiveness};
pub use producer::{Producer, WriteSlot};
pub use rpc::{CallSlot, Callee, Caller, ERROR_REPLY_TYPE, Reply, ReplySlot, Request, RpcBus};
pub use select::{Selected, Selector, SelectorHandle};

const _: () = {
    const fn is_send<T: Send>() {}
    const fn is_send_sync<T: Send + Sync>() {}
    is_send::<Producer>();
    is_send::<Consumer>();
    is_send_sync::<Error>();
};

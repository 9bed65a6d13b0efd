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
//! - Every blocking call ends at its deadline or when its [`CancelToken`] is cancelled, at once;
//!   signals never end or extend a wait (see [`CancelToken`] for the Ctrl-C pattern), except
//!   in the `_interruptible` calls, which end with [`Error::Interrupted`] when a signal
//!   interrupts their sleep (what a C caller that checks its signals needs).
//! - A wake-up from this crate's producer is never lost; one from another producer that wakes
//!   too early costs this crate's consumer at most its current nap (5 ms when it has just
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
//! let message = consumer.try_recv()?.expect("send publishes");
//! assert_eq!(message.data(), b"bid");
//! # Ok(()) }
//! ```
//! Across processes, see [`Bus`].
//!
//! # Errors
//! Every fallible call returns [`Error`]; [`Error::is_fatal`] tells whether the bus is still
//! usable. When each variant happens:
//!
//! | variant | when |
//! |---|---|
//! | [`Error::NobodyListening`] | `connect` finds no socket or nobody accepting (after the connect timeout, if set) |
//! | [`Error::AbiMismatch`] | the peer's handshake or arena header has another magic, version, alignment or bus kind (SPSC vs RPC) |
//! | [`Error::Handshake`] | the peer's handshake is short, late (nothing within the receive timeout) or carries the wrong number of fds, or its fd is not a memfd sealed against shrinking and as large as announced |
//! | [`Error::InvalidCapacity`] | a capacity that is not a power of two of at least 64 (asked for, or received) |
//! | [`Error::MessageTooLarge`] | a payload whose slot exceeds the ring: no amount of waiting helps |
//! | [`Error::CannotPlace`] | the slot plus its wrap padding exceed the ring and upstream's consumer cannot take a bare skip |
//! | [`Error::CommitTooLong`] | a commit claims more bytes than the slot reserved (the slot is rolled back) |
//! | [`Error::Full`] | a non-waiting send or reserve finds too little free space |
//! | [`Error::Timeout`] | a `_timeout` call reaches its deadline |
//! | [`Error::Corrupt`] | the peer broke the format (a header or cursor out of bounds); the ring is marked fatal |
//! | [`Error::PeerGone`] | the peer process exited; everything it published was delivered first |
//! | [`Error::UnexpectedReply`] | an RPC reply answers another call than the one waited for; the reply ring is marked fatal |
//! | [`Error::ZeroCorrelationId`] | an RPC reply to id 0 |
//! | [`Error::Cancelled`] | the call's [`CancelToken`] was cancelled (signals never end a call by themselves) |
//! | [`Error::Interrupted`] | a signal interrupted the wait of a call that asked to end on one (`recv_interruptible`, `recv_batch_interruptible`, `wait_interruptible`, `serve_interruptible`, `listen` with `BusOptions::interruptible_listen`; for C and other FFI callers that must look at their signals) |
//! | [`Error::AddressInUse`] | `listen` found a live listener's socket at the path |
//! | [`Error::CapacityLimit`] | a listener announced a ring above [`BusOptions::max_capacity`] |
//! | [`Error::PayloadLayout`] | a typed read or write (`as_pod`, `read_pod`, `pod_mut`) does not fit the payload: the wrong size, or (in place) an alignment above its 64 bytes |
//! | [`Error::GuardChanged`] | the guard a slot was reserved through (`reserve_in`) reaches another producer at commit; nothing was written |
//! | [`Error::Os`] | a system call failed (named, with the path where there is one) |
//!
//! # Observability
//! [`Producer::stats`] and [`Consumer::stats`] return each end's counters for a service to
//! export: messages and bytes committed, published and received, full-ring events, futex
//! sleeps, wake-ups and wakes, and the ring's depth and fill now. With the `tracing` feature,
//! lifecycle points are `tracing` events (target `tachyon_ring`): `listening` (path,
//! capacity), `peer connected` (pid, uid, gid), `peer gone` (pid, messages), `ring corrupt`
//! (which end found what), and a `warn` naming the path and pid for each connector a listener
//! turns away (refused for its uid, or gone before the handshake) and for a peer it can watch
//! only without a pidfd. Nothing on the per-message path.
//!
//! Each ring end also keeps one close-on-exec fd on its memfd for the ring's life (as
//! upstream's core does; an RPC bus holds two): the cost of one fd per ring, so that tools
//! listing `/proc/PID/fd` (`tachyon-top`, upstream's own) find the bus.
//!
//! # Features
//! - `tracing` (off): the lifecycle events above. Off by default because the crate is a
//!   building block that should cost nothing it is not asked for: without the feature the
//!   events compile to nothing and `tracing` is not in the dependency tree; a service that
//!   logs through `tracing` turns it on with one line and gets every event, as with tokio's
//!   and hyper's optional `tracing` features.
//! - `async` (off): `AsyncConsumer` and `AsyncProducer`, futures on one process-wide
//!   waiter thread; runtime-agnostic (only `std::future`).
//! - `tokio` (off): the same as `async`, named for the runtime the tests and the
//!   `async_consumer` example use.
//! - `fuzzing` (off): exposes the hostile-peer entry points (`tachyon_ring::fuzzing`) for the
//!   cargo-fuzz targets in `fuzz/`. Not a stable API.
//!
//! # Platform: Linux 5.3 or later
//! The crate builds only for `target_os = "linux"` (elsewhere a `compile_error!` says so) and
//! uses these kernel features:
//!
//! | feature | used for | since Linux |
//! |---|---|---|
//! | `memfd_create` with `MFD_ALLOW_SEALING`, `F_ADD_SEALS` / `F_GET_SEALS` | the shared ring, sealed against shrinking | 3.17 |
//! | `SCM_RIGHTS` over an `AF_UNIX` stream socket, `SO_PEERCRED` | handing the memfd over, the peer's pid and uid | 2.2 |
//! | shared `FUTEX_WAIT` / `FUTEX_WAKE` | the consumer's sleep and the producer's wake | 2.6 |
//! | `mmap` with `MAP_POPULATE`, `madvise(MADV_DONTFORK)` | mapping the ring | 2.6.16 |
//! | `pidfd_open` and `poll` on a pidfd | noticing that the peer has exited | **5.3** |
//! | `SO_PEERPIDFD` (optional; `pidfd_open` is the fallback) | the peer's pidfd without a pid-reuse race | 6.5 |
//! | `futex_waitv` (optional; one word in 10 ms slices is the fallback) | sleeping on a ring and a cancel token, or on many rings (`Selector`, the async reactor), in one call | 5.16 |
//! | `eventfd` | a cancel token's wake for socket waits | 2.6.22 |
//!
//! The oldest kernel that runs it is therefore 5.3. Upstream's macOS port (POSIX shared
//! memory, `__ulock_wait`) is not reimplemented.
//!
//! # Layout
//! For contributors: the crate's modules stand on floors, lowest first, and a module imports
//! (`use crate::…`, and `crate::…` paths in code, tests included) only from its own floor or
//! below.
//!
//! 1. Base: `error`; `trace`, the `lifecycle!` macro; `wire`, the format (`layout`, `type_id`).
//! 2. `sys`: every raw system call (futexes, the eventfd, `flock`, the guarded in-memory
//!    mapping, peer credentials and pidfds, sock_diag). It knows no crate type above `error`:
//!    `futex_waitv` takes plain words and a timeout, not a cancel token.
//! 3. `wait`: the one wait path (futex sleeps, socket readiness, pauses, deadlines) and
//!    `CancelToken`, which wakes its waiters through `sys`, never through `wait`.
//! 4. `ring` (the shared region, producer, consumer, batches, typed messages, counters, the
//!    state word) and `handshake`
//!    (the Unix-socket bootstrap and its socket file). The two never import each other.
//! 5. `bus`, which joins a handshake to a ring, and `asynchronous` (feature `async`) with its
//!    reactor.
//! 6. `rpc`, `select`, `listener`, `fuzzing`, and the `trace_events` test module.
//! 7. `lib.rs`: these docs, the module list and the re-exports.
//!
//! Inside the crate an item is named by its home module (`crate::error::Error`,
//! `crate::wire::layout::…`), never through the re-exports below; doc links may point at the
//! public paths, the pages users read. A unit test builds only what its own floor offers;
//! tests of the public API as a whole live in `tests/`.
//!
//! `tests/floors.rs` holds these rules against the source (every `crate::` path outside
//! comments and strings: no import from a floor above, none through the re-exports, none
//! between `ring` and `handshake`, no circle), and `./just lint` runs it: a module added on no
//! floor fails it until it is given one there.
//!
//! [tachyon-ipc]: https://pypi.org/project/tachyon-ipc/
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "tachyon-ring runs on Linux only (5.3 or later): it needs memfd_create with file sealing, \
     shared futexes, pidfd_open and SCM_RIGHTS over Unix sockets, which this target lacks"
);

#[cfg(feature = "async")]
mod asynchronous;
mod bus;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod listener;
mod ring;
mod rpc;
mod select;
mod sys;
mod trace;
#[cfg(all(test, feature = "tracing"))]
mod trace_events;
mod wait;
mod wire;

#[cfg(feature = "async")]
pub use asynchronous::reactor::WakeStats;
#[cfg(feature = "async")]
pub use asynchronous::{AsyncConsumer, AsyncProducer, Recv, Reserve, reactor_sleeps};
pub use bus::{Bus, BusOptions, LocalBus};
pub use error::{Error, Result};
pub use handshake::AllowedPeers;
pub use listener::Listener;
pub use ring::batch::{Batch, BatchMessage};
pub use ring::consumer::{Consumer, Message};
pub use ring::producer::{Producer, WriteSlot};
pub use ring::state::RingState;
pub use ring::stats::{ConsumerStats, ProducerStats};
pub use rpc::{
    CallSlot, Callee, Caller, Calls, ERROR_REPLY_TYPE, Replies, Reply, ReplySlot, Request, RpcBus,
};
pub use select::{Selected, Selector, SelectorHandle, SleepEnds};
pub use sys::peer::{ListenReport, PeerCredentials, PeerLiveness};
pub use wait::cancel::CancelToken;
pub use wait::pace::{PaceStats, SpinPolicy, WaitEnd};
pub use wire::{layout, type_id};

const _: () = {
    const fn is_send<T: Send>() {}
    const fn is_send_sync<T: Send + Sync>() {}
    is_send::<Producer>();
    is_send::<Consumer>();
    is_send_sync::<Error>();
};

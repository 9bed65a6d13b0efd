//! RPC over two rings, wire-compatible with tachyon-ipc's `RpcBus` (handshake flags bit 0).
//!
//! The listener (by convention the *callee*) creates both rings and sends them in one
//! `SCM_RIGHTS` message, forward ring first: the caller produces requests on the forward ring,
//! the callee produces replies on the reverse ring. Each slot carries a correlation id: the
//! caller numbers its calls from 1, the callee echoes the id on the reply. Everything the SPSC
//! bus does (tail publication when idle, peer-death detection, access control, hostile-peer
//! checks) holds for both rings, because they *are* SPSC rings.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::BusOptions;
use crate::error::{Error, Result};
use crate::handshake;
use crate::ring::consumer::{Consumer, Message};
use crate::ring::producer::{Producer, WriteSlot};
use crate::ring::shm::Region;
use crate::ring::state::RingState;
use crate::sys::peer::{ListenReport, PeerCredentials, PeerWatch};
use crate::trace::lifecycle;
use crate::wait::cancel::CancelToken;
use crate::wire::layout::Handshake;
use crate::wire::type_id;

/// Entry points of an RPC bus; see [`Caller`] and [`Callee`].
///
/// ```
/// # fn main() -> Result<(), tachyon_ring::Error> {
/// use std::time::Duration;
/// use tachyon_ring::RpcBus;
///
/// let path = std::env::temp_dir().join(format!("tachyon-rpc-doc-{}.sock", std::process::id()));
/// let callee = {
///     let path = path.clone();
///     std::thread::spawn(move || -> Result<(), tachyon_ring::Error> {
///         let mut callee = RpcBus::listen(&path, 1 << 16, 1 << 16)?;
///         let request = callee.serve_timeout(Duration::from_secs(5))?;
///         let answer = request.data().to_ascii_uppercase();
///         let msg_type = request.msg_type() + 1;
///         request.reply(msg_type, &answer)
///     })
/// };
/// let mut caller = tachyon_ring::Bus::options()
///     .connect_timeout(Duration::from_secs(5))
///     .rpc_connect(&path)?;
/// let id = caller.call(7, b"ping")?;
/// let reply = caller.wait_timeout(id, Duration::from_secs(5))?;
/// assert_eq!((reply.msg_type(), reply.data()), (8, &b"PING"[..]));
/// drop(reply);
/// callee.join().unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RpcBus(());

impl RpcBus {
    /// [`BusOptions::rpc_listen`] with default options.
    pub fn listen(
        path: impl AsRef<Path>,
        capacity_fwd: usize,
        capacity_rev: usize,
    ) -> Result<Callee> {
        BusOptions::default().rpc_listen(path, capacity_fwd, capacity_rev)
    }

    /// [`BusOptions::rpc_connect`] with default options (no retry when nobody listens).
    pub fn connect(path: impl AsRef<Path>) -> Result<Caller> {
        BusOptions::default().rpc_connect(path)
    }
}

impl BusOptions {
    /// Creates the request (forward) and reply (reverse) rings, listens at `path`, and blocks
    /// until one caller has connected and received them.
    pub fn rpc_listen(
        self,
        path: impl AsRef<Path>,
        capacity_fwd: usize,
        capacity_rev: usize,
    ) -> Result<Callee> {
        let path = path.as_ref();
        let label = path.to_string_lossy();
        let (fwd, fwd_fd) = Region::create_memfd(&label, capacity_fwd)?;
        let (rev, rev_fd) = Region::create_memfd(&label, capacity_rev)?;
        let handshake = Handshake::new(capacity_fwd, Some(capacity_rev));
        lifecycle!(info, path = %path.display(), capacity_fwd, capacity_rev, kind = "rpc", "listening");
        let (peer, report) = handshake::listen_and_send(
            path,
            &handshake,
            &[fwd_fd.as_fd(), rev_fd.as_fd()],
            &self.allowed_peers,
            self.listen_limits(),
        )?;
        peer.announce("caller");
        let peer = Some(Arc::new(peer));
        Ok(Callee {
            requests: self.consumer(Arc::new(fwd), peer.clone()).reading_rpc(),
            replies: self.producer(Arc::new(rev), peer.clone()),
            peer,
            report,
        })
    }

    /// Connects to an RPC listener at `path` as the caller.
    pub fn rpc_connect(self, path: impl AsRef<Path>) -> Result<Caller> {
        let (handshake, fds, peer) =
            handshake::connect_and_receive(path.as_ref(), self.connect_limits(), true)?;
        let mut regions = self.attach_received(&handshake, &fds)?.into_iter();
        let (Some(fwd), Some(rev)) = (regions.next(), regions.next()) else {
            return Err(Error::Handshake(
                "an RPC listener must send two rings".into(),
            ));
        };
        peer.announce("callee");
        let peer = Some(Arc::new(peer));
        Ok(Caller {
            requests: self.producer(Arc::new(fwd), peer.clone()),
            replies: self.consumer(Arc::new(rev), peer.clone()).reading_rpc(),
            next_id: 1,
            peer,
        })
    }
}

/// The calling side: sends requests, waits for their replies, in order.
pub struct Caller {
    requests: Producer,
    replies: Consumer,
    next_id: u64,
    peer: Option<Arc<PeerWatch>>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("next_id", &self.next_id)
            .field("peer", &self.peer.as_ref().map(|p| p.credentials))
            .finish()
    }
}

impl Caller {
    /// Sends a request of `msg_type` carrying `payload` and returns its correlation id.
    /// Fails with [`Error::Full`] at once when the request ring has no room.
    pub fn call(&mut self, msg_type: u16, payload: &[u8]) -> Result<u64> {
        self.split().0.call(msg_type, payload)
    }

    /// Reserves a request of up to `max_len` bytes to write in place; its
    /// [`commit`](CallSlot::commit) sends it and returns the correlation id.
    pub fn reserve_call(&mut self, max_len: usize) -> Result<CallSlot<'_>> {
        CallSlot::reserve(&mut self.requests, &mut self.next_id, max_len)
    }

    /// Like [`reserve_call`](Caller::reserve_call), but waits for room in the request ring up
    /// to `timeout` (upstream's caller fails at once).
    pub fn reserve_call_timeout(
        &mut self,
        max_len: usize,
        timeout: Duration,
    ) -> Result<CallSlot<'_>> {
        let slot = self.requests.reserve_timeout(max_len, timeout)?;
        Ok(CallSlot {
            slot,
            next_id: &mut self.next_id,
        })
    }

    /// Waits (spin, then futex) for the reply to call `id`.
    ///
    /// Replies arrive in call order, so waiting for `id` first discards the replies to
    /// earlier calls still unread: calls whose wait gave up ([`Error::Timeout`]) and whose
    /// reply came late, or that were never waited for. Any other id (a later call's, or one
    /// never made) is a protocol violation: the reply ring is marked fatal, as upstream does,
    /// and [`Error::UnexpectedReply`] returned.
    pub fn wait(&mut self, id: u64) -> Result<Reply<'_>> {
        self.replies.discard_correlation_ids_below(id);
        check_reply(self.replies.recv()?, id)
    }

    /// Like [`wait`](Caller::wait), giving up with [`Error::Timeout`] after `timeout`. A
    /// reply that arrives after that is discarded by the next wait for a later call.
    pub fn wait_timeout(&mut self, id: u64, timeout: Duration) -> Result<Reply<'_>> {
        self.replies.discard_correlation_ids_below(id);
        check_reply(self.replies.recv_timeout(timeout)?, id)
    }

    /// Like [`wait`](Caller::wait), but a signal that interrupts the sleep ends it with
    /// [`Error::Interrupted`] (see [`Consumer::recv_interruptible`]); wait again for the same
    /// id to go on.
    pub fn wait_interruptible(&mut self, id: u64) -> Result<Reply<'_>> {
        self.replies.discard_correlation_ids_below(id);
        check_reply(self.replies.recv_interruptible(None)?, id)
    }

    /// Handles on the state words of the request (forward) and reply (reverse) rings, for
    /// any thread (see [`RingState`]).
    pub fn ring_states(&self) -> [RingState; 2] {
        [self.requests.ring_state(), self.replies.ring_state()]
    }

    /// The callee's process as the kernel saw it at connect time.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer.as_ref().map(|peer| peer.credentials)
    }

    /// The reply ring's consumer settings: see [`Consumer::set_spin_threshold`] and
    /// [`Consumer::set_pure_spin`].
    pub fn set_reply_wait(&mut self, spin_threshold: u32, pure_spin: bool) {
        self.replies.set_spin_threshold(spin_threshold);
        self.replies.set_pure_spin(pure_spin);
    }

    /// Ends this caller's waits (for room for a call, for a reply) with
    /// [`Error::Cancelled`] once `token` is cancelled, as [`Consumer::set_cancel_token`] does
    /// for one ring; `None` removes it. A message that arrives is still delivered first.
    pub fn set_cancel_token(&mut self, token: Option<CancelToken>) {
        self.requests.set_cancel_token(token.clone());
        self.replies.set_cancel_token(token);
    }
}

impl Caller {
    /// The caller's two directions, borrowed apart: calls go out through the first while a
    /// reply read through the second is still held (what upstream's C ABI allows between
    /// `tachyon_rpc_wait` and `tachyon_rpc_commit_rx`).
    ///
    /// ```
    /// # fn main() -> Result<(), tachyon_ring::Error> {
    /// # use std::time::Duration;
    /// # use tachyon_ring::RpcBus;
    /// # let path = std::env::temp_dir().join(format!("tachyon-split-doc-{}.sock", std::process::id()));
    /// # let callee = { let path = path.clone(); std::thread::spawn(move || -> Result<(), tachyon_ring::Error> {
    /// #     let mut callee = RpcBus::listen(&path, 1 << 16, 1 << 16)?;
    /// #     for _ in 0..2 { let r = callee.serve_timeout(Duration::from_secs(5))?; let t = r.msg_type(); r.reply(t, b"ok")?; }
    /// #     Ok(()) }) };
    /// # let mut caller = tachyon_ring::Bus::options().connect_timeout(Duration::from_secs(5)).rpc_connect(&path)?;
    /// let (mut calls, mut replies) = caller.split();
    /// let first = calls.call(1, b"a")?;
    /// let reply = replies.wait(first)?;
    /// let second = calls.call(2, reply.data())?; // the first reply is still held
    /// drop(reply);
    /// assert_eq!(replies.wait(second)?.data(), b"ok");
    /// # callee.join().unwrap()?;
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (Calls<'_>, Replies<'_>) {
        (
            Calls {
                requests: &mut self.requests,
                next_id: &mut self.next_id,
            },
            Replies {
                replies: &mut self.replies,
            },
        )
    }
}

/// The calling direction of a [`Caller`] ([`Caller::split`]).
#[derive(Debug)]
pub struct Calls<'a> {
    requests: &'a mut Producer,
    next_id: &'a mut u64,
}

impl Calls<'_> {
    /// [`Caller::call`].
    pub fn call(&mut self, msg_type: u16, payload: &[u8]) -> Result<u64> {
        let mut slot = self.reserve_call(payload.len())?;
        slot.copy_from_slice(payload);
        slot.commit(payload.len(), msg_type)
    }

    /// [`Caller::reserve_call`].
    pub fn reserve_call(&mut self, max_len: usize) -> Result<CallSlot<'_>> {
        CallSlot::reserve(self.requests, self.next_id, max_len)
    }
}

/// The reply direction of a [`Caller`] ([`Caller::split`]).
#[derive(Debug)]
pub struct Replies<'a> {
    replies: &'a mut Consumer,
}

impl Replies<'_> {
    /// [`Caller::wait`].
    pub fn wait(&mut self, id: u64) -> Result<Reply<'_>> {
        self.replies.discard_correlation_ids_below(id);
        check_reply(self.replies.recv()?, id)
    }

    /// [`Caller::wait_interruptible`].
    pub fn wait_interruptible(&mut self, id: u64) -> Result<Reply<'_>> {
        self.replies.discard_correlation_ids_below(id);
        check_reply(self.replies.recv_interruptible(None)?, id)
    }

    /// [`Caller::set_reply_wait`].
    pub fn set_reply_wait(&mut self, spin_threshold: u32, pure_spin: bool) {
        self.replies.set_spin_threshold(spin_threshold);
        self.replies.set_pure_spin(pure_spin);
    }
}

fn check_reply(message: Message<'_>, id: u64) -> Result<Reply<'_>> {
    let found = message.correlation_id();
    if found != id {
        message.reject(format!(
            "RPC reply carries correlation id {found}, the call waited for is {id}"
        ));
        return Err(Error::UnexpectedReply {
            expected: id,
            found,
        });
    }
    Ok(Reply { message })
}

/// A request being written in place; see [`Caller::reserve_call`].
pub struct CallSlot<'a> {
    slot: WriteSlot<'a>,
    next_id: &'a mut u64,
}

impl fmt::Debug for CallSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSlot")
            .field("len", &self.slot.len())
            .finish()
    }
}

impl<'a> CallSlot<'a> {
    /// A request slot of up to `max_len` bytes in `requests`, numbered from `next_id` when
    /// committed (the one place a [`Caller`] and its [`Calls`] half reserve).
    fn reserve(requests: &'a mut Producer, next_id: &'a mut u64, max_len: usize) -> Result<Self> {
        let slot = requests.reserve(max_len)?;
        Ok(CallSlot { slot, next_id })
    }
}

impl CallSlot<'_> {
    /// Sends the first `len` bytes as a request of `msg_type`; returns its correlation id.
    pub fn commit(self, len: usize, msg_type: u16) -> Result<u64> {
        let id = *self.next_id;
        // Upstream writes route id 0 in RPC slots: the message type is the whole type id.
        self.slot
            .commit_rpc(len, type_id::compose(0, msg_type), id)?;
        *self.next_id += 1;
        Ok(id)
    }
}

impl Deref for CallSlot<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.slot
    }
}

impl DerefMut for CallSlot<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.slot
    }
}

/// A reply, read in place; releasing it (drop) frees its slot.
#[derive(Debug)]
pub struct Reply<'a> {
    message: Message<'a>,
}

impl Reply<'_> {
    /// The reply's message type (0xFFFF from upstream's dispatcher when a handler failed).
    pub fn msg_type(&self) -> u16 {
        type_id::msg_type(self.message.type_id())
    }

    /// The correlation id of the call it answers.
    pub fn correlation_id(&self) -> u64 {
        self.message.correlation_id()
    }
}

impl<'a> Reply<'a> {
    /// The payload, in place in shared memory.
    pub fn data(&self) -> &[u8] {
        self.message.data()
    }

    /// The underlying message (copy-out helpers, raw type id).
    pub fn message(&self) -> &Message<'a> {
        &self.message
    }
}

/// The serving side: takes requests, sends replies.
pub struct Callee {
    requests: Consumer,
    replies: Producer,
    peer: Option<Arc<PeerWatch>>,
    report: ListenReport,
}

impl fmt::Debug for Callee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callee")
            .field("peer", &self.peer.as_ref().map(|p| p.credentials))
            .finish()
    }
}

impl Callee {
    /// Waits (spin, then futex) for the next request.
    pub fn serve(&mut self) -> Result<Request<'_>> {
        let message = self.requests.recv()?;
        Ok(Request {
            message,
            replies: &mut self.replies,
            answered: false,
        })
    }

    /// Like [`serve`](Callee::serve), giving up with [`Error::Timeout`] after `timeout`.
    pub fn serve_timeout(&mut self, timeout: Duration) -> Result<Request<'_>> {
        let message = self.requests.recv_timeout(timeout)?;
        Ok(Request {
            message,
            replies: &mut self.replies,
            answered: false,
        })
    }

    /// Like [`serve`](Callee::serve), but a signal that interrupts the sleep ends it with
    /// [`Error::Interrupted`] (see [`Consumer::recv_interruptible`]).
    pub fn serve_interruptible(&mut self) -> Result<Request<'_>> {
        let message = self.requests.recv_interruptible(None)?;
        Ok(Request {
            message,
            replies: &mut self.replies,
            answered: false,
        })
    }

    /// Sends the reply to call `id` (for a request already released). Id 0 is refused: no
    /// call has it.
    pub fn reply(&mut self, id: u64, msg_type: u16, payload: &[u8]) -> Result<()> {
        send_reply(&mut self.replies, id, msg_type, payload)
    }

    /// Reserves a reply to call `id` of up to `max_len` bytes, written in place.
    pub fn reserve_reply(&mut self, id: u64, max_len: usize) -> Result<ReplySlot<'_>> {
        reserve_reply(&mut self.replies, id, max_len)
    }

    /// Like [`reserve_reply`](Callee::reserve_reply), waiting up to `timeout` for room (as
    /// [`Producer::reserve_timeout`] does) instead of failing with [`Error::Full`] at once.
    pub fn reserve_reply_timeout(
        &mut self,
        id: u64,
        max_len: usize,
        timeout: Duration,
    ) -> Result<ReplySlot<'_>> {
        if id == 0 {
            return Err(Error::ZeroCorrelationId);
        }
        Ok(ReplySlot {
            slot: self.replies.reserve_timeout(max_len, timeout)?,
            id,
            answered: None,
        })
    }

    /// Handles on the state words of the request (forward) and reply (reverse) rings, for
    /// any thread (see [`RingState`]).
    pub fn ring_states(&self) -> [RingState; 2] {
        [self.requests.ring_state(), self.replies.ring_state()]
    }

    /// The caller's process as the kernel saw it at connect time.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer.as_ref().map(|peer| peer.credentials)
    }

    /// The connectors turned away before the caller was served, and how its death is
    /// watched.
    pub fn listen_report(&self) -> ListenReport {
        self.report
    }

    /// The request ring's consumer settings: see [`Consumer::set_spin_threshold`] and
    /// [`Consumer::set_pure_spin`].
    pub fn set_request_wait(&mut self, spin_threshold: u32, pure_spin: bool) {
        self.requests.set_spin_threshold(spin_threshold);
        self.requests.set_pure_spin(pure_spin);
    }

    /// Ends this callee's waits (for a request, for room for a reply) with
    /// [`Error::Cancelled`] once `token` is cancelled, as [`Consumer::set_cancel_token`] does
    /// for one ring; `None` removes it.
    pub fn set_cancel_token(&mut self, token: Option<CancelToken>) {
        self.requests.set_cancel_token(token.clone());
        self.replies.set_cancel_token(token);
    }
}

fn send_reply(replies: &mut Producer, id: u64, msg_type: u16, payload: &[u8]) -> Result<()> {
    let mut slot = reserve_reply(replies, id, payload.len())?;
    slot.copy_from_slice(payload);
    slot.commit(payload.len(), msg_type)
}

fn reserve_reply(replies: &mut Producer, id: u64, max_len: usize) -> Result<ReplySlot<'_>> {
    if id == 0 {
        return Err(Error::ZeroCorrelationId);
    }
    Ok(ReplySlot {
        slot: replies.reserve(max_len)?,
        id,
        answered: None,
    })
}

/// The message type of an error reply, as upstream's dispatcher sends when a handler fails;
/// its payload is the failed request's message type, a big-endian `u16`.
pub const ERROR_REPLY_TYPE: u16 = 0xFFFF;

/// A request, read in place. Answer it with [`reply`](Request::reply) or
/// [`reserve_reply`](Request::reserve_reply). Dropped unanswered (an error on the way, a
/// panic), it answers with upstream's error reply ([`ERROR_REPLY_TYPE`], payload the
/// request's message type, big endian), if the reply ring has room at that moment, so its
/// caller is not left waiting. [`defer`](Request::defer) releases it to be answered later.
pub struct Request<'a> {
    message: Message<'a>,
    replies: &'a mut Producer,
    answered: bool,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id())
            .field("msg_type", &self.msg_type())
            .field("len", &self.message.len())
            .finish()
    }
}

impl Request<'_> {
    /// The correlation id to answer.
    pub fn id(&self) -> u64 {
        self.message.correlation_id()
    }

    /// The request's message type.
    pub fn msg_type(&self) -> u16 {
        type_id::msg_type(self.message.type_id())
    }

    /// Sends the reply and releases the request. On failure (no room, too large) the request
    /// is dropped unanswered, which sends the error reply if it can.
    pub fn reply(mut self, msg_type: u16, payload: &[u8]) -> Result<()> {
        send_reply(
            self.replies,
            self.message.correlation_id(),
            msg_type,
            payload,
        )?;
        self.answered = true;
        Ok(())
    }

    /// Releases the request without answering it now, and returns its id: answer it later
    /// with [`Callee::reply`]. (No error reply is sent for it.)
    pub fn defer(mut self) -> u64 {
        self.answered = true;
        self.message.correlation_id()
    }

    /// Reserves the reply in place, keeping the request readable until the reply is
    /// committed: copy or transform straight from request to reply. Waits for room in the
    /// reply ring up to `timeout` (zero: fail at once with [`Error::Full`], as upstream).
    pub fn reserve_reply(
        &mut self,
        max_len: usize,
        timeout: Duration,
    ) -> Result<(&[u8], ReplySlot<'_>)> {
        let id = self.message.correlation_id();
        if id == 0 {
            return Err(Error::ZeroCorrelationId);
        }
        let slot = self.replies.reserve_timeout(max_len, timeout)?;
        let reply = ReplySlot {
            slot,
            id,
            answered: Some(&mut self.answered),
        };
        Ok((self.message.data(), reply))
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        let id = self.message.correlation_id();
        if self.answered || id == 0 {
            return;
        }
        let failed_type = type_id::msg_type(self.message.type_id()).to_be_bytes();
        // Never waits: with the reply ring full, the caller's own timeout must do.
        let _ = send_reply(self.replies, id, ERROR_REPLY_TYPE, &failed_type);
    }
}

impl<'a> Request<'a> {
    /// The payload, in place in shared memory.
    pub fn data(&self) -> &[u8] {
        self.message.data()
    }

    /// The underlying message (copy-out helpers, raw type id).
    pub fn message(&self) -> &Message<'a> {
        &self.message
    }
}

/// A reply being written in place; [`commit`](ReplySlot::commit) sends it.
pub struct ReplySlot<'a> {
    slot: WriteSlot<'a>,
    id: u64,
    /// The request this answers, when it is still held ([`Request::reserve_reply`]).
    answered: Option<&'a mut bool>,
}

impl fmt::Debug for ReplySlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplySlot").field("id", &self.id).finish()
    }
}

impl ReplySlot<'_> {
    /// Sends the first `len` bytes as the reply to call `id` instead of the one the slot was
    /// reserved for: for an interface that names the call only at commit (upstream's C ABI,
    /// `tachyon_rpc_commit_reply`). Id 0 is refused ([`Error::ZeroCorrelationId`]; the slot
    /// is rolled back).
    pub fn commit_to(mut self, id: u64, len: usize, msg_type: u16) -> Result<()> {
        if id == 0 {
            return Err(Error::ZeroCorrelationId);
        }
        self.id = id;
        self.commit(len, msg_type)
    }

    /// Sends the first `len` bytes as the reply, of type `msg_type`.
    pub fn commit(self, len: usize, msg_type: u16) -> Result<()> {
        self.slot
            .commit_rpc(len, type_id::compose(0, msg_type), self.id)?;
        if let Some(answered) = self.answered {
            *answered = true;
        }
        Ok(())
    }
}

impl Deref for ReplySlot<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.slot
    }
}

impl DerefMut for ReplySlot<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.slot
    }
}

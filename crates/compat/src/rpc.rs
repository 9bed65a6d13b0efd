//! `RpcBus` and its guards: upstream's `Sync` RPC API over `tachyon_ring`'s [`Caller`] or
//! [`Callee`] behind a mutex. Blocking waits take the lock in short slices, so a `call` from
//! one thread is never held up by a `wait` blocked in another.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tachyon_ring::{Callee, Caller};

use crate::error::TachyonError;

/// How long one blocking wait holds the lock before letting other threads in. The wait
/// itself spins, then sleeps on the futex, so a reply is seen at once either way.
const WAIT_SLICE: Duration = Duration::from_millis(10);

enum Side {
    Caller(Mutex<Caller>),
    Callee(Mutex<Callee>),
}

/// The request/reply bus: tachyon-ipc's `RpcBus`. `Send` and `Sync`. The listener is the
/// callee (`serve`, `reply`, `acquire_reply`), the connector the caller (`call`,
/// `acquire_call`, `wait`); the other side's calls fail with [`TachyonError::SystemError`].
pub struct RpcBus {
    side: Side,
    /// `set_polling_mode`, applied to this side's consumer at each wait.
    pure_spin: AtomicBool,
}

impl std::fmt::Debug for RpcBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.side {
            Side::Caller(_) => "caller",
            Side::Callee(_) => "callee",
        };
        f.debug_struct("RpcBus").field("side", &side).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a guard was held leaves the ring consistent (commits are all or nothing).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Upstream's RPC message types are `u32` but land in the 16-bit message-type half.
fn msg_type_u16(msg_type: u32) -> Result<u16, TachyonError> {
    u16::try_from(msg_type).map_err(|_| TachyonError::InvalidSize)
}

impl RpcBus {
    /// Creates the request and reply rings and blocks until one caller has connected.
    pub fn listen(socket_path: &str, cap_fwd: usize, cap_rev: usize) -> Result<Self, TachyonError> {
        let callee = tachyon_ring::RpcBus::listen(socket_path, cap_fwd, cap_rev)?;
        Ok(RpcBus {
            side: Side::Callee(Mutex::new(callee)),
            pure_spin: AtomicBool::new(false),
        })
    }

    /// Connects to an RPC listener as the caller; fails at once when nobody listens.
    pub fn connect(socket_path: &str) -> Result<Self, TachyonError> {
        Ok(RpcBus {
            side: Side::Caller(Mutex::new(tachyon_ring::RpcBus::connect(socket_path)?)),
            pure_spin: AtomicBool::new(false),
        })
    }

    fn caller(&self) -> Result<&Mutex<Caller>, TachyonError> {
        match &self.side {
            Side::Caller(caller) => Ok(caller),
            Side::Callee(_) => Err(TachyonError::SystemError),
        }
    }

    fn callee(&self) -> Result<&Mutex<Callee>, TachyonError> {
        match &self.side {
            Side::Callee(callee) => Ok(callee),
            Side::Caller(_) => Err(TachyonError::SystemError),
        }
    }

    /// Reserves a request of up to `max_size` bytes; its [`commit`](RpcTxGuard::commit) sends
    /// it and returns the correlation id. [`TachyonError::BufferFull`] at once when the
    /// request ring has no room.
    pub fn acquire_call(&self, max_size: usize) -> Result<RpcTxGuard<'_>, TachyonError> {
        let mut caller = lock(self.caller()?);
        // Room is checked now, as upstream reserves now; the lock held by the guard keeps it.
        let _unused_slot = caller.reserve_call(max_size)?;
        Ok(RpcTxGuard::new(Held::Caller(caller), max_size))
    }

    /// Sends a request and returns its correlation id.
    pub fn call(&self, payload: &[u8], msg_type: u32) -> Result<u64, TachyonError> {
        let msg_type = msg_type_u16(msg_type)?;
        Ok(lock(self.caller()?).call(msg_type, payload)?)
    }

    /// Waits for the reply to `correlation_id` (spin `spin_threshold` times, then sleep on
    /// the futex). A reply to another call marks the ring fatal: [`TachyonError::PeerDead`].
    pub fn wait(
        &self,
        correlation_id: u64,
        spin_threshold: u32,
    ) -> Result<RpcRxGuard<'_>, TachyonError> {
        let caller = self.caller()?;
        loop {
            let mut caller = lock(caller);
            caller.set_reply_wait(spin_threshold, self.pure_spin.load(Ordering::Relaxed));
            match caller.wait_timeout(correlation_id, WAIT_SLICE) {
                Ok(reply) => {
                    return Ok(RpcRxGuard::new(
                        reply.message().type_id(),
                        reply.correlation_id(),
                        reply.message().to_vec(),
                    ));
                }
                Err(tachyon_ring::Error::Timeout(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Waits for the next request (spin `spin_threshold` times, then sleep on the futex).
    pub fn serve(&self, spin_threshold: u32) -> Result<RpcRxGuard<'_>, TachyonError> {
        let callee = self.callee()?;
        loop {
            let mut callee = lock(callee);
            callee.set_request_wait(spin_threshold, self.pure_spin.load(Ordering::Relaxed));
            match callee.serve_timeout(WAIT_SLICE) {
                // Released here (deferred: no error reply); `reply` answers it by id, as
                // upstream's callers do.
                Ok(request) => {
                    let guard = RpcRxGuard::new(
                        request.message().type_id(),
                        request.id(),
                        request.message().to_vec(),
                    );
                    request.defer();
                    return Ok(guard);
                }
                Err(tachyon_ring::Error::Timeout(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Reserves the reply to `correlation_id`, of up to `max_size` bytes.
    /// [`TachyonError::InvalidSize`] for id 0, [`TachyonError::BufferFull`] when the reply
    /// ring has no room.
    pub fn acquire_reply(
        &self,
        correlation_id: u64,
        max_size: usize,
    ) -> Result<RpcTxGuard<'_>, TachyonError> {
        if correlation_id == 0 {
            return Err(TachyonError::InvalidSize);
        }
        let mut callee = lock(self.callee()?);
        let _unused_slot = callee.reserve_reply(correlation_id, max_size)?;
        Ok(RpcTxGuard::new(
            Held::Callee(callee, correlation_id),
            max_size,
        ))
    }

    /// Sends the reply to `correlation_id`. [`TachyonError::InvalidSize`] for id 0.
    pub fn reply(
        &self,
        correlation_id: u64,
        payload: &[u8],
        msg_type: u32,
    ) -> Result<(), TachyonError> {
        let msg_type = msg_type_u16(msg_type)?;
        Ok(lock(self.callee()?).reply(correlation_id, msg_type, payload)?)
    }

    /// `true`: this side's consumer never sleeps and tells the peer's producer so (it skips
    /// the wake check); `false`: spin, then sleep. Takes effect at the next `wait` / `serve`.
    pub fn set_polling_mode(&self, pure_spin: bool) {
        self.pure_spin.store(pure_spin, Ordering::Relaxed);
    }
}

/// The side an [`RpcTxGuard`] writes for, locked for the guard's life.
enum Held<'a> {
    Caller(MutexGuard<'a, Caller>),
    Callee(MutexGuard<'a, Callee>, u64),
}

/// A request or reply being written: tachyon-ipc's `RpcTxGuard`. Dropped uncommitted, it
/// sends nothing.
pub struct RpcTxGuard<'a> {
    held: Held<'a>,
    staged: RefCell<Vec<u8>>,
}

impl std::fmt::Debug for RpcTxGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcTxGuard")
            .field("max_size", &self.staged.borrow().len())
            .finish()
    }
}

impl<'a> RpcTxGuard<'a> {
    fn new(held: Held<'a>, max_size: usize) -> Self {
        RpcTxGuard {
            held,
            staged: RefCell::new(vec![0; max_size]),
        }
    }

    /// Copies `data` to the start of the slot.
    ///
    /// # Panics
    /// When `data` is longer than the slot, as upstream's does.
    pub fn write(&self, data: &[u8]) {
        let mut staged = self.staged.borrow_mut();
        assert!(
            data.len() <= staged.len(),
            "RpcTxGuard::write of {} bytes into a slot reserved for {}",
            data.len(),
            staged.len()
        );
        staged[..data.len()].copy_from_slice(data);
    }

    /// The whole slot, to write in place.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.staged.get_mut()
    }

    /// Sends the first `actual_size` bytes as a message of `msg_type`; returns the
    /// correlation id of a call, 0 for a reply. [`TachyonError::SystemError`] when
    /// `actual_size` exceeds the slot.
    pub fn commit(self, actual_size: usize, msg_type: u32) -> Result<u64, TachyonError> {
        let msg_type = msg_type_u16(msg_type)?;
        let staged = self.staged.into_inner();
        let payload = staged.get(..actual_size).ok_or(TachyonError::SystemError)?;
        match self.held {
            Held::Caller(mut caller) => Ok(caller.call(msg_type, payload)?),
            Held::Callee(mut callee, id) => {
                callee.reply(id, msg_type, payload)?;
                Ok(0)
            }
        }
    }
}

/// A received request or reply: tachyon-ipc's `RpcRxGuard`.
#[derive(Debug)]
pub struct RpcRxGuard<'a> {
    data: Vec<u8>,
    /// Payload bytes.
    pub actual_size: usize,
    /// The message's type id.
    pub type_id: u32,
    /// The call it belongs to.
    pub correlation_id: u64,
    _bus: PhantomData<&'a RpcBus>,
}

impl RpcRxGuard<'_> {
    fn new(type_id: u32, correlation_id: u64, data: Vec<u8>) -> Self {
        RpcRxGuard {
            actual_size: data.len(),
            data,
            type_id,
            correlation_id,
            _bus: PhantomData,
        }
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Releases the message.
    pub fn commit(self) -> Result<(), TachyonError> {
        Ok(())
    }
}

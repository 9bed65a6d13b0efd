//! `TachyonRpcBus` (upstream's `_tachyon.TachyonRpcBus`) and its guards. The listener is the
//! callee (serve / reply), the connector the caller (call / wait), as upstream's convention.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tachyon_ring::{BusOptions, Callee, Caller, CancelToken, Error, RpcBus};

use crate::bus::lock;
use crate::errors::{TachyonError, to_py};
use crate::guard::{Lent, RX_CLOSED, RX_DANGLING, guard_pymethods};
use crate::wait::{cancellable, deadline, time_limit, timed_out, wait_watching};

enum End {
    Unset,
    Caller(Box<Caller>),
    Callee(Box<Callee>),
    Closed,
}

fn not_open(end: &End) -> PyErr {
    match end {
        End::Closed => PyRuntimeError::new_err("TachyonRpcBus is closed (destroy() was called)."),
        _ => PyRuntimeError::new_err("TachyonRpcBus is not initialized."),
    }
}

fn caller(end: &mut End) -> PyResult<&mut Caller> {
    match end {
        End::Caller(caller) => Ok(caller),
        End::Callee(_) => Err(TachyonError::new_err(
            "this RPC bus listened, so it is the callee (serve/reply); calls come from the \
             side that connected",
        )),
        other => Err(not_open(other)),
    }
}

fn callee(end: &mut End) -> PyResult<&mut Callee> {
    match end {
        End::Callee(callee) => Ok(callee),
        End::Caller(_) => Err(TachyonError::new_err(
            "this RPC bus connected, so it is the caller (call/wait); serving is the \
             listener's",
        )),
        other => Err(not_open(other)),
    }
}

fn positive(max_payload_size: i64) -> PyResult<usize> {
    if max_payload_size <= 0 {
        return Err(PyValueError::new_err("max_payload_size must be > 0."));
    }
    usize::try_from(max_payload_size)
        .map_err(|_| PyValueError::new_err("max_payload_size too large"))
}

/// A reply must name its call: correlation ids start at 1.
fn nonzero(correlation_id: u64) -> PyResult<()> {
    if correlation_id == 0 {
        return Err(PyValueError::new_err("correlation_id must be non-zero."));
    }
    Ok(())
}

/// The bytes a one-call send reserves: `max_payload_size`, or the payload's length; a payload
/// longer than the reservation is refused (the guard path's memoryview refuses it too).
fn reserve_for(payload: &[u8], max_payload_size: Option<i64>) -> PyResult<usize> {
    let reserve = positive(max_payload_size.unwrap_or(payload.len() as i64))?;
    if payload.len() > reserve {
        return Err(PyValueError::new_err(format!(
            "payload is {} bytes, more than max_payload_size {reserve}",
            payload.len()
        )));
    }
    Ok(reserve)
}

/// A msg_type as the wire carries it (16 bits), or the ValueError the guards raise at commit.
fn msg_type_of(msg_type: u64) -> PyResult<u16> {
    u16::try_from(msg_type).map_err(|_| {
        PyValueError::new_err(format!("msg_type must be in [0, 65535], got {msg_type}"))
    })
}

/// Room for a call of `size` bytes: at once, FullError; with `timeout`, waiting for it (GIL
/// released, Ctrl-C raises). The single producer keeps the room it found.
fn room_for_call(
    py: Python<'_>,
    caller: &mut Caller,
    size: usize,
    timeout: Option<f64>,
) -> PyResult<()> {
    room(
        py,
        caller,
        timeout,
        "waiting for room for a call",
        // A slot found rolls back as it drops here.
        |caller, within| match within {
            None => caller.reserve_call(size).map(drop),
            Some(limit) => caller.reserve_call_timeout(size, limit).map(drop),
        },
        Caller::set_cancel_token,
    )
}

/// Room for a reply of `size` bytes to `correlation_id`, as [`room_for_call`].
fn room_for_reply(
    py: Python<'_>,
    callee: &mut Callee,
    correlation_id: u64,
    size: usize,
    timeout: Option<f64>,
) -> PyResult<()> {
    room(
        py,
        callee,
        timeout,
        "waiting for room for a reply",
        |callee, within| match within {
            None => callee.reserve_reply(correlation_id, size).map(drop),
            Some(limit) => callee
                .reserve_reply_timeout(correlation_id, size, limit)
                .map(drop),
        },
        Callee::set_cancel_token,
    )
}

/// The wait of [`room_for_call`] and [`room_for_reply`]: `reserve(end, None)` tries at once,
/// `reserve(end, Some(limit))` waits at most `limit` watching the token `watch` gave `end`.
fn room<E: Send>(
    py: Python<'_>,
    end: &mut E,
    timeout: Option<f64>,
    what: &str,
    reserve: impl Fn(&mut E, Option<Duration>) -> Result<(), Error> + Sync,
    watch: impl Fn(&mut E, Option<CancelToken>) + Sync,
) -> PyResult<()> {
    match reserve(end, None) {
        Ok(()) => Ok(()),
        Err(Error::Full { .. }) if timeout.is_some() => {
            let deadline = deadline(timeout)?;
            let found = wait_watching(py, deadline, what, |attempt| {
                watch(end, attempt.token.cloned());
                match reserve(end, Some(attempt.timeout)) {
                    Ok(()) => Ok(Some(())),
                    Err(Error::Timeout(_)) => Ok(None),
                    Err(other) => Err(other),
                }
            });
            watch(end, None);
            found
        }
        Err(other) => Err(to_py(other)),
    }
}

/// Upstream's two-ring request/reply bus.
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
pub struct TachyonRpcBus {
    end: Mutex<End>,
}

impl std::fmt::Debug for TachyonRpcBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TachyonRpcBus").finish_non_exhaustive()
    }
}

impl TachyonRpcBus {
    fn state(&self) -> PyResult<MutexGuard<'_, End>> {
        lock(&self.end, "this TachyonRpcBus")
    }

    fn set(&self, make: impl FnOnce() -> PyResult<End>) -> PyResult<()> {
        let mut end = self.state()?;
        if !matches!(*end, End::Unset) {
            return Err(PyRuntimeError::new_err(
                "TachyonRpcBus is already initialized.",
            ));
        }
        *end = make()?;
        Ok(())
    }
}

#[pymethods]
impl TachyonRpcBus {
    #[new]
    fn new() -> Self {
        TachyonRpcBus {
            end: Mutex::new(End::Unset),
        }
    }

    /// Creates the request (`cap_fwd`) and reply (`cap_rev`) rings and blocks (GIL released,
    /// Ctrl-C raises) until a caller connects.
    #[pyo3(signature = (socket_path, cap_fwd, cap_rev))]
    fn listen(
        &self,
        py: Python<'_>,
        socket_path: &str,
        cap_fwd: usize,
        cap_rev: usize,
    ) -> PyResult<()> {
        let path = socket_path.to_owned();
        self.set(|| {
            let callee = cancellable(py, move |token| {
                tachyon_ring::Bus::options()
                    .cancel_token(token)
                    .rpc_listen(&path, cap_fwd, cap_rev)
            })?
            .map_err(to_py)?;
            Ok(End::Callee(Box::new(callee)))
        })
    }

    /// Connects to a callee at `socket_path`: at once (ConnectionError when nobody listens),
    /// or retrying for `timeout` seconds.
    #[pyo3(signature = (socket_path, *, timeout = None))]
    fn connect(&self, py: Python<'_>, socket_path: &str, timeout: Option<f64>) -> PyResult<()> {
        let path = socket_path.to_owned();
        let limit = time_limit(timeout)?;
        self.set(|| {
            let Some(limit) = limit else {
                let caller = py.detach(|| RpcBus::connect(&path)).map_err(to_py)?;
                return Ok(End::Caller(Box::new(caller)));
            };
            let started = Instant::now();
            // Connected on a thread of its own: the token stays with the caller's rings for
            // good, so it must fire only when the call is abandoned.
            let caller = match cancellable(py, move |token| {
                tachyon_ring::Bus::options()
                    .cancel_token(token)
                    .connect_timeout(limit)
                    .rpc_connect(&path)
            })? {
                Ok(caller) => caller,
                Err(Error::NobodyListening { .. }) => {
                    return Err(timed_out(started, "waiting for an RPC listener"));
                }
                Err(other) => return Err(to_py(other)),
            };
            Ok(End::Caller(Box::new(caller)))
        })
    }

    /// Unmaps both rings and closes their descriptors. Idempotent.
    fn destroy(&self) -> PyResult<()> {
        *self.state()? = End::Closed;
        Ok(())
    }

    /// A guard over a request of up to `max_payload_size` bytes; its exit sends it and sets
    /// `out_cid`. Full: FullError at once, or with `timeout` wait for room.
    #[pyo3(signature = (max_payload_size, *, timeout = None))]
    fn acquire_call(
        slf: &Bound<'_, Self>,
        max_payload_size: i64,
        timeout: Option<f64>,
    ) -> PyResult<RpcTxGuard> {
        let size = positive(max_payload_size)?;
        {
            let mut end = slf.get().state()?;
            room_for_call(slf.py(), caller(&mut end)?, size, timeout)?;
        }
        Ok(RpcTxGuard::new(slf, size, 0))
    }

    /// `RpcBus.call` for a `bytes` payload in one call: what the guard path does (room for
    /// `max_payload_size`, default the payload's length; FullError, or with `timeout` wait
    /// for room), without the guard, its staging copy and the eight Python calls between.
    /// Returns the correlation id.
    #[pyo3(signature = (payload, msg_type, max_payload_size = None, *, timeout = None))]
    fn call_bytes(
        &self,
        py: Python<'_>,
        payload: &[u8],
        msg_type: u64,
        max_payload_size: Option<i64>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let reserve = reserve_for(payload, max_payload_size)?;
        let msg_type = msg_type_of(msg_type)?;
        let mut end = self.state()?;
        let caller = caller(&mut end)?;
        if reserve > payload.len() {
            room_for_call(py, caller, reserve, timeout)?;
        }
        match caller.call(msg_type, payload) {
            Err(Error::Full { .. }) if timeout.is_some() => {
                room_for_call(py, caller, reserve, timeout)?;
                caller.call(msg_type, payload).map_err(to_py)
            }
            sent => sent.map_err(to_py),
        }
    }

    /// A guard over the reply to `correlation_id` of up to `max_payload_size` bytes.
    #[pyo3(signature = (correlation_id, max_payload_size, *, timeout = None))]
    fn acquire_reply(
        slf: &Bound<'_, Self>,
        correlation_id: u64,
        max_payload_size: i64,
        timeout: Option<f64>,
    ) -> PyResult<RpcTxGuard> {
        nonzero(correlation_id)?;
        let size = positive(max_payload_size)?;
        {
            let mut end = slf.get().state()?;
            room_for_reply(slf.py(), callee(&mut end)?, correlation_id, size, timeout)?;
        }
        Ok(RpcTxGuard::new(slf, size, correlation_id))
    }

    /// `RpcBus.reply` for a `bytes` payload in one call, as [`call_bytes`](Self::call_bytes)
    /// is `call`'s.
    #[pyo3(signature = (correlation_id, payload, msg_type, max_payload_size = None, *, timeout = None))]
    fn reply_bytes(
        &self,
        py: Python<'_>,
        correlation_id: u64,
        payload: &[u8],
        msg_type: u64,
        max_payload_size: Option<i64>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        nonzero(correlation_id)?;
        let reserve = reserve_for(payload, max_payload_size)?;
        let msg_type = msg_type_of(msg_type)?;
        let mut end = self.state()?;
        let callee = callee(&mut end)?;
        if reserve > payload.len() {
            room_for_reply(py, callee, correlation_id, reserve, timeout)?;
        }
        match callee.reply(correlation_id, msg_type, payload) {
            Err(Error::Full { .. }) if timeout.is_some() => {
                room_for_reply(py, callee, correlation_id, reserve, timeout)?;
                callee
                    .reply(correlation_id, msg_type, payload)
                    .map_err(to_py)
            }
            sent => sent.map_err(to_py),
        }
    }

    /// Blocks (GIL released, Ctrl-C raises) until the reply to `correlation_id` arrives. A
    /// reply to another call marks the ring fatal and raises PeerDeadError (CorruptError).
    #[pyo3(signature = (correlation_id, spin_threshold = 10000, *, timeout = None))]
    fn wait(
        &self,
        py: Python<'_>,
        correlation_id: u64,
        spin_threshold: u32,
        timeout: Option<f64>,
    ) -> PyResult<RpcRxGuard> {
        let _ = spin_threshold;
        let deadline = deadline(timeout)?;
        let mut end = self.state()?;
        let caller = caller(&mut end)?;
        // The default threshold, which the caller was built with, and no token are put back at
        // the end.
        let reply = wait_watching(py, deadline, "waiting for a reply", |attempt| {
            caller.set_cancel_token(attempt.token.cloned());
            caller.set_reply_wait(attempt.spin_threshold(), false);
            match caller.wait_timeout(correlation_id, attempt.timeout) {
                Ok(reply) => Ok(Some((reply.msg_type(), reply.data().to_vec()))),
                Err(Error::Timeout(_)) => Ok(None),
                Err(other) => Err(other),
            }
        });
        caller.set_reply_wait(BusOptions::DEFAULT_SPIN_THRESHOLD, false);
        caller.set_cancel_token(None);
        let (msg_type, data) = reply?;
        Ok(RpcRxGuard::new(data, msg_type, correlation_id))
    }

    /// Blocks (GIL released, Ctrl-C raises) until a request arrives.
    #[pyo3(signature = (spin_threshold = 10000, *, timeout = None))]
    fn serve(
        &self,
        py: Python<'_>,
        spin_threshold: u32,
        timeout: Option<f64>,
    ) -> PyResult<RpcRxGuard> {
        let _ = spin_threshold;
        let deadline = deadline(timeout)?;
        let mut end = self.state()?;
        let callee = callee(&mut end)?;
        // As `wait` does.
        let request = wait_watching(py, deadline, "waiting for a request", |attempt| {
            callee.set_cancel_token(attempt.token.cloned());
            callee.set_request_wait(attempt.spin_threshold(), false);
            match callee.serve_timeout(attempt.timeout) {
                Ok(request) => {
                    let (msg_type, data) = (request.msg_type(), request.data().to_vec());
                    // Answered later through `reply`: defer, or dropping the request here would
                    // send the ring's error reply ahead of the real one.
                    Ok(Some((request.defer(), msg_type, data)))
                }
                Err(Error::Timeout(_)) => Ok(None),
                Err(other) => Err(other),
            }
        });
        callee.set_request_wait(BusOptions::DEFAULT_SPIN_THRESHOLD, false);
        callee.set_cancel_token(None);
        let (id, msg_type, data) = request?;
        Ok(RpcRxGuard::new(data, msg_type, id))
    }

    /// Accepted for upstream's signature; see the README.
    fn set_polling_mode(&self, pure_spin: i64) -> PyResult<()> {
        let _ = pure_spin;
        let end = self.state()?;
        if matches!(*end, End::Unset | End::Closed) {
            return Err(not_open(&end));
        }
        Ok(())
    }
}

/// A request (call side) or reply being written: fill it, set `actual_size` and `msg_type`,
/// leave the block to send; `out_cid` is the call's correlation id afterwards.
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
#[derive(Debug)]
pub struct RpcTxGuard {
    bus: Py<TachyonRpcBus>,
    lent: Lent,
    actual_size: AtomicUsize,
    msg_type: AtomicU64,
    reply_to: u64,
    out_cid: AtomicU64,
}

impl RpcTxGuard {
    fn new(bus: &Bound<'_, TachyonRpcBus>, size: usize, reply_to: u64) -> RpcTxGuard {
        RpcTxGuard {
            bus: bus.clone().unbind(),
            lent: Lent::writable(size),
            actual_size: AtomicUsize::new(0),
            msg_type: AtomicU64::new(0),
            reply_to,
            out_cid: AtomicU64::new(0),
        }
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let payload = self.lent.payload(py, self.actual_size.load(Relaxed))?;
        let msg_type = self.msg_type.load(Relaxed);
        let msg_type = msg_type_of(msg_type)?;
        let mut end = self.bus.get().state()?;
        if self.reply_to == 0 {
            let id = caller(&mut end)?.call(msg_type, payload).map_err(to_py)?;
            self.out_cid.store(id, Relaxed);
        } else {
            callee(&mut end)?
                .reply(self.reply_to, msg_type, payload)
                .map_err(to_py)?;
        }
        Ok(())
    }
}

guard_pymethods! {
    impl RpcTxGuard {
        /// The call's correlation id once sent; 0 before, and for replies.
        #[getter]
        fn out_cid(&self) -> u64 {
            self.out_cid.load(Relaxed)
        }
    }
    exit: commit(
        "Dangling memoryview detected: release the buffer before exiting the context \
         (nothing was sent)."
    ),
    buffer: "RpcTxGuard already committed.",
    atomics: [
        /// Payload bytes to send (at most the size acquired).
        actual_size (set_actual_size): usize,
        /// The application message type (0..65535).
        msg_type (set_msg_type): u64,
    ],
}

/// A request (serve side) or reply (wait side), read through the buffer protocol.
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
#[derive(Debug)]
pub struct RpcRxGuard {
    lent: Lent,
    msg_type: u16,
    correlation_id: u64,
}

impl RpcRxGuard {
    fn new(data: Vec<u8>, msg_type: u16, correlation_id: u64) -> RpcRxGuard {
        RpcRxGuard {
            lent: Lent::readonly(data),
            msg_type,
            correlation_id,
        }
    }
}

guard_pymethods! {
    impl RpcRxGuard {
        /// Payload bytes.
        #[getter]
        fn actual_size(&self) -> usize {
            self.lent.len()
        }

        /// The message type (RPC slots carry route 0, so this is the msg_type).
        #[getter]
        fn type_id(&self) -> u32 {
            u32::from(self.msg_type)
        }

        /// The call's correlation id (pass it to `reply`).
        #[getter]
        fn correlation_id(&self) -> u64 {
            self.correlation_id
        }
    }
    exit: release(RX_DANGLING),
    buffer: RX_CLOSED,
}

//! `TachyonRpcBus` (upstream's `_tachyon.TachyonRpcBus`) and its guards. The listener is the
//! callee (serve / reply), the connector the caller (call / wait), as upstream's convention.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tachyon_ring::{Callee, Caller, Error, RpcBus};

use crate::bus::lock;
use crate::errors::{TachyonError, to_py};
use crate::guard::{Lent, RX_CLOSED, RX_DANGLING};
use crate::wait::{cancellable, deadline, wait_in_slices};

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
            })?;
            Ok(End::Callee(Box::new(callee)))
        })
    }

    /// Connects to a callee at `socket_path`: at once (ConnectionError when nobody listens),
    /// or retrying for `timeout` seconds.
    #[pyo3(signature = (socket_path, *, timeout = None))]
    fn connect(&self, py: Python<'_>, socket_path: &str, timeout: Option<f64>) -> PyResult<()> {
        let path = socket_path.to_owned();
        let deadline = deadline(timeout)?;
        self.set(|| {
            let caller = if timeout.is_none() {
                py.detach(|| RpcBus::connect(&path)).map_err(to_py)?
            } else {
                wait_in_slices(py, deadline, "waiting for an RPC listener", |slice| {
                    match tachyon_ring::Bus::options()
                        .connect_timeout(slice)
                        .rpc_connect(&path)
                    {
                        Ok(caller) => Ok(Some(caller)),
                        Err(Error::NobodyListening { .. }) => Ok(None),
                        Err(other) => Err(other),
                    }
                })?
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
        let py = slf.py();
        {
            let mut end = slf.get().state()?;
            let caller = caller(&mut end)?;
            match caller.reserve_call(size) {
                Ok(_unused_slot_rolls_back) => {}
                Err(Error::Full { .. }) if timeout.is_some() => {
                    wait_in_slices(
                        py,
                        deadline(timeout)?,
                        "waiting for room for a call",
                        |slice| match caller.reserve_call_timeout(size, slice) {
                            // Room is there; the slot rolls back as it drops here.
                            Ok(_slot) => Ok(Some(())),
                            Err(Error::Timeout(_)) => Ok(None),
                            Err(other) => Err(other),
                        },
                    )?;
                }
                Err(other) => return Err(to_py(other)),
            }
        }
        Ok(RpcTxGuard::new(slf, size, 0))
    }

    /// A guard over the reply to `correlation_id` of up to `max_payload_size` bytes.
    #[pyo3(signature = (correlation_id, max_payload_size, *, timeout = None))]
    fn acquire_reply(
        slf: &Bound<'_, Self>,
        correlation_id: u64,
        max_payload_size: i64,
        timeout: Option<f64>,
    ) -> PyResult<RpcTxGuard> {
        if correlation_id == 0 {
            return Err(PyValueError::new_err("correlation_id must be non-zero."));
        }
        let size = positive(max_payload_size)?;
        let py = slf.py();
        {
            let mut end = slf.get().state()?;
            let callee = callee(&mut end)?;
            match callee.reserve_reply(correlation_id, size) {
                Ok(_unused_slot_rolls_back) => {}
                Err(Error::Full { .. }) if timeout.is_some() => {
                    let deadline = deadline(timeout)?;
                    wait_in_slices(py, deadline, "waiting for room for a reply", |slice| {
                        match callee.reserve_reply(correlation_id, size) {
                            // Room is there; the slot rolls back as it drops here.
                            Ok(_slot) => Ok(Some(())),
                            Err(Error::Full { .. }) => {
                                std::thread::sleep(
                                    slice.min(std::time::Duration::from_micros(200)),
                                );
                                Ok(None)
                            }
                            Err(other) => Err(other),
                        }
                    })?;
                }
                Err(other) => return Err(to_py(other)),
            }
        }
        Ok(RpcTxGuard::new(slf, size, correlation_id))
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
        let (msg_type, data) = wait_in_slices(py, deadline, "waiting for a reply", |slice| {
            match caller.wait_timeout(correlation_id, slice) {
                Ok(reply) => Ok(Some((reply.msg_type(), reply.data().to_vec()))),
                Err(Error::Timeout(_)) => Ok(None),
                Err(other) => Err(other),
            }
        })?;
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
        let (id, msg_type, data) =
            wait_in_slices(py, deadline, "waiting for a request", |slice| match callee
                .serve_timeout(slice)
            {
                Ok(request) => {
                    let (msg_type, data) = (request.msg_type(), request.data().to_vec());
                    // Answered later through `reply`: defer, or dropping the request here would
                    // send the ring's error reply ahead of the real one.
                    Ok(Some((request.defer(), msg_type, data)))
                }
                Err(Error::Timeout(_)) => Ok(None),
                Err(other) => Err(other),
            })?;
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
        let msg_type = u16::try_from(msg_type).map_err(|_| {
            PyValueError::new_err(format!("msg_type must be in [0, 65535], got {msg_type}"))
        })?;
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

#[pymethods]
impl RpcTxGuard {
    /// Payload bytes to send (at most the size acquired).
    #[getter]
    fn get_actual_size(&self) -> usize {
        self.actual_size.load(Relaxed)
    }

    #[setter]
    fn set_actual_size(&self, value: usize) -> PyResult<()> {
        self.actual_size.store(value, Relaxed);
        Ok(())
    }

    /// The application message type (0..65535).
    #[getter]
    fn get_msg_type(&self) -> u64 {
        self.msg_type.load(Relaxed)
    }

    #[setter]
    fn set_msg_type(&self, value: u64) -> PyResult<()> {
        self.msg_type.store(value, Relaxed);
        Ok(())
    }

    /// The call's correlation id once sent; 0 before, and for replies.
    #[getter]
    fn out_cid(&self) -> u64 {
        self.out_cid.load(Relaxed)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type = None, exc_value = None, traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let _ = (exc_value, traceback);
        let dangling = "Dangling memoryview detected: release the buffer before exiting the \
                        context (nothing was sent).";
        if self.lent.exit(dangling)? && exc_type.is_none_or(|t| t.is_none()) {
            self.commit(py)?;
        }
        Ok(false)
    }

    /// # Safety
    /// Called by Python's buffer protocol with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        // SAFETY: view comes from Python; the view holds `slf`, the guard owning the bytes, and
        // `None` lends them all.
        unsafe {
            slf.get().lent.export(
                slf.as_any(),
                view,
                flags,
                None,
                "RpcTxGuard already committed.",
            )
        }
    }

    /// # Safety
    /// Called by Python's buffer protocol.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.lent.release();
    }
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

#[pymethods]
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

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.lent.exit(RX_DANGLING)?;
        Ok(false)
    }

    /// # Safety
    /// Called by Python's buffer protocol with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        // SAFETY: view comes from Python; the view holds `slf`, the guard owning the bytes, and
        // `None` lends them all.
        unsafe {
            slf.get()
                .lent
                .export(slf.as_any(), view, flags, None, RX_CLOSED)
        }
    }

    /// # Safety
    /// Called by Python's buffer protocol.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.lent.release();
    }
}

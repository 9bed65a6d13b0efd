//! `TachyonBus` (upstream's `_tachyon.TachyonBus`) and its guards.
//!
//! A bus is one end of one ring. Which end is decided by the first call that needs one, as the
//! crate wants it held: a send or `acquire_tx` takes the producer, a receive takes the
//! consumer; the other role then raises `TachyonError` (a ring has one producer and one
//! consumer, and they are never in one process across processes).

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Instant;

use pyo3::exceptions::{PyIndexError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tachyon_ring::{Bus, BusOptions, Consumer, Error, Producer, SpinPolicy};

use crate::errors::{TachyonError, to_py};
use crate::guard::{Lent, RX_CLOSED, RX_DANGLING, guard_pymethods};
use crate::staging::with_bytes;
use crate::wait::{Deadline, cancellable, deadline, time_limit, timed_out, wait_watching};

/// The end of the ring this object holds.
enum End {
    Unset,
    Open(Box<Bus>),
    Producer(Producer),
    Consumer(Consumer),
    Closed,
}

/// Locks a bus's state without ever blocking with the GIL held: another thread inside a
/// blocking call on the same object makes this raise instead of deadlocking.
pub(crate) fn lock<'a, T>(state: &'a Mutex<T>, what: &str) -> PyResult<MutexGuard<'a, T>> {
    match state.try_lock() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(format!(
            "{what} is in use by another thread (a blocking call on it is in progress)"
        ))),
    }
}

fn producer(end: &mut End) -> PyResult<&mut Producer> {
    if let End::Open(_) = end {
        let End::Open(bus) = std::mem::replace(end, End::Unset) else {
            unreachable!()
        };
        *end = End::Producer(bus.into_producer());
    }
    match end {
        End::Producer(producer) => Ok(producer),
        End::Consumer(_) => Err(TachyonError::new_err(
            "this bus end receives (it took the consumer role at its first receive); a ring \
             has one producer and one consumer, so it cannot send",
        )),
        other => Err(not_open(other)),
    }
}

fn consumer(end: &mut End) -> PyResult<&mut Consumer> {
    if let End::Open(_) = end {
        let End::Open(bus) = std::mem::replace(end, End::Unset) else {
            unreachable!()
        };
        *end = End::Consumer(bus.into_consumer());
    }
    match end {
        End::Consumer(consumer) => Ok(consumer),
        End::Producer(_) => Err(TachyonError::new_err(
            "this bus end sends (it took the producer role at its first send); a ring has \
             one producer and one consumer, so it cannot receive",
        )),
        other => Err(not_open(other)),
    }
}

fn not_open(end: &End) -> PyErr {
    match end {
        End::Closed => PyRuntimeError::new_err("TachyonBus is closed (destroy() was called)."),
        _ => PyRuntimeError::new_err("TachyonBus is not initialized."),
    }
}

/// Waits until `len` bytes fit (room is only ever freed by the consumer, so a send right
/// after this succeeds). `deadline` None: wait as long as it takes.
fn wait_for_room(
    py: Python<'_>,
    producer: &mut Producer,
    len: usize,
    deadline: Deadline,
) -> PyResult<()> {
    // Publish what is committed first: the consumer cannot free what it cannot see.
    producer.flush();
    wait_watching(py, deadline, "waiting for room in the ring", |attempt| {
        producer.set_cancel_token(attempt.token.cloned());
        let room = match producer.reserve_timeout(len, attempt.timeout) {
            Ok(slot) => {
                slot.rollback();
                Ok(Some(()))
            }
            Err(Error::Timeout(_)) => Ok(None),
            Err(other) => Err(other),
        };
        // The bus's own token, from `listen`, ended with the call that made the bus.
        producer.set_cancel_token(None);
        room
    })
}

/// Checks that `len` bytes fit now, or (with a `timeout`) waits for room.
fn make_room(
    py: Python<'_>,
    producer: &mut Producer,
    len: usize,
    timeout: Option<f64>,
) -> PyResult<()> {
    let deadline = deadline(timeout)?;
    match producer.reserve(len) {
        Ok(slot) => {
            slot.rollback();
            Ok(())
        }
        Err(Error::Full { .. }) if timeout.is_some() => wait_for_room(py, producer, len, deadline),
        Err(other) => Err(to_py(other)),
    }
}

/// Waits until a message is ready. `deadline` None: as long as it takes.
fn wait_for_message(py: Python<'_>, consumer: &mut Consumer, deadline: Deadline) -> PyResult<()> {
    wait_watching(py, deadline, "waiting for a message", |attempt| {
        consumer.set_cancel_token(attempt.token.cloned());
        consumer.set_spin_threshold(attempt.spin_threshold());
        let ready = consumer.wait_ready(attempt.timeout);
        consumer.set_spin_threshold(BusOptions::DEFAULT_SPIN_THRESHOLD);
        consumer.set_cancel_token(None);
        ready.map(|ready| ready.then_some(()))
    })
}

/// Takes the next message as (type_id, copy of its payload), waiting for it.
fn take_message(
    py: Python<'_>,
    consumer: &mut Consumer,
    timeout: Option<f64>,
) -> PyResult<(u32, Vec<u8>)> {
    let deadline = deadline(timeout)?;
    loop {
        if let Some(message) = consumer.try_recv().map_err(to_py)? {
            return Ok((message.type_id(), message.data().to_vec()));
        }
        wait_for_message(py, consumer, deadline)?;
    }
}

/// One end of a tachyon ring: upstream's `TachyonBus`, the object `Bus._bus` holds.
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
pub struct TachyonBus {
    end: Mutex<End>,
    pure_spin: AtomicBool,
}

impl std::fmt::Debug for TachyonBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TachyonBus").finish_non_exhaustive()
    }
}

impl TachyonBus {
    fn state(&self) -> PyResult<MutexGuard<'_, End>> {
        lock(&self.end, "this TachyonBus")
    }

    fn set_open(&self, bus: impl FnOnce() -> PyResult<Bus>) -> PyResult<()> {
        let mut end = self.state()?;
        if !matches!(*end, End::Unset) {
            return Err(PyRuntimeError::new_err(
                "TachyonBus is already initialized.",
            ));
        }
        *end = End::Open(Box::new(bus()?));
        Ok(())
    }
}

#[pymethods]
impl TachyonBus {
    #[new]
    fn new() -> Self {
        TachyonBus {
            end: Mutex::new(End::Unset),
            pure_spin: AtomicBool::new(false),
        }
    }

    /// Creates a ring of `capacity` bytes (a power of two), listens at `socket_path` and
    /// blocks (GIL released, Ctrl-C raises KeyboardInterrupt) until one peer connects.
    #[pyo3(signature = (socket_path, capacity))]
    fn listen(&self, py: Python<'_>, socket_path: &str, capacity: usize) -> PyResult<()> {
        let path = socket_path.to_owned();
        self.set_open(|| {
            cancellable(py, move |token| {
                Bus::options().cancel_token(token).listen(&path, capacity)
            })?
            .map_err(to_py)
        })
    }

    /// Connects to a listener at `socket_path`. Without `timeout`, fails at once with
    /// ConnectionError when nobody listens (as upstream); with it, retries for that many
    /// seconds (then WaitTimeoutError).
    #[pyo3(signature = (socket_path, *, timeout = None))]
    fn connect(&self, py: Python<'_>, socket_path: &str, timeout: Option<f64>) -> PyResult<()> {
        let path = socket_path.to_owned();
        let limit = time_limit(timeout)?;
        self.set_open(|| {
            let Some(limit) = limit else {
                return py.detach(|| Bus::connect(&path)).map_err(to_py);
            };
            let started = Instant::now();
            match cancellable(py, move |token| {
                Bus::options()
                    .cancel_token(token)
                    .connect_timeout(limit)
                    .connect(&path)
            })? {
                Ok(bus) => Ok(bus),
                Err(Error::NobodyListening { .. }) => {
                    Err(timed_out(started, "waiting for a listener"))
                }
                Err(other) => Err(to_py(other)),
            }
        })
    }

    /// Unmaps the ring and closes its descriptors (publishing what was sent). Idempotent.
    fn destroy(&self) -> PyResult<()> {
        let mut end = self.state()?;
        if let End::Producer(producer) = &mut *end {
            producer.flush();
        }
        *end = End::Closed;
        Ok(())
    }

    /// Publishes pending commits now (a producer) or returns released space now (a
    /// consumer).
    fn flush(&self) -> PyResult<()> {
        let mut end = self.state()?;
        match &mut *end {
            End::Producer(producer) => producer.flush(),
            End::Consumer(consumer) => consumer.flush(),
            End::Open(_) => {}
            other => return Err(not_open(other)),
        }
        Ok(())
    }

    /// A guard over a `max_payload_size`-byte message to fill through the buffer protocol;
    /// leaving its `with` block sends `actual_size` bytes with `type_id`. A full ring raises
    /// FullError at once, or with `timeout` (seconds, `math.inf` for ever) waits for room.
    #[pyo3(signature = (max_payload_size, *, timeout = None))]
    fn acquire_tx(
        slf: &Bound<'_, Self>,
        max_payload_size: usize,
        timeout: Option<f64>,
    ) -> PyResult<TxGuard> {
        TxGuard::open(slf, max_payload_size, 0, false, timeout)
    }

    /// `Bus.send_zero_copy`'s guard: `acquire_tx` with `type_id` preset that also flushes
    /// when its block exits without an exception.
    #[pyo3(signature = (size, type_id = 0, *, timeout = None))]
    fn acquire_tx_flushing(
        slf: &Bound<'_, Self>,
        size: usize,
        type_id: u32,
        timeout: Option<f64>,
    ) -> PyResult<TxGuard> {
        TxGuard::open(slf, size, type_id, true, timeout)
    }

    /// Copies `data` (any contiguous buffer) into one message and publishes it. A full ring
    /// raises FullError, or with `timeout` waits for room.
    #[pyo3(signature = (data, type_id = 0, *, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        type_id: u32,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let deadline = deadline(timeout)?;
        let mut end = self.state()?;
        let producer = producer(&mut end)?;
        with_bytes(data, |raw| {
            // Each slice is taken with the GIL held and dropped before any wait releases it.
            let first_try = producer.send(type_id, raw.all(py));
            match first_try {
                Ok(()) => {}
                Err(Error::Full { .. }) if timeout.is_some() => {
                    wait_for_room(py, producer, raw.len(), deadline)?;
                    producer.send(type_id, raw.all(py)).map_err(to_py)?;
                }
                Err(other) => return Err(to_py(other)),
            }
            producer.flush();
            Ok(())
        })
    }

    /// Sends `data` as consecutive records of `record_size` bytes, one message each, in one
    /// call: `type_id` is one int for all, or one per record (a sequence of ints, or a buffer
    /// of uint32). Waits for room as needed (GIL released), for ever or up to `timeout`
    /// seconds; publishes at the end unless `flush=False`. Returns the number of records.
    #[pyo3(signature = (data, record_size, type_id = None, *, timeout = None, flush = true))]
    fn send_batch(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        record_size: usize,
        type_id: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        flush: bool,
    ) -> PyResult<usize> {
        if record_size == 0 {
            return Err(PyValueError::new_err("record_size must be > 0"));
        }
        let deadline = deadline(timeout)?;
        let mut end = self.state()?;
        let producer = producer(&mut end)?;
        with_bytes(data, |raw| {
            if raw.len() % record_size != 0 {
                return Err(PyValueError::new_err(format!(
                    "data is {} bytes, not a whole number of {record_size}-byte records",
                    raw.len()
                )));
            }
            let count = raw.len() / record_size;
            let type_ids = TypeIds::new(type_id, count)?;
            for index in 0..count {
                let tid = type_ids.get(index);
                // Slices are taken with the GIL held, never kept across a wait.
                let start = index * record_size;
                // Batched: published every 32 records (and on a full ring), then at the end.
                let first_try = producer.send_unflushed(tid, raw.get(py, start, record_size));
                match first_try {
                    Ok(()) => {}
                    Err(Error::Full { .. }) => {
                        wait_for_room(py, producer, record_size, deadline).map_err(|e| {
                            annotate(py, e, format!("after {index} of {count} records were sent"))
                        })?;
                        producer
                            .send_unflushed(tid, raw.get(py, start, record_size))
                            .map_err(to_py)?;
                    }
                    Err(other) => {
                        return Err(annotate(
                            py,
                            to_py(other),
                            format!("after {index} of {count} records were sent"),
                        ));
                    }
                }
            }
            if flush {
                producer.flush();
            }
            Ok(count)
        })
    }

    /// Blocks (GIL released, Ctrl-C raises) until a message arrives and returns an RxGuard
    /// over it. `spin_threshold` is accepted for upstream's signature (the ring spins as set
    /// at construction); `timeout` bounds the wait (WaitTimeoutError).
    #[pyo3(signature = (spin_threshold = 10000, *, timeout = None))]
    fn acquire_rx(
        &self,
        py: Python<'_>,
        spin_threshold: u32,
        timeout: Option<f64>,
    ) -> PyResult<RxGuard> {
        let _ = spin_threshold;
        let mut end = self.state()?;
        let (type_id, data) = take_message(py, consumer(&mut end)?, timeout)?;
        Ok(RxGuard {
            lent: Lent::readonly(data),
            type_id,
        })
    }

    /// The next message as `(type_id, bytes)`, waiting for it (what `Bus.__iter__` uses).
    #[pyo3(signature = (*, timeout = None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<(u32, Bound<'py, PyBytes>)> {
        let mut end = self.state()?;
        let consumer = consumer(&mut end)?;
        let deadline = deadline(timeout)?;
        loop {
            if let Some(message) = consumer.try_recv().map_err(to_py)? {
                return Ok((message.type_id(), PyBytes::new(py, message.data())));
            }
            wait_for_message(py, consumer, deadline)?;
        }
    }

    /// Blocks until at least one message is ready, then takes up to `max_msgs` of them as an
    /// RxBatchGuard.
    #[pyo3(signature = (max_msgs = 1024, spin_threshold = 10000, *, timeout = None))]
    fn drain_batch(
        &self,
        py: Python<'_>,
        max_msgs: i64,
        spin_threshold: u32,
        timeout: Option<f64>,
    ) -> PyResult<RxBatchGuard> {
        let _ = spin_threshold;
        if max_msgs <= 0 {
            return Err(PyValueError::new_err("max_msgs must be > 0"));
        }
        let max = usize::try_from(max_msgs).unwrap_or(usize::MAX);
        let deadline = deadline(timeout)?;
        let mut end = self.state()?;
        let consumer = consumer(&mut end)?;
        let mut data = Vec::new();
        let mut items = Vec::new();
        loop {
            consumer
                .drain(max, |message| {
                    items.push((data.len(), message.len(), message.type_id()));
                    data.extend_from_slice(message.data());
                })
                .map_err(to_py)?;
            if !items.is_empty() {
                break;
            }
            wait_for_message(py, consumer, deadline)?;
        }
        Ok(RxBatchGuard {
            lent: Lent::readonly(data),
            items,
        })
    }

    /// Checks `node_id` (0..63, online) as upstream does. The pages are not moved (see the
    /// README: the crate does not expose its mapping for mbind yet).
    fn set_numa_node(&self, node_id: i64) -> PyResult<()> {
        if !(0..64).contains(&node_id) {
            return Err(PyValueError::new_err(format!(
                "node_id must be in [0, 63], got {node_id}"
            )));
        }
        let end = self.state()?;
        if matches!(*end, End::Unset | End::Closed) {
            return Err(not_open(&end));
        }
        let node = format!("/sys/devices/system/node/node{node_id}");
        if !std::path::Path::new(&node).exists() && node_id != 0 {
            return Err(PyOSError::new_err(format!(
                "NUMA node {node_id} is not online ({node} missing)"
            )));
        }
        Ok(())
    }

    /// How this end waits on an empty ring, by name: "adaptive" (the default: spin only where
    /// the next message is likely, from the gaps seen; sleep at once when they are far
    /// apart), "fixed" (spin the whole window, then sleep) or "frugal" (never spin: one
    /// sleep per message, the least CPU). Makes the end the consumer.
    fn set_spin_policy(&self, policy: &str) -> PyResult<()> {
        let policy = match policy {
            "fixed" => SpinPolicy::Fixed,
            "adaptive" => SpinPolicy::Adaptive,
            "frugal" => SpinPolicy::Frugal,
            other => {
                return Err(PyValueError::new_err(format!(
                    "spin policy must be \"fixed\", \"adaptive\" or \"frugal\", got {other:?}"
                )));
            }
        };
        let mut end = self.state()?;
        consumer(&mut end)?.set_spin_policy(policy);
        Ok(())
    }

    /// Records upstream's pure-spin hint (1 or 0). Our consumer's polling is chosen when the
    /// bus is built; see the README.
    fn set_polling_mode(&self, pure_spin: i64) -> PyResult<()> {
        let end = self.state()?;
        if matches!(*end, End::Unset | End::Closed) {
            return Err(not_open(&end));
        }
        self.pure_spin.store(pure_spin != 0, Relaxed);
        Ok(())
    }
}

/// Prefixes an exception's message with where a batch stopped.
fn annotate(py: Python<'_>, error: PyErr, context: String) -> PyErr {
    let kind = error.get_type(py);
    let message = format!("{} ({context})", error.value(py));
    match kind.call1((message,)) {
        Ok(value) => PyErr::from_value(value),
        Err(_) => error,
    }
}

/// The type ids of a batch: one for all, or one per record.
enum TypeIds {
    One(u32),
    Each(Vec<u32>),
}

impl TypeIds {
    fn new(arg: Option<&Bound<'_, PyAny>>, count: usize) -> PyResult<TypeIds> {
        let Some(arg) = arg else {
            return Ok(TypeIds::One(0));
        };
        if let Ok(one) = arg.extract::<u32>() {
            return Ok(TypeIds::One(one));
        }
        let each: Vec<u32> = match typed_u32_buffer(arg) {
            Some(ids) => ids?,
            None => match arg.extract::<Vec<u32>>() {
                Ok(list) => list,
                Err(_) => with_bytes(arg, |raw| {
                    let bytes = raw.all(arg.py());
                    if bytes.len() % 4 != 0 {
                        return Err(PyValueError::new_err(
                            "type_id must be an int, a sequence of ints, or a buffer of uint32",
                        ));
                    }
                    Ok(bytes
                        .chunks_exact(4)
                        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .collect())
                })?,
            },
        };
        if each.len() != count {
            return Err(PyValueError::new_err(format!(
                "{} type ids for {count} records",
                each.len()
            )));
        }
        Ok(TypeIds::Each(each))
    }

    fn get(&self, index: usize) -> u32 {
        match self {
            TypeIds::One(one) => *one,
            TypeIds::Each(each) => each[index],
        }
    }
}

/// The type ids of a buffer whose items are uint32 (a numpy `uint32` array), copied in one
/// go; `None` for anything else. Without it a numpy array would go through the sequence
/// protocol, a numpy scalar per record: 75 ns a record, four times `send_batch`'s own cost.
fn typed_u32_buffer(arg: &Bound<'_, PyAny>) -> Option<PyResult<Vec<u32>>> {
    let buffer = pyo3::buffer::PyBuffer::<u32>::get(arg).ok()?;
    Some(buffer.to_vec(arg.py()))
}

/// A message being written: fill it through the buffer protocol (`memoryview(tx)`), set
/// `actual_size` (and `type_id`), and leave the `with` block to send it; an exception in the
/// block, or a guard dropped unexited, sends nothing.
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
#[derive(Debug)]
pub struct TxGuard {
    bus: Py<TachyonBus>,
    lent: Lent,
    actual_size: AtomicUsize,
    type_id: AtomicU32,
    flush_on_exit: bool,
}

impl TxGuard {
    fn open(
        bus: &Bound<'_, TachyonBus>,
        size: usize,
        type_id: u32,
        flush_on_exit: bool,
        timeout: Option<f64>,
    ) -> PyResult<TxGuard> {
        {
            let mut end = bus.get().state()?;
            make_room(bus.py(), producer(&mut end)?, size, timeout)?;
        }
        Ok(TxGuard {
            bus: bus.clone().unbind(),
            lent: Lent::writable(size),
            actual_size: AtomicUsize::new(0),
            type_id: AtomicU32::new(type_id),
            flush_on_exit,
        })
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        let payload = self.lent.payload(py, self.actual_size.load(Relaxed))?;
        let mut end = self.bus.get().state()?;
        let producer = producer(&mut end)?;
        producer
            .send(self.type_id.load(Relaxed), payload)
            .map_err(to_py)?;
        if self.flush_on_exit {
            producer.flush();
        }
        Ok(())
    }
}

guard_pymethods! {
    impl TxGuard {}
    exit: commit(
        "Dangling memoryview detected: release the buffer before exiting the context (the \
         message was not sent)."
    ),
    buffer: "TxGuard already committed.",
    atomics: [
        /// Payload bytes to send (at most the size acquired); 0 until set.
        actual_size (set_actual_size): usize,
        /// The message's 32-bit type id (route << 16 | msg_type).
        type_id (set_type_id): u32,
    ],
}

/// A received message: read it through the buffer protocol (`memoryview(rx)`, `bytes(rx)`).
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
#[derive(Debug)]
pub struct RxGuard {
    lent: Lent,
    type_id: u32,
}

guard_pymethods! {
    impl RxGuard {
        /// Payload bytes.
        #[getter]
        fn actual_size(&self) -> usize {
            self.lent.len()
        }

        /// The message's 32-bit type id.
        #[getter]
        fn type_id(&self) -> u32 {
            self.type_id
        }
    }
    exit: release(RX_DANGLING),
    buffer: RX_CLOSED,
}

/// `RxBatchGuard`'s and `RxMsgView`'s words for an access after the block.
const BATCH_CLOSED: &str = "Cannot access memory: batch already committed.";

/// Up to `max_msgs` received messages, indexable (`batch[i]` is an RxMsgView).
#[pyclass(frozen, sequence, module = "tachyon_rs._tachyon_rs")]
#[derive(Debug)]
pub struct RxBatchGuard {
    lent: Lent,
    items: Vec<(usize, usize, u32)>,
}

guard_pymethods! {
    impl RxBatchGuard {
        fn __len__(&self) -> usize {
            self.items.len()
        }

        fn __getitem__(slf: &Bound<'_, Self>, index: isize) -> PyResult<RxMsgView> {
            let this = slf.get();
            let len = this.items.len() as isize;
            let i = if index < 0 { index + len } else { index };
            if !(0..len).contains(&i) {
                return Err(PyIndexError::new_err("Batch index out of range."));
            }
            if this.lent.is_done() {
                return Err(PyRuntimeError::new_err(
                    "Cannot access messages: batch already committed.",
                ));
            }
            Ok(RxMsgView {
                batch: slf.clone().unbind(),
                index: i as usize,
            })
        }
    }
    exit: release(
        "Dangling memoryview detected in batch: release before exiting context."
    ),
}

/// One message of a batch: buffer protocol and DLPack (`numpy.from_dlpack(view)`,
/// `torch.from_dlpack(view)`: a 1-D uint8 tensor).
#[pyclass(frozen, module = "tachyon_rs._tachyon_rs")]
#[derive(Debug)]
pub struct RxMsgView {
    batch: Py<RxBatchGuard>,
    index: usize,
}

fn release_batch_export(owner: &Bound<'_, PyAny>) {
    if let Ok(batch) = owner.cast::<RxBatchGuard>() {
        batch.get().lent.release();
    }
}

#[pymethods]
impl RxMsgView {
    /// Payload bytes.
    #[getter]
    fn actual_size(&self, py: Python<'_>) -> usize {
        self.batch.bind(py).get().items[self.index].1
    }

    /// The message's 32-bit type id.
    #[getter]
    fn type_id(&self, py: Python<'_>) -> u32 {
        self.batch.bind(py).get().items[self.index].2
    }

    #[pyo3(signature = (stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<&Bound<'py, PyAny>>,
        max_version: Option<&Bound<'py, PyAny>>,
        dl_device: Option<&Bound<'py, PyAny>>,
        copy: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = (stream, max_version, dl_device, copy);
        let batch = self.batch.bind(py);
        let this = batch.get();
        if this.lent.is_done() {
            return Err(PyRuntimeError::new_err(BATCH_CLOSED));
        }
        let (start, len, _) = this.items[self.index];
        this.lent
            .dlpack(batch.as_any(), start, len, release_batch_export)
    }

    fn __dlpack_device__(&self) -> (i32, i32) {
        (1, 0)
    }

    /// # Safety
    /// Called by Python's buffer protocol with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        let batch = this.batch.bind(slf.py()).get();
        let (start, len, _) = batch.items[this.index];
        // SAFETY: view comes from Python; the bytes live in the batch, which this view object
        // (held by the buffer view) keeps alive; the range is the one `drain_batch` recorded
        // as it appended the message, so it lies inside the batch's buffer.
        unsafe {
            batch
                .lent
                .export(slf.as_any(), view, flags, Some((start, len)), BATCH_CLOSED)
        }
    }

    /// # Safety
    /// Called by Python's buffer protocol.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        Python::attach(|py| self.batch.bind(py).get().lent.release());
    }
}

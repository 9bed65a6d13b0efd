//! The SPSC bus: `tachyon_bus_*`, `tachyon_acquire_*`, `tachyon_commit_*`, batches, flush and
//! state.
//!
//! A handle holds one end of a `tachyon_ring::Bus`. Its role is fixed by the first call that
//! needs one: a transmit call (`tachyon_acquire_tx`) makes it the producer, a receive call the
//! consumer; the other role's calls then fail (NULL, 0 or `TACHYON_ERR_SYSTEM`). Everything
//! an end holds between two calls (a reserved slot, a received message, a batch) is kept in
//! the handle, behind one mutex per handle.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr::{self, NonNull};
use std::sync::{Mutex, MutexGuard};

use tachyon_ring::{Batch, Bus, Consumer, Message, Producer, RingState, WriteSlot};

use crate::handle::{Life, code, ffi, padded_payload, path_from};
use crate::types::{tachyon_error_t, tachyon_msg_view_t, tachyon_state_t};

use tachyon_error_t::*;

/// An SPSC bus handle (opaque to C). Created by `tachyon_bus_listen` or
/// `tachyon_bus_connect` with one reference; `tachyon_bus_ref` adds one and
/// `tachyon_bus_destroy` drops one, closing the bus with the last.
pub struct tachyon_bus_t {
    life: Life,
    state: RingState,
    side: Mutex<Side>,
}

impl std::fmt::Debug for tachyon_bus_t {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("tachyon_bus_t")
            .field("life", &self.life)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Which end the handle has become.
enum Side {
    /// No role yet: the bus as the handshake left it, and a polling mode set before the
    /// first receive.
    Unused {
        bus: Box<Bus>,
        pure_spin: bool,
    },
    Tx(Tx),
    Rx(Rx),
    Closed,
}

/// The producing end and the slot reserved in it, if any.
struct Tx {
    /// From `Box::into_raw`; freed by `Drop` after `slot`, which borrows it.
    producer: NonNull<Producer>,
    slot: Option<WriteSlot<'static>>,
}

/// The consuming end and what it holds between calls.
struct Rx {
    /// From `Box::into_raw`; freed by `Drop` after `held`, which borrows it.
    consumer: NonNull<Consumer>,
    held: Held,
    /// A polling mode asked for while something was held, applied at the next receive.
    pure_spin: Option<bool>,
}

enum Held {
    Nothing,
    One(Message<'static>),
    Batch(Batch<'static>),
}

// SAFETY: `Tx` owns the producer behind its pointer (a `Box` turned raw) and the slot that
// borrows it; both are `Send`, and they move between threads together, behind the handle's
// mutex.
unsafe impl Send for Tx {}
// SAFETY: as for `Tx`: the consumer and the message or batch borrowing it move together.
unsafe impl Send for Rx {}

impl Tx {
    /// The producer, while no slot borrows it.
    fn producer(&mut self) -> &'static mut Producer {
        debug_assert!(self.slot.is_none());
        // SAFETY: the pointer came from `Box::into_raw` and is freed only in `Drop`; no slot
        // holds a borrow of it (every caller drops or checks `slot` first), and the handle's
        // mutex makes this the only use. The `'static` is the borrow a stored slot keeps; it
        // ends when the slot is dropped, before the producer is freed.
        unsafe { &mut *self.producer.as_ptr() }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        self.slot = None;
        // SAFETY: from `Box::into_raw` in `Side::tx`; the only borrow (the slot) is gone.
        drop(unsafe { Box::from_raw(self.producer.as_ptr()) });
    }
}

impl Rx {
    /// The consumer, while nothing borrows it, with a pending polling mode applied.
    fn consumer(&mut self) -> &'static mut Consumer {
        debug_assert!(matches!(self.held, Held::Nothing));
        // SAFETY: as in `Tx::producer`: from `Box::into_raw`, freed only in `Drop`, and no
        // message or batch borrows it now (every caller checks `held` first).
        let consumer = unsafe { &mut *self.consumer.as_ptr() };
        if let Some(pure_spin) = self.pure_spin.take() {
            consumer.set_pure_spin(pure_spin);
        }
        consumer
    }
}

impl Drop for Rx {
    fn drop(&mut self) {
        self.held = Held::Nothing;
        // SAFETY: from `Box::into_raw` in `Side::rx`; the only borrow (`held`) is gone.
        drop(unsafe { Box::from_raw(self.consumer.as_ptr()) });
    }
}

impl Side {
    /// The producing end, taking the role if the handle has none yet.
    fn tx(&mut self) -> Option<&mut Tx> {
        if let Side::Unused { .. } = self {
            let Side::Unused { bus, .. } = std::mem::replace(self, Side::Closed) else {
                unreachable!("matched above");
            };
            let producer = NonNull::from(Box::leak(Box::new(bus.into_producer())));
            *self = Side::Tx(Tx {
                producer,
                slot: None,
            });
        }
        match self {
            Side::Tx(tx) => Some(tx),
            _ => None,
        }
    }

    /// The consuming end, taking the role if the handle has none yet.
    fn rx(&mut self) -> Option<&mut Rx> {
        if let Side::Unused { .. } = self {
            let Side::Unused { bus, pure_spin } = std::mem::replace(self, Side::Closed) else {
                unreachable!("matched above");
            };
            let consumer = NonNull::from(Box::leak(Box::new(bus.into_consumer())));
            *self = Side::Rx(Rx {
                consumer,
                held: Held::Nothing,
                pure_spin: Some(pure_spin),
            });
        }
        match self {
            Side::Rx(rx) => Some(rx),
            _ => None,
        }
    }
}

/// The live handle behind `bus`, or `None` for NULL and destroyed handles.
///
/// # Safety
/// `bus` is NULL or a handle this library returned (never freed: see `Life`).
unsafe fn live<'a>(bus: *const tachyon_bus_t) -> Option<&'a tachyon_bus_t> {
    // SAFETY: the caller's promise; handles are never freed, so a destroyed one still reads.
    let handle = unsafe { bus.as_ref() }?;
    handle.life.is_live().then_some(handle)
}

impl tachyon_bus_t {
    fn new(bus: Bus) -> *mut tachyon_bus_t {
        let handle = tachyon_bus_t {
            life: Life::new(),
            state: bus.ring_state(),
            side: Mutex::new(Side::Unused {
                bus: Box::new(bus),
                pure_spin: false,
            }),
        };
        Box::into_raw(Box::new(handle))
    }

    /// The side, locked; `None` if a panic poisoned it.
    fn side(&self) -> Option<MutexGuard<'_, Side>> {
        self.side.lock().ok()
    }
}

/// Runs `body` on the live handle's locked side; `fallback` for NULL, destroyed or poisoned
/// handles (`None` from [`live`]) and for panics.
fn with_side<T: Copy>(
    handle: Option<&tachyon_bus_t>,
    fallback: T,
    body: impl FnOnce(&tachyon_bus_t, &mut Side) -> T,
) -> T {
    ffi(fallback, || {
        let Some(handle) = handle else {
            return fallback;
        };
        let Some(mut side) = handle.side() else {
            return fallback;
        };
        body(handle, &mut side)
    })
}

/// An acquire fence of the calling thread (`atomic_thread_fence(memory_order_acquire)`), as
/// upstream's.
#[unsafe(no_mangle)]
pub extern "C" fn tachyon_memory_barrier_acquire() {
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
}

/// Creates an SPSC bus of `capacity` ring bytes (a power of two of at least 64) at
/// `socket_path`, blocks until one peer connects, and stores its handle in `*out_bus`.
///
/// Returns `TACHYON_ERR_INVALID_SZ` for a NULL argument or a bad capacity,
/// `TACHYON_ERR_INTERRUPTED` when a signal interrupts the wait for the peer (the socket file is
/// removed; check your signals and listen again, as upstream's Python binding does), a
/// shared-memory or network error otherwise.
///
/// # Safety
/// `socket_path` is NULL or a NUL-terminated string; `out_bus` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_bus_listen(
    socket_path: *const c_char,
    capacity: usize,
    out_bus: *mut *mut tachyon_bus_t,
) -> tachyon_error_t {
    ffi(TACHYON_ERR_SYSTEM, || {
        // SAFETY: the caller's promise about `socket_path`.
        let Some(path) = (unsafe { path_from(socket_path) }) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        if out_bus.is_null() || capacity == 0 {
            return TACHYON_ERR_INVALID_SZ;
        }
        match Bus::options()
            .interruptible_listen(true)
            .listen(&path, capacity)
        {
            Ok(bus) => {
                // SAFETY: `out_bus` is non-NULL and writable (the caller's promise).
                unsafe { out_bus.write(tachyon_bus_t::new(bus)) };
                TACHYON_SUCCESS
            }
            Err(error) => code(&error),
        }
    })
}

/// Connects to the SPSC bus listening at `socket_path` (no retry when nobody listens) and
/// stores its handle in `*out_bus`.
///
/// # Safety
/// As for [`tachyon_bus_listen`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_bus_connect(
    socket_path: *const c_char,
    out_bus: *mut *mut tachyon_bus_t,
) -> tachyon_error_t {
    ffi(TACHYON_ERR_SYSTEM, || {
        // SAFETY: the caller's promise about `socket_path`.
        let Some(path) = (unsafe { path_from(socket_path) }) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        if out_bus.is_null() {
            return TACHYON_ERR_INVALID_SZ;
        }
        match Bus::connect(&path) {
            Ok(bus) => {
                // SAFETY: `out_bus` is non-NULL and writable (the caller's promise).
                unsafe { out_bus.write(tachyon_bus_t::new(bus)) };
                TACHYON_SUCCESS
            }
            Err(error) => code(&error),
        }
    })
}

/// Adds a reference to `bus` (any thread). NULL and destroyed handles are ignored.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_bus_ref(bus: *mut tachyon_bus_t) {
    ffi((), || {
        // SAFETY: the caller's promise.
        if let Some(handle) = unsafe { live(bus) } {
            handle.life.acquire();
        }
    })
}

/// Drops a reference to `bus` (any thread); the last one closes the bus: a held slot is
/// rolled back, held messages are released, the rings are unmapped. NULL, and handles
/// already destroyed, are ignored.
///
/// # Safety
/// `bus` is NULL or a handle from this library; no call on it runs concurrently with the
/// destroy of its last reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_bus_destroy(bus: *mut tachyon_bus_t) {
    ffi((), || {
        // SAFETY: the caller's promise.
        let Some(handle) = (unsafe { live(bus) }) else {
            return;
        };
        if handle.life.release() {
            let closed = match handle.side.lock() {
                Ok(mut side) => std::mem::replace(&mut *side, Side::Closed),
                Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), Side::Closed),
            };
            drop(closed);
        }
    })
}

/// Checks `node_id` as upstream does (0..64) and returns `TACHYON_SUCCESS`; the pages are
/// not moved (see the crate's README for this difference).
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_bus_set_numa_node(
    bus: *const tachyon_bus_t,
    node_id: c_int,
) -> tachyon_error_t {
    ffi(TACHYON_ERR_SYSTEM, || {
        // SAFETY: the caller's promise.
        if unsafe { live(bus) }.is_none() {
            return TACHYON_ERR_NULL_PTR;
        }
        if !(0..64).contains(&node_id) {
            return TACHYON_ERR_INVALID_SZ;
        }
        TACHYON_SUCCESS
    })
}

/// Reserves a slot for up to `max_payload_size` bytes and returns where to write them, or
/// NULL (ring full, payload larger than the ring, NULL handle, a consumer's handle). A slot
/// still held from an earlier acquire is rolled back first.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_acquire_tx(
    bus: *mut tachyon_bus_t,
    max_payload_size: usize,
) -> *mut c_void {
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, ptr::null_mut(), |handle, side| {
        let Some(tx) = side.tx() else {
            return ptr::null_mut();
        };
        tx.slot = None;
        let Some(max_len) = padded_payload(max_payload_size) else {
            return ptr::null_mut();
        };
        match tx.producer().reserve(max_len) {
            Ok(mut slot) => {
                let payload = slot.as_mut_ptr().cast::<c_void>();
                tx.slot = Some(slot);
                payload
            }
            Err(error) => {
                handle.life.note(&error);
                ptr::null_mut()
            }
        }
    })
}

/// Commits the acquired slot as a message of `actual_payload_size` bytes and `type_id`. It is
/// published with the 32nd commit or at `tachyon_flush`, as upstream's. Without an acquired
/// slot, or for a size beyond it (the slot is then dropped), `TACHYON_ERR_SYSTEM`.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_commit_tx(
    bus: *mut tachyon_bus_t,
    actual_payload_size: usize,
    type_id: u32,
) -> tachyon_error_t {
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, TACHYON_ERR_NULL_PTR, |_, side| {
        let Some(slot) = side.tx().and_then(|tx| tx.slot.take()) else {
            return TACHYON_ERR_SYSTEM;
        };
        match slot.commit_unflushed(actual_payload_size, type_id) {
            Ok(()) => TACHYON_SUCCESS,
            Err(_) => TACHYON_ERR_SYSTEM,
        }
    })
}

/// Abandons the acquired slot: nothing of it reaches the consumer. Without one,
/// `TACHYON_ERR_SYSTEM`.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rollback_tx(bus: *mut tachyon_bus_t) -> tachyon_error_t {
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, TACHYON_ERR_NULL_PTR, |_, side| {
        match side.tx().and_then(|tx| tx.slot.take()) {
            Some(slot) => {
                slot.rollback();
                TACHYON_SUCCESS
            }
            None => TACHYON_ERR_SYSTEM,
        }
    })
}

/// How a receive waits.
#[derive(Clone, Copy)]
enum Wait {
    /// Never.
    No,
    /// Polls up to this many times (0: until a message or a fatal ring).
    Spin(u32),
    /// Spins this many units, then sleeps; a signal ends the sleep (NULL).
    Block(u32),
}

/// The receives: one message, held until `tachyon_commit_rx`.
///
/// # Safety
/// `bus` is NULL or a handle from this library; the out-pointers are NULL or writable.
unsafe fn acquire_one(
    bus: *mut tachyon_bus_t,
    out_type_id: *mut u32,
    out_actual_size: *mut usize,
    wait: Wait,
) -> *const c_void {
    if out_type_id.is_null() || out_actual_size.is_null() {
        return ptr::null();
    }
    let found = |message: &Message<'static>| -> *const c_void {
        // SAFETY: both out-pointers are non-NULL and writable (the caller's promise).
        unsafe {
            out_type_id.write(message.type_id());
            out_actual_size.write(message.len());
        }
        message.data().as_ptr().cast()
    };
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, ptr::null(), |handle, side| {
        let Some(rx) = side.rx() else {
            return ptr::null();
        };
        match &rx.held {
            // Upstream hands out the same message again until it is committed.
            Held::One(message) => return found(message),
            Held::Batch(_) => return ptr::null(),
            Held::Nothing => {}
        }
        let received = match wait {
            Wait::No => rx.consumer().try_recv().transpose(),
            Wait::Spin(max_spins) => {
                let mut spins = 0u32;
                loop {
                    if let Some(result) = rx.consumer().try_recv().transpose() {
                        break Some(result);
                    }
                    if handle.state.is_fatal() || (max_spins != 0 && spins >= max_spins) {
                        break None;
                    }
                    spins += 1;
                    std::hint::spin_loop();
                }
            }
            Wait::Block(spin_threshold) => {
                let consumer = rx.consumer();
                consumer.set_spin_threshold(spin_threshold);
                Some(consumer.recv_interruptible(None))
            }
        };
        match received {
            Some(Ok(message)) => {
                let payload = found(&message);
                rx.held = Held::One(message);
                payload
            }
            Some(Err(error)) => {
                handle.life.note(&error);
                ptr::null()
            }
            None => ptr::null(),
        }
    })
}

/// The next message if one is published (never waits): its payload, with its type id and
/// size in the out-parameters; NULL when there is none. The message is held until
/// `tachyon_commit_rx` (acquiring again before that returns it again).
///
/// # Safety
/// `bus` is NULL or a handle from this library; the out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_acquire_rx(
    bus: *mut tachyon_bus_t,
    out_type_id: *mut u32,
    out_actual_size: *mut usize,
) -> *const c_void {
    // SAFETY: the caller's promise, passed on.
    unsafe { acquire_one(bus, out_type_id, out_actual_size, Wait::No) }
}

/// Like [`tachyon_acquire_rx`], polling up to `max_spins` times (0: until a message arrives
/// or the ring turns fatal).
///
/// # Safety
/// As for [`tachyon_acquire_rx`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_acquire_rx_spin(
    bus: *mut tachyon_bus_t,
    out_type_id: *mut u32,
    out_actual_size: *mut usize,
    max_spins: u32,
) -> *const c_void {
    // SAFETY: the caller's promise, passed on.
    unsafe { acquire_one(bus, out_type_id, out_actual_size, Wait::Spin(max_spins)) }
}

/// Like [`tachyon_acquire_rx`], waiting for a message: spin (`spin_threshold` units), then
/// sleep on the futex. NULL when a signal interrupts the sleep (check your signals and call
/// again), when the ring turns fatal, or when the producer's process has exited and every
/// message it published was taken (then `tachyon_get_state` says
/// `TACHYON_STATE_FATAL_ERROR`).
///
/// # Safety
/// As for [`tachyon_acquire_rx`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_acquire_rx_blocking(
    bus: *mut tachyon_bus_t,
    out_type_id: *mut u32,
    out_actual_size: *mut usize,
    spin_threshold: u32,
) -> *const c_void {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        acquire_one(
            bus,
            out_type_id,
            out_actual_size,
            Wait::Block(spin_threshold),
        )
    }
}

/// Releases the message held by the last receive. `TACHYON_SUCCESS` also when none is held
/// (as upstream).
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_commit_rx(bus: *mut tachyon_bus_t) -> tachyon_error_t {
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, TACHYON_ERR_NULL_PTR, |_, side| {
        if let Some(rx) = side.rx() {
            if let Held::One(_) = rx.held {
                rx.held = Held::Nothing;
            }
        }
        TACHYON_SUCCESS
    })
}

/// The batch receives: fills `out_views` and holds the batch.
///
/// # Safety
/// `bus` is NULL or a handle from this library; `out_views` is NULL or has room for
/// `max_msgs` views.
unsafe fn acquire_batch(
    bus: *mut tachyon_bus_t,
    out_views: *mut tachyon_msg_view_t,
    max_msgs: usize,
    wait: Option<u32>,
) -> usize {
    if out_views.is_null() || max_msgs == 0 {
        return 0;
    }
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, 0, |handle, side| {
        let Some(rx) = side.rx() else {
            return 0;
        };
        if !matches!(rx.held, Held::Nothing) {
            return 0;
        }
        let consumer = rx.consumer();
        let batch = match wait {
            None => consumer.try_batch(max_msgs),
            Some(spin_threshold) => {
                consumer.set_spin_threshold(spin_threshold);
                consumer.recv_batch_interruptible(max_msgs, None)
            }
        };
        let batch = match batch {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => return 0,
            Err(error) => {
                handle.life.note(&error);
                return 0;
            }
        };
        // SAFETY: `out_views` has room for `max_msgs` views (the caller's promise), and
        // the batch holds at most `max_msgs` messages.
        let views = unsafe { std::slice::from_raw_parts_mut(out_views, batch.len()) };
        for (view, message) in views.iter_mut().zip(batch.iter()) {
            *view = tachyon_msg_view_t {
                ptr: message.data().as_ptr().cast(),
                actual_size: message.data().len(),
                reserved_: message.slot_len() as usize,
                type_id: message.type_id(),
                ..tachyon_msg_view_t::EMPTY
            };
        }
        let count = batch.len();
        rx.held = Held::Batch(batch);
        count
    })
}

/// Up to `max_msgs` messages already published, in place (never waits): fills `out_views`
/// and returns how many; 0 when none. They are held until `tachyon_commit_rx_batch`.
///
/// # Safety
/// `bus` is NULL or a handle from this library; `out_views` is NULL or has room for
/// `max_msgs` views.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_acquire_rx_batch(
    bus: *mut tachyon_bus_t,
    out_views: *mut tachyon_msg_view_t,
    max_msgs: usize,
) -> usize {
    // SAFETY: the caller's promise, passed on.
    unsafe { acquire_batch(bus, out_views, max_msgs, None) }
}

/// Like [`tachyon_acquire_rx_batch`], waiting for at least one message as
/// [`tachyon_acquire_rx_blocking`] does; 0 when a signal interrupts the sleep or the ring is
/// dead.
///
/// # Safety
/// As for [`tachyon_acquire_rx_batch`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_drain_batch(
    bus: *mut tachyon_bus_t,
    out_views: *mut tachyon_msg_view_t,
    max_msgs: usize,
    spin_threshold: u32,
) -> usize {
    // SAFETY: the caller's promise, passed on.
    unsafe { acquire_batch(bus, out_views, max_msgs, Some(spin_threshold)) }
}

/// Releases the first `count` messages of the held batch (all of them for its whole
/// length); the rest are received again. `TACHYON_SUCCESS` for `count` 0 and when no batch
/// is held (as upstream); `TACHYON_ERR_NULL_PTR` for a NULL handle, or NULL `views` with a
/// non-zero `count`.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_commit_rx_batch(
    bus: *mut tachyon_bus_t,
    views: *const tachyon_msg_view_t,
    count: usize,
) -> tachyon_error_t {
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, TACHYON_ERR_NULL_PTR, |_, side| {
        if count == 0 {
            return TACHYON_SUCCESS;
        }
        if views.is_null() {
            return TACHYON_ERR_NULL_PTR;
        }
        if let Some(rx) = side.rx() {
            if let Held::Batch(_) = rx.held {
                let Held::Batch(batch) = std::mem::replace(&mut rx.held, Held::Nothing) else {
                    unreachable!("matched above");
                };
                batch.commit_first(count);
            }
        }
        TACHYON_SUCCESS
    })
}

/// Pure-spin mode (`pure_spin` non-zero) or not, for this handle's consumer: it never sleeps,
/// and tells producers so through the shared futex word. Applies at once, or at the next
/// receive when a message or batch is held; a producer's handle ignores it.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_bus_set_polling_mode(bus: *const tachyon_bus_t, pure_spin: c_int) {
    let wanted = pure_spin != 0;
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, (), |_, side| match side {
        Side::Unused { pure_spin, .. } => *pure_spin = wanted,
        Side::Rx(rx) => {
            rx.pure_spin = Some(wanted);
            if let Held::Nothing = rx.held {
                rx.consumer();
            }
        }
        Side::Tx(_) | Side::Closed => {}
    })
}

/// Publishes every committed message now (and wakes a sleeping consumer). Does nothing while
/// a slot is acquired, or on a consumer's handle.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_flush(bus: *mut tachyon_bus_t) {
    // SAFETY: `bus` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(bus) };
    with_side(handle, (), |_, side| {
        if let Side::Tx(tx) = side {
            if tx.slot.is_none() {
                tx.producer().flush();
            }
        }
    })
}

/// The ring's state (any thread, never blocks): the shared state word, or
/// `TACHYON_STATE_FATAL_ERROR` once the peer's process is known to have exited;
/// `TACHYON_STATE_UNKNOWN` for NULL and destroyed handles.
///
/// # Safety
/// `bus` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_get_state(bus: *const tachyon_bus_t) -> tachyon_state_t {
    ffi(tachyon_state_t::TACHYON_STATE_UNKNOWN, || {
        // SAFETY: the caller's promise.
        let Some(handle) = (unsafe { live(bus) }) else {
            return tachyon_state_t::TACHYON_STATE_UNKNOWN;
        };
        if handle.life.peer_gone() {
            return tachyon_state_t::TACHYON_STATE_FATAL_ERROR;
        }
        tachyon_state_t::from_word(handle.state.load())
    })
}

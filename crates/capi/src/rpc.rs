//! The RPC bus: `tachyon_rpc_*`.
//!
//! The listener is the callee (it serves requests and replies), the connector the caller,
//! as in upstream's convention; calls of the other role fail (NULL or `TACHYON_ERR_SYSTEM`).
//! Between calls each end may hold one thing in each direction, as upstream's: the caller an
//! acquired call and a reply, the callee a request and an acquired reply (written in place
//! while the request is read).
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::time::Duration;

use tachyon_ring::{
    CallSlot, Callee, Caller, Calls, Replies, Reply, ReplySlot, Request, RingState, RpcBus,
};

use crate::handle::{Life, code, ffi, padded_payload, path_from};
use crate::types::{tachyon_error_t, tachyon_state_t};

use tachyon_error_t::*;

/// An RPC bus handle (opaque to C). Created by `tachyon_rpc_listen` (the callee) or
/// `tachyon_rpc_connect` (the caller); `tachyon_rpc_destroy` closes it.
pub struct tachyon_rpc_bus_t {
    life: Life,
    /// The request (forward) and reply (reverse) rings' state words.
    states: [RingState; 2],
    end: Mutex<End>,
}

impl std::fmt::Debug for tachyon_rpc_bus_t {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("tachyon_rpc_bus_t")
            .field("life", &self.life)
            .field("states", &self.states)
            .finish_non_exhaustive()
    }
}

enum End {
    Caller(CallerEnd),
    Callee(CalleeEnd),
    Closed,
}

/// The caller, split into its two directions so that a call can be acquired or sent while a
/// reply is held (as upstream allows), and what each holds.
struct CallerEnd {
    /// From `Box::into_raw`; freed by `Drop` last: `calls` and `replies` borrow it.
    caller: NonNull<Caller>,
    /// `Caller::split`'s halves, boxed and turned raw so that `call` and `reply` can borrow
    /// them; freed by `Drop` after those.
    calls: NonNull<Calls<'static>>,
    replies: NonNull<Replies<'static>>,
    call: Option<CallSlot<'static>>,
    reply: Option<Reply<'static>>,
    pure_spin: bool,
}

/// The callee and what it holds: a request (from `tachyon_rpc_serve`), a reply being
/// written (from `tachyon_rpc_acquire_reply_tx`), or both, the reply then borrowing the
/// request (so a request can be answered in place while it is still read).
struct CalleeEnd {
    /// From `Box::into_raw`; freed by `Drop` after `request` and `reply`, which borrow it.
    callee: NonNull<Callee>,
    /// The held request, boxed and turned raw so that `reply` can borrow it; freed by
    /// `release_request`.
    request: Option<NonNull<Request<'static>>>,
    /// `tachyon_rpc_commit_serve` came while `reply` borrowed the request: the request is
    /// released as soon as the reply is committed or rolled back.
    request_released: bool,
    reply: Option<ReplySlot<'static>>,
    pure_spin: bool,
}

// SAFETY: the end owns what its pointer points to (a `Box` turned raw) and the slot or
// message borrowing it; all are `Send`, and move between threads together, behind the
// handle's mutex.
unsafe impl Send for CallerEnd {}
// SAFETY: as for `CallerEnd`.
unsafe impl Send for CalleeEnd {}

impl CallerEnd {
    fn new(caller: Caller) -> CallerEnd {
        let caller = NonNull::from(Box::leak(Box::new(caller)));
        // SAFETY: just leaked; the halves borrow it until `Drop` frees them, then it.
        let (calls, replies) = unsafe { &mut *caller.as_ptr() }.split();
        CallerEnd {
            caller,
            calls: NonNull::from(Box::leak(Box::new(calls))),
            replies: NonNull::from(Box::leak(Box::new(replies))),
            call: None,
            reply: None,
            pure_spin: false,
        }
    }

    /// The calling direction, while no acquired call borrows it.
    fn calls(&mut self) -> &'static mut Calls<'static> {
        debug_assert!(self.call.is_none());
        // SAFETY: from `Box::into_raw` in `new`, freed only in `Drop`; no call slot borrows
        // it now (callers drop or check `call` first) and the handle's mutex makes this the
        // only use. The `'static` is the borrow a held call slot keeps, ended before the free.
        unsafe { &mut *self.calls.as_ptr() }
    }

    /// The reply direction, while no held reply borrows it.
    fn replies(&mut self) -> &'static mut Replies<'static> {
        debug_assert!(self.reply.is_none());
        // SAFETY: as in `calls`, for `reply`.
        unsafe { &mut *self.replies.as_ptr() }
    }
}

impl Drop for CallerEnd {
    fn drop(&mut self) {
        self.call = None;
        self.reply = None;
        // SAFETY: all three from `Box::into_raw` (`new`); what borrowed the halves is gone,
        // and the halves (which borrow the caller) go before it.
        unsafe {
            drop(Box::from_raw(self.calls.as_ptr()));
            drop(Box::from_raw(self.replies.as_ptr()));
            drop(Box::from_raw(self.caller.as_ptr()));
        }
    }
}

impl CalleeEnd {
    fn holds_nothing(&self) -> bool {
        self.request.is_none() && self.reply.is_none()
    }

    /// The callee, while nothing borrows it.
    fn callee(&mut self) -> &'static mut Callee {
        debug_assert!(self.holds_nothing());
        // SAFETY: as in `CallerEnd::caller`.
        unsafe { &mut *self.callee.as_ptr() }
    }

    /// The held request, while no reply borrows it.
    fn request(&mut self) -> Option<&'static mut Request<'static>> {
        debug_assert!(self.reply.is_none());
        // SAFETY: from `Box::into_raw` in `tachyon_rpc_serve`, freed only by
        // `release_request`; no reply slot borrows it now (callers check `reply` first) and
        // the handle's mutex makes this the only use. The `'static` is the borrow a reply
        // slot keeps, ended before the request is freed.
        self.request
            .map(|request| unsafe { &mut *request.as_ptr() })
    }

    /// Releases the held request, unanswered or not, without sending anything on its behalf
    /// (upstream's callee sends nothing either).
    fn release_request(&mut self) {
        debug_assert!(self.reply.is_none());
        self.request_released = false;
        if let Some(request) = self.request.take() {
            // SAFETY: from `Box::into_raw` in `tachyon_rpc_serve`; no reply borrows it now.
            unsafe { Box::from_raw(request.as_ptr()) }.defer();
        }
    }

    /// Drops the reply slot (rolled back unless committed), and releases a request whose
    /// commit waited for it.
    fn end_reply(&mut self) {
        self.reply = None;
        if self.request_released {
            self.release_request();
        }
    }
}

impl Drop for CalleeEnd {
    fn drop(&mut self) {
        self.reply = None;
        self.release_request();
        // SAFETY: from `Box::into_raw` in `tachyon_rpc_listen`; its borrowers are gone.
        drop(unsafe { Box::from_raw(self.callee.as_ptr()) });
    }
}

/// The live handle behind `rpc`, or `None` for NULL and destroyed handles.
///
/// # Safety
/// `rpc` is NULL or a handle this library returned (never freed).
unsafe fn live<'a>(rpc: *const tachyon_rpc_bus_t) -> Option<&'a tachyon_rpc_bus_t> {
    // SAFETY: the caller's promise; handles are never freed, so a destroyed one still reads.
    let handle = unsafe { rpc.as_ref() }?;
    handle.life.is_live().then_some(handle)
}

/// Runs `body` on the live handle's locked end; `fallback` for NULL, destroyed or poisoned
/// handles and for panics.
fn with_end<T: Copy>(
    handle: Option<&tachyon_rpc_bus_t>,
    fallback: T,
    body: impl FnOnce(&tachyon_rpc_bus_t, &mut End) -> T,
) -> T {
    ffi(fallback, || {
        let Some(handle) = handle else {
            return fallback;
        };
        let Ok(mut end) = handle.end.lock() else {
            return fallback;
        };
        body(handle, &mut end)
    })
}

fn new_handle(states: [RingState; 2], end: End) -> *mut tachyon_rpc_bus_t {
    Box::into_raw(Box::new(tachyon_rpc_bus_t {
        life: Life::new(),
        states,
        end: Mutex::new(end),
    }))
}

/// An RPC message type: upstream puts it in the low 16 bits of the type id (route 0).
fn msg_type(msg_type: u32) -> Option<u16> {
    u16::try_from(msg_type).ok()
}

/// Creates an RPC bus (request ring of `cap_fwd` bytes, reply ring of `cap_rev`) at
/// `socket_path`, blocks until one caller connects, and stores the callee's handle in
/// `*out_rpc`. A signal during the wait for the caller gives `TACHYON_ERR_INTERRUPTED`, as
/// for [`tachyon_bus_listen`](crate::bus::tachyon_bus_listen).
///
/// # Safety
/// `socket_path` is NULL or a NUL-terminated string; `out_rpc` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_listen(
    socket_path: *const c_char,
    cap_fwd: usize,
    cap_rev: usize,
    out_rpc: *mut *mut tachyon_rpc_bus_t,
) -> tachyon_error_t {
    ffi(TACHYON_ERR_SYSTEM, || {
        // SAFETY: the caller's promise about `socket_path`.
        let Some(path) = (unsafe { path_from(socket_path) }) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        if out_rpc.is_null() || cap_fwd == 0 || cap_rev == 0 {
            return TACHYON_ERR_INVALID_SZ;
        }
        match tachyon_ring::Bus::options()
            .interruptible_listen(true)
            .rpc_listen(&path, cap_fwd, cap_rev)
        {
            Ok(callee) => {
                let states = callee.ring_states();
                let end = End::Callee(CalleeEnd {
                    callee: NonNull::from(Box::leak(Box::new(callee))),
                    request: None,
                    request_released: false,
                    reply: None,
                    pure_spin: false,
                });
                // SAFETY: `out_rpc` is non-NULL and writable (the caller's promise).
                unsafe { out_rpc.write(new_handle(states, end)) };
                TACHYON_SUCCESS
            }
            Err(error) => code(&error),
        }
    })
}

/// Connects to the RPC bus listening at `socket_path` (no retry) and stores the caller's
/// handle in `*out_rpc`.
///
/// # Safety
/// As for [`tachyon_rpc_listen`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_connect(
    socket_path: *const c_char,
    out_rpc: *mut *mut tachyon_rpc_bus_t,
) -> tachyon_error_t {
    ffi(TACHYON_ERR_SYSTEM, || {
        // SAFETY: the caller's promise about `socket_path`.
        let Some(path) = (unsafe { path_from(socket_path) }) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        if out_rpc.is_null() {
            return TACHYON_ERR_INVALID_SZ;
        }
        match RpcBus::connect(&path) {
            Ok(caller) => {
                let states = caller.ring_states();
                let end = End::Caller(CallerEnd::new(caller));
                // SAFETY: `out_rpc` is non-NULL and writable (the caller's promise).
                unsafe { out_rpc.write(new_handle(states, end)) };
                TACHYON_SUCCESS
            }
            Err(error) => code(&error),
        }
    })
}

/// Closes the RPC bus (its one reference). NULL and destroyed handles are ignored.
///
/// # Safety
/// `rpc` is NULL or a handle from this library; no other call on it runs concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_destroy(rpc: *mut tachyon_rpc_bus_t) {
    ffi((), || {
        // SAFETY: the caller's promise.
        let Some(handle) = (unsafe { live(rpc) }) else {
            return;
        };
        if handle.life.release() {
            let closed = match handle.end.lock() {
                Ok(mut end) => std::mem::replace(&mut *end, End::Closed),
                Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), End::Closed),
            };
            drop(closed);
        }
    })
}

/// Sends `size` bytes at `payload` as a request of `msg_type` (at most 0xFFFF) and stores
/// its correlation id in `*out_correlation_id`. `TACHYON_ERR_FULL` when the request ring has
/// no room (never waits).
///
/// # Safety
/// `rpc` is NULL or a handle from this library; `payload` is NULL or `size` readable bytes;
/// `out_correlation_id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_call(
    rpc: *mut tachyon_rpc_bus_t,
    payload: *const c_void,
    size: usize,
    msg_type: u32,
    out_correlation_id: *mut u64,
) -> tachyon_error_t {
    if payload.is_null() || out_correlation_id.is_null() {
        return TACHYON_ERR_NULL_PTR;
    }
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, TACHYON_ERR_NULL_PTR, |handle, end| {
        let Some(msg_type) = self::msg_type(msg_type) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        let End::Caller(caller) = end else {
            return TACHYON_ERR_SYSTEM;
        };
        // A call still acquired is abandoned, as upstream's acquire overwrites it.
        caller.call = None;
        // SAFETY: `payload` points to `size` readable bytes (the caller's promise).
        let bytes = unsafe { std::slice::from_raw_parts(payload.cast::<u8>(), size) };
        match caller.calls().call(msg_type, bytes) {
            Ok(id) => {
                // SAFETY: non-NULL and writable (the caller's promise).
                unsafe { out_correlation_id.write(id) };
                TACHYON_SUCCESS
            }
            Err(error) => {
                handle.life.note(&error);
                match code(&error) {
                    TACHYON_ERR_FULL => TACHYON_ERR_FULL,
                    _ => TACHYON_ERR_SYSTEM,
                }
            }
        }
    })
}

/// Waits (spin `spin_threshold` units, then sleep) for the reply to call `correlation_id`
/// and returns its payload, with its size and message type in the out-parameters; held until
/// `tachyon_rpc_commit_rx`. NULL when a signal interrupts the sleep, when a reply to another
/// call arrives (the reply ring is then marked fatal, as upstream does), for id 0, or when
/// the callee's process has exited.
///
/// # Safety
/// `rpc` is NULL or a handle from this library; the out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_wait(
    rpc: *mut tachyon_rpc_bus_t,
    correlation_id: u64,
    out_size: *mut usize,
    out_msg_type: *mut u32,
    spin_threshold: u32,
) -> *const c_void {
    if out_size.is_null() || out_msg_type.is_null() || correlation_id == 0 {
        return ptr::null();
    }
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, ptr::null(), |handle, end| {
        let End::Caller(end) = end else {
            return ptr::null();
        };
        let found = |reply: &Reply<'static>| -> *const c_void {
            // SAFETY: both out-pointers are non-NULL and writable (the caller's promise).
            unsafe {
                out_size.write(reply.data().len());
                out_msg_type.write(u32::from(reply.msg_type()));
            }
            reply.data().as_ptr().cast()
        };
        if let Some(reply) = &end.reply {
            // The reply still held is handed out again (upstream reads the same slot until it
            // is committed); a wait for another call must commit it first.
            return if reply.correlation_id() == correlation_id {
                found(reply)
            } else {
                ptr::null()
            };
        }
        let pure_spin = end.pure_spin;
        let replies = end.replies();
        replies.set_reply_wait(spin_threshold, pure_spin);
        match replies.wait_interruptible(correlation_id) {
            Ok(reply) => {
                let payload = found(&reply);
                end.reply = Some(reply);
                payload
            }
            Err(error) => {
                handle.life.note(&error);
                ptr::null()
            }
        }
    })
}

/// Releases the reply held by `tachyon_rpc_wait`; `TACHYON_SUCCESS` also when none is held
/// (as upstream).
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_commit_rx(rpc: *mut tachyon_rpc_bus_t) -> tachyon_error_t {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, TACHYON_ERR_NULL_PTR, |_, end| {
        if let End::Caller(end) = end {
            end.reply = None;
        }
        TACHYON_SUCCESS
    })
}

/// Waits (spin, then sleep) for the next request and returns its payload, with its
/// correlation id, message type and size in the out-parameters; held until
/// `tachyon_rpc_commit_serve`. NULL when a signal interrupts the sleep, the request ring is
/// dead, or the caller's process has exited.
///
/// # Safety
/// `rpc` is NULL or a handle from this library; the out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_serve(
    rpc: *mut tachyon_rpc_bus_t,
    out_correlation_id: *mut u64,
    out_msg_type: *mut u32,
    out_size: *mut usize,
    spin_threshold: u32,
) -> *const c_void {
    if out_correlation_id.is_null() || out_msg_type.is_null() || out_size.is_null() {
        return ptr::null();
    }
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, ptr::null(), |handle, end| {
        let End::Callee(end) = end else {
            return ptr::null();
        };
        if !end.holds_nothing() {
            return ptr::null();
        }
        let pure_spin = end.pure_spin;
        let callee = end.callee();
        callee.set_request_wait(spin_threshold, pure_spin);
        match callee.serve_interruptible() {
            Ok(request) => {
                // SAFETY: the out-pointers are non-NULL and writable (the caller's promise).
                unsafe {
                    out_correlation_id.write(request.id());
                    out_msg_type.write(u32::from(request.msg_type()));
                    out_size.write(request.data().len());
                }
                let payload = request.data().as_ptr().cast();
                end.request = Some(NonNull::from(Box::leak(Box::new(request))));
                payload
            }
            Err(error) => {
                handle.life.note(&error);
                ptr::null()
            }
        }
    })
}

/// Releases the request held by `tachyon_rpc_serve` (answered or not: answer it with
/// `tachyon_rpc_reply` before or after); `TACHYON_SUCCESS` also when none is held. A reply
/// acquired in place while the request was held keeps it until that reply is committed or
/// rolled back.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_commit_serve(rpc: *mut tachyon_rpc_bus_t) -> tachyon_error_t {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, TACHYON_ERR_NULL_PTR, |_, end| {
        if let End::Callee(end) = end {
            if end.reply.is_some() {
                end.request_released = end.request.is_some();
            } else {
                end.release_request();
            }
        }
        TACHYON_SUCCESS
    })
}

/// Sends `size` bytes at `payload` as the reply of `msg_type` to call `correlation_id`
/// (never 0: `TACHYON_ERR_INVALID_SZ`); `TACHYON_ERR_FULL` when the reply ring has no room.
/// Works with the request still held.
///
/// # Safety
/// `rpc` is NULL or a handle from this library; `payload` is NULL or `size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_reply(
    rpc: *mut tachyon_rpc_bus_t,
    correlation_id: u64,
    payload: *const c_void,
    size: usize,
    msg_type: u32,
) -> tachyon_error_t {
    if payload.is_null() {
        return TACHYON_ERR_NULL_PTR;
    }
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, TACHYON_ERR_NULL_PTR, |handle, end| {
        if correlation_id == 0 {
            return TACHYON_ERR_INVALID_SZ;
        }
        let Some(msg_type) = self::msg_type(msg_type) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        let End::Callee(end) = end else {
            return TACHYON_ERR_SYSTEM;
        };
        // SAFETY: `payload` points to `size` readable bytes (the caller's promise); they may
        // lie in the held request's slot, which stays unreleased until the reply is sent.
        let bytes = unsafe { std::slice::from_raw_parts(payload.cast::<u8>(), size) };
        if end.reply.is_some() {
            return TACHYON_ERR_SYSTEM;
        }
        let sent = match end.request() {
            None => end.callee().reply(correlation_id, msg_type, bytes),
            Some(request) => {
                request
                    .reserve_reply(size, Duration::ZERO)
                    .and_then(|(_, mut slot)| {
                        slot[..size].copy_from_slice(bytes);
                        slot.commit_to(correlation_id, size, msg_type)
                    })
            }
        };
        match sent {
            Ok(()) => TACHYON_SUCCESS,
            Err(error) => {
                handle.life.note(&error);
                match code(&error) {
                    TACHYON_ERR_FULL => TACHYON_ERR_FULL,
                    TACHYON_ERR_INVALID_SZ => TACHYON_ERR_INVALID_SZ,
                    _ => TACHYON_ERR_SYSTEM,
                }
            }
        }
    })
}

/// Reserves a request of up to `max_size` bytes and returns where to write it, or NULL (ring
/// full, too large, the callee's handle). A call still acquired is rolled back first; a
/// reply held meanwhile stays readable.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_acquire_tx(
    rpc: *mut tachyon_rpc_bus_t,
    max_size: usize,
) -> *mut c_void {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, ptr::null_mut(), |handle, end| {
        let End::Caller(end) = end else {
            return ptr::null_mut();
        };
        end.call = None;
        let Some(max_len) = padded_payload(max_size) else {
            return ptr::null_mut();
        };
        match end.calls().reserve_call(max_len) {
            Ok(mut slot) => {
                let payload = slot.as_mut_ptr().cast::<c_void>();
                end.call = Some(slot);
                payload
            }
            Err(error) => {
                handle.life.note(&error);
                ptr::null_mut()
            }
        }
    })
}

/// Sends the acquired request: its first `actual_size` bytes, of `msg_type`; its
/// correlation id goes to `*out_cid`. `TACHYON_ERR_SYSTEM` without an acquired request or
/// for a size beyond it (the request is then dropped).
///
/// # Safety
/// `rpc` is NULL or a handle from this library; `out_cid` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_commit_call(
    rpc: *mut tachyon_rpc_bus_t,
    actual_size: usize,
    msg_type: u32,
    out_cid: *mut u64,
) -> tachyon_error_t {
    if out_cid.is_null() {
        return TACHYON_ERR_NULL_PTR;
    }
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, TACHYON_ERR_NULL_PTR, |_, end| {
        let End::Caller(end) = end else {
            return TACHYON_ERR_SYSTEM;
        };
        let Some(msg_type) = self::msg_type(msg_type) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        let Some(slot) = end.call.take() else {
            return TACHYON_ERR_SYSTEM;
        };
        match slot.commit(actual_size, msg_type) {
            Ok(id) => {
                // SAFETY: non-NULL and writable (the caller's promise).
                unsafe { out_cid.write(id) };
                TACHYON_SUCCESS
            }
            Err(_) => TACHYON_ERR_SYSTEM,
        }
    })
}

/// Abandons the acquired request. Without one, the request ring is marked fatal, as
/// upstream does.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_rollback_call(rpc: *mut tachyon_rpc_bus_t) {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, (), |handle, end| {
        if let End::Caller(end) = end {
            if end.call.take().is_some() {
                return;
            }
        }
        handle.states[0].mark_fatal();
    })
}

/// Reserves a reply of up to `max_size` bytes and returns where to write it, or NULL (ring
/// full, too large, the caller's handle). A reply still acquired is rolled back first. The
/// call it answers is named at `tachyon_rpc_commit_reply`; a request held meanwhile stays
/// readable until then.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_acquire_reply_tx(
    rpc: *mut tachyon_rpc_bus_t,
    max_size: usize,
) -> *mut c_void {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, ptr::null_mut(), |handle, end| {
        let End::Callee(end) = end else {
            return ptr::null_mut();
        };
        end.end_reply();
        let Some(max_len) = padded_payload(max_size) else {
            return ptr::null_mut();
        };
        // Reserved through the held request when there is one (which stays readable), else
        // through the callee with a placeholder id; either way `commit_to` names the call.
        let reserved = match end.request() {
            Some(request) => request
                .reserve_reply(max_len, Duration::ZERO)
                .map(|(_, slot)| slot),
            None => end.callee().reserve_reply(u64::MAX, max_len),
        };
        match reserved {
            Ok(mut slot) => {
                let payload = slot.as_mut_ptr().cast::<c_void>();
                end.reply = Some(slot);
                payload
            }
            Err(error) => {
                handle.life.note(&error);
                ptr::null_mut()
            }
        }
    })
}

/// Sends the acquired reply to call `cid` (never 0: `TACHYON_ERR_INVALID_SZ`, the reply
/// stays acquired): its first `actual_size` bytes, of `msg_type`. `TACHYON_ERR_SYSTEM`
/// without an acquired reply or for a size beyond it (the reply is then dropped).
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_commit_reply(
    rpc: *mut tachyon_rpc_bus_t,
    cid: u64,
    actual_size: usize,
    msg_type: u32,
) -> tachyon_error_t {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, TACHYON_ERR_NULL_PTR, |_, end| {
        if cid == 0 {
            return TACHYON_ERR_INVALID_SZ;
        }
        let Some(msg_type) = self::msg_type(msg_type) else {
            return TACHYON_ERR_INVALID_SZ;
        };
        let End::Callee(end) = end else {
            return TACHYON_ERR_SYSTEM;
        };
        let Some(slot) = end.reply.take() else {
            return TACHYON_ERR_SYSTEM;
        };
        let committed = slot.commit_to(cid, actual_size, msg_type);
        end.end_reply();
        match committed {
            Ok(()) => TACHYON_SUCCESS,
            Err(_) => TACHYON_ERR_SYSTEM,
        }
    })
}

/// Abandons the acquired reply. Without one, the reply ring is marked fatal, as upstream
/// does.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_rollback_reply(rpc: *mut tachyon_rpc_bus_t) {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, (), |handle, end| {
        if let End::Callee(end) = end {
            if end.reply.is_some() {
                end.end_reply();
                return;
            }
        }
        handle.states[1].mark_fatal();
    })
}

/// Pure-spin mode (`pure_spin` non-zero) or not for this end's waits (`tachyon_rpc_wait`,
/// `tachyon_rpc_serve`), from the next one on.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_set_polling_mode(
    rpc: *const tachyon_rpc_bus_t,
    pure_spin: c_int,
) {
    // SAFETY: `rpc` is NULL or a handle from this library (the caller's promise).
    let handle = unsafe { live(rpc) };
    with_end(handle, (), |_, end| match end {
        End::Caller(end) => end.pure_spin = pure_spin != 0,
        End::Callee(end) => end.pure_spin = pure_spin != 0,
        End::Closed => {}
    })
}

/// The bus's state (any thread, never blocks): `TACHYON_STATE_FATAL_ERROR` when either ring
/// is fatal or the peer's process is known to have exited, `TACHYON_STATE_READY` when both
/// are ready, `TACHYON_STATE_UNKNOWN` otherwise and for NULL and destroyed handles.
///
/// # Safety
/// `rpc` is NULL or a handle from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tachyon_rpc_get_state(rpc: *const tachyon_rpc_bus_t) -> tachyon_state_t {
    ffi(tachyon_state_t::TACHYON_STATE_UNKNOWN, || {
        // SAFETY: the caller's promise.
        let Some(handle) = (unsafe { live(rpc) }) else {
            return tachyon_state_t::TACHYON_STATE_UNKNOWN;
        };
        let [fwd, rev] = handle.states.each_ref().map(|state| state.load());
        let fatal = tachyon_ring::layout::state::FATAL_ERROR;
        let ready = tachyon_ring::layout::state::READY;
        if handle.life.peer_gone() || fwd == fatal || rev == fatal {
            tachyon_state_t::TACHYON_STATE_FATAL_ERROR
        } else if fwd == ready && rev == ready {
            tachyon_state_t::TACHYON_STATE_READY
        } else {
            tachyon_state_t::TACHYON_STATE_UNKNOWN
        }
    })
}

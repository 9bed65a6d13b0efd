//! The one wait path of the extension: every blocking call (receive, serve, wait for a reply,
//! wait for room, listen, connect) goes through [`wait_watching`] or [`cancellable`].
//!
//! The GIL is released while waiting, and signals end the wait at once: on the main thread,
//! `signals::Armed` has CPython's signal handler wake the wait (see the `signals` module),
//! which takes the GIL back and runs the Python handlers (`Python::check_signals`). A handler
//! that raises (`KeyboardInterrupt` for Ctrl-C) ends the call with its exception; otherwise
//! the wait goes on, with a fresh token, for the time that is left. Any other thread runs no
//! signal handlers, so its wait is a single call.
//!
//! - [`wait_watching`]: a wait the ring can end through a `CancelToken` (`Consumer`,
//!   `Producer`, `Caller` and `Callee` take one with `set_cancel_token`): after a first call
//!   of at most [`UNARMED`] (2 ms), one blocking call for the rest of the timeout, so the
//!   ring's spin runs once and its naps (5 ms doubling to 50 ms) restart once, not once per
//!   20 ms slice as they did.
//! - [`cancellable`]: a call that must not be cut short unless a handler raises (`listen`,
//!   `connect`): it runs on a thread of its own with a token of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tachyon_ring::{BusOptions, CancelToken, Error};

use crate::errors::{WaitTimeoutError, to_py};
use crate::signals::{Armed, Waker, runs_signal_handlers};

/// The longest stretch a wait that cannot see a cancel spends without looking at signals.
pub const SLICE: Duration = Duration::from_millis(20);

/// When a wait must end: `None` waits as long as it takes.
pub type Deadline = Option<Instant>;

/// Turns a `timeout=` argument (seconds; `None` for no limit) into a deadline.
pub fn deadline(timeout: Option<f64>) -> PyResult<Deadline> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(format!(
            "timeout must be a number of seconds >= 0 or None, got {t}"
        ))),
        Some(t) if t.is_infinite() || t > 1e9 => Ok(None),
        Some(t) => Ok(Some(Instant::now() + Duration::from_secs_f64(t))),
    }
}

/// A `timeout=` argument as the one duration a call of the crate takes: `None` for no
/// argument, `Duration::MAX` (which the crate reads as no limit) for an infinite one.
pub fn time_limit(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    Ok(match (timeout, deadline(timeout)?) {
        (None, _) => None,
        (Some(_), None) => Some(Duration::MAX),
        (Some(_), Some(deadline)) => Some(deadline.saturating_duration_since(Instant::now())),
    })
}

/// The `WaitTimeoutError` of a wait begun at `started`, naming `what` it waited for.
pub fn timed_out(started: Instant, what: &str) -> PyErr {
    WaitTimeoutError::new_err(format!(
        "timed out after {:.3} s {what}",
        started.elapsed().as_secs_f64()
    ))
}

/// The time left until `deadline` (`Duration::MAX`, which the ring reads as no deadline, when
/// there is none), or the `WaitTimeoutError` naming `what` once it has passed.
fn time_left(deadline: Deadline, started: Instant, what: &str) -> PyResult<Duration> {
    let Some(deadline) = deadline else {
        return Ok(Duration::MAX);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out(started, what));
    }
    Ok(left)
}

/// How a wait learns that a signal came.
enum Watch<'py> {
    /// The main thread, armed: every signal runs the wait's waker.
    Armed(Armed<'py>),
    /// Any other thread: it runs no signal handlers, so there is nothing to learn.
    Nothing,
    /// The main thread, but the wakeup fd could not be set: look every [`SLICE`].
    Slices,
}

impl<'py> Watch<'py> {
    /// Arms with `waker()` on the main thread; then runs the handlers of any signal that came
    /// before (one that comes after runs the waker).
    fn start(py: Python<'py>, waker: impl FnOnce() -> Waker) -> PyResult<Watch<'py>> {
        if !runs_signal_handlers(py)? {
            return Ok(Watch::Nothing);
        }
        let watch = match Armed::arm(py, waker()) {
            Ok(armed) => Watch::Armed(armed),
            Err(_) => Watch::Slices,
        };
        py.check_signals()?;
        Ok(watch)
    }

    /// The longest one blocking call may last: `None` when a signal can end it.
    fn slice(&self) -> Option<Duration> {
        matches!(self, Watch::Slices).then_some(SLICE)
    }
}

/// One blocking call of the ring that a wait makes.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The token the call must watch (give it to the end with `set_cancel_token` for the
    /// call): it fires when a signal comes. `None`: nothing to watch.
    pub token: Option<&'a CancelToken>,
    /// How long the call may wait; `Duration::MAX`, which the ring reads as no limit, for
    /// ever.
    pub timeout: Duration,
    /// Whether this is the wait's first call. Later ones skip the consumer's spin: it has had
    /// its chance, and spinning again would only burn the CPU a restart costs.
    pub first: bool,
}

impl Attempt<'_> {
    /// The consumer spin threshold for this call: the ring's default (every end this crate
    /// builds has it, and nothing here changes it for good) for the first, none after.
    pub fn spin_threshold(&self) -> u32 {
        if self.first {
            BusOptions::DEFAULT_SPIN_THRESHOLD
        } else {
            0
        }
    }
}

/// How long a wait runs before it arms for signals: most waits of a busy exchange end sooner,
/// and arming (two `signal.set_wakeup_fd` calls, a fresh token) would cost them ~3 µs each.
/// Also the longest a signal can go unseen.
pub const UNARMED: Duration = Duration::from_millis(2);

/// Calls `attempt` with the GIL released until it returns `Some`. Each call makes one blocking
/// call of the ring that gives up after [`Attempt::timeout`] and watches
/// [`Attempt::token`], returning `Ok(None)` when its time ran out and `Error::Cancelled` when
/// the token fired.
///
/// The first call, unarmed, lasts at most [`UNARMED`]. Then, on the main thread, the wait
/// arms (`signals::Armed`) and makes one call for the time left, whose token fires on every
/// signal; the handlers then run, and the call is made again with a fresh token for the time
/// left.
/// Elsewhere the token is `None` and the rest is one call. Should the wakeup fd be impossible
/// to set (a sub-interpreter), the calls are [`SLICE`]s with the handlers run between them.
///
/// Errors: the crate's error from `attempt`, `WaitTimeoutError` at the deadline (naming
/// `what`), or whatever a signal handler raised (`KeyboardInterrupt` for Ctrl-C).
pub fn wait_watching<T, F>(
    py: Python<'_>,
    deadline: Deadline,
    what: &str,
    mut attempt: F,
) -> PyResult<T>
where
    T: Send,
    F: FnMut(Attempt<'_>) -> Result<Option<T>, Error> + Send,
{
    let started = Instant::now();
    let left = time_left(deadline, started, what)?;
    let unarmed = Attempt {
        token: None,
        timeout: left.min(UNARMED),
        first: true,
    };
    match py.detach(|| attempt(unarmed)) {
        Ok(Some(value)) => return Ok(value),
        Ok(None) => {}
        Err(error) => return Err(to_py(error)),
    }
    let mut token = None;
    let watch = Watch::start(py, || {
        let fresh = CancelToken::new();
        let waker = cancels(&fresh);
        token = Some(fresh);
        waker
    })?;
    loop {
        let left = time_left(deadline, started, what)?;
        let watched = match watch {
            Watch::Armed(_) => token.as_ref(),
            Watch::Nothing | Watch::Slices => None,
        };
        let call = Attempt {
            token: watched,
            timeout: watch.slice().map_or(left, |slice| slice.min(left)),
            first: false,
        };
        match py.detach(|| attempt(call)) {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(Error::Cancelled(_)) if watched.is_some_and(CancelToken::is_cancelled) => {
                if let Watch::Armed(armed) = &watch {
                    let fresh = CancelToken::new();
                    armed.rearm(cancels(&fresh));
                    token = Some(fresh);
                }
            }
            Err(error) => return Err(to_py(error)),
        }
        py.check_signals()?;
    }
}

/// A waker that cancels `token`.
fn cancels(token: &CancelToken) -> Waker {
    let token = token.clone();
    Arc::new(move || token.cancel())
}

/// What the thread waiting in [`cancellable`] is told.
enum Event<T> {
    /// The call returned (or panicked: `None`).
    Done(Option<Result<T, Error>>),
    /// A signal came: run the handlers.
    Signal,
}

/// Runs `call`, one blocking call of the crate that a signal must not cut short unless its
/// handler raises (a `listen` waits for its connector on one bound socket; a cancelled
/// `connect` would drop a half-done handshake), on a thread of its own with a
/// [`CancelToken`], while this thread, the GIL released, sleeps until the call returns or a
/// signal comes (on the main thread; every [`SLICE`] if the wakeup fd cannot be set). A handler
/// that raises (Ctrl-C's `KeyboardInterrupt`) cancels the token, which ends the call at once,
/// and its exception is what the caller gets; otherwise the call goes on undisturbed.
///
/// Returns the call's own result inside `Ok`, for the caller to map.
pub fn cancellable<T, F>(py: Python<'_>, call: F) -> PyResult<Result<T, Error>>
where
    T: Send + 'static,
    F: FnOnce(CancelToken) -> Result<T, Error> + Send + 'static,
{
    let token = CancelToken::new();
    let (events, mut outcome) = channel();
    let worker = {
        let token = token.clone();
        let done = events.clone();
        std::thread::Builder::new()
            .name("tachyon-rs-wait".into())
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| call(token))).ok();
                let _ = done.send(Event::Done(result));
            })
            .map_err(|e| PyOSError::new_err(format!("cannot start the waiting thread: {e}")))?
    };
    let watch = Watch::start(py, || {
        Arc::new(move || {
            let _ = events.send(Event::Signal);
        })
    });
    let watch = match watch {
        Ok(watch) => watch,
        Err(interrupt) => return Err(interrupted(py, &token, worker, interrupt)),
    };
    let slice = watch.slice();
    loop {
        // The receiver is not Sync: it moves into the GIL-free closure and back.
        let (receiver, received) = py.detach(move || {
            let received = match slice {
                Some(slice) => outcome.recv_timeout(slice),
                None => outcome.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            (outcome, received)
        });
        outcome = receiver;
        match received {
            Ok(Event::Done(Some(result))) => {
                drop(watch);
                let _ = py.detach(|| worker.join());
                return Ok(result);
            }
            Ok(Event::Done(None)) | Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("the waiting thread panicked"));
            }
            Ok(Event::Signal) | Err(RecvTimeoutError::Timeout) => {}
        }
        if let Err(interrupt) = py.check_signals() {
            return Err(interrupted(py, &token, worker, interrupt));
        }
    }
}

/// Ends [`cancellable`]'s call for a handler that raised `interrupt`: cancels it, waits for
/// its thread to finish, and hands the exception back.
fn interrupted(
    py: Python<'_>,
    token: &CancelToken,
    worker: JoinHandle<()>,
    interrupt: PyErr,
) -> PyErr {
    token.cancel();
    let _ = py.detach(|| worker.join());
    interrupt
}

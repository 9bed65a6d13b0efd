//! The one wait path of the extension: every blocking call (receive, serve, wait for a reply,
//! wait for room, listen, connect) goes through [`wait_in_slices`].
//!
//! The GIL is released while waiting, and the wait is cut into slices of at most [`SLICE`];
//! between slices `Python::check_signals` runs the signal handlers, so Ctrl-C raises
//! `KeyboardInterrupt` from any blocking call within one slice. (The crate's `CancelToken` could
//! replace the slices; this function is the one place to switch over.)

use std::time::{Duration, Instant};

use std::sync::mpsc::{RecvTimeoutError, channel};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tachyon_ring::{CancelToken, Error};

use crate::errors::{WaitTimeoutError, to_py};

/// The longest stretch spent waiting without looking at signals.
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

/// Calls `attempt(slice)` with the GIL released until it returns `Some`, giving it at most
/// [`SLICE`] per call (less near the deadline), and runs Python's signal handlers between
/// calls. `attempt` returns `Ok(None)` when its slice ran out without success.
///
/// Errors: the crate's error from `attempt`, `WaitTimeoutError` at the deadline (naming
/// `what`), or whatever a signal handler raised (`KeyboardInterrupt` for Ctrl-C).
pub fn wait_in_slices<T, F>(
    py: Python<'_>,
    deadline: Deadline,
    what: &str,
    mut attempt: F,
) -> PyResult<T>
where
    T: Send,
    F: FnMut(Duration) -> Result<Option<T>, Error> + Send,
{
    let started = Instant::now();
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(WaitTimeoutError::new_err(format!(
                        "timed out after {:.3} s {what}",
                        started.elapsed().as_secs_f64()
                    )));
                }
                left.min(SLICE)
            }
        };
        match py.detach(|| attempt(slice)) {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => return Err(to_py(error)),
        }
        py.check_signals()?;
    }
}

/// Runs `call`, one blocking call of the crate that cannot be cut into slices (a `listen`
/// waits for its connector on one bound socket), on a thread of its own with a
/// [`CancelToken`], while this thread, the GIL released between looks, runs Python's signal
/// handlers every [`SLICE`]. A handler that raises (Ctrl-C's `KeyboardInterrupt`) cancels the
/// token, which ends the call at once, and its exception is what the caller gets.
pub fn cancellable<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(CancelToken) -> Result<T, Error> + Send + 'static,
{
    let token = CancelToken::new();
    let (done, mut outcome) = channel();
    let worker = {
        let token = token.clone();
        std::thread::Builder::new()
            .name("tachyon-rs-wait".into())
            .spawn(move || {
                let _ = done.send(call(token));
            })
            .map_err(|e| PyOSError::new_err(format!("cannot start the waiting thread: {e}")))?
    };
    loop {
        // The receiver is not Sync: it moves into the GIL-free closure and back.
        let (receiver, received) = py.detach(move || {
            let received = outcome.recv_timeout(SLICE);
            (outcome, received)
        });
        outcome = receiver;
        match received {
            Ok(result) => {
                let _ = worker.join();
                return result.map_err(to_py);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("the waiting thread panicked"));
            }
        }
        if let Err(interrupt) = py.check_signals() {
            token.cancel();
            let _ = py.detach(|| worker.join());
            return Err(interrupt);
        }
    }
}

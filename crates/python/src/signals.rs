//! Signals turned into wake-ups, for a thread that waits without the GIL.
//!
//! CPython's C-level signal handler does two things: it marks the signal as tripped (the
//! Python handler runs later, when the main thread next runs bytecode or calls
//! `PyErr_CheckSignals`), and, when a wakeup fd is set (`signal.set_wakeup_fd`), writes the
//! signal's number to that fd as one byte. A main thread blocked in a ring wait runs no
//! bytecode, so only the byte can reach it. Hence, for as long as a wait of the main thread
//! lasts, [`Armed`] installs the write end of a pipe of ours as the wakeup fd (and puts the
//! previous one back afterwards), and one thread per process, started by the first wait,
//! blocks in `read` on the other end. Each byte it reads runs the wait's [`Waker`] (which
//! cancels the `CancelToken` the ring is waiting with), and is passed on to the wakeup fd we
//! displaced (asyncio's, say), so that its owner misses no signal. The wait then takes the GIL
//! back and runs the handlers (`Python::check_signals`: Ctrl-C raises `KeyboardInterrupt`), and
//! if none raised it waits on with a fresh token (see [`crate::wait`]).
//!
//! Why this design: it is CPython's own, documented mechanism, written from a real signal
//! context for every signal that has a Python handler, whichever they are and however Python
//! code changes them. A `sigaction` handler of ours chained in front of CPython's would have to
//! know which signals Python handles and be re-chained whenever `signal.signal` changes one; a
//! thread polling for signals would need the GIL (`PyErr_CheckSignals`) or a clock (the 20 ms
//! slices this replaced, each of which restarted the ring's spin and naps: 2.7 % of a core
//! while idle).
//!
//! Limits, all CPython's: only the main thread of the main interpreter runs Python signal
//! handlers and may set the wakeup fd, so a wait in any other thread has no signals to watch
//! (it is never armed, and the wait is one call). The wakeup fd put back at the
//! end is set with the default `warn_on_full_buffer=True`. A signal handler that itself calls
//! `signal.set_wakeup_fd` while a wait is armed takes our pipe away: that wait then sees later
//! signals only when it ends (its deadline, a message); the handler's fd is left in place.

use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyAny;

/// What a signal does to the wait that armed: cancel its token, or post to its channel. Runs
/// on the relay thread, never in the signal handler itself.
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

/// What the relay thread does with a byte, set by the armed wait (if any).
#[derive(Clone)]
struct Route {
    /// The armed wait's waker; `None` between waits.
    waker: Option<Waker>,
    /// The wakeup fd our pipe displaced, which every byte is copied to; -1 for none.
    forward_to: RawFd,
}

/// The process's pipe and relay thread, created by the first armed wait.
struct Relay {
    /// The process that created them: a forked child has no relay thread and makes its own.
    pid: u32,
    /// The pipe's write end, non-blocking as `set_wakeup_fd` requires.
    write_end: OwnedFd,
    /// Read by the relay thread for each byte, written by the (main) thread that arms.
    route: Arc<Mutex<Route>>,
}

/// The relay of this process. Locked only by threads that hold the GIL, never across a call
/// into Python (which could switch threads), so it is never contended for long.
static RELAY: Mutex<Option<Arc<Relay>>> = Mutex::new(None);

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves a plain value behind: still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Relay {
    /// This process's relay, started on first use.
    fn get() -> PyResult<Arc<Relay>> {
        let mut relay = locked(&RELAY);
        let pid = std::process::id();
        if let Some(existing) = relay.as_ref().filter(|r| r.pid == pid) {
            return Ok(existing.clone());
        }
        let started = Arc::new(Relay::start(pid)?);
        *relay = Some(started.clone());
        Ok(started)
    }

    fn start(pid: u32) -> PyResult<Relay> {
        let mut ends = [0 as c_int; 2];
        // SAFETY: pipe2 writes two fds into the array we pass, which lives across the call.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: both fds were just created by pipe2 and are owned by nothing else.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        // SAFETY: fcntl on an fd we own; F_SETFL takes an int.
        if unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let route = Arc::new(Mutex::new(Route {
            waker: None,
            forward_to: -1,
        }));
        let relayed = route.clone();
        std::thread::Builder::new()
            .name("tachyon-rs-signals".into())
            .spawn(move || relay_bytes(read_end, &relayed))?;
        Ok(Relay {
            pid,
            write_end,
            route,
        })
    }
}

/// The relay thread: for each byte CPython's handler writes, wake the armed wait and pass the
/// byte on. Never touches Python. Ends only if the pipe breaks, which the process-long
/// [`RELAY`] prevents.
fn relay_bytes(read_end: OwnedFd, route: &Mutex<Route>) {
    let mut bytes = [0u8; 64];
    loop {
        // SAFETY: reads at most `bytes.len()` bytes into the live array, from an fd we own.
        let read =
            unsafe { libc::read(read_end.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
        let Ok(read) = usize::try_from(read) else {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        };
        if read == 0 {
            return;
        }
        let Route { waker, forward_to } = locked(route).clone();
        if let Some(wake) = waker {
            wake();
        }
        if forward_to >= 0 {
            // SAFETY: writes `read` initialized bytes of the live array. The fd is the one its
            // owner gave `set_wakeup_fd`, which they keep open while it is installed; a failure
            // (full, or closed since) loses only that copy, as CPython's own write would.
            unsafe { libc::write(forward_to, bytes.as_ptr().cast(), read) };
        }
    }
}

/// `signal.set_wakeup_fd(fd)`, returning the fd it replaces.
fn set_wakeup_fd(py: Python<'_>, fd: RawFd) -> PyResult<RawFd> {
    static SET_WAKEUP_FD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    SET_WAKEUP_FD
        .import(py, "signal", "set_wakeup_fd")?
        .call1((fd,))?
        .extract()
}

/// Whether this is the thread Python runs signal handlers in (the main thread): the only one
/// that may [`arm`](Armed::arm).
pub(crate) fn runs_signal_handlers(py: Python<'_>) -> PyResult<bool> {
    static GET_IDENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static MAIN_THREAD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let this = GET_IDENT.import(py, "threading", "get_ident")?.call0()?;
    let main = MAIN_THREAD
        .import(py, "threading", "main_thread")?
        .call0()?
        .getattr("ident")?;
    this.eq(main)
}

/// A wait of the main thread during which signals run its [`Waker`]; dropping it puts back
/// the wakeup fd and the route it displaced. Held with the GIL (its drop calls into Python).
pub(crate) struct Armed<'py> {
    py: Python<'py>,
    relay: Arc<Relay>,
    /// The route before ours (another wait's, when a signal handler waits inside a wait).
    displaced: Route,
    /// Where bytes go while armed and after: the wakeup fd we displaced.
    forward_to: RawFd,
    /// The wakeup fd before ours, put back at the end.
    previous_fd: RawFd,
}

impl std::fmt::Debug for Armed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Armed")
            .field("previous_fd", &self.previous_fd)
            .finish_non_exhaustive()
    }
}

impl<'py> Armed<'py> {
    /// Routes every signal to `waker` until the result drops. Only for the thread that
    /// [`runs_signal_handlers`]; an error (the wakeup fd could not be set: a sub-interpreter)
    /// leaves the wait to find another way to see signals.
    ///
    /// The caller runs `Python::check_signals` after arming: a signal that came before it is
    /// marked tripped and handled there, one after it wakes the waker.
    pub(crate) fn arm(py: Python<'py>, waker: Waker) -> PyResult<Armed<'py>> {
        let relay = Relay::get()?;
        let ours = relay.write_end.as_raw_fd();
        // The route first: a byte written as soon as the fd is installed finds the waker.
        let displaced = std::mem::replace(
            &mut *locked(&relay.route),
            Route {
                waker: Some(waker.clone()),
                forward_to: -1,
            },
        );
        let previous_fd = match set_wakeup_fd(py, ours) {
            Ok(fd) => fd,
            Err(error) => {
                *locked(&relay.route) = displaced;
                return Err(error);
            }
        };
        // Armed inside an armed wait (a signal handler that waits): keep the outer target.
        let forward_to = if previous_fd == ours {
            displaced.forward_to
        } else {
            previous_fd
        };
        locked(&relay.route).forward_to = forward_to;
        Ok(Armed {
            py,
            relay,
            displaced,
            forward_to,
            previous_fd,
        })
    }

    /// Routes signals to `waker` from now on (a fresh token after the last one fired).
    pub(crate) fn rearm(&self, waker: Waker) {
        locked(&self.relay.route).waker = Some(waker);
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let ours = self.relay.write_end.as_raw_fd();
        match set_wakeup_fd(self.py, self.previous_fd) {
            // A signal handler installed its own fd meanwhile: it stays.
            Ok(current) if current != ours => {
                let _ = set_wakeup_fd(self.py, current);
            }
            Ok(_) => {}
            Err(error) => error.write_unraisable(self.py, None),
        }
        // Bytes still in the pipe belong to this wait's signals: they go where ours did.
        *locked(&self.relay.route) = Route {
            waker: self.displaced.waker.clone(),
            forward_to: self.forward_to,
        };
    }
}

//! Cancellation as a value: a [`CancelToken`] that every blocking call of a bus watches.
//!
//! A token is a flag that two kinds of waiter can sleep on without a window between checking it
//! and blocking: a futex word (the ring waits put it beside the ring's own word in one
//! `futex_waitv`) and an eventfd (the socket waits put it beside the socket in one `poll`).
//! Cancelling sets the flag, wakes the word and makes the eventfd readable, so a waiter either
//! sees the flag before it blocks or is woken out of the block: a cancel is never lost.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::eventfd::{eventfd, eventfd_signal};
use crate::sys::futex::futex_wake_all;

/// Value of the token's futex word before it is cancelled.
pub(crate) const LIVE: u32 = 0;
/// Value of the token's futex word once it is cancelled (it never goes back).
const CANCELLED: u32 = 1;

/// A handle that cancels every blocking call watching it, from any thread or a signal handler.
///
/// Give one to a bus with [`BusOptions::cancel_token`](crate::BusOptions::cancel_token) (its
/// `listen` / `connect` and every blocking call of its ends then watch it), or to one end with
/// `set_cancel_token`. A cancelled token stays cancelled: each blocking call it reaches returns
/// [`Error::Cancelled`](crate::Error::Cancelled) within microseconds (at most 10 ms on kernels
/// older than 5.16, which lack `futex_waitv`), and non-blocking calls are unaffected. Clones
/// share one flag.
///
/// Signals are not errors here: an unrelated signal (a profiler's `SIGPROF`) interrupts no
/// call. A program that wants Ctrl-C to end its waits turns the signal into a cancel at its
/// edge, for example with `signal-hook`'s iterator, whose handler only writes to a pipe:
///
/// ```no_run
/// use tachyon_ring::{Bus, CancelToken, Error};
/// use signal_hook::{consts::SIGINT, iterator::Signals};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cancel = CancelToken::new();
/// let mut signals = Signals::new([SIGINT])?; // installed before any wait begins
/// let on_signal = cancel.clone();
/// std::thread::spawn(move || {
///     if signals.forever().next().is_some() {
///         on_signal.cancel();
///     }
/// });
/// let bus = Bus::options().cancel_token(cancel).listen("/tmp/market.sock", 1 << 20);
/// let mut consumer = match bus {
///     Err(Error::Cancelled(_)) => return Ok(()), // Ctrl-C while nobody had connected yet
///     other => other?.into_consumer(),
/// };
/// loop {
///     match consumer.recv() {
///         Ok(message) => println!("{} bytes", message.len()),
///         Err(Error::Cancelled(_)) => break, // Ctrl-C: stop cleanly
///         Err(other) => return Err(other.into()),
///     }
/// }
/// # Ok(()) }
/// ```
///
/// [`cancel`](CancelToken::cancel) itself only stores to an atomic and makes two system calls,
/// so it may also be called straight from a signal handler.
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

struct Inner {
    /// [`LIVE`] until cancelled, then [`CANCELLED`]; waited on with the ring words.
    word: AtomicU32,
    /// Readable once cancelled; polled with sockets. `None` only if the process is out of
    /// file descriptors, in which case socket waits look at the flag every 10 ms instead.
    eventfd: Option<OwnedFd>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken {
            inner: Arc::new(Inner {
                word: AtomicU32::new(LIVE),
                eventfd: eventfd(),
            }),
        }
    }

    /// Cancels every blocking call watching this token, now and from now on.
    /// Async-signal-safe: an atomic store, a `FUTEX_WAKE` and a `write`.
    pub fn cancel(&self) {
        let inner = &self.inner;
        // SeqCst pairs with the waiters' check-then-block: the futex and poll re-check the
        // value / readiness inside the kernel, so a waiter that missed the store is woken.
        if inner.word.swap(CANCELLED, Ordering::SeqCst) == CANCELLED {
            return;
        }
        futex_wake_all(&inner.word);
        if let Some(fd) = &inner.eventfd {
            eventfd_signal(fd.as_fd());
        }
    }

    /// True once [`cancel`](CancelToken::cancel) was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.inner.word.load(Ordering::SeqCst) == CANCELLED
    }

    /// The futex word a ring wait sleeps on beside the ring's own.
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.inner.word
    }

    /// The eventfd a socket wait polls beside the socket, if the process could create one.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.eventfd.as_ref().map(|fd| fd.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_stays_cancelled_and_clones_share_it() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert!(!token.is_cancelled());
        clone.cancel();
        assert!(token.is_cancelled() && clone.is_cancelled());
        token.cancel(); // idempotent
        assert!(token.is_cancelled());
        assert!(token.fd().is_some(), "eventfd created");
        // The eventfd is readable after the cancel.
        let mut fds = [nix::poll::PollFd::new(
            token.fd().unwrap(),
            nix::poll::PollFlags::POLLIN,
        )];
        assert_eq!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap(),
            1
        );
    }
}

//! Waiting and waking: the shared futex on the arena's `consumer_sleeping` word, and the
//! escalating backoff a producer uses while it waits for space.

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

/// Longest single `FUTEX_WAIT`, as upstream: it bounds the cost of a missed wake-up and how
/// late a sleeping side notices a deadline or a dead peer.
pub(crate) const MAX_FUTEX_WAIT: Duration = Duration::from_millis(200);

/// Sleeps while `word` holds `expected`, for at most `timeout`.
///
/// Uses the *shared* futex operation (no `FUTEX_PRIVATE_FLAG`): the word lives in memory
/// mapped by two processes. Returns on a wake, a timeout, a value change or a signal; the
/// caller re-checks its condition in every case. True when a `FUTEX_WAKE` ended the wait.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> bool {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; FUTEX_WAIT only reads
    // it and `timeout` points to a live timespec. Every outcome (woken, EAGAIN, ETIMEDOUT,
    // EINTR) leads the caller to re-check its condition; 0 means a wake.
    let result = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &timeout as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    result == 0
}

/// Wakes at most one waiter sleeping on `word` (in any process that maps it); true when one
/// was woken.
pub(crate) fn futex_wake(word: &AtomicU32) -> bool {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory through it.
    let woken = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1u32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    woken > 0
}

/// Spin, then yield, then sleep in growing steps: the producer's wait for space.
///
/// Spinning and yielding (crossbeam's [`Backoff`]) cover a consumer that is a few messages
/// behind; sleeps from 20 µs doubling to 1 ms cover one that is descheduled, without burning a
/// core. Nothing wakes a waiting producer (the wire has no word for it), so the sleep bounds
/// how late it notices space.
pub(crate) struct SpaceWait {
    backoff: Backoff,
    sleep: Duration,
}

impl SpaceWait {
    const FIRST_SLEEP: Duration = Duration::from_micros(20);
    const LONGEST_SLEEP: Duration = Duration::from_millis(1);

    pub(crate) fn new() -> Self {
        SpaceWait {
            backoff: Backoff::new(),
            sleep: Self::FIRST_SLEEP,
        }
    }

    /// Waits one step; never past `deadline`.
    pub(crate) fn step(&mut self, deadline: Option<Instant>) {
        if !self.backoff.is_completed() {
            self.backoff.snooze();
            return;
        }
        let mut nap = self.sleep;
        if let Some(deadline) = deadline {
            nap = nap.min(deadline.saturating_duration_since(Instant::now()));
        }
        std::thread::sleep(nap);
        self.sleep = (self.sleep * 2).min(Self::LONGEST_SLEEP);
    }
}

/// `Instant::now() + timeout`, or `None` (wait forever) when that overflows.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn futex_wait_returns_on_timeout_and_on_value_change() {
        let word = AtomicU32::new(1);
        assert!(
            !futex_wait(&word, 1, Duration::from_millis(20)),
            "timed out, not woken"
        );
        // Value differs: returns at once (EAGAIN).
        assert!(!futex_wait(&word, 0, Duration::from_secs(5)));
    }

    #[test]
    fn futex_wake_wakes_a_sleeper() {
        let word = Arc::new(AtomicU32::new(1));
        let sleeper = {
            let word = Arc::clone(&word);
            // Woken, not timed out: the wait is far longer than the test.
            std::thread::spawn(move || futex_wait(&word, 1, Duration::from_secs(60)))
        };
        // Wake until the sleeper has been caught asleep once (it may not be asleep yet).
        while !futex_wake(&word) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            sleeper.join().unwrap(),
            "futex_wait did not report the wake"
        );
    }
}

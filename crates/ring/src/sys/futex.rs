//! The futex system calls: `FUTEX_WAIT` and `FUTEX_WAKE` on one shared word, and
//! `futex_waitv` over many, with the process-wide record of whether the kernel has it. Plain
//! words and timeouts in, how the sleep ended out; what to wait for, and cancellation, are the
//! callers' (`crate::wait`).

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use nix::errno::Errno;

/// The most words one `futex_waitv` takes (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// How a futex sleep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// A `FUTEX_WAKE` on word `index` ended it.
    Woken(usize),
    /// A word no longer held its expected value when the kernel looked (nothing slept).
    Changed,
    /// The timeout passed.
    TimedOut,
}

const WAITV_UNKNOWN: u8 = 0;
const WAITV_PRESENT: u8 = 1;
const WAITV_MISSING: u8 = 2;
/// Whether this kernel has `futex_waitv`, learnt from the first call that tries it.
static WAITV: AtomicU8 = AtomicU8::new(WAITV_UNKNOWN);

/// True unless a `futex_waitv` call has already failed with `ENOSYS` in this process.
pub(crate) fn waitv_supported() -> bool {
    WAITV.load(Ordering::Relaxed) != WAITV_MISSING
}

/// The kernel's `struct futex_waitv`.
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`, without `FUTEX2_PRIVATE`: the words are shared between processes.
const FUTEX2_SIZE_U32: u32 = 0x02;

/// One `futex_waitv` (Linux ≥ 5.16) over at most [`WAITV_MAX`] `(word, expected)` pairs:
/// sleeps while every word still holds its value, until a `FUTEX_WAKE` on any of them (from
/// any process mapping it) or `timeout`. Shared futexes (no private flag): the words live in
/// memory mapped by two processes. `EINTR` is retried against the same absolute deadline, or,
/// when `retry_eintr` is false, returned (`Err(EINTR)`).
/// `Err(ENOSYS)` on a kernel without the call, which [`waitv_supported`] reports from then on.
pub(crate) fn futex_waitv(
    words: &[(&AtomicU32, u32)],
    timeout: Duration,
    retry_eintr: bool,
) -> Result<Woke, Errno> {
    let entry = |word: &AtomicU32, expected: u32| FutexWaitv {
        val: u64::from(expected),
        uaddr: word.as_ptr() as u64,
        flags: FUTEX2_SIZE_U32,
        reserved: 0,
    };
    let entries: Vec<FutexWaitv> = words
        .iter()
        .take(WAITV_MAX)
        .map(|&(word, expected)| entry(word, expected))
        .collect();
    let deadline = monotonic_after(timeout);
    loop {
        // SAFETY: `entries` points to `entries.len()` (≤ 128) initialised futex_waitv structs,
        // each naming an aligned u32 that outlives the call (the borrowed words);
        // `deadline` is a live timespec on CLOCK_MONOTONIC; the kernel only reads them.
        let result = unsafe {
            libc::syscall(
                libc::SYS_futex_waitv,
                entries.as_ptr(),
                entries.len() as libc::c_uint,
                0 as libc::c_uint,
                &deadline as *const libc::timespec,
                libc::CLOCK_MONOTONIC,
            )
        };
        if result >= 0 {
            WAITV.store(WAITV_PRESENT, Ordering::Relaxed);
            return Ok(Woke::Woken(result as usize));
        }
        match Errno::last() {
            // The deadline is absolute: a signal's retry neither ends nor extends the wait.
            Errno::EINTR if retry_eintr => continue,
            Errno::EAGAIN => return Ok(Woke::Changed),
            Errno::ETIMEDOUT => return Ok(Woke::TimedOut),
            Errno::ENOSYS => {
                WAITV.store(WAITV_MISSING, Ordering::Relaxed);
                return Err(Errno::ENOSYS);
            }
            other => return Err(other),
        }
    }
}

/// CLOCK_MONOTONIC now + `timeout`, saturating at about 136 years.
fn monotonic_after(timeout: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which is live and writable.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let timeout = timeout.min(Duration::from_secs(u32::MAX as u64));
    let mut nanos = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
    let mut secs = now.tv_sec as u64 + timeout.as_secs();
    if nanos >= 1_000_000_000 {
        nanos -= 1_000_000_000;
        secs += 1;
    }
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos as libc::c_long,
    }
}

/// How one `FUTEX_WAIT` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FutexWait {
    Woken,
    Changed,
    TimedOut,
    Interrupted,
}

/// One `FUTEX_WAIT` on `word` while it holds `expected`, for at most `timeout` (relative).
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> FutexWait {
    let timeout = timeout.min(Duration::from_secs(u32::MAX as u64));
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; FUTEX_WAIT only reads
    // it, and `timeout` points to a live timespec.
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
    if result == 0 {
        return FutexWait::Woken;
    }
    match Errno::last() {
        Errno::EAGAIN => FutexWait::Changed,
        Errno::EINTR => FutexWait::Interrupted,
        _ => FutexWait::TimedOut,
    }
}

/// Wakes at most one waiter sleeping on `word` (in any process that maps it); true when one
/// was woken.
pub(crate) fn futex_wake(word: &AtomicU32) -> bool {
    wake(word, 1) > 0
}

/// Wakes every waiter sleeping on `word`; true when any was woken.
pub(crate) fn futex_wake_all(word: &AtomicU32) -> bool {
    wake(word, i32::MAX as u32) > 0
}

fn wake(word: &AtomicU32, count: u32) -> libc::c_long {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory through it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn futex_wait_returns_on_timeout_and_on_value_change() {
        let word = AtomicU32::new(1);
        let started = Instant::now();
        assert_eq!(
            futex_wait(&word, 1, Duration::from_millis(20)),
            FutexWait::TimedOut
        );
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "the timeout really waited"
        );
        assert_eq!(
            futex_wait(&word, 0, Duration::from_secs(5)),
            FutexWait::Changed
        );
    }
}

#[cfg(test)]
mod mutant_kills {
    //! Claims of this module that a mutation test (`cargo mutants`, `docs/reliability.md`)
    //! showed no other test would notice breaking.
    use super::*;

    fn nanos(at: &libc::timespec) -> u128 {
        at.tv_sec as u128 * 1_000_000_000 + at.tv_nsec as u128
    }

    fn monotonic_now() -> libc::timespec {
        monotonic_after(Duration::ZERO)
    }

    #[test]
    fn futex_deadlines_are_normalised_and_exactly_the_timeout_ahead() {
        // 999_999_999 ns carries into the seconds unless the clock reads an exact second.
        for timeout in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999_999_999),
            Duration::new(1, 999_999_999),
            Duration::from_millis(20),
            Duration::new(7, 500_000_000),
        ] {
            let before = monotonic_now();
            let at = monotonic_after(timeout);
            let after = monotonic_now();
            assert!(
                (0..1_000_000_000).contains(&at.tv_nsec),
                "tv_nsec {} for {timeout:?}",
                at.tv_nsec
            );
            let (at, timeout) = (nanos(&at), timeout.as_nanos());
            assert!(
                nanos(&before) + timeout <= at && at <= nanos(&after) + timeout,
                "{timeout} ns ahead"
            );
        }
        // Saturates rather than overflowing: about 136 years ahead.
        let far = monotonic_after(Duration::MAX);
        assert!(far.tv_sec >= u32::MAX as libc::time_t);
    }

    #[test]
    fn a_wake_with_nobody_asleep_wakes_nobody() {
        let word = AtomicU32::new(0);
        assert!(!futex_wake(&word));
        assert!(!futex_wake_all(&word));
        assert_eq!(futex_wait(&word, 0, Duration::ZERO), FutexWait::TimedOut);
    }
}

// Floor: wait, above sys; imports only sys and base, never ring, handshake or higher.
//! The one wait path of the crate: sleeping on shared futex words (one ring's, or many at once
//! with `futex_waitv`), sleeping on a socket, and plain pauses, each ended early by a
//! [`CancelToken`] and never by an unrelated signal.
//!
//! Every blocking call waits through this module (which reaches the kernel through
//! `crate::sys`), so one design holds everywhere:
//! - the token's word (futex waits) or eventfd (socket waits) sits in the same system call as the
//!   thing waited for, so a cancel between "checked the token" and "went to sleep" still wakes;
//! - `EINTR` is retried against the same deadline: a signal neither ends a wait nor extends it,
//!   unless the wait was asked to end on one ([`OnSignal::Interrupt`], the `_interruptible`
//!   calls a C caller needs to look at its own signals).

pub(crate) mod cancel;
pub(crate) mod pace;

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::{Error, Result};
use crate::sys::futex::{self, FutexWait, WAITV_MAX, Woke};
use crate::wait::cancel::CancelToken;

/// Longest single sleep on a ring's futex. It bounds how late a sleeping consumer notices a
/// producer that published without waking it (upstream's producer can, see
/// `docs/wire-format.md`), a dead peer, or a ring the peer marked fatal.
pub(crate) const MAX_NAP: Duration = Duration::from_millis(50);
/// The first sleep after a consumer runs out of spins (a pace sized to the feed may make it
/// longer). Not shorter: against the real Python producer, a first nap under ~4 ms (0.5, 1
/// and 2 ms were tried) left about 1 % of the wakes after a spin ~0.5 ms late, and at 0.5 ms
/// the nap itself ran out first ~8 times in 4,000 ticks; from 5 ms on the woken ticks' p99
/// fell from ~430 µs to ~95 µs and no nap ran out (`docs/performance.md`, "The first nap").
/// It is also what a wake lost in upstream's window (`docs/wire-format.md`) can cost: none was
/// seen in some 100,000 ticks of those trials.
pub(crate) const FIRST_NAP: Duration = Duration::from_millis(5);
/// How often a wait without `futex_waitv` (kernels before 5.16) or without an eventfd looks at
/// its cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// The growing naps of a consumer asleep on an empty ring: [`FIRST_NAP`], doubling, up to
/// [`MAX_NAP`]. Restarted whenever a message arrives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Naps {
    next: Duration,
}

impl Naps {
    #[cfg(any(test, feature = "async"))]
    pub(crate) fn new() -> Self {
        Naps::starting_at(FIRST_NAP)
    }

    /// Naps starting at `first` (a pace sized to the feed), doubling up to [`MAX_NAP`].
    pub(crate) fn starting_at(first: Duration) -> Self {
        Naps {
            next: first.min(MAX_NAP),
        }
    }

    /// The next nap, never past `deadline`.
    pub(crate) fn next(&mut self, deadline: Option<Instant>) -> Duration {
        let nap = self.next;
        self.next = (self.next * 2).min(MAX_NAP);
        match deadline {
            Some(deadline) => nap.min(deadline.saturating_duration_since(Instant::now())),
            None => nap,
        }
    }
}

/// Sleeps while every `(word, expected)` pair still holds, for at most `timeout`, or until
/// `cancel` is cancelled; `Err(Cancelled)` then, naming `doing`.
///
/// One `futex_waitv` over the words and the token's word (Linux ≥ 5.16), so a `FUTEX_WAKE`
/// on any of them, from any process mapping it, ends the sleep. Before 5.16 it waits on the first
/// word alone, in slices of at most 10 ms when a token or other words must be watched, so a
/// wake on any other word is seen within 10 ms. Beyond 127 words the same 10 ms bound holds.
pub(crate) fn sleep_on(
    words: &[(&AtomicU32, u32)],
    timeout: Duration,
    cancel: Option<&CancelToken>,
    doing: &'static str,
) -> Result<Woke> {
    sleep_on_with(words, timeout, cancel, doing, OnSignal::Retry)
}

/// What a futex sleep does when a signal interrupts it (`EINTR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnSignal {
    /// Sleep on against the same deadline (every wait of the crate, by default).
    Retry,
    /// End the wait with [`Error::Interrupted`], so the caller can look at its signals.
    Interrupt,
}

/// [`sleep_on`], choosing what a signal does: with [`OnSignal::Interrupt`], an interrupted
/// sleep returns `Err(Interrupted)`, naming `doing`.
pub(crate) fn sleep_on_with(
    words: &[(&AtomicU32, u32)],
    timeout: Duration,
    cancel: Option<&CancelToken>,
    doing: &'static str,
    on_signal: OnSignal,
) -> Result<Woke> {
    check(cancel, doing)?;
    let retry_eintr = on_signal == OnSignal::Retry;
    // More words than one futex_waitv takes: the first ones are waited on, and the nap is cut
    // to 10 ms so that the others are looked at that often.
    let timeout = if words.len() > WAITV_MAX - 1 {
        timeout.min(CANCEL_POLL)
    } else {
        timeout
    };
    let woke = if futex::waitv_supported() {
        // The first 127 words, then the token's: at most the 128 one call takes.
        let mut watched: Vec<(&AtomicU32, u32)> =
            words.iter().take(WAITV_MAX - 1).copied().collect();
        if let Some(token) = cancel {
            watched.push((token.word(), cancel::LIVE));
        }
        match futex::futex_waitv(&watched, timeout, retry_eintr) {
            Ok(woke) => woke,
            Err(Errno::EINTR) => return Err(Error::Interrupted(doing)),
            // This kernel lacks futex_waitv (sys remembers it): the fallback, now and later.
            Err(Errno::ENOSYS) => single_word_sleep(words, timeout, cancel, retry_eintr)
                .ok_or(Error::Interrupted(doing))?,
            Err(_) => Woke::Changed,
        }
    } else {
        single_word_sleep(words, timeout, cancel, retry_eintr).ok_or(Error::Interrupted(doing))?
    };
    check(cancel, doing)?;
    Ok(woke)
}

/// A plain pause of `duration` that a cancel ends early (a futex wait on the token's word).
pub(crate) fn pause(
    duration: Duration,
    cancel: Option<&CancelToken>,
    doing: &'static str,
) -> Result<()> {
    match cancel {
        None => {
            std::thread::sleep(duration);
            Ok(())
        }
        Some(token) => {
            let deadline = deadline_after(duration);
            loop {
                check(Some(token), doing)?;
                let left = remaining(deadline);
                if left.is_zero() {
                    return Ok(());
                }
                futex::futex_wait(token.word(), cancel::LIVE, left);
            }
        }
    }
}

/// Waits until `fd` is readable (or hung up), `deadline` passes (`Ok(false)`), or `cancel` is
/// cancelled. `EINTR` is retried against the same deadline.
pub(crate) fn readable(
    fd: BorrowedFd<'_>,
    deadline: Option<Instant>,
    cancel: Option<&CancelToken>,
    doing: &'static str,
) -> Result<bool> {
    readable_with(fd, deadline, cancel, doing, OnSignal::Retry)
}

/// [`readable`], choosing what a signal does: with [`OnSignal::Interrupt`], a `poll`
/// interrupted by one returns `Err(Interrupted)`, naming `doing`.
pub(crate) fn readable_with(
    fd: BorrowedFd<'_>,
    deadline: Option<Instant>,
    cancel: Option<&CancelToken>,
    doing: &'static str,
    on_signal: OnSignal,
) -> Result<bool> {
    ready(fd, PollFlags::POLLIN, deadline, cancel, doing, on_signal)
}

/// Waits until `fd` is writable (or in error, or hung up: a non-blocking `connect` that has
/// finished either way), `deadline` passes (`Ok(false)`), or `cancel` is cancelled. `EINTR`
/// is retried against the same deadline.
pub(crate) fn writable(
    fd: BorrowedFd<'_>,
    deadline: Option<Instant>,
    cancel: Option<&CancelToken>,
    doing: &'static str,
) -> Result<bool> {
    ready(
        fd,
        PollFlags::POLLOUT,
        deadline,
        cancel,
        doing,
        OnSignal::Retry,
    )
}

/// [`readable`] and [`writable`]: one `poll` over `fd` (for `events`) and the token's eventfd.
fn ready(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
    cancel: Option<&CancelToken>,
    doing: &'static str,
    on_signal: OnSignal,
) -> Result<bool> {
    loop {
        check(cancel, doing)?;
        let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(false);
        }
        let cancel_fd = cancel.and_then(CancelToken::fd);
        // Without an eventfd to poll, look at the token every 10 ms.
        let slice = match (cancel.is_some() && cancel_fd.is_none(), left) {
            (true, Some(left)) => Some(left.min(CANCEL_POLL)),
            (true, None) => Some(CANCEL_POLL),
            (false, left) => left,
        };
        let timeout = match slice {
            // Rounded up to whole milliseconds, so a deadline is never missed by a hair;
            // at most about 65 s per poll, after which the loop simply polls again.
            Some(slice) => PollTimeout::try_from(slice.as_millis().min(65_000) as u64 + 1)
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(fd, events)];
        if let Some(cancel_fd) = cancel_fd {
            fds.push(PollFd::new(cancel_fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) if on_signal == OnSignal::Interrupt => {
                return Err(Error::Interrupted(doing));
            }
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {
                // POLLERR and POLLHUP count too: the caller's next call reports them.
                let ready = fds[0].revents().is_some_and(|events| !events.is_empty());
                if ready {
                    return Ok(true);
                }
            }
            Err(err) => return Err(Error::os("poll", err)),
        }
    }
}

/// `Err(Cancelled)` once `cancel` is cancelled.
#[inline]
pub(crate) fn check(cancel: Option<&CancelToken>, doing: &'static str) -> Result<()> {
    match cancel {
        Some(token) if token.is_cancelled() => Err(Error::Cancelled(doing)),
        _ => Ok(()),
    }
}

/// `Instant::now() + timeout`, or `None` (wait forever) when that overflows.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Time left until `deadline` (a very long time when there is none).
pub(crate) fn remaining(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(at) => at.saturating_duration_since(Instant::now()),
        None => Duration::from_secs(u32::MAX as u64),
    }
}

/// The fallback without `futex_waitv`: the first word alone, in 10 ms slices when a token
/// must be watched. `None` when a signal interrupted it and `retry_eintr` is false.
fn single_word_sleep(
    words: &[(&AtomicU32, u32)],
    timeout: Duration,
    cancel: Option<&CancelToken>,
    retry_eintr: bool,
) -> Option<Woke> {
    let Some(&(word, expected)) = words.first() else {
        return Some(Woke::Changed);
    };
    let deadline = deadline_after(timeout);
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            return Some(Woke::TimedOut);
        }
        // The token, and any word beyond the first, are looked at every 10 ms.
        let slice = if cancel.is_some() || words.len() > 1 {
            left.min(CANCEL_POLL)
        } else {
            left
        };
        match futex::futex_wait(word, expected, slice) {
            FutexWait::Woken => return Some(Woke::Woken(0)),
            FutexWait::Changed => return Some(Woke::Changed),
            FutexWait::Interrupted if !retry_eintr => return None,
            FutexWait::TimedOut | FutexWait::Interrupted => {
                if cancel.is_some_and(CancelToken::is_cancelled) {
                    return Some(Woke::Woken(words.len()));
                }
                // A word beyond the first that no longer holds its value was changed (and
                // perhaps woken) while we slept on the first: the caller must look now.
                if words[1..]
                    .iter()
                    .any(|&(word, expected)| word.load(Ordering::Acquire) != expected)
                {
                    return Some(Woke::Changed);
                }
            }
        }
    }
}

/// Spin, then yield, then sleep in growing steps: the producer's wait for space.
///
/// Spinning and yielding (crossbeam's [`Backoff`]) cover a consumer that is a few messages
/// behind; sleeps from 20 µs doubling to 1 ms cover one that is descheduled, without burning a
/// core. Nothing wakes a waiting producer (the wire has no word for it), so the sleep bounds
/// how late it notices space; a cancel ends a sleep at once.
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
    pub(crate) fn step(
        &mut self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        if !self.backoff.is_completed() {
            self.backoff.snooze();
            return check(cancel, "waiting for space in the ring");
        }
        let nap = self.sleep.min(remaining(deadline));
        self.sleep = (self.sleep * 2).min(Self::LONGEST_SLEEP);
        pause(nap, cancel, "waiting for space in the ring")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sleep_on_times_out_after_the_timeout_and_sees_a_changed_word() {
        let word = AtomicU32::new(1);
        let started = Instant::now();
        let woke = sleep_on(&[(&word, 1)], Duration::from_millis(20), None, "test").unwrap();
        assert_eq!(woke, Woke::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(20));
        let woke = sleep_on(&[(&word, 7)], Duration::from_secs(60), None, "test").unwrap();
        assert_eq!(woke, Woke::Changed);
    }

    /// Wakes `word` until the sleeper has been caught asleep once; bounded, so a broken wait
    /// fails the test instead of hanging it.
    fn wake_until_caught(word: &AtomicU32, wake_all: bool) {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let caught = if wake_all {
                futex::futex_wake_all(word)
            } else {
                futex::futex_wake(word)
            };
            if caught {
                return;
            }
            assert!(Instant::now() < give_up, "the sleeper never went to sleep");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_wake_on_any_word_ends_a_multi_word_sleep() {
        for woken_index in 0..3 {
            let words: Arc<[AtomicU32; 3]> = Arc::new([0, 1, 2].map(AtomicU32::new));
            let sleeper = {
                let words = Arc::clone(&words);
                std::thread::spawn(move || {
                    let pairs: Vec<_> = words.iter().zip([0, 1, 2]).collect();
                    sleep_on(&pairs, Duration::from_secs(60), None, "test")
                })
            };
            wake_until_caught(&words[woken_index], false);
            let woke = sleeper.join().unwrap().unwrap();
            assert_eq!(woke, Woke::Woken(woken_index));
        }
    }

    #[test]
    fn a_cancel_ends_a_futex_sleep_a_pause_and_a_socket_wait() {
        // A futex sleep on a ring word.
        let token = CancelToken::new();
        let word = Arc::new(AtomicU32::new(1));
        let sleeper = {
            let (token, word) = (token.clone(), Arc::clone(&word));
            std::thread::spawn(move || {
                loop {
                    let woke = sleep_on(
                        &[(&word, 1)],
                        Duration::from_secs(60),
                        Some(&token),
                        "napping",
                    );
                    // The probe below wakes the token's word (index 1) to learn that we sleep;
                    // that wake is not yet a cancel, so sleep again, as every caller does.
                    if !matches!(woke, Ok(Woke::Woken(1))) {
                        return woke;
                    }
                }
            })
        };
        // Cancel only once the sleeper is asleep: the cancel word has a waiter.
        wake_until_caught(token.word(), true);
        token.cancel();
        assert!(matches!(
            sleeper.join().unwrap(),
            Err(Error::Cancelled("napping"))
        ));
        // Already cancelled: every kind of wait returns at once.
        assert!(pause(Duration::from_secs(60), Some(&token), "p").is_err());
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::os::fd::AsFd;
        assert!(readable(a.as_fd(), None, Some(&token), "r").is_err());
    }

    #[test]
    fn a_socket_wait_is_cancelled_while_blocked_and_ignores_signals() {
        use std::os::fd::AsFd;
        for _ in 0..20 {
            let token = CancelToken::new();
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            let waiter = {
                let token = token.clone();
                std::thread::spawn(move || readable(a.as_fd(), None, Some(&token), "reading"))
            };
            std::thread::sleep(Duration::from_millis(2));
            token.cancel();
            assert!(matches!(
                waiter.join().unwrap(),
                Err(Error::Cancelled("reading"))
            ));
        }
    }

    #[test]
    fn readable_times_out_at_its_deadline() {
        use std::os::fd::AsFd;
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let started = Instant::now();
        let deadline = deadline_after(Duration::from_millis(30));
        assert!(!readable(a.as_fd(), deadline, None, "r").unwrap());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn naps_start_short_and_grow_to_the_cap() {
        let mut naps = Naps::new();
        let first = naps.next(None);
        assert!(first <= Duration::from_millis(5), "first nap {first:?}");
        let mut last = first;
        for _ in 0..20 {
            let nap = naps.next(None);
            assert!(nap >= last && nap <= MAX_NAP);
            last = nap;
        }
        assert_eq!(last, MAX_NAP);
    }
}

#[cfg(test)]
mod mutant_kills {
    //! Claims of this module that a mutation test (`cargo mutants`, `docs/reliability.md`)
    //! showed no other test would notice breaking. Every wait is bounded; a broken wait fails
    //! the test instead of hanging it.
    use super::*;
    use std::sync::Arc;

    /// Waits for `sleeper` to end, at most 30 s (a broken wait fails here, not hangs).
    fn join_within_30s<T>(sleeper: std::thread::JoinHandle<T>) -> T {
        let give_up = Instant::now() + Duration::from_secs(30);
        while !sleeper.is_finished() {
            assert!(Instant::now() < give_up, "the sleep did not end");
            std::thread::sleep(Duration::from_millis(1));
        }
        sleeper.join().unwrap()
    }

    #[test]
    fn a_pause_lasts_its_duration_with_or_without_a_token() {
        let token = CancelToken::new();
        for cancel in [None, Some(&token)] {
            let started = Instant::now();
            pause(Duration::from_millis(20), cancel, "pausing").unwrap();
            assert!(started.elapsed() >= Duration::from_millis(20), "{cancel:?}");
        }
    }

    #[test]
    fn naps_never_run_past_the_deadline_and_double_each_time() {
        let mut naps = Naps::new();
        assert_eq!(naps.next(None), FIRST_NAP);
        assert_eq!(
            naps.next(deadline_after(Duration::from_secs(3600))),
            FIRST_NAP * 2
        );
        assert_eq!(
            naps.next(Some(Instant::now())),
            Duration::ZERO,
            "deadline passed"
        );
        assert_eq!(naps.next(None), FIRST_NAP * 8);
    }

    #[test]
    fn a_wake_on_the_last_of_127_words_ends_the_sleep() {
        // 127 ring words and no token: one futex_waitv holds them all, so no 10 ms slicing.
        let words: Arc<Vec<AtomicU32>> = Arc::new((0..127).map(|_| AtomicU32::new(0)).collect());
        let sleeper = {
            let words = Arc::clone(&words);
            std::thread::spawn(move || {
                let pairs: Vec<_> = words.iter().map(|word| (word, 0)).collect();
                sleep_on(&pairs, Duration::from_secs(3600), None, "test")
            })
        };
        // All 127 fit in one system call, so nothing cuts the hour short.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !sleeper.is_finished(),
            "a sleep over 127 words was cut short"
        );
        let give_up = Instant::now() + Duration::from_secs(30);
        while !futex::futex_wake(&words[126]) && !sleeper.is_finished() {
            assert!(Instant::now() < give_up, "the sleeper never went to sleep");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(join_within_30s(sleeper).unwrap(), Woke::Woken(126));
    }

    #[test]
    fn a_sleep_on_more_words_than_one_waitv_takes_returns_to_look_at_the_rest() {
        // One futex_waitv takes 127 ring words (and the token's): from the 128th on, some are
        // not in the system call, so the sleep is cut short for the caller to look at them,
        // however long a timeout it asked for.
        let token = CancelToken::new();
        for (count, cancel) in [
            (128, None),
            (200, None),
            (128, Some(&token)),
            (200, Some(&token)),
        ] {
            let cancel = cancel.cloned();
            let words: Vec<AtomicU32> = (0..count).map(|_| AtomicU32::new(0)).collect();
            let sleeper = std::thread::spawn(move || {
                let pairs: Vec<_> = words.iter().map(|word| (word, 0)).collect();
                sleep_on(&pairs, Duration::from_secs(3600), cancel.as_ref(), "test")
            });
            assert_eq!(
                join_within_30s(sleeper).unwrap(),
                Woke::TimedOut,
                "{count} words"
            );
        }
    }

    #[test]
    fn readable_says_true_for_data_and_for_a_hang_up() {
        use std::io::Write;
        use std::os::fd::AsFd;
        let token = CancelToken::new();
        for cancel in [None, Some(&token)] {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            b.write_all(b"x").unwrap();
            let deadline = deadline_after(Duration::from_secs(30));
            assert!(readable(a.as_fd(), deadline, cancel, "r").unwrap());
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            drop(b);
            assert!(readable(a.as_fd(), None, cancel, "r").unwrap());
        }
        // A deadline already passed: false without polling.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!readable(a.as_fd(), Some(Instant::now()), None, "r").unwrap());
    }

    #[test]
    fn every_step_of_a_wait_for_space_sees_a_cancel() {
        let token = CancelToken::new();
        token.cancel();
        let mut wait = SpaceWait::new();
        // The first steps spin or yield, the later ones sleep: each looks at the token.
        for step in 0..40 {
            assert!(
                matches!(
                    wait.step(None, Some(&token)),
                    Err(Error::Cancelled("waiting for space in the ring"))
                ),
                "step {step}"
            );
        }
        let mut wait = SpaceWait::new();
        for _ in 0..40 {
            wait.step(Some(Instant::now()), None).unwrap();
        }
    }

    #[test]
    fn the_fallback_without_futex_waitv_times_out_sees_changes_wakes_and_cancels() {
        // Kernels before 5.16 take this path; this one has futex_waitv, so it is driven
        // directly.
        let word = Arc::new(AtomicU32::new(1));
        assert_eq!(
            single_word_sleep(&[], Duration::from_secs(30), None, true),
            Some(Woke::Changed)
        );
        let started = Instant::now();
        assert_eq!(
            single_word_sleep(&[(&word, 1)], Duration::from_millis(20), None, true),
            Some(Woke::TimedOut)
        );
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "the timeout really waited"
        );
        assert_eq!(
            single_word_sleep(&[(&word, 7)], Duration::from_secs(30), None, true),
            Some(Woke::Changed)
        );
        // Woken on the first word.
        let sleeper = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                single_word_sleep(&[(&word, 1)], Duration::from_secs(3600), None, true)
            })
        };
        let give_up = Instant::now() + Duration::from_secs(30);
        while !futex::futex_wake(&word) && !sleeper.is_finished() {
            assert!(Instant::now() < give_up, "the sleeper never went to sleep");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(join_within_30s(sleeper), Some(Woke::Woken(0)));
        // A cancel is seen at the next 10 ms slice, reported as the token's index.
        let token = CancelToken::new();
        let sleeper = {
            let (word, token) = (Arc::clone(&word), token.clone());
            std::thread::spawn(move || {
                single_word_sleep(&[(&word, 1)], Duration::from_secs(3600), Some(&token), true)
            })
        };
        token.cancel();
        assert_eq!(join_within_30s(sleeper), Some(Woke::Woken(1)));
        // A second word is looked at every 10 ms: a change to it ends a long sleep on the
        // first, and without one the sleep still lasts its timeout.
        let other = Arc::new(AtomicU32::new(0));
        let started = Instant::now();
        assert_eq!(
            single_word_sleep(
                &[(&word, 1), (&other, 0)],
                Duration::from_millis(30),
                None,
                true
            ),
            Some(Woke::TimedOut)
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        let sleeper = {
            let (word, other) = (Arc::clone(&word), Arc::clone(&other));
            std::thread::spawn(move || {
                single_word_sleep(
                    &[(&word, 1), (&other, 0)],
                    Duration::from_secs(3600),
                    None,
                    true,
                )
            })
        };
        other.store(1, Ordering::Release);
        futex::futex_wake(&other);
        assert_eq!(join_within_30s(sleeper), Some(Woke::Changed));
    }

    #[test]
    fn a_cancel_wakes_a_sleeper_that_nothing_else_would_wake() {
        // An hour-long sleep, already blocked when the cancel comes: only the cancel's own
        // FUTEX_WAKE on the token's word can end it.
        let token = CancelToken::new();
        let word = Arc::new(AtomicU32::new(1));
        let sleeper = {
            let (token, word) = (token.clone(), Arc::clone(&word));
            std::thread::spawn(move || {
                sleep_on(
                    &[(&word, 1)],
                    Duration::from_secs(3600),
                    Some(&token),
                    "napping",
                )
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
        assert!(matches!(
            join_within_30s(sleeper),
            Err(Error::Cancelled("napping"))
        ));
    }

    #[test]
    fn remaining_time_is_long_without_a_deadline_and_none_after_it() {
        assert!(remaining(None) >= Duration::from_secs(3600 * 24 * 365));
        assert_eq!(remaining(Some(Instant::now())), Duration::ZERO);
        assert!(remaining(deadline_after(Duration::from_secs(3600))) > Duration::from_secs(3000));
        assert!(
            deadline_after(Duration::MAX).is_none(),
            "overflow: no deadline"
        );
        assert!(futex::waitv_supported());
    }
}

//! The one waiter of a process for every async end: a thread that sleeps on all registered
//! rings' futex words at once (the same `wait::sleep_on` as the selector) and wakes the task
//! whose ring changed. An async end that finds nothing to do registers here and returns
//! `Pending`; no executor thread ever blocks, and an idle process makes one thread sleep.
//!
//! The thread outlives anything a task does to it: a waker that panics is contained, and if
//! the thread ever ends anyway, every registered task is woken and every later registration
//! fails with an error, so no async call waits forever on a reactor that is gone.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ring::shm::Region;
use crate::sys::futex::Woke;
use crate::wait;
use crate::wait::cancel::{self, CancelToken};
use crate::wire::layout::sleeping;

/// What a registered task waits for.
pub(crate) enum Interest {
    /// A consumer that announced sleep with its read cursor at `tail`: ready once the word
    /// leaves SLEEPING (this crate's producer swaps it back before waking) or the head moves
    /// past `tail` (tachyon-ipc's producer wakes but leaves the word at SLEEPING).
    Message { tail: u64 },
    /// A producer on a full ring: ready once the consumer's tail moves past `tail_seen`.
    Space { tail_seen: u64 },
}

/// How the waits of one async end ended, counted by the reactor as it wakes the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WakeStats {
    /// Woken because its ring changed: a producer's futex wake (receive), or the tail moving
    /// (wait for space, which nothing wakes: the reactor looks every 200 µs).
    pub woken_by_ring: u64,
    /// Found ready by a look that no wake for it caused: a message published by a producer
    /// that leaves the word at SLEEPING (tachyon-ipc's) either just before the reactor slept
    /// (its wake reached nobody, and the message waited for the nap) or just as a nap ran
    /// out (the reactor was awake to look; the message waited for nothing). The two cannot be
    /// told apart from the ring. Always 0 with this crate's producer, which clears the word.
    pub missed_wakes: u64,
    /// Ended by the end's cancel token.
    pub cancelled: u64,
    /// Naps that ran out with nothing to do: the bound on a missed wake and the moments the
    /// peer is looked at. Nothing is lost by them; they cost a wake-up each.
    pub naps_run_out: u64,
    /// Messages the task found on its own look right after a nap ran out: the reactor had
    /// seen the ring empty, so each arrived in the microseconds between the reactor's look and
    /// the task's, and no wake was needed. Every message a receive waited for is counted once
    /// as `woken_by_ring`, `missed_wakes` or here.
    pub found_after_nap: u64,
}

/// The counters behind [`WakeStats`], shared by an end and its registrations.
#[derive(Debug, Default)]
pub(crate) struct WakeCounters {
    woken_by_ring: AtomicU64,
    missed_wakes: AtomicU64,
    cancelled: AtomicU64,
    naps_run_out: AtomicU64,
    found_after_nap: AtomicU64,
    /// Why the reactor last woke the end ([`Reason::code`]; 0 once the end registers again).
    last_wake: AtomicU8,
}

impl WakeCounters {
    pub(crate) fn snapshot(&self) -> WakeStats {
        WakeStats {
            woken_by_ring: self.woken_by_ring.load(Ordering::Relaxed),
            missed_wakes: self.missed_wakes.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            naps_run_out: self.naps_run_out.load(Ordering::Relaxed),
            found_after_nap: self.found_after_nap.load(Ordering::Relaxed),
        }
    }

    fn count(&self, reason: Reason) {
        let counter = match reason {
            Reason::Ring => &self.woken_by_ring,
            Reason::MissedWake => &self.missed_wakes,
            Reason::Cancelled => &self.cancelled,
            Reason::NapRanOut => &self.naps_run_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_wake.store(reason.code(), Ordering::Relaxed);
    }

    /// Forgets the last wake: the end registers for a new one.
    pub(crate) fn registering(&self) {
        self.last_wake.store(0, Ordering::Relaxed);
    }

    /// The end's task found a message: if the reactor's last wake of it was a nap running
    /// out with the ring empty, the message arrived after that look and is counted as found
    /// after a nap (it needed no wake). The waker's hand-off orders the reactor's store
    /// before this load.
    pub(crate) fn found_message(&self) {
        if self.last_wake.swap(0, Ordering::Relaxed) == Reason::NapRanOut.code() {
            self.found_after_nap.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why an entry is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Ring,
    MissedWake,
    Cancelled,
    NapRanOut,
}

impl Reason {
    /// The reason as stored in [`WakeCounters::last_wake`] (0 is "none").
    fn code(self) -> u8 {
        match self {
            Reason::Ring => 1,
            Reason::MissedWake => 2,
            Reason::Cancelled => 3,
            Reason::NapRanOut => 4,
        }
    }
}

/// One registered task.
struct Entry {
    /// Keeps the mapping alive while the reactor reads its words.
    region: Arc<Region>,
    interest: Interest,
    cancel: Option<CancelToken>,
    /// Woken at this time whatever happens: the task then checks its peer and re-registers
    /// with a longer nap (bounds a missed wake and notices a dead peer).
    due: Instant,
    waker: Waker,
    counters: Arc<WakeCounters>,
}

impl Entry {
    /// Why the task should run now, if it should. `woken_word` is the address of the word
    /// whose `FUTEX_WAKE` ended the thread's last sleep: a moved head is credited to a wake
    /// only when it was this ring's.
    fn ready(&self, now: Instant, woken_word: Option<usize>) -> Option<Reason> {
        let header = self.region.header();
        let ring = match self.interest {
            Interest::Message { tail } => {
                let word = &header.consumer_sleeping;
                if word.load(Ordering::Acquire) != sleeping::SLEEPING {
                    Some(Reason::Ring)
                } else if header.head.load(Ordering::Acquire) != tail {
                    Some(if woken_word == Some(word.as_ptr() as usize) {
                        Reason::Ring
                    } else {
                        Reason::MissedWake
                    })
                } else {
                    None
                }
            }
            Interest::Space { tail_seen } => {
                (header.tail.load(Ordering::Acquire) != tail_seen).then_some(Reason::Ring)
            }
        };
        ring.or_else(|| {
            self.cancel
                .as_ref()
                .is_some_and(CancelToken::is_cancelled)
                .then_some(Reason::Cancelled)
        })
        .or_else(|| (now >= self.due).then_some(Reason::NapRanOut))
    }
}

/// How often a producer waiting for space has its tail looked at (nothing wakes it).
const SPACE_POLL: Duration = Duration::from_micros(200);

/// The registry the reactor thread serves.
pub(crate) struct Reactor {
    entries: Mutex<HashMap<u64, Entry>>,
    /// False once the thread has ended (it never should): set under the `entries` lock, so a
    /// registration either lands before the thread wakes everything on its way out, or fails.
    alive: AtomicBool,
    /// Bumped on every registration; the thread sleeps on it beside the rings' words.
    generation: AtomicU32,
    next_id: AtomicU64,
    /// Sleeps and wake-ups of the thread (for the idle-CPU figures).
    sleeps: AtomicU64,
    /// Wakers that panicked (each contained; the thread went on).
    waker_panics: AtomicU64,
}

/// The process's reactor, started on first use; an error if its thread could not start or
/// has ended.
pub(crate) fn reactor() -> Result<&'static Reactor> {
    static REACTOR: OnceLock<Option<&'static Reactor>> = OnceLock::new();
    let reactor = REACTOR.get_or_init(|| {
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor::new()));
        std::thread::Builder::new()
            .name("tachyon-reactor".into())
            .spawn(move || reactor.serve())
            .ok()
            .map(|_| reactor)
    });
    match reactor {
        Some(reactor) if reactor.is_alive() => Ok(reactor),
        Some(_) => Err(gone()),
        None => Err(Error::os(
            "spawn (the tachyon-reactor thread)",
            std::io::Error::other("the async waiter thread could not be started"),
        )),
    }
}

/// The error of every async call once the reactor thread has ended.
fn gone() -> Error {
    Error::os(
        "the tachyon-reactor thread",
        std::io::Error::other("the async waiter thread has ended; async ends cannot wait"),
    )
}

impl Reactor {
    fn new() -> Reactor {
        Reactor {
            entries: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            generation: AtomicU32::new(0),
            next_id: AtomicU64::new(1),
            sleeps: AtomicU64::new(0),
            waker_panics: AtomicU64::new(0),
        }
    }

    /// A fresh id for one async end's registrations.
    pub(crate) fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers (or replaces) `id`'s interest; `waker` is woken once it is ready or `due`,
    /// and `counters` learn why. An error once the reactor thread has ended.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &self,
        id: u64,
        region: &Arc<Region>,
        interest: Interest,
        cancel: Option<&CancelToken>,
        due: Instant,
        waker: &Waker,
        counters: &Arc<WakeCounters>,
    ) -> Result<()> {
        let entry = Entry {
            region: Arc::clone(region),
            interest,
            cancel: cancel.cloned(),
            due,
            waker: waker.clone(),
            counters: Arc::clone(counters),
        };
        {
            let mut entries = self.lock();
            if !self.is_alive() {
                return Err(gone());
            }
            entries.insert(id, entry);
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        crate::sys::futex::futex_wake_all(&self.generation);
        Ok(())
    }

    /// Forgets `id`'s interest (a future dropped or polled again).
    pub(crate) fn deregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Times the reactor thread went to sleep.
    pub(crate) fn sleeps(&self) -> u64 {
        self.sleeps.load(Ordering::Relaxed)
    }

    /// Wakers that panicked when the thread woke them (contained; nothing else is affected).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn waker_panics(&self) -> u64 {
        self.waker_panics.load(Ordering::Relaxed)
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The thread's body: `run` until it returns or panics (it should do neither), then mark
    /// the reactor gone and wake every registered task, whose next poll reports the error.
    fn serve(&self) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.run()));
        let stranded: Vec<Waker> = {
            let mut entries = self.lock();
            self.alive.store(false, Ordering::Release);
            entries.drain().map(|(_, entry)| entry.waker).collect()
        };
        for waker in stranded {
            self.wake(waker);
        }
    }

    /// Wakes one task; a waker that panics is counted and contained, so one task's bug cannot
    /// stop the thread every other async end in the process relies on.
    fn wake(&self, waker: Waker) {
        if catch_unwind(AssertUnwindSafe(|| waker.wake())).is_err() {
            self.waker_panics.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn run(&self) {
        let mut woken_word: Option<usize> = None;
        loop {
            #[cfg(test)]
            tests::maybe_fail_here();
            let generation = self.generation.load(Ordering::SeqCst);
            let now = Instant::now();
            // Wake (and drop) every entry that is ready; keep the rest to sleep on.
            let (ready, waiting): (Vec<Waker>, Vec<Watched>) = {
                let mut entries = self.lock();
                let ready: Vec<(u64, Reason)> = entries
                    .iter()
                    .filter_map(|(id, entry)| entry.ready(now, woken_word).map(|r| (*id, r)))
                    .collect();
                let ready = ready
                    .into_iter()
                    .filter_map(|(id, reason)| {
                        let entry = entries.remove(&id)?;
                        entry.counters.count(reason);
                        Some(entry.waker)
                    })
                    .collect();
                let waiting = entries.values().map(Watched::of).collect();
                (ready, waiting)
            };
            for waker in ready {
                self.wake(waker);
            }
            let mut words: Vec<(&AtomicU32, u32)> = Vec::with_capacity(waiting.len() * 2 + 1);
            let mut until: Option<Instant> = None;
            for watched in &waiting {
                let header = watched.region.header();
                if watched.space {
                    let poll_at = now + SPACE_POLL;
                    until = Some(until.map_or(poll_at, |u| u.min(poll_at)));
                } else {
                    words.push((&header.consumer_sleeping, sleeping::SLEEPING));
                }
                if let Some(token) = &watched.cancel {
                    words.push((token.word(), cancel::LIVE));
                }
                until = Some(until.map_or(watched.due, |u| u.min(watched.due)));
            }
            words.push((&self.generation, generation));
            let nap = until.map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
            self.sleeps.fetch_add(1, Ordering::Relaxed);
            // Errors cannot happen without a token (`None`); any wake just loops.
            woken_word = match wait::sleep_on(&words, nap, None, "the reactor's wait") {
                Ok(Woke::Woken(index)) => words.get(index).map(|(word, _)| word.as_ptr() as usize),
                _ => None,
            };
        }
    }
}

/// What the thread sleeps on for one entry (a snapshot, taken under the lock).
struct Watched {
    region: Arc<Region>,
    space: bool,
    cancel: Option<CancelToken>,
    due: Instant,
}

impl Watched {
    fn of(entry: &Entry) -> Watched {
        Watched {
            region: Arc::clone(&entry.region),
            space: matches!(entry.interest, Interest::Space { .. }),
            cancel: entry.cancel.clone(),
            due: entry.due,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reactor's own promises, on reactors of the test's (not the process's): a waker
    //! that panics is contained, and a reactor whose thread ended strands no task.
    use super::*;
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    thread_local! {
        /// Makes the next pass of this thread's reactor loop panic (a stand-in for a bug).
        static FAIL_NEXT_PASS: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn maybe_fail_here() {
        if FAIL_NEXT_PASS.with(Cell::get) {
            panic!("a planted failure of the reactor loop");
        }
    }

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct PanickingWaker;
    impl Wake for PanickingWaker {
        fn wake(self: Arc<Self>) {
            panic!("a waker that panics");
        }
    }

    fn region() -> Arc<Region> {
        Arc::new(Region::heap(1 << 12).unwrap())
    }

    /// A reactor of the test's own, served on a thread that runs `before` first.
    fn start(before: impl FnOnce() + Send + 'static) -> &'static Reactor {
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor::new()));
        std::thread::spawn(move || {
            before();
            reactor.serve()
        });
        reactor
    }

    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < give_up, "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_panicking_waker_does_not_stop_the_reactor() {
        let reactor = start(|| {});
        let counters = Arc::new(WakeCounters::default());
        let (doomed, healthy) = (region(), region());
        for region in [&doomed, &healthy] {
            region
                .header()
                .consumer_sleeping
                .store(sleeping::SLEEPING, Ordering::Release);
        }
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(reactor.waker_panics(), 0, "no waker has run yet");
        let panicking = Waker::from(Arc::new(PanickingWaker));
        reactor
            .register(
                1,
                &doomed,
                Interest::Message { tail: 0 },
                None,
                far,
                &panicking,
                &counters,
            )
            .unwrap();
        // The doomed ring's producer publishes: its task is woken, and its waker panics.
        doomed.header().head.store(64, Ordering::Release);
        doomed
            .header()
            .consumer_sleeping
            .store(sleeping::AWAKE, Ordering::Release);
        crate::sys::futex::futex_wake(&doomed.header().consumer_sleeping);
        eventually("the panicking waker was called", || {
            reactor.waker_panics() == 1
        });
        // Another ring's task is still served by the same thread.
        let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counting));
        reactor
            .register(
                2,
                &healthy,
                Interest::Message { tail: 0 },
                None,
                far,
                &waker,
                &counters,
            )
            .unwrap();
        healthy.header().head.store(64, Ordering::Release);
        healthy
            .header()
            .consumer_sleeping
            .store(sleeping::AWAKE, Ordering::Release);
        crate::sys::futex::futex_wake(&healthy.header().consumer_sleeping);
        eventually("the healthy task was woken", || {
            counting.0.load(Ordering::SeqCst) == 1
        });
        assert!(reactor.is_alive());
        assert_eq!(reactor.waker_panics(), 1, "the healthy waker did not panic");
        assert_eq!(counters.snapshot().woken_by_ring, 2);
    }

    #[test]
    fn a_reactor_whose_thread_ended_wakes_its_tasks_and_refuses_new_ones() {
        // The thread registers a task, then its loop fails on the first pass.
        let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counting));
        let counters = Arc::new(WakeCounters::default());
        let ring = region();
        ring.header()
            .consumer_sleeping
            .store(sleeping::SLEEPING, Ordering::Release);
        let far = Instant::now() + Duration::from_secs(3600);
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor::new()));
        reactor
            .register(
                1,
                &ring,
                Interest::Message { tail: 0 },
                None,
                far,
                &waker,
                &counters,
            )
            .unwrap();
        std::thread::spawn(move || {
            FAIL_NEXT_PASS.with(|fail| fail.set(true));
            reactor.serve()
        });
        eventually("the stranded task was woken", || {
            counting.0.load(Ordering::SeqCst) == 1
        });
        assert!(!reactor.is_alive());
        let refused = reactor.register(
            2,
            &ring,
            Interest::Message { tail: 0 },
            None,
            far,
            &waker,
            &counters,
        );
        assert!(
            matches!(&refused, Err(Error::Os { syscall, .. }) if syscall.contains("reactor")),
            "{refused:?}"
        );
    }

    /// Whether thread `tid` of this process is blocked in the kernel (state `S`).
    fn blocked(tid: nix::unistd::Pid) -> bool {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("State:"))
            .is_some_and(|state| state.trim_start().starts_with('S'))
    }

    #[test]
    fn a_foreign_producers_wake_is_credited_to_the_ring_it_woke() {
        // tachyon-ipc's producer publishes and FUTEX_WAKEs the word but leaves it SLEEPING:
        // only the word whose wake ended the reactor's sleep tells a wake from a missed one.
        let (tids, tid) = std::sync::mpsc::channel();
        let reactor = start(move || tids.send(nix::unistd::gettid()).unwrap());
        let tid = tid.recv().unwrap();
        eventually("the reactor sleeps", || {
            reactor.sleeps() >= 1 && blocked(tid)
        });
        let ring = region();
        let word = &ring.header().consumer_sleeping;
        word.store(sleeping::SLEEPING, Ordering::Release);
        let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let counters = Arc::new(WakeCounters::default());
        let slept = reactor.sleeps();
        reactor
            .register(
                1,
                &ring,
                Interest::Message { tail: 0 },
                None,
                Instant::now() + Duration::from_secs(3600),
                &Waker::from(Arc::clone(&counting)),
                &counters,
            )
            .unwrap();
        // Asleep again, now on the ring's word too: the wake below must end that sleep.
        eventually("the reactor sleeps on the ring", || {
            reactor.sleeps() > slept && blocked(tid)
        });
        ring.header().head.store(64, Ordering::Release);
        crate::sys::futex::futex_wake(word);
        eventually("the task was woken", || {
            counting.0.load(Ordering::SeqCst) == 1
        });
        let stats = counters.snapshot();
        assert_eq!(
            (stats.woken_by_ring, stats.missed_wakes),
            (1, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn a_producer_waiting_for_space_costs_a_look_every_200_us_not_a_spin() {
        // Nothing wakes a wait for space: the reactor naps SPACE_POLL between looks at the
        // tail. 100 ms of waiting is at most ~500 naps; a reactor that spun would count tens of
        // thousands.
        let reactor = start(|| {});
        let ring = region();
        let counters = Arc::new(WakeCounters::default());
        reactor
            .register(
                1,
                &ring,
                Interest::Space { tail_seen: 0 },
                None,
                Instant::now() + Duration::from_secs(3600),
                &Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0)))),
                &counters,
            )
            .unwrap();
        let before = reactor.sleeps();
        std::thread::sleep(Duration::from_millis(100));
        let naps = reactor.sleeps() - before;
        assert!(naps <= 1_000, "{naps} sleeps in 100 ms");
        assert_eq!(
            counters.snapshot(),
            WakeStats::default(),
            "the tail never moved"
        );
    }

    #[test]
    fn a_deregistered_task_is_never_woken() {
        // A receive future dropped mid-wait deregisters: the reactor must forget its waker,
        // though the entry would soon be due (its nap running out).
        let reactor = start(|| {});
        let counters = Arc::new(WakeCounters::default());
        let (dropped, witness) = (region(), region());
        for ring in [&dropped, &witness] {
            ring.header()
                .consumer_sleeping
                .store(sleeping::SLEEPING, Ordering::Release);
        }
        let forgotten = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let registered_at = Instant::now();
        reactor
            .register(
                1,
                &dropped,
                Interest::Message { tail: 0 },
                None,
                registered_at + Duration::from_millis(100),
                &Waker::from(Arc::clone(&forgotten)),
                &counters,
            )
            .unwrap();
        reactor.deregister(1);
        // 0 unless this thread stalled for the whole 100 ms (then the wake came before).
        let woken_before = forgotten.0.load(Ordering::SeqCst);
        // A second task due later shows the reactor has looked past the first one's due time.
        let witness_waker = Arc::new(CountingWaker(AtomicUsize::new(0)));
        reactor
            .register(
                2,
                &witness,
                Interest::Message { tail: 0 },
                None,
                registered_at + Duration::from_millis(200),
                &Waker::from(Arc::clone(&witness_waker)),
                &Arc::new(WakeCounters::default()),
            )
            .unwrap();
        eventually("the witness's nap ran out", || {
            witness_waker.0.load(Ordering::SeqCst) == 1
        });
        assert_eq!(
            forgotten.0.load(Ordering::SeqCst),
            woken_before,
            "a deregistered task was woken"
        );
        if woken_before == 0 {
            assert_eq!(counters.snapshot(), WakeStats::default());
        }
    }

    #[test]
    fn a_wait_for_space_is_ready_once_the_tail_moves_past_the_tail_seen() {
        // Nothing wakes a producer waiting for space: the reactor looks at the tail, and only
        // a tail that moved (or a cancel, or the nap's end) makes the task ready.
        let ring = region();
        let header = ring.header();
        header.tail.store(128, Ordering::Release);
        let token = CancelToken::new();
        let entry = Entry {
            region: Arc::clone(&ring),
            interest: Interest::Space { tail_seen: 128 },
            cancel: Some(token.clone()),
            due: Instant::now() + Duration::from_secs(3600),
            waker: Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0)))),
            counters: Arc::default(),
        };
        let now = Instant::now();
        assert_eq!(entry.ready(now, None), None, "the tail has not moved");
        assert_eq!(
            entry.ready(now + Duration::from_secs(3600), None),
            Some(Reason::NapRanOut)
        );
        token.cancel();
        assert_eq!(entry.ready(now, None), Some(Reason::Cancelled));
        header.tail.store(192, Ordering::Release);
        assert_eq!(
            entry.ready(now, None),
            Some(Reason::Ring),
            "the consumer freed space"
        );
    }

    #[test]
    fn a_moved_head_is_a_wake_only_when_that_rings_word_was_woken() {
        // tachyon-ipc's producer wakes without swapping the word back: the head decides, and
        // the futex wake that ended the sleep says whether the wake reached us.
        let ring = region();
        let header = ring.header();
        header
            .consumer_sleeping
            .store(sleeping::SLEEPING, Ordering::Release);
        let entry = Entry {
            region: Arc::clone(&ring),
            interest: Interest::Message { tail: 0 },
            cancel: None,
            due: Instant::now() + Duration::from_secs(3600),
            waker: Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0)))),
            counters: Arc::default(),
        };
        let now = Instant::now();
        let word = header.consumer_sleeping.as_ptr() as usize;
        assert_eq!(entry.ready(now, Some(word)), None, "nothing published");
        header.head.store(64, Ordering::Release);
        assert_eq!(entry.ready(now, Some(word)), Some(Reason::Ring));
        assert_eq!(entry.ready(now, None), Some(Reason::MissedWake));
        assert_eq!(entry.ready(now, Some(word + 64)), Some(Reason::MissedWake));
        // This crate's producer swaps the word back before its wake: a wake, whatever ended
        // the sleep.
        header
            .consumer_sleeping
            .store(sleeping::AWAKE, Ordering::Release);
        assert_eq!(entry.ready(now, None), Some(Reason::Ring));
    }
}

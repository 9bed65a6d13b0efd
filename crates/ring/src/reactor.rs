//! The one waiter of a process for every async end: a thread that sleeps on all registered
//! rings' futex words at once (the same `wait::sleep_on` as the selector) and wakes the task
//! whose ring changed. An async end that finds nothing to do registers here and returns
//! `Pending`; no executor thread ever blocks, and an idle process makes one thread sleep.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::cancel::{self, CancelToken};
use crate::error::{Error, Result};
use crate::layout::sleeping;
use crate::shm::Region;
use crate::wait;

/// What a registered task waits for.
pub(crate) enum Interest {
    /// A consumer that announced sleep (its word reads SLEEPING): ready once the word changes.
    Message,
    /// A producer on a full ring: ready once the consumer's tail moves past `tail_seen`.
    Space { tail_seen: u64 },
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
}

impl Entry {
    fn ready(&self, now: Instant) -> bool {
        let header = self.region.header();
        now >= self.due
            || self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
            || match self.interest {
                Interest::Message => {
                    header.consumer_sleeping.load(Ordering::Acquire) != sleeping::SLEEPING
                }
                Interest::Space { tail_seen } => header.tail.load(Ordering::Acquire) != tail_seen,
            }
    }
}

/// How often a producer waiting for space has its tail looked at (nothing wakes it).
const SPACE_POLL: Duration = Duration::from_micros(200);

/// The registry the reactor thread serves.
pub(crate) struct Reactor {
    entries: Mutex<HashMap<u64, Entry>>,
    /// Bumped on every registration; the thread sleeps on it beside the rings' words.
    generation: AtomicU32,
    next_id: AtomicU64,
    /// Sleeps and wake-ups of the thread (for the idle-CPU figures).
    sleeps: AtomicU64,
}

/// The process's reactor, started on first use; an error if its thread could not start.
pub(crate) fn reactor() -> Result<&'static Reactor> {
    static REACTOR: OnceLock<Option<&'static Reactor>> = OnceLock::new();
    let reactor = REACTOR.get_or_init(|| {
        let reactor: &'static Reactor = Box::leak(Box::new(Reactor {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU32::new(0),
            next_id: AtomicU64::new(1),
            sleeps: AtomicU64::new(0),
        }));
        std::thread::Builder::new()
            .name("tachyon-reactor".into())
            .spawn(move || reactor.run())
            .ok()
            .map(|_| reactor)
    });
    reactor.ok_or_else(|| {
        Error::os(
            "spawn (the tachyon-reactor thread)",
            std::io::Error::other("the async waiter thread could not be started"),
        )
    })
}

impl Reactor {
    /// A fresh id for one async end's registrations.
    pub(crate) fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers (or replaces) `id`'s interest; `waker` is woken once it is ready or `due`.
    pub(crate) fn register(
        &self,
        id: u64,
        region: &Arc<Region>,
        interest: Interest,
        cancel: Option<&CancelToken>,
        due: Instant,
        waker: &Waker,
    ) {
        let entry = Entry {
            region: Arc::clone(region),
            interest,
            cancel: cancel.cloned(),
            due,
            waker: waker.clone(),
        };
        self.lock().insert(id, entry);
        self.generation.fetch_add(1, Ordering::SeqCst);
        wait::futex_wake_all(&self.generation);
    }

    /// Forgets `id`'s interest (a future dropped or polled again).
    pub(crate) fn deregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Times the reactor thread went to sleep.
    pub(crate) fn sleeps(&self) -> u64 {
        self.sleeps.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        loop {
            let generation = self.generation.load(Ordering::SeqCst);
            let now = Instant::now();
            // Wake (and drop) every entry that is ready; keep the rest to sleep on.
            let (ready, waiting): (Vec<Waker>, Vec<Watched>) = {
                let mut entries = self.lock();
                let ids: Vec<u64> = entries
                    .iter()
                    .filter(|(_, entry)| entry.ready(now))
                    .map(|(id, _)| *id)
                    .collect();
                let ready = ids
                    .iter()
                    .filter_map(|id| entries.remove(id))
                    .map(|entry| entry.waker)
                    .collect();
                let waiting = entries.values().map(Watched::of).collect();
                (ready, waiting)
            };
            for waker in ready {
                waker.wake();
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
            let _ = wait::sleep_on(&words, nap, None, "the reactor's wait");
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

//! Counters of one end of a ring, for a service to export (Prometheus, logs, a status page).
//! Each end counts only what it does itself, in plain fields updated on its own thread: taking
//! a snapshot costs one atomic load of the other end's cursor, and nothing on the hot path.

/// A producer's counters since the bus opened; see [`Producer::stats`](crate::Producer::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProducerStats {
    /// Messages committed (published or not yet).
    pub committed: u64,
    /// Payload bytes of those messages.
    pub committed_bytes: u64,
    /// Messages visible to the consumer (committed minus the unpublished batch).
    pub published: u64,
    /// Times a send or reserve found the ring full (a waiting send counts once, however long
    /// it waits).
    pub full_events: u64,
    /// Publishes that woke a consumer asleep on the futex.
    pub wakes: u64,
    /// Ring bytes in use now: committed messages the consumer has not released.
    pub depth_bytes: u64,
    /// Ring bytes.
    pub capacity: u64,
}

impl ProducerStats {
    /// `depth_bytes` as a share of the ring, 0.0 to 1.0.
    pub fn fill(&self) -> f64 {
        fill(self.depth_bytes, self.capacity)
    }
}

/// A consumer's counters since the bus opened; see [`Consumer::stats`](crate::Consumer::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConsumerStats {
    /// Messages received and released.
    pub received: u64,
    /// Payload bytes of those messages.
    pub received_bytes: u64,
    /// Sleeps on the futex (after spinning on an empty ring).
    pub sleeps: u64,
    /// Sleeps a producer's wake ended (the rest timed out).
    pub wakeups: u64,
    /// Naps that ran out with nothing published: wake-ups that bought nothing (the bound on
    /// a lost wake, and the looks at the peer).
    pub naps_run_out: u64,
    /// Naps that ran out with a message published and the sleeping word still set: a wake
    /// the producer lost or had not made yet (see [`Consumer::missed_wakes`](crate::Consumer::missed_wakes)).
    pub missed_wakes: u64,
    /// How the spin policy planned the waits, the spins' catches and their time.
    pub pace: crate::wait::pace::PaceStats,
    /// Ring bytes published by the producer and not yet released here.
    pub depth_bytes: u64,
    /// Ring bytes.
    pub capacity: u64,
}

impl ConsumerStats {
    /// `depth_bytes` as a share of the ring, 0.0 to 1.0.
    pub fn fill(&self) -> f64 {
        fill(self.depth_bytes, self.capacity)
    }
}

fn fill(depth: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        0.0
    } else {
        depth.min(capacity) as f64 / capacity as f64
    }
}

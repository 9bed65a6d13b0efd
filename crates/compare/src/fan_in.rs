//! Many producers into one consumer (issue 13): N producer threads in one child process, each
//! on a ring of its own, and this process consuming all N rings.
//!
//! - **Ours**: one thread, a [`Selector`] over the N rings of one [`Listener`]
//!   (`listen_many`), round-robin, sleeping on every ring's futex word at once; each message
//!   taken through `Selector::select_with`, handed over where it was found.
//! - **Theirs** (what a user of upstream has, which has no selector): N threads, one per ring,
//!   each blocking in its own receive (`acquire_rx(10_000)`).
//!
//! The producers are the same on both sides (tachyon-ring's, through [`Tx`]), so the only
//! difference is the consuming side. Each message is 32 bytes: the producer's
//! `CLOCK_MONOTONIC` stamp (taken just before the send; the clock is one per machine, so it
//! compares across processes), a sequence number and the producer's index. The consumer reads
//! the clock after taking the message: that difference is the one-way latency.
//!
//! [`Listener`]: tachyon_ring::Listener

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hdrhistogram::Histogram;
use tachyon_ring::{Bus, Selected, Selector};

use crate::Result;
use crate::ring::{CONNECT_TIMEOUT, Impl, Ours, Ring, Rx, SPIN_THRESHOLD, Tx, Wait};
use crate::work::{self, ChildGuard, DATA, END, Latency};

/// Payload bytes of every fan-in message: stamp, sequence number, producer index, padding.
pub const MESSAGE_SIZE: usize = 32;
/// Ring bytes per producer.
pub const CAPACITY: usize = 1 << 20;

pub use crate::work::monotonic_ns;

/// A message's payload: the send stamp, the producer's sequence number and its index.
fn encode(payload: &mut [u8; MESSAGE_SIZE], stamp_ns: u64, seq: u64, producer: u32) {
    payload[0..8].copy_from_slice(&stamp_ns.to_le_bytes());
    payload[8..16].copy_from_slice(&seq.to_le_bytes());
    payload[16..20].copy_from_slice(&producer.to_le_bytes());
}

/// (stamp, sequence number, producer index) of a payload; `None` if it is not one of ours.
fn decode(data: &[u8]) -> Option<(u64, u64, u32)> {
    if data.len() != MESSAGE_SIZE {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap_or_default());
    let index = u32::from_le_bytes(data[16..20].try_into().unwrap_or_default());
    Some((word(0), word(8), index))
}

/// What a consumer saw: messages, the span from first to last, latencies, and whether every
/// producer's messages came in order.
pub struct Tally {
    messages: u64,
    first_ns: u64,
    last_ns: u64,
    latency: Histogram<u64>,
    /// Next sequence number expected from each producer.
    next_seq: Vec<u64>,
}

impl Tally {
    fn new(producers: usize) -> Tally {
        Tally {
            messages: 0,
            first_ns: u64::MAX,
            last_ns: 0,
            latency: work::histogram(),
            next_seq: vec![0; producers],
        }
    }

    /// Counts one data message and its latency; an error if it is damaged or out of order.
    #[inline]
    fn record(&mut self, data: &[u8]) -> Result<()> {
        let now = monotonic_ns();
        let (stamp, seq, producer) = decode(data).ok_or("a fan-in message arrived damaged")?;
        let expected = self
            .next_seq
            .get_mut(producer as usize)
            .ok_or("a fan-in message names an unknown producer")?;
        if seq != *expected {
            return Err(
                format!("producer {producer}: message {seq} came when {expected} was due").into(),
            );
        }
        *expected += 1;
        self.latency
            .saturating_record(now.saturating_sub(stamp).max(1));
        self.messages += 1;
        self.first_ns = self.first_ns.min(now);
        self.last_ns = now;
        Ok(())
    }

    /// Adds another consumer thread's tally (of other producers).
    fn merge(&mut self, other: Tally) -> Result<()> {
        self.latency.add(&other.latency)?;
        self.messages += other.messages;
        self.first_ns = self.first_ns.min(other.first_ns);
        self.last_ns = self.last_ns.max(other.last_ns);
        for (mine, theirs) in self.next_seq.iter_mut().zip(other.next_seq) {
            *mine = (*mine).max(theirs);
        }
        Ok(())
    }

    /// Data messages per second from the first to the last received, over all rings.
    fn rate(&self) -> f64 {
        let span = self.last_ns.saturating_sub(self.first_ns);
        if span == 0 {
            return 0.0;
        }
        self.messages as f64 * 1e9 / span as f64
    }
}

/// One fan-in trial's figures.
#[derive(Clone, Copy, Debug)]
pub struct FanInResult {
    /// Data messages per second, all rings together.
    pub msgs_per_s: f64,
    /// One-way latency, all rings together.
    pub latency: Latency,
    /// Data messages per CPU second of the consuming process (its threads, from accepting the
    /// producers to the last sentinel): how much work the consuming side spends per message,
    /// whatever share of the two cores the scheduler gave it.
    pub msgs_per_cpu_s: f64,
}

/// How the producers send.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Producers (and rings).
    pub producers: usize,
    /// Data messages each producer sends.
    pub per_producer: u64,
    /// Pause after each message (publishing it first); zero: as fast as the ring takes them,
    /// publishing every 32 (the wire's rule).
    pub gap: Duration,
}

/// Runs one trial: a child process with `load.producers` producer threads, this process
/// consuming the way `side` does.
pub fn trial(side: Impl, load: Load) -> Result<FanInResult> {
    let n = load.producers.max(1);
    // Ours: one socket, a ring per connector. Theirs: upstream listens for one peer per path.
    let paths: Vec<PathBuf> = match side {
        Impl::Ours => vec![work::socket_path("fanin"); n],
        Impl::Theirs | Impl::Iceoryx2 => (0..n).map(|_| work::socket_path("fanin")).collect(),
    };
    let producers = spawn_producers(&paths, load.per_producer, load.gap, false)?;
    let cpu_before = crate::cpu::usage().0;
    let tally = match side {
        Impl::Ours => consume_selecting(&paths[0], n)?,
        Impl::Theirs | Impl::Iceoryx2 => {
            crate::with_ring!(side, R => consume_per_thread::<R>(&paths))?
        }
    };
    let consumer_cpu_s = crate::cpu::usage().0 - cpu_before;
    let sent = producers.finish_json()?["sent"].as_u64().unwrap_or(0);
    let expected = n as u64 * load.per_producer;
    if tally.messages != expected || sent != expected {
        return Err(format!(
            "fan-in of {n}: {} received, {sent} sent, {expected} expected",
            tally.messages
        )
        .into());
    }
    Ok(FanInResult {
        msgs_per_s: tally.rate(),
        latency: Latency::of(&tally.latency),
        msgs_per_cpu_s: tally.messages as f64 / consumer_cpu_s.max(1e-6),
    })
}

/// Spawns `child producers`: one thread per path, each connecting (retrying) to its path.
/// With `hold`, each sends one message and then idles until the child is killed.
pub fn spawn_producers(
    paths: &[PathBuf],
    per_producer: u64,
    gap: Duration,
    hold: bool,
) -> Result<ChildGuard> {
    let mut args = vec!["producers".to_string()];
    for path in paths {
        args.push("--socket".into());
        args.push(path.display().to_string());
    }
    args.extend([
        "--count".into(),
        per_producer.to_string(),
        "--gap-us".into(),
        gap.as_micros().to_string(),
    ]);
    if hold {
        args.push("--hold".into());
    }
    ChildGuard::spawn_self(&args)
}

/// Ours: accepts `n` producers on one socket and takes every message on this thread through a
/// selector, until each producer's sentinel.
fn consume_selecting(path: &Path, n: usize) -> Result<Tally> {
    let options = Bus::options()
        .spin_threshold(SPIN_THRESHOLD)
        .listen_timeout(CONNECT_TIMEOUT);
    let mut listener = options.clone().listen_many(path, CAPACITY)?;
    let mut selector: Selector<usize> = Selector::with_options(&options);
    for key in 0..n {
        selector.add(key, listener.accept()?.into_consumer());
    }
    drop(listener);
    let mut tally = Tally::new(n);
    let mut done = vec![false; n];
    let mut ended = 0;
    while ended < n {
        // `select_with`: the message is done with where it was found (see its docs).
        selector.select_with(|selected| -> Result<()> {
            match selected {
                Selected::Message { key, message } => {
                    if message.type_id() == END {
                        done[*key] = true;
                        ended += 1;
                    } else {
                        tally.record(message.data())?;
                    }
                }
                // The producers' process exits after its last sentinel: a ring whose sentinel
                // came may be reported ended before another ring's sentinel is taken.
                Selected::Ended { key, .. } if done[key] => {}
                Selected::Ended { key, error } => {
                    return Err(format!("producer {key} ended before its sentinel: {error}").into());
                }
            }
            Ok(())
        })??;
    }
    Ok(tally)
}

/// Theirs (or ours, for comparison): a thread per ring, each listening on its own path and
/// receiving until its producer's sentinel.
fn consume_per_thread<R: Ring + 'static>(paths: &[PathBuf]) -> Result<Tally> {
    let n = paths.len();
    let threads: Vec<_> = paths
        .iter()
        .cloned()
        .map(|path| {
            std::thread::spawn(move || -> Result<Tally> {
                let mut rx = R::listen_rx(&path, CAPACITY, Wait::Hybrid)?;
                let mut tally = Tally::new(n);
                loop {
                    let more = rx.recv(|type_id, data| -> Result<bool> {
                        if type_id == END {
                            return Ok(false);
                        }
                        tally.record(data)?;
                        Ok(true)
                    })??;
                    if !more {
                        return Ok(tally);
                    }
                }
            })
        })
        .collect();
    let mut total = Tally::new(n);
    for thread in threads {
        total.merge(thread.join().map_err(|_| "consumer thread panicked")??)?;
    }
    Ok(total)
}

/// The child side: one producer thread per path. Each connects, waits for all the others to
/// have connected, then sends `count` stamped messages and the sentinel (or, with `hold`, one
/// message and then nothing, until the process is killed). Prints `{"sent"}`.
pub fn child_producers(paths: &[PathBuf], count: u64, gap: Duration, hold: bool) -> Result<()> {
    let start = Arc::new(Barrier::new(paths.len()));
    let threads: Vec<_> = paths
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, path)| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || -> Result<u64> {
                let mut tx = match Ours::connect_tx(&path) {
                    Ok(tx) => tx,
                    Err(err) => {
                        // The others wait at the barrier for ever: end the whole child.
                        eprintln!("fan-in producer {index}: {err}");
                        std::process::exit(1);
                    }
                };
                start.wait();
                let count = if hold { 1 } else { count };
                let mut payload = [0u8; MESSAGE_SIZE];
                for seq in 0..count {
                    encode(&mut payload, monotonic_ns(), seq, index as u32);
                    tx.send(DATA, &payload)?;
                    if !gap.is_zero() || hold {
                        tx.flush();
                        std::thread::sleep(gap);
                    }
                }
                if hold {
                    loop {
                        std::thread::park();
                    }
                }
                tx.send(END, &[])?;
                tx.flush();
                Ok(count)
            })
        })
        .collect();
    let mut sent = 0;
    for thread in threads {
        sent += thread.join().map_err(|_| "producer thread panicked")??;
    }
    println!("{}", serde_json::json!({ "sent": sent }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_tallies_check_order() {
        let mut payload = [0u8; MESSAGE_SIZE];
        encode(&mut payload, 123, 7, 2);
        assert_eq!(decode(&payload), Some((123, 7, 2)));
        assert_eq!(decode(&payload[..16]), None);

        let mut tally = Tally::new(3);
        for seq in 0..3 {
            encode(&mut payload, monotonic_ns(), seq, 1);
            tally.record(&payload).unwrap();
        }
        encode(&mut payload, monotonic_ns(), 5, 1);
        assert!(
            tally.record(&payload).is_err(),
            "a gap in the sequence is an error"
        );
        encode(&mut payload, monotonic_ns(), 0, 9);
        assert!(
            tally.record(&payload).is_err(),
            "an unknown producer is an error"
        );

        let mut other = Tally::new(3);
        encode(&mut payload, monotonic_ns(), 0, 0);
        other.record(&payload).unwrap();
        tally.merge(other).unwrap();
        assert_eq!(tally.messages, 4);
        assert_eq!(tally.latency.len(), 4);
    }
}

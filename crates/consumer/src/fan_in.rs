//! `--producers N`: one socket, N producers (each the real Python producer, or any conforming
//! peer), merged on one thread by a `Selector`. Each connection gets its own ring; the run ends
//! when every one of them has sent its sentinel or died.
//!
//! A producer is a connection, not a process: one process may connect twice, each connection
//! with a ring and a sentinel of its own. So rings are keyed by the order they were accepted
//! in, and the peer's pid is reported beside it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tachyon_ring::{Bus, Error, Selected, Selector, SelectorHandle};

use crate::cli::Args;
use crate::signals::StopSignal;
use crate::stats::{Stats, Summary, reading};
use crate::tick::{MarketTick, SENTINEL};

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How one producer's stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Streaming,
    Sentinel,
    /// Its process exited before the sentinel (everything it published was delivered).
    Died,
}

/// One accepted connection: its ring's key in the selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Connection {
    /// 0 for the first connection accepted, 1 for the next, ...: unique in the run.
    index: usize,
    /// The peer process's pid (0 when the kernel did not say); several connections may share it.
    pid: i32,
}

/// One producer's figures, keyed by its connection's index.
struct Producer {
    pid: i32,
    stats: Stats,
    end: End,
}

/// The `--json` summary of a fan-in run.
#[derive(Serialize)]
struct FanInSummary {
    #[serde(flatten)]
    total: Summary,
    producers: Vec<ProducerSummary>,
}

/// One producer's entry in [`FanInSummary`].
#[derive(Serialize)]
struct ProducerSummary {
    /// The connection's index, in the order accepted.
    connection: usize,
    pid: i32,
    /// "sentinel", "died", or "streaming" (stopped by a signal).
    ended: &'static str,
    #[serde(flatten)]
    figures: Summary,
}

/// Per-producer and merged figures of a fan-in run.
pub struct FanIn {
    pub total: Stats,
    producers: BTreeMap<usize, Producer>,
    expected: usize,
}

impl FanIn {
    pub fn new(expected: usize) -> FanIn {
        FanIn {
            total: Stats::new(),
            producers: BTreeMap::new(),
            expected,
        }
    }

    /// Producers that died before their sentinel.
    pub fn dead(&self) -> usize {
        self.producers
            .values()
            .filter(|p| p.end == End::Died)
            .count()
    }

    /// The figures of `connection`, from its first message or end on.
    fn producer(&mut self, connection: Connection) -> &mut Producer {
        self.producers
            .entry(connection.index)
            .or_insert_with(|| Producer {
                pid: connection.pid,
                stats: Stats::new(),
                end: End::Streaming,
            })
    }

    fn finished(&self) -> bool {
        self.producers.len() == self.expected
            && self.producers.values().all(|p| p.end != End::Streaming)
    }

    /// The `--json` summary: the merged figures, plus one entry per producer.
    pub fn to_json(&self) -> String {
        let summary = FanInSummary {
            total: self.total.summary(),
            producers: self
                .producers
                .iter()
                .map(|(&connection, producer)| ProducerSummary {
                    connection,
                    pid: producer.pid,
                    ended: match producer.end {
                        End::Streaming => "streaming",
                        End::Sentinel => "sentinel",
                        End::Died => "died",
                    },
                    figures: producer.stats.summary(),
                })
                .collect(),
        };
        // Numbers and strings only: serde_json cannot fail on them.
        serde_json::to_string(&summary).expect("a summary of numbers serializes")
    }

    pub fn to_table(&self) -> String {
        let mut table = self.total.to_table();
        for (connection, producer) in &self.producers {
            table += &format!(
                "  producer {connection} (pid {}): {} received, {:.0} msg/s, {:?}\n",
                producer.pid,
                producer.stats.received,
                producer.stats.rate(),
                producer.end
            );
        }
        table
    }
}

/// Listens on `args.socket` for `args.producers` producers and merges their ticks. `Ok` once
/// each has sent its sentinel or died (see [`FanIn::dead`]); `Err(Cancelled)` on a signal.
pub fn run(args: &Args, stop: &StopSignal, fan_in: &mut FanIn) -> tachyon_ring::Result<()> {
    let options = Bus::options()
        .cancel_token(stop.token())
        .spin_threshold(args.spin)
        .spin_policy(args.spin_policy.into());
    let mut listener = options.clone().listen_many(&args.socket, args.capacity)?;
    eprintln!(
        "tachyon-consumer: listening on {} for {} producers ({} byte rings)",
        args.socket.display(),
        args.producers,
        args.capacity
    );
    let mut selector: Selector<Connection> = Selector::with_options(&options);
    let handle = selector.handle();
    let wanted = usize::from(args.producers);
    // Accepting runs beside receiving, so a producer that connects late finds the early ones
    // already streaming. The listener (and its socket file) goes when all have connected.
    let mut acceptor = Some(std::thread::spawn(move || {
        accept_all(&mut listener, wanted, &handle)
    }));
    let outcome = receive(&mut selector, fan_in, &mut acceptor);
    fan_in.total.sleeps = selector.sleep_stats();
    outcome?;
    acceptor.map_or(Ok(()), join)
}

type Acceptor = std::thread::JoinHandle<tachyon_ring::Result<()>>;

fn join(acceptor: Acceptor) -> tachyon_ring::Result<()> {
    acceptor
        .join()
        .unwrap_or_else(|_| Err(Error::Handshake("the acceptor thread panicked".into())))
}

fn accept_all(
    listener: &mut tachyon_ring::Listener,
    wanted: usize,
    selector: &SelectorHandle<Connection>,
) -> tachyon_ring::Result<()> {
    for index in 0..wanted {
        let bus = listener.accept()?;
        let pid = bus.peer_credentials().map_or(0, |peer| peer.pid);
        let uid = bus.peer_credentials().map_or(0, |peer| peer.uid);
        eprintln!("tachyon-consumer: producer {index} connected to pid {pid} (uid {uid})");
        selector.add(Connection { index, pid }, bus.into_consumer());
    }
    Ok(())
}

fn receive(
    selector: &mut Selector<Connection>,
    fan_in: &mut FanIn,
    acceptor: &mut Option<Acceptor>,
) -> tachyon_ring::Result<()> {
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    while !fan_in.finished() {
        // A producer whose sentinel arrived leaves the selector once its message is dropped.
        let mut done = None;
        // A signal ends the select itself (the selector looks at the token on every call, a
        // message ready or not), and so does a dead producer (reported as `Ended`). Each
        // message is read where the selector found it (`select_timeout_with`).
        let taken = selector.select_timeout_with(PROGRESS_EVERY, |selected| match selected {
            Selected::Message { key, message } => {
                let connection = *key;
                let producer = fan_in.producer(connection);
                if message.type_id() == SENTINEL {
                    let now = Instant::now();
                    producer.stats.finish(now);
                    producer.end = End::Sentinel;
                    done = Some(connection);
                    if fan_in.finished() {
                        fan_in.total.finish(now);
                    }
                } else {
                    let tick = message.read_pod::<MarketTick>().ok();
                    let (quantity, latency) = reading(message.type_id(), tick);
                    producer.stats.record(message.type_id(), quantity, latency);
                    fan_in.total.record(message.type_id(), quantity, latency);
                }
            }
            Selected::Ended {
                key: connection,
                error,
            } => {
                let producer = fan_in.producer(connection);
                producer.end = End::Died;
                producer.stats.finish(Instant::now());
                let Connection { index, pid } = connection;
                match error {
                    Error::PeerGone { .. } => eprintln!(
                        "tachyon-consumer: producer {index} (pid {pid}) exited before its \
                         sentinel; received {} messages, everything it had published",
                        producer.stats.received
                    ),
                    other => eprintln!("tachyon-consumer: producer {index} (pid {pid}): {other}"),
                }
                if fan_in.finished() {
                    fan_in.total.finish(Instant::now());
                }
            }
        });
        match taken {
            Ok(()) | Err(Error::Timeout(_)) => {}
            Err(other) => {
                fan_in.total.finish(Instant::now());
                return Err(other);
            }
        }
        if let Some(connection) = done {
            selector.remove(&connection);
        }
        let now = Instant::now();
        if now >= next_progress {
            eprintln!("tachyon-consumer: {}", fan_in.total.progress_line());
            next_progress = now + PROGRESS_EVERY;
            // An acceptor that failed (rather than one that accepted everyone) ends the run.
            if acceptor.as_ref().is_some_and(|a| a.is_finished()) {
                acceptor.take().map_or(Ok(()), join)?;
            }
        }
    }
    Ok(())
}

//! The sampler: one [`Monitor`] scans `/proc`, keeps each ring's header mapped read-only
//! between samples, and turns two samples into rates, end roles and alarms.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tachyon_ring::layout::{self, PUBLISH_BATCH, consumer_has_feature, sleeping, state};

use crate::discover::{self, FoundMemfd, Holding, RingKey};
use crate::error::{Error, InspectError};
use crate::map::{HeaderWords, RingMap};
use crate::peek::PeekState;
use crate::procfs::{self, ProcessInfo};
use crate::report::{
    Alarm, AlarmKind, ConsumerState, End, Kind, ProcessReport, RingReport, RingState, SCHEMA,
    Snapshot, Uninspectable, sleeping_name, state_name,
};

/// Samples of throughput kept per ring for the TUI's sparkline.
const HISTORY: usize = 240;

/// What to sample and how alarms are judged.
#[derive(Debug, Clone)]
pub struct Options {
    /// Walk slot headers between tail and head (maps the whole ring read-only, not only the
    /// header page): true msg/s and per-type counts.
    pub peek: bool,
    /// The consumer counts as stalled when its tail has not moved for this long while it
    /// had work (see [`AlarmKind::Stalled`](crate::AlarmKind::Stalled)).
    pub stall_after: Duration,
    /// List memfds that are not rings even when their names do not look like socket paths.
    pub all_memfds: bool,
    /// Only rings one of these processes holds (empty: all).
    pub pids: Vec<u32>,
    /// Only rings whose label matches this glob.
    pub label: Option<glob::Pattern>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            peek: false,
            stall_after: Duration::from_secs(2),
            all_memfds: false,
            pids: Vec::new(),
            label: None,
        }
    }
}

/// Watches every ring on the machine; call [`sample`](Monitor::sample) at the interval you
/// want rates over.
///
/// ```no_run
/// let mut monitor = tachyon_top::Monitor::new(tachyon_top::Options::default());
/// monitor.sample()?;
/// std::thread::sleep(std::time::Duration::from_secs(1));
/// for ring in monitor.sample()?.rings {
///     println!("{} {:?}", ring.label, ring.ring.map(|r| r.bytes_per_s));
/// }
/// # Ok::<(), tachyon_top::Error>(())
/// ```
#[derive(Debug)]
pub struct Monitor {
    options: Options,
    rings: HashMap<RingKey, Tracked>,
    last_sample: Option<Instant>,
}

/// What is remembered about one ring between samples.
#[derive(Debug)]
struct Tracked {
    map: Option<RingMap>,
    previous: Option<(Instant, HeaderWords)>,
    /// When the tail was last seen to change, and the head then.
    tail_moved: (Instant, u64),
    time_full: Duration,
    /// Every process seen holding the ring, with its comm.
    seen: BTreeMap<u32, String>,
    ends: HashMap<u32, End>,
    peek: PeekState,
    history: VecDeque<u64>,
    /// The only process holding the ring maps it twice (both ends in one process).
    both_ends_in_one: bool,
}

impl Tracked {
    fn new(now: Instant) -> Tracked {
        Tracked {
            map: None,
            previous: None,
            tail_moved: (now, 0),
            time_full: Duration::ZERO,
            seen: BTreeMap::new(),
            ends: HashMap::new(),
            peek: PeekState::default(),
            history: VecDeque::new(),
            both_ends_in_one: false,
        }
    }
}

impl Monitor {
    /// A monitor that has not sampled yet.
    pub fn new(options: Options) -> Monitor {
        Monitor {
            options,
            rings: HashMap::new(),
            last_sample: None,
        }
    }

    /// The options it samples with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Scans `/proc` and reads every ring's header once. Rates need two samples: they are
    /// `null` in the first.
    pub fn sample(&mut self) -> Result<Snapshot, Error> {
        let found = discover::scan().map_err(Error::Proc)?;
        let now = Instant::now();
        let window = self.last_sample.map(|last| now - last);
        self.last_sample = Some(now);
        let bound = procfs::bound_unix_paths();
        let mut infos: HashMap<u32, Option<ProcessInfo>> = HashMap::new();
        let mut futex_words: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut rings = Vec::new();
        let mut skipped = 0;
        let mut live = HashSet::new();
        for memfd in found.memfds.values() {
            if !memfd.holders.values().any(Holding::is_end) || !self.wanted(memfd) {
                continue;
            }
            live.insert(memfd.key);
            let tracked = self
                .rings
                .entry(memfd.key)
                .or_insert_with(|| Tracked::new(now));
            let opened = match &tracked.map {
                Some(_) => Ok(()),
                None => open_ring(memfd, self.options.peek).map(|map| tracked.map = Some(map)),
            };
            if let Err(error) = &opened {
                if !self.options.all_memfds && !memfd.name.starts_with('/') {
                    skipped += 1;
                    continue;
                }
                if *error == InspectError::Vanished {
                    continue;
                }
            }
            let mut report = base_report(memfd, tracked, &mut infos);
            match opened {
                Err(error) => report.error = Some(error.to_string()),
                Ok(()) => {
                    let map = tracked.map.as_ref().expect("opened above");
                    let words = map.words();
                    self.observe(memfd, &words, now, &mut futex_words, &mut report);
                }
            }
            rings.push(report);
        }
        self.rings.retain(|key, _| live.contains(key));
        pair_rpc_rings(&mut rings);
        infer_ends(&mut rings);
        for report in &mut rings {
            if let Some(tracked) = self.rings.get_mut(&key_of(report)) {
                for process in &report.processes {
                    if process.end != End::Unknown {
                        tracked.ends.insert(process.pid, process.end);
                    }
                }
            }
            let socket_bound = bound.contains(&report.socket_path);
            if let Some(tracked) = self.rings.get(&key_of(report)) {
                report.alarms = alarms(report, tracked, socket_bound, &self.options, now);
            }
        }
        rings.sort_by(|a, b| a.label.cmp(&b.label).then(a.inode.cmp(&b.inode)));
        let uninspectable = found
            .denied
            .iter()
            .map(|denied| {
                let info = procfs::process_info(denied.pid);
                Uninspectable {
                    pid: denied.pid,
                    comm: info.as_ref().map(|i| i.comm.clone()).unwrap_or_default(),
                    uid: info.and_then(|i| i.uid),
                    reason: denied.reason.clone(),
                }
            })
            .collect();
        Ok(Snapshot {
            schema: SCHEMA,
            unix_time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            window_s: window.map(|w| w.as_secs_f64()),
            rings,
            uninspectable,
            skipped_memfds: skipped,
        })
    }

    fn wanted(&self, memfd: &FoundMemfd) -> bool {
        let options = &self.options;
        let pid_ok = options.pids.is_empty()
            || options
                .pids
                .iter()
                .any(|pid| memfd.holders.get(pid).is_some_and(Holding::is_end));
        let label_ok = options.label.as_ref().is_none_or(|glob| {
            glob.matches(&memfd.name) || glob.matches(discover::socket_path_of(&memfd.name))
        });
        pid_ok && label_ok
    }

    /// Reads one ring's header words into `report`: fill, rates, consumer, peek, ends.
    fn observe(
        &mut self,
        memfd: &FoundMemfd,
        words: &HeaderWords,
        now: Instant,
        futex_words: &mut HashMap<u32, Vec<u64>>,
        report: &mut RingReport,
    ) {
        let peek = self.options.peek;
        let tracked = self.rings.get_mut(&memfd.key).expect("tracked above");
        let map = tracked.map.as_ref().expect("mapped");
        let capacity = map.capacity() as u64;
        if peek {
            tracked.peek.walk(map, words);
        }
        let fill = words.head.saturating_sub(words.tail);
        let margin = tracked
            .peek
            .largest_slot()
            .unwrap_or_else(|| (capacity / 64).max(256))
            .min(capacity);
        let full = capacity - fill.min(capacity) < margin;
        let previous = tracked.previous.replace((now, *words));
        let rates = previous.and_then(|(then, before)| {
            let seconds = (now - then).as_secs_f64();
            let published = words.head.checked_sub(before.head)?;
            let consumed = words.tail.checked_sub(before.tail)?;
            (seconds > 0.0).then_some((seconds, published, consumed))
        });
        match previous {
            Some((_, before)) if before.tail == words.tail => {}
            _ => tracked.tail_moved = (now, words.head),
        }
        if full && let Some((then, _)) = previous {
            tracked.time_full += now - then;
        }
        if let Some((seconds, published, _)) = rates {
            tracked
                .history
                .push_back((published as f64 / seconds) as u64);
            if tracked.history.len() > HISTORY {
                tracked.history.pop_front();
            }
        }
        // The consumer is recognised by sleeping on the word at offset 384 of its mapping.
        if words.consumer_sleeping == sleeping::SLEEPING {
            for (pid, holding) in &memfd.holders {
                let waited = futex_words
                    .entry(*pid)
                    .or_insert_with(|| procfs::futex_words_waited_on(*pid));
                if holding
                    .sleeping_word_addresses()
                    .any(|address| waited.contains(&address))
                {
                    tracked.ends.insert(*pid, End::Consumer);
                }
            }
        }
        for process in &mut report.processes {
            if let Some(end) = tracked.ends.get(&process.pid) {
                process.end = *end;
            }
        }
        report.history = tracked.history.iter().copied().collect();
        report.ring = Some(RingState {
            capacity,
            state: state_name(words.state),
            state_code: words.state,
            head: words.head,
            tail: words.tail,
            fill_bytes: fill,
            fill_ratio: fill as f64 / capacity as f64,
            bytes_per_s: rates.map(|(seconds, published, _)| published as f64 / seconds),
            consumed_bytes_per_s: rates.map(|(seconds, _, consumed)| consumed as f64 / seconds),
            consumer: ConsumerState {
                state: sleeping_name(words.consumer_sleeping),
                sleeping_word: words.consumer_sleeping,
                implementation: if consumer_has_feature(
                    words.consumer_features,
                    layout::FEATURE_BARE_SKIP,
                ) {
                    "tachyon-ring"
                } else {
                    "other"
                },
                features: words.consumer_features,
            },
            full,
            time_full_s: tracked.time_full.as_secs_f64(),
            tail_still_s: (now - tracked.tail_moved.0).as_secs_f64(),
            peek: peek.then(|| {
                tracked
                    .peek
                    .report(rates.map(|(seconds, published, _)| (seconds, published)))
            }),
        });
    }
}

fn key_of(report: &RingReport) -> RingKey {
    RingKey {
        dev: report.dev,
        ino: report.inode,
    }
}

/// Maps the ring through the first source that works: an fd of a holder, else a writable
/// mapping's `map_files` entry. The error of the last source tried when none does.
fn open_ring(memfd: &FoundMemfd, whole: bool) -> Result<RingMap, InspectError> {
    let mut sources: Vec<PathBuf> = Vec::new();
    for (pid, holding) in &memfd.holders {
        sources.extend(holding.fds.iter().map(|fd| procfs::fd_path(*pid, *fd)));
    }
    for (pid, holding) in &memfd.holders {
        sources.extend(
            holding
                .writable
                .iter()
                .map(|(start, end, _)| procfs::map_file_path(*pid, *start, *end)),
        );
    }
    let mut last = InspectError::Vanished;
    for source in sources {
        match RingMap::open(&source, whole) {
            Ok(map) => return Ok(map),
            // A verdict on the file itself: another path to the same file gives the same.
            Err(
                error @ (InspectError::Unsafe(_)
                | InspectError::Truncated { .. }
                | InspectError::NotARing(_)),
            ) => return Err(error),
            Err(error) => last = error,
        }
    }
    Err(last)
}

fn base_report(
    memfd: &FoundMemfd,
    tracked: &mut Tracked,
    infos: &mut HashMap<u32, Option<ProcessInfo>>,
) -> RingReport {
    let mut processes = Vec::new();
    let mut observers = Vec::new();
    let me = std::process::id();
    let mut ends = memfd.holders.values().filter(|h| h.is_end());
    tracked.both_ends_in_one = match (ends.next(), ends.next()) {
        (Some(only), None) => only.writable.len() >= 2,
        _ => false,
    };
    for (pid, holding) in &memfd.holders {
        if !holding.is_end() {
            if *pid != me {
                observers.push(*pid);
            }
            continue;
        }
        let info = infos
            .entry(*pid)
            .or_insert_with(|| procfs::process_info(*pid));
        let Some(info) = info else { continue };
        tracked.seen.insert(*pid, info.comm.clone());
        let mut found_by = Vec::new();
        if !holding.fds.is_empty() {
            found_by.push("fd");
        }
        if !holding.writable.is_empty() {
            found_by.push("maps");
        }
        processes.push(ProcessReport {
            pid: *pid,
            comm: info.comm.clone(),
            cmdline: info.cmdline.clone(),
            uid: info.uid,
            end: End::Unknown,
            found_by,
            fds: holding.fds.clone(),
        });
    }
    RingReport {
        id: memfd.key.to_string(),
        dev: memfd.key.dev,
        inode: memfd.key.ino,
        label: memfd.name.clone(),
        socket_path: discover::socket_path_of(&memfd.name).to_string(),
        kind: Kind::Spsc,
        pair: None,
        processes,
        observers,
        error: None,
        ring: None,
        alarms: Vec::new(),
        history: Vec::new(),
    }
}

/// The two rings of an RPC bus share one label (the socket path) and one set of processes;
/// the request ring is created first, so it has the lower inode.
fn pair_rpc_rings(rings: &mut [RingReport]) {
    let mut by_label: BTreeMap<(String, Vec<u32>), Vec<usize>> = BTreeMap::new();
    for (index, ring) in rings.iter().enumerate() {
        let pids = ring.processes.iter().map(|p| p.pid).collect();
        by_label
            .entry((ring.label.clone(), pids))
            .or_default()
            .push(index);
    }
    for indices in by_label.values() {
        let &[a, b] = indices.as_slice() else {
            continue;
        };
        let (requests, replies) = if rings[a].inode < rings[b].inode {
            (a, b)
        } else {
            (b, a)
        };
        rings[requests].kind = Kind::RpcRequests;
        rings[replies].kind = Kind::RpcReplies;
        rings[requests].pair = Some(rings[replies].id.clone());
        rings[replies].pair = Some(rings[requests].id.clone());
    }
}

/// Fills in the ends that follow from the ones seen: the other process of a two-process ring
/// whose consumer is known produces; on an RPC bus, the requests' consumer produces the
/// replies and the other way round.
fn infer_ends(rings: &mut [RingReport]) {
    for _ in 0..2 {
        for ring in rings.iter_mut() {
            fill_other_end(&mut ring.processes);
        }
        let known: HashMap<String, Vec<(u32, End)>> = rings
            .iter()
            .map(|r| {
                let ends = r.processes.iter().map(|p| (p.pid, p.end)).collect();
                (r.id.clone(), ends)
            })
            .collect();
        for ring in rings.iter_mut() {
            let Some(pair) = ring.pair.as_ref().and_then(|id| known.get(id)) else {
                continue;
            };
            for (pid, end) in pair {
                let opposite = match end {
                    End::Consumer => End::Producer,
                    End::Producer => End::Consumer,
                    End::Unknown => continue,
                };
                if let Some(process) = ring.processes.iter_mut().find(|p| p.pid == *pid)
                    && process.end == End::Unknown
                {
                    process.end = opposite;
                }
            }
        }
    }
}

fn fill_other_end(processes: &mut [ProcessReport]) {
    if let [a, b] = processes {
        match (a.end, b.end) {
            (End::Consumer, End::Unknown) => b.end = End::Producer,
            (End::Unknown, End::Consumer) => a.end = End::Producer,
            (End::Producer, End::Unknown) => b.end = End::Consumer,
            (End::Unknown, End::Producer) => a.end = End::Consumer,
            _ => {}
        }
    }
}

/// The alarms of one ring: fatal, stalled, orphaned.
fn alarms(
    report: &RingReport,
    tracked: &Tracked,
    socket_bound: bool,
    options: &Options,
    now: Instant,
) -> Vec<Alarm> {
    let Some(ring) = &report.ring else {
        return Vec::new();
    };
    let mut alarms = Vec::new();
    if ring.state_code == state::FATAL_ERROR {
        alarms.push(Alarm {
            kind: AlarmKind::Fatal,
            message: "the ring is in fatal error: a consumer found a slot the format forbids"
                .into(),
        });
    }
    let still = now - tracked.tail_moved.0;
    let published_since = ring.head.saturating_sub(tracked.tail_moved.1);
    let pending_past_batch = ring
        .peek
        .as_ref()
        .is_some_and(|peek| peek.pending_messages > u64::from(PUBLISH_BATCH));
    // tachyon-ipc's consumer publishes its tail only every 32 messages, so a producer that
    // moved the head without the tail following proves a stall only against our consumer,
    // past 32 pending messages, or when the ring is full.
    let consumer_should_have_moved = ring.full
        || (published_since > 0
            && (ring.consumer.implementation == "tachyon-ring" || pending_past_batch));
    if ring.state_code == state::READY
        && ring.fill_bytes > 0
        && still >= options.stall_after
        && consumer_should_have_moved
    {
        alarms.push(Alarm {
            kind: AlarmKind::Stalled,
            message: format!(
                "the tail has not moved for {:.1} s while {} bytes wait ({:.0}% full{})",
                still.as_secs_f64(),
                ring.fill_bytes,
                ring.fill_ratio * 100.0,
                if published_since > 0 {
                    format!(", {published_since} bytes published meanwhile")
                } else {
                    String::new()
                }
            ),
        });
    }
    let ends: Vec<&ProcessReport> = report.processes.iter().collect();
    let gone: Vec<String> = tracked
        .seen
        .iter()
        .filter(|(pid, _)| !ends.iter().any(|p| p.pid == **pid))
        .map(|(pid, comm)| format!("pid {pid} ({comm})"))
        .collect();
    let orphan = if ring.state_code == state::DISCONNECTED {
        Some("the ring's state says a side disconnected".to_string())
    } else if !gone.is_empty() {
        Some(format!("{} exited", gone.join(", ")))
    } else if ends.len() == 1 && !socket_bound && !tracked.both_ends_in_one {
        let only = ends[0];
        Some(format!(
            "only pid {} ({}) holds the ring and nobody listens at {}: its peer is gone",
            only.pid, only.comm, report.socket_path
        ))
    } else {
        None
    };
    if let Some(message) = orphan {
        alarms.push(Alarm {
            kind: AlarmKind::Orphaned,
            message,
        });
    }
    alarms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, end: End) -> ProcessReport {
        ProcessReport {
            pid,
            comm: String::new(),
            cmdline: Vec::new(),
            uid: None,
            end,
            found_by: vec!["fd"],
            fds: Vec::new(),
        }
    }

    #[test]
    fn the_other_process_of_a_known_consumer_produces() {
        let mut processes = [process(1, End::Unknown), process(2, End::Consumer)];
        fill_other_end(&mut processes);
        assert_eq!(processes[0].end, End::Producer);
        let mut three = [
            process(1, End::Unknown),
            process(2, End::Consumer),
            process(3, End::Unknown),
        ];
        fill_other_end(&mut three);
        assert_eq!(three[0].end, End::Unknown, "three holders: nothing follows");
    }
}

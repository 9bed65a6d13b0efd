//! What a snapshot says: the types `--json` and `--watch` print (schema `tachyon-top/1`),
//! the Prometheus exposition and `--check` read, and the TUI draws.
//!
//! Every string is serialized by `serde_json`, so labels and command lines holding quotes,
//! backslashes or control characters come out escaped.

use std::collections::BTreeMap;

use serde::Serialize;

/// The schema name every snapshot carries; bumped on any incompatible change.
pub const SCHEMA: &str = "tachyon-top/1";

/// Every ring found at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// When the snapshot was taken, milliseconds since the Unix epoch.
    pub unix_time_ms: u64,
    /// Seconds since the previous sample, over which rates are computed (`null` on the first).
    pub window_s: Option<f64>,
    /// One entry per ring (memfd), in order of label, then id.
    pub rings: Vec<RingReport>,
    /// Processes whose fds or mappings could not be read: they may hold rings not listed.
    pub uninspectable: Vec<Uninspectable>,
    /// Memfds that are not rings and whose names do not look like socket paths (not listed;
    /// `--all` lists them).
    pub skipped_memfds: usize,
}

/// One ring.
#[derive(Debug, Clone, Serialize)]
pub struct RingReport {
    /// `MAJOR:MINOR:INODE` of the memfd: the ring's identity.
    pub id: String,
    /// `st_dev` of the memfd.
    pub dev: u64,
    /// `st_ino` of the memfd.
    pub inode: u64,
    /// The memfd's name: the socket path the listener was given (tachyon-ring's `Listener`
    /// appends `#N` for its Nth connector).
    pub label: String,
    /// `label` without a `#N` suffix.
    pub socket_path: String,
    /// `spsc`, or one ring of an RPC bus: `rpc-requests` / `rpc-replies`.
    pub kind: Kind,
    /// The `id` of the other ring of the RPC bus.
    pub pair: Option<String>,
    /// The processes holding the ring (an fd or a writable mapping), by pid.
    pub processes: Vec<ProcessReport>,
    /// Pids that map the ring read-only (observers such as another tachyon-top).
    pub observers: Vec<u32>,
    /// Why the ring could not be read; `ring` is then `null`.
    pub error: Option<String>,
    /// The header and what is derived from it.
    pub ring: Option<RingState>,
    /// Alarms raised for this ring.
    pub alarms: Vec<Alarm>,
    /// Bytes per second the producer published, one entry per sample, oldest first (the
    /// TUI's sparkline; not serialized).
    #[serde(skip)]
    pub history: Vec<u64>,
}

/// A ring's role on its bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A single-producer, single-consumer bus.
    Spsc,
    /// The caller → callee ring of an RPC bus.
    RpcRequests,
    /// The callee → caller ring of an RPC bus.
    RpcReplies,
}

impl Kind {
    /// The name shown in the TUI and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spsc => "spsc",
            Kind::RpcRequests => "rpc-requests",
            Kind::RpcReplies => "rpc-replies",
        }
    }
}

/// A process attached to a ring.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// Process id.
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// `/proc/PID/cmdline`, one string per argument.
    pub cmdline: Vec<String>,
    /// Real uid.
    pub uid: Option<u32>,
    /// Which end it is, when that could be told.
    pub end: End,
    /// How it was found: `fd` (it holds an fd on the memfd), `maps` (it maps the memfd).
    pub found_by: Vec<&'static str>,
    /// Its fds on the memfd.
    pub fds: Vec<i32>,
}

/// Which end of a ring a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum End {
    /// It was seen sleeping on the ring's futex word (or is the consumer's peer's peer).
    Consumer,
    /// The other process of a ring whose consumer is known.
    Producer,
    /// Not told yet: a consumer can only be recognised while it sleeps.
    Unknown,
}

impl End {
    /// The name shown.
    pub fn name(self) -> &'static str {
        match self {
            End::Consumer => "consumer",
            End::Producer => "producer",
            End::Unknown => "?",
        }
    }
}

/// The header of a ring and what is derived from it.
#[derive(Debug, Clone, Serialize)]
pub struct RingState {
    /// Ring bytes.
    pub capacity: u64,
    /// `ready`, `fatal`, `disconnected`, `initializing`, `uninitialized`, `unknown`, or
    /// `invalid` for a value the format does not define.
    pub state: &'static str,
    /// The raw `state` word.
    pub state_code: u32,
    /// Producer's published head (bytes since the ring was made).
    pub head: u64,
    /// Consumer's published tail.
    pub tail: u64,
    /// `head - tail`: bytes published and not yet released (saturating).
    pub fill_bytes: u64,
    /// `fill_bytes / capacity`, 0 to 1.
    pub fill_ratio: f64,
    /// Ring bytes published per second (slot headers and padding included); `null` on the
    /// first sample.
    pub bytes_per_s: Option<f64>,
    /// Ring bytes released by the consumer per second.
    pub consumed_bytes_per_s: Option<f64>,
    /// The consumer's futex word and implementation.
    pub consumer: ConsumerState,
    /// Less free space than a slot needs (see the README) in this sample.
    pub full: bool,
    /// Seconds this ring was seen full since tachyon-top started watching it.
    pub time_full_s: f64,
    /// Seconds since the tail was last seen to move (since the first sample, if never).
    pub tail_still_s: f64,
    /// What `--peek` found; `null` without it.
    pub peek: Option<PeekReport>,
}

/// The consumer's side of the header.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerState {
    /// `awake`, `sleeping`, `pure-spin`, or `invalid`.
    pub state: &'static str,
    /// The raw word at offset 384.
    pub sleeping_word: u32,
    /// `tachyon-ring` when the word at offset 648 carries tachyon-ring's advertisement,
    /// else `other` (tachyon-ipc's consumer writes nothing there).
    pub implementation: &'static str,
    /// The raw word at offset 648.
    pub features: u64,
}

/// What walking the slot headers between tail and head found.
#[derive(Debug, Clone, Serialize)]
pub struct PeekReport {
    /// Messages published per second over the last window: counted when every new slot was
    /// walked before the consumer released it (`exact`), else published bytes per second
    /// divided by the mean slot length walked so far. `null` until known.
    pub msgs_per_s: Option<f64>,
    /// `msgs_per_s` was counted, not derived from the mean slot length.
    pub exact: bool,
    /// Messages between tail and head now.
    pub pending_messages: u64,
    /// Mean slot length of the messages walked (header and padding included).
    pub mean_slot_bytes: Option<f64>,
    /// Messages walked since tachyon-top started watching (a sample of the traffic unless
    /// every window was exact).
    pub walked_messages: u64,
    /// Walked messages per `type_id` (the whole 32-bit word, route bits included).
    pub type_counts: BTreeMap<u32, u64>,
    /// A slot header the format forbids (the ring is corrupt, or was rewritten under us).
    pub error: Option<String>,
}

/// A process that could not be inspected.
#[derive(Debug, Clone, Serialize)]
pub struct Uninspectable {
    /// Process id.
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// Real uid.
    pub uid: Option<u32>,
    /// What was refused.
    pub reason: String,
}

/// An alarm on a ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// What is wrong.
    pub kind: AlarmKind,
    /// In words, with the numbers.
    pub message: String,
}

/// The alarms tachyon-top derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmKind {
    /// The ring's state is fatal error: a consumer found a corrupt slot.
    Fatal,
    /// The consumer has not released anything for `--stall-after` seconds while the
    /// producer keeps publishing (or the ring is full).
    Stalled,
    /// One end is gone: only one process holds the ring and nobody listens at its socket
    /// path, a process seen before exited, or the state says disconnected.
    Orphaned,
}

impl AlarmKind {
    /// The name shown.
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::Fatal => "fatal",
            AlarmKind::Stalled => "stalled",
            AlarmKind::Orphaned => "orphaned",
        }
    }
}

/// The name of a `state` word's value.
pub fn state_name(state: u32) -> &'static str {
    use tachyon_ring::layout::state;
    match state {
        state::UNINITIALIZED => "uninitialized",
        state::INITIALIZING => "initializing",
        state::READY => "ready",
        state::DISCONNECTED => "disconnected",
        state::FATAL_ERROR => "fatal",
        state::UNKNOWN => "unknown",
        _ => "invalid",
    }
}

/// The name of a `consumer_sleeping` word's value.
pub fn sleeping_name(word: u32) -> &'static str {
    use tachyon_ring::layout::sleeping;
    match word {
        sleeping::AWAKE => "awake",
        sleeping::SLEEPING => "sleeping",
        sleeping::PURE_SPIN => "pure-spin",
        _ => "invalid",
    }
}

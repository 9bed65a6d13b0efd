//! The workloads, generic over [`Ring`], and the trials that run them in threads or processes.
//!
//! Every trial opens fresh rings at a unique socket path, so trials share nothing but the
//! machine. Cross-process trials spawn this binary (`tachyon-compare child …`); the child dies
//! with its parent (`PR_SET_PDEATHSIG`).

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memmap2::MmapMut;
use serde_json::Value;

use crate::Result;
use crate::ring::{Impl, Ring, Rx, Tx, Wait};

/// Runs `$body` with `$R` bound to the implementation `$imp` names.
#[macro_export]
macro_rules! with_ring {
    ($imp:expr, $R:ident => $body:expr) => {
        $crate::with_ring!(@match $imp, $R => $body, iceoryx2: {
            type $R = $crate::iceoryx2::Iceoryx2;
            $body
        })
    };
    // Bodies that move an end to another thread: iceoryx2's `ipc` service (the one its authors
    // benchmark) keeps its ports on one thread.
    (threads: $imp:expr, $R:ident => $body:expr) => {
        $crate::with_ring!(@match $imp, $R => $body, iceoryx2: Err(
            "iceoryx2's ipc ports stay on one thread: this trial runs across processes only".into()
        ))
    };
    (@match $imp:expr, $R:ident => $body:expr, iceoryx2: $iceoryx2:expr) => {
        match $imp {
            $crate::ring::Impl::Ours => {
                type $R = $crate::ring::Ours;
                $body
            }
            #[cfg(feature = "compare-upstream")]
            $crate::ring::Impl::Theirs => {
                type $R = $crate::upstream::Theirs;
                $body
            }
            #[cfg(not(feature = "compare-upstream"))]
            $crate::ring::Impl::Theirs => Err(
                "this build has no upstream: build with feature compare-upstream \
                 (crates/compare/build-upstream.sh)"
                    .into(),
            ),
            #[cfg(feature = "compare-iceoryx2")]
            $crate::ring::Impl::Iceoryx2 => $iceoryx2,
            #[cfg(not(feature = "compare-iceoryx2"))]
            $crate::ring::Impl::Iceoryx2 => Err(
                "this build has no iceoryx2: build with feature compare-iceoryx2 \
                 (crates/compare/build-upstream.sh)"
                    .into(),
            ),
        }
    };
}

/// `CLOCK_MONOTONIC` in ns: the one clock every process on the machine reads alike, so a
/// stamp taken by the sender is compared with the receiver's clock.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which is live and writable.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Type id of the data messages; 0 ends a stream.
pub const DATA: u32 = 1;
/// Type id of the end-of-stream sentinel.
pub const END: u32 = 0;
/// Byte every payload is filled with; the consumer checks the first and last.
pub const FILL: u8 = 0xA5;

/// Ring bytes for the round trip.
pub const ROUND_TRIP_CAPACITY: usize = 1 << 16;
/// Payload of the round trip.
pub const ROUND_TRIP_SIZE: usize = 32;

/// Bytes a slot of `size` payload bytes takes on the wire: 64-byte header, 64-byte aligned.
pub fn slot_len(size: usize) -> usize {
    (64 + size).div_ceil(64) * 64
}

/// Ring bytes for streaming `size`-byte messages: 1 MiB, or enough for 34 slots (upstream's
/// consumer returns space only every 32 messages; a ring of fewer than 33 slots hangs it).
pub fn stream_capacity(size: usize) -> usize {
    (34 * slot_len(size)).next_power_of_two().max(1 << 20)
}

/// A unique socket path under /tmp for this process.
pub fn socket_path(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(
        "/tmp/tachyon-compare-{}-{tag}-{n}.sock",
        std::process::id()
    ))
}

// ---------------------------------------------------------------------------------------------
// Workloads.

/// How a streaming producer publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Every 32 commits and at the end (`commit_unflushed` + `flush`).
    Batched,
    /// Every message (the publishing `send` of each implementation).
    EachMessage,
}

/// Sends `count` messages of `size` bytes, then the sentinel, and publishes.
pub fn produce<T: Tx>(tx: &mut T, count: u64, size: usize, publish: Publish) -> Result<()> {
    let payload = vec![FILL; size];
    match publish {
        Publish::Batched => {
            for _ in 0..count {
                tx.send(DATA, &payload)?;
            }
        }
        Publish::EachMessage => {
            for _ in 0..count {
                tx.send_publishing(DATA, &payload)?;
            }
        }
    }
    tx.send(END, &[])?;
    tx.flush();
    Ok(())
}

/// A streaming consumer's measurement.
#[derive(Clone, Copy, Debug)]
pub struct StreamResult {
    /// Data messages received.
    pub messages: u64,
    /// Data messages per second after the warm-up ones.
    pub msgs_per_s: f64,
}

/// Receives until the sentinel, reading each payload in place (its length and first and last
/// byte), and times the messages after the first `warm`.
pub fn consume<X: Rx>(rx: &mut X, size: usize, warm: u64) -> Result<StreamResult> {
    let mut messages = 0u64;
    let mut start = Instant::now();
    loop {
        let (type_id, ok) = rx.recv(|type_id, data| {
            let ok = data.len() == size
                && data.first().is_none_or(|&b| b == FILL)
                && data.last().is_none_or(|&b| b == FILL);
            (type_id, ok)
        })?;
        if type_id == END {
            break;
        }
        if !ok {
            return Err(format!("message {messages} arrived damaged").into());
        }
        messages += 1;
        if messages == warm {
            start = Instant::now();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let timed = messages.saturating_sub(warm);
    Ok(StreamResult {
        messages,
        msgs_per_s: if elapsed > 0.0 {
            timed as f64 / elapsed
        } else {
            0.0
        },
    })
}

/// Sends back every message received (payload and type id), flushing each, until the
/// sentinel, which it does not echo. Returns how many it echoed.
pub fn echo<X: Rx, T: Tx>(rx: &mut X, tx: &mut T) -> Result<u64> {
    let mut echoed = 0;
    loop {
        let done = rx.recv(|type_id, data| -> Result<bool> {
            if type_id == END {
                return Ok(true);
            }
            tx.send(type_id, data)?;
            tx.flush();
            Ok(false)
        })??;
        if done {
            return Ok(echoed);
        }
        echoed += 1;
    }
}

/// A latency histogram in ns: 1 ns to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Times `warmup + samples` round trips of `size`-byte messages (send, flush, receive the
/// echo), recording the last `samples`; then sends the sentinel.
pub fn ping<T: Tx, X: Rx>(
    tx: &mut T,
    rx: &mut X,
    size: usize,
    warmup: u64,
    samples: u64,
) -> Result<Histogram<u64>> {
    let payload = vec![FILL; size];
    let mut hist = histogram();
    for i in 0..warmup + samples {
        let start = Instant::now();
        tx.send(DATA, &payload)?;
        tx.flush();
        rx.recv(|_, data| black_box(data.len()))?;
        let ns = start.elapsed().as_nanos() as u64;
        if i >= warmup {
            hist.saturating_record(ns.max(1));
        }
    }
    tx.send(END, &[])?;
    tx.flush();
    Ok(hist)
}

/// Percentiles of one latency trial, in ns.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `hist`.
    pub fn of(hist: &Histogram<u64>) -> Latency {
        if hist.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: hist.value_at_quantile(0.50) as f64,
            p90: hist.value_at_quantile(0.90) as f64,
            p99: hist.value_at_quantile(0.99) as f64,
            p999: hist.value_at_quantile(0.999) as f64,
            max: hist.max() as f64,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Children.

/// A spawned child process, killed if still running when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns this binary with `child ARGS…`, stdout piped, stderr inherited.
    pub fn spawn_self(args: &[String]) -> Result<ChildGuard> {
        let exe = std::env::current_exe()?;
        let child = Command::new(&exe)
            .arg("child")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot spawn {}: {err}", exe.display()))?;
        Ok(ChildGuard {
            child: Some(child),
            what: format!("child {}", args.join(" ")),
        })
    }

    /// Spawns `command`, stdout and stderr piped.
    pub fn spawn(mut command: Command, what: &str) -> Result<ChildGuard> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot spawn {what}: {err}"))?;
        Ok(ChildGuard {
            child: Some(child),
            what: what.to_string(),
        })
    }

    /// Whether it has exited already.
    pub fn has_exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Reads its stdout in a thread, one parsed JSON value per line, so that a wait for the
    /// next line can time out. [`finish_json`](Self::finish_json) then finds no stdout: end
    /// with [`wait_success`](Self::wait_success).
    pub fn stdout_lines(&mut self) -> Result<Lines> {
        let stdout = self
            .child
            .as_mut()
            .and_then(|child| child.stdout.take())
            .ok_or("child stdout not piped")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let value = line
                    .map_err(Into::into)
                    .and_then(|line| serde_json::from_str(&line).map_err(Into::into));
                if sender.send(value).is_err() {
                    return;
                }
            }
        });
        Ok(receiver)
    }

    /// Waits for it to exit and checks its status.
    pub fn wait_success(mut self) -> Result<()> {
        let child = self.child.take().ok_or("child already finished")?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}): {}",
                self.what,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(())
    }

    /// Waits for it to exit, checks its status, and returns the last JSON line it printed.
    pub fn finish_json(mut self) -> Result<Value> {
        let mut child = self.child.take().ok_or("child already finished")?;
        let stdout = child.stdout.take().ok_or("stdout not piped")?;
        let last = last_json_line(stdout);
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}): {}",
                self.what,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        last?.ok_or_else(|| format!("{} printed no JSON line", self.what).into())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// A child's stdout lines, parsed as JSON (see [`ChildGuard::stdout_lines`]).
pub type Lines = mpsc::Receiver<Result<Value>>;

fn last_json_line(stdout: ChildStdout) -> Result<Option<Value>> {
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
            last = Some(value);
        }
    }
    Ok(last)
}

/// In a child: die with the parent, so a failed run leaves no spinning process behind.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

// ---------------------------------------------------------------------------------------------
// Trials.

/// Streaming in one process: a consumer thread connects, this thread listens and produces.
/// Returns the consumer's data messages per second.
pub fn in_process_stream(imp: Impl, size: usize, count: u64) -> Result<f64> {
    with_ring!(threads: imp, R => in_process_stream_with::<R>(size, count))
}

fn in_process_stream_with<R: Ring>(size: usize, count: u64) -> Result<f64>
where
    R::Rx: Send + 'static,
{
    let path = socket_path("inproc");
    let consumer = {
        let path = path.clone();
        std::thread::spawn(move || -> Result<StreamResult> {
            let mut rx = R::connect_rx(&path, Wait::Hybrid)?;
            consume(&mut rx, size, count / 8)
        })
    };
    let mut tx = R::listen_tx(&path, stream_capacity(size))?;
    produce(&mut tx, count, size, Publish::Batched)?;
    let result = consumer.join().map_err(|_| "consumer thread panicked")??;
    drop(tx);
    Ok(result.msgs_per_s)
}

/// Streaming between two processes: a child connects and consumes, this process listens and
/// produces, publishing as `publish` says. Returns the child's data messages per second.
pub fn cross_process_stream(imp: Impl, size: usize, count: u64, publish: Publish) -> Result<f64> {
    let path = socket_path("stream");
    let child = ChildGuard::spawn_self(&[
        "stream-rx".into(),
        "--impl".into(),
        imp.name().into(),
        "--socket".into(),
        path.display().to_string(),
        "--size".into(),
        size.to_string(),
        "--warm".into(),
        (count / 8).to_string(),
    ])?;
    with_ring!(imp, R => {
        let mut tx = R::listen_tx(&path, stream_capacity(size))?;
        produce(&mut tx, count, size, publish)
    })?;
    let result = child.finish_json()?;
    let received = result["messages"].as_u64().unwrap_or(0);
    if received != count {
        return Err(format!("consumer received {received} of {count} messages").into());
    }
    result["msgs_per_s"]
        .as_f64()
        .ok_or_else(|| "consumer printed no msgs_per_s".into())
}

/// The child side of [`cross_process_stream`]; prints one JSON line.
pub fn child_stream_rx(imp: Impl, socket: &Path, size: usize, warm: u64) -> Result<()> {
    let result = with_ring!(imp, R => {
        let mut rx = R::connect_rx(socket, Wait::Hybrid)?;
        consume(&mut rx, size, warm)
    })?;
    println!(
        "{}",
        serde_json::json!({"messages": result.messages, "msgs_per_s": result.msgs_per_s})
    );
    Ok(())
}

/// Round trip between two processes over two rings, both consumers in pure spin: this process
/// sends 32 bytes on `ping` and waits for the child's echo on `pong`.
pub fn round_trip(imp: Impl, warmup: u64, samples: u64) -> Result<Latency> {
    let ping_path = socket_path("ping");
    let pong_path = socket_path("pong");
    let child = ChildGuard::spawn_self(&[
        "echo".into(),
        "--impl".into(),
        imp.name().into(),
        "--ping".into(),
        ping_path.display().to_string(),
        "--pong".into(),
        pong_path.display().to_string(),
    ])?;
    let hist = with_ring!(imp, R => {
        let mut tx = R::listen_tx(&ping_path, ROUND_TRIP_CAPACITY)?;
        let mut rx = R::listen_rx(&pong_path, ROUND_TRIP_CAPACITY, Wait::PureSpin)?;
        ping(&mut tx, &mut rx, ROUND_TRIP_SIZE, warmup, samples)
    })?;
    let echoed = child.finish_json()?["echoed"].as_u64().unwrap_or(0);
    if echoed != warmup + samples {
        return Err(format!("echo child echoed {echoed} of {}", warmup + samples).into());
    }
    Ok(Latency::of(&hist))
}

/// The child side of [`round_trip`].
pub fn child_echo(imp: Impl, ping_path: &Path, pong_path: &Path) -> Result<()> {
    let echoed = with_ring!(imp, R => {
        let mut rx = R::connect_rx(ping_path, Wait::PureSpin)?;
        let mut tx = R::connect_tx(pong_path)?;
        echo(&mut rx, &mut tx)
    })?;
    println!("{}", serde_json::json!({ "echoed": echoed }));
    Ok(())
}

/// One thread, never waiting (for profiling with callgrind, where instruction counts are
/// exact and spin loops would blur them): `rounds` times, send `batch` messages of `size`
/// bytes, flush, receive them all. Returns the wall time.
pub fn single_thread(imp: Impl, size: usize, batch: u64, rounds: u64) -> Result<SingleThread> {
    with_ring!(threads: imp, R => single_thread_with::<R>(size, batch, rounds))
}

fn single_thread_with<R: Ring>(size: usize, batch: u64, rounds: u64) -> Result<SingleThread>
where
    R::Rx: Send + 'static,
{
    let path = socket_path("single");
    let capacity = single_thread_capacity(size, batch);
    let listener = {
        let path = path.clone();
        std::thread::spawn(move || R::listen_rx(&path, capacity, Wait::Hybrid))
    };
    let mut tx = R::connect_tx(&path)?;
    let mut rx = listener.join().map_err(|_| "listener thread panicked")??;
    send_then_receive(&mut tx, size, batch, rounds, || {
        rx.recv(|type_id, data| black_box((type_id, data.len())))?;
        Ok(())
    })
}

/// A ring that holds two batches.
fn single_thread_capacity(size: usize, batch: u64) -> usize {
    (batch as usize * slot_len(size) * 2)
        .next_power_of_two()
        .max(1 << 16)
}

/// Wall time of a single-thread run, and the part of it spent receiving.
#[derive(Clone, Copy, Debug)]
pub struct SingleThread {
    pub elapsed: Duration,
    pub receiving: Duration,
}

/// `rounds` times: `batch` sends of `size` bytes, a flush, `batch` calls of `receive`.
/// The receiving half is timed apart (a clock read on each side of a batch).
fn send_then_receive<T: Tx>(
    tx: &mut T,
    size: usize,
    batch: u64,
    rounds: u64,
    mut receive: impl FnMut() -> Result<()>,
) -> Result<SingleThread> {
    let payload = vec![FILL; size];
    let start = Instant::now();
    let mut receiving = Duration::ZERO;
    for _ in 0..rounds {
        for _ in 0..batch {
            tx.send(DATA, &payload)?;
        }
        tx.flush();
        let received_from = Instant::now();
        for _ in 0..batch {
            receive()?;
        }
        receiving += received_from.elapsed();
    }
    Ok(SingleThread {
        elapsed: start.elapsed(),
        receiving,
    })
}

/// [`single_thread`] with our consumer behind a [`tachyon_ring::Selector`] of one ring: the
/// selector's own cost per message, for callgrind beside the plain consumer's.
/// With `with`, through [`Selector::select_with`](tachyon_ring::Selector::select_with).
pub fn single_thread_selected(
    size: usize,
    batch: u64,
    rounds: u64,
    with: bool,
) -> Result<SingleThread> {
    let path = socket_path("single-selected");
    let capacity = single_thread_capacity(size, batch);
    let listener = {
        let path = path.clone();
        std::thread::spawn(move || {
            tachyon_ring::Bus::options()
                .listen(&path, capacity)
                .map(tachyon_ring::Bus::into_consumer)
        })
    };
    let mut tx = <crate::ring::Ours as Ring>::connect_tx(&path)?;
    let consumer = listener.join().map_err(|_| "listener thread panicked")??;
    let mut selector = tachyon_ring::Selector::new();
    selector.add(0u32, consumer);
    send_then_receive(&mut tx, size, batch, rounds, || {
        if with {
            return selector.select_with(|selected| match selected {
                tachyon_ring::Selected::Message { message, .. } => {
                    black_box((message.type_id(), message.data().len()));
                    Ok(())
                }
                _ => Err("the one ring ended".into()),
            })?;
        }
        match selector.select()? {
            tachyon_ring::Selected::Message { message, .. } => {
                black_box((message.type_id(), message.data().len()));
                Ok(())
            }
            _ => Err("the one ring ended".into()),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The floors.

/// Byte offsets of the floor's words in its shared page: each on its own 128-byte block.
const FLOOR_PING: usize = 0;
const FLOOR_PONG: usize = 128;
const FLOOR_READY: usize = 256;
const FLOOR_LEN: usize = 4096;

fn atomic_at(map: &MmapMut, offset: usize) -> &AtomicU64 {
    assert!(offset % 8 == 0 && offset + 8 <= map.len());
    // SAFETY: in bounds and 8-aligned (the mapping is page-aligned); both processes access
    // these words only atomically, and the mapping outlives the borrow.
    unsafe { &*(map.as_ptr().add(offset) as *const AtomicU64) }
}

fn map_shared(path: &Path, create: bool) -> Result<MmapMut> {
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)?;
    if create {
        file.set_len(FLOOR_LEN as u64)?;
    }
    // SAFETY: a file of ours in /dev/shm, which only this process and its child map and
    // neither truncates; it is accessed only through the atomics of `atomic_at`.
    Ok(unsafe { MmapMut::map_mut(&file)? })
}

/// What the hardware allows: a bare atomic ping-pong between this process and a child
/// through one shared page (one u64 each way, on separate cache lines, both sides spinning).
pub fn floor(warmup: u64, samples: u64) -> Result<Latency> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = PathBuf::from(format!(
        "/dev/shm/tachyon-compare-floor-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let map = map_shared(&path, true)?;
    let child =
        ChildGuard::spawn_self(&["floor".into(), "--shm".into(), path.display().to_string()]);
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            return Err(err);
        }
    };
    let (ping, pong, ready) = (
        atomic_at(&map, FLOOR_PING),
        atomic_at(&map, FLOOR_PONG),
        atomic_at(&map, FLOOR_READY),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready.load(Ordering::Acquire) == 0 {
        if Instant::now() > deadline || child.has_exited() {
            let _ = std::fs::remove_file(&path);
            return Err("floor child never mapped the page".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::remove_file(&path)?;
    let mut hist = histogram();
    for i in 1..=warmup + samples {
        let start = Instant::now();
        ping.store(i, Ordering::Release);
        while pong.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        let ns = start.elapsed().as_nanos() as u64;
        if i > warmup {
            hist.saturating_record(ns.max(1));
        }
    }
    ping.store(u64::MAX, Ordering::Release);
    child.finish_json()?;
    Ok(Latency::of(&hist))
}

/// The child side of [`floor`]: echo every new ping value until `u64::MAX`.
pub fn child_floor(shm: &Path) -> Result<()> {
    let map = map_shared(shm, false)?;
    let (ping, pong, ready) = (
        atomic_at(&map, FLOOR_PING),
        atomic_at(&map, FLOOR_PONG),
        atomic_at(&map, FLOOR_READY),
    );
    ready.store(1, Ordering::Release);
    let mut last = 0;
    let mut echoed = 0u64;
    loop {
        let value = ping.load(Ordering::Acquire);
        if value == last {
            std::hint::spin_loop();
            continue;
        }
        if value == u64::MAX {
            break;
        }
        pong.store(value, Ordering::Release);
        last = value;
        echoed += 1;
    }
    println!("{}", serde_json::json!({ "echoed": echoed }));
    Ok(())
}

/// A plain `memcpy` of `size`-byte blocks from one buffer into a ring-sized destination
/// (`dest_len` bytes, blocks at slot strides as the ring places them), for at least
/// `duration`. Bytes per second.
pub fn memcpy_rate(size: usize, dest_len: usize, duration: Duration) -> f64 {
    let source = vec![FILL; size];
    // Non-zero, so every page is written (faulted in) before the clock starts.
    let mut dest = vec![1u8; dest_len];
    let stride = slot_len(size);
    let mut offset = 0;
    let mut copies = 0u64;
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if offset + stride > dest_len {
                offset = 0;
            }
            // SAFETY: offset + 64 + size <= offset + stride <= dest_len, and the buffers are
            // distinct allocations.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    source.as_ptr(),
                    black_box(dest.as_mut_ptr()).add(offset + 64),
                    size,
                );
            }
            offset += stride;
            copies += 1;
        }
        let elapsed = start.elapsed();
        if elapsed >= duration {
            black_box(&dest);
            return (copies * size as u64) as f64 / elapsed.as_secs_f64();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// End to end.

/// The programs of the end-to-end benchmark.
#[derive(Clone, Debug)]
pub struct EndToEndPaths {
    /// `tachyon-consumer` (ours).
    pub ours_consumer: PathBuf,
    /// `tachyon-consumer-upstream` (theirs).
    pub theirs_consumer: PathBuf,
    /// The Python that has the real tachyon-ipc package.
    pub python: PathBuf,
    /// `python/producer.py`.
    pub producer: PathBuf,
}

/// One end-to-end trial.
#[derive(Clone, Copy, Debug)]
pub struct EndToEnd {
    /// The Python producer's rate.
    pub producer_msgs_per_s: f64,
    /// The consumer's rate (first tick to sentinel).
    pub consumer_msgs_per_s: f64,
    /// How often the producer found the ring full and retried.
    pub full_retries: u64,
    /// One-way latency (the tick's `time.time_ns()` stamp to the consumer's clock), ns.
    pub latency: Latency,
    /// The consumer's CPU time per second of wall time, first tick to sentinel (cores).
    pub consumer_cpu_per_s: f64,
    /// The consumer's futex sleeps per tick received (0 when it never slept).
    pub sleeps_per_tick: f64,
}

/// Gaps between the producer's ticks, µs, drawn uniformly (`producer.py --gap-us MIN..MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapUs {
    /// Shortest gap.
    pub min: u32,
    /// Longest gap.
    pub max: u32,
}

/// The seed's Python producer sends `count` ticks into the consumer `imp` names; back to back,
/// or with a random `gap` before each tick (the sparse regime).
pub fn end_to_end(
    imp: Impl,
    count: u64,
    paths: &EndToEndPaths,
    gap: Option<GapUs>,
) -> Result<EndToEnd> {
    let socket = socket_path("e2e");
    let consumer_bin = match imp {
        Impl::Ours => &paths.ours_consumer,
        Impl::Theirs => &paths.theirs_consumer,
        Impl::Iceoryx2 => {
            return Err("no iceoryx2 tachyon-consumer: end to end is ours and upstream's".into());
        }
    };
    let mut command = Command::new(consumer_bin);
    command.arg("--socket").arg(&socket).arg("--json");
    let mut consumer = ChildGuard::spawn(command, &consumer_bin.display().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if consumer.has_exited() || Instant::now() > deadline {
            return Err(format!(
                "{} never listened on {}",
                consumer_bin.display(),
                socket.display()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut command = Command::new(&paths.python);
    command
        .arg(&paths.producer)
        .arg("--socket")
        .arg(&socket)
        .arg("--count")
        .arg(count.to_string())
        // A consumer descheduled for ~20 ms lets the 1 MiB ring fill: wait, do not abort.
        .arg("--retry-full");
    if let Some(gap) = gap {
        // The same seed in every trial: ours and theirs see the same gaps.
        command
            .arg("--gap-us")
            .arg(format!("{}..{}", gap.min, gap.max));
    }
    let producer = ChildGuard::spawn(
        command,
        &format!("python/producer.py into {}", consumer_bin.display()),
    )?
    .finish_json()?;
    let summary = consumer.finish_json()?;
    let received = summary["received"].as_u64().unwrap_or(0);
    if received != count {
        return Err(format!(
            "{} received {received} of {count} ticks",
            consumer_bin.display()
        )
        .into());
    }
    let ns = |key: &str| summary["latency_ns"][key].as_f64().unwrap_or(f64::NAN);
    Ok(EndToEnd {
        producer_msgs_per_s: producer["msgs_per_s"].as_f64().unwrap_or(f64::NAN),
        consumer_msgs_per_s: summary["msgs_per_s"].as_f64().unwrap_or(f64::NAN),
        full_retries: producer["full_retries"].as_u64().unwrap_or(0),
        latency: Latency {
            p50: ns("p50"),
            p90: ns("p90"),
            p99: ns("p99"),
            p999: ns("p999"),
            max: ns("max"),
        },
        consumer_cpu_per_s: summary["cpu_per_s"].as_f64().unwrap_or(f64::NAN),
        sleeps_per_tick: summary["sleeps"].as_f64().unwrap_or(f64::NAN) / received.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_capacities_follow_the_wire() {
        assert_eq!(slot_len(0), 64);
        assert_eq!(slot_len(32), 128);
        assert_eq!(slot_len(64), 128);
        assert_eq!(slot_len(65), 192);
        assert_eq!(stream_capacity(32), 1 << 20);
        // 34 slots of 65,600 bytes need 2.2 MB: the next power of two is 4 MiB.
        assert_eq!(stream_capacity(65536), 4 << 20);
        for size in crate::SIZES {
            assert!(stream_capacity(size) >= 34 * slot_len(size));
        }
    }

    #[test]
    fn ours_streams_and_echoes_in_process() {
        let (producer, consumer) = tachyon_ring::Bus::in_memory(1 << 16).unwrap().split();
        let mut tx = crate::ring::OursTx::from(producer);
        let mut rx = crate::ring::OursRx::from(consumer);
        let sender = std::thread::spawn(move || produce(&mut tx, 10_000, 100, Publish::Batched));
        let result = consume(&mut rx, 100, 10).unwrap();
        sender.join().unwrap().unwrap();
        assert_eq!(result.messages, 10_000);
    }

    #[test]
    fn ours_streams_publishing_each_message_in_process() {
        let (producer, consumer) = tachyon_ring::Bus::in_memory(1 << 12).unwrap().split();
        let mut tx = crate::ring::OursTx::from(producer);
        let mut rx = crate::ring::OursRx::from(consumer);
        let sender = std::thread::spawn(move || produce(&mut tx, 1_000, 100, Publish::EachMessage));
        let result = consume(&mut rx, 100, 10).unwrap();
        sender.join().unwrap().unwrap();
        assert_eq!(result.messages, 1_000);
    }

    #[test]
    fn memcpy_rate_is_positive() {
        assert!(memcpy_rate(4096, 1 << 20, Duration::from_millis(5)) > 0.0);
    }
}

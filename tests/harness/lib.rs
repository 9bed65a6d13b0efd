//! What every cross-process test needs: the release binaries (built once per test process),
//! the real tachyon-ipc Python peer (bootstrapped once, loudly failing when it cannot be),
//! unique socket paths, and child processes that cannot hang a test run.
//!
//! Tests that start processes take [`serial`] first: these machines have two cores, and two
//! spinning pairs at once would measure the scheduler, not the ring.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// The workspace root (where `Cargo.toml` and `python/` live).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One cross-process test at a time within a test binary.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Path of a release binary of the workspace: an example of `tachyon-ring` (`producer`,
/// `consumer`, ...) or the `tachyon-consumer` binary. The first call builds them all.
pub fn rust_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "tachyon-ring",
                "--examples",
                // The async example too (the feature the workspace's tests turn on).
                "--features",
                "tachyon-ring/tokio",
            ])
            .args(["-p", "tachyon-consumer", "--bins"])
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build --release of the examples and binaries failed"
        );
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let release = target.join("release");
    let path = if name == "tachyon-consumer" {
        release.join(name)
    } else {
        release.join("examples").join(name)
    };
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Path of a program of `crates/compat-programs` (written only against upstream's Rust API,
/// built on tachyon-compat). The first call builds them all, in release.
pub fn compat_program(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "tachyon-compat-programs",
            ])
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build --release -p tachyon-compat-programs failed"
        );
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let path = target.join("release").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The Python interpreter of the project's virtual environment, holding the real
/// `tachyon-ipc==0.5.1`. The first call runs `python/bootstrap.sh` (idempotent; about two
/// minutes the first time on a fresh machine). Panics, never skips, when the peer is missing.
pub fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let status = Command::new(root().join("python/bootstrap.sh"))
                .status()
                .expect("run python/bootstrap.sh");
            assert!(
                status.success(),
                "python/bootstrap.sh failed: the real tachyon-ipc peer is not installed, and the \
                 cross-language tests cannot run without it"
            );
            let python = root().join(".venv/bin/python");
            let check = Command::new(&python)
                .args([
                    "-c",
                    // The version of the package actually imported, and where it lives:
                    // metadata alone could describe another copy than the one on sys.path.
                    "import importlib.metadata as m, os, tachyon; \
                     d = m.distribution('tachyon-ipc'); \
                     f = os.path.realpath(tachyon.__file__); \
                     assert any(os.path.realpath(d.locate_file(p)) == f for p in d.files), f; \
                     print(d.version)",
                ])
                .output()
                .expect("run the venv's python");
            let version = String::from_utf8_lossy(&check.stdout).trim().to_string();
            assert_eq!(
                version, "0.5.1",
                "the venv holds tachyon-ipc {version:?}, not 0.5.1"
            );
            python
        })
        .clone()
}

/// A command running one of `python/`'s scripts on the real package.
pub fn python_script(script: &str) -> Command {
    let mut command = Command::new(python());
    command.arg(root().join("python").join(script));
    command
}

/// A socket path no other test (or test run) uses.
pub fn socket_path(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "tachyon-test-{}-{tag}-{n}.sock",
        std::process::id()
    ))
}

/// A child process whose output is collected (and readable while it runs), and which is
/// killed if it outlives its time.
pub struct Proc {
    name: String,
    child: Child,
    /// stdout and stderr so far, appended to by one reader thread each.
    texts: [Arc<Mutex<String>>; 2],
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Finished {
    /// The process's name in messages.
    pub name: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// All of its stdout.
    pub stdout: String,
    /// All of its stderr.
    pub stderr: String,
}

impl Proc {
    /// Starts `command` with stdout and stderr captured.
    pub fn spawn(name: &str, mut command: Command) -> Proc {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let texts: [Arc<Mutex<String>>; 2] = Default::default();
        let readers = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ]
        .into_iter()
        .zip(texts.clone())
        .map(|(mut stream, text)| {
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut chunk) {
                    let mut text = text.lock().unwrap_or_else(|p| p.into_inner());
                    text.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            })
        })
        .collect();
        Proc {
            name: name.to_string(),
            child,
            texts,
            readers,
        }
    }

    /// Waits until the child's stderr contains `needle`, up to `limit`; panics (showing what
    /// it printed) past it, or if the child exits first.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let stderr = self.texts[1]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if stderr.contains(needle) {
                return;
            }
            let exited = self.child.try_wait().expect("wait for child");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} did not print {needle:?} within {limit:?} (exit: {exited:?}); stderr:\n{stderr}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the child catches `signal` (a handler is installed: bit set in
    /// `/proc/PID/status`'s `SigCgt`), so a signal sent now cannot meet the default action.
    pub fn wait_for_handler(&mut self, signal: nix::sys::signal::Signal, limit: Duration) {
        let deadline = Instant::now() + limit;
        let bit = 1u64 << (signal as i32 - 1);
        loop {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
            let caught = status
                .lines()
                .find_map(|line| line.strip_prefix("SigCgt:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .unwrap_or(0);
            if caught & bit != 0 {
                return;
            }
            let exited = self.child.try_wait().expect("wait for child");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} did not install a handler for {signal} within {limit:?} (exit: {exited:?})",
                self.name
            );
            std::thread::yield_now();
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal);
    }

    /// Waits up to `limit`; past it, kills the child and panics with what it printed.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let Some(status) = self.child.wait_timeout(limit).expect("wait for child") else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let (stdout, stderr) = self.output();
            panic!(
                "{} did not finish within {limit:?}; killed.\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                self.name
            );
        };
        let (stdout, stderr) = self.output();
        Finished {
            name: std::mem::take(&mut self.name),
            status,
            stdout,
            stderr,
        }
    }

    /// Everything the child printed, once its pipes are closed.
    fn output(&mut self) -> (String, String) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let [stdout, stderr] = &self.texts;
        let take = |text: &Arc<Mutex<String>>| {
            std::mem::take(&mut *text.lock().unwrap_or_else(|p| p.into_inner()))
        };
        (take(stdout), take(stderr))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A test that panicked before `finish` must not leave a spinning process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Finished {
    /// Panics, showing everything the process printed, unless it exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "{} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.name,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The JSON object on the last non-empty line of stdout.
    pub fn json(&self) -> serde_json::Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{} printed nothing on stdout; stderr:\n{}",
                    self.name, self.stderr
                )
            });
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{}'s last line is not JSON ({e}): {line}\nstderr:\n{}",
                self.name, self.stderr
            )
        })
    }

    /// A numeric field of [`json`](Finished::json).
    pub fn field(&self, key: &str) -> u64 {
        let json = self.json();
        json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{}'s summary has no integer {key:?}: {json}", self.name))
    }
}

/// Waits until `path` exists (a listener has bound its socket), up to `limit`.
pub fn wait_for_socket(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "nobody bound {} within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a listener and a connector on `socket` (the connector starts once the socket file
/// exists) and returns both once they finished, in that order, each checked for success.
pub fn run_pair(
    socket: &Path,
    listener: (&str, Command),
    connector: (&str, Command),
    limit: Duration,
) -> (Finished, Finished) {
    let listener = Proc::spawn(listener.0, listener.1);
    wait_for_socket(socket, Duration::from_secs(20));
    let connector = Proc::spawn(connector.0, connector.1);
    let (listener, connector) = (listener.finish(limit), connector.finish(limit));
    listener.assert_success();
    connector.assert_success();
    (listener, connector)
}

/// Runs `connector` to completion against `listener`, which is then stopped (killed if it
/// still runs): for connectors expected to fail, or to leave a listener that cannot finish.
pub fn against_listener(
    socket: &Path,
    listener: (&str, Command),
    connector: (&str, Command),
    limit: Duration,
) -> Finished {
    let listener = Proc::spawn(listener.0, listener.1);
    wait_for_socket(socket, Duration::from_secs(20));
    let connector = Proc::spawn(connector.0, connector.1).finish(limit);
    drop(listener);
    connector
}

/// `--listen` or `--connect`.
pub fn role(listens: bool) -> &'static str {
    if listens { "--listen" } else { "--connect" }
}

/// Checks a pattern consumer's summary against its producer's: every message arrived, none
/// was bad, and the byte counts agree. Returns the count.
pub fn assert_delivered(producer: &Finished, consumer: &Finished) -> u64 {
    let sent = producer.field("sent");
    assert_eq!(
        consumer.field("bad"),
        0,
        "{} saw bad messages: {}",
        consumer.name,
        consumer.stdout
    );
    assert_eq!(
        consumer.field("received"),
        sent,
        "{}: {}",
        consumer.name,
        consumer.stdout
    );
    assert_eq!(consumer.field("bytes"), producer.field("bytes"));
    sent
}

/// A `Command` for a binary with arguments.
pub fn command(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

/// A copy of a release binary (see [`rust_bin`]) that other uids can run, wherever the
/// checkout lives (a clone under a 0700 home directory would make `target/` unreachable).
///
/// One directory per uid running the tests, reused by every test process (a directory per
/// process left 11 MB in the temp dir on every run). The copy is written beside its final name
/// and renamed over it, so a test process never overwrites a binary another one is running.
pub fn world_executable(name: &str) -> PathBuf {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid = nix::unistd::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("tachyon-uid-bins-{uid}"));
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("creating {}: {e}", dir.display()),
    }
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(
        meta.is_dir() && meta.uid() == uid,
        "{} is not a directory of uid {uid}: refusing to put binaries there",
        dir.display()
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join(name);
    let staged = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::copy(rust_bin(name), &staged).unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&staged, &copy).unwrap();
    copy
}

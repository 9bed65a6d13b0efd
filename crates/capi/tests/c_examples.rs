//! The C99 examples (`examples/c/producer.c`, `consumer.c`), compiled with `cc` against the
//! staged library (`./just capi`: target/capi) and streaming the seed's market ticks to and
//! from the real tachyon-ipc 0.5.1 Python package (python/producer.py, python/consumer.py),
//! our `tachyon-consumer` (`./just build`), and each other.
//!
//! Everything they need must be there: a missing library, binary or Python package fails
//! the test, loudly.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{finish, python, root, socket};

const TICKS: u64 = 100_000;

/// The C99 flags every example is compiled with: warnings are errors, so the examples stay clean.
const C99_STRICT: [&str; 6] = [
    "-std=c99",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
];

/// The staged library (lib/, include/), which `./just capi` builds.
fn staged() -> PathBuf {
    let staged = root().join("target/capi");
    assert!(
        staged.join("lib/libtachyon.so").exists() && staged.join("include/tachyon.h").exists(),
        "{} has no libtachyon.so or tachyon.h: run ./just capi",
        staged.display()
    );
    staged
}

/// Compiles one example as C99, warnings as errors, linked with -ltachyon.
fn compile(name: &str, dir: &Path) -> PathBuf {
    let staged = staged();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/c/{name}.c"));
    let binary = dir.join(name);
    let status = Command::new(c_compiler())
        .args(C99_STRICT)
        .arg(format!("-I{}", staged.join("include").display()))
        .arg(&source)
        .arg(format!("-L{}", staged.join("lib").display()))
        .arg("-ltachyon")
        .arg(format!("-Wl,-rpath,{}", staged.join("lib").display()))
        .arg("-o")
        .arg(&binary)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed on {}", source.display());
    binary
}

/// `$CC`, else the system's `cc`, else the venv's zig (python/bootstrap.sh installs it).
fn c_compiler() -> PathBuf {
    if let Some(cc) = std::env::var_os("CC") {
        return cc.into();
    }
    let works = Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if works {
        "cc".into()
    } else {
        root().join(".venv/bin/zig-cc")
    }
}

fn spawn(command: &mut Command) -> Child {
    command
        .env_remove("PYTHONPATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the process starts")
}

/// Waits for a listener's socket file to appear.
fn wait_for_socket(path: &str, listener: &mut Child) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !Path::new(path).exists() {
        if let Some(status) = listener.try_wait().unwrap() {
            panic!("the listener exited before listening: {status}");
        }
        assert!(Instant::now() < give_up, "nobody listened at {path}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last line of a child's stdout, as JSON.
fn last_json(output: &Output) -> serde_like::Json {
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().expect("a summary line");
    serde_like::Json::parse(line)
}

/// Just enough JSON for the flat summaries the programs print.
mod serde_like {
    pub struct Json(Vec<(String, f64)>);

    impl Json {
        pub fn parse(line: &str) -> Json {
            let inner = line
                .trim()
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or_else(|| panic!("not a JSON object: {line}"));
            Json(
                inner
                    .split(',')
                    .filter_map(|field| {
                        let (key, value) = field.split_once(':')?;
                        let value = value.trim().parse().ok()?;
                        Some((key.trim().trim_matches('"').to_owned(), value))
                    })
                    .collect(),
            )
        }

        pub fn get(&self, key: &str) -> u64 {
            self.0
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| *value as u64)
                .unwrap_or_else(|| panic!("no {key} in the summary"))
        }
    }
}

/// Σ (1 + i mod 1000) for i < n: the volume of n ticks from either producer.
fn volume_of(n: u64) -> u64 {
    (0..n).map(|i| 1 + i % 1000).sum()
}

#[test]
fn c_producer_to_the_real_python_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let producer = compile("producer", dir.path());
    let path = socket("c", "to-python");
    let mut listener = spawn(
        Command::new(&producer)
            .args(["--socket", &path, "--listen", "--count"])
            .arg(TICKS.to_string()),
    );
    wait_for_socket(&path, &mut listener);
    let consumer = spawn(
        Command::new(python())
            .arg(root().join("python/consumer.py"))
            .args(["--socket", &path, "--connect", "--mode", "ticks"]),
    );
    let received = last_json(&finish(consumer, "python/consumer.py"));
    let sent = last_json(&finish(listener, "the C producer"));
    assert_eq!(sent.get("sent"), TICKS);
    assert_eq!(received.get("received"), TICKS);
    assert_eq!(received.get("bids"), TICKS / 2);
    assert_eq!(received.get("asks"), TICKS / 2);
    assert_eq!(received.get("other"), 0);
}

#[test]
fn the_real_python_producer_to_the_c_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let consumer = compile("consumer", dir.path());
    let path = socket("c", "from-python");
    let mut listener = spawn(Command::new(&consumer).args(["--socket", &path, "--listen"]));
    wait_for_socket(&path, &mut listener);
    let producer = spawn(
        Command::new(python())
            .arg(root().join("python/producer.py"))
            .args(["--socket", &path, "--connect", "--retry-full", "--count"])
            .arg(TICKS.to_string()),
    );
    finish(producer, "python/producer.py");
    let received = last_json(&finish(listener, "the C consumer"));
    assert_eq!(received.get("received"), TICKS);
    assert_eq!(received.get("bids"), TICKS / 2);
    assert_eq!(received.get("asks"), TICKS / 2);
    assert_eq!(received.get("other"), 0);
    assert_eq!(received.get("volume"), volume_of(TICKS));
}

#[test]
fn c_producer_to_tachyon_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let producer = compile("producer", dir.path());
    let consumer_binary = root().join("target/release/tachyon-consumer");
    assert!(
        consumer_binary.exists(),
        "{} was not built: run ./just build",
        consumer_binary.display()
    );
    let path = socket("c", "to-rust");
    let mut listener = spawn(Command::new(&consumer_binary).args(["--socket", &path, "--json"]));
    wait_for_socket(&path, &mut listener);
    let producer = spawn(
        Command::new(&producer)
            .args(["--socket", &path, "--connect", "--count"])
            .arg(TICKS.to_string()),
    );
    finish(producer, "the C producer");
    let summary = String::from_utf8(finish(listener, "tachyon-consumer").stdout).unwrap();
    let line = summary.lines().last().expect("a --json summary");
    for field in [
        format!("\"received\":{TICKS}"),
        format!("\"bids\":{}", TICKS / 2),
        format!("\"asks\":{}", TICKS / 2),
        "\"other\":0".to_owned(),
        "\"malformed\":0".to_owned(),
        format!("\"volume\":{}", volume_of(TICKS)),
    ] {
        assert!(line.contains(&field), "{field} not in {line}");
    }
}

#[test]
fn c_producer_to_c_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let (producer, consumer) = (
        compile("producer", dir.path()),
        compile("consumer", dir.path()),
    );
    let path = socket("c", "c-to-c");
    // A small ring (2 KiB, 16 slots): the producer waits out a full ring many times.
    let mut listener =
        spawn(Command::new(&consumer).args(["--socket", &path, "--listen", "--capacity", "2048"]));
    wait_for_socket(&path, &mut listener);
    let producer = spawn(
        Command::new(&producer)
            .args(["--socket", &path, "--connect", "--count"])
            .arg(TICKS.to_string()),
    );
    let sent = last_json(&finish(producer, "the C producer"));
    let received = last_json(&finish(listener, "the C consumer"));
    assert_eq!(sent.get("sent"), TICKS);
    assert_eq!(received.get("received"), TICKS);
    assert_eq!(received.get("volume"), volume_of(TICKS));
}

/// The real Python producer killed mid-stream (SIGKILL after 1,000 ticks): the C consumer's
/// blocking receive returns 0 once everything published was taken, and
/// `tachyon_get_state` says `TACHYON_STATE_FATAL_ERROR` (upstream would wait forever).
#[test]
fn the_c_consumer_sees_the_real_python_producer_die() {
    let dir = tempfile::tempdir().unwrap();
    let consumer = compile("consumer", dir.path());
    let path = socket("c", "peer-death");
    let mut listener = spawn(Command::new(&consumer).args(["--socket", &path, "--listen"]));
    wait_for_socket(&path, &mut listener);
    let mut producer = spawn(
        Command::new(python())
            .arg(root().join("python/producer.py"))
            .args(["--socket", &path, "--connect", "--retry-full"])
            .args(["--count", "100000", "--die-after", "1000"]),
    );
    let status = producer.wait().unwrap();
    assert!(!status.success(), "the producer was to kill itself");
    let give_up = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = listener.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            let _ = listener.kill();
            panic!("the C consumer did not notice the dead producer within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(2),
        "the consumer's exit for a dead peer"
    );
}

/// The static library: both examples linked with `libtachyon.a` (and the system libraries
/// tachyon.pc lists as private) stream to each other; and the shared library exports exactly
/// the 36 functions of the ABI.
#[test]
fn the_static_library_links_and_the_shared_one_exports_36_functions() {
    let staged = staged();
    let dir = tempfile::tempdir().unwrap();
    let compile_static = |name: &str| {
        let binary = dir.path().join(format!("{name}-static"));
        let status = Command::new(c_compiler())
            .args(C99_STRICT)
            .arg(format!("-I{}", staged.join("include").display()))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/c/{name}.c")))
            .arg(staged.join("lib/libtachyon.a"))
            .args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
            ])
            .arg("-o")
            .arg(&binary)
            .status()
            .expect("cc runs");
        assert!(status.success(), "static link of {name} failed");
        binary
    };
    let (producer, consumer) = (compile_static("producer"), compile_static("consumer"));
    let linked = Command::new("ldd")
        .arg(&consumer)
        .output()
        .expect("ldd runs");
    assert!(
        !String::from_utf8_lossy(&linked.stdout).contains("libtachyon"),
        "the static consumer still loads libtachyon.so"
    );
    let path = socket("c", "static");
    let mut listener = spawn(Command::new(&consumer).args(["--socket", &path, "--listen"]));
    wait_for_socket(&path, &mut listener);
    let producer =
        spawn(Command::new(&producer).args(["--socket", &path, "--connect", "--count", "10000"]));
    finish(producer, "the static C producer");
    let received = last_json(&finish(listener, "the static C consumer"));
    assert_eq!(received.get("received"), 10_000);
    assert_eq!(received.get("volume"), volume_of(10_000));

    let symbols = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(staged.join("lib/libtachyon.so"))
        .output()
        .expect("nm runs");
    let text = String::from_utf8_lossy(&symbols.stdout);
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(exported.len(), 36, "{exported:?}");
    assert!(exported.iter().all(|name| name.starts_with("tachyon_")));
}

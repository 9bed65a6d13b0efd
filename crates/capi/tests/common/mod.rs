//! Setup shared by the tests that run against the real tachyon-ipc Python package
//! (c_examples.rs, rpc_real_peer.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The workspace root, where .venv, python/ and target/ are.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python, with the real tachyon-ipc 0.5.1 importable.
pub fn python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    let check = Command::new(&python)
        .args([
            "-c",
            "import tachyon, importlib.metadata as m; v = m.version('tachyon-ipc'); \
             assert v == '0.5.1', v",
        ])
        .env_remove("PYTHONPATH")
        .status()
        .unwrap_or_else(|err| panic!("{} does not run ({err}): run ./just", python.display()));
    assert!(
        check.success(),
        "the real tachyon-ipc 0.5.1 is not installed in .venv: run ./just (python/bootstrap.sh)"
    );
    python
}

/// A fresh socket path `capi-{kind}-{name}-{pid}.sock` in the temp dir: one per test binary
/// (`kind`) and test (`name`), so parallel tests and runs never share one.
pub fn socket(kind: &str, name: &str) -> String {
    let path = std::env::temp_dir().join(format!("capi-{kind}-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_str().unwrap().to_owned()
}

/// Waits (at most 120 s) for a child, returning its output; kills it on timeout, so a hung
/// peer fails the test instead of hanging it.
pub fn finish(mut child: Child, what: &str) -> Output {
    let give_up = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("{what} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{what} failed: {}", output.status);
    output
}

"""Shared helpers of the tachyon_rs tests: socket paths, in-process pairs, child processes.

The cross-process tests run the real tachyon-ipc (import name ``tachyon``, installed by
python/bootstrap.sh) on one end; they fail, never skip, when it is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "python"
PYTHON = sys.executable
CONSUMER_BIN = REPO / "target" / "release" / "tachyon-consumer"


@pytest.fixture
def sock():
    """A fresh socket path short enough for sun_path, removed afterwards."""
    folder = tempfile.mkdtemp(prefix="trs-", dir="/tmp")
    yield os.path.join(folder, "s.sock")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def real():
    """The real tachyon-ipc package; a missing one is an error, not a skip."""
    import tachyon  # noqa: F401  (ImportError fails every test that needs the real peer)

    assert tachyon.__version__ == "0.5.1", tachyon.__version__
    assert "tachyon_rs" not in tachyon.__file__
    return tachyon


def pair(module, path, capacity=1 << 16):
    """(listener, connector) of ``module``'s Bus in this process: listen in a thread."""
    return _listen_and_connect(
        lambda: module.Bus.listen(path, capacity), lambda: module.Bus.connect(path)
    )


def rpc_pair(module, path, cap_fwd=1 << 16, cap_rev=1 << 16):
    """(callee, caller) of ``module``'s RpcBus in this process."""
    return _listen_and_connect(
        lambda: module.RpcBus.rpc_listen(path, cap_fwd, cap_rev),
        lambda: module.RpcBus.rpc_connect(path),
    )


def _listen_and_connect(listen, connect):
    """(listen(), connect()): listen blocks until the peer connects, so it runs in a thread."""
    box = {}

    def run_listen():
        try:
            box["bus"] = listen()
        except BaseException as e:  # surfaced below
            box["error"] = e

    thread = threading.Thread(target=run_listen)
    thread.start()
    connector = connect_retrying(connect)
    thread.join(10)
    if "error" in box:
        raise box["error"]
    return box["bus"], connector


def connect_retrying(connect, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect()
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def swapped_script(name: str, folder: Path) -> Path:
    """python/<name> with ``import tachyon`` replaced by ``import tachyon_rs as tachyon``, and
    nothing else changed (the helpers it imports are copied and swapped too)."""
    for helper in ("full_retry.py",):
        text = (SCRIPTS / helper).read_text()
        (folder / helper).write_text(swap_import(text))
    text = (SCRIPTS / name).read_text()
    out = folder / name
    out.write_text(swap_import(text))
    return out


def swap_import(text: str) -> str:
    assert "\nimport tachyon\n" in text
    return text.replace("\nimport tachyon\n", "\nimport tachyon_rs as tachyon\n", 1)


# A shell without job control starts background commands with SIGINT ignored, and children
# inherit that; a Python child then never installs its KeyboardInterrupt handler, and every
# Ctrl-C test fails for reasons of how the suite was launched (seen when it ran under
# `nohup ... &`). A handled signal is reset to the default across exec, so handling it here
# gives every child the default Ctrl-C behaviour, however pytest itself was started.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def spawn(args, **kw):
    """A child process with piped stdout/stderr (text)."""
    return subprocess.Popen(
        [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def spawn_code(code: str, *args, **kw):
    """A child Python running ``code`` (dedented) with ``args`` in sys.argv[1:]."""
    return spawn([PYTHON, "-c", textwrap.dedent(code), *args], **kw)


def finish(proc, timeout=60):
    """Wait for ``proc``; return (returncode, stdout, stderr), killing it on timeout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"child timed out after {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


def last_json(out: str):
    import json

    return json.loads(out.strip().splitlines()[-1])


def wait_for_line(proc, want: str, timeout=10.0):
    """Read the child's stdout until a line equal to ``want``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == want:
            return
        if line == "" and proc.poll() is not None:
            break
    err = proc.stderr.read() if proc.poll() is not None else ""
    raise AssertionError(f"child never printed {want!r} (rc={proc.poll()}): {err}")


def interrupt(proc):
    proc.send_signal(signal.SIGINT)


def pytest_addoption(parser):
    parser.addoption(
        "--without-real-peer",
        action="store_true",
        help="deselect the tests that need the real tachyon-ipc (for a Python it is not built "
        "for: 3.9 and 3.10 run everything else; pytest reports them as deselected)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--without-real-peer"):
        return
    needs_real = [item for item in items if "real" in getattr(item, "fixturenames", ())]
    if needs_real:
        config.hook.pytest_deselected(items=needs_real)
        items[:] = [item for item in items if item not in needs_real]

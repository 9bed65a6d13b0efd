#!/usr/bin/env bash
# Upstream's own Python binding on our C ABI: downloads the PyPI sdist of tachyon-ipc 0.5.1
# (at test time; nothing of it is kept in the repository), compiles its extension module
# `_tachyon.cpp` against OUR header and libtachyon.so (target/capi/, from `./just capi`)
# instead of its C++ core, and runs its own tests (tests/test_bus.py, tests/test_rpc.py)
# against that module. Any failure, or a module that does not load our library, fails the
# script. Args go to pytest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
venv="$root/.venv"
python="$venv/bin/python"
capi="$root/target/capi"
[[ -f "$capi/lib/libtachyon.so" && -f "$capi/include/tachyon.h" ]] || {
  echo "upstream-tests: $capi has no libtachyon.so or tachyon.h; run ./just capi first" >&2
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tachyon-capi-upstream.XXXXXX")
trap 'rm -rf "$work"' EXIT

# setup.py runs its compiler check even to read the metadata: give it zig's clang, as
# python/bootstrap.sh does.
echo "upstream-tests: downloading the tachyon-ipc 0.5.1 sdist" >&2
CC="$venv/bin/zig-cc" CXX="$venv/bin/zig-c++" \
  "$python" -m pip download --disable-pip-version-check --quiet \
  --no-binary :all: --no-deps --dest "$work" tachyon-ipc==0.5.1
tar -xzf "$work"/tachyon_ipc-0.5.1.tar.gz -C "$work"
sdist="$work/tachyon_ipc-0.5.1"
for needed in src/tachyon/_tachyon.cpp tests/test_bus.py tests/test_rpc.py _dlpack_local/dlpack/dlpack.h; do
  [[ -f "$sdist/$needed" ]] || { echo "upstream-tests: the sdist lacks $needed" >&2; exit 1; }
done

# The package as upstream ships it, except that its extension module is built from
# _tachyon.cpp alone, against our tachyon.h, linked to our libtachyon.so. Debian's g++ 12 is
# enough for the binding (upstream's C++23 core is what needs a newer compiler); zig's
# clang++ otherwise.
package="$work/site/tachyon"
mkdir -p "$package"
cp "$sdist"/src/tachyon/*.py "$package/"
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
cxx=${CAPI_CXX:-$(command -v g++ || echo "$venv/bin/zig-c++")}
echo "upstream-tests: compiling _tachyon.cpp with $cxx against $capi" >&2
"$cxx" -std=c++20 -O2 -shared -fPIC -fno-exceptions -fno-rtti -w \
  -I"$capi/include" -I"$sdist/_dlpack_local" -I"$include" \
  "$sdist/src/tachyon/_tachyon.cpp" \
  -L"$capi/lib" -ltachyon -Wl,-rpath,"$capi/lib" \
  -o "$package/_tachyon$suffix"

# The module must be the one just built, and it must resolve libtachyon to ours.
PYTHONPATH="$work/site" "$python" - "$package/_tachyon$suffix" "$capi/lib/libtachyon.so" <<'PY'
import os, sys
import tachyon._tachyon as module
built, ours = sys.argv[1], os.path.realpath(sys.argv[2])
assert os.path.realpath(module.__file__) == os.path.realpath(built), module.__file__
with open("/proc/self/maps") as maps:
    loaded = {line.split()[-1] for line in maps if "libtachyon" in line}
assert loaded == {ours}, f"libtachyon loaded from {loaded}, expected {ours}"
print(f"upstream-tests: tachyon._tachyon is {built}, on {ours}", file=sys.stderr)
PY

cd "$sdist"
PYTHONPATH="$work/site" "$python" -m pytest -p no:cacheprovider -rs \
  tests/test_bus.py tests/test_rpc.py "$@"

# One more check of our own, through upstream's binding: a signal during a blocking receive
# ends the C call with NULL, the binding runs the Python handler (PyErr_CheckSignals), and
# the handler's exception comes out of the receive, within the timer's time.
PYTHONPATH="$work/site" "$python" - <<'PY'
import os, signal, sys, threading, time
import tachyon

path = f"/tmp/tachyon-capi-signal-{os.getpid()}.sock"
if os.path.exists(path):
    os.unlink(path)
held = {}
listener = threading.Thread(target=lambda: held.setdefault("bus", tachyon.Bus.listen(path, 1 << 16)))
listener.start()
deadline = time.monotonic() + 10
while True:
    try:
        producer = tachyon.Bus.connect(path)
        break
    except ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.01)
listener.join()
consumer = held["bus"]

class Alarm(Exception):
    pass

def on_alarm(signum, frame):
    raise Alarm()

signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.3)
started = time.monotonic()
try:
    next(iter(consumer))
    sys.exit("upstream-tests: the receive returned a message nobody sent")
except Alarm:
    waited = time.monotonic() - started
assert 0.25 <= waited < 5, waited
producer.send(b"after", type_id=3)
message = next(iter(consumer))
assert (message.type_id, message.data) == (3, b"after"), message
print(f"upstream-tests: a signal ended a blocking receive after {waited:.2f} s; the bus still works",
      file=sys.stderr)
PY

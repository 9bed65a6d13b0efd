#!/usr/bin/env bash
# Upstream's own Python binding on our C ABI: downloads the PyPI sdist of tachyon-ipc 0.5.1
# (at test time; nothing of it is kept in the repository), compiles its extension module
# `_tachyon.cpp` against OUR header and libtachyon.so (target/capi/, from `./just capi`)
# instead of its C++ core, and runs its own tests (tests/test_bus.py, tests/test_rpc.py)
# against that module. Any failure, or a module that does not load our library, fails the
# script. Args go to pytest.
set -euo pipefail

# The download and the build of the binding are upstream-binding.sh's (shared with the
# benchmark `./just bench-capi`).
source "$(dirname "${BASH_SOURCE[0]}")/upstream-binding.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/tachyon-capi-upstream.XXXXXX")
trap 'rm -rf "$work"' EXIT
upstream_sdist "$work"

# Our header against upstream's (from the same sdist): every function's type (as C++ names
# it, mangled) and the layout and values of the types must match. The one textual difference,
# the opaque structs' tags (upstream `struct tachyon_bus`, ours `struct tachyon_bus_t`), is
# mapped before comparing; it changes nothing in the ABI (the handles are opaque pointers).
functions=$(grep -o 'tachyon_[a-z_]*(' "$sdist/_core_local/include/tachyon.h" | tr -d '(' | sort -u)
[[ $(wc -w <<<"$functions") == 36 ]] || { echo "upstream-tests: upstream's header has $(wc -w <<<"$functions") functions, expected 36" >&2; exit 1; }
{
  echo '#include <cstddef>'
  echo '#include <cstdio>'
  echo '#include <typeinfo>'
  echo '#include "tachyon.h"'
  echo 'int main() {'
  for function in $functions; do
    echo "  std::printf(\"$function %s\\n\", typeid(&$function).name());"
  done
  echo '  std::printf("view %zu %zu %zu %zu %zu %zu %zu\n", sizeof(tachyon_msg_view_t), alignof(tachyon_msg_view_t), offsetof(tachyon_msg_view_t, ptr), offsetof(tachyon_msg_view_t, actual_size), offsetof(tachyon_msg_view_t, reserved_), offsetof(tachyon_msg_view_t, type_id), offsetof(tachyon_msg_view_t, padding_));'
  echo '  std::printf("enums %zu %zu\n", sizeof(tachyon_error_t), sizeof(tachyon_state_t));'
  for value in SUCCESS ERR_NULL_PTR ERR_MEM ERR_OPEN ERR_TRUNCATE ERR_CHMOD ERR_SEAL ERR_MAP \
      ERR_INVALID_SZ ERR_FULL ERR_EMPTY ERR_NETWORK ERR_SYSTEM ERR_INTERRUPTED ERR_ABI_MISMATCH \
      STATE_UNINITIALIZED STATE_INITIALIZING STATE_READY STATE_DISCONNECTED STATE_FATAL_ERROR \
      STATE_UNKNOWN; do
    echo "  std::printf(\"TACHYON_$value %d\\n\", (int)TACHYON_$value);"
  done
  echo '  std::printf("macros %u %u %u\n", (unsigned)TACHYON_TYPE_ID(3, 4), (unsigned)TACHYON_ROUTE_ID(0x50006u), (unsigned)TACHYON_MSG_TYPE(0x50006u));'
  echo '}'
} >"$work/abi.cpp"
for side in upstream ours; do
  include=$([[ $side == upstream ]] && echo "$sdist/_core_local/include" || echo "$capi/include")
  "$cxx" -std=c++20 -w -I"$include" "$work/abi.cpp" -o "$work/abi-$side"
  "$work/abi-$side" | sed 's/17tachyon_rpc_bus_t/15tachyon_rpc_bus/g; s/13tachyon_bus_t/11tachyon_bus/g' >"$work/abi-$side.txt"
done
diff -u "$work/abi-upstream.txt" "$work/abi-ours.txt" || {
  echo "upstream-tests: our tachyon.h differs from upstream's in the ABI (above)" >&2
  exit 1
}
echo "upstream-tests: tachyon.h matches upstream's: $(grep -c '^tachyon_' "$work/abi-ours.txt") function types, the view's layout, $(grep -c '^TACHYON_' "$work/abi-ours.txt") enum values, the macros" >&2

upstream_binding_build "$sdist" "$work/site"

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

# The timer repeats every 0.1 s (a signal that lands before the call blocks is lost, the next
# one is not); the handler raises once, the later ones do nothing.
fired = []

def on_alarm(signum, frame):
    if not fired:
        fired.append(signum)
        raise Alarm()

signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.3, 0.1)
started = time.monotonic()
try:
    next(iter(consumer))
    sys.exit("upstream-tests: the receive returned a message nobody sent")
except Alarm:
    waited = time.monotonic() - started
signal.setitimer(signal.ITIMER_REAL, 0)
assert 0.25 <= waited < 5, waited
producer.send(b"after", type_id=3)
message = next(iter(consumer))
assert (message.type_id, message.data) == (3, b"after"), message
print(f"upstream-tests: a signal ended a blocking receive after {waited:.2f} s; the bus still works",
      file=sys.stderr)

# The same for Bus.listen waiting for a peer: TACHYON_ERR_INTERRUPTED, the binding checks
# its signals, the handler's exception comes out, and the socket file is gone.
listen_path = f"/tmp/tachyon-capi-listen-signal-{os.getpid()}.sock"
fired.clear()
signal.setitimer(signal.ITIMER_REAL, 0.3, 0.1)
started = time.monotonic()
try:
    tachyon.Bus.listen(listen_path, 1 << 16)
    sys.exit("upstream-tests: listen returned without a peer")
except Alarm:
    waited = time.monotonic() - started
signal.setitimer(signal.ITIMER_REAL, 0)
assert 0.25 <= waited < 5, waited
assert not os.path.exists(listen_path), "the socket file was left behind"
print(f"upstream-tests: a signal ended Bus.listen after {waited:.2f} s", file=sys.stderr)
PY

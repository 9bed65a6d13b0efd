#!/usr/bin/env bash
# Upstream's own Python binding on our C ABI, built: the one piece shared by upstream-tests.sh
# (which sources this file for its functions) and the benchmark `./just bench-capi` (which runs
# it). It downloads the PyPI sdist of tachyon-ipc 0.5.1 (nothing of it is kept in the
# repository) and compiles its extension module `_tachyon.cpp` against OUR tachyon.h and
# libtachyon.so (target/capi/, from `./just capi`) instead of its C++ core, next to the
# package's own Python files; then it checks that the module loads our library.
#
# Run:    upstream-binding.sh DEST
#         DEST/site/tachyon/ is the package; PYTHONPATH=DEST/site shadows the installed one.
# Source: defines root, venv, python, capi, cxx and the functions upstream_sdist WORK (sets
#         `sdist`, the extracted source tree) and upstream_binding_build SDIST SITE.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
venv="$root/.venv"
python="$venv/bin/python"
capi="$root/target/capi"
[[ -f "$capi/lib/libtachyon.so" && -f "$capi/include/tachyon.h" ]] || {
  echo "upstream-binding: $capi has no libtachyon.so or tachyon.h; run ./just capi first" >&2
  exit 1
}
# Debian's g++ 12 is enough for the binding (upstream's C++23 core is what needs a newer
# compiler); zig's clang++ otherwise.
cxx=${CAPI_CXX:-$(command -v g++ || echo "$venv/bin/zig-c++")}

# Download and extract the sdist into WORK; sets `sdist` to the source tree.
upstream_sdist() {
  local work=$1 needed
  # setup.py runs its compiler check even to read the metadata: give it zig's clang, as
  # python/bootstrap.sh does.
  echo "upstream-binding: downloading the tachyon-ipc 0.5.1 sdist" >&2
  CC="$venv/bin/zig-cc" CXX="$venv/bin/zig-c++" \
    "$python" -m pip download --disable-pip-version-check --quiet \
    --no-binary :all: --no-deps --dest "$work" tachyon-ipc==0.5.1
  tar -xzf "$work"/tachyon_ipc-0.5.1.tar.gz -C "$work"
  sdist="$work/tachyon_ipc-0.5.1"
  for needed in src/tachyon/_tachyon.cpp tests/test_bus.py tests/test_rpc.py _dlpack_local/dlpack/dlpack.h; do
    [[ -f "$sdist/$needed" ]] || { echo "upstream-binding: the sdist lacks $needed" >&2; exit 1; }
  done
}

# The package as upstream ships it, except that its extension module is built from
# _tachyon.cpp alone, against our tachyon.h, linked to our libtachyon.so: into SITE/tachyon.
upstream_binding_build() {
  local sdist=$1 site=$2 package suffix include
  package="$site/tachyon"
  mkdir -p "$package"
  cp "$sdist"/src/tachyon/*.py "$package/"
  suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  echo "upstream-binding: compiling _tachyon.cpp with $cxx against $capi" >&2
  "$cxx" -std=c++20 -O2 -shared -fPIC -fno-exceptions -fno-rtti -w \
    -I"$capi/include" -I"$sdist/_dlpack_local" -I"$include" \
    "$sdist/src/tachyon/_tachyon.cpp" \
    -L"$capi/lib" -ltachyon -Wl,-rpath,"$capi/lib" \
    -o "$package/_tachyon$suffix"

  # The module must be the one just built, and it must resolve libtachyon to ours.
  PYTHONPATH="$site" "$python" - "$package/_tachyon$suffix" "$capi/lib/libtachyon.so" <<'PY'
import os, sys
import tachyon._tachyon as module
built, ours = sys.argv[1], os.path.realpath(sys.argv[2])
assert os.path.realpath(module.__file__) == os.path.realpath(built), module.__file__
with open("/proc/self/maps") as maps:
    loaded = {line.split()[-1] for line in maps if "libtachyon" in line}
assert loaded == {ours}, f"libtachyon loaded from {loaded}, expected {ours}"
print(f"upstream-binding: tachyon._tachyon is {built}, on {ours}", file=sys.stderr)
PY
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  [[ $# == 1 ]] || { echo "usage: $0 DEST (the package goes to DEST/site/tachyon)" >&2; exit 2; }
  dest=$1
  work=$(mktemp -d "${TMPDIR:-/tmp}/tachyon-capi-binding.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  upstream_sdist "$work"
  rm -rf "$dest/site"
  mkdir -p "$dest"
  upstream_binding_build "$sdist" "$dest/site"
fi

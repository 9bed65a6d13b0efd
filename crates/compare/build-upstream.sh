#!/usr/bin/env bash
# Runs `cargo ARGS...` with everything the comparator needs: crates.io tachyon-ipc 0.5.1 (feature
# `compare-upstream` of tachyon-compare) compiles the C++23 core through tachyon-sys (cc +
# bindgen), which Debian 12's GCC 12 and Clang 14 cannot do. See shared/spec/real-peer.md.
#
#   crates/compare/build-upstream.sh build --release -p tachyon-compare --features compare-upstream
#
# - CC / CXX: the zig wrappers python/bootstrap.sh writes (zig's Clang 22 and libc++; they drop
#   the --target= cc-rs passes), CXXSTDLIB=c++ so the core links against zig's libc++;
# - the zig cc wrapper as linker, through RUSTFLAGS, scoped to this build by its own target dir
#   (target/compare), so the main target cache is never invalidated;
# - LIBCLANG_PATH: the libclang.so of PyPI libclang==18.1.1 (for bindgen), installed into .venv
#   here when missing; BINDGEN_EXTRA_CLANG_ARGS: GCC's include dir for stddef.h, which that
#   libclang ships without.
# Nothing of this is needed by the default build, the tests or CI.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv="$root/.venv"

# The venv, the real Python peer and the zig wrappers (idempotent, fast when ready).
"$root/python/bootstrap.sh"
for tool in zig-cc zig-c++; do
  [[ -x "$venv/bin/$tool" ]] || { echo "build-upstream: $venv/bin/$tool missing" >&2; exit 1; }
done

libclang_dir() {
  "$venv/bin/python" -c 'import clang, os; print(os.path.join(os.path.dirname(clang.__file__), "native"))' 2>/dev/null
}
if ! dir=$(libclang_dir) || [[ ! -f "$dir/libclang.so" ]]; then
  echo "build-upstream: installing libclang==18.1.1 into $venv" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet libclang==18.1.1
  dir=$(libclang_dir)
fi

export CC="$venv/bin/zig-cc"
export CXX="$venv/bin/zig-c++"
export CXXSTDLIB=c++
export LIBCLANG_PATH="$dir"
export BINDGEN_EXTRA_CLANG_ARGS="-I$(gcc -print-file-name=include)"
export CARGO_TARGET_DIR="${COMPARE_TARGET_DIR:-$root/target/compare}"
export RUSTFLAGS="-C linker=$venv/bin/zig-cc"

cd "$root"
exec cargo "$@"

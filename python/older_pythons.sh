#!/usr/bin/env bash
# tachyon_rs on CPython 3.9 and 3.10: the abi3 wheel needs 3.11 (a guard's buffer protocol
# entered the stable ABI there), so these two get a wheel each, built from the same source with
# `--no-default-features` (no abi3).
#
#   older_pythons.sh build   wheels into target/wheels/ for each interpreter found
#   older_pythons.sh test    each one's pytest suite in its own venv under target/, without the
#                            tests that need the real tachyon-ipc (built here for 3.11 only;
#                            pytest reports them as deselected)
#
# An interpreter is a working python3.9 / python3.10 on PATH or in pyenv's versions (this
# project's machines have pyenv's). One that is missing is reported as NOT BUILT / NOT TESTED on stderr; TACHYON_REQUIRE_OLDER_PYTHONS=1
# makes that an error.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
versions=(3.9 3.10)

interpreter() {
  local python
  for python in $(command -v "python$1" 2>/dev/null) \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python"$1"; do
    if [[ -x "$python" ]] && "$python" -c 'import sys, venv' 2>/dev/null; then
      echo "$python"
      return 0
    fi
  done
  return 1
}

missing() {
  echo "older_pythons: NOT $2 for CPython $1: no working python$1 on PATH or in pyenv" >&2
  [[ "${TACHYON_REQUIRE_OLDER_PYTHONS:-0}" != 1 ]]
}

build() {
  local version=$1 python tag=${1/./}
  python=$(interpreter "$version") || { missing "$version" BUILT; return; }
  rm -f target/wheels/tachyon_rs-*-cp"$tag"-cp"$tag"-*.whl
  # Its own target dir: the interpreter is part of pyo3's build configuration.
  PATH="$root/.venv/bin:$PATH" CARGO_TARGET_DIR="target/python$tag" \
    .venv/bin/maturin build --release --quiet -m crates/python/Cargo.toml --out target/wheels \
    --zig --compatibility manylinux2014 --no-default-features -i "$python"
}

run_tests() {
  local version=$1 python tag=${1/./} venv
  python=$(interpreter "$version") || { missing "$version" TESTED; return; }
  venv="$root/target/venv$tag"
  local stamp="$venv/.tachyon-tools" want
  want=$(sha256sum python/requirements-older.txt | cut -d' ' -f1)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$python" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r python/requirements-older.txt
    echo "$want" > "$stamp"
  fi
  local wheel
  wheel=$(ls target/wheels/tachyon_rs-*-cp"$tag"-cp"$tag"-*.whl)
  "$venv/bin/python" -m pip install --disable-pip-version-check --force-reinstall --no-deps \
    --quiet "$wheel"
  echo "older_pythons: CPython $version, $(basename "$wheel")" >&2
  "$venv/bin/python" -m pytest crates/python/tests --without-real-peer -q
}

case "${1:-}" in
  build) for v in "${versions[@]}"; do build "$v"; done ;;
  test) for v in "${versions[@]}"; do run_tests "$v"; done ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

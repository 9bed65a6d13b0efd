#!/usr/bin/env bash
# The one bootstrap of the Python environment: `.venv/` at the repository root, holding the
# real tachyon-ipc==0.5.1 (compiled with zig's clang), the `just` task runner, and the zig
# compiler wrappers the comparison benchmarks reuse.
#
# Idempotent and fast when already built: a stamp records the hash of the requirement files
# and of this script; when it matches and `import tachyon` works, nothing runs.
# Needs only python3.11 (or python3) and the package registries.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.tachyon-bootstrap"
want=$(cat "$root/python/requirements.txt" "$root/python/requirements-tools.txt" \
  "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)

ready() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/just" ]] \
    && "$venv/bin/python" -c 'import tachyon' 2>/dev/null
}
ready && exit 0

# One bootstrap at a time (two `./just` calls, or parallel tests, on a fresh checkout).
exec 9>"$root/.venv.lock"
flock 9
ready && exit 0

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: $python is $("$python" --version 2>&1); tachyon-ipc's environment needs Python 3.11 or newer (set PYTHON=...)" >&2
  exit 1
}
echo "bootstrap: building $venv with $python (first run takes about 2 minutes)" >&2
# A venv left half-built by an interrupted first run (no pip yet) is rebuilt from scratch.
"$venv/bin/python" -m pip --version &>/dev/null || "$python" -m venv --clear "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
"${pip[@]}" -r "$root/python/requirements-tools.txt"

# Wrappers that call zig by absolute path (pip builds in an isolated environment where
# `python -m ziglang` is not importable) and drop `--target=...` (cc-rs passes one zig rejects).
zig=$("$venv/bin/python" -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
for tool in cc c++; do
  cat >"$venv/bin/zig-$tool" <<WRAP
#!/usr/bin/env bash
args=()
for a in "\$@"; do [[ "\$a" == --target=* ]] || args+=("\$a"); done
exec "$zig" $tool "\${args[@]}"
WRAP
  chmod +x "$venv/bin/zig-$tool"
done

CC="$venv/bin/zig-cc" CXX="$venv/bin/zig-c++" LDSHARED="$venv/bin/zig-c++ -shared" \
  "${pip[@]}" -r "$root/python/requirements.txt"
"$venv/bin/python" -c 'import tachyon' || { echo "bootstrap: tachyon-ipc installed but does not import" >&2; exit 1; }
echo "$want" >"$stamp"
echo "bootstrap: ready ($("$venv/bin/python" -c 'import importlib.metadata as m; print("tachyon-ipc", m.version("tachyon-ipc"))'))" >&2

#!/usr/bin/env bash
# The cost of watching: our producer example's rate into our consumer example, with
# `tachyon-top --watch --peek` sampling at its default interval (1 s) and without, in
# alternating trials. Prints each pair and the median of the per-pair ratios (with / without).
#
#   cargo build --release -p tachyon-ring --examples -p tachyon-top
#   crates/top/bench/overhead.sh [PAIRS] [COUNT]
set -euo pipefail
pairs=${1:-9}
count=${2:-20000000}
root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
socket=/tmp/tachyon-top-overhead-$$.sock
top_pid=
trap '[ -n "$top_pid" ] && kill "$top_pid" 2>/dev/null; rm -f "$socket"' EXIT

run() { # prints the producer's msgs/s
    rm -f "$socket"
    "$bin/examples/consumer" --listen --socket "$socket" >/dev/null 2>&1 &
    local consumer=$!
    while [ ! -S "$socket" ]; do sleep 0.01; done
    "$bin/examples/producer" --connect --socket "$socket" --count "$count" --size 32 2>/dev/null |
        tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgs_per_s"])'
    wait "$consumer"
}

results=()
for ((i = 1; i <= pairs; i++)); do
    without=$(run)
    "$bin/tachyon-top" --watch --peek --label "$socket" >/dev/null &
    top_pid=$!
    with=$(run)
    kill "$top_pid"; wait "$top_pid" 2>/dev/null || true; top_pid=
    echo "pair $i: without $without msg/s, with tachyon-top --peek $with msg/s"
    results+=("$without $with")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
ratios = sorted(w / wo for wo, w in pairs)
print(f"median without {statistics.median(p[0] for p in pairs):,.0f} msg/s, "
      f"with {statistics.median(p[1] for p in pairs):,.0f} msg/s; "
      f"ratio with/without: median {statistics.median(ratios):.3f} "
      f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}, {len(ratios)} pairs)")'

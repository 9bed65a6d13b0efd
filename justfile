# Recipes of the tachyon-ring workspace. Run them through `./just`, which installs `just` and
# the real tachyon-ipc peer first (python/bootstrap.sh).

set shell := ["bash", "-euo", "pipefail", "-c"]

python := justfile_directory() / ".venv/bin/python"
socket := "/tmp/tachyon_market.sock"

# List the recipes.
default:
    @just --list

# Release build of the crate, its examples and the consumer binary.
build:
    cargo build --release -p tachyon-ring --examples -p tachyon-consumer --bins

# Everything: formatting, lints, rustdoc, unit, property, doc, cross-process and
# cross-language tests.
test: lint
    cargo test --workspace

# Cross-language tests only: the Rust crate against the real pip-installed tachyon-ipc.
itest: build
    cargo test -p tachyon-itest --test real_peer --test market --test rpc --test reliability

# The seed's demo: tachyon-consumer listens, the Python producer sends 1,000,000 ticks.
demo count="1000000": build
    #!/usr/bin/env bash
    set -euo pipefail
    rm -f {{socket}}
    ./target/release/tachyon-consumer --socket {{socket}} &
    consumer=$!
    while [ ! -S {{socket}} ]; do sleep 0.05; done
    {{python}} python/producer.py --socket {{socket}} --count {{count}} >/dev/null
    wait $consumer

# Benchmarks (criterion, in process).
bench:
    cargo bench -p tachyon-itest

# Formatting, clippy with warnings as errors, rustdoc with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

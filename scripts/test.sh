#!/usr/bin/env bash
# Runs every test: formatting and lints, the workspace build (the end-to-end tests start the
# real binary with the real plugin libraries, so both must exist first), a throwaway PostgreSQL
# (unless TEST_DATABASE_URL names one), unit, property, conformance and end-to-end tests on both
# stores, doc tests, schemathesis against the live service's OpenAPI document on both stores,
# and the service built with the OTLP exporter.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test runner. Missing on a machine that has only Rust: installed from crates.io, pinned,
# into cargo's own bin directory (once per machine).
NEXTEST_VERSION=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "== installing cargo-nextest $NEXTEST_VERSION (the test runner) with cargo install: it builds from source, 3 to 8 minutes"
    if ! cargo install cargo-nextest --locked --version "$NEXTEST_VERSION"; then
        echo "installing cargo-nextest failed (above: why). Install it yourself with" >&2
        echo "    cargo install cargo-nextest --locked --version $NEXTEST_VERSION" >&2
        echo "and make sure cargo's bin directory (${CARGO_HOME:-$HOME/.cargo}/bin) is on PATH." >&2
        exit 1
    fi
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "cargo-nextest was installed but cargo cannot find it: add ${CARGO_HOME:-$HOME/.cargo}/bin to PATH" >&2
        exit 1
    fi
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

if ! pkg-config --exists libpq 2>/dev/null && [ ! -e /usr/lib/x86_64-linux-gnu/libpq.so ] && [ ! -e /usr/lib/libpq.so ]; then
    echo "== installing libpq-dev (the PostgreSQL client library the store links)"
    scripts/pg.sh install-client
fi

echo "== build (binary and plugin libraries)"
cargo build --workspace --all-targets --locked

echo "== PostgreSQL"
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # A throwaway cluster, installed first if PostgreSQL is missing, removed at exit.
    pg_env=$(scripts/pg.sh start) || { echo "starting the throwaway PostgreSQL failed (above: why)" >&2; exit 1; }
    eval "$pg_env"
    trap 'scripts/pg.sh stop' EXIT
fi
export TEST_DATABASE_URL

echo "== tests"
cargo nextest run --workspace --locked --profile ci
cargo test --doc --workspace --locked
echo "== schemathesis: the live service against its OpenAPI document, on both stores"
bash scripts/schemathesis.sh
echo "== the OTLP exporter (feature otlp)"
cargo clippy -p scheduler-web --features otlp --all-targets --locked -- -D warnings
cargo nextest run -p scheduler-web --features otlp --locked --profile ci
echo "== all tests passed"

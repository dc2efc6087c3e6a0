#!/usr/bin/env bash
# Runs every test: formatting and lints, the workspace build (the end-to-end tests start the
# real binary with the real plugin libraries, so both must exist first), unit, conformance and
# end-to-end tests, and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-nextest >/dev/null 2>&1; then
    echo "cargo-nextest is missing: cargo install cargo-nextest --locked" >&2
    exit 1
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== build (binary and plugin libraries)"
cargo build --workspace --all-targets --locked

echo "== tests"
cargo nextest run --workspace --locked --profile ci
cargo test --doc --workspace --locked
echo "== all tests passed"

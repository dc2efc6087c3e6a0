#!/usr/bin/env bash
# Builds the service and the example plugins (release) and starts it in memory mode on
# 127.0.0.1:8089. Extra arguments go to the `scheduler` binary (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e /usr/lib/x86_64-linux-gnu/libpq.so ] && ! pkg-config --exists libpq 2>/dev/null; then
    scripts/pg.sh install-client   # the PostgreSQL client library the binary links
fi
cargo build --release -p scheduler-web -p vps4-backups -p noop-plugin
mkdir -p target/plugins
cp target/release/libvps4_backups.so target/release/libnoop.so target/plugins/
exec target/release/scheduler --jobstore memory --plugins target/plugins "$@"

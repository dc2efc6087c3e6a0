#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks.
#
#   eval "$(scripts/pg.sh start)"   # installs PostgreSQL if missing, starts a cluster,
#                                   # prints `export TEST_DATABASE_URL=...` (and
#                                   # TEST_DATABASE_CA, the server's TLS certificate)
#   scripts/pg.sh stop              # stops it and removes its files
#   scripts/pg.sh halt | resume     # stops it keeping its data / starts it again (outage tests)
#
# The cluster lives in target/pgtest (or $PGTEST_DIR) and listens on 127.0.0.1 on a free port;
# the superuser `postgres` has the password `postgres`. As root (CI and these machines) the server runs as an unprivileged
# user, because PostgreSQL refuses to run as root. Tests use fsync=off for speed; set
# PGTEST_DURABLE=1 (benchmarks) to keep PostgreSQL's durable defaults.
set -euo pipefail
# runuser and useradd live in the sbin directories, which a user's PATH may leave out.
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
dir="${PGTEST_DIR:-$PWD/target/pgtest}"

say() { echo "pg.sh: $*" >&2; }

find_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        say "need root to run: $*"; return 1; fi
}

install() {
    say "PostgreSQL is not installed: installing it with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql libpq-dev >&2 ||
        { as_root apt-get update >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql libpq-dev >&2; }
}

start() {
    local bin user port opts
    bin=$(find_bin) || { install; bin=$(find_bin); } || { say "no initdb after installing PostgreSQL"; exit 1; }
    stop_quietly
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        user=postgres
        id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
        chown "$user" "$dir"
        chmod 700 "$dir"
        run() { runuser -u "$user" -- "$@"; }
    else
        run() { "$@"; }
    fi
    # Local socket connections are trusted; TCP connections need the password (so tests can
    # check what a wrong password does).
    echo postgres >"$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
    run "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --pwfile="$dir/pwfile" -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    # TLS on, with a throwaway self-signed certificate for 127.0.0.1 (tests connect with
    # sslmode=verify-full against it, and without TLS too).
    local tls=""
    if command -v openssl >/dev/null 2>&1; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            -keyout "$dir/server.key" -out "$dir/server.crt" >"$dir/openssl.log" 2>&1 ||
            { cat "$dir/openssl.log" >&2; exit 1; }
        chmod 600 "$dir/server.key"
        chmod 644 "$dir/server.crt"
        [ "$(id -u)" = 0 ] && chown postgres "$dir/server.key" "$dir/server.crt"
        tls="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
    else
        say "openssl is missing: the cluster runs without TLS"
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB $tls"
    if [ -z "${PGTEST_DURABLE:-}" ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >&2 ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "$bin" >"$dir/bin"
    echo "$opts" >"$dir/opts"
    # Plain connections unless a test asks for TLS (libpq would otherwise prefer it).
    echo "postgres://postgres:postgres@127.0.0.1:$port/postgres?sslmode=disable" >"$dir/url"
    say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
    echo "export TEST_DATABASE_URL=$(cat "$dir/url")"
    [ -n "$tls" ] && echo "export TEST_DATABASE_CA=$dir/server.crt"
    return 0
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Stops the server but keeps its data (an outage); `resume` starts it again on the same port.
halt() {
    as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m fast -w stop >&2
}

resume() {
    as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$(cat "$dir/opts")" -w -t 60 start >&2
}

stop_quietly() {
    if [ -f "$dir/bin" ] && [ -d "$dir/data" ]; then
        local bin
        bin=$(cat "$dir/bin")
        if [ "$(id -u)" = 0 ]; then
            runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        else
            "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    fi
    rm -rf "$dir"
}

case "${1:-start}" in
start) start ;;
stop) stop_quietly ;;
halt) halt ;;
resume) resume ;;
install-client) install ;;
*) say "usage: scripts/pg.sh start|stop|halt|resume|install-client"; exit 2 ;;
esac

#!/usr/bin/env bash
# Schemathesis (property-based API tests, from PyPI) against the live service's OpenAPI document,
# on both job stores.
#
#   scripts/schemathesis.sh                        # memory and postgres (TEST_DATABASE_URL names the server)
#   SCHEMATHESIS_STORES=memory scripts/schemathesis.sh
#   scripts/schemathesis.sh --max-examples 500     # extra arguments go to `st run` (they win)
#
# Needs the debug build (target/debug/scheduler and the example plugins libvps4_backups.so and
# libnoop.so; this script does not build) and python3 with venv; installs a pinned schemathesis
# into target/schemathesis-venv. For each store it starts the service on a free loopback port
# (postgres: in a fresh database on the server TEST_DATABASE_URL names, dropped afterwards),
# creates a few jobs and runs in every registered product/group, and runs `st run` on
# /api/openapi.json. Random product/group/job/run ids would only ever reach 404s, so a generated
# config file makes schemathesis draw them (and the time filters) from the real ones most of the
# time, and the free-text filters from a few awkward strings (NUL, LIKE wildcards, quotes).
# It fails on any 5xx, any status, content type, header or body the document does not allow, a
# schema-invalid request accepted, an undeclared method not answered 405, or a panic in the
# server log. Reports (JUnit, HAR), the config and the server log stay in
# target/schemathesis/<store>/; SCHEMATHESIS_SEED and SCHEMATHESIS_MAX_EXAMPLES change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

st_version=4.32.5
venv=$root/target/schemathesis-venv
stores=${SCHEMATHESIS_STORES:-memory postgres}
seed=${SCHEMATHESIS_SEED:-20261123}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}
# Every check that applies to this API. The service runs as it would in production, with a
# tokens file (schemathesis sends an admin token; ignored_auth checks that requests without it
# or with a wrong one are refused). Left out: positive_data_acceptance (it fails every
# documented 400 for a value the schema allows but the service refuses, such as a cursor it did
# not issue, which no schema can describe) and object_level_authorization (one admin token
# reads everything by design; per-product scopes are tested in tests/tests/it/security.rs).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
checks=$checks,response_schema_conformance,negative_data_rejection,missing_required_header
checks=$checks,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability
checks=$checks,ignored_auth

say() { echo "schemathesis.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for store in $stores; do
    case "$store" in
    memory) ;;
    postgres) [ -n "${TEST_DATABASE_URL:-}" ] ||
        die "TEST_DATABASE_URL is not set: the postgres run needs a server (eval \"\$(scripts/pg.sh start)\" first)" ;;
    *) die "unknown store '$store' in SCHEMATHESIS_STORES (memory, postgres)" ;;
    esac
done
for f in target/debug/scheduler target/debug/libvps4_backups.so target/debug/libnoop.so; do
    [ -e "$f" ] || die "$f is missing: build the workspace first (cargo build --workspace)"
done
# Settings from the caller's environment would change the service under test.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(SCHEDULER_|DATABASE_URL$)' || true)

# --- schemathesis, pinned, in its own venv -------------------------------------------------
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$st_version" ]; then
    say "installing schemathesis $st_version into $venv"
    if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # A machine with only Rust may lack Python or its venv module: Debian's packages.
        say "python3 with venv is missing: installing python3 and python3-venv with apt-get"
        rm -rf "$venv"
        root_do() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
        root_do env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv >&2 ||
            { root_do apt-get update >&2 &&
                root_do env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv >&2; } ||
            die "installing python3-venv failed; install python3 and its venv module yourself"
        python3 -m venv "$venv" || die "python3 -m venv failed after installing python3-venv"
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "schemathesis==$st_version" >&2
fi
st=$venv/bin/st

# --- cleanup of whatever is running or created --------------------------------------------
server_pid=
token=
tmp_dirs=()
db_name=
cleanup() {
    stop_server || true
    drop_database || true
    local d
    for d in "${tmp_dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# TEST_DATABASE_URL with its database replaced by $1.
url_with_database() {
    python3 - "$TEST_DATABASE_URL" "$1" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
EOF
}

create_database() {
    if ! command -v psql >/dev/null 2>&1; then
        say "psql is missing: installing the PostgreSQL client"
        scripts/pg.sh install-client
    fi
    db_name=sched_st_$(date +%s)_$$
    PGCONNECT_TIMEOUT=10 psql "$TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt \
        -c "CREATE DATABASE $db_name" >/dev/null || { db_name=; die "cannot create a database on TEST_DATABASE_URL"; }
}

drop_database() {
    [ -n "$db_name" ] || return 0
    PGCONNECT_TIMEOUT=10 psql "$TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt \
        -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null || say "could not drop database $db_name"
    db_name=
}

# Starts the service for store $1 with its log in $2; sets server_pid and base.
start_server() {
    local store=$1 log=$2 work plugins port deadline
    work=$(mktemp -d)
    tmp_dirs+=("$work")
    plugins=$work/plugins
    # The service refuses plugin directories and files that others may write.
    chmod 0755 "$work"
    mkdir -m 0755 "$plugins"
    cp target/debug/libvps4_backups.so target/debug/libnoop.so "$plugins/"
    chmod 0644 "$plugins"/*.so
    # Declared jobs, so that PUT /api/scheduler (re-apply them) answers 200 and not 409.
    cat >"$work/schedules.toml" <<'TOML'
[[job]]
key = "schemathesis-cron"
product = "vps4"
group = "backups"
cron = "0 0 2 * * *"
timezone = "Europe/Prague"
payload = { vmId = "79bfd10c-1529-42de-bd68-1a6e084ee13d" }

[[job]]
key = "schemathesis-paused"
product = "bench"
group = "noop"
enabled = false
interval = "1h"

[[job]]
key = "schemathesis-no-plugin"
product = "nosuch"
group = "group"
interval = "1h"
TOML
    # An admin token; the file keeps only its hash. No rate limit: the fuzzer is fast.
    local made
    made=$(target/debug/scheduler token new --name schemathesis --scope admin)
    token=$(grep -o 'sch_[0-9a-f]*' <<<"$made" | head -n 1)
    sed -n '/^\[\[token\]\]/,$p' <<<"$made" >"$work/tokens.toml"
    [ -n "$token" ] && [ -s "$work/tokens.toml" ] || die "scheduler token new printed no token"
    port=$(free_port)
    base=http://127.0.0.1:$port
    local args=(--bind "127.0.0.1:$port" --jobstore "$store" --plugins "$plugins" --strict-plugins
        --schedules "$work/schedules.toml" --auth-tokens "$work/tokens.toml" --rate-limit 0
        --node-name "schemathesis-$store" --shutdown-timeout 2s --cancel-grace 1s)
    if [ "$store" = postgres ]; then
        create_database
        args+=(--database-url "$(url_with_database "$db_name")")
    fi
    target/debug/scheduler "${args[@]}" >"$log" 2>&1 &
    server_pid=$!
    deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null --max-time 2 "$base/ready" 2>/dev/null; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            tail -n 30 "$log" >&2
            server_pid=
            die "the $store service exited before it was ready (log: $log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$log" >&2
            die "the $store service was not ready within 60 s (log: $log)"
        fi
        sleep 0.2
    done
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    local pid=$server_pid deadline=$((SECONDS + 20))
    server_pid=
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "the service (pid $pid) ignored SIGTERM for 20 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$pid" 2>/dev/null || true
}

# Creates jobs (and through them runs) in every group the service hosts, then writes the
# schemathesis config to $2 that draws ids and instants from them. $1: the service's URL.
seed_and_configure() {
    ST_TOKEN=$token "$venv/bin/python" - "$1" "$2" <<'EOF'
import datetime, json, os, sys, time, urllib.error, urllib.request

base, config_path = sys.argv[1], sys.argv[2]

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json",
                                          "Authorization": "Bearer " + os.environ["ST_TOKEN"]})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")

status, scheduler = call("GET", "/api/scheduler")
assert status == 200, f"GET /api/scheduler: {status} {scheduler}"
groups = [(g["product"], g["jobGroup"]) for g in scheduler["groups"]]
if not groups:
    sys.exit("the service hosts no product/group: are the plugins loaded?")

# vmId is the payload key vps4/backups needs; the others ignore it.
payload = {"vmId": "79bfd10c-1529-42de-bd68-1a6e084ee13d"}
seeds = [
    {"when": "2030-09-21T23:58:16.797Z"},                      # one time, far ahead (several:
    {"when": "2031-01-01T00:00:00Z", "priority": 10},          #  DELETE takes some away)
    {"when": "2032-06-30T12:00:00+02:00", "overlap": "queue"},
    {"cron": "0 0 5 * * *", "timezone": "Europe/Prague"},      # recurring, for /next
    {"interval": "PT5M", "isPaused": True},                    # paused
    {"when": "2020-01-01T00:00:00Z"},                          # overdue: runs at once
    {"cron": "*/5 * * * *", "now": True, "attempts": 3},       # runs at once, then recurring
]
jobs, failed = [], 0
for product, group in groups:
    for seed in seeds:
        status, body = call("POST", f"/api/scheduler/{product}/{group}/jobs", {**payload, **seed})
        if status in (200, 201):
            jobs.append(body["id"])
        else:
            failed += 1
            print(f"schemathesis.sh: seeding {product}/{group} with {seed}: {status} {body}", file=sys.stderr)
if not jobs:
    sys.exit("no job could be created in any group")

# Wait (bounded) for the overdue jobs' runs.
runs, deadline = [], time.monotonic() + 20
while time.monotonic() < deadline:
    status, body = call("GET", "/api/runs?limit=1000")
    runs = [r["id"] for r in body] if status == 200 else []
    if len(runs) >= len(groups):
        break
    time.sleep(0.2)
print(f"schemathesis.sh: seeded {len(jobs)} jobs ({failed} refused) and {len(runs)} runs "
      f"in {', '.join(p + '/' + g for p, g in groups)}", file=sys.stderr)

now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
instants = ["2020-01-01T00:00:00Z", (now - datetime.timedelta(hours=1)).isoformat(),
            now.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "2027-03-28T01:30:00+01:00", "2030-09-21T23:58:16.797Z"]

def toml_list(values):
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"

def binding(name, dictionary, probability):
    return f'{json.dumps(name)} = {{ dictionary = "{dictionary}", probability = {probability} }}'

# Strings that stores and databases have trouble with, for the free-text filters.
awkward = ["\u0000", "a\u0000b", "%", "_", "'", "\\", "\U0001F600", "x" * 201]
dictionaries = {
    "products": sorted({p for p, _ in groups}),
    "groups": sorted({g for _, g in groups}),
    "product_filters": sorted({p for p, _ in groups}) + awkward,
    "group_filters": sorted({g for _, g in groups}) + awkward,
    "nodes": [scheduler["node"]] + awkward,
    "awkward": awkward,
    "jobs": jobs,
    "runs": runs,
    "instants": instants,
    "outcomes": ["succeeded", "failed,vetoed", "running,succeeded,skipped"],
}
lines = ["# Written by scripts/schemathesis.sh for one run: values the service knows."]
for name, values in dictionaries.items():
    if values:
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}"]
lines.append("[parameters]")
# `path.x` and `query.x` bind one location; a bare name binds both (e.g. GET /api/runs?jobId=).
for name, dictionary, probability in [
    ("path.product", "products", 0.8), ("path.jobGroup", "groups", 0.8),
    ("query.product", "product_filters", 0.6), ("query.jobGroup", "group_filters", 0.6),
    ("node", "nodes", 0.5), ("who", "awkward", 0.3),
    ("jobId", "jobs", 0.8), ("runId", "runs", 0.8), ("outcome", "outcomes", 0.5),
    ("since", "instants", 0.5), ("from", "instants", 0.5), ("to", "instants", 0.5),
    ("scheduledFrom", "instants", 0.5), ("scheduledTo", "instants", 0.5),
    ("startedFrom", "instants", 0.5), ("startedTo", "instants", 0.5),
]:
    if dictionaries[dictionary]:
        lines.append(binding(name, dictionary, probability))
# `after` is an instant here, and an opaque cursor elsewhere.
lines += ["[[operations]]",
          'include-name = "GET /api/scheduler/{product}/{jobGroup}/jobs/{jobId}/next"',
          "parameters = { " + binding("after", "instants", 0.5) + " }"]
with open(config_path, "w") as f:
    f.write("\n".join(lines) + "\n")
EOF
}

# --- one run per store ---------------------------------------------------------------------
failed_stores=()
for store in $stores; do
    out=$root/target/schemathesis/$store
    rm -rf "$out"
    mkdir -p "$out"
    started=$SECONDS
    say "== $store: starting the service"
    start_server "$store" "$out/server.log"
    seed_and_configure "$base" "$out/schemathesis.toml"
    say "== $store: st run $base/api/openapi.json (seed $seed, at most $max_examples examples per operation)"
    rc=0
    # In $out, where schemathesis leaves its working files.
    (cd "$out" && timeout --kill-after=10 900 "$st" --config-file "$out/schemathesis.toml" \
        run "$base/api/openapi.json" --url "$base" --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --max-examples "$max_examples" --seed "$seed" --generation-database none \
        --continue-on-failure --workers 2 --request-timeout 10 \
        --report junit,har --report-dir "$out" --no-color \
        "$@") || rc=$?
    if ! kill -0 "$server_pid" 2>/dev/null; then
        say "$store: the service died during the run (log: $out/server.log)"
        rc=1
    fi
    stop_server
    drop_database
    if grep -n -m 5 'panicked at' "$out/server.log" >&2; then
        say "$store: the service panicked (above; log: $out/server.log)"
        rc=1
    fi
    say "== $store: $([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - started)) s; reports in $out"
    [ "$rc" = 0 ] || failed_stores+=("$store")
done

if [ "${#failed_stores[@]}" -gt 0 ]; then
    die "failed on: ${failed_stores[*]}"
fi
say "passed on: $stores"

#!/usr/bin/env bash
# Schemathesis against a real server: every check (`--checks all`, positive data acceptance and
# negative data rejection included), with a valid token of a client that holds every scope and a
# quota the run never reaches, so what is found is the document and the server disagreeing —
# never the rate limit.
#
# Usage: scripts/schemathesis.sh                          (what CI runs: .ci/run)
#        MAX_EXAMPLES=100 scripts/schemathesis.sh         (a longer local run)
#
# Environment:
#   MAX_EXAMPLES   cases per operation and phase                                   (default 15)
#   TIME_LIMIT     seconds the whole schemathesis run may take before it fails     (default 150)
#   PROFILE        cargo profile of the server: dev or release                     (default dev)
#   SEED           hypothesis seed, to replay a run                                (default random)
#   KEEP_OUTPUT=1  keep the server log, the token and the reports (their directory is printed)
#
# Needs: cargo, curl, python3 with schemathesis 4.32.5 (`python3 -m pip install
# schemathesis==4.32.5`; .ci/run installs it when missing).
#
# What it does: builds `l2c-server`, creates a client with every scope on a fresh SQLite
# database (`l2c-server client create --json`), starts the server on a free loopback port with
# that database, gets a token from `POST /api/oauth/token`, and runs `schemathesis run` on the
# served `/api/openapi.json`. Exits non-zero on any finding, or when the run is over TIME_LIMIT.
# scripts/schemathesis.toml holds the authentication and the few per-operation expectations (with
# the reason for each); the schemathesis hook file `scripts/schemathesis_hooks.py` gives every generated write a fresh
# idempotency key (see there why).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES=${MAX_EXAMPLES:-15}
TIME_LIMIT=${TIME_LIMIT:-150}
PROFILE=${PROFILE:-dev}

die() { echo "schemathesis: $*" >&2; exit 1; }

command -v schemathesis >/dev/null 2>&1 || python3 -c 'import schemathesis' 2>/dev/null \
    || die "schemathesis is not installed (python3 -m pip install schemathesis==4.32.5)"

out=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [[ ${KEEP_OUTPUT:-0} == 1 ]]; then echo "schemathesis: output kept in $out" >&2; else rm -rf "$out"; fi
}
trap cleanup EXIT

profile_flag=()
[[ $PROFILE == release ]] && profile_flag=(--release)
cargo build -q -p l2c-server "${profile_flag[@]}"
server="target/$([[ $PROFILE == release ]] && echo release || echo debug)/l2c-server"

db_url="sqlite://$out/l2c.db?mode=rwc"
json=$("$server" client create --name schemathesis --rate-limit '100000/s' --json \
    --database-url "$db_url") || die "client create failed"
client_id=$(sed -E 's/.*"client_id":"([^"]+)".*/\1/' <<<"$json")
client_secret=$(sed -E 's/.*"client_secret":"([^"]+)".*/\1/' <<<"$json")

"$server" serve --listen 127.0.0.1:0 --metrics-listen off --no-demo-client \
    --database-url "$db_url" >"$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    grep -q 'l2c-server listening' "$out/server.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
line=$(grep -m1 'l2c-server listening' "$out/server.log") \
    || die "the server did not start: $(tail -n 20 "$out/server.log")"
addr=$(sed -E 's/.*address=([^ ]+).*/\1/' <<<"$line")
base="http://$addr"

token=$(curl -fsS "$base/api/oauth/token" -H 'content-type: application/json' \
    -d "{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\",\"grant_type\":\"client_credentials\"}" \
    | sed -E 's/.*"access_token":"([^"]+)".*/\1/') || die "no token"

seed=()
[[ -n ${SEED:-} ]] && seed=(--seed "$SEED")
status=0
L2C_SCHEMATHESIS_TOKEN=$token SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=scripts \
    timeout "$TIME_LIMIT" schemathesis --config-file scripts/schemathesis.toml \
    run "$base/api/openapi.json" \
    --url "$base" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit --report-dir "$out/report" \
    "${seed[@]}" || status=$?
if ((status == 124)); then
    echo "schemathesis: the run took more than ${TIME_LIMIT}s" >&2
fi
if ! kill -0 "$pid" 2>/dev/null; then
    echo "schemathesis: the server exited during the run: $(tail -n 20 "$out/server.log")" >&2
    status=1
fi
if ((status != 0)); then
    grep -E ' (ERROR|WARN) ' "$out/server.log" | tail -n 10 | sed 's/^/schemathesis: server: /' >&2 || true
fi
exit "$status"

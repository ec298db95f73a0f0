#!/usr/bin/env bash
# Soak: three l2c-server replicas on one PostgreSQL database and one Redis, a bounded mixed load
# with webhook receivers attached, and one line of result. See l2c-bench/src/bin/soak.rs.
#
# Usage: scripts/soak.sh                       (60 s of load, release build)
#        DURATION=10 PROFILE=dev scripts/soak.sh   (what CI runs: .ci/run)
#
# Environment:
#   DURATION       seconds of load                                                (default 60)
#   WARMUP         seconds after the start when RSS is first sampled   (default DURATION/6, >= 1)
#   WORKERS        concurrent loops of mixed load in the driver                    (default 4)
#   REPLICAS       l2c-server processes                                            (default 3)
#   QUOTA          quota of the small-quota client, driven at 3x its rate across every replica
#                  (default `600/min;burst=20`: a burst of 20, then one request per 100 ms)
#   DRAIN_TIMEOUT  longest wait, in seconds, for webhook deliveries after the load  (default 120)
#   PROFILE        cargo profile of the server and the driver: release or dev      (default release);
#                  dev builds them with the workspace's tests selected, so right after
#                  `cargo test --workspace` (CI) only the driver is compiled
#   PG_URL         PostgreSQL server, without a database (default postgres://postgres@127.0.0.1:5432);
#                  a fresh database l2c_soak_<random> is created on it and dropped at the end
#   REDIS_URL      Redis (default redis://127.0.0.1:6379); keys go under a random prefix
#                  `l2c-soak-<random>:`, deleted at the end
#   KEEP_OUTPUT=1  keep the replicas' logs (their directory is printed)
#
# Needs: cargo, psql (to create and drop the database), and a PostgreSQL and a Redis reachable at
# PG_URL and REDIS_URL; redis-cli, when present, removes the run's keys at the end.
#
# What it does: builds `l2c-server` and the driver `l2c-soak` (l2c-bench), creates the database,
# registers two clients with `l2c-server client create` (the main one with a quota the load never
# reaches, the other with QUOTA), starts REPLICAS servers on 127.0.0.1 free ports sharing the
# database, the Redis prefix and the JWT secret, and runs the driver against them. The driver
# prints one line on stdout,
#   soak: requests=… 5xx=0 quota_exact=yes events=N/N duplicates_executed=0 rss_growth_mib=…
# (what each field means: l2c-bench/README.md#soak), its progress on stderr, and exits non-zero
# when a response was 5xx, an event is missing, a duplicate was executed or the quota was not
# exact; this script exits with its status. It also fails when a replica exits early.
set -euo pipefail

DURATION=${DURATION:-60}
WORKERS=${WORKERS:-4}
REPLICAS=${REPLICAS:-3}
QUOTA=${QUOTA:-600/min;burst=20}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
PROFILE=${PROFILE:-release}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

die() { echo "soak: $*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_uint "$DURATION" || die "DURATION must be a positive integer (seconds)"
WARMUP=${WARMUP:-$(((DURATION / 6) > 0 ? DURATION / 6 : 1))}
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer (seconds)"
is_uint "$WORKERS" || die "WORKERS must be a positive integer"
is_uint "$REPLICAS" || die "REPLICAS must be a positive integer"
((REPLICAS >= 2)) || die "REPLICAS must be at least 2 (retries go to another replica)"
is_uint "$DRAIN_TIMEOUT" || die "DRAIN_TIMEOUT must be a positive integer (seconds)"
case $PROFILE in
    release) profile_dir=release ;;
    dev) profile_dir=debug ;;
    *) die "PROFILE must be release or dev" ;;
esac
PG_URL=${PG_URL%/}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# --- tools -----------------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found"
command -v psql >/dev/null || die "psql not found (apt-get install -y postgresql-client)"
psql "$PG_URL/postgres" -qAtc 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL not reachable at $PG_URL"

# --- build -----------------------------------------------------------------------------------
echo "soak: building l2c-server and l2c-soak ($PROFILE)..." >&2
if [[ $PROFILE == dev ]]; then
    # The dev profile is CI's, run right after `cargo test --workspace`: building the binaries
    # with the workspace's tests selected resolves the same features as that run, so only
    # l2c-bench is compiled; `-p l2c-server -p l2c-bench` alone would resolve other features
    # (no dev-dependencies) and rebuild nearly every crate.
    cargo build --quiet --profile dev --workspace --bins --tests
else
    cargo build --quiet --profile "$PROFILE" -p l2c-server -p l2c-bench --bin l2c-server --bin l2c-soak
fi
bin_dir="${CARGO_TARGET_DIR:-$root/target}/$profile_dir"
server="$bin_dir/l2c-server"
driver="$bin_dir/l2c-soak"
[[ -x $server && -x $driver ]] || die "binaries not found in $bin_dir"

# --- database, Redis prefix, cleanup ----------------------------------------------------------
run_id=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
db_name="l2c_soak_$run_id"
prefix="l2c-soak-$run_id:"
db_url="$PG_URL/$db_name"
jwt_secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
out=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
pids=()
db_created=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if ((db_created)); then
        psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 \
            || echo "soak: could not drop database $db_name" >&2
    fi
    if command -v redis-cli >/dev/null; then
        redis-cli -u "$REDIS_URL" --scan --pattern "$prefix*" 2>/dev/null \
            | xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
    fi
    if [[ ${KEEP_OUTPUT:-0} == 1 ]]; then echo "soak: replica logs kept in $out" >&2; else rm -rf "$out"; fi
}
trap cleanup EXIT

psql "$PG_URL/postgres" -qc "CREATE DATABASE $db_name" >/dev/null || die "could not create database $db_name"
db_created=1

# --- clients (this also runs the migrations, before any replica starts) ------------------------
create_client() { # name rate-limit -> ID:SECRET
    local json
    json=$("$server" client create --name "$1" --rate-limit "$2" --json --database-url "$db_url") \
        || die "client create $1 failed"
    sed -E 's/.*"client_id":"([^"]+)".*"client_secret":"([^"]+)".*/\1:\2/' <<<"$json"
}
main_client=$(create_client soak-main '100000/s')
quota_client=$(create_client soak-quota "$QUOTA")

# --- replicas ----------------------------------------------------------------------------------
replica_args=()
for ((i = 0; i < REPLICAS; i++)); do
    "$server" serve --listen 127.0.0.1:0 --metrics-listen off --no-demo-client \
        --allow-private-webhooks --database-url "$db_url" --redis-url "$REDIS_URL" \
        --redis-prefix "$prefix" --jwt-secret "$jwt_secret" \
        >"$out/replica$i.log" 2>&1 &
    pids+=($!)
done
for ((i = 0; i < REPLICAS; i++)); do
    for _ in $(seq 300); do
        grep -q 'l2c-server listening' "$out/replica$i.log" && break
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    line=$(grep -m1 'l2c-server listening' "$out/replica$i.log") \
        || die "replica $i did not start: $(tail -n 20 "$out/replica$i.log")"
    addr=$(sed -E 's/.*address=([^ ]+).*/\1/' <<<"$line")
    replica_args+=(--replica "$addr@${pids[$i]}")
    echo "soak: replica $i listening on $addr (pid ${pids[$i]})" >&2
done

# --- load --------------------------------------------------------------------------------------
status=0
"$driver" "${replica_args[@]}" --client "$main_client" --quota-client "$quota_client" \
    --quota "$QUOTA" --duration "$DURATION" --warmup "$WARMUP" --workers "$WORKERS" \
    --drain-timeout "$DRAIN_TIMEOUT" --run-id "$run_id" || status=$?
for ((i = 0; i < REPLICAS; i++)); do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "soak: replica $i exited during the run: $(tail -n 20 "$out/replica$i.log")" >&2
        status=1
    fi
done
if ((status != 0)) && [[ ${KEEP_OUTPUT:-0} != 1 ]]; then
    for ((i = 0; i < REPLICAS; i++)); do
        grep -E ' (ERROR|WARN) ' "$out/replica$i.log" | tail -n 5 | sed "s/^/soak: replica $i: /" >&2 || true
    done
fi
exit "$status"

#!/usr/bin/env bash
# Real-work benchmark: order sync and lead intake through the whole l2c-server (auth, rate limit,
# idempotency, validation, store, outbox) against bare axum handlers running the server's own
# SQL statements (l2c-bench/src/bin/work.rs), on SQLite and PostgreSQL; the CSV export against
# `psql -c "COPY (SELECT <the same columns>) TO STDOUT WITH CSV"` on the same data; and with
# GROWTH=1 the same measurements with 10k and 1M orders (and 100k leads) seeded with SQL.
#
# Usage: scripts/bench-work.sh                 (defaults: ~4 min + build)
#        QUICK=1 scripts/bench-work.sh         (~1 min smoke run: 1 round of 2 s)
#        GROWTH=1 scripts/bench-work.sh        (adds the 10k / 1M growth runs, ~+10 min)
#
# Environment:
#   ROUNDS       rounds; every round runs every work on both sides, interleaved   (default 3)
#   DURATION     seconds of load per work per side per round                      (default 5)
#   WARMUP       seconds of unmeasured load per work per side first               (default 1)
#   CONNECTIONS  wrk connections (default 16); wrk runs one thread (-t1)
#   WORKS        works to run (default "order-new order-update lead-intake")
#   DBS          databases (default "sqlite postgres"; postgres is skipped when unreachable)
#   PG_URL       PostgreSQL server for the benchmark's own databases, created and dropped here
#                (default postgres://postgres@127.0.0.1:5432)
#   EXPORT_ROWS  orders seeded for the export measurement (default 200000; 0 skips it)
#   GROWTH=1     also seed 10k, then 1M orders (+100k leads) and measure again
#   DISPATCH_EVENTS  events per webhook-dispatch throughput round (default 5000; 0 skips the
#                webhook measurements)
#   DISPATCH_RATE / DISPATCH_SECONDS  order syncs per second and seconds of the webhook
#                commit-to-receipt latency run (default 200 / 10)
#   SERVER_CPU / CLIENT_CPU   cores for the server (and the baseline) / wrk (default 0 / 1)
#   KEEP_OUTPUT=1  keep the raw outputs (the directory is printed)
#
# Needs: cargo, taskset, curl, wrk (installed with apt-get when missing and running as root),
# python3 (free ports), sqlite3 and psql (seeding, the COPY baseline).
#
# Each measured line:
#   work=order-new db=sqlite ratio=0.86 rps=2140 p50_ms=6.1 p99_ms=9.1 base_rps=2480 base_p99_ms=8.0
#     round_ratios=0.81/0.86/0.90 (each round's ratio, sorted: how far the machine moved them)
#   work=dispatch db=postgres replicas=1 ratio=0.8 events_per_s=… base_events_per_s=…
#     recorded_ratio=… base_recorded_events_per_s=… (l2c-hooks: the server's dispatchers
#     draining an outbox filled with its own statement, against a bare loop signing and POSTing
#     the same bodies with reqwest at the dispatcher's concurrency; recorded_ratio against that
#     loop claiming its bodies from an outbox and recording each attempt with the server's own
#     store calls: the limit of durable delivery, where the bare loop keeps no record)
#   growth work=order-new db=sqlite data=1000000 p99_x=1.05 base_p99_x=1.02 (GROWTH=1: p99 with
#     that many rows seeded over p99 on the empty tables, server and baseline; both runs also
#     see what the earlier runs inserted through the API)
#   work=dispatch-latency db=postgres replicas=2 rate=200 p50_ms=… p99_ms=… (send of the order
#     sync to receipt of its ORDER_CREATED, at a steady rate, syncs spread over the replicas)
# ratio = the median over rounds of (server req/s / baseline req/s) of the same round.
set -euo pipefail

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-2}; EXPORT_ROWS=${EXPORT_ROWS:-20000}
    DISPATCH_EVENTS=${DISPATCH_EVENTS:-1000}; DISPATCH_SECONDS=${DISPATCH_SECONDS:-3}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-16}
WORKS=${WORKS:-order-new order-update lead-intake}
DBS=${DBS:-sqlite postgres}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
EXPORT_ROWS=${EXPORT_ROWS:-200000}
GROWTH=${GROWTH:-0}
DISPATCH_EVENTS=${DISPATCH_EVENTS:-5000}
DISPATCH_RATE=${DISPATCH_RATE:-200}
DISPATCH_SECONDS=${DISPATCH_SECONDS:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

die() { echo "bench-work: $*" >&2; exit 1; }
say() { echo "bench-work: $*" >&2; }
is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_uint "$ROUNDS" || die "ROUNDS must be a positive integer"
is_uint "$DURATION" || die "DURATION must be a positive integer (seconds)"
is_uint "$CONNECTIONS" || die "CONNECTIONS must be a positive integer"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer"
[[ $EXPORT_ROWS =~ ^[0-9]+$ ]] || die "EXPORT_ROWS must be a non-negative integer"
[[ $DISPATCH_EVENTS =~ ^[0-9]+$ ]] || die "DISPATCH_EVENTS must be a non-negative integer"
is_uint "$DISPATCH_RATE" || die "DISPATCH_RATE must be a positive integer"
is_uint "$DISPATCH_SECONDS" || die "DISPATCH_SECONDS must be a positive integer"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

for tool in cargo curl taskset python3; do command -v $tool >/dev/null || die "$tool not found"; done
if ! command -v wrk >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "wrk not found; installing it with apt-get (running as root)"
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
            || die "could not install wrk"
    else
        die "wrk not found: install it with 'sudo apt-get install -y wrk' (Debian/Ubuntu)"
    fi
fi
ncpu=$(nproc)
((ncpu >= 2 && SERVER_CPU != CLIENT_CPU)) || die "need two distinct cores (nproc=$ncpu)"

say "building l2c-server, l2c-work and l2c-hooks (release)..."
cargo build --release --quiet -p l2c-server -p l2c-bench --bin l2c-server --bin l2c-work --bin l2c-hooks
tdir="${CARGO_TARGET_DIR:-$root/target}/release"
server_bin=$tdir/l2c-server
work_bin=$tdir/l2c-work
hooks_bin=$tdir/l2c-hooks

out=$(mktemp -d "${TMPDIR:-/tmp}/bench-work.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # new_db runs in a command substitution (a subshell), so it lists its databases in a file.
    if [[ -f $out/pg_dbs ]]; then
        while read -r d; do
            psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
        done <"$out/pg_dbs"
    fi
    if [[ ${KEEP_OUTPUT:-0} == 1 ]]; then say "raw output kept in $out"; else rm -rf "$out"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port pid name
    for _ in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    die "$3 did not start: $(tail -5 "$out/$3.log" 2>/dev/null)"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The values on stdin, sorted, as `0.79/0.84/0.91`: the per-round ratios behind a median.
spread() { tr ' ' '\n' | grep . | sort -g | awk '{printf "%s%.2f", (NR > 1 ? "/" : ""), $1} END {if (NR == 0) printf "nan"}'; }
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) }
    else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; printf "%.2f", v }'; }

JWT_SECRET=bench-work-jwt-secret-bench-work-jwt-secret

# --- wrk scripts: unique orders / updates with a payment / unique leads -----------------------
lua() { # work outfile [authorization]
    local seed=$RANDOM$RANDOM
    cat >"$2" <<EOF
counter = 0
math.randomseed($seed)
local run = "$seed" .. math.random(1, 1000000)
local base = os.time() * 100000
local headers = { ["Content-Type"] = "application/json" }
if "${3:-}" ~= "" then headers["Authorization"] = "${3:-}" end
local shown = false
response = function(status, hdrs, body)
  if status >= 300 and not shown then
    shown = true
    io.write("first-failure: ", status, " ", string.sub(body or "", 1, 300), "\n")
  end
end
local work = "$1"
request = function()
  counter = counter + 1
  headers["X-Request-Id"] = "r" .. run .. "-" .. counter
  local body
  if work == "lead-intake" then
    body = string.format('{"source":"DOUYIN","externalLeadId":"l%s-%d","name":"张三","mobile":"138%08d","province":"浙江省","city":"杭州市","intent":"全屋定制","formFields":[{"label":"面积","value":"120"}],"submittedAt":"2026-11-20T10:15:00+08:00"}', run, counter, (tonumber(run) + counter) % 100000000)
    return wrk.format("POST", "/api/mobile/leads/hook", headers, body)
  end
  local no, mobile, version
  if work == "order-new" then
    no = string.format("n%s-%d", run, counter)
    mobile = string.format("139%08d", (tonumber(run) + counter) % 100000000)
    version = 1
  else
    local k = counter % 256
    no = string.format("u-%d", k)
    mobile = string.format("137%08d", k)
    version = base + counter
  end
  body = string.format('{"externalOrderNo":"%s","status":"DEPOSIT_PAID","paymentStatus":"DEPOSIT_PAID","amounts":{"total":3980000,"deposit":500000,"paid":500000,"currency":"CNY"},"items":[{"name":"主卧衣柜","quantity":1,"unitPrice":3980000}],"customer":{"name":"王五","mobile":"%s"},"version":%d,"payments":[{"kind":"DEPOSIT","method":"WECHAT_PAY","amount":500000,"channelTransactionId":"t%s-%d","paidAt":"2026-11-20T10:15:00+08:00"}]}', no, mobile, version, run, counter)
  return wrk.format("POST", "/api/mobile/orders/sync", headers, body)
end
EOF
}

# --- databases ------------------------------------------------------------------------------------
pg_ok=0
if psql -q "$PG_URL/postgres" -c 'SELECT 1' >/dev/null 2>&1; then pg_ok=1; fi
new_db() { # db name -> url
    if [[ $1 == sqlite ]]; then
        echo "sqlite://$out/$2.db?mode=rwc"
    else
        local d="l2c_bench_${2//-/_}_$$"
        psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null
        echo "$d" >>"$out/pg_dbs"
        echo "$PG_URL/$d"
    fi
}
sql() { # db url  (SQL on stdin)
    if [[ $1 == sqlite ]]; then
        local f=${2#sqlite://}; sqlite3 "${f%%\?*}"
    else
        psql -q -v ON_ERROR_STOP=1 "$2" >/dev/null
    fi
}

# Seeds orders (one customer per ten, one payment and one history row each) and leads for a
# client with SQL (generate_series / a recursive CTE), continuing from what this script seeded
# into that database before, up to $4 orders and $5 leads.
declare -A SEEDED LSEEDED
seed() { # db url client orders leads
    local db=$1 url=$2 c=$3 to=$4 lto=$5
    local from=$((${SEEDED[$url]:-0} + 1)) lfrom=$((${LSEEDED[$url]:-0} + 1))
    local now=1764000000000 cf=$(((${SEEDED[$url]:-0}) / 10 + 1)) ct=$((to / 10))
    series() {
        if [[ $db == sqlite ]]; then echo "WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i < $2)"
        else echo "WITH s(i) AS (SELECT generate_series($1, $2))"; fi
    }
    {
        [[ $db == sqlite ]] && echo ".timeout 10000"
        echo "BEGIN;"
        if ((ct >= cf)); then
            echo "$(series "$cf" "$ct") INSERT INTO customers (id, mobile_e164, mobile_index, name, created_at) SELECT 'cus_seed' || i, '+86150' || i, '+86150' || i, '种子', $now FROM s;"
            echo "$(series "$cf" "$ct") INSERT INTO client_customers (client_id, customer_id, linked_at, name) SELECT '$c', 'cus_seed' || i, $now, '种子' FROM s;"
        fi
        if ((to >= from)); then
            echo "$(series "$from" "$to") INSERT INTO orders (id, client_id, external_order_no, customer_id, status, payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, version, created_at, updated_at) SELECT 'ord_seed' || i, '$c', 'seed-' || i, 'cus_seed' || ((i + 9) / 10), 'DEPOSIT_PAID', 'DEPOSIT_PAID', 3980000, 500000, 500000, 'CNY', '[]', '[]', 1, $now + i, $now + i FROM s;"
            echo "$(series "$from" "$to") INSERT INTO order_history (order_id, version, status, payment_status, changed_at) SELECT 'ord_seed' || i, 1, 'DEPOSIT_PAID', 'DEPOSIT_PAID', $now + i FROM s;"
            echo "$(series "$from" "$to") INSERT INTO payments (id, client_id, order_id, kind, method, amount_fen, channel_transaction_id, paid_at, recorded_at) SELECT 'pay_seed' || i, '$c', 'ord_seed' || i, 'DEPOSIT', 'WECHAT_PAY', 500000, 'seed-' || i, '2026-11-20T10:15:00+08:00', $now + i FROM s;"
        fi
        if ((lto >= lfrom && ct > 0)); then
            echo "$(series "$lfrom" "$lto") INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, mobile_e164, form_fields, submitted_at, raw_payload, created_at) SELECT 'lead_seed' || i, '$c', 'DOUYIN', 'seed-' || i, 'cus_seed' || (1 + i % $ct), '种子', '+86150' || (1 + i % $ct), '[]', '2026-11-20T10:15:00+08:00', '{}', $now + i FROM s;"
        fi
        echo "COMMIT;"
        # What the seeding left for later is done now, not inside the next measurement: SQLite's
        # WAL (a gigabyte at 1M orders) checkpointed into the database by whichever side
        # committed first; on PostgreSQL the vacuum that a million inserted rows trigger
        # (autovacuum's insert threshold, on whichever side it lands, mid-run), the statistics,
        # and the dirty pages written out.
        if [[ $db == postgres ]]; then echo "VACUUM (ANALYZE);"; echo "CHECKPOINT;"; else echo ".output /dev/null"; echo "PRAGMA wal_checkpoint(TRUNCATE);"; fi
        true
    } | sql "$db" "$url"
    ((to > ${SEEDED[$url]:-0})) && SEEDED[$url]=$to
    ((lto > ${LSEEDED[$url]:-0})) && LSEEDED[$url]=$lto
    true
}

# --- one database: server + baseline, works interleaved over rounds ------------------------------
declare -A S_URL B_URL S_PORT B_PORT S_PID TOKEN S_CLIENT B_CLIENT
start_pair() { # db
    local db=$1
    S_URL[$db]=$(new_db "$db" server)
    B_URL[$db]=$(new_db "$db" base)
    local created
    created=$("$server_bin" client create --database-url "${S_URL[$db]}" --name bench --json)
    S_CLIENT[$db]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$created")
    local secret
    secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$created")
    B_CLIENT[$db]=$("$server_bin" client create --database-url "${B_URL[$db]}" --name bench --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
    S_PORT[$db]=$(free_port)
    TOKIO_WORKER_THREADS=1 taskset -c "$SERVER_CPU" "$server_bin" --listen "127.0.0.1:${S_PORT[$db]}" \
        --database-url "${S_URL[$db]}" --jwt-secret "$JWT_SECRET" --rate-limit 1000000/s \
        --no-demo-client --metrics-listen off --log-format json >"$out/server-$db.log" 2>&1 &
    S_PID[$db]=$!; pids+=($!)
    B_PORT[$db]=$(free_port)
    taskset -c "$SERVER_CPU" "$work_bin" --listen "127.0.0.1:${B_PORT[$db]}" --workers 1 \
        --database-url "${B_URL[$db]}" --client-id "${B_CLIENT[$db]}" >"$out/base-$db.log" 2>&1 &
    pids+=($!)
    wait_port "${S_PORT[$db]}" "${S_PID[$db]}" "server-$db"
    wait_port "${B_PORT[$db]}" "$!" "base-$db"
    TOKEN[$db]=$(curl -sf -H 'Content-Type: application/json' \
        -d "{\"client_id\":\"${S_CLIENT[$db]}\",\"client_secret\":\"$secret\",\"grant_type\":\"client_credentials\"}" \
        "http://127.0.0.1:${S_PORT[$db]}/api/oauth/token" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || die "no token from server-$db"
}

run_wrk() { # db side work seconds outfile
    local port auth=""
    if [[ $2 == server ]]; then port=${S_PORT[$1]}; auth="Bearer ${TOKEN[$1]}"; else port=${B_PORT[$1]}; fi
    lua "$3" "$out/$3.lua" "$auth"
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$4s" --latency -s "$out/$3.lua" \
        "http://127.0.0.1:$port/" >"$5" 2>&1 || die "wrk failed: $(cat "$5")"
}

failures=()
lines=()
declare -A RPS P50 P99 BRPS BP99 RATIOS
# Median p99 of each db/data/work on both sides, for the growth lines.
declare -A P99_AT BP99_AT
measure() { # db label rounds
    local db=$1 label=$2 rounds=$3 r w side f
    read -r -a works <<<"$WORKS"
    for w in "${works[@]}"; do RPS[$w]=""; P50[$w]=""; P99[$w]=""; BRPS[$w]=""; BP99[$w]=""; RATIOS[$w]=""; done
    for ((r = 0; r < rounds; r++)); do
        for w in "${works[@]}"; do
            declare -A got=()
            for side in server base; do
                # Alternate which side goes first, round by round.
                if ((r % 2)); then [[ $side == server ]] && side=base || side=server; fi
                f="$out/$db-$label-$w-$side-$r"
                run_wrk "$db" "$side" "$w" "$DURATION" "$f"
                local rps p50 p99 reqs non2xx
                rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
                reqs=$(awk '/requests in/ {print $1}' "$f")
                p50=$(awk '$1 == "50%" {print $2}' "$f" | to_ms)
                p99=$(awk '$1 == "99%" {print $2}' "$f" | to_ms)
                non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f"); non2xx=${non2xx:-0}
                ((non2xx == 0)) || failures+=("$db $label $w $side round $((r + 1)): $non2xx of $reqs not 2xx; $(grep -m1 '^first-failure' "$f")")
                grep -q 'Socket errors' "$f" && failures+=("$db $label $w $side: $(grep 'Socket errors' "$f" | sed 's/^ *//')")
                got[$side]=$rps
                if [[ $side == server ]]; then RPS[$w]+="$rps "; P50[$w]+="$p50 "; P99[$w]+="$p99 ";
                else BRPS[$w]+="$rps "; BP99[$w]+="$p99 "; fi
                printf 'round %d/%d %-8s %-7s %-13s %-6s %8.0f req/s  p50 %7s ms  p99 %7s ms  non-2xx %s\n' \
                    $((r + 1)) "$rounds" "$db" "$label" "$w" "$side" "$rps" "$p50" "$p99" "$non2xx" >&2
            done
            RATIOS[$w]+="$(awk -v a="${got[server]}" -v b="${got[base]}" 'BEGIN {print a / b}') "
        done
    done
    for w in "${works[@]}"; do
        P99_AT[$db/$label/$w]=$(median <<<"${P99[$w]}" || true)
        BP99_AT[$db/$label/$w]=$(median <<<"${BP99[$w]}" || true)
        lines+=("$(printf 'work=%s db=%s data=%s ratio=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f base_rps=%.0f base_p99_ms=%.2f round_ratios=%s' \
            "$w" "$db" "$label" "$(median <<<"${RATIOS[$w]}")" "$(median <<<"${RPS[$w]}")" \
            "$(median <<<"${P50[$w]}")" "${P99_AT[$db/$label/$w]}" "$(median <<<"${BRPS[$w]}")" \
            "${BP99_AT[$db/$label/$w]}" "$(spread <<<"${RATIOS[$w]}")")")
        echo "${lines[-1]}" >&2
    done
}

# How each work's p99 grew from the run on the empty tables to the run with $2 seeded rows (on
# top of what the earlier runs inserted themselves), on the server and, as a yardstick for what
# the same SQL on bigger tables (and the machine's drift between the two runs) costs by itself,
# on the baseline.
growth() { # db size
    local w
    for w in $WORKS; do
        lines+=("$(awk -v db="$1" -v n="$2" -v w="$w" -v s0="${P99_AT[$1/empty/$w]}" -v s1="${P99_AT[$1/$2/$w]}" \
            -v b0="${BP99_AT[$1/empty/$w]}" -v b1="${BP99_AT[$1/$2/$w]}" 'BEGIN {
            x = s0 > 0 ? sprintf("%.2f", s1 / s0) : "nan"; bx = b0 > 0 ? sprintf("%.2f", b1 / b0) : "nan"
            printf "growth work=%s db=%s data=%s p99_x=%s base_p99_x=%s", w, db, n, x, bx }')")
        echo "${lines[-1]}" >&2
    done
}

warm() { # db
    local w
    if ((WARMUP > 0)); then
        for w in $WORKS; do
            run_wrk "$1" server "$w" "$WARMUP" "$out/warm-s"
            run_wrk "$1" base "$w" "$WARMUP" "$out/warm-b"
        done
    fi
}

rss_kib() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }

export_bench() { # db rows label
    local db=$1 rows=$2 label=$3 have r list_s="" list_b="" ratios="" rss0 hwm
    if ((${SEEDED[${S_URL[$db]}]:-0} < rows)); then
        local t0=$SECONDS
        seed "$db" "${S_URL[$db]}" "${S_CLIENT[$db]}" "$rows" "${LSEEDED[${S_URL[$db]}]:-0}"
        say "export: seeded up to $rows orders in $((SECONDS - t0)) s"
    fi
    have=$(psql -tA "${S_URL[$db]}" -c "SELECT COUNT(*) FROM orders WHERE client_id = '${S_CLIENT[$db]}'")
    local cols="id, external_order_no, customer_id, status, payment_status, total_fen, deposit_fen, paid_fen, currency, updated_at"
    rss0=$(rss_kib "${S_PID[$db]}" VmRSS)
    for ((r = 0; r < ROUNDS; r++)); do
        local ts tb
        ts=$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer ${TOKEN[$db]}" \
            "http://127.0.0.1:${S_PORT[$db]}/api/mobile/reports/orders/export") || die "export failed"
        local t0 t1
        t0=$(date +%s.%N)
        psql -q "${S_URL[$db]}" -c "COPY (SELECT $cols FROM orders WHERE client_id = '${S_CLIENT[$db]}' ORDER BY created_at, id) TO STDOUT WITH CSV" >/dev/null
        t1=$(date +%s.%N)
        tb=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
        list_s+="$(awk -v n="$have" -v t="$ts" 'BEGIN {print n / t}') "
        list_b+="$(awk -v n="$have" -v t="$tb" 'BEGIN {print n / t}') "
        ratios+="$(awk -v a="$ts" -v b="$tb" 'BEGIN {print b / a}') "
        printf 'round %d/%d %-8s export %s rows: server %.2f s, psql COPY %.2f s\n' $((r + 1)) "$ROUNDS" "$db" "$have" "$ts" "$tb" >&2
    done
    hwm=$(rss_kib "${S_PID[$db]}" VmHWM)
    lines+=("$(printf 'work=export db=%s data=%s rows=%d ratio=%.2f rows_per_s=%.0f base_rows_per_s=%.0f rss_growth_mib=%.1f' \
        "$db" "$label" "$have" "$(median <<<"$ratios")" "$(median <<<"$list_s")" "$(median <<<"$list_b")" \
        "$(awk -v a="$hwm" -v b="$rss0" 'BEGIN {d = (a - b) / 1024; if (d < 0) d = 0; print d}')")")
    echo "${lines[-1]}" >&2
}

# Webhook dispatch: a fresh database per replica count (a subscription outlives its run), the
# replicas on the server's core with --allow-private-webhooks (the receiver is on loopback),
# l2c-hooks (receiver, outbox filling, latency driver) on the client's core.
dispatch_bench() { # db replicas
    local db=$1 n=$2 url created cid secret i port servers=() got mine=() rurl rcid
    url=$(new_db "$db" "hooks$n")
    # The recorded loop's own outbox (the replicas would drain a shared one).
    rurl=$(new_db "$db" "hooksrec$n")
    rcid=$("$server_bin" client create --database-url "$rurl" --name hooks --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
    created=$("$server_bin" client create --database-url "$url" --name hooks --json)
    cid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$created")
    secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$created")
    for ((i = 1; i <= n; i++)); do
        port=$(free_port)
        TOKIO_WORKER_THREADS=1 taskset -c "$SERVER_CPU" "$server_bin" --listen "127.0.0.1:$port" \
            --database-url "$url" --jwt-secret "$JWT_SECRET" --rate-limit 1000000/s \
            --no-demo-client --metrics-listen off --log-format json --allow-private-webhooks \
            >"$out/hooks-$db-$n-$i.log" 2>&1 &
        pids+=($!); mine+=($!)
        wait_port "$port" "$!" "hooks-$db-$n-$i"
        servers+=(--server "http://127.0.0.1:$port")
    done
    say "$db: webhook dispatch with $n replica(s)"
    if got=$(taskset -c "$CLIENT_CPU" "$hooks_bin" run "${servers[@]}" --database-url "$url" \
        --client-id "$cid" --client-secret "$secret" --events "$DISPATCH_EVENTS" --rounds "$ROUNDS" \
        --base-cpu "$SERVER_CPU" --rate "$DISPATCH_RATE" --seconds "$DISPATCH_SECONDS" --db-label "$db" \
        --recorded-database-url "$rurl" --recorded-client-id "$rcid"); then
        :
    else
        failures+=("$db dispatch, $n replica(s): l2c-hooks failed (see above)")
    fi
    while read -r l; do [[ -n $l ]] && { lines+=("$l"); echo "$l" >&2; }; done <<<"$got"
    for i in "${mine[@]}"; do kill "$i" 2>/dev/null || true; wait "$i" 2>/dev/null || true; done
}

for db in $DBS; do
    if ((DISPATCH_EVENTS > 0)); then
        if [[ $db == postgres && $pg_ok == 0 ]]; then :
        elif [[ $db == postgres ]]; then dispatch_bench postgres 1; dispatch_bench postgres 2
        else dispatch_bench "$db" 1; fi
    fi
done

for db in $DBS; do
    if [[ $db == postgres && $pg_ok == 0 ]]; then say "PostgreSQL not reachable at $PG_URL: skipped"; continue; fi
    [[ $db == sqlite || $db == postgres ]] || die "unknown database '$db'"
    say "$db: starting server and baseline"
    start_pair "$db"
    warm "$db"
    measure "$db" empty "$ROUNDS"
    if [[ $db == postgres && $GROWTH != 1 ]] && ((EXPORT_ROWS > 0)); then
        export_bench "$db" "$EXPORT_ROWS" "$EXPORT_ROWS"
    fi
    if [[ $GROWTH == 1 ]]; then
        for size in 10000 1000000; do
            leads=$((size >= 1000000 ? 100000 : size / 10))
            t0=$SECONDS
            seed "$db" "${S_URL[$db]}" "${S_CLIENT[$db]}" "$size" "$leads"
            seed "$db" "${B_URL[$db]}" "${B_CLIENT[$db]}" "$size" "$leads"
            say "$db: seeded $size orders (+ payments, history, $((size / 10)) customers) and $leads leads into both databases in $((SECONDS - t0)) s"
            lines+=("seed db=$db orders=$size leads=$leads seconds=$((SECONDS - t0)) (both databases)")
            warm "$db"
            measure "$db" "$size" "$ROUNDS"
            growth "$db" "$size"
            if [[ $db == postgres && $size == 1000000 ]]; then export_bench "$db" 1000000 1000000; fi
        done
    fi
done

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "machine: ${cpu_model:-unknown CPU}, $ncpu cores, $(uname -sr)"
echo "setup:   server and baseline on core $SERVER_CPU (1 worker each), wrk -t1 -c$CONNECTIONS on core $CLIENT_CPU," \
    "$ROUNDS round(s) x ${DURATION}s per work per side, medians"
echo
if ((${#failures[@]})); then
    echo "CHECKS FAILED:"; printf '  %s\n' "${failures[@]}"
else
    echo "checks: every request of every run answered 2xx"
fi
echo
printf '%s\n' "${lines[@]}"
((${#failures[@]} == 0))

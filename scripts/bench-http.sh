#!/usr/bin/env bash
# HTTP benchmark: the same JSON handler bare, behind the l2c layers, and behind the stack users
# would pick instead (tower_governor + a jsonwebtoken HS256 middleware); plus the l2c stack
# replaying a stored ~1 KiB response to a retried POST. See l2c-bench/src/main.rs.
#
# Usage: scripts/bench-http.sh            (defaults: 3 rounds of 5 s per mode, ~2.5 min + build)
#        ROUNDS=1 DURATION=2 scripts/bench-http.sh
#
# Environment:
#   ROUNDS      rounds; every round runs every mode once, modes interleaved      (default 3)
#   DURATION    seconds of load per mode per round                               (default 5)
#   WARMUP      seconds of unmeasured load per mode before round 1               (default 1)
#   MODES       modes to run, space separated; `bare` is always added first if missing
#               (default: every mode the binary knows, see `l2c-bench --help`)
#   CONNECTIONS wrk connections (default 32); wrk always runs one thread (-t1)
#   WORKERS     server tokio worker threads (default 1: the server gets one core)
#   SERVER_CPU / CLIENT_CPU   cores to pin server and wrk to (default 0 / 1)
#   INPROCESS   requests per batch of the in-process figure (default 20000; 0 skips it): the
#               same router driven without sockets on SERVER_CPU, ns per request of the fastest
#               of seven batches — the cost of the stack itself, less sensitive to a busy machine
#   KEEP_OUTPUT=1  keep the raw wrk outputs (their directory is printed)
#
# Needs: cargo, taskset (util-linux), curl, and wrk. When wrk is missing and the script runs as
# root on Debian/Ubuntu, it installs it with `apt-get install -y wrk`; otherwise it stops and says
# how to install it.
#
# What it measures, per mode: median requests/s over the rounds, the ratio to bare (the median of
# the rounds' ratios, each round's run of the mode against that round's run of bare), and
# server CPU per request (utime+stime deltas of the server process from /proc/<pid>/stat, divided
# by the requests wrk completed). It checks that `peer`/`l2c`/`l2c-replay` answered 2xx only, that
# `peer-429`/`l2c-429` answered non-2xx only (and that the status is really 429), and that
# `l2c-replay` answers with the stored response (`Idempotent-Replayed: true`): wrk sends it the same
# POST with the same `X-Request-Id` over and over (a Lua script built from `--print-request`),
# so only the first request runs the handler. The last lines
# are one per mode: `mode=l2c ratio=0.93 rps=136000 cpu_us=7.1`.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
WORKERS=${WORKERS:-1}
INPROCESS=${INPROCESS:-20000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

die() { echo "bench-http: $*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_uint "$ROUNDS" || die "ROUNDS must be a positive integer"
is_uint "$DURATION" || die "DURATION must be a positive integer (seconds)"
is_uint "$CONNECTIONS" || die "CONNECTIONS must be a positive integer"
is_uint "$WORKERS" || die "WORKERS must be a positive integer"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer (seconds)"
[[ $INPROCESS =~ ^[0-9]+$ ]] || die "INPROCESS must be a non-negative integer (requests)"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# --- tools -----------------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found"
command -v curl >/dev/null || die "curl not found (apt-get install -y curl)"
command -v taskset >/dev/null || die "taskset not found (apt-get install -y util-linux)"
if ! command -v wrk >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "bench-http: wrk not found; installing it with apt-get (running as root)" >&2
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
            || die "could not install wrk"
    else
        die "wrk not found: install it with 'sudo apt-get install -y wrk' (Debian/Ubuntu)"
    fi
fi
ncpu=$(nproc)
if ((ncpu < 2)) || ((SERVER_CPU >= ncpu)) || ((CLIENT_CPU >= ncpu)); then
    die "need two distinct cores for SERVER_CPU=$SERVER_CPU and CLIENT_CPU=$CLIENT_CPU (nproc=$ncpu)"
fi
((SERVER_CPU != CLIENT_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"
clk_tck=$(getconf CLK_TCK)

# --- build -----------------------------------------------------------------------------------
echo "bench-http: building l2c-bench (release)..." >&2
cargo build --release --quiet -p l2c-bench
bin="${CARGO_TARGET_DIR:-$root/target}/release/l2c-bench"
[[ -x $bin ]] || die "binary not found at $bin"

known_modes=$("$bin" --list-modes)
MODES=${MODES:-$(echo $known_modes)}
read -r -a modes <<<"$MODES"
for m in "${modes[@]}"; do
    grep -qx -- "$m" <<<"$known_modes" || die "unknown mode '$m' (known: $(echo $known_modes))"
done
[[ " ${modes[*]} " == *" bare "* ]] || modes=(bare "${modes[@]}")

out=$(mktemp -d "${TMPDIR:-/tmp}/bench-http.XXXXXX")
declare -A pid addr token path status
cleanup() {
    for m in "${!pid[@]}"; do kill "${pid[$m]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${KEEP_OUTPUT:-0} == 1 ]]; then echo "bench-http: raw output kept in $out" >&2; else rm -rf "$out"; fi
}
trap cleanup EXIT

expects_429() { [[ ${status[$1]} == 429 ]]; }

# --- servers: one per mode, all pinned to SERVER_CPU, idle unless wrk drives them ------------
for m in "${modes[@]}"; do
    taskset -c "$SERVER_CPU" "$bin" --mode "$m" --listen 127.0.0.1:0 --workers "$WORKERS" \
        >"$out/$m.server" 2>&1 &
    pid[$m]=$!
done
for m in "${modes[@]}"; do
    for _ in $(seq 100); do
        grep -q '^listening=' "$out/$m.server" && break
        kill -0 "${pid[$m]}" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^listening=' "$out/$m.server" || die "server '$m' did not start: $(cat "$out/$m.server")"
    addr[$m]=$(sed -n 's/^listening=//p' "$out/$m.server")
    token[$m]=$(sed -n 's/^token=//p' "$out/$m.server")
done

# --- the request of each mode (l2c-bench --print-request): wrk's Lua script and curl's args ----
declare -A curl_args
for m in "${modes[@]}"; do
    "$bin" --mode "$m" --print-request >"$out/$m.request" || die "no request for mode $m"
    method=$(sed -n 's/^method=//p' "$out/$m.request")
    path[$m]=$(sed -n 's/^path=//p' "$out/$m.request")
    status[$m]=$(sed -n 's/^status=//p' "$out/$m.request")
    sed -n 's/^body=//p' "$out/$m.request" | tr -d '\n' >"$out/$m.body"
    {
        echo "wrk.method = \"$method\""
        if [[ -s $out/$m.body ]]; then echo "wrk.body = [==[$(cat "$out/$m.body")]==]"; fi
        sed -n 's/^header=//p' "$out/$m.request" | while IFS= read -r h; do
            echo "wrk.headers[\"${h%%: *}\"] = \"${h#*: }\""
        done
    } >"$out/$m.lua"
    args=(-X "$method")
    while IFS= read -r h; do args+=(-H "$h"); done < <(sed -n 's/^header=//p' "$out/$m.request")
    if [[ -s $out/$m.body ]]; then args+=(--data-binary "@$out/$m.body"); fi
    curl_args[$m]=$(printf '%q ' "${args[@]}")
done

run_wrk() { # mode seconds outfile
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$2s" -s "$out/$1.lua" \
        -H "Authorization: Bearer ${token[$1]}" "http://${addr[$1]}${path[$1]}" >"$3" 2>&1 \
        || die "wrk failed for mode $1: $(cat "$3")"
}
cpu_ticks() { # utime + stime of a pid, in clock ticks (fields 14 and 15; comm has no spaces)
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# --- warm-up, then check what each mode answers ------------------------------------------------
for m in "${modes[@]}"; do
    if ((WARMUP > 0)); then run_wrk "$m" "$WARMUP" "$out/$m.warmup"; fi
    eval "args=(${curl_args[$m]})"
    # One request first, whatever WARMUP is: it uses up the quota of the 429 modes and stores the
    # response of the replay mode, so the checked request is one like every measured one.
    curl -s -o /dev/null "${args[@]}" -H "Authorization: Bearer ${token[$m]}" \
        "http://${addr[$m]}${path[$m]}"
    code=$(curl -s -o /dev/null -D "$out/$m.check" -w '%{http_code}' "${args[@]}" \
        -H "Authorization: Bearer ${token[$m]}" "http://${addr[$m]}${path[$m]}")
    [[ $code == "${status[$m]}" ]] || die "mode $m answered $code, expected ${status[$m]}"
    if [[ $m == *-replay ]]; then
        grep -qi '^idempotent-replayed: true' "$out/$m.check" \
            || die "mode $m did not replay: $(cat "$out/$m.check")"
    fi
done

# --- measured rounds: modes interleaved, start rotated every round ---------------------------
declare -A rps_list cpu_list rps_round
failures=()
n=${#modes[@]}
for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < n; i++)); do
        m=${modes[$(((i + r) % n))]}
        f="$out/$m.round$r"
        t0=$(cpu_ticks "${pid[$m]}")
        run_wrk "$m" "$DURATION" "$f"
        t1=$(cpu_ticks "${pid[$m]}")
        reqs=$(awk '/requests in/ {print $1}' "$f")
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
        non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
        non2xx=${non2xx:-0}
        [[ -n $reqs && $reqs -gt 0 ]] || die "no requests completed in mode $m: $(cat "$f")"
        if grep -q 'Socket errors' "$f"; then
            failures+=("$m round $((r + 1)): $(grep 'Socket errors' "$f" | sed 's/^ *//')")
        fi
        if expects_429 "$m"; then
            ((non2xx == reqs)) || failures+=("$m round $((r + 1)): only $non2xx of $reqs requests rejected")
        else
            ((non2xx == 0)) || failures+=("$m round $((r + 1)): $non2xx of $reqs responses were not 2xx")
        fi
        cpu_us=$(awk -v d="$((t1 - t0))" -v hz="$clk_tck" -v q="$reqs" 'BEGIN {printf "%.2f", d / hz * 1e6 / q}')
        rps_list[$m]+="$rps "
        rps_round[$m,$r]=$rps
        cpu_list[$m]+="$cpu_us "
        printf 'round %d/%d  %-9s %10.0f req/s  %6s us CPU/req  non-2xx %s/%s\n' \
            $((r + 1)) "$ROUNDS" "$m" "$rps" "$cpu_us" "$non2xx" "$reqs" >&2
    done
done

# --- in-process cost of each stack (servers idle meanwhile) -----------------------------------
declare -A inproc
for m in "${modes[@]}"; do
    inproc[$m]=-
    if ((INPROCESS > 0)); then
        inproc[$m]=$(taskset -c "$SERVER_CPU" "$bin" --mode "$m" --in-process "$INPROCESS" \
            | sed -n 's/^in_process_ns=//p') || die "in-process run failed for mode $m"
    fi
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- report ----------------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "machine: ${cpu_model:-unknown CPU}, $ncpu cores, $(uname -sr)"
echo "setup:   server on core $SERVER_CPU ($WORKERS worker), wrk -t1 -c$CONNECTIONS on core $CLIENT_CPU," \
    "$ROUNDS round(s) x ${DURATION}s per mode, medians"
echo
bare_cpu=$(median <<<"${cpu_list[bare]}")
printf '%-9s %12s %8s %12s %14s %16s\n' mode 'req/s' 'x bare' 'CPU us/req' 'vs bare (us)' 'in-proc ns/req'
lines=()
for m in "${modes[@]}"; do
    med_rps=$(median <<<"${rps_list[$m]}")
    med_cpu=$(median <<<"${cpu_list[$m]}")
    # The ratio of each round (the mode against bare's run of the same round), then the median
    # of those: a machine that slows down or speeds up between rounds moves both sides of a
    # round's ratio, where it would move one median and not the other.
    ratios=""
    for ((r = 0; r < ROUNDS; r++)); do
        ratios+="$(awk -v a="${rps_round[$m,$r]}" -v b="${rps_round[bare,$r]}" 'BEGIN {print a / b}') "
    done
    ratio=$(median <<<"$ratios" | awk '{printf "%.2f", $1}')
    delta=$(awk -v a="$med_cpu" -v b="$bare_cpu" 'BEGIN {printf "%+.1f", a - b}')
    rps=$(awk -v q="$med_rps" 'BEGIN {printf "%.0f", q}')
    cpu=$(awk -v c="$med_cpu" 'BEGIN {printf "%.1f", c}')
    printf '%-9s %12s %8s %12s %14s %16s\n' "$m" "$rps" "$ratio" "$cpu" "$delta" "${inproc[$m]}"
    lines+=("mode=$m ratio=$ratio rps=$rps cpu_us=$cpu")
done
echo
if ((${#failures[@]})); then
    echo "CHECKS FAILED:"
    printf '  %s\n' "${failures[@]}"
else
    echo "checks: 2xx-only modes answered 2xx only; *-429 modes rejected every request (429);"
    echo "        *-replay modes answered the stored response (Idempotent-Replayed: true)"
fi
echo
printf '%s\n' "${lines[@]}"
((${#failures[@]} == 0))

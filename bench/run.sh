#!/usr/bin/env bash
# The whole performance comparison (targets: docs/performance.md), on this machine, in one command:
#
#     bench/run.sh                      # full run, ~45 minutes (5 of them the soak)
#     QUICK=1 bench/run.sh              # smoke run, ~12 minutes: 1 run per point, short soak
#     ONLY=observability bench/run.sh   # one step (observability, pg, four or sqlite),
#                                       # into bench/results/<step>/
#
# Writes bench/results/*.json (one file per measurement), bench/results/summary.json,
# bench/results/summary.md and bench/results/chart.png. See docs/performance.md.
#
# Every figure is of the default configuration (JSON request logs at info, 10 % of
# payments declined, metrics on), except where "bare" or "logs off" says otherwise.
# What it does, in order (every comparison is measured in the same run, interleaved):
#   1. builds the release binaries (pedidos-veloz, loadgen); installs nginx, wrk and a
#      Python venv with matplotlib when they are missing;
#   2. observability: the all-in-one process on SQLite in the default configuration,
#      the same exporting every span to a local OTLP sink (`loadgen otlp-sink`:
#      "traced"), and "bare" (logs and traces off, no declines); GET /items/{id} and
#      POST /orders at 64 clients, each with the process's CPU time per request;
#   3. PostgreSQL: fresh databases, start-up to /readyz on a new and on an existing
#      database, seed the 14-item catalogue, GET /items through the gateway and straight
#      to estoque-service; the proxies: GET /items/{id} through the all-in-one gateway,
#      through the gateway as its own process, through nginx (bench/nginx.conf) and
#      straight, with loadgen and wrk, with access logs on (the gateway's info line,
#      nginx's default access_log) and off; 86 more items, POST /orders (one hot item;
#      spread) at 16 and 64 clients interleaved with pgbench running the same
#      transactions (bench/pgbench_order.sql); the open model (fixed arrival rates at 50
#      and 80 % of the measured maximum); the 5-minute open-load soak with RSS samples;
#   4. the deployed shape: the four components as four processes on the same databases,
#      next to the all-in-one process, orders (hot, spread), GET and mixed, with the CPU
#      time per request of every process;
#   5. SQLite: the reads, the orders and the open model;
#   6. bench/summarize.py: min/median/max per point, ratios, targets, chart.
#
# Settings (environment): RUNS (3), DUR (8s), WARM (2s), OPEN_DUR (15s), SOAK (5m),
# SOAK_RATE (300), PG (postgres://postgres@127.0.0.1:5432), BASE_PORT (25000), CATALOGUE
# (14: the items GET /items returns, as in the Flask original's baseline), ITEMS (100: the
# spread orders' items).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ONLY=${ONLY:-}
case "$ONLY" in "" | observability | pg | four | sqlite) ;; *) echo "ONLY: observability, pg, four or sqlite" >&2; exit 2 ;; esac
# A partial run (ONLY=…) keeps the last full run's results: it writes beside them.
OUT=$ROOT/bench/results${ONLY:+/$ONLY}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${RUNS:-1}; DUR=${DUR:-4s}; WARM=${WARM:-1s}; SOAK=${SOAK:-30s}; OPEN_DUR=${OPEN_DUR:-5s}
else
    RUNS=${RUNS:-3}; DUR=${DUR:-8s}; WARM=${WARM:-2s}; SOAK=${SOAK:-5m}; OPEN_DUR=${OPEN_DUR:-15s}
fi
SOAK_RATE=${SOAK_RATE:-300}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BASE_PORT=${BASE_PORT:-25000}
ITEMS=${ITEMS:-100}
CATALOGUE=${CATALOGUE:-14}
GW=$BASE_PORT; ORD=$((BASE_PORT + 1)); PAY=$((BASE_PORT + 2)); INV=$((BASE_PORT + 3)); NGX=$((BASE_PORT + 80))
OTLP=$((BASE_PORT + 81))
SPLIT=$((BASE_PORT + 10))
FOUR=$((BASE_PORT + 20))
DUR_S=${DUR%s}
WORK=$(mktemp -d /tmp/pv-bench.XXXXXX)
BIN=${PV_BIN:-$ROOT/target/release/pedidos-veloz}
LOADGEN=$ROOT/target/release/loadgen
PLATFORM_PID="" NGINX_PID="" SPLIT_PID="" SINK_PID="" FOUR_PIDS=""
# shellcheck source=bench/lib.sh
. bench/lib.sh
trap cleanup EXIT

step() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# ---- 1. tools ---------------------------------------------------------------------
install_tools
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    log "python venv with matplotlib"
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -q matplotlib
fi
log "release build"
[ -n "${PV_BIN:-}" ] || cargo build --release -q -p pedidos-veloz -p loadgen

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/chart.png "$OUT"/summary.md
cat > "$OUT/machine.json" <<EOF
{"nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)", "mem_kb": $(grep MemTotal /proc/meminfo | awk '{print $2}'),
 "kernel": "$(uname -r)", "postgres": "$(psql "$PG/postgres" -Atc 'show server_version' 2>/dev/null || echo none)",
 "nginx": "$(nginx -v 2>&1 | cut -d/ -f2)", "date": "$(date -u +%FT%TZ)", "quick": $QUICK, "runs": $RUNS, "duration": "$DUR", "warmup": "$WARM",
 "open_duration": "$OPEN_DUR", "git": "$(git rev-parse --short HEAD)"}
EOF

# ---- blocks -------------------------------------------------------------------------
observability_block() {
    log "observability: OTLP sink on 127.0.0.1:$OTLP"
    "$LOADGEN" otlp-sink --listen "127.0.0.1:$OTLP" > "$WORK/otlp-sink.log" 2>&1 &
    SINK_PID=$!
    platform_env sqlite
    export PEDIDOS_DATA_DIR=$WORK/obs-sqlite
    obs_env bare
    start_platform obs-fresh
    seed_catalogue
    seed_rest
    for r in $(seq "$RUNS"); do
        for config in defaults traced bare; do
            stop_platform
            obs_env "$config"
            start_platform "obs-$config"
            log "observability $config: GET /items/{id}, POST /orders spread, 64 clients, run $r"
            lg_cpu "obs-$config-get-item-c64-r$r" "platform:$PLATFORM_PID" --url "http://127.0.0.1:$GW" --scenario get --path "/items/$HOT" -c 64
            lg_cpu "obs-$config-order-spread-c64-r$r" "platform:$PLATFORM_PID" --url "http://127.0.0.1:$GW" --scenario order-spread --items "$IDS" -c 64
        done
    done
    stop_platform
    stop_pid "$SINK_PID"
    SINK_PID=""
    echo "   OTLP sink: $(tail -n 1 "$WORK/otlp-sink.log")"
}

reads_block() {
    local b=$1
    for r in $(seq "$RUNS"); do
        log "$b GET /items, GET /items/{id}, 64 clients, run $r"
        lg "$b-get-items-gateway-c64-r$r" --url "http://127.0.0.1:$GW" --scenario get --path /items -c 64
        lg "$b-get-item-gateway-c64-r$r" --url "http://127.0.0.1:$GW" --scenario get --path "/items/$HOT" -c 64
        if [ "$b" = pg ]; then
            lg "$b-get-items-direct-c64-r$r" --url "http://127.0.0.1:$INV" --scenario get --path /items -c 64
            wrkr "wrk-items-gateway-c64-r$r" "http://127.0.0.1:$GW/items" 64
        fi
    done
}

# proxies_block <on|off>: GET /items/{id} through the all-in-one gateway, the gateway as
# its own process and nginx, and straight to estoque-service, all with request logs on
# (the default configuration; nginx's default access log) or off (LOG_LEVEL=warn;
# access_log off). With logs on, also one client: the latency one proxy hop adds.
proxies_block() {
    local logs=$1 r who url procs
    stop_platform
    if [ "$logs" = on ]; then obs_env defaults; else obs_env bare; fi
    start_platform "pg-logs-$logs"
    start_nginx "$logs"
    start_split_gateway
    for r in $(seq "$RUNS"); do
        log "pg proxies, logs $logs, GET /items/{id}, 64 clients, run $r"
        for who in gateway split nginx direct; do
            # CPU per request of the proxy itself: the gateway's own process, nginx's
            # workers; straight, estoque-service's (the all-in-one process).
            case $who in
                gateway) url=http://127.0.0.1:$GW procs="" ;;
                split) url=http://127.0.0.1:$SPLIT procs="gateway:$SPLIT_PID" ;;
                nginx) url=http://127.0.0.1:$NGX procs=$(nginx_procs) ;;
                direct) url=http://127.0.0.1:$INV procs="estoque:$PLATFORM_PID" ;;
            esac
            if [ -n "$procs" ]; then
                lg_cpu "pg-get-item-$who-c64-logs-$logs-r$r" "$procs" --url "$url" --scenario get --path "/items/$HOT" -c 64
            else
                lg "pg-get-item-$who-c64-logs-$logs-r$r" --url "$url" --scenario get --path "/items/$HOT" -c 64
            fi
            wrkr "wrk-item-$who-c64-logs-$logs-r$r" "$url/items/$HOT" 64
            [ "$logs" = on ] && lg "pg-get-item-$who-c1-r$r" --url "$url" --scenario get --path "/items/$HOT" -c 1
        done
    done
    stop_split_gateway
    stop_nginx
    stop_platform
    obs_env defaults
    start_platform "pg-logs-default"
}

orders_block() {
    # $1 = backend label (pg | sqlite); pgbench only on pg
    local b=$1
    for r in $(seq "$RUNS"); do
        for c in 16 64; do
            log "$b orders, one hot item, $c clients, run $r"
            lg "$b-order-hot-c$c-r$r" --url "http://127.0.0.1:$GW" --scenario order-hot --item "$HOT" -c "$c"
            [ "$b" = pg ] && pgb "pgbench-hot-c$c-r$r" "$c" 1 1
        done
        log "$b orders spread over $ITEMS items, 64 clients, run $r"
        lg "$b-order-spread-c64-r$r" --url "http://127.0.0.1:$GW" --scenario order-spread --items "$IDS" -c 64
        [ "$b" = pg ] && pgb "pgbench-spread-c64-r$r" 64 1 "$ITEMS"
    done
    return 0
}

# open_block <backend>: fixed arrival rates at 50 and 80 % of the closed-load maximum
# measured above (median of the 64-client runs), orders spread and GET /items/{id}.
open_block() {
    local b=$1 orders get pct r
    orders=$(median_rps "$b-order-spread-c64")
    get=$(median_rps "$b-get-item-gateway-c64")
    for r in $(seq "$RUNS"); do
        for pct in 50 80; do
            log "$b open model at $pct % of the maximum: orders $((orders * pct / 100))/s, GET $((get * pct / 100))/s, run $r"
            lg_open "$b-open-order-spread-at$pct-r$r" "$((orders * pct / 100))" --url "http://127.0.0.1:$GW" --scenario order-spread --items "$IDS"
            lg_open "$b-open-get-item-at$pct-r$r" "$((get * pct / 100))" --url "http://127.0.0.1:$GW" --scenario get --path "/items/$HOT"
        done
    done
}

startup_block() {
    # $1 = label; restarts the platform on its existing database five times
    for _ in 1 2 3 4 5; do
        stop_platform
        start_platform "$1-existing"
    done
}

# four_block: the four processes next to the all-in-one one, same databases, interleaved.
four_block() {
    local r shape url procs
    start_four
    for r in $(seq "$RUNS"); do
        for shape in one four; do
            if [ "$shape" = one ]; then
                url=http://127.0.0.1:$GW procs="platform:$PLATFORM_PID"
            else
                url=http://127.0.0.1:$FOUR procs=$FOUR_PROCS
            fi
            log "pg $shape process(es): orders hot and spread, GET /items/{id}, mixed, 64 clients, run $r"
            lg_cpu "pg-shape-$shape-order-hot-c64-r$r" "$procs" --url "$url" --scenario order-hot --item "$HOT" -c 64
            lg_cpu "pg-shape-$shape-order-spread-c64-r$r" "$procs" --url "$url" --scenario order-spread --items "$IDS" -c 64
            lg_cpu "pg-shape-$shape-get-item-c64-r$r" "$procs" --url "$url" --scenario get --path "/items/$HOT" -c 64
            lg_cpu "pg-shape-$shape-mixed-c64-r$r" "$procs" --url "$url" --scenario mixed --items "$IDS" -c 64
        done
    done
    stop_four
}

# pg_platform: the all-in-one process on fresh PostgreSQL databases, default configuration.
pg_platform() {
    log "PostgreSQL: fresh databases"
    fresh_pg_dbs
    platform_env pg
    obs_env defaults
    start_platform pg-fresh
    seed_catalogue
}

# ---- 2-5. the steps -----------------------------------------------------------------
step observability && observability_block

if step pg; then
    pg_platform
    startup_block pg
    reads_block pg
    proxies_block on
    proxies_block off
    seed_rest
    orders_block pg
    open_block pg
    log "pg GET /items of a full 100-item page, 64 clients (for reference)"
    lg "pg-get-items100-gateway-c64" --url "http://127.0.0.1:$GW" --scenario get --path /items -c 64
    log "PostgreSQL soak: mixed traffic, open load $SOAK_RATE/s for $SOAK, RSS every 10 s"
    echo "   RSS before soak: $(grep VmRSS "/proc/$PLATFORM_PID/status")"
    "$LOADGEN" run --url "http://127.0.0.1:$GW" --scenario soak --items "$IDS" --rate "$SOAK_RATE" \
        --duration "$SOAK" --warmup 0s --sample-rss "$PLATFORM_PID" --rss-every 10s \
        --json "$OUT/pg-soak.json" --label pg-soak | sed 's/^/   /'
fi

if step four; then
    if [ -z "$PLATFORM_PID" ]; then
        pg_platform
        seed_rest
    fi
    four_block
fi
stop_platform

if step sqlite; then
    log "SQLite: fresh data dir"
    platform_env sqlite
    obs_env defaults
    start_platform sqlite-fresh
    seed_catalogue
    startup_block sqlite
    reads_block sqlite
    seed_rest
    orders_block sqlite
    open_block sqlite
    stop_platform
fi

for f in "$WORK"/startup-*.txt; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .txt)
    printf '{"label": "%s", "startup_ms": [%s]}\n' "$n" "$(paste -sd, "$f")" > "$OUT/$n.json"
done

# ---- 6. summary -------------------------------------------------------------------
log "summary"
bench/.venv/bin/python bench/summarize.py "$OUT"
rm -rf "$WORK"

#!/usr/bin/env bash
# The whole performance comparison (targets: docs/performance.md), on this machine, in one command:
#
#     bench/run.sh                      # full run, ~25 minutes (5 of them the soak)
#     QUICK=1 bench/run.sh              # smoke run, ~5 minutes: 1 run per point, short soak
#     ONLY=observability bench/run.sh   # only step 2 below, into bench/results/observability/
#
# Writes bench/results/*.json (one file per measurement), bench/results/summary.json,
# bench/results/summary.md and bench/results/chart.png. See docs/performance.md.
#
# What it does, in order (every comparison is measured in the same run, interleaved):
#   1. builds the release binaries (pedidos-veloz, loadgen); installs nginx, wrk and a
#      Python venv with matplotlib when they are missing;
#   2. observability: the all-in-one process on SQLite as a user gets it (JSON request
#      logs at info, 10 % declines: "defaults"), the same exporting every trace to a
#      local OTLP sink ("traced", `loadgen otlp-sink`), and with logs and traces off
#      and no declines ("bare", what the figures below use); GET /items/{id} and
#      POST /orders at 64 clients, each with the platform's CPU time per request;
#   3. PostgreSQL: fresh databases, start-up to /readyz on a new and on an existing
#      database, seed the 14-item catalogue, GET /items through the gateway, straight
#      to estoque-service, through nginx (bench/nginx.conf) and through the gateway
#      run as its own process (as on Kubernetes), with loadgen and wrk;
#      then 86 more items and POST /orders (one hot item; spread) at 16 and 64
#      clients interleaved with pgbench running the same transactions
#      (bench/pgbench_order.sql), and the 5-minute open-load soak with RSS samples;
#   4. SQLite: the same orders and reads;
#   5. bench/summarize.py: min/median/max per point, ratios, chart.
#
# Settings (environment): RUNS (3), DUR (8s), WARM (2s), SOAK (5m), SOAK_RATE (300),
# PG (postgres://postgres@127.0.0.1:5432), BASE_PORT (25000), CATALOGUE (14: the items
# GET /items returns, as in the Flask original's baseline), ITEMS (100: the spread orders' items).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ONLY=${ONLY:-}
# A partial run (ONLY=…) keeps the last full run's results: it writes beside them.
OUT=$ROOT/bench/results${ONLY:+/$ONLY}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${RUNS:-1}; DUR=${DUR:-4s}; WARM=${WARM:-1s}; SOAK=${SOAK:-30s}
else
    RUNS=${RUNS:-3}; DUR=${DUR:-8s}; WARM=${WARM:-2s}; SOAK=${SOAK:-5m}
fi
SOAK_RATE=${SOAK_RATE:-300}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BASE_PORT=${BASE_PORT:-25000}
ITEMS=${ITEMS:-100}
CATALOGUE=${CATALOGUE:-14}
GW=$BASE_PORT; ORD=$((BASE_PORT + 1)); PAY=$((BASE_PORT + 2)); INV=$((BASE_PORT + 3)); NGX=$((BASE_PORT + 80))
OTLP=$((BASE_PORT + 81))
SPLIT=$((BASE_PORT + 10))
DUR_S=${DUR%s}
WORK=$(mktemp -d /tmp/pv-bench.XXXXXX)
BIN=${PV_BIN:-$ROOT/target/release/pedidos-veloz}
LOADGEN=$ROOT/target/release/loadgen
PLATFORM_PID=""
NGINX_PID=""
SPLIT_PID=""
SINK_PID=""

log() { printf '\n== %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }

cleanup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    [ -n "$SPLIT_PID" ] && kill "$SPLIT_PID" 2>/dev/null || true
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
    [ -n "$PLATFORM_PID" ] && kill "$PLATFORM_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

# ---- 1. tools ---------------------------------------------------------------------
need_apt=""
command -v nginx >/dev/null || need_apt="$need_apt nginx"
command -v wrk >/dev/null || need_apt="$need_apt wrk"
command -v pgbench >/dev/null || need_apt="$need_apt postgresql-client"
if [ -n "$need_apt" ]; then
    log "installing$need_apt"
    apt-get update -qq && apt-get install -y -qq $need_apt >/dev/null
fi
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
 "git": "$(git rev-parse --short HEAD)"}
EOF

# ---- helpers ----------------------------------------------------------------------
platform_env() {
    # $1 = pg | sqlite
    export BIND_ADDRESS=127.0.0.1 LOG_LEVEL=${PV_LOG_LEVEL:-warn} LOG_FORMAT=json
    export GATEWAY_PORT=$GW PEDIDOS_PORT=$ORD PAGAMENTOS_PORT=$PAY ESTOQUE_PORT=$INV
    export PAYMENT_LATENCY_MS=0 PAYMENT_DECLINE_RATE=0
    export SHUTDOWN_GRACE_SECONDS=2
    # One load generator is one client address: the gateway's per-address rate limit
    # (RATE_LIMIT_PER_ADDRESS, 1,000/s by default) would turn the load into 429s.
    export RATE_LIMIT_PER_ADDRESS=0
    if [ "$1" = pg ]; then
        export ESTOQUE_DATABASE_URL=$PG/pv_bench_estoque PAGAMENTOS_DATABASE_URL=$PG/pv_bench_pagamentos PEDIDOS_DATABASE_URL=$PG/pv_bench_pedidos
    else
        unset ESTOQUE_DATABASE_URL PAGAMENTOS_DATABASE_URL PEDIDOS_DATABASE_URL
        export PEDIDOS_DATA_DIR=$WORK/sqlite
    fi
}

# start_platform <label>: starts the platform, appends start-up ms to $OUT/startup-<label>.txt
start_platform() {
    local line
    line=$("$LOADGEN" startup --url "http://127.0.0.1:$GW/readyz" --timeout 60s --log "$WORK/platform.log" -- "$BIN")
    PLATFORM_PID=${line#* }
    echo "${line% *}" >> "$WORK/startup-$1.txt"
    echo "   start-up to /readyz 200: ${line% *} ms (pid $PLATFORM_PID)"
}

stop_platform() {
    if [ -n "$PLATFORM_PID" ]; then
        kill -TERM "$PLATFORM_PID" 2>/dev/null || true
        while kill -0 "$PLATFORM_PID" 2>/dev/null; do sleep 0.05; done
        PLATFORM_PID=""
    fi
}

# lg <file> <args...>: one loadgen run, JSON to $OUT/<file>.json
lg() {
    local name=$1; shift
    "$LOADGEN" run --duration "$DUR" --warmup "$WARM" --json "$OUT/$name.json" --label "$name" "$@" | sed 's/^/   /'
}

# cpu_ticks <pid>: user + system CPU time of a process so far, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# lg_cpu <file> <pid> <args...>: a warm-up run, then the measured one (JSON as lg) with
# the process's CPU time per answered request added to its report (the load generator
# runs in its own process and is not counted).
lg_cpu() {
    local name=$1 pid=$2 t0 t1; shift 2
    "$LOADGEN" run --duration "$WARM" --warmup 0s "$@" > /dev/null
    t0=$(cpu_ticks "$pid")
    "$LOADGEN" run --duration "$DUR" --warmup 0s --json "$OUT/$name.json" --label "$name" "$@" | sed 's/^/   /'
    t1=$(cpu_ticks "$pid")
    python3 - "$OUT/$name.json" "$((t1 - t0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
path, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = json.load(open(path))
answered = sum(d["report"]["by_status"].values())
d["report"]["cpu_us_per_request"] = ticks / hz * 1e6 / answered if answered else None
json.dump(d, open(path, "w"), indent=2)
print("   cpu: %.0f us per request (%d answers, %.2f CPU s)" % (d["report"]["cpu_us_per_request"] or 0, answered, ticks / hz))
PY
}

# obs_env <defaults|traced|bare>: the settings of one observability configuration
obs_env() {
    unset OTEL_EXPORTER_OTLP_ENDPOINT
    case $1 in
        defaults) export LOG_LEVEL=info PAYMENT_DECLINE_RATE=0.1 ;;
        traced) export LOG_LEVEL=info PAYMENT_DECLINE_RATE=0.1 OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP ;;
        bare) export LOG_LEVEL=warn PAYMENT_DECLINE_RATE=0 ;;
    esac
}

# pgb <file> <clients> <lo> <hi>: pgbench of the order transactions
pgb() {
    local name=$1 c=$2 lo=$3 hi=$4 txt
    txt=$(pgbench -n -M prepared -c "$c" -j 2 -T "$DUR_S" -D lo="$lo" -D hi="$hi" -f bench/pgbench_order.sql "$PG/pv_bench_pgbench" 2>&1)
    local tps lat
    tps=$(echo "$txt" | awk '/^tps = / {print $3; exit}')
    lat=$(echo "$txt" | awk '/^latency average/ {print $4; exit}')
    echo "   pgbench $name: $tps orders/s, latency average $lat ms"
    echo "{\"label\": \"$name\", \"tool\": \"pgbench\", \"concurrency\": $c, \"items\": [$lo, $hi], \"report\": {\"rps\": ${tps:-0}, \"latency_avg_ms\": ${lat:-0}}}" > "$OUT/$name.json"
}

# wrkr <file> <url> <clients>: wrk GET, JSON with req/s and latency percentiles
wrkr() {
    local name=$1 url=$2 c=$3 txt
    txt=$(wrk -t 2 -c "$c" -d "$DUR_S" --latency "$url" 2>&1)
    echo "$txt" | awk -v name="$name" -v c="$c" '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        /Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = ms($2) } /^ +90%/ { p90 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Non-2xx/ { non2xx = $NF }
        /Socket errors/ { errs = $0 }
        END { printf "{\"label\": \"%s\", \"tool\": \"wrk\", \"concurrency\": %d, \"report\": {\"rps\": %s, \"p50_ms\": %s, \"p90_ms\": %s, \"p99_ms\": %s, \"non_2xx\": %d}}\n", name, c, rps, p50, p90, p99, non2xx+0 }' > "$OUT/$name.json"
    echo "   wrk $name: $(grep -o '"rps": [0-9.]*' "$OUT/$name.json") p99 $(grep -o '"p99_ms": [0-9.]*' "$OUT/$name.json" | cut -d' ' -f2) ms"
}

fresh_pg_dbs() {
    for db in pv_bench_estoque pv_bench_pagamentos pv_bench_pedidos pv_bench_pgbench; do
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    done
    # pgbench runs on the platform's own schema: all three services' migrations in one database.
    ESTOQUE_DATABASE_URL=$PG/pv_bench_pgbench PAGAMENTOS_DATABASE_URL=$PG/pv_bench_pgbench PEDIDOS_DATABASE_URL=$PG/pv_bench_pgbench \
        LOG_LEVEL=warn "$BIN" migrate >/dev/null
    psql -q "$PG/pv_bench_pgbench" -c "INSERT INTO items (name, quantity, price_cents, created_at, updated_at)
        SELECT 'pgbench item ' || g, 1000000000, 1000, now(), now() FROM generate_series(1, $ITEMS) g"
}

# seed_catalogue: the Flask original's GET /items baseline is a 14-item catalogue, so the reads
# run on CATALOGUE items; the orders then spread over ITEMS (the rest added by seed_rest).
seed_catalogue() {
    IDS=$("$LOADGEN" seed --url "http://127.0.0.1:$GW" --items "$CATALOGUE" --stock 1000000000)
    HOT=${IDS%%,*}
    echo "   seeded $CATALOGUE items, hot item $HOT"
}

seed_rest() {
    IDS="$IDS,$("$LOADGEN" seed --url "http://127.0.0.1:$GW" --items "$((ITEMS - CATALOGUE))" --stock 1000000000)"
    echo "   seeded $((ITEMS - CATALOGUE)) more items: $ITEMS in all"
}

start_nginx() {
    mkdir -p "$WORK/nginx/tmp"
    sed -e "s/ESTOQUE_PORT/$INV/" -e "s/NGINX_PORT/$NGX/" bench/nginx.conf > "$WORK/nginx/nginx.conf"
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/err.log" &
    NGINX_PID=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NGX/items" && break; sleep 0.05; done
}

stop_nginx() {
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}

# The gateway as its own process (`pedidos-veloz gateway`, as deployed on Kubernetes),
# in front of the same estoque-service as nginx: the like-for-like proxy comparison.
start_split_gateway() {
    local line
    line=$(PORT=$SPLIT ESTOQUE_SERVICE_URL="http://127.0.0.1:$INV" PEDIDOS_SERVICE_URL="http://127.0.0.1:$ORD" \
        PAGAMENTOS_SERVICE_URL="http://127.0.0.1:$PAY" \
        "$LOADGEN" startup --url "http://127.0.0.1:$SPLIT/readyz" --timeout 60s --log "$WORK/gateway.log" -- "$BIN" gateway)
    SPLIT_PID=${line#* }
}

stop_split_gateway() {
    [ -n "$SPLIT_PID" ] && kill -TERM "$SPLIT_PID" 2>/dev/null || true
    wait "$SPLIT_PID" 2>/dev/null || true
    SPLIT_PID=""
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

reads_block() {
    local b=$1
    for r in $(seq "$RUNS"); do
        log "$b GET /items, 64 clients, run $r"
        lg "$b-get-items-gateway-c64-r$r" --url "http://127.0.0.1:$GW" --scenario get --path /items -c 64
        lg "$b-get-item-gateway-c64-r$r" --url "http://127.0.0.1:$GW" --scenario get --path "/items/$HOT" -c 64
        if [ "$b" = pg ]; then
            lg "$b-get-items-direct-c64-r$r" --url "http://127.0.0.1:$INV" --scenario get --path /items -c 64
            lg "$b-get-item-direct-c64-r$r" --url "http://127.0.0.1:$INV" --scenario get --path "/items/$HOT" -c 64
            lg "$b-get-item-nginx-c64-r$r" --url "http://127.0.0.1:$NGX" --scenario get --path "/items/$HOT" -c 64
            lg "$b-get-item-split-c64-r$r" --url "http://127.0.0.1:$SPLIT" --scenario get --path "/items/$HOT" -c 64
            # Added latency of one proxy hop: one client, nothing queues.
            lg "$b-get-item-direct-c1-r$r" --url "http://127.0.0.1:$INV" --scenario get --path "/items/$HOT" -c 1
            lg "$b-get-item-gateway-c1-r$r" --url "http://127.0.0.1:$GW" --scenario get --path "/items/$HOT" -c 1
            lg "$b-get-item-nginx-c1-r$r" --url "http://127.0.0.1:$NGX" --scenario get --path "/items/$HOT" -c 1
            lg "$b-get-item-split-c1-r$r" --url "http://127.0.0.1:$SPLIT" --scenario get --path "/items/$HOT" -c 1
            wrkr "wrk-items-gateway-c64-r$r" "http://127.0.0.1:$GW/items" 64
            wrkr "wrk-item-gateway-c64-r$r" "http://127.0.0.1:$GW/items/$HOT" 64
            wrkr "wrk-item-nginx-c64-r$r" "http://127.0.0.1:$NGX/items/$HOT" 64
            wrkr "wrk-item-split-c64-r$r" "http://127.0.0.1:$SPLIT/items/$HOT" 64
            wrkr "wrk-item-direct-c64-r$r" "http://127.0.0.1:$INV/items/$HOT" 64
        fi
    done
}

startup_block() {
    # $1 = label; restarts the platform on its existing database five times
    for _ in 1 2 3 4 5; do
        stop_platform
        start_platform "$1-existing"
    done
}

# ---- 2. observability -------------------------------------------------------------
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
            lg_cpu "obs-$config-get-item-c64-r$r" "$PLATFORM_PID" --url "http://127.0.0.1:$GW" --scenario get --path "/items/$HOT" -c 64
            lg_cpu "obs-$config-order-spread-c64-r$r" "$PLATFORM_PID" --url "http://127.0.0.1:$GW" --scenario order-spread --items "$IDS" -c 64
        done
    done
    stop_platform
    kill -TERM "$SINK_PID" 2> /dev/null || true
    wait "$SINK_PID" 2> /dev/null || true
    SINK_PID=""
    echo "   OTLP sink: $(tail -n 1 "$WORK/otlp-sink.log")"
    obs_env bare
}
observability_block

if [ "$ONLY" = observability ]; then
    log "summary"
    bench/.venv/bin/python bench/summarize.py "$OUT"
    rm -rf "$WORK"
    exit 0
fi

# ---- 3. PostgreSQL ----------------------------------------------------------------
log "PostgreSQL: fresh databases"
fresh_pg_dbs
platform_env pg
start_platform pg-fresh
seed_catalogue
startup_block pg
start_nginx
start_split_gateway
reads_block pg
stop_split_gateway
stop_nginx
seed_rest
orders_block pg
log "pg GET /items of a full 100-item page, 64 clients (for reference)"
lg "pg-get-items100-gateway-c64" --url "http://127.0.0.1:$GW" --scenario get --path /items -c 64
log "PostgreSQL soak: mixed traffic, open load $SOAK_RATE/s for $SOAK, RSS every 10 s"
echo "   RSS before soak: $(grep VmRSS /proc/$PLATFORM_PID/status)"
"$LOADGEN" run --url "http://127.0.0.1:$GW" --scenario soak --items "$IDS" --rate "$SOAK_RATE" \
    --duration "$SOAK" --warmup 0s --sample-rss "$PLATFORM_PID" --rss-every 10s \
    --json "$OUT/pg-soak.json" --label pg-soak | sed 's/^/   /'
stop_platform

# ---- 4. SQLite --------------------------------------------------------------------
log "SQLite: fresh data dir"
platform_env sqlite
start_platform sqlite-fresh
seed_catalogue
startup_block sqlite
reads_block sqlite
seed_rest
orders_block sqlite
stop_platform

for f in "$WORK"/startup-*.txt; do
    n=$(basename "$f" .txt)
    printf '{"label": "%s", "startup_ms": [%s]}\n' "$n" "$(paste -sd, "$f")" > "$OUT/$n.json"
done
cp "$WORK/platform.log" "$OUT/platform.log.txt" 2>/dev/null || true

# ---- 5. summary -------------------------------------------------------------------
log "summary"
bench/.venv/bin/python bench/summarize.py "$OUT"
rm -rf "$WORK"

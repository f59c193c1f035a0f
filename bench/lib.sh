# Helpers of bench/run.sh (sourced by it; reads its settings: OUT, WORK, BIN, LOADGEN,
# the ports, DUR, WARM, PG, ...). Each writes its measurement to $OUT/<name>.json.

log() { printf '\n== %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }

cleanup() {
    local pid
    for pid in "$NGINX_PID" "$SPLIT_PID" "$SINK_PID" "$PLATFORM_PID" $FOUR_PIDS; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}

# install_tools: nginx, wrk and pgbench from Debian's packages when they are missing.
install_tools() {
    local need=""
    command -v nginx >/dev/null || need="$need nginx"
    command -v wrk >/dev/null || need="$need wrk"
    command -v pgbench >/dev/null || need="$need postgresql-client"
    if [ -n "$need" ]; then
        log "installing$need"
        # shellcheck disable=SC2086 # package names are words
        apt-get update -qq && apt-get install -y -qq $need >/dev/null
    fi
}

# ---- configurations -----------------------------------------------------------------
# platform_env <pg|sqlite>: ports, databases and the fixed settings of every run.
platform_env() {
    export BIND_ADDRESS=127.0.0.1 LOG_FORMAT=json
    export GATEWAY_PORT=$GW PEDIDOS_PORT=$ORD PAGAMENTOS_PORT=$PAY ESTOQUE_PORT=$INV
    export PAYMENT_LATENCY_MS=0
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

# obs_env <defaults|traced|bare>: the observability settings. "defaults" is the platform as
# a user gets it (JSON request logs at info, 10 % of payments declined), "traced" the same
# exporting every span to the local OTLP sink, "bare" logs and traces off, no declines.
obs_env() {
    unset OTEL_EXPORTER_OTLP_ENDPOINT
    case $1 in
        defaults) export LOG_LEVEL=info PAYMENT_DECLINE_RATE=0.1 ;;
        traced) export LOG_LEVEL=info PAYMENT_DECLINE_RATE=0.1 OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP ;;
        bare) export LOG_LEVEL=warn PAYMENT_DECLINE_RATE=0 ;;
    esac
}

# ---- processes ------------------------------------------------------------------------
# start_platform <label>: starts the all-in-one process, appends start-up ms to startup-<label>
start_platform() {
    local line
    line=$("$LOADGEN" startup --url "http://127.0.0.1:$GW/readyz" --timeout 60s --log "$WORK/platform.log" -- "$BIN")
    PLATFORM_PID=${line#* }
    echo "${line% *}" >> "$WORK/startup-$1.txt"
    echo "   start-up to /readyz 200: ${line% *} ms (pid $PLATFORM_PID)"
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}

stop_platform() {
    [ -n "$PLATFORM_PID" ] && stop_pid "$PLATFORM_PID"
    PLATFORM_PID=""
}

# start_component <log> <ready url> <subcommand>: one component as its own process (the
# environment says its port and upstreams); prints its pid.
start_component() {
    local line
    line=$("$LOADGEN" startup --url "$2" --timeout 60s --log "$WORK/$1.log" -- "$BIN" "$3")
    echo "${line#* }"
}

# The gateway as its own process (`pedidos-veloz gateway`, as deployed on Kubernetes), in
# front of the all-in-one process's estoque-service, as nginx is: the like-for-like
# proxy comparison. Its log level is LOG_LEVEL's.
start_split_gateway() {
    SPLIT_PID=$(PORT=$SPLIT ESTOQUE_SERVICE_URL="http://127.0.0.1:$INV" PEDIDOS_SERVICE_URL="http://127.0.0.1:$ORD" \
        PAGAMENTOS_SERVICE_URL="http://127.0.0.1:$PAY" start_component gateway "http://127.0.0.1:$SPLIT/readyz" gateway)
}

stop_split_gateway() {
    [ -n "$SPLIT_PID" ] && stop_pid "$SPLIT_PID"
    SPLIT_PID=""
}

# The four components as four processes on the PostgreSQL databases of the all-in-one
# process (ports FOUR..FOUR+3), as Kubernetes runs them. FOUR_PROCS: name:pid,...
start_four() {
    local inv pay ord gw base=http://127.0.0.1
    inv=$(PORT=$((FOUR + 3)) DATABASE_URL=$PG/pv_bench_estoque start_component four-estoque "$base:$((FOUR + 3))/readyz" inventory)
    pay=$(PORT=$((FOUR + 2)) DATABASE_URL=$PG/pv_bench_pagamentos start_component four-pagamentos "$base:$((FOUR + 2))/readyz" payments)
    ord=$(PORT=$((FOUR + 1)) DATABASE_URL=$PG/pv_bench_pedidos ESTOQUE_SERVICE_URL="$base:$((FOUR + 3))" \
        PAGAMENTOS_SERVICE_URL="$base:$((FOUR + 2))" start_component four-pedidos "$base:$((FOUR + 1))/readyz" orders)
    gw=$(PORT=$FOUR ESTOQUE_SERVICE_URL="$base:$((FOUR + 3))" PEDIDOS_SERVICE_URL="$base:$((FOUR + 1))" \
        PAGAMENTOS_SERVICE_URL="$base:$((FOUR + 2))" start_component four-gateway "$base:$FOUR/readyz" gateway)
    FOUR_PIDS="$gw $ord $pay $inv"
    FOUR_PROCS="gateway:$gw,pedidos:$ord,pagamentos:$pay,estoque:$inv"
    echo "   four processes: $FOUR_PROCS"
}

stop_four() {
    local pid
    for pid in $FOUR_PIDS; do stop_pid "$pid"; done
    FOUR_PIDS=""
}

# start_nginx <on|off>: nginx in front of estoque-service, with its default access log
# (combined format, one write per request) or none.
start_nginx() {
    mkdir -p "$WORK/nginx/tmp"
    local access="access_log off;"
    [ "$1" = on ] && access="access_log $WORK/nginx/access.log combined;"
    sed -e "s/ESTOQUE_PORT/$INV/" -e "s/NGINX_PORT/$NGX/" -e "s#access_log off;#$access#" bench/nginx.conf > "$WORK/nginx/nginx.conf"
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/err.log" &
    NGINX_PID=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NGX/items" && break; sleep 0.05; done
}

# nginx_procs: nginx's worker processes as name:pid,... (for lg_cpu)
nginx_procs() {
    pgrep -P "$NGINX_PID" | awk '{printf "%snginx-%d:%s", (NR > 1 ? "," : ""), NR, $1}'
}

stop_nginx() {
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}

# ---- load -------------------------------------------------------------------------------
# At info every request writes a line per component it crosses (~10 MB/s at full load):
# the logs of the last measurement are kept, no more (every writer appends, so
# truncating under a running process is safe).
truncate_logs() {
    local f
    for f in "$WORK"/*.log "$WORK"/nginx/access.log; do
        [ -f "$f" ] && : > "$f"
    done
    return 0
}

# lg <file> <args...>: one loadgen run, JSON to $OUT/<file>.json
lg() {
    local name=$1; shift
    truncate_logs
    "$LOADGEN" run --duration "$DUR" --warmup "$WARM" --json "$OUT/$name.json" --label "$name" "$@" | sed 's/^/   /'
}

# cpu_ticks <pid>: user + system CPU time of a process so far, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# lg_cpu <file> <name:pid,...> <args...>: a warm-up run, then the measured one (JSON as lg)
# with each process's CPU time per answered request, and their sum, added to its report
# (the load generator runs in its own process and is not counted).
lg_cpu() {
    local name=$1 procs=$2 before="" after="" p; shift 2
    truncate_logs
    "$LOADGEN" run --duration "$WARM" --warmup 0s "$@" > /dev/null
    for p in ${procs//,/ }; do before="$before ${p%%:*}:$(cpu_ticks "${p#*:}")"; done
    "$LOADGEN" run --duration "$DUR" --warmup 0s --json "$OUT/$name.json" --label "$name" "$@" | sed 's/^/   /'
    for p in ${procs//,/ }; do after="$after ${p%%:*}:$(cpu_ticks "${p#*:}")"; done
    python3 - "$OUT/$name.json" "$(getconf CLK_TCK)" "$before" "$after" <<'PY'
import json, sys
path, hz = sys.argv[1], int(sys.argv[2])
ticks = lambda s: {k: int(v) for k, v in (p.split(":") for p in s.split())}
before, after = ticks(sys.argv[3]), ticks(sys.argv[4])
d = json.load(open(path))
answered = sum(d["report"]["by_status"].values())
per = {k: (after[k] - before[k]) / hz * 1e6 / answered if answered else None for k in after}
d["report"]["cpu_us_per_request"] = sum(v for v in per.values() if v is not None) if answered else None
d["report"]["cpu_us_per_request_by_process"] = per
json.dump(d, open(path, "w"), indent=2)
print("   cpu: %.0f us per request (%s; %d answers)" % (
    d["report"]["cpu_us_per_request"] or 0, ", ".join("%s %.0f" % (k, v or 0) for k, v in per.items()), answered))
PY
}

# median_rps <point>: the median req/s of a point's runs so far (for the open-model rates)
median_rps() {
    python3 - "$OUT" "$1" <<'PY'
import glob, json, statistics, sys
rps = [json.load(open(f))["report"]["rps"] for f in glob.glob(f"{sys.argv[1]}/{sys.argv[2]}-r*.json")]
print(round(statistics.median(rps)) if rps else 0)
PY
}

# lg_open <file> <rate> <args...>: open load at a fixed arrival rate (latency from the
# scheduled send time: no coordinated omission), for OPEN_DUR.
lg_open() {
    local name=$1 rate=$2; shift 2
    truncate_logs
    "$LOADGEN" run --rate "$rate" --duration "$OPEN_DUR" --warmup "$WARM" --json "$OUT/$name.json" --label "$name" "$@" | sed 's/^/   /'
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
    truncate_logs
    txt=$(wrk -t 2 -c "$c" -d "$DUR_S" --latency "$url" 2>&1)
    echo "$txt" | awk -v name="$name" -v c="$c" '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        /Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = ms($2) } /^ +90%/ { p90 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Non-2xx/ { non2xx = $NF }
        END { printf "{\"label\": \"%s\", \"tool\": \"wrk\", \"concurrency\": %d, \"report\": {\"rps\": %s, \"p50_ms\": %s, \"p90_ms\": %s, \"p99_ms\": %s, \"non_2xx\": %d}}\n", name, c, rps, p50, p90, p99, non2xx+0 }' > "$OUT/$name.json"
    echo "   wrk $name: $(grep -o '"rps": [0-9.]*' "$OUT/$name.json") p99 $(grep -o '"p99_ms": [0-9.]*' "$OUT/$name.json" | cut -d' ' -f2) ms"
}

# ---- data -------------------------------------------------------------------------------
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

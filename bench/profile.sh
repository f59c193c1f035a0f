#!/usr/bin/env bash
# Where an order's time goes: POST /orders through the gateway on PostgreSQL, one hot
# item, 64 clients, while
#   * every component's /metrics gives the server-side time per route (gateway total,
#     pedidos, estoque reserve and commit, pagamentos charge) and the DB pool waits;
#   * `perf record -a -e cpu-clock` samples the whole machine (hardware counters are
#     not available on this VM: `perf stat -e instructions true` says <not supported>),
#     split by process and by symbol;
#   * pg_stat_statements-free: PostgreSQL's own share shows in the perf split.
# Usage: bench/profile.sh  (writes bench/results/profile-*.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/results
mkdir -p "$OUT"
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BASE_PORT=${BASE_PORT:-26000}
GW=$BASE_PORT; ORD=$((BASE_PORT + 1)); PAY=$((BASE_PORT + 2)); INV=$((BASE_PORT + 3))
CLIENTS=${CLIENTS:-64}
SECS=${SECS:-10}
WORK=$(mktemp -d /tmp/pv-profile.XXXXXX)
BIN=${PV_BIN:-$ROOT/target/release/pedidos-veloz}
LOADGEN=$ROOT/target/release/loadgen
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || cargo build --release -q -p pedidos-veloz -p loadgen

for db in pv_prof_estoque pv_prof_pagamentos pv_prof_pedidos; do
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
done
export BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn GATEWAY_PORT=$GW PEDIDOS_PORT=$ORD PAGAMENTOS_PORT=$PAY ESTOQUE_PORT=$INV
export PAYMENT_LATENCY_MS=0 PAYMENT_DECLINE_RATE=0 SHUTDOWN_GRACE_SECONDS=2 RATE_LIMIT_PER_ADDRESS=0
export ESTOQUE_DATABASE_URL=$PG/pv_prof_estoque PAGAMENTOS_DATABASE_URL=$PG/pv_prof_pagamentos PEDIDOS_DATABASE_URL=$PG/pv_prof_pedidos
line=$("$LOADGEN" startup --url "http://127.0.0.1:$GW/readyz" --log "$WORK/platform.log" -- "$BIN")
PID=${line#* }
HOT=$("$LOADGEN" seed --url "http://127.0.0.1:$GW" --items 10 --stock 1000000000 | cut -d, -f1)

# Warm up, then reset nothing: metrics are taken as a difference before/after.
"$LOADGEN" run --url "http://127.0.0.1:$GW" --scenario order-hot --item "$HOT" -c "$CLIENTS" --duration 3s --warmup 0s >/dev/null
for p in $GW $ORD $PAY $INV; do curl -s "http://127.0.0.1:$p/metrics" > "$WORK/before-$p.txt"; done
"$LOADGEN" run --url "http://127.0.0.1:$GW" --scenario order-hot --item "$HOT" -c "$CLIENTS" \
    --duration "$((SECS + 2))s" --warmup 0s --json "$OUT/profile-loadgen.json" > "$WORK/loadgen.txt" &
LG=$!
sleep 1
perf record -q -a -e cpu-clock -F 499 -o "$WORK/perf.data" -- sleep "$SECS" 2>/dev/null
wait $LG
for p in $GW $ORD $PAY $INV; do curl -s "http://127.0.0.1:$p/metrics" > "$WORK/after-$p.txt"; done

set +o pipefail
{
    echo "# POST /orders, PostgreSQL, one hot item, $CLIENTS clients, $(date -u +%FT%TZ), $(git rev-parse --short HEAD)"
    cat "$WORK/loadgen.txt"
    echo
    echo "## Server-side time per route during the run (mean = d(sum)/d(count))"
    python3 - "$WORK" "$GW" "$ORD" "$PAY" "$INV" <<'PY'
import re, sys
work, ports = sys.argv[1], sys.argv[2:]
names = dict(zip(ports, ["gateway", "pedidos", "pagamentos", "estoque"]))
def parse(path):
    out = {}
    for line in open(path):
        m = re.match(r'^(http_request_duration_seconds|db_pool_acquire_duration_seconds)_(sum|count)(?:\{(.*)\})? ([0-9.e+-]+)$', line.strip())
        if m:
            out[(m.group(1), m.group(3), m.group(2))] = float(m.group(4))
    return out
for p in ports:
    a, b = parse(f"{work}/after-{p}.txt"), parse(f"{work}/before-{p}.txt")
    for (metric, labels, kind), v in sorted(a.items()):
        if kind != "count":
            continue
        n = v - b.get((metric, labels, "count"), 0)
        s = a.get((metric, labels, "sum"), 0) - b.get((metric, labels, "sum"), 0)
        if n > 0 and ("POST" in labels or metric.startswith("db_pool")):
            print(f"{names[p]:<11} {metric:<34} {labels[:80]:<80} n={n:>7.0f} mean={s / n * 1000:8.3f} ms")
PY
    echo
    echo "## CPU by process (perf cpu-clock, whole machine)"
    perf report -i "$WORK/perf.data" --stdio --sort comm 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
    echo
    echo "## pedidos-veloz (its tokio-rt-worker threads): top symbols"
    perf report -i "$WORK/perf.data" --stdio --comm tokio-rt-worker --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45
    echo
    echo "## pedidos-veloz: by thread"
    perf report -i "$WORK/perf.data" --stdio --sort comm,pid 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
    echo
    echo "## postgres: top symbols"
    perf report -i "$WORK/perf.data" --stdio --comm postgres --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
} > "$OUT/profile-pg-hot-c$CLIENTS.txt"
cat "$OUT/profile-pg-hot-c$CLIENTS.txt"

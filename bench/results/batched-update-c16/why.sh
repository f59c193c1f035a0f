#!/usr/bin/env bash
# Why the batched final update (0572d65) lost at 16 clients: its build and its parent
# (b127c6f) alternately, POST /orders hot item at 16 clients on PostgreSQL, bare config;
# per route server time from /metrics, pedidos' order_save_batch_size, and
# pg_stat_statements of pedidos' database (calls, plans, mean plan/exec time).
set -euo pipefail
cd /work/main
PG=postgres://postgres@127.0.0.1:5432
BASE_PORT=27100; GW=$BASE_PORT; ORD=$((BASE_PORT + 1)); PAY=$((BASE_PORT + 2)); INV=$((BASE_PORT + 3))
LOADGEN=/work/main/target/release/loadgen
CLIENTS=${CLIENTS:-16}; SECS=${SECS:-10}
OUT=/tmp/why; mkdir -p $OUT
psql -q "$PG/postgres" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
for round in 1 2; do
for build in b127 0572; do
    tag=$build-c$CLIENTS-r$round
    for db in pv_why_estoque pv_why_pagamentos pv_why_pedidos; do
        psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    done
    export BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn GATEWAY_PORT=$GW PEDIDOS_PORT=$ORD PAGAMENTOS_PORT=$PAY ESTOQUE_PORT=$INV
    export PAYMENT_LATENCY_MS=0 PAYMENT_DECLINE_RATE=0 SHUTDOWN_GRACE_SECONDS=2 RATE_LIMIT_PER_ADDRESS=0
    export ESTOQUE_DATABASE_URL=$PG/pv_why_estoque PAGAMENTOS_DATABASE_URL=$PG/pv_why_pagamentos PEDIDOS_DATABASE_URL=$PG/pv_why_pedidos
    line=$("$LOADGEN" startup --url "http://127.0.0.1:$GW/readyz" --log "$OUT/platform-$tag.log" -- /tmp/pv-$build)
    PID=${line#* }
    HOT=$("$LOADGEN" seed --url "http://127.0.0.1:$GW" --items 10 --stock 1000000000 | cut -d, -f1)
    "$LOADGEN" run --url "http://127.0.0.1:$GW" --scenario order-hot --item "$HOT" -c "$CLIENTS" --duration 3s --warmup 0s >/dev/null
    psql -q "$PG/postgres" -c "SELECT pg_stat_statements_reset()" >/dev/null
    for p in $GW $ORD $PAY $INV; do curl -s "http://127.0.0.1:$p/metrics" > "$OUT/before-$tag-$p.txt"; done
    "$LOADGEN" run --url "http://127.0.0.1:$GW" --scenario order-hot --item "$HOT" -c "$CLIENTS" --duration "${SECS}s" --warmup 0s > "$OUT/loadgen-$tag.txt"
    for p in $GW $ORD $PAY $INV; do curl -s "http://127.0.0.1:$p/metrics" > "$OUT/after-$tag-$p.txt"; done
    psql "$PG/postgres" -c "SELECT d.datname AS db, s.calls, s.plans, round(s.mean_plan_time::numeric, 3) AS plan_ms, round(s.mean_exec_time::numeric, 3) AS exec_ms, round((s.total_exec_time + s.total_plan_time)::numeric / $SECS, 1) AS ms_per_s, s.rows, left(regexp_replace(s.query, '\s+', ' ', 'g'), 90) AS query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname LIKE 'pv_why_%' ORDER BY d.datname, s.total_exec_time DESC" > "$OUT/pgss-$tag.txt"
    kill $PID; while kill -0 $PID 2>/dev/null; do sleep 0.05; done
    echo "== $tag: $(grep throughput "$OUT/loadgen-$tag.txt") $(grep 'latency ms' "$OUT/loadgen-$tag.txt")"
    python3 - "$OUT" "$tag" "$GW" "$ORD" "$PAY" "$INV" <<'PY'
import re, sys
out, tag, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
names = dict(zip(ports, ["gateway", "pedidos", "pagamentos", "estoque"]))
def parse(path):
    d = {}
    for line in open(path):
        m = re.match(r'^([a-z_]+)_(sum|count)(?:\{(.*)\})? ([0-9.e+-]+)$', line.strip())
        if m and (m.group(1).startswith(("http_request_duration", "db_pool_acquire", "order_save_batch", "reservation_batch", "payment_batch")) or "batch" in m.group(1)):
            d[(m.group(1), m.group(3) or "", m.group(2))] = float(m.group(4))
    return d
for p in ports:
    a, b = parse(f"{out}/after-{tag}-{p}.txt"), parse(f"{out}/before-{tag}-{p}.txt")
    for (metric, labels, kind), v in sorted(a.items()):
        if kind != "count": continue
        n = v - b.get((metric, labels, "count"), 0)
        s = a.get((metric, labels, "sum"), 0) - b.get((metric, labels, "sum"), 0)
        if n > 0 and ("POST" in labels or not metric.startswith("http")):
            unit = "" if "size" in metric else " ms"
            mean = s / n if "size" in metric else s / n * 1000
            print(f"   {names[p]:<10} {metric:<36} {labels[:70]:<70} n={n:>7.0f} mean={mean:8.3f}{unit}")
PY
    grep pv_why_pedidos "$OUT/pgss-$tag.txt" | head -8
done
done

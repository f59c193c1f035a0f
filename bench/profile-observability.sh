#!/usr/bin/env bash
# Where the request log and the span cost: the all-in-one process on SQLite, GET
# /items/{id} through the gateway at 64 clients, sampled with `perf record -e
# cpu-clock` (this VM has no hardware counters) at LOG_LEVEL=info and at warn, and the
# samples summed by kind (log formatting and tracing, allocator, kernel scheduling,
# kernel network, the rest).
# Usage: bench/profile-observability.sh  (writes bench/results/observability/profile-*.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/results/observability
mkdir -p "$OUT"
BASE_PORT=${BASE_PORT:-27000}
SECS=${SECS:-10}
BIN=${PV_BIN:-$ROOT/target/release/pedidos-veloz}
LOADGEN=$ROOT/target/release/loadgen
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || cargo build --release -q -p pedidos-veloz -p loadgen
command -v perf > /dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf > /dev/null; }
WORK=$(mktemp -d /tmp/pv-profile-obs.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

for level in info warn; do
    export BIND_ADDRESS=127.0.0.1 LOG_FORMAT=json LOG_LEVEL=$level PAYMENT_DECLINE_RATE=0 RATE_LIMIT_PER_ADDRESS=0
    export GATEWAY_PORT=$BASE_PORT PEDIDOS_PORT=$((BASE_PORT + 1)) PAGAMENTOS_PORT=$((BASE_PORT + 2))
    export ESTOQUE_PORT=$((BASE_PORT + 3)) PEDIDOS_DATA_DIR=$WORK/data-$level
    url=http://127.0.0.1:$BASE_PORT
    line=$("$LOADGEN" startup --url "$url/readyz" --timeout 60s --log "$WORK/platform-$level.log" -- "$BIN")
    PID=${line#* }
    ids=$("$LOADGEN" seed --url "$url" --items 14 --stock 1000000)
    hot=${ids%%,*}
    "$LOADGEN" run --url "$url" --scenario get --path "/items/$hot" -c 64 -d 3s -w 0s > /dev/null
    "$LOADGEN" run --url "$url" --scenario get --path "/items/$hot" -c 64 -d "$((SECS + 2))s" -w 0s > "$WORK/load-$level.txt" &
    sleep 1
    perf record -e cpu-clock -F 997 -p "$PID" -o "$WORK/perf-$level.data" -- sleep "$SECS" 2> /dev/null
    wait
    kill "$PID"
    while kill -0 "$PID" 2> /dev/null; do sleep 0.05; done
    PID=""
    perf report -i "$WORK/perf-$level.data" --no-children --sort symbol --stdio 2> /dev/null \
        | grep -v '^#' | grep -v '^$' | sed 's/  \+/ /g' > "$WORK/flat-$level.txt"
    {
        echo "LOG_LEVEL=$level, GET /items/$hot, 64 clients, perf on the platform for ${SECS}s"
        grep -E 'throughput' "$WORK/load-$level.txt"
        python3 - "$WORK/flat-$level.txt" <<'PY'
import re, sys
kinds = {
    "log formatting and tracing": r"tracing|serde_json|core::fmt|fmt::|from_utf8|sharded|Registry|format_escaped|itoa|ryu|opentelemetry",
    "writes (kernel)": r"ksys_write|vfs_write|ext4_|file_write|generic_perform_write|iomap|pipe_write",
    "allocator (mimalloc)": r"\bmi_|_mi_",
    "kernel scheduling": r"finish_task_switch|_raw_spin_unlock_irqrestore|schedule|futex",
    "kernel network": r"tcp_|inet|nf_|skb|ip_|__dev|loopback|netif|sock",
}
share = {k: 0.0 for k in kinds}
rest = 0.0
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    for k, pattern in kinds.items():
        if re.search(pattern, m.group(3)):
            share[k] += float(m.group(1))
            break
    else:
        rest += float(m.group(1))
for k, v in share.items():
    print(f"  {k:28s} {v:5.1f} % of the samples")
print(f"  {'the rest':28s} {rest:5.1f} %")
PY
        echo "top symbols:"
        head -n 25 "$WORK/flat-$level.txt" | cut -c1-120
    } > "$OUT/profile-$level.txt"
    head -n 9 "$OUT/profile-$level.txt"
done

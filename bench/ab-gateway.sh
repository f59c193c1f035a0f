#!/usr/bin/env bash
# The gateway as its own process in several variants against nginx, interleaved: each
# round measures every variant, then nginx, in front of the same estoque-service (the
# all-in-one process on SQLite), GET /items/{id} at 64 clients with loadgen (with the
# proxy's CPU time per request) and wrk. A variant is a name and the environment its
# gateway process runs with (PV_BIN=… picks another build):
#
#     VARIANTS="base=;threads3=TOKIO_WORKER_THREADS=3" bench/ab-gateway.sh
#
# Settings: VARIANTS, ROUNDS (2), LOGS (off: LOG_LEVEL=warn and nginx's access_log off;
# on: info and nginx's default access log), DUR (8s), WARM (2s), BASE_PORT (26000).
# Writes bench/results/ab-gateway/*.json and prints each variant's ratios to nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/results/ab-gateway
VARIANTS=${VARIANTS:-base=}
ROUNDS=${ROUNDS:-2}
LOGS=${LOGS:-off}
DUR=${DUR:-8s}; WARM=${WARM:-2s}; DUR_S=${DUR%s}
BASE_PORT=${BASE_PORT:-26000}
GW=$BASE_PORT; ORD=$((BASE_PORT + 1)); PAY=$((BASE_PORT + 2)); INV=$((BASE_PORT + 3))
SPLIT=$((BASE_PORT + 10)); NGX=$((BASE_PORT + 80)); CATALOGUE=14
WORK=$(mktemp -d /tmp/pv-ab-gateway.XXXXXX)
DEFAULT_BIN=${PV_BIN:-$ROOT/target/release/pedidos-veloz}
BIN=$DEFAULT_BIN
LOADGEN=$ROOT/target/release/loadgen
PLATFORM_PID="" NGINX_PID="" SPLIT_PID="" SINK_PID="" FOUR_PIDS=""
# shellcheck source=bench/lib.sh
. bench/lib.sh
trap cleanup EXIT
install_tools
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || cargo build --release -q -p pedidos-veloz -p loadgen
mkdir -p "$OUT"
rm -f "$OUT"/*.json

platform_env sqlite
if [ "$LOGS" = on ]; then obs_env defaults; else obs_env bare; fi
start_platform ab
seed_catalogue
start_nginx "$LOGS"
IFS=';' read -r -a variants <<< "$VARIANTS"
for r in $(seq "$ROUNDS"); do
    for v in "${variants[@]}"; do
        name=${v%%=*}
        log "round $r: gateway $name (${v#*=}), logs $LOGS"
        # The variant's environment applies to its gateway process only.
        SPLIT_PID=$(
            settings=${v#*=}
            # shellcheck disable=SC2086 # the settings are words: A=1 B=2
            [ -z "$settings" ] || export $settings
            BIN=${PV_BIN:-$DEFAULT_BIN}
            start_split_gateway
            echo "$SPLIT_PID"
        )
        lg_cpu "$name-r$r" "gateway:$SPLIT_PID" --url "http://127.0.0.1:$SPLIT" --scenario get --path "/items/$HOT" -c 64
        wrkr "wrk-$name-r$r" "http://127.0.0.1:$SPLIT/items/$HOT" 64
        stop_split_gateway
    done
    log "round $r: nginx, logs $LOGS"
    lg_cpu "nginx-r$r" "$(nginx_procs)" --url "http://127.0.0.1:$NGX" --scenario get --path "/items/$HOT" -c 64
    wrkr "wrk-nginx-r$r" "http://127.0.0.1:$NGX/items/$HOT" 64
done
stop_nginx
stop_platform

python3 - "$OUT" "$ROUNDS" "${variants[@]%%=*}" <<'PY'
import json, statistics, sys
out, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
load = lambda n: json.load(open(f"{out}/{n}.json"))["report"]
print(f"\n{'variant':<14} {'loadgen req/s':>14} {'/ nginx':>8} {'wrk req/s':>10} {'/ nginx':>8} {'CPU us/req':>11}")
for name in names + ["nginx"]:
    lg = [load(f"{name}-r{r}") for r in range(1, rounds + 1)]
    wk = [load(f"wrk-{name}-r{r}") for r in range(1, rounds + 1)]
    ng = [load(f"nginx-r{r}") for r in range(1, rounds + 1)]
    nw = [load(f"wrk-nginx-r{r}") for r in range(1, rounds + 1)]
    med = lambda xs: statistics.median(xs)
    print(f"{name:<14} {med([x['rps'] for x in lg]):>14,.0f} {med([a['rps'] / b['rps'] for a, b in zip(lg, ng)]):>8.2f}"
          f" {med([x['rps'] for x in wk]):>10,.0f} {med([a['rps'] / b['rps'] for a, b in zip(wk, nw)]):>8.2f}"
          f" {med([x['cpu_us_per_request'] for x in lg]):>11.1f}")
PY

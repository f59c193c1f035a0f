#!/usr/bin/env bash
# all-in-one on SQLite, logs at info, GET /items/{id} and POST /orders spread at 64 clients, builds alternating; CPU us per request
set -euo pipefail
L=/work/main/target/release/loadgen
export BIND_ADDRESS=127.0.0.1 LOG_FORMAT=json LOG_LEVEL=info GATEWAY_PORT=27200 PEDIDOS_PORT=27201 PAGAMENTOS_PORT=27202 ESTOQUE_PORT=27203 RATE_LIMIT_PER_ADDRESS=0 PAYMENT_DECLINE_RATE=0.1 PAYMENT_LATENCY_MS=0
W=/tmp/abobs; rm -rf $W; mkdir -p $W
for r in 1 2 3; do for b in $BUILDS; do
  export PEDIDOS_DATA_DIR=$W/data-$b
  line=$($L startup --url http://127.0.0.1:27200/readyz --log $W/p-$b.log -- /tmp/pv-$b); PID=${line#* }
  [ -f $W/ids-$b ] || $L seed --url http://127.0.0.1:27200 --items 100 --stock 1000000000 > $W/ids-$b
  IDS=$(cat $W/ids-$b)
  for sc in get order; do
    if [ $sc = get ]; then args="--scenario get --path /items/1"; else args="--scenario order-spread --items $IDS"; fi
    $L run --url http://127.0.0.1:27200 $args -c 64 -d 2s -w 0s >/dev/null
    : > $W/p-$b.log
    t0=$(awk '{print $14+$15}' /proc/$PID/stat)
    out=$($L run --url http://127.0.0.1:27200 $args -c 64 -d 8s -w 0s)
    t1=$(awk '{print $14+$15}' /proc/$PID/stat)
    n=$(echo "$out" | awk '/answered/ {print $2}'); rps=$(echo "$out" | awk '/throughput/ {print $2}')
    echo "r$r $b $sc rps $rps cpu_us $(python3 -c "print(round(($t1-$t0)/100*1e6/$n,1))")"
  done
  kill $PID; while kill -0 $PID 2>/dev/null; do sleep 0.05; done
done; done

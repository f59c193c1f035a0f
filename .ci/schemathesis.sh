#!/usr/bin/env bash
# Hostile input against the running platform: schemathesis (pinned) generates valid
# and invalid requests from the gateway's /openapi.json and checks every answer with
# its default checks: no 5xx, documented status codes and content types, bodies that
# match the documented schemas, invalid data rejected, created resources fetchable.
# One check is left out, positive_data_acceptance ("schema-valid data accepted"): JSON
# Schema counts 1.0 as an integer while the API answers 400 to a float where an integer
# is due (SPEC section 2: wrong types are a 400), the seed's declined payment is a 422,
# and the stateful phase sends ids such as "None" taken from null fields.
#
#   .ci/schemathesis.sh [path/to/pedidos-veloz]      (default target/debug/pedidos-veloz)
#
# Builds nothing. Starts the all-in-one platform on a fresh SQLite folder, runs
# schemathesis for at most ST_MAX_TIME seconds (default 180) with at most
# ST_MAX_EXAMPLES cases per operation (default 60), stops the platform, and exits
# non-zero if schemathesis found a failure. PV_ST_PORT_BASE (default 5000) moves the
# four ports (base .. base+3). Reports (JUnit) land in ${ST_REPORT_DIR:-target/schemathesis}.
set -euo pipefail

BIN=$(realpath "${1:-target/debug/pedidos-veloz}")
CONFIG=$(realpath "$(dirname "$0")/schemathesis.toml")
VERSION=4.32.5
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/pv-ci-venv/schemathesis
BASE=${PV_ST_PORT_BASE:-5000}
MAX_TIME=${ST_MAX_TIME:-180}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-60}
REPORT_DIR=${ST_REPORT_DIR:-target/schemathesis}

[ -x "$BIN" ] || { echo "no binary at $BIN (build it first: cargo build)" >&2; exit 2; }
# CPython 3.11 can crash inside hypothesis ("AST constructor recursion depth
# mismatch", fixed in later releases): prefer a newer interpreter when there is one.
PY=""
for candidate in ${ST_PYTHON:-} python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3 python3; do
    if "$candidate" -c 'import venv' >/dev/null 2>&1; then PY=$candidate; break; fi
done
[ -n "$PY" ] || { echo "no python3 found" >&2; exit 2; }
want=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
have=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ "$want" != "$have" ] || ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "installing schemathesis $VERSION into $VENV (Python $want)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi

DATA=$(mktemp -d)
mkdir -p "$REPORT_DIR"
REPORT_DIR=$(realpath "$REPORT_DIR")
# Rate limiting off: schemathesis sends bursts from one address (the limiter has its
# own tests). No simulated declines: a decline is a 422 (seed behaviour), which
# schemathesis would count as valid data rejected; .ci/schemathesis.toml explains the
# one other exception.
PEDIDOS_DATA_DIR="$DATA" LOG_LEVEL=warn RATE_LIMIT_PER_ADDRESS=0 RATE_LIMIT_PER_KEY=0 PAYMENT_DECLINE_RATE=0 \
    GATEWAY_PORT=$BASE PEDIDOS_PORT=$((BASE + 1)) PAGAMENTOS_PORT=$((BASE + 2)) ESTOQUE_PORT=$((BASE + 3)) \
    BIND_ADDRESS=127.0.0.1 "$BIN" >"$DATA/platform.log" 2>&1 &
PID=$!
stop() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rm -rf "$DATA"
}
trap stop EXIT

for _ in $(seq 1 100); do
    "$BIN" healthcheck --url "http://127.0.0.1:$BASE/readyz" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { echo "the platform exited:" >&2; cat "$DATA/platform.log" >&2; exit 1; }
    sleep 0.2
done

# From the temporary folder: schemathesis keeps its state in ./.schemathesis.
cd "$DATA"
run_schemathesis() {
"$VENV/bin/st" --config-file "$CONFIG" run "http://127.0.0.1:$BASE/openapi.json" \
    --url "http://127.0.0.1:$BASE" \
    --max-time "$MAX_TIME" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 2 \
    --seed "${ST_SEED:-20261129}" \
    --generation-database none \
    --request-timeout 10 \
    --exclude-checks positive_data_acceptance \
    --no-color \
    --report junit --report-junit-path "$REPORT_DIR/junit.xml"
}
status=0
run_schemathesis || status=$?
# A crash of the tool itself (an error, no failure of the API) is retried once.
if [ "$status" -ne 0 ] && grep -q '<testsuites errors="[1-9][0-9]*" failures="0"' "$REPORT_DIR/junit.xml" 2>/dev/null; then
    echo "schemathesis reported tool errors and no failures: running it once more" >&2
    status=0
    run_schemathesis || status=$?
fi
if [ "$status" -ne 0 ]; then
    echo "schemathesis found failures (exit $status); platform log tail:" >&2
    tail -n 20 "$DATA/platform.log" >&2 || true
fi
exit "$status"

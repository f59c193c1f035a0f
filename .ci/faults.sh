#!/usr/bin/env bash
# Fault injection under load (crates/pedidos-veloz/tests/platform/faults.rs and
# faults/): the components as separate processes on PostgreSQL, orders (and reads) at
# fixed rates, one fault per scenario, then the invariants of SPEC section 5:
#   - SIGKILL of payments / orders / inventory, PostgreSQL restart, payments slower
#     than the saga's timeout, SIGTERM of each component (faults.rs);
#   - rolling update (SIGTERM, SIGKILL) of two replicas of everything, scale out/in
#     (faults/rolling.rs); the all-in-one SQLite process killed (faults/durability.rs);
#   - the network between processes on test hosts (network namespaces, nftables):
#     latency and loss, partitions, a silent link (faults/network.rs);
#   - database pressure: connections exhausted, a row lock, a table lock
#     (faults/database.rs);
#   - a short chaos soak of all of them on a seeded schedule (faults/soak.rs;
#     PV_SOAK_MINUTES, default 3).
# Prints one "FAULT ..." row per scenario and the table of them at the end; fails on
# any violation, and if fewer scenarios passed than the suite has.
#
#   PV_TEST_POSTGRES_URL   admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
#   PV_TEST_POSTGRES_RESTART  command that restarts PostgreSQL
#                          (default: pg_ctlcluster --skip-systemctl-redirect 15 main restart)
#
# The PostgreSQL scenario restarts the whole server: do not point it at a shared one.
# Needs root: the network scenarios make network namespaces and nftables rules (only
# their own, on addresses they choose; see tests/platform/harness/hosts.rs).
# Arguments are ignored (.ci/run passes the binary path; the test builds its own).
set -euo pipefail
cd "$(dirname "$0")/.."
export PV_TEST_POSTGRES_URL=${PV_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
fail() { printf '[FAIL] %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "the network scenarios need root (network namespaces, nftables)"
if ! command -v nft > /dev/null || ! command -v ip > /dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables iproute2 > /dev/null
fi
command -v nft > /dev/null || fail "nft (Debian's nftables) is not installed"

sources=(crates/pedidos-veloz/tests/platform/faults.rs crates/pedidos-veloz/tests/platform/faults/*.rs)
expected=$(cat "${sources[@]}" | grep -c '^#\[ignore = "fault injection')
log=$(mktemp)
set +e
timeout 1800 cargo test -p pedidos-veloz --test platform faults:: -- --ignored --nocapture --test-threads=1 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "the fault suite failed (exit $rc)"
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log" | tail -n 1)
[ "${passed:-0}" -ge "$expected" ] || fail "${passed:-0} fault scenarios passed, the suite has $expected: some did not run"
printf '\n%s fault scenarios passed:\n' "$passed"
grep -o 'FAULT .*' "$log"

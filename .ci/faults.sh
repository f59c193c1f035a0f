#!/usr/bin/env bash
# Fault injection under load (crates/pedidos-veloz/tests/platform/faults.rs): the
# components as separate processes on PostgreSQL, orders at a steady rate, one fault per
# scenario (SIGKILL of payments / orders / inventory, PostgreSQL restart, payments slower
# than the saga's timeout, SIGTERM of each component), then the invariants of SPEC
# section 5. Prints one "FAULT ..." line per scenario; fails on any violation. About two
# minutes after the build.
#
#   PV_TEST_POSTGRES_URL   admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
#   PV_TEST_POSTGRES_RESTART  command that restarts PostgreSQL
#                          (default: pg_ctlcluster --skip-systemctl-redirect 15 main restart)
#
# The PostgreSQL scenario restarts the whole server: do not point it at a shared one.
# Arguments are ignored (.ci/run passes the binary path; the test builds its own).
set -euo pipefail
cd "$(dirname "$0")/.."
export PV_TEST_POSTGRES_URL=${PV_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
exec timeout 1800 cargo test -p pedidos-veloz --test platform faults:: -- --ignored --nocapture --test-threads=1

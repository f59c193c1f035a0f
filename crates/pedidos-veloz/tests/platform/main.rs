//! End-to-end tests of the whole platform over HTTP, each on SQLite and on PostgreSQL,
//! and the fault-injection scenarios (`faults`, ignored by default).

pub mod harness;

mod api;
mod fault_switches;
mod faults;
mod gateway;
mod hostile;
mod monitoring;
mod saga;
mod scenarios;
mod traces;

/// CI sets `PV_REQUIRE_POSTGRES=1`: there, tests built without `PV_TEST_POSTGRES_URL`
/// (whose PostgreSQL variants are ignored) are a failure, not a quieter run.
#[test]
fn postgres_variants_are_built_when_required() {
    let required = std::env::var("PV_REQUIRE_POSTGRES").as_deref() == Ok("1");
    assert!(
        cfg!(pv_postgres) || !required,
        "PV_REQUIRE_POSTGRES=1 but these tests were built without PV_TEST_POSTGRES_URL: \
         the PostgreSQL variants are ignored; set it for the build and the run"
    );
}

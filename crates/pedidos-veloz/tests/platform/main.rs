//! End-to-end tests of the whole platform over HTTP, each on SQLite and on PostgreSQL,
//! the web console in a real browser (`browser`, ignored without chromedriver), and the
//! fault-injection scenarios (`faults`, ignored by default).

pub mod harness;

mod api;
mod browser;
mod fault_switches;
mod faults;
mod gateway;
mod hostile;
mod identity;
mod logs;
mod monitoring;
mod oidc;
mod saga;
mod scenarios;
mod tokens;
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

/// CI sets `PV_REQUIRE_BROWSER=1`: there, tests built without `PV_TEST_CHROMEDRIVER`
/// (whose browser tests are ignored) are a failure.
#[test]
fn browser_tests_are_built_when_required() {
    let required = std::env::var("PV_REQUIRE_BROWSER").as_deref() == Ok("1");
    assert!(
        cfg!(pv_browser) || !required,
        "PV_REQUIRE_BROWSER=1 but these tests were built without PV_TEST_CHROMEDRIVER: \
         the browser tests are ignored; set it (the chromedriver binary) for the build and the run"
    );
}

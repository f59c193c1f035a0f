//! Turns on `cfg(pv_postgres)` when `PV_TEST_POSTGRES_URL` is set and not empty: the
//! end-to-end tests then run their PostgreSQL variants, which are otherwise reported
//! as ignored (tests/platform/harness.rs, `on_both_backends!`). Likewise
//! `cfg(pv_prometheus)` when `PV_TEST_PROMETHEUS` names a Prometheus binary (and
//! `PV_TEST_ALERTMANAGER` an Alertmanager): the alert scenarios then run; and
//! `cfg(pv_browser)` when `PV_TEST_CHROMEDRIVER` names chromedriver: the browser tests
//! of the console then run (tests/platform/browser.rs).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pv_postgres)");
    println!("cargo::rustc-check-cfg=cfg(pv_prometheus)");
    println!("cargo::rustc-check-cfg=cfg(pv_browser)");
    println!("cargo::rerun-if-env-changed=PV_TEST_PROMETHEUS");
    println!("cargo::rerun-if-env-changed=PV_TEST_ALERTMANAGER");
    if std::env::var_os("PV_TEST_PROMETHEUS").is_some_and(|path| !path.is_empty()) {
        println!("cargo::rustc-cfg=pv_prometheus");
    }
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PV_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=PV_TEST_CHROMEDRIVER");
    if std::env::var_os("PV_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=pv_postgres");
    }
    if std::env::var_os("PV_TEST_CHROMEDRIVER").is_some_and(|path| !path.is_empty()) {
        println!("cargo::rustc-cfg=pv_browser");
    }
}

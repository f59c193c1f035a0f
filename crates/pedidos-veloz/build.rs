//! Turns on `cfg(pv_postgres)` when `PV_TEST_POSTGRES_URL` is set and not empty, and
//! `cfg(pv_browser)` when `PV_TEST_CHROMEDRIVER` is: the end-to-end tests then run their
//! PostgreSQL variants and the browser tests, which are otherwise reported as ignored
//! (tests/platform/harness.rs, `on_both_backends!`; tests/platform/browser.rs).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pv_postgres)");
    println!("cargo::rustc-check-cfg=cfg(pv_browser)");
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

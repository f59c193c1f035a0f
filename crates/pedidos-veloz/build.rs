//! Turns on `cfg(pv_postgres)` when `PV_TEST_POSTGRES_URL` is set and not empty: the
//! end-to-end tests then run their PostgreSQL variants, which are otherwise reported
//! as ignored (tests/platform/harness.rs, `on_both_backends!`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pv_postgres)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PV_TEST_POSTGRES_URL");
    if std::env::var_os("PV_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=pv_postgres");
    }
}

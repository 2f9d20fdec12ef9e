//! Enables the PostgreSQL half of the integration suite when TIDINGS_TEST_DATABASE_URL is set,
//! and the browser tests when TIDINGS_TEST_BROWSER is.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tidings_pg)");
    println!("cargo::rerun-if-env-changed=TIDINGS_TEST_DATABASE_URL");
    if std::env::var("TIDINGS_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=tidings_pg");
    }
    // The console's browser tests (tests/console.rs) need Chromium and the npm packages.
    println!("cargo::rustc-check-cfg=cfg(tidings_browser)");
    println!("cargo::rerun-if-env-changed=TIDINGS_TEST_BROWSER");
    if std::env::var("TIDINGS_TEST_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!("cargo::rustc-cfg=tidings_browser");
    }
    // Without it the PostgreSQL tests are compiled as ignored, and `cargo test` lists each one as
    // "ignored, PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=...".
}

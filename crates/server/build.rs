//! Enables the PostgreSQL half of the integration suite when TIDINGS_TEST_DATABASE_URL is set,
//! and the schemathesis run when TIDINGS_TEST_SCHEMATHESIS is.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tidings_pg)");
    println!("cargo::rerun-if-env-changed=TIDINGS_TEST_DATABASE_URL");
    if std::env::var("TIDINGS_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=tidings_pg");
    }
    // The schemathesis run against the OpenAPI document (tests/it/schemathesis.rs).
    println!("cargo::rustc-check-cfg=cfg(tidings_schemathesis)");
    println!("cargo::rerun-if-env-changed=TIDINGS_TEST_SCHEMATHESIS");
    if std::env::var("TIDINGS_TEST_SCHEMATHESIS").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=tidings_schemathesis");
    }
    // Without it the PostgreSQL tests are compiled as ignored, and `cargo test` lists each one as
    // "ignored, PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=...".
}

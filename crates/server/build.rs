//! Enables the PostgreSQL half of the integration suite when TIDINGS_TEST_DATABASE_URL is set.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tidings_pg)");
    println!("cargo::rerun-if-env-changed=TIDINGS_TEST_DATABASE_URL");
    if std::env::var("TIDINGS_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=tidings_pg");
    } else {
        println!(
            "cargo::warning=PostgreSQL integration suite skipped (only the embedded-store suite runs). \
             Enable it with TIDINGS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        );
    }
}

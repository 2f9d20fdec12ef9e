//! `sqlx::migrate!` embeds the migration files at compile time; rebuild when one is added.
//! Enables the store's PostgreSQL unit tests when TIDINGS_TEST_DATABASE_URL is set (without
//! it they are compiled as ignored, naming the variable).
fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rustc-check-cfg=cfg(tidings_pg)");
    println!("cargo::rerun-if-env-changed=TIDINGS_TEST_DATABASE_URL");
    if std::env::var("TIDINGS_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=tidings_pg");
    }
}

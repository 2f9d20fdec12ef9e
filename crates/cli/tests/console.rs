//! The console in a real browser: runs the Node test suite in `tests/browser/` (Node's test
//! runner driving Debian's headless Chromium through playwright-core, with axe-core for
//! accessibility) against this build's `tidings` binary. With TIDINGS_TEST_DATABASE_URL set it
//! also runs the two-node test on a fresh PostgreSQL schema.
//!
//! Needs `chromium` and `npm ci` in `tests/browser/`; `.ci/run` installs both and sets
//! TIDINGS_TEST_BROWSER=1, without which this test is listed as ignored.

mod common;

#[tokio::test]
#[cfg_attr(
    not(tidings_browser),
    ignore = "browser tests disabled: install chromium, run `npm ci` in crates/cli/tests/browser, set TIDINGS_TEST_BROWSER=1 (.ci/run does all three)"
)]
async fn the_console_works_in_a_real_browser() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut cmd = std::process::Command::new("node");
    cmd.args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .current_dir(&dir)
        .env("TIDINGS_BIN", env!("CARGO_BIN_EXE_tidings"));
    if cfg!(tidings_pg) {
        cmd.env("TIDINGS_BROWSER_DATABASE_URL", common::pg_url().await);
    }
    let out = cmd.output().expect("node runs (is Node.js installed?)");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the browser tests failed (output above)"
    );
}

//! The API against its own OpenAPI document: schemathesis (PyPI) generates requests from
//! `/openapi.json` and runs all of its checks (no 5xx, responses match their documented schema
//! and status codes, bad input refused, auth enforced, …), once as the operator and once as an
//! integrator, with a bounded number of examples per operation.
//!
//! Needs schemathesis' `st`: `.ci/run` installs it in a virtual environment and sets
//! TIDINGS_TEST_SCHEMATHESIS to its path; without it these tests are listed as ignored. The
//! seed is fixed so that a failure can be replayed; TIDINGS_TEST_SCHEMATHESIS_SEED picks another.

use serde_json::json;

use crate::harness::{Backend, Integrator, OPERATOR_KEY, TestApp, get};

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "10";

/// Runs `st run` against `app` with the given headers and tags; fails with its report unless
/// every check passed.
async fn schemathesis(app: &TestApp, headers: &[String], tags: &[&str]) {
    let st = std::env::var("TIDINGS_TEST_SCHEMATHESIS").unwrap_or_else(|_| "st".into());
    let seed =
        std::env::var("TIDINGS_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261207".into());
    // Its working directory: schemathesis may leave files there.
    let scratch = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let mut cmd = std::process::Command::new(&st);
    cmd.args(["--config-file", config, "run"])
        .arg(app.url("/openapi.json"))
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES])
        // One worker: with two, CPython 3.11's `ast` (which Hypothesis calls to describe its
        // strategies) failed now and then under load ("AST constructor recursion depth
        // mismatch", a thread-safety bug of that Python).
        .args(["--seed", &seed, "--workers", "1", "--no-color"])
        .args(["--generation-database", "none"])
        .current_dir(scratch.path());
    for h in headers {
        cmd.args(["-H", h]);
    }
    for t in tags {
        cmd.args(["--include-tag", t]);
    }
    // The server runs on this test's runtime: wait for schemathesis off it.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{st} runs (is schemathesis installed?): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "schemathesis found failures (report above; replay with TIDINGS_TEST_SCHEMATHESIS_SEED={seed})"
    );
    assert!(
        stdout.contains("passed") && !stdout.contains("No operations"),
        "schemathesis ran no operation"
    );
}

/// Something to list and show: a webhook of `who` with a delivery of one event, so that the
/// answers of lists and lookups are checked with data in them.
async fn fixtures(app: &TestApp, who: &Integrator) {
    // Nothing listens on port 9: the delivery fails and stays to be retried.
    let webhook = app
        .create_webhook(
            who,
            json!({"applyToAllDescendants": false, "url": "http://127.0.0.1:9/hook",
                "triggers": ["workorder.created"], "status": "enabled"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.publish(
        json!({"type": "workorder.created", "workspaceId": who.workspace, "data": {"n": 1}}),
    )
    .await;
    let deliveries = get(
        app,
        who,
        &format!("/v1/settings/webhooks/{webhook}/deliveries"),
    )
    .await;
    assert_eq!(deliveries["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tidings_schemathesis),
    ignore = "schemathesis disabled: set TIDINGS_TEST_SCHEMATHESIS to schemathesis' `st` (.ci/run installs it)"
)]
async fn the_operator_api_matches_its_document() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let who = app.integrator("acme").await;
    fixtures(&app, &who).await;
    schemathesis(
        &app,
        &[format!("Authorization: Bearer {OPERATOR_KEY}")],
        &["operator", "health", "keys", "meta"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tidings_schemathesis),
    ignore = "schemathesis disabled: set TIDINGS_TEST_SCHEMATHESIS to schemathesis' `st` (.ci/run installs it)"
)]
async fn the_integrator_api_matches_its_document() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let who = app.integrator("acme").await;
    fixtures(&app, &who).await;
    schemathesis(
        &app,
        &[
            format!("Authorization: Bearer {}", who.token),
            format!("Workspace: {}", who.workspace),
        ],
        &["integrator"],
    )
    .await;
}

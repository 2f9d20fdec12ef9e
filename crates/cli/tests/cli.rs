//! The command line over a real server: the README's tour with CLI commands only
//! (`tests/tour.sh`), the generated reference `docs/cli-reference.md`, shell completions.

use std::process::Command;

#[path = "common/running.rs"]
mod running;
use running::{BIN, OPERATOR_KEY, Running, server};

#[test]
fn the_readme_tour_runs_with_cli_commands_only() {
    // The script reads the CLI's JSON with jq; `.ci/run` installs it.
    if Command::new("jq").arg("--version").output().is_err() {
        eprintln!("skipped: the tour needs jq (apt-get install jq)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (server, url) = server(data.path(), "127.0.0.1:0");
    let mut receiver = Command::new(BIN);
    receiver.args([
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--secret",
        "supersecuresecret",
    ]);
    let (receiver, line) = Running::start(receiver, "receiving webhooks on");
    let receiver_url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_string();

    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tour.sh");
    let out = Command::new("bash")
        .arg(tour)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("TIDINGS", BIN)
        .env("TIDINGS_URL", &url)
        .env("TIDINGS_OPERATOR_KEY", OPERATOR_KEY)
        .env("RECEIVER", &receiver_url)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tour failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver:\n{}",
        server.output()
    );
    assert!(stdout.contains("tour: ok"), "{stdout}");
    let received = receiver.output();
    assert!(
        received.contains("signature: valid") && !received.contains("signature: INVALID"),
        "the receiver saw: {received}"
    );
}

#[test]
fn docs_cli_reference_is_current() {
    let out = Command::new(BIN).arg("help-markdown").output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli-reference.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/cli-reference.md is out of date: `cargo run -q -- help-markdown > docs/cli-reference.md`"
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("webhooks") && script.contains("deliveries"),
            "{shell}: {script}"
        );
    }
}

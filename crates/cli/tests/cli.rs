//! The command line over a real server: the README's tour with CLI commands only
//! (`tests/tour.sh`), the generated reference `docs/cli.md`, shell completions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OPERATOR_KEY: &str = "cli-test-operator-key-0123456789";
const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// A child process killed when dropped, whose output is collected by a thread (so a full pipe
/// never blocks it).
struct Running {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `cmd` and waits until a line of its output contains `marker`; returns the
    /// process and that line.
    fn start(mut cmd: Command, marker: &str) -> (Running, String) {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the process starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let output = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        let running = Running { child, output };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(marker) => return (running, line),
                Ok(_) => {}
                Err(_) => panic!(
                    "no line with {marker:?} in time; output:\n{}",
                    running.output.lock().unwrap()
                ),
            }
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

/// `tidings serve` on port 0 with a fresh embedded store; its base URL.
fn server(data: &std::path::Path) -> (Running, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TIDINGS_LISTEN", "127.0.0.1:0")
        .env("TIDINGS_DATA_DIR", data)
        .env("TIDINGS_OPERATOR_KEY", OPERATOR_KEY)
        .env("TIDINGS_ALLOW_ADDRESSES", "127.0.0.0/8")
        .env("RUST_LOG", "info");
    let (running, line) = Running::start(cmd, "tidings is listening");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .expect("the listening line names the address")
        .to_string();
    (running, format!("http://{addr}"))
}

#[test]
fn the_readme_tour_runs_with_cli_commands_only() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (server, url) = server(data.path());
    let mut receiver = Command::new(BIN);
    receiver.args([
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--secret",
        "whsec_dG91ci1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==",
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
fn docs_cli_md_is_the_current_reference() {
    let out = Command::new(BIN).arg("help-markdown").output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let reference = committed
        .split_once("<!-- generated: tidings help-markdown -->\n")
        .map(|(_, generated)| generated)
        .unwrap_or("");
    assert!(
        reference == generated,
        "docs/cli.md is out of date: regenerate its reference part with `cargo run -q -- help-markdown` (everything after the `generated` marker)"
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

//! Running the real binary in tests: a child process whose output is collected, and a
//! `tidings serve` on a port of its own.
// Each test crate that includes this file uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const OPERATOR_KEY: &str = "cli-test-operator-key-0123456789";
pub const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// A child process killed when dropped, whose output is collected by a thread (so a full pipe
/// never blocks it).
pub struct Running {
    pub child: Child,
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
    pub fn start(mut cmd: Command, marker: &str) -> (Running, String) {
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

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits (up to 30 s) until the output so far contains `marker` at least `count` times.
    pub fn wait_for(&self, marker: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.output().matches(marker).count() < count {
            assert!(
                Instant::now() < deadline,
                "{marker:?} not seen {count} times; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `tidings serve` on `listen` (`127.0.0.1:0` for any port) with the embedded store in
/// `data`; its base URL.
pub fn server(data: &std::path::Path, listen: &str) -> (Running, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TIDINGS_LISTEN", listen)
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

//! Hard faults: the embedded store's disk fills up, and a PostgreSQL server stops and starts
//! again under load. Either way the API says `503` with the SPEC's body while it cannot commit,
//! the process stays up, work resumes by itself, and every accepted event is delivered once.
//!
//! Both need the machine's help: a `tmpfs` mount (root) and PostgreSQL's own binaries
//! (`initdb`, `pg_ctl`) for a private instance. Where they are missing the test says so and
//! does nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp};
use crate::receiver::TestReceiver;

const WAIT: Duration = Duration::from_secs(60);

fn hook(url: &str) -> Value {
    json!({"applyToAllDescendants": false, "url": url, "triggers": ["workorder.created"],
        "status": "enabled"})
}

/// Publishes event `n` (with `pad` bytes of data); the status and the answer's body.
async fn publish(app: &TestApp, n: u64, pad: usize) -> (StatusCode, Value) {
    let r = app
        .operator(Method::POST, "/v1/events")
        .json(&json!({"type": "workorder.created", "workspaceId": "acme",
            "data": {"n": n, "pad": "x".repeat(pad)}}))
        .send()
        .await;
    let r = r.expect("the server answers");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every accepted event (by its `data.n`) arrives, each exactly once.
async fn delivered_once(rx: &TestReceiver, accepted: &HashSet<u64>) {
    let got = rx.wait_for(accepted.len(), WAIT).await;
    let ns: Vec<u64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    let distinct: HashSet<&u64> = ns.iter().collect();
    assert_eq!(distinct.len(), ns.len(), "an event was delivered twice");
    let missing: Vec<&u64> = accepted.iter().filter(|n| !distinct.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "accepted events not delivered: {missing:?}"
    );
}

/// A `tmpfs` of `size` at a fresh directory, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remounting the tmpfs");
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_with_503_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount("8m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let data = disk.path().join("data");
    let mut app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("TIDINGS_DATA_DIR", data.to_str().unwrap())],
    )
    .await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook(&rx.url("/"))).await;
    let mut accepted = HashSet::new();
    let mut refused = None;
    for n in 0..4000 {
        match publish(&app, n, 16 * 1024).await {
            (StatusCode::ACCEPTED, _) => {
                accepted.insert(n);
            }
            (status, body) => {
                refused = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = refused.expect("the disk filled up");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(accepted.len() > 10, "only {} accepted", accepted.len());
    // The process is up, and what was accepted is still readable and being delivered.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let hooks = crate::harness::get(&app, &who, "/v1/settings/webhooks").await;
    assert_eq!(hooks["data"].as_array().unwrap().len(), 1);
    // Space comes back: publishing resumes by itself.
    disk.resize("256m");
    let mut resumed = false;
    for n in 10_000..10_200 {
        if publish(&app, n, 16).await.0 == StatusCode::ACCEPTED {
            accepted.insert(n);
            resumed = true;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if resumed && n > 10_010 {
            break;
        }
    }
    assert!(resumed, "publishing did not resume once space returned");
    delivered_once(&rx, &accepted).await;
    app.stop().await;
}

/// A private PostgreSQL instance (its own `initdb` and socket directory, no TCP port), run as
/// the `postgres` user; stopped and removed on drop.
struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl PrivatePg {
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::Builder::new()
            .prefix("tidings-pg-")
            .tempdir()
            .ok()?;
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .ok()?
            .success()
            .then_some(())?;
        let pg = Self { bin, dir };
        pg.as_postgres(&format!(
            "{}/initdb -D {}/data -A trust -U postgres >/dev/null",
            pg.bin.display(),
            pg.dir.path().display()
        ))
        .then_some(())?;
        pg.ctl("start").then_some(pg)
    }

    /// Runs `script` with `sh` as the `postgres` user.
    fn as_postgres(&self, script: &str) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--", "sh", "-c", script])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn ctl(&self, action: &str) -> bool {
        let d = self.dir.path().display();
        // Only a Unix socket in its own directory: no port to share with anything else.
        let opts = format!("-k {d} -c listen_addresses=''");
        let extra = if action == "start" {
            format!("-o \"{opts}\" -l {d}/log")
        } else {
            "-m fast".to_string()
        };
        self.as_postgres(&format!(
            "{}/pg_ctl -D {d}/data -w {extra} {action} >/dev/null",
            self.bin.display()
        ))
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}",
            self.dir.path().display()
        )
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.ctl("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_under_load_answers_503_meanwhile_and_loses_nothing() {
    let Some(pg) = PrivatePg::start() else {
        eprintln!("skipped: no PostgreSQL binaries or no postgres user to run a private instance");
        return;
    };
    let mut app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("TIDINGS_DATABASE_URL", &pg.url()),
            ("TIDINGS_DATABASE__MAX_CONNECTIONS", "4"),
        ],
    )
    .await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook(&rx.url("/"))).await;
    let mut accepted = HashSet::new();
    let mut refused = 0;
    let mut n = 0;
    let mut publish_some = async |count: u64, accepted: &mut HashSet<u64>| {
        let mut statuses = Vec::new();
        for _ in 0..count {
            n += 1;
            let (status, body) = publish(&app, n, 16).await;
            assert!(
                status == StatusCode::ACCEPTED || status == StatusCode::SERVICE_UNAVAILABLE,
                "{status}: {body}"
            );
            if status == StatusCode::ACCEPTED {
                accepted.insert(n);
            } else {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
            }
            statuses.push(status);
        }
        statuses
    };
    publish_some(50, &mut accepted).await;
    assert!(pg.ctl("stop"), "stopping PostgreSQL");
    for status in publish_some(3, &mut accepted).await {
        refused += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(
        refused > 0,
        "publishes while PostgreSQL is down are refused with 503"
    );
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the process stays up");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(pg.ctl("start"), "starting PostgreSQL again");
    // It resumes by itself: the pool reconnects.
    let mut resumed = false;
    for _ in 0..100 {
        if publish_some(1, &mut accepted).await[0] == StatusCode::ACCEPTED {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        resumed,
        "publishing did not resume after PostgreSQL came back"
    );
    publish_some(50, &mut accepted).await;
    delivered_once(&rx, &accepted).await;
    app.stop().await;
}

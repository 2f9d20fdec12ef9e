//! Tests that run the real `tidings` binary: `kill -9` at a random moment must lose no accepted
//! event (both stores), and several nodes on one PostgreSQL share the queue, survive the death of
//! one node and accept each other's tokens.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::{Value, json};

mod common;
use common::pg_url;
#[path = "common/running.rs"]
mod running;
use running::Running;

const OPERATOR_KEY: &str = "process-test-operator-key-0123";
const PUBLIC_URL: &str = "http://tidings.test";

/// Deliveries seen by message id, and the event numbers they carried.
#[derive(Default)]
struct Seen {
    by_message: HashMap<String, u32>,
    numbers: HashMap<u64, u32>,
}

/// A receiver that counts what it gets; answers 200 after `delay`.
async fn receiver(delay: Duration) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let s = s.clone();
                    async move {
                        let id = req
                            .headers()
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        tokio::time::sleep(delay).await;
                        let n = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v["data"]["n"].as_u64());
                        let mut g = s.lock().unwrap();
                        *g.by_message.entry(id).or_default() += 1;
                        if let Some(n) = n {
                            *g.numbers.entry(n).or_default() += 1;
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// One `tidings serve` process, on a port of its own (it listens on port 0 and logs the
/// address it got); killed when dropped (`Running`).
struct Node {
    process: Running,
    base: String,
    env: Vec<(String, String)>,
}

impl Node {
    async fn start(env: &[(String, String)]) -> Node {
        let mut cmd = Command::new(running::BIN);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TIDINGS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn,tidings_server=info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (process, line) =
            tokio::task::spawn_blocking(move || Running::start(cmd, "tidings is listening"))
                .await
                .unwrap();
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .expect("the listening line names the address")
            .to_string();
        let node = Node {
            process,
            base: format!("http://{addr}"),
            env: env.to_vec(),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", node.base)).send().await
                && r.status() == 200
            {
                return node;
            }
            assert!(Instant::now() < deadline, "tidings did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.process.child.kill(); // SIGKILL
        let _ = self.process.child.wait();
    }
}

fn settings(data_dir: &std::path::Path, database_url: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TIDINGS_DATA_DIR", data_dir.display().to_string()),
        ("TIDINGS_OPERATOR_KEY", OPERATOR_KEY.into()),
        // Nodes that share a database share the master key (a test key: the data is throwaway).
        (
            "TIDINGS_MASTER_KEY",
            "dGlkaW5ncy10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=".into(),
        ),
        ("TIDINGS_PUBLIC_URL", PUBLIC_URL.into()),
        ("TIDINGS_ALLOW_ADDRESSES", "127.0.0.0/8".into()),
        ("TIDINGS_DELIVERY__POLL_INTERVAL", "50ms".into()),
        ("TIDINGS_DELIVERY__TIMEOUT", "2s".into()),
        ("TIDINGS_DELIVERY__LEASE", "3s".into()),
        (
            "TIDINGS_DELIVERY__RETRY_SCHEDULE",
            "200ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(url) = database_url {
        env.push(("TIDINGS_DATABASE_URL".into(), url.to_string()));
    }
    // CI runs the suite a second time with SQLite as shipped.
    if let Ok(shims) = std::env::var("TIDINGS_DATABASE__SQLITE_SHIMS") {
        env.push(("TIDINGS_DATABASE__SQLITE_SHIMS".into(), shims));
    }
    env
}

/// Creates a workspace, a client and a webhook to `receiver`; returns the access token and the
/// webhook's id.
async fn setup(base: &str, receiver: SocketAddr) -> (String, String) {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/admin/workspaces"))
        .bearer_auth(OPERATOR_KEY)
        .json(&json!({"id": "acme", "name": "Acme", "integrationEnabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client: Value = http
        .post(format!("{base}/v1/admin/workspaces/acme/clients"))
        .bearer_auth(OPERATOR_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .json(&json!({"client_id": client["clientId"], "client_secret": client["clientSecret"], "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{base}/v1/settings/webhooks"))
        .bearer_auth(&token)
        .header("Workspace", "acme")
        .json(&json!({"applyToAllDescendants": false, "url": format!("http://{receiver}/"), "triggers": ["workorder.created"], "status": "enabled", "authorization": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let webhook: Value = r.json().await.unwrap();
    (token, webhook["id"].as_str().unwrap().to_string())
}

/// The event ids of every delivery the webhook's delivery listing shows, page by page.
async fn listed(base: &str, token: &str, webhook: &str) -> std::collections::BTreeSet<String> {
    let http = reqwest::Client::new();
    let mut events = std::collections::BTreeSet::new();
    // Cursors are message ids (`msg_` and hex): nothing to escape.
    let mut after = String::new();
    loop {
        let page: Value = http
            .get(format!(
                "{base}/v1/settings/webhooks/{webhook}/deliveries?limit=100{after}"
            ))
            .bearer_auth(token)
            .header("Workspace", "acme")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in page["data"].as_array().unwrap() {
            events.insert(d["eventId"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(next) => after = format!("&cursor={next}"),
            None => return events,
        }
    }
}

/// Publishes events numbered from `from` to the given nodes in turn until `stop`; returns the
/// numbers that got a 202, with the event ids the 202s named.
async fn publish_until(
    bases: Vec<String>,
    from: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(u64, String)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut accepted = Vec::new();
    let mut n = from;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let base = &bases[usize::try_from(n).unwrap() % bases.len()];
        let r = http
            .post(format!("{base}/v1/events"))
            .bearer_auth(OPERATOR_KEY)
            .json(&json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": n}}))
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 202
            && let Ok(body) = r.json::<Value>().await
            && let Some(id) = body["id"].as_str()
        {
            accepted.push((n, id.to_string()));
        }
        n += 1;
        if n > from + 100_000 {
            break;
        }
    }
    accepted
}

async fn wait_for_all(seen: &Arc<Mutex<Seen>>, accepted: &[u64], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let missing: Vec<u64> = {
            let g = seen.lock().unwrap();
            accepted
                .iter()
                .copied()
                .filter(|n| !g.numbers.contains_key(n))
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted events never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn kill_nine_loses_no_accepted_event(database_url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (addr, seen) = receiver(Duration::from_millis(2)).await;
    let env = settings(data.path(), database_url.as_deref());
    let mut node = Node::start(&env).await;
    let (token, webhook) = setup(&node.base, addr).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(vec![node.base.clone()], 0, stop.clone()));
    let kill_after = Duration::from_millis(rand::rng().random_range(300..1500));
    tokio::time::sleep(kill_after).await;
    node.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (accepted, ids): (Vec<u64>, Vec<String>) = publisher.await.unwrap().into_iter().unzip();
    assert!(
        accepted.len() > 10,
        "only {} events were accepted before the kill",
        accepted.len()
    );

    let restarted = Node::start(&node.env).await;
    wait_for_all(&seen, &accepted, Duration::from_secs(30)).await;
    // The embedded store's per-webhook index is rebuilt after the kill: the listing shows every
    // accepted event's delivery.
    let listed = listed(&restarted.base, &token, &webhook).await;
    let unlisted: Vec<&String> = ids.iter().filter(|id| !listed.contains(*id)).collect();
    assert!(unlisted.is_empty(), "accepted but not listed: {unlisted:?}");
    eprintln!(
        "kill -9 after {kill_after:?}: {} accepted, all delivered and listed",
        accepted.len()
    );
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_no_accepted_event_on_the_embedded_store() {
    kill_nine_loses_no_accepted_event(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tidings_pg),
    ignore = "PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
)]
async fn kill_nine_loses_no_accepted_event_on_postgres() {
    kill_nine_loses_no_accepted_event(Some(pg_url().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tidings_pg),
    ignore = "PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
)]
async fn three_nodes_share_the_queue_and_survive_losing_one() {
    let url = pg_url().await;
    let (addr, seen) = receiver(Duration::from_millis(20)).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let concurrency = 8;
    let mut nodes = Vec::new();
    for d in &dirs {
        let mut env = settings(d.path(), Some(&url));
        env.push((
            "TIDINGS_DELIVERY__CONCURRENCY".into(),
            concurrency.to_string(),
        ));
        nodes.push(Node::start(&env).await);
    }
    // Every node publishes the same keys and accepts a token another node issued.
    let http = reqwest::Client::new();
    let (token, _) = setup(&nodes[0].base, addr).await;
    let mut jwks = Vec::new();
    for n in &nodes {
        jwks.push(
            http.get(format!("{}/.well-known/jwks.json", n.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        let r = http
            .get(format!("{}/v1/settings/webhooks", n.base))
            .bearer_auth(&token)
            .header("Workspace", "acme")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a token from node 0 works on {}", n.base);
    }
    assert!(
        jwks.windows(2).all(|w| w[0] == w[1]),
        "one key set for all nodes"
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(
        vec![nodes[0].base.clone(), nodes[2].base.clone()],
        0,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    nodes[1].kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let accepted: Vec<u64> = publisher
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(accepted.len() > 50, "only {} accepted", accepted.len());

    wait_for_all(&seen, &accepted, Duration::from_secs(30)).await;
    let g = seen.lock().unwrap();
    let repeated: u32 = g.by_message.values().map(|c| c - 1).sum();
    // Only what the dead node had in flight may arrive twice.
    assert!(
        repeated <= concurrency,
        "{repeated} repeated deliveries (at most {concurrency} expected)"
    );
    eprintln!(
        "3 nodes, one killed: {} accepted, all delivered, {repeated} repeated",
        accepted.len()
    );
}

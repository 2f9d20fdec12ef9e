//! `tidings bench`: a load harness that anyone can run. It starts `tidings serve` as a child
//! process (embedded store in a temp directory, or PostgreSQL), a built-in receiver, creates what
//! it needs through the public API, runs each scenario against a fresh server, and prints one
//! JSON line per scenario with the server's peak RSS and CPU seconds. The `baseline` scenario
//! drives the bare receiver with the same load generator, so figures can be read as a ratio to
//! the machine's own limit.

use std::ops::Range;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

mod disk;
mod load;
mod many;
mod soak;

/// A number field of a scenario's line (0 when absent).
fn num(v: &Value, field: &str) -> f64 {
    v[field].as_f64().unwrap_or(0.0)
}

const OPERATOR_KEY: &str = "bench-operator-key-0123456789";
/// The master key of the bench's servers unless `TIDINGS_MASTER_KEY` is set: each scenario
/// starts a server with a fresh data directory, and those on one PostgreSQL database must open
/// what the others sealed. Bench databases hold generated data only.
const BENCH_MASTER_KEY: &str = "dGlkaW5ncy1iZW5jaC1tYXN0ZXIta2V5LTMyYnl0ZXM=";

/// What to run and how hard.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenarios: Vec<String>,
    pub duration: Duration,
    /// How long `soak` runs.
    pub soak: Duration,
    pub connections: usize,
    pub rate: u64,
    pub backlog: u64,
    pub webhooks: usize,
    pub workspaces: usize,
    pub database_url: Option<String>,
}

pub const ALL: &[&str] = &[
    "baseline",
    "fanout1",
    "fanout10",
    "latency",
    "backlog",
    "many-webhooks",
];

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The built-in receiver: answers 204, counts, and records publish→receive latency from the
/// `"t"` (publish time, µs) the payload carries.
#[derive(Default)]
struct Receiver {
    count: AtomicU64,
    first: AtomicU64,
    last: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    record_latency: AtomicBool,
    /// Answers `500` to this many requests in a thousand, at random (`soak`); 0 otherwise.
    fail_permille: AtomicU64,
}

fn publish_time(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"t\":")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn start_receiver() -> anyhow::Result<(String, Arc<Receiver>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let rx = Arc::new(Receiver::default());
    let r = rx.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let r = r.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let r = r.clone();
                    async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let now = now_micros();
                        // The latency goes in before the count: whoever sees the count reach
                        // what it waits for finds every latency of those requests.
                        if r.record_latency.load(Ordering::Relaxed)
                            && let Some(t) = publish_time(&body)
                        {
                            r.latencies
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(now.saturating_sub(t));
                        }
                        let _ =
                            r.first
                                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                        r.last.fetch_max(now, Ordering::Relaxed);
                        r.count.fetch_add(1, Ordering::Release);
                        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                        let fail = r.fail_permille.load(Ordering::Relaxed);
                        *resp.status_mut() = if fail > 0 && rand::random_range(0..1000) < fail {
                            hyper::StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            hyper::StatusCode::NO_CONTENT
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((format!("http://{addr}"), rx))
}

impl Receiver {
    fn reset(&self, record_latency: bool) {
        self.count.store(0, Ordering::Relaxed);
        self.first.store(0, Ordering::Relaxed);
        self.last.store(0, Ordering::Relaxed);
        self.latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.record_latency.store(record_latency, Ordering::Relaxed);
        self.fail_permille.store(0, Ordering::Relaxed);
    }
}

/// A `tidings serve` child process with a fresh store.
struct Server {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start(
        opts: &Options,
        delivery: bool,
        data: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Server> {
        Self::start_with(opts, delivery, data, &[]).await
    }

    /// [`Server::start`] with extra `TIDINGS_*` settings.
    async fn start_with(
        opts: &Options,
        delivery: bool,
        data: Option<tempfile::TempDir>,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let data = match data {
            Some(d) => d,
            None => tempfile::tempdir()?,
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("serve")
            .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
            .env("TIDINGS_DATA_DIR", data.path())
            .env("TIDINGS_OPERATOR_KEY", OPERATOR_KEY)
            .env("TIDINGS_ALLOW_ADDRESSES", "127.0.0.0/8")
            .env("TIDINGS_DELIVERY__ENABLED", delivery.to_string())
            .env("TIDINGS_MAX_BODY_BYTES", "4194304")
            // `many-webhooks` asks for a token per workspace, from one address.
            .env("TIDINGS_OAUTH__REQUESTS_PER_MINUTE_PER_ADDRESS", "0")
            .env("TIDINGS_OAUTH__REQUESTS_PER_MINUTE_PER_CLIENT", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = &opts.database_url {
            cmd.env("TIDINGS_DATABASE_URL", url);
        }
        if std::env::var_os("TIDINGS_MASTER_KEY").is_none() {
            cmd.env("TIDINGS_MASTER_KEY", BENCH_MASTER_KEY);
        }
        cmd.envs(settings.iter().copied());
        let child = cmd.spawn()?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http
                .get(format!("{}/readyz", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the server did not become ready")
    }

    /// Peak resident set (MiB) and CPU seconds (user + system) so far, from /proc.
    fn usage(&self) -> (f64, f64) {
        let pid = self.child.id();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(str::to_string)
            })
            .and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0);
        let cpu = cpu_seconds(&format!("/proc/{pid}/stat")).unwrap_or(0.0);
        (rss, cpu)
    }

    /// CPU seconds of the embedded store's writer thread so far (`None` on PostgreSQL).
    fn writer_cpu(&self) -> Option<f64> {
        let pid = self.child.id();
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim_end() == "tidings-writer")
            })
            .and_then(|t| cpu_seconds(&t.path().join("stat").to_string_lossy()))
    }

    /// Attempts so far that did not end in a `2xx` (`tidings_delivery_attempts_total` by
    /// outcome, from the server's `/metrics`). The receiver always answers `204`, so each one
    /// is a retry the run caused, and a retried delivery stretches the end-to-end span.
    async fn failed_attempts(&self) -> Option<u64> {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(failed_attempts_in(&text))
    }

    fn take_data(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self._data, tempfile::tempdir().expect("temp dir"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds of this process so far: the load generator's and the receiver's.
fn harness_cpu() -> f64 {
    cpu_seconds("/proc/self/stat").unwrap_or(0.0)
}

/// User + system CPU seconds from a `/proc/…/stat` file.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let s = std::fs::read_to_string(stat).ok()?;
    let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
    let ticks = after.get(11)?.parse::<f64>().ok()? + after.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// The sum of `tidings_delivery_attempts_total` over every outcome but `ok`.
fn failed_attempts_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("tidings_delivery_attempts_total{outcome=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .filter(|(outcome, _)| *outcome != "ok")
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}

/// The scenario running now (counted from 0 in each run): part of every workspace id, so the
/// scenarios of one run against one PostgreSQL database do not collide with each other.
static SCENARIO: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The id of the bench's `n`th workspace. Unique per run and scenario, so runs against the same
/// PostgreSQL database do not collide with an earlier run's or scenario's workspaces.
fn workspace_id(n: usize) -> String {
    static RUN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(rand::random::<u32>);
    workspace_id_of(*run, SCENARIO.load(Ordering::Relaxed), n)
}

fn workspace_id_of(run: u32, scenario: usize, n: usize) -> String {
    format!("bench{run:08x}s{scenario}-{n}")
}

/// Creates the workspaces numbered `spaces` with one client each and `per_workspace` webhooks to
/// `url`; the first of each workspace subscribes to `workorder.created`, the rest to other types
/// when `distinct`.
async fn setup(
    base: &str,
    url: &str,
    spaces: Range<usize>,
    per_workspace: usize,
    distinct: bool,
) -> anyhow::Result<()> {
    let http = client(8);
    let others = [
        "contract.create",
        "contract.update",
        "contract.send",
        "contract.review",
        "contract.expired",
        "workspace-created",
        "workorder.status-changed",
    ];
    for w in spaces {
        let id = workspace_id(w);
        http.post(format!("{base}/v1/admin/workspaces"))
            .bearer_auth(OPERATOR_KEY)
            .json(&json!({"id": id, "name": id, "integrationEnabled": true}))
            .send()
            .await?
            .error_for_status()?;
        let c: Value = http
            .post(format!("{base}/v1/admin/workspaces/{id}/clients"))
            .bearer_auth(OPERATOR_KEY)
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        let t: Value = http
            .post(format!("{base}/oauth/token"))
            .json(&json!({"client_id": c["clientId"], "client_secret": c["clientSecret"], "grant_type": "client_credentials"}))
            .send()
            .await?
            .json()
            .await?;
        let token = t["access_token"].as_str().unwrap_or_default().to_string();
        for h in 0..per_workspace {
            let trigger = if h == 0 || !distinct {
                "workorder.created"
            } else {
                others[(h - 1) % others.len()]
            };
            http.post(format!("{base}/v1/settings/webhooks"))
                .bearer_auth(&token)
                .header("Workspace", &id)
                .json(&json!({"applyToAllDescendants": false, "url": url, "triggers": [trigger], "status": "enabled"}))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}

/// The `n`th event: for the workspaces numbered `spaces` in turn.
fn event_body(n: u64, spaces: Range<usize>) -> Value {
    let ws = spaces.start + usize::try_from(n).unwrap_or(0) % spaces.len().max(1);
    json!({"type": "workorder.created", "workspaceId": workspace_id(ws), "data": {"n": n, "t": now_micros()}})
}

/// The load's bodies: [`event_body`]'s event, written with one `format!` (the workspace ids
/// made once), for the `n`th request.
fn event_bodies(spaces: Range<usize>) -> load::Body {
    let ids: Vec<String> = if spaces.is_empty() {
        vec![workspace_id(spaces.start)]
    } else {
        spaces.map(workspace_id).collect()
    };
    Arc::new(move |n| {
        let ws = &ids[usize::try_from(n).unwrap_or(0) % ids.len()];
        Bytes::from(format!(
            r#"{{"type":"workorder.created","workspaceId":"{ws}","data":{{"n":{n},"t":{}}}}}"#,
            now_micros()
        ))
    })
}

/// Runs the load generator against `url` (see [`load::run`]).
async fn load(
    url: &str,
    auth: Option<&str>,
    connections: usize,
    duration: Duration,
    rate: Option<u64>,
    spaces: Range<usize>,
) -> anyhow::Result<load::Load> {
    let target = load::Target::new(url, auth)?;
    Ok(load::run(&target, connections, duration, rate, event_bodies(spaces)).await)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Events published before a steady-rate run is measured (at least one per workspace).
const WARM_UP_EVENTS: usize = 1000;

/// Publishes `WARM_UP_EVENTS` events (and at least one to each of the workspaces numbered
/// `spaces`) in batches of 1,000, as a running system would have; returns how many.
async fn warm_up(base: &str, spaces: Range<usize>) -> anyhow::Result<u64> {
    let http = client(1);
    let total = WARM_UP_EVENTS.max(spaces.len());
    for first in (0..total).step_by(1000) {
        let events: Vec<Value> = (first..total.min(first + 1000))
            .map(|n| event_body(n as u64, spaces.clone()))
            .collect();
        http.post(format!("{base}/v1/events/batch"))
            .bearer_auth(OPERATOR_KEY)
            .json(&json!({"events": events}))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(total as u64)
}

/// The publish p50 and p99 of a load run, in ms.
fn publish_percentiles(l: &load::Load) -> (f64, f64) {
    p50_p99_ms(l.publish_latencies_us.clone())
}

/// p50 and p99 of times in µs, in ms (`(0, 0)` for none).
fn p50_p99_ms(mut micros: Vec<u64>) -> (f64, f64) {
    micros.sort_unstable();
    (percentile(&micros, 0.5), percentile(&micros, 0.99))
}

/// To two decimals (CPU seconds are read in hundredths; a difference of two prints cleanly).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `a / b` to three decimals (0 when `b` is 0: nothing to compare with).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

async fn wait_delivered(rx: &Receiver, expected: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let got = rx.count.load(Ordering::Acquire);
        if got >= expected {
            return true;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            return false; // no progress for 30 s
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Runs the scenarios and prints one JSON line each.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let (rx_url, rx) = start_receiver().await?;
    let mut baseline_rps = None;
    // `fanout1`'s publish p50 and p99, for `many-webhooks` to compare itself with.
    let mut one_webhook: Option<(f64, f64)> = None;
    // The same at the steady `--rate` (`latency`, one webhook).
    let mut one_webhook_at_rate: Option<(f64, f64)> = None;
    for (i, scenario) in opts.scenarios.iter().enumerate() {
        SCENARIO.store(i, Ordering::Relaxed);
        let progress = crate::progress::spinner(&format!(
            "{scenario} ({} of {})",
            i + 1,
            opts.scenarios.len()
        ));
        let line = match scenario.as_str() {
            "baseline" => {
                rx.reset(false);
                let h0 = harness_cpu();
                let l = load(&rx_url, None, opts.connections, opts.duration, None, 0..1).await?;
                let rps = l.accepted as f64 / l.elapsed.as_secs_f64();
                baseline_rps = Some(rps);
                let harness = round2(harness_cpu() - h0);
                // The disk's limit beside the network's, measured after the load, on its own.
                let syncs = tokio::task::spawn_blocking(disk::sync_times).await??;
                let (sync_p50, sync_p99) = disk::percentiles_ms(&syncs);
                json!({"scenario": "baseline", "requests": l.accepted, "requests_per_sec": rps.round(), "connections": opts.connections,
                    "harness_cpu_seconds": harness, "disk_fsync_p50_ms": sync_p50, "disk_fsync_p99_ms": sync_p99})
            }
            "fanout1" | "fanout10" => {
                let fanout = if scenario == "fanout1" { 1 } else { 10 };
                let server = Server::start(&opts, true, None).await?;
                setup(&server.base, &rx_url, 0..1, fanout, false).await?;
                rx.reset(false);
                let h0 = harness_cpu();
                let l = load(
                    &format!("{}/v1/events", server.base),
                    Some(OPERATOR_KEY),
                    opts.connections,
                    opts.duration,
                    None,
                    0..1,
                )
                .await?;
                let expected = l.accepted * fanout as u64;
                let delivered_all = wait_delivered(&rx, expected, Duration::from_secs(600)).await;
                let delivered = rx.count.load(Ordering::Relaxed);
                let span =
                    (rx.last.load(Ordering::Relaxed).saturating_sub(l.started_us)) as f64 / 1e6;
                let dps = delivered as f64 / span.max(1e-6);
                let (rss, cpu) = server.usage();
                let (p50, p99) = publish_percentiles(&l);
                let mut v = json!({"scenario": scenario, "events_accepted": l.accepted,
                    "publish_p50_ms": p50, "publish_p99_ms": p99,
                    "events_per_sec": (l.accepted as f64 / l.elapsed.as_secs_f64()).round(),
                    "deliveries": delivered, "deliveries_per_sec": dps.round(),
                    "delivered_equals_accepted": delivered_all && delivered == expected,
                    "peak_rss_mb": rss.round(), "cpu_seconds": cpu,
                    "harness_cpu_seconds": round2(harness_cpu() - h0)});
                if let Some(w) = server.writer_cpu() {
                    v["writer_cpu_seconds"] = json!(w);
                }
                if let Some(n) = server.failed_attempts().await {
                    v["failed_attempts"] = json!(n);
                }
                if let Some(b) = baseline_rps {
                    v["ratio_to_baseline"] = json!(ratio(dps, b));
                }
                if fanout == 1 {
                    one_webhook = Some((p50, p99));
                }
                v
            }
            "latency" => {
                let server = Server::start(&opts, true, None).await?;
                setup(&server.base, &rx_url, 0..1, 1, false).await?;
                rx.reset(false);
                let warm = warm_up(&server.base, 0..1).await?;
                wait_delivered(&rx, warm, Duration::from_secs(60)).await;
                rx.reset(true);
                let conns = opts.connections.clamp(1, 16);
                let l = load(
                    &format!("{}/v1/events", server.base),
                    Some(OPERATOR_KEY),
                    conns,
                    opts.duration,
                    Some(opts.rate),
                    0..1,
                )
                .await?;
                wait_delivered(&rx, l.accepted, Duration::from_secs(60)).await;
                let mut lat = rx
                    .latencies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                lat.sort_unstable();
                let (rss, cpu) = server.usage();
                let publish = publish_percentiles(&l);
                one_webhook_at_rate = Some(publish);
                json!({"scenario": "latency", "rate": opts.rate, "events": l.accepted, "delivered": lat.len(),
                    "p50_ms": percentile(&lat, 0.5), "p90_ms": percentile(&lat, 0.9), "p99_ms": percentile(&lat, 0.99),
                    "max_ms": percentile(&lat, 1.0), "publish_p50_ms": publish.0, "publish_p99_ms": publish.1,
                    "peak_rss_mb": rss.round(), "cpu_seconds": cpu, "failed_attempts": server.failed_attempts().await})
            }
            "backlog" => {
                // "Receiver down": the worker is off while the deliveries queue up; then a server
                // with the worker on drains them.
                let server = Server::start(&opts, false, None).await?;
                setup(&server.base, &rx_url, 0..1, 1, false).await?;
                let http = client(4);
                let mut queued = 0u64;
                let started = Instant::now();
                while queued < opts.backlog {
                    let n = (opts.backlog - queued).min(1000);
                    let events: Vec<Value> = (0..n).map(|i| event_body(queued + i, 0..1)).collect();
                    http.post(format!("{}/v1/events/batch", server.base))
                        .bearer_auth(OPERATOR_KEY)
                        .json(&json!({"events": events}))
                        .send()
                        .await?
                        .error_for_status()?;
                    queued += n;
                }
                let queue_secs = started.elapsed().as_secs_f64();
                let (queued_rss, _) = server.usage();
                let data = server.take_data();
                rx.reset(false);
                let drain = Server::start(&opts, true, Some(data)).await?;
                let start = Instant::now();
                // The drain rate is measured over a bounded window (3 × the load duration, at least
                // 30 s), so a 1 M backlog does not take the whole run.
                let window = (opts.duration * 3).max(Duration::from_secs(30));
                let all = wait_delivered(&rx, opts.backlog, window).await;
                let secs = start.elapsed().as_secs_f64();
                let (drain_rss, cpu) = drain.usage();
                json!({"scenario": "backlog", "queued": opts.backlog, "queue_events_per_sec": (opts.backlog as f64 / queue_secs).round(),
                    "peak_rss_mb_while_queued": queued_rss.round(), "drain_per_sec": (rx.count.load(Ordering::Relaxed) as f64 / secs).round(),
                    "drained": rx.count.load(Ordering::Relaxed), "drained_all": all, "peak_rss_mb_draining": drain_rss.round(), "cpu_seconds_draining": cpu})
            }
            "many-webhooks" => {
                let mut v = many::run(&opts, &rx_url, &rx).await?;
                // The sequential comparisons of earlier rounds, kept for continuity: with
                // `fanout1` (saturated) and `latency` (steady rate) when they ran before.
                if let Some((one50, one99)) = one_webhook {
                    v["p50_vs_fanout1"] = json!(ratio(num(&v, "publish_p50_ms"), one50));
                    v["p99_vs_fanout1"] = json!(ratio(num(&v, "publish_p99_ms"), one99));
                }
                if let Some((one50, one99)) = one_webhook_at_rate {
                    v["rate_p50_vs_latency"] = json!(ratio(num(&v, "rate_publish_p50_ms"), one50));
                    v["rate_p99_vs_latency"] = json!(ratio(num(&v, "rate_publish_p99_ms"), one99));
                }
                v
            }
            "soak" => soak::run(&opts, &rx_url, &rx).await?,
            other => anyhow::bail!(
                "unknown scenario {other}; choose from {}, soak",
                ALL.join(", ")
            ),
        };
        progress.finish_and_clear();
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn failed_attempts_sum_every_outcome_but_ok() {
        let text = "# TYPE tidings_delivery_attempts_total counter\n\
            tidings_delivery_attempts_total{outcome=\"ok\"} 1000\n\
            tidings_delivery_attempts_total{outcome=\"timeout\"} 2\n\
            tidings_delivery_attempts_total{outcome=\"http_status\"} 3\n\
            tidings_delivery_attempts_created{outcome=\"timeout\"} 1764800000.0\n\
            tidings_events_published_total 1000\n";
        assert_eq!(super::failed_attempts_in(text), 5);
        assert_eq!(super::failed_attempts_in(""), 0);
    }

    /// `--database-url … --scenarios fanout1,fanout10` used to stop at fanout10 with a 409:
    /// both scenarios created workspace 0 of the run in the same database.
    #[test]
    fn each_scenario_of_a_run_has_workspace_ids_of_its_own() {
        use super::workspace_id_of;
        assert_ne!(workspace_id_of(7, 0, 0), workspace_id_of(7, 1, 0));
        assert_ne!(workspace_id_of(7, 0, 0), workspace_id_of(8, 0, 0));
        assert_eq!(workspace_id_of(7, 1, 3), "bench00000007s1-3");
    }

    #[test]
    fn ratios_have_three_decimals_and_survive_a_zero() {
        assert_eq!(super::ratio(2.5, 2.0), 1.25);
        assert_eq!(super::ratio(1.0, 3.0), 0.333);
        assert_eq!(super::ratio(1.0, 0.0), 0.0);
    }

    /// The load's bodies are the events `event_body` describes, and carry the publish time
    /// the receiver reads.
    #[test]
    fn load_bodies_are_the_described_events() {
        let body = super::event_bodies(0..3)(4);
        let mut sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut described = super::event_body(4, 0..3);
        assert!(super::publish_time(&body).is_some_and(|t| t > 0));
        sent["data"]["t"] = 0.into();
        described["data"]["t"] = 0.into();
        assert_eq!(sent, described);
    }

    #[test]
    fn publish_time_is_read_from_the_payload() {
        assert_eq!(
            super::publish_time(br#"{"data":{"n":1,"t":1234567}}"#),
            Some(1_234_567)
        );
        assert_eq!(super::publish_time(b"{}"), None);
    }
}

//! `soak`: half of the maximum rate the server sustains (measured for 10 s first, under the
//! soak's own conditions) for `--duration` (30 minutes unless given), to one webhook whose
//! receiver fails 10% of requests at random, with retention set short (succeeded deliveries
//! kept 1 minute, failed 2 minutes, a pass every 15 seconds), so that within the run retention
//! must keep up with what comes in. It samples the server's resident memory, the size of the
//! store's files and the queue depth twenty times, and says whether the second half stayed
//! within the first half's peaks (plus a margin): a leak, a store that grows without end or a
//! queue that falls behind shows as `bounded: false`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{OPERATOR_KEY, Options, Receiver, Server, load, round2, setup};

/// What the second half may exceed the first half's peak by and still count as bounded.
const MARGIN: f64 = 1.25;
/// Samples over the run.
const SAMPLES: u32 = 20;
/// Requests in a thousand that the receiver fails.
const FAIL_PERMILLE: u64 = 100;
/// How long the maximum is measured (at most; `--duration` when shorter).
const CALIBRATION: Duration = Duration::from_secs(10);
/// How long the backlog of the calibration may take to drain before the soak starts anyway.
const DRAIN: Duration = Duration::from_secs(180);

/// One sample of the server.
struct Sample {
    at_s: f64,
    rss_mb: f64,
    store_mb: Option<f64>,
    queue_depth: f64,
}

impl Server {
    /// Resident memory now (MiB), from /proc.
    fn rss_now_mb(&self) -> f64 {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|k| k.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Size of the embedded store's files (MiB); `None` on PostgreSQL.
    fn store_mb(&self, opts: &Options) -> Option<f64> {
        if opts.database_url.is_some() {
            return None;
        }
        let bytes: u64 = std::fs::read_dir(self._data.path())
            .ok()?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        Some(bytes as f64 / (1024.0 * 1024.0))
    }

    /// `tidings_queue_depth` from `/metrics`.
    async fn queue_depth(&self) -> f64 {
        let Ok(text) = reqwest::get(format!("{}/metrics", self.base))
            .await
            .and_then(|r| r.error_for_status())
        else {
            return f64::NAN;
        };
        text.text()
            .await
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("tidings_queue_depth "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }
}

/// `start`, `max` and `end` of a series, and whether its second half stayed within its first
/// half's peak times [`MARGIN`] (or a small absolute floor, for series near zero).
fn summary(values: &[f64], floor: f64) -> (Value, bool) {
    let half = values.len() / 2;
    let peak = |v: &[f64]| v.iter().copied().fold(0.0_f64, f64::max);
    let (first, second) = values.split_at(half);
    let bounded = peak(second) <= (peak(first) * MARGIN).max(floor);
    let at = |i: Option<&f64>| i.copied().map(round2);
    (
        json!({"start": at(values.first()), "max": round2(peak(values)), "end": at(values.last()),
            "bounded": bounded}),
        bounded,
    )
}

/// The maximum the server sustains under the soak's own conditions: events are published flat
/// out for [`CALIBRATION`] while the receiver already fails, and what counts is what the
/// receiver got (deliveries are the slower side; publishing alone is 2–3× faster and piles up
/// a queue). Each event takes `1000 / (1000 - FAIL_PERMILLE)` attempts on average. The queue
/// the calibration left is drained before the soak starts, so that it is not mistaken for a
/// queue the soak built.
async fn calibrate(
    opts: &Options,
    server: &Server,
    url: &str,
    rx: &Receiver,
) -> anyhow::Result<f64> {
    let before = rx.count.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let window = opts.duration.min(CALIBRATION);
    load(
        url,
        Some(OPERATOR_KEY),
        opts.connections,
        window,
        None,
        0..1,
    )
    .await?;
    let attempts = rx.count.load(std::sync::atomic::Ordering::Relaxed) - before;
    let per_event = 1000.0 / (1000 - FAIL_PERMILLE) as f64;
    let max_rate = attempts as f64 / per_event / started.elapsed().as_secs_f64();
    let waited = Instant::now();
    while waited.elapsed() < DRAIN {
        // A failed read of `/metrics` (NaN) counts as not drained yet.
        if server.queue_depth().await <= max_rate {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(max_rate)
}

pub(super) async fn run(opts: &Options, rx_url: &str, rx: &Receiver) -> anyhow::Result<Value> {
    let server = Server::start_with(
        opts,
        true,
        None,
        &[
            ("TIDINGS_RETENTION__SUCCEEDED", "1m"),
            ("TIDINGS_RETENTION__FAILED", "2m"),
            ("TIDINGS_RETENTION__INTERVAL", "15s"),
            ("TIDINGS_DELIVERY__RETRY_SCHEDULE", "1s,5s,30s"),
        ],
    )
    .await?;
    setup(&server.base, rx_url, 0..1, 1, false).await?;
    rx.reset(false);
    rx.fail_permille
        .store(FAIL_PERMILLE, std::sync::atomic::Ordering::Relaxed);
    let url = format!("{}/v1/events", server.base);
    let max_rate = calibrate(opts, &server, &url, rx).await?;
    let rate = ((max_rate / 2.0) as u64).max(1);
    let window = (opts.soak / SAMPLES).max(Duration::from_millis(250));
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut events = 0;
    while started.elapsed() < opts.soak {
        let l = load(
            &url,
            Some(OPERATOR_KEY),
            opts.connections.clamp(1, 16),
            window,
            Some(rate),
            0..1,
        )
        .await?;
        events += l.accepted;
        samples.push(Sample {
            at_s: started.elapsed().as_secs_f64(),
            rss_mb: server.rss_now_mb(),
            store_mb: server.store_mb(opts),
            queue_depth: server.queue_depth().await,
        });
    }
    let series = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let (rss, rss_ok) = summary(&series(|s| s.rss_mb), 64.0);
    let (queue, queue_ok) = summary(&series(|s| s.queue_depth), 2.0 * rate as f64);
    let mut v = json!({"scenario": "soak", "duration_s": round2(started.elapsed().as_secs_f64()),
        "max_events_per_sec": max_rate.round(), "rate": rate, "events": events,
        "receiver_failures_permille": FAIL_PERMILLE, "rss_mb": rss, "queue_depth": queue,
        "samples": samples.iter().map(|s| json!({"at_s": round2(s.at_s), "rss_mb": round2(s.rss_mb),
            "store_mb": s.store_mb.map(round2), "queue_depth": s.queue_depth})).collect::<Vec<_>>(),
        "failed_attempts": server.failed_attempts().await});
    let mut bounded = rss_ok && queue_ok;
    if samples.iter().all(|s| s.store_mb.is_some()) {
        let (store, store_ok) = summary(&series(|s| s.store_mb.unwrap_or(0.0)), 16.0);
        v["store_mb"] = store;
        bounded &= store_ok;
    }
    v["bounded"] = json!(bounded);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn a_series_is_bounded_while_its_second_half_stays_near_the_first_halfs_peak() {
        assert!(summary(&[10.0, 100.0, 90.0, 110.0], 1.0).1);
        assert!(!summary(&[10.0, 100.0, 200.0, 400.0], 1.0).1);
        // Near zero, the floor decides.
        assert!(summary(&[0.0, 0.0, 3.0, 1.0], 5.0).1);
    }
}

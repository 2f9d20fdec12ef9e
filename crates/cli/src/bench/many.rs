//! `many-webhooks`: 10,000 webhooks across 1,000 workspaces, each event matching one of them,
//! against the 1-webhook case measured beside it in the same run.
//!
//! Two servers run side by side: one with the many webhooks, one with a single webhook (the
//! setup of `fanout1`). The load alternates between them in slices of about two seconds, in the
//! order ABBA ABBA … so that both see the same phases of the machine, and each slice waits for
//! its deliveries before the next one starts. A comparison of two runs made one after the other
//! measures the machine's drift as much as the webhooks: on the VMs of docs/perf-log/rounds-2026-11-24-to-12-05.md that
//! drift alone moved figures by ±20%, twice the 10% the target allows.

use std::ops::Range;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    OPERATOR_KEY, Options, Receiver, Server, load, percentile, ratio, round2, setup,
    wait_delivered, warm_up,
};

/// About how long one slice of load lasts.
const SLICE: Duration = Duration::from_secs(2);

/// One of the two servers and what its slices measured.
struct Side {
    server: Server,
    spaces: Range<usize>,
    /// Publish latencies (µs) of the steady-rate slices.
    steady_us: Vec<u64>,
    /// Publish latencies (µs) of the saturating slices.
    saturated_us: Vec<u64>,
    /// Events accepted and seconds spent in the saturating slices.
    accepted: u64,
    seconds: f64,
    /// The server's CPU seconds (all threads, and the writer's) over the saturating slices,
    /// their deliveries included.
    cpu: f64,
    writer_cpu: Option<f64>,
    delivered_all: bool,
}

impl Side {
    async fn start(
        opts: &Options,
        rx_url: &str,
        rx: &Receiver,
        spaces: Range<usize>,
        per_workspace: usize,
    ) -> anyhow::Result<Side> {
        let server = Server::start(opts, true, None).await?;
        setup(&server.base, rx_url, spaces.clone(), per_workspace, true).await?;
        // Every workspace publishes before anything is measured, as in a system that has been
        // running (`latency` warms up alike).
        rx.reset(false);
        let warm = warm_up(&server.base, spaces.clone()).await?;
        let delivered_all = wait_delivered(rx, warm, Duration::from_secs(60)).await;
        Ok(Side {
            server,
            spaces,
            steady_us: Vec::new(),
            saturated_us: Vec::new(),
            accepted: 0,
            seconds: 0.0,
            cpu: 0.0,
            writer_cpu: None,
            delivered_all,
        })
    }

    /// One slice of load: at `rate` events/s over at most 16 connections, or saturating over
    /// all of them when `rate` is `None`; then waits until every event of it was delivered.
    async fn slice(
        &mut self,
        opts: &Options,
        rx: &Receiver,
        rate: Option<u64>,
        length: Duration,
    ) -> anyhow::Result<()> {
        rx.reset(false);
        let (_, cpu0) = self.server.usage();
        let writer0 = self.server.writer_cpu();
        let connections = match rate {
            Some(_) => opts.connections.clamp(1, 16),
            None => opts.connections,
        };
        let l = load(
            &format!("{}/v1/events", self.server.base),
            Some(OPERATOR_KEY),
            connections,
            length,
            rate,
            self.spaces.clone(),
        )
        .await?;
        self.delivered_all &= wait_delivered(rx, l.accepted, Duration::from_secs(600)).await;
        if rate.is_some() {
            self.steady_us.extend(l.publish_latencies_us);
            return Ok(());
        }
        self.saturated_us.extend(l.publish_latencies_us);
        self.accepted += l.accepted;
        self.seconds += l.elapsed.as_secs_f64();
        let (_, cpu1) = self.server.usage();
        self.cpu += cpu1 - cpu0;
        if let (Some(w0), Some(w1)) = (writer0, self.server.writer_cpu()) {
            self.writer_cpu = Some(self.writer_cpu.unwrap_or(0.0) + w1 - w0);
        }
        Ok(())
    }

    /// Publish p50 and p99 (ms) of the steady and of the saturating slices.
    fn percentiles(&mut self) -> [f64; 4] {
        self.steady_us.sort_unstable();
        self.saturated_us.sort_unstable();
        [
            percentile(&self.steady_us, 0.5),
            percentile(&self.steady_us, 0.99),
            percentile(&self.saturated_us, 0.5),
            percentile(&self.saturated_us, 0.99),
        ]
    }

    fn events_per_sec(&self) -> f64 {
        (self.accepted as f64 / self.seconds.max(1e-6)).round()
    }

    /// Server CPU per accepted event of the saturating slices, in µs.
    fn cpu_per_event_us(&self) -> f64 {
        self.cpu * 1e6 / (self.accepted.max(1) as f64)
    }
}

/// How many slices each side gets, and how long each lasts, for a run of `duration` per side.
fn slices(duration: Duration) -> (u32, Duration) {
    let n = (duration.as_secs_f64() / SLICE.as_secs_f64())
        .round()
        .max(1.0) as u32;
    (n, duration / n)
}

/// Whether the many-webhooks side goes first in the `i`th pair of slices (ABBA ABBA …).
fn many_first(i: u32) -> bool {
    i.is_multiple_of(2)
}

/// Runs the scenario; the line it returns compares the many webhooks with the one.
pub(super) async fn run(opts: &Options, rx_url: &str, rx: &Receiver) -> anyhow::Result<Value> {
    let per = (opts.webhooks / opts.workspaces.max(1)).max(1);
    let mut many = Side::start(opts, rx_url, rx, 0..opts.workspaces, per).await?;
    // The reference uses the next workspace number, so that on PostgreSQL (where both servers
    // share the database) it is a workspace of its own with exactly one webhook.
    let one_space = opts.workspaces..opts.workspaces + 1;
    let mut one = Side::start(opts, rx_url, rx, one_space, 1).await?;
    let (n, length) = slices(opts.duration);
    // First the steady `--rate` of `latency` (publish latency as such, not bounded by
    // throughput), then saturating load.
    for rate in [Some(opts.rate), None] {
        for i in 0..n {
            let (first, second) = if many_first(i) {
                (&mut many, &mut one)
            } else {
                (&mut one, &mut many)
            };
            first.slice(opts, rx, rate, length).await?;
            second.slice(opts, rx, rate, length).await?;
        }
    }
    let m = many.percentiles();
    let o = one.percentiles();
    let (rss, cpu) = many.server.usage();
    let failed = match (
        many.server.failed_attempts().await,
        one.server.failed_attempts().await,
    ) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    let mut v = json!({"scenario": "many-webhooks", "webhooks": per * opts.workspaces, "workspaces": opts.workspaces,
        "slices": n, "slice_seconds": round2(length.as_secs_f64()),
        "events_accepted": many.accepted, "events_per_sec": many.events_per_sec(),
        "publish_p50_ms": m[2], "publish_p99_ms": m[3],
        "delivered_equals_accepted": many.delivered_all && one.delivered_all,
        "peak_rss_mb": rss.round(), "cpu_seconds": cpu, "load_cpu_seconds": round2(many.cpu),
        "rate": opts.rate, "rate_publish_p50_ms": m[0], "rate_publish_p99_ms": m[1],
        "one_webhook_events_accepted": one.accepted, "one_webhook_events_per_sec": one.events_per_sec(),
        "one_webhook_publish_p50_ms": o[2], "one_webhook_publish_p99_ms": o[3],
        "one_webhook_rate_publish_p50_ms": o[0], "one_webhook_rate_publish_p99_ms": o[1],
        "one_webhook_load_cpu_seconds": round2(one.cpu),
        "p50_vs_one_webhook": ratio(m[2], o[2]), "p99_vs_one_webhook": ratio(m[3], o[3]),
        "rate_p50_vs_one_webhook": ratio(m[0], o[0]), "rate_p99_vs_one_webhook": ratio(m[1], o[1]),
        "cpu_per_event_vs_one_webhook": ratio(many.cpu_per_event_us(), one.cpu_per_event_us())});
    if let Some(w) = many.writer_cpu {
        v["writer_cpu_seconds"] = json!(round2(w));
    }
    if let Some(w) = one.writer_cpu {
        v["one_webhook_writer_cpu_seconds"] = json!(round2(w));
    }
    if let Some(f) = failed {
        v["failed_attempts"] = json!(f);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_split_the_duration_into_about_two_seconds_each() {
        assert_eq!(slices(Duration::from_secs(10)), (5, Duration::from_secs(2)));
        assert_eq!(
            slices(Duration::from_secs(7)),
            (4, Duration::from_millis(1750))
        );
        // A smoke run shorter than a slice still gets one slice per side.
        assert_eq!(
            slices(Duration::from_millis(500)),
            (1, Duration::from_millis(500))
        );
    }

    #[test]
    fn the_order_alternates_abba() {
        let order: Vec<bool> = (0..4).map(many_first).collect();
        assert_eq!(order, [true, false, true, false]);
    }
}

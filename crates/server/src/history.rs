//! The last hour of this node's numbers, for the console's health charts: every
//! [`SAMPLE_EVERY`] a reading of the same counters `/metrics` shows (attempts, successes,
//! attempt time) and the queue depth. The readings are cumulative; [`points`] turns
//! neighbouring readings into rates. Kept in memory per node: a restarted node starts a new
//! hour, and each node of a cluster charts what it did itself.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_store::Store;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::metrics::Metrics;

/// How often the counters are read.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Readings kept: one hour, and the one before it to start the first interval.
const KEEP: usize = 361;

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at_ms: i64,
    /// Attempts made since the start (every outcome).
    pub attempts: u64,
    /// Attempts with outcome `ok`.
    pub succeeded: u64,
    /// Seconds spent in attempts since the start.
    pub attempt_seconds: f64,
    /// Pending deliveries (`None` when the store did not answer).
    pub queue_depth: Option<i64>,
}

/// One interval of a chart.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// The interval's end, Unix ms.
    pub at: i64,
    /// Successful deliveries per second.
    pub deliveries_per_second: f64,
    /// Attempts per second, whatever their outcome.
    pub attempts_per_second: f64,
    /// Share of the interval's attempts that succeeded (`null` without attempts).
    pub success_rate: Option<f64>,
    /// Mean attempt time in milliseconds (`null` without attempts).
    pub mean_attempt_ms: Option<f64>,
    pub queue_depth: Option<i64>,
}

/// The readings of the last hour.
#[derive(Debug, Clone, Default)]
pub struct History(Arc<Mutex<VecDeque<Reading>>>);

impl History {
    pub fn push(&self, r: Reading) {
        let mut h = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if h.len() == KEEP {
            h.pop_front();
        }
        h.push_back(r);
    }

    /// The chart's points, oldest first, the last one ending at `now` (a reading taken for
    /// the request, so the chart is current).
    pub fn points(&self, now: Reading) -> Vec<Point> {
        let h = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        points(h.iter().copied().chain(std::iter::once(now)))
    }
}

/// Rates between neighbouring readings.
pub fn points(readings: impl IntoIterator<Item = Reading>) -> Vec<Point> {
    let mut out = Vec::new();
    let mut previous: Option<Reading> = None;
    for r in readings {
        if let Some(p) = previous {
            let secs = (r.at_ms - p.at_ms) as f64 / 1000.0;
            let attempts = r.attempts.saturating_sub(p.attempts);
            let succeeded = r.succeeded.saturating_sub(p.succeeded);
            if secs > 0.0 {
                out.push(Point {
                    at: r.at_ms,
                    deliveries_per_second: succeeded as f64 / secs,
                    attempts_per_second: attempts as f64 / secs,
                    success_rate: (attempts > 0).then(|| succeeded as f64 / attempts as f64),
                    mean_attempt_ms: (attempts > 0).then(|| {
                        (r.attempt_seconds - p.attempt_seconds) * 1000.0 / attempts as f64
                    }),
                    queue_depth: r.queue_depth,
                });
            }
        }
        previous = Some(r);
    }
    out
}

/// The counters now.
pub async fn read(store: &Store, metrics: &Metrics, clock: &Clock) -> Reading {
    let (attempts, succeeded, attempt_seconds) = metrics.attempt_totals();
    Reading {
        at_ms: clock.now_ms(),
        attempts,
        succeeded,
        attempt_seconds,
        queue_depth: store.pending_count().await.ok(),
    }
}

/// Reads the counters every [`SAMPLE_EVERY`] until shutdown.
pub async fn sample(
    store: Store,
    metrics: Metrics,
    history: History,
    clock: Clock,
    shutdown: CancellationToken,
) {
    loop {
        history.push(read(&store, &metrics, &clock).await);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_s: i64, attempts: u64, succeeded: u64, secs: f64) -> Reading {
        Reading {
            at_ms: at_s * 1000,
            attempts,
            succeeded,
            attempt_seconds: secs,
            queue_depth: Some(3),
        }
    }

    #[test]
    fn points_are_rates_between_readings() {
        let p = points([
            reading(0, 0, 0, 0.0),
            reading(10, 100, 80, 5.0),
            reading(20, 100, 80, 5.0),
        ]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].deliveries_per_second, 8.0);
        assert_eq!(p[0].attempts_per_second, 10.0);
        assert_eq!(p[0].success_rate, Some(0.8));
        assert_eq!(p[0].mean_attempt_ms, Some(50.0));
        assert_eq!((p[1].success_rate, p[1].deliveries_per_second), (None, 0.0));
    }

    #[test]
    fn the_history_keeps_an_hour() {
        let h = History::default();
        for i in 0..1000 {
            h.push(reading(i * 10, 0, 0, 0.0));
        }
        let p = h.points(reading(9_995, 10, 10, 1.0));
        assert_eq!(p.len(), KEEP);
        assert_eq!(p.last().map(|p| p.at), Some(9_995_000));
        assert_eq!(p.last().map(|p| p.deliveries_per_second), Some(2.0));
    }
}

//! Prometheus metrics (`GET /metrics`): events published, attempts by outcome, attempt latency,
//! queue depth, webhooks disabled, and requests in flight for the busiest webhooks (at most
//! [`IN_FLIGHT_TOP`] label values, so label cardinality stays bounded however many webhooks
//! exist).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Webhooks shown by name in `tidings_webhook_in_flight`; the rest are summed as `other`.
pub const IN_FLIGHT_TOP: usize = 20;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// Shared handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    events: Counter,
    attempts: Family<OutcomeLabel, Counter>,
    latency: Histogram,
    disabled: Counter,
    emulated: Family<OutcomeLabel, Counter>,
    /// Attempts and the microseconds they took, counted where the histogram observes them
    /// (the histogram itself does not expose its sum): the console's health charts.
    attempt_count: Counter,
    attempt_micros: Counter,
}

/// What `/metrics` measures at scrape time, besides the counters.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Pending deliveries (`None` when the store did not answer).
    pub queue_depth: Option<i64>,
    /// Emulator requests in flight on this node.
    pub emulating: usize,
    /// Notification requests in flight on this node, per webhook (the worker's slots).
    pub in_flight: Vec<(String, usize)>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tidings");
        let events = Counter::default();
        registry.register(
            "events_published",
            "Events accepted (not counting idempotent repeats)",
            events.clone(),
        );
        let attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Notification attempts by outcome",
            attempts.clone(),
        );
        let latency = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "attempt_duration_seconds",
            "Duration of notification attempts",
            latency.clone(),
        );
        let disabled = Counter::default();
        registry.register(
            "webhooks_disabled",
            "Webhooks Tidings disabled (410 Gone or failing too long)",
            disabled.clone(),
        );
        let emulated = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "emulator_attempts",
            "Notifications the emulator sent, by outcome (not deliveries)",
            emulated.clone(),
        );
        Self {
            registry: Arc::new(registry),
            events,
            attempts,
            latency,
            disabled,
            emulated,
            attempt_count: Counter::default(),
            attempt_micros: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn events_published(&self, n: u64) {
        self.events.inc_by(n);
    }

    pub fn attempt(&self, outcome: &str, duration: Duration) {
        self.attempts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.latency.observe(duration.as_secs_f64());
        self.attempt_count.inc();
        self.attempt_micros
            .inc_by(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX));
    }

    /// An emulated notification (counted apart from deliveries).
    pub fn emulated(&self, outcome: &str) {
        self.emulated
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Attempts made, attempts with outcome `ok`, and seconds spent in attempts, since start
    /// (the numbers behind `tidings_delivery_attempts_total` and
    /// `tidings_attempt_duration_seconds`).
    pub fn attempt_totals(&self) -> (u64, u64, f64) {
        let ok = self
            .attempts
            .get(&OutcomeLabel {
                outcome: "ok".to_string(),
            })
            .map_or(0, |c| c.get());
        (
            self.attempt_count.get(),
            ok,
            self.attempt_micros.get() as f64 / 1e6,
        )
    }

    pub fn webhook_disabled(&self) {
        self.disabled.inc();
    }

    /// The text exposition, with the gauges measured now.
    pub fn render(&self, gauges: Gauges) -> String {
        let Gauges {
            queue_depth,
            emulating,
            in_flight: mut busiest,
        } = gauges;
        let mut out = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_err() {
            out.clear();
        }
        // The registry ends its part with "# EOF"; the gauges measured at scrape time follow.
        if out.ends_with("# EOF\n") {
            out.truncate(out.len() - "# EOF\n".len());
        }
        if let Some(depth) = queue_depth {
            out.push_str("# HELP tidings_queue_depth Pending deliveries (due or scheduled).\n# TYPE tidings_queue_depth gauge\n");
            out.push_str(&format!("tidings_queue_depth {depth}\n"));
        }
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let total: usize = busiest.iter().map(|(_, n)| n).sum();
        out.push_str("# HELP tidings_in_flight Notification requests in flight on this node.\n# TYPE tidings_in_flight gauge\n");
        out.push_str(&format!("tidings_in_flight {total}\n"));
        out.push_str("# HELP tidings_emulator_in_flight Emulator requests in flight on this node.\n# TYPE tidings_emulator_in_flight gauge\n");
        out.push_str(&format!("tidings_emulator_in_flight {emulating}\n"));
        out.push_str("# HELP tidings_webhook_in_flight Requests in flight for the busiest webhooks on this node (the rest as webhook=\"other\").\n# TYPE tidings_webhook_in_flight gauge\n");
        let other: usize = busiest.iter().skip(IN_FLIGHT_TOP).map(|(_, n)| n).sum();
        for (webhook, n) in busiest.iter().take(IN_FLIGHT_TOP) {
            out.push_str(&format!(
                "tidings_webhook_in_flight{{webhook=\"{webhook}\"}} {n}\n"
            ));
        }
        if other > 0 {
            out.push_str(&format!(
                "tidings_webhook_in_flight{{webhook=\"other\"}} {other}\n"
            ));
        }
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_bounded_in_flight_labels() {
        let m = Metrics::default();
        m.events_published(3);
        m.attempt("ok", Duration::from_millis(4));
        m.attempt("timeout", Duration::from_secs(15));
        let text = m.render(Gauges {
            queue_depth: Some(7),
            emulating: 2,
            in_flight: (0..30).map(|i| (format!("w{i:02}"), 1)).collect(),
        });
        assert!(text.contains("tidings_events_published_total 3"), "{text}");
        assert!(
            text.contains("tidings_delivery_attempts_total{outcome=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("tidings_queue_depth 7"));
        assert!(text.contains("tidings_in_flight 30"));
        assert!(text.contains("tidings_emulator_in_flight 2"));
        assert_eq!(
            text.matches("tidings_webhook_in_flight{").count(),
            IN_FLIGHT_TOP + 1
        );
        assert!(text.contains("webhook=\"other\"} 10"));
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.trim_end().ends_with("# EOF"));
    }
}

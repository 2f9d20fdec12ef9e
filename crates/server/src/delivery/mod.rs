//! The delivery worker: claims due deliveries from the durable queue (with a lease), sends
//! them with bounded concurrency, and records every attempt together with the delivery's next
//! state in batched commits.
//!
//! The API never sends a webhook; only this worker does. A delivery is completed or
//! rescheduled in the same transaction that records its attempt. If the process dies, its
//! leases expire and the deliveries become due again (at-least-once).

pub mod guard;
pub mod sender;

use std::sync::Arc;
use std::time::Duration;

use tidings_core::ids;
use tidings_store::{AttemptRecord, Completion, Job, NextState, Store};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::DeliveryConfig;
use sender::{AttemptResult, Notification, Outcome, Sender};

/// Everything the worker needs; cheap to clone into tasks.
#[derive(Clone, Debug)]
pub struct Worker {
    pub store: Store,
    pub config: DeliveryConfig,
    pub clock: Clock,
    pub sender: Sender,
    /// Identifies this process's leases.
    pub node_id: String,
    /// Notified when new deliveries were committed.
    pub wake: Arc<Notify>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Worker {
    /// Decides the delivery's next state from an attempt's result.
    pub fn next_state(&self, job: &Job, result: &AttemptResult, now: i64) -> NextState {
        if result.outcome == Outcome::Ok {
            return NextState::Succeeded;
        }
        let made = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
        match self.config.retry.delay(made, rand::random::<f64>()) {
            Some(delay) => NextState::Retry(now + millis(delay)),
            None => NextState::Failed,
        }
    }

    /// Sends one claimed delivery and returns what to record.
    pub async fn attempt(&self, job: Job) -> Completion {
        let started_at = self.clock.now_ms();
        // The workspace fields are parsed only for webhooks that ask for some.
        let company: Option<serde_json::Map<String, serde_json::Value>> =
            if job.webhook.spec.extra_fields.is_empty() {
                None
            } else {
                job.company_fields
                    .as_deref()
                    .and_then(|f| serde_json::from_str(f).ok())
            };
        let notification = Notification {
            webhook: &job.webhook,
            event: &job.event,
            message_id: &job.delivery_id,
            status_path: job.status_path.as_deref(),
            company_fields: company.as_ref(),
        };
        let result = self.sender.send(notification, started_at).await;
        let now = self.clock.now_ms();
        let next = self.next_state(&job, &result, now);
        let attempt_no = job.attempts + 1;
        tracing::debug!(delivery = %job.delivery_id, webhook = %job.webhook.id, attempt = attempt_no,
            outcome = result.outcome.as_str(), status = ?result.status, "attempt finished");
        let json = |m: &std::collections::BTreeMap<String, String>| {
            serde_json::to_string(m).unwrap_or_default()
        };
        Completion {
            delivery_id: job.delivery_id.clone(),
            attempts: attempt_no,
            next,
            attempt: Some(AttemptRecord {
                id: ids::attempt_id(),
                delivery_id: job.delivery_id,
                attempt_no,
                started_at,
                duration_ms: millis(result.duration),
                outcome: result.outcome.as_str().to_string(),
                status: result.status.map(i64::from),
                request_headers: json(&result.request_headers),
                response_headers: json(&result.response_headers),
                response_body: result.response_body,
                error: result.error,
            }),
        }
    }

    /// Claims and sends until the queue has nothing due, then returns how many were sent.
    /// Tests use it to drive the worker step by step.
    pub async fn drain_once(&self, limit: i64) -> Result<usize, tidings_store::StoreError> {
        let now = self.clock.now_ms();
        let jobs = self
            .store
            .claim(&self.node_id, now, now + millis(self.config.lease), limit)
            .await?;
        let n = jobs.len();
        let mut done = Vec::with_capacity(n);
        for job in jobs {
            done.push(self.attempt(job).await);
        }
        self.store
            .complete(&self.node_id, self.clock.now_ms(), &done)
            .await?;
        Ok(n)
    }

    /// Runs until `shutdown` is cancelled, then waits up to the grace period for requests in
    /// flight and records them.
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let (done_tx, done_rx) = mpsc::channel::<Completion>(self.config.concurrency * 2);
        let recorder = tokio::spawn(record(
            self.store.clone(),
            self.node_id.clone(),
            self.clock.clone(),
            done_rx,
        ));
        let mut tasks = JoinSet::new();
        let mut backoff = self.config.poll_interval;
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tasks.join_next() => continue,
                }
            }
            let now = self.clock.now_ms();
            let claimed = self
                .store
                .claim(
                    &self.node_id,
                    now,
                    now + millis(self.config.lease),
                    i64::try_from(free).unwrap_or(1),
                )
                .await;
            let jobs = match claimed {
                Ok(jobs) => {
                    backoff = self.config.poll_interval;
                    jobs
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "claiming deliveries failed; backing off");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => continue,
                    }
                }
            };
            let full = jobs.len() == free;
            for job in jobs {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let worker = self.clone();
                let done = done_tx.clone();
                tasks.spawn(async move {
                    let completion = worker.attempt(job).await;
                    let _ = done.send(completion).await;
                    drop(permit);
                });
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "waiting for deliveries in flight");
            let waited = tokio::time::timeout(self.config.shutdown_grace, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if waited.is_err() {
                tracing::warn!(
                    left = tasks.len(),
                    "grace period over; unfinished deliveries will be retried after their lease"
                );
                tasks.abort_all();
            }
        }
        drop(done_tx);
        let _ = recorder.await;
    }
}

/// Records completions in batches: one transaction for whatever has finished meanwhile.
async fn record(store: Store, owner: String, clock: Clock, mut rx: mpsc::Receiver<Completion>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        let mut tries = 0;
        loop {
            match store.complete(&owner, clock.now_ms(), &batch).await {
                Ok(()) => break,
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = ?e, tries, "recording attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    // The deliveries stay leased and are sent again when the lease expires.
                    tracing::error!(error = ?e, count = batch.len(), "could not record attempts; they will be repeated");
                    break;
                }
            }
        }
        batch.clear();
    }
}

//! The delivery worker: claims due deliveries from the durable queue (with a lease), sends
//! them with bounded concurrency, and records every attempt together with the delivery's next
//! state in batched commits.
//!
//! The API never sends a delivery; only this worker does. A delivery is completed or
//! rescheduled in the same transaction that records its attempt. If the process dies, its
//! leases expire and the deliveries become due again (at-least-once).
//!
//! Isolation: a webhook has `per_webhook_concurrency` requests in flight on a node, more (up to
//! `per_webhook_concurrency_max`) only while its receiver answers fast (see [`slots`]);
//! deliveries of a webhook at its limit are not claimed (and any claimed beyond what it can start
//! or queue are given back at once), so a slow or dead receiver holds a bounded share of the
//! `concurrency` slots.

pub mod answer_budget;
pub mod outbound;
mod pace;
mod queues;
pub mod recorded;
pub mod room;
mod scheduler;
pub mod sender;
pub mod slots;
pub mod ssrf;
mod target;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tidings_core::event::{Event, OPERATIONAL_WEBHOOK_DISABLED};
use tidings_core::ids;
use tidings_core::webhook::Status;
use tidings_store::publisher::Publisher;
use tidings_store::{
    AttemptRecord, Completion, DisabledWebhook, Job, NextState, PublishRequest, Store,
};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::DeliveryConfig;
use pace::{Pace, Round, Signals};
use scheduler::Scheduler;
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
    /// Publishes operational events (`webhook.disabled`).
    pub publisher: Publisher,
    /// The workspace operational events belong to.
    pub operational_workspace: String,
    pub metrics: crate::metrics::Metrics,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The retry decision: the next state after an attempt (`unit` is a uniform sample in [0, 1)
/// for the jitter) and whether to disable the webhook.
pub fn decide(
    schedule: &tidings_core::retry::RetrySchedule,
    attempts_before: i64,
    result: &AttemptResult,
    now: i64,
    unit: f64,
) -> (NextState, Option<String>) {
    if result.outcome == Outcome::Ok {
        return (NextState::Succeeded, None);
    }
    if result.status == Some(410) {
        let reason = format!(
            "the receiver answered 410 Gone at {}",
            tidings_core::rfc3339(now)
        );
        return (NextState::Failed, Some(reason));
    }
    let made = u32::try_from(attempts_before + 1).unwrap_or(u32::MAX);
    let Some(scheduled) = schedule.delay(made, unit) else {
        return (NextState::Failed, None);
    };
    // Retry-After may push the next attempt back, but no earlier than the schedule and no later
    // than twice it.
    let wait = match result.retry_after {
        Some(asked) => asked.clamp(scheduled, scheduled * 2),
        None => scheduled,
    };
    (NextState::Retry(now + millis(wait)), None)
}

impl Worker {
    /// Decides the delivery's next state from an attempt's result (`unit` is a uniform sample
    /// in [0, 1) for the jitter), and whether the webhook must be disabled.
    pub fn next_state(
        &self,
        attempts_before: i64,
        result: &AttemptResult,
        now: i64,
        unit: f64,
    ) -> (NextState, Option<String>) {
        decide(&self.config.retry, attempts_before, result, now, unit)
    }

    /// Sends one claimed delivery and returns what to record.
    pub async fn attempt(&self, job: Job) -> Completion {
        if job.webhook.spec.status == Status::Disabled {
            // Disabled after the delivery was queued: nothing is sent.
            return Completion {
                delivery_id: job.delivery_id,
                webhook_id: job.webhook.id.clone(),
                disable_webhook: None,
                attempt: None,
                next: NextState::Cancelled,
                attempts: job.attempts,
            };
        }
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
        let (next, disable) = self.next_state(job.attempts, &result, now, rand::random::<f64>());
        let attempt_no = job.attempts + 1;
        self.metrics
            .attempt(result.outcome.as_str(), result.duration);
        tracing::debug!(delivery = %job.delivery_id, webhook = %job.webhook.id, attempt = attempt_no,
            outcome = result.outcome.as_str(), status = ?result.status, "attempt finished");
        Completion {
            delivery_id: job.delivery_id.clone(),
            webhook_id: job.webhook.id.clone(),
            disable_webhook: disable,
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
                request_headers: result.request_headers.into_string(),
                response_headers: result.response_headers.into_string(),
                response_body: result.response_body,
                error: result.error,
            }),
        }
    }

    /// The cut-off for auto-disable: webhooks failing since then or earlier are disabled.
    fn disable_cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(millis(self.config.auto_disable_after))
    }

    /// Records completions and announces the webhooks that got disabled.
    async fn complete(&self, batch: Arc<[Completion]>) -> Result<(), tidings_store::StoreError> {
        let now = self.clock.now_ms();
        let disabled = self
            .store
            .complete(&self.node_id, now, batch, self.disable_cutoff(now))
            .await?;
        for d in disabled {
            self.announce_disabled(d, now).await;
        }
        Ok(())
    }

    /// Publishes `webhook.disabled` to the operational workspace.
    async fn announce_disabled(&self, d: DisabledWebhook, now: i64) {
        tracing::warn!(webhook = %d.id, workspace = %d.workspace_id, reason = %d.reason, "webhook disabled");
        self.metrics.webhook_disabled();
        let data = json!({"webhookId": d.id, "workspaceId": d.workspace_id, "url": d.url, "status": "disabled",
            "reason": d.reason, "disabledAt": tidings_core::rfc3339(now)});
        let event = Event {
            id: ids::event_id(),
            kind: OPERATIONAL_WEBHOOK_DISABLED.to_string(),
            workspace_id: self.operational_workspace.clone(),
            data: data.to_string(),
            branch_id: None,
            business_unit_id: None,
            subject_id: Some(json!(d.id).to_string()),
            sender: None,
            origin_client_id: None,
            idempotency_key: None,
            occurred_at: now,
            created_at: now,
        };
        let req = PublishRequest {
            event,
            workspace_chain: vec![self.operational_workspace.clone()],
            deliver: true,
        };
        if let Err(e) = self.publisher.publish(vec![req]).await {
            tracing::error!(error = %e, "could not publish webhook.disabled");
        }
    }

    /// Claims and sends what is due (one batch), then records it; returns how many were sent.
    /// Tests drive the worker step by step with it.
    pub async fn drain_once(&self, limit: i64) -> Result<usize, tidings_store::StoreError> {
        let now = self.clock.now_ms();
        let jobs = self
            .store
            .claim(
                &self.node_id,
                now,
                now + millis(self.config.lease),
                limit,
                &[],
            )
            .await?;
        let n = jobs.len();
        let mut done = Vec::with_capacity(n);
        for job in jobs {
            done.push(self.attempt(job).await);
        }
        self.complete(done.into()).await?;
        Ok(n)
    }

    /// Runs until `shutdown` is cancelled, then waits up to the grace period for requests in
    /// flight and records them.
    ///
    /// Deliveries come two ways, and the [`Scheduler`] places both alike: new ones that
    /// publishes leased to this node under the worker's offer (see [`room`]) arrive on
    /// `intake`; due ones are claimed from the store. Claims are made only while the store may
    /// hold due deliveries ([`Pace`]): after a claim came back short, the next waits for a
    /// wake-up (a publish that left deliveries queued, a retry asked through the API) or the
    /// poll interval.
    pub async fn run(self, shutdown: CancellationToken, intake: room::Intake) {
        let room::Intake {
            capacity,
            rx: mut handed,
        } = intake;
        let (done_tx, done_rx) = mpsc::channel::<Completion>(self.config.concurrency * 2);
        let recorder = tokio::spawn(self.clone().record(done_rx));
        // Shared by the notification tasks: one reference count per task, not a copy of the
        // worker (its configuration and strings) per delivery.
        let shared = Arc::new(self.clone());
        let attempt: scheduler::Attempt = Box::new(move |job| {
            let worker = shared.clone();
            Box::pin(async move { worker.attempt(job).await })
        });
        let mut sched = Scheduler::new(capacity, self.clock.clone(), done_tx, attempt);
        let mut pace = Pace::new(&self.config);
        let mut signals = Signals::new(&shutdown, &self.wake, self.config.poll_interval);
        while !shutdown.is_cancelled() {
            sched.reap();
            while let Ok(jobs) = handed.try_recv() {
                self.take_handed(&mut sched, jobs, &mut pace).await;
            }
            if signals.poll_due() {
                // Retries come due with time, not with a wake-up.
                pace.due = true;
                sched.expire();
            }
            if sched.has_expired() {
                self.give_back_expired(sched.take_expired()).await;
                pace.due = true;
            }
            if pace.due && sched.free_permits() > 0 {
                let asked = pace.asked(sched.free_permits());
                match self.claim_round(&mut sched, asked).await {
                    Err(()) => {
                        let backoff = pace.failed();
                        tokio::select! {
                            () = &mut signals.cancelled => break,
                            () = tokio::time::sleep(backoff) => continue,
                        }
                    }
                    Ok(round) if pace.after(&round) && sched.free_permits() > 0 => continue,
                    Ok(_) => {}
                }
            }
            if !self
                .wait(&mut sched, &mut handed, &mut signals, &mut pace)
                .await
            {
                break;
            }
        }
        self.stop(sched, handed, recorder).await;
    }

    /// Waits for something to do: a wake-up, the poll timer, or a finished request that leaves
    /// room for a claim (its webhook's queue ran low, or no permit was free) or deliveries to
    /// give back. Handed-off jobs are placed meanwhile; a finished request whose webhook has
    /// deliveries waiting locally starts the next one without a claim. `false` on shutdown.
    async fn wait(
        &self,
        sched: &mut Scheduler,
        handed: &mut mpsc::UnboundedReceiver<room::Handed>,
        signals: &mut Signals<'_>,
        pace: &mut Pace,
    ) -> bool {
        let starved = sched.free_permits() == 0;
        loop {
            tokio::select! {
                () = &mut signals.cancelled => return false,
                () = &mut signals.woken => {
                    signals.woken.set(signals.wake.notified());
                    pace.due = true;
                    return true;
                }
                jobs = handed.recv(), if signals.intake_open => match jobs {
                    Some(jobs) => self.take_handed(sched, jobs, pace).await,
                    None => signals.intake_open = false,
                },
                low = sched.next_finished(), if sched.busy() => {
                    if ((low || starved) && pace.due) || sched.has_expired() {
                        return true;
                    }
                }
                () = &mut signals.poll_timer => return true,
            }
        }
    }

    /// One claim of up to `asked` due deliveries, placed by the scheduler; what it cannot place
    /// goes back to the store at once.
    async fn claim_round(&self, sched: &mut Scheduler, asked: usize) -> Result<Round, ()> {
        let now = self.clock.now_ms();
        let lease_until = now + millis(self.config.lease);
        let excluded = sched.saturated();
        let asked_i64 = i64::try_from(asked).unwrap_or(1);
        let claimed = self
            .store
            .claim(&self.node_id, now, lease_until, asked_i64, &excluded)
            .await;
        let jobs = claimed.map_err(|e| {
            tracing::warn!(error = ?e, "claiming deliveries failed; backing off");
        })?;
        let full = jobs.len() == asked;
        let overflow = sched.admit_claimed(jobs, lease_until);
        if !overflow.is_empty()
            && let Err(e) = self.store.release(&self.node_id, &overflow, now).await
        {
            // Not fatal: the leases expire and the deliveries come back by themselves.
            tracing::warn!(error = ?e, "giving back deliveries failed");
        }
        Ok(Round {
            full,
            excluded: !excluded.is_empty(),
            overflow: !overflow.is_empty(),
        })
    }

    /// Places deliveries handed off by publishes; what finds no room goes back to the store at
    /// once, due again.
    async fn take_handed(&self, sched: &mut Scheduler, jobs: room::Handed, pace: &mut Pace) {
        let overflow = sched.admit_handed(jobs, millis(self.config.lease));
        if !overflow.is_empty() {
            if let Err(e) = self
                .store
                .release(&self.node_id, &overflow, self.clock.now_ms())
                .await
            {
                tracing::warn!(error = ?e, "giving back deliveries failed; their leases will expire");
            }
            pace.due = true;
        }
    }

    /// Gives back deliveries that waited locally too long to finish inside their lease: due
    /// again now, for this node's next claim or another node's.
    async fn give_back_expired(&self, expired: Vec<String>) {
        tracing::debug!(
            count = expired.len(),
            "deliveries waited past their lease's margin; given back"
        );
        if let Err(e) = self
            .store
            .release(&self.node_id, &expired, self.clock.now_ms())
            .await
        {
            tracing::warn!(error = ?e, "giving back deliveries failed; their leases will expire");
        }
    }

    /// Gives back what waits locally (and what was handed off but not started), waits up to
    /// the grace period for the requests in flight, and lets the recorder finish.
    async fn stop(
        &self,
        sched: Scheduler,
        mut handed: mpsc::UnboundedReceiver<room::Handed>,
        recorder: tokio::task::JoinHandle<()>,
    ) {
        handed.close();
        let mut unstarted = Vec::new();
        while let Ok(jobs) = handed.try_recv() {
            unstarted.extend(jobs);
        }
        let (held, mut tasks) = sched.stop(unstarted);
        if let Err(e) = self
            .store
            .release(&self.node_id, &held, self.clock.now_ms())
            .await
        {
            tracing::warn!(error = ?e, "giving back waiting deliveries failed; their leases will expire");
        }
        let left = tasks.len();
        if left > 0 {
            tracing::info!(in_flight = left, "waiting for deliveries in flight");
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
        // The recorder ends once every task's sender is gone.
        drop(tasks);
        let _ = recorder.await;
    }

    /// Records completions in batches: one transaction for whatever has finished meanwhile.
    async fn record(self, mut rx: mpsc::Receiver<Completion>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 512).await > 0 {
            let mut tries = 0;
            let shared: Arc<[Completion]> = std::mem::take(&mut batch).into();
            loop {
                match self.complete(shared.clone()).await {
                    Ok(()) => break,
                    Err(e) if tries < 5 => {
                        tries += 1;
                        tracing::warn!(error = ?e, tries, "recording attempts failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                    }
                    Err(e) => {
                        // The deliveries stay leased and are sent again when the lease expires.
                        tracing::error!(error = ?e, count = shared.len(), "could not record attempts; they will be repeated");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sender::{AttemptResult, Outcome};
    use proptest::prelude::Strategy as _;
    use std::time::Duration;

    fn result(
        outcome: Outcome,
        status: Option<u16>,
        retry_after: Option<Duration>,
    ) -> AttemptResult {
        AttemptResult {
            outcome,
            request_body: Default::default(),
            status,
            request_headers: Default::default(),
            response_headers: Default::default(),
            response_body: String::new(),
            duration: Duration::ZERO,
            error: None,
            retry_after,
        }
    }

    /// The retry decision alone, with the default schedule and an injected jitter sample.
    fn decide(
        attempts_before: i64,
        r: &AttemptResult,
        unit: f64,
    ) -> (tidings_store::NextState, Option<String>) {
        let schedule = tidings_core::retry::RetrySchedule::default();
        super::decide(&schedule, attempts_before, r, 1_000_000, unit)
    }

    #[test]
    fn failures_follow_the_schedule_with_jitter_until_exhausted() {
        use tidings_store::NextState::*;
        let r = result(Outcome::HttpStatus, Some(500), None);
        assert_eq!(decide(0, &r, 0.5).0, Retry(1_000_000 + 5_000));
        assert_eq!(decide(0, &r, 0.0).0, Retry(1_000_000 + 4_000));
        assert_eq!(decide(1, &r, 0.5).0, Retry(1_000_000 + 300_000));
        assert_eq!(decide(8, &r, 0.5).0, Retry(1_000_000 + 24 * 3_600_000));
        assert_eq!(decide(9, &r, 0.5).0, Failed);
        assert_eq!(
            decide(0, &result(Outcome::Ok, Some(204), None), 0.5).0,
            Succeeded
        );
    }

    #[test]
    fn retry_after_is_honoured_between_the_schedule_and_twice_it() {
        use tidings_store::NextState::Retry;
        let at = |secs| {
            decide(
                1,
                &result(
                    Outcome::HttpStatus,
                    Some(503),
                    Some(Duration::from_secs(secs)),
                ),
                0.5,
            )
            .0
        };
        assert_eq!(
            at(10),
            Retry(1_000_000 + 300_000),
            "earlier than scheduled: the schedule wins"
        );
        assert_eq!(at(450), Retry(1_000_000 + 450_000));
        assert_eq!(
            at(100_000),
            Retry(1_000_000 + 600_000),
            "capped at twice the schedule"
        );
    }

    proptest::proptest! {
        /// Whatever a receiver writes in `Retry-After`, parsing does not panic, and the next
        /// attempt lands between the schedule and twice it (never sooner, never much later).
        #[test]
        fn any_retry_after_keeps_the_next_attempt_in_bounds(
            value in proptest::prop_oneof![
                ".{0,40}",
                "[0-9]{1,25}",
                proptest::prelude::any::<u64>().prop_map(|n| n.to_string()),
                "(Mon|Sun), [0-9]{2} (Jan|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
            ],
            attempts_before in 0i64..12,
            unit in 0.0f64..1.0,
        ) {
            let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let parsed = super::sender::parse_retry_after(&value, now);
            if let Ok(n) = value.trim().parse::<u64>() {
                proptest::prop_assert_eq!(parsed, Some(Duration::from_secs(n)));
            }
            let r = result(Outcome::HttpStatus, Some(503), parsed);
            let plain = result(Outcome::HttpStatus, Some(503), None);
            match (decide(attempts_before, &r, unit).0, decide(attempts_before, &plain, unit).0) {
                (tidings_store::NextState::Retry(at), tidings_store::NextState::Retry(scheduled)) => {
                    let wait = scheduled - 1_000_000;
                    proptest::prop_assert!(at >= scheduled && at <= 1_000_000 + 2 * wait + 1, "{at} vs {scheduled}");
                }
                (a, b) => proptest::prop_assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn gone_fails_at_once_and_disables() {
        let (next, disable) = decide(0, &result(Outcome::HttpStatus, Some(410), None), 0.5);
        assert_eq!(next, tidings_store::NextState::Failed);
        assert!(disable.unwrap().contains("410"));
    }
}

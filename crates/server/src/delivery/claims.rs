//! The worker's claims and its local queues: deliveries claimed for a webhook at its in-flight
//! limit wait here (bounded) and start as its requests finish.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tidings_store::Job;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::slots::Slots;
use super::{Worker, millis};

/// Deliveries waiting locally, per webhook.
pub(super) type Waiting = HashMap<String, VecDeque<Job>>;

/// What a claim round found.
pub(super) struct Round {
    /// As many as asked for: more may be due.
    pub full: bool,
    /// Webhooks at their limit were left out: their deliveries are still due.
    pub excluded: bool,
    /// Some claimed deliveries could not start or wait and went back.
    pub overflow: bool,
}

/// Starts the next waiting deliveries of `webhook` while it has free slots and permits are free.
/// Returns whether its local queue ran low (time to claim more).
pub(super) fn start_waiting(
    waiting: &mut Waiting,
    webhook: &str,
    slots: &Slots,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<String>,
    spawn: &impl Fn(&mut JoinSet<String>, Job, OwnedSemaphorePermit),
    rounds: usize,
) -> bool {
    let Some(queue) = waiting.get_mut(webhook) else {
        return true;
    };
    while !queue.is_empty() && slots.try_take(webhook) {
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            slots.give_back(webhook);
            break;
        };
        if let Some(job) = queue.pop_front() {
            spawn(tasks, job, permit);
        }
    }
    let low = queue.len() * 2 < slots.limit(webhook) * rounds;
    if queue.is_empty() {
        waiting.remove(webhook);
    }
    low
}

impl Worker {
    /// One claim of up to `asked` due deliveries: each starts if its webhook has a free slot,
    /// waits locally if its webhook's queue has room, and goes back to the store otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn claim_round(
        &self,
        asked: usize,
        waiting: &mut Waiting,
        slots: &Slots,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<String>,
        spawn: &impl Fn(&mut JoinSet<String>, Job, OwnedSemaphorePermit),
        rounds: usize,
    ) -> Result<Round, ()> {
        let now = self.clock.now_ms();
        let excluded: Vec<String> = slots
            .saturated()
            .into_iter()
            .filter(|(w, limit)| waiting.get(w).is_some_and(|q| q.len() >= limit * rounds))
            .map(|(w, _)| w)
            .collect();
        let claimed = self
            .store
            .claim(
                &self.node_id,
                now,
                now + millis(self.config.lease),
                i64::try_from(asked).unwrap_or(1),
                &excluded,
            )
            .await;
        let jobs = claimed.map_err(|e| {
            tracing::warn!(error = ?e, "claiming deliveries failed; backing off");
        })?;
        let full = jobs.len() == asked;
        let mut overflow = Vec::new();
        for job in jobs {
            let webhook = job.webhook.id.clone();
            if slots.try_take(&webhook) {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    slots.give_back(&webhook);
                    overflow.push(job.delivery_id);
                    continue;
                };
                spawn(tasks, job, permit);
            } else {
                let cap = slots.limit(&webhook) * rounds;
                let queue = waiting.entry(webhook).or_default();
                if queue.len() < cap {
                    queue.push_back(job);
                } else {
                    overflow.push(job.delivery_id);
                }
            }
        }
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
}

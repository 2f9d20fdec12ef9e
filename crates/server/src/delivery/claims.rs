//! The worker's claims and its local queues: deliveries claimed or handed off for a webhook at
//! its in-flight limit wait here (bounded by [`Capacity::queue_cap`], counted in
//! [`Capacity::queued`]) and start as its requests finish.

use std::collections::VecDeque;

use tidings_core::fasthash::{HashMap, HashSet};
use tidings_store::Job;
use tokio::sync::OwnedSemaphorePermit;

use super::handoff::Capacity;
use super::{Tasks, Worker, millis};

/// Deliveries waiting locally, per webhook, each with the time (Unix ms) it must start by to
/// finish inside its lease; the webhooks whose next one could not start for want of a permit
/// (any finished request may free one); and the deliveries that waited past their time, to be
/// given back to the queue.
#[derive(Default)]
pub(super) struct Waiting {
    pub jobs: HashMap<String, VecDeque<(i64, Job)>>,
    pub stalled: HashSet<String>,
    pub expired: Vec<String>,
}

impl Waiting {
    /// Queues `job` (whose place in [`Capacity::queued`] is already counted), to start by
    /// `start_by`.
    pub fn push(&mut self, start_by: i64, job: Job) {
        self.jobs
            .entry(job.webhook.id.clone())
            .or_default()
            .push_back((start_by, job));
    }

    /// Moves every delivery that can no longer start in time (`now` in Unix ms) to `expired`.
    /// Runs at each poll tick, so that a delivery goes back to the queue before its lease ends
    /// even while nothing of its webhook finishes.
    pub fn expire(&mut self, now: i64, room: &Capacity) {
        let Waiting {
            jobs,
            stalled,
            expired,
        } = self;
        jobs.retain(|webhook, queue| {
            queue.retain(|(start_by, job)| {
                let keep = *start_by >= now;
                if !keep {
                    room.queued.remove(webhook);
                    expired.push(job.delivery_id.clone());
                }
                keep
            });
            if queue.is_empty() {
                stalled.remove(webhook);
            }
            !queue.is_empty()
        });
    }
}

/// What a claim round found.
pub(super) struct Round {
    /// As many as asked for: more may be due.
    pub full: bool,
    /// Webhooks at their limit were left out: their deliveries are still due.
    pub excluded: bool,
    /// Some claimed deliveries could not start or wait and went back.
    pub overflow: bool,
}

/// Starts the next waiting deliveries of `webhook` while it has free slots and permits are free
/// (`now` in Unix ms). One that can no longer finish inside its lease is not sent but moved to
/// `expired`, to go back to the queue. Returns whether the local queue ran low (time to claim
/// more).
pub(super) fn start_waiting(
    waiting: &mut Waiting,
    webhook: &str,
    room: &Capacity,
    tasks: &mut Tasks,
    spawn: &impl Fn(&mut Tasks, Job, OwnedSemaphorePermit),
    now: i64,
) -> bool {
    let Waiting {
        jobs,
        stalled: stalled_set,
        expired,
    } = waiting;
    let Some(queue) = jobs.get_mut(webhook) else {
        return true;
    };
    let mut stalled = false;
    loop {
        // Whatever waited too long (its webhook's requests slowed down after it was queued)
        // would be sent while its lease runs out: it goes back to the queue instead.
        while queue.front().is_some_and(|(start_by, _)| *start_by < now) {
            if let Some((_, job)) = queue.pop_front() {
                room.queued.remove(webhook);
                expired.push(job.delivery_id);
            }
        }
        if queue.is_empty() || !room.slots.try_take(webhook) {
            break;
        }
        let Ok(permit) = room.permits.clone().try_acquire_owned() else {
            room.slots.give_back(webhook);
            stalled = true;
            break;
        };
        if let Some((_, job)) = queue.pop_front() {
            room.queued.remove(webhook);
            spawn(tasks, job, permit);
        }
    }
    let low = queue.len() * 2 < room.queue_cap(webhook);
    if queue.is_empty() {
        jobs.remove(webhook);
        stalled_set.remove(webhook);
    } else if stalled {
        stalled_set.insert(webhook.to_string());
    } else {
        // At its limit again: its own requests start the rest.
        stalled_set.remove(webhook);
    }
    low
}

/// After a request finished: starts what waits for `webhook`, then, while permits are free,
/// what waits for webhooks that stalled for want of one. Returns whether `webhook`'s queue ran
/// low.
pub(super) fn finished(
    waiting: &mut Waiting,
    webhook: &str,
    room: &Capacity,
    tasks: &mut Tasks,
    spawn: &impl Fn(&mut Tasks, Job, OwnedSemaphorePermit),
    now: i64,
) -> bool {
    let low = start_waiting(waiting, webhook, room, tasks, spawn, now);
    if !waiting.stalled.is_empty() && room.permits.available_permits() > 0 {
        let stalled: Vec<String> = waiting.stalled.iter().cloned().collect();
        for w in stalled {
            if room.permits.available_permits() == 0 {
                break;
            }
            start_waiting(waiting, &w, room, tasks, spawn, now);
        }
    }
    low
}

impl Worker {
    /// One claim of up to `asked` due deliveries: each starts if its webhook has a free slot,
    /// waits locally if its webhook's queue has room, and goes back to the store otherwise.
    pub(super) async fn claim_round(
        &self,
        asked: usize,
        waiting: &mut Waiting,
        room: &Capacity,
        tasks: &mut Tasks,
        spawn: &impl Fn(&mut Tasks, Job, OwnedSemaphorePermit),
    ) -> Result<Round, ()> {
        let now = self.clock.now_ms();
        let lease_until = now + millis(self.config.lease);
        let excluded: Vec<String> = room
            .slots
            .saturated()
            .into_iter()
            .filter(|(w, limit)| room.queued.len(w) >= limit * room.rounds)
            .map(|(w, _)| w)
            .collect();
        let claimed = self
            .store
            .claim(
                &self.node_id,
                now,
                lease_until,
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
            if room.slots.try_take(&webhook) {
                let Ok(permit) = room.permits.clone().try_acquire_owned() else {
                    room.slots.give_back(&webhook);
                    overflow.push(job.delivery_id);
                    continue;
                };
                spawn(tasks, job, permit);
            } else if room.queued.try_add(&webhook, room.queue_cap(&webhook)) {
                waiting.push(room.start_by(lease_until), job);
            } else {
                overflow.push(job.delivery_id);
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::Arc;

    use serde_json::json;
    use tidings_core::event::Event;
    use tidings_core::webhook::Webhook;
    use tokio::sync::Semaphore;
    use tokio::task::JoinSet;

    use super::*;
    use crate::delivery::handoff::Queued;
    use crate::delivery::slots::Slots;

    fn job(webhook: &str, id: &str) -> Job {
        let spec = serde_json::from_value(json!({
            "name": "", "description": "", "applyToAllDescendants": false,
            "url": "http://127.0.0.1:9/", "secret": "whsec_test", "headers": {},
            "triggers": ["t"], "status": "enabled"
        }))
        .expect("a spec");
        Job {
            delivery_id: id.to_string(),
            attempts: 0,
            event: Arc::new(Event {
                id: "evt".into(),
                kind: "t".into(),
                workspace_id: "ws".into(),
                data: "{}".into(),
                branch_id: None,
                business_unit_id: None,
                subject_id: None,
                sender: None,
                origin_client_id: None,
                idempotency_key: None,
                occurred_at: 0,
                created_at: 0,
            }),
            webhook: Arc::new(Webhook {
                id: webhook.to_string(),
                workspace_id: "ws".into(),
                spec,
                updated: 0,
                disabled_reason: None,
                previous_secret: None,
                owner_client_id: None,
                created_at: 0,
            }),
            status_path: None,
            company_fields: None,
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    fn room(permits: usize) -> Capacity {
        Capacity {
            permits: Arc::new(Semaphore::new(permits)),
            slots: Slots::new(Arc::default(), 2, 2),
            queued: Queued::default(),
            rounds: 3,
            timeout_ms: 15_000,
        }
    }

    /// Queues `ids` for webhook `w`, each counted, to start by `start_by`.
    fn queue(waiting: &mut Waiting, room: &Capacity, w: &str, ids: &[&str], start_by: i64) {
        for id in ids {
            assert!(room.queued.try_add(w, room.queue_cap(w)));
            waiting.push(start_by, job(w, id));
        }
    }

    /// A delivery that could not start for want of a permit, while nothing of its webhook is in
    /// flight to start it later, starts when another webhook's request frees a permit.
    #[test]
    fn a_queue_stalled_for_want_of_a_permit_starts_when_any_request_finishes() {
        let room = room(1);
        let started = RefCell::new(Vec::new());
        let spawn = |_: &mut Tasks, job: Job, permit: OwnedSemaphorePermit| {
            started.borrow_mut().push((job.delivery_id, permit));
        };
        let mut tasks = JoinSet::new();
        let mut waiting = Waiting::default();
        // Webhook "b" holds the only permit; "a" has one delivery waiting and none in flight.
        let b_permit = room.permits.clone().try_acquire_owned().unwrap();
        assert!(room.slots.try_take("b"));
        queue(&mut waiting, &room, "a", &["dlv_a"], NOW + 1_000);
        start_waiting(&mut waiting, "a", &room, &mut tasks, &spawn, NOW);
        assert!(started.borrow().is_empty());
        assert!(waiting.stalled.contains("a"));

        // "b"'s request finishes: its permit and slot come back, and "a" starts.
        drop(b_permit);
        room.slots.give_back("b");
        finished(&mut waiting, "b", &room, &mut tasks, &spawn, NOW);
        let ids: Vec<String> = started.borrow().iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, ["dlv_a"]);
        assert!(waiting.stalled.is_empty() && waiting.jobs.is_empty());
        assert_eq!(
            room.queued.len("a"),
            0,
            "a started delivery no longer counts as queued"
        );
    }

    /// A delivery that can no longer start `timeout` before its lease ends is not sent when its
    /// turn comes: it is given back, and the ones behind it start.
    #[test]
    fn a_delivery_past_its_time_is_given_back_instead_of_sent() {
        let room = room(10);
        let started = RefCell::new(Vec::new());
        let spawn = |_: &mut Tasks, job: Job, _: OwnedSemaphorePermit| {
            started.borrow_mut().push(job.delivery_id);
        };
        let mut tasks = JoinSet::new();
        let mut waiting = Waiting::default();
        queue(&mut waiting, &room, "w", &["late"], NOW - 1);
        queue(&mut waiting, &room, "w", &["on_time"], NOW);
        start_waiting(&mut waiting, "w", &room, &mut tasks, &spawn, NOW);
        assert_eq!(*started.borrow(), ["on_time"]);
        assert_eq!(waiting.expired, ["late"]);
        assert_eq!(room.queued.len("w"), 0);
    }

    /// At a poll tick every queue gives back what can no longer start in time, even a webhook
    /// none of whose requests finishes (a slow receiver).
    #[test]
    fn the_poll_tick_gives_back_what_waited_too_long_in_any_queue() {
        let room = room(10);
        let mut waiting = Waiting::default();
        queue(&mut waiting, &room, "slow", &["s1", "s2"], NOW - 5);
        queue(&mut waiting, &room, "slow", &["s3"], NOW + 5);
        queue(&mut waiting, &room, "other", &["o1"], NOW - 5);
        waiting.stalled.insert("other".into());
        waiting.expire(NOW, &room);
        waiting.expired.sort();
        assert_eq!(waiting.expired, ["o1", "s1", "s2"]);
        assert_eq!(room.queued.len("slow"), 1);
        assert_eq!(room.queued.len("other"), 0);
        assert_eq!(waiting.jobs.len(), 1, "the emptied queue is gone");
        assert!(waiting.stalled.is_empty());
    }
}

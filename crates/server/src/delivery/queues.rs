//! The worker's local queues: deliveries claimed or handed off for a webhook at its in-flight
//! limit wait here (bounded by [`Capacity::queue_cap`], counted in [`Capacity::queued`]), each
//! with the time it must start by to finish inside its lease, and start as that webhook's
//! requests finish. Pure bookkeeping: what may start is handed back to the caller (the
//! [`Scheduler`](super::scheduler::Scheduler)), which sends it.

use std::collections::VecDeque;

use tidings_core::fasthash::{HashMap, HashSet};
use tidings_store::Job;
use tokio::sync::OwnedSemaphorePermit;

use super::room::Capacity;

/// A delivery that may start now, with the permit it holds while in flight (its webhook's slot
/// is taken too).
pub(super) type Ready = (Job, OwnedSemaphorePermit);

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

    /// Takes the next waiting deliveries of `webhook` into `ready` while it has free slots and
    /// permits are free (`now` in Unix ms). One that can no longer finish inside its lease is
    /// not started but moved to `expired`, to go back to the queue. Returns whether the local
    /// queue ran low (time to claim more).
    pub fn start(
        &mut self,
        webhook: &str,
        room: &Capacity,
        now: i64,
        ready: &mut Vec<Ready>,
    ) -> bool {
        let Waiting {
            jobs,
            stalled: stalled_set,
            expired,
        } = self;
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
                ready.push((job, permit));
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

    /// After a request of `webhook` finished: takes what waits for it, then, while permits are
    /// free, what waits for webhooks that stalled for want of one. Returns whether `webhook`'s
    /// queue ran low.
    pub fn after_finish(
        &mut self,
        webhook: &str,
        room: &Capacity,
        now: i64,
        ready: &mut Vec<Ready>,
    ) -> bool {
        let low = self.start(webhook, room, now, ready);
        if !self.stalled.is_empty() && room.permits.available_permits() > 0 {
            let stalled: Vec<String> = self.stalled.iter().cloned().collect();
            for w in stalled {
                if room.permits.available_permits() == 0 {
                    break;
                }
                self.start(&w, room, now, ready);
            }
        }
        low
    }

    /// The ids of every delivery waiting here or expired, to give back when the worker stops.
    pub fn into_ids(self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .jobs
            .into_values()
            .flatten()
            .map(|(_, j)| j.delivery_id)
            .collect();
        ids.extend(self.expired);
        ids
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tidings_core::event::Event;
    use tidings_core::webhook::Webhook;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::delivery::room::Queued;
    use crate::delivery::slots::Slots;

    /// A job of webhook `webhook` with delivery id `id`, of an event created at 0.
    pub(in crate::delivery) fn job(webhook: &str, id: &str) -> Job {
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

    pub(in crate::delivery) const NOW: i64 = 1_800_000_000_000;

    /// Room with `permits` permits, a fixed limit of 2 per webhook and queues of 3 rounds.
    pub(in crate::delivery) fn room(permits: usize) -> Capacity {
        Capacity {
            permits: Arc::new(Semaphore::new(permits)),
            slots: Slots::new(2, 2),
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
        let mut ready = Vec::new();
        let mut waiting = Waiting::default();
        // Webhook "b" holds the only permit; "a" has one delivery waiting and none in flight.
        let b_permit = room.permits.clone().try_acquire_owned().unwrap();
        assert!(room.slots.try_take("b"));
        queue(&mut waiting, &room, "a", &["dlv_a"], NOW + 1_000);
        waiting.start("a", &room, NOW, &mut ready);
        assert!(ready.is_empty());
        assert!(waiting.stalled.contains("a"));

        // "b"'s request finishes: its permit and slot come back, and "a" starts.
        drop(b_permit);
        room.slots.give_back("b");
        waiting.after_finish("b", &room, NOW, &mut ready);
        let ids: Vec<&str> = ready
            .iter()
            .map(|(job, _)| job.delivery_id.as_str())
            .collect();
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
        let mut ready = Vec::new();
        let mut waiting = Waiting::default();
        queue(&mut waiting, &room, "w", &["late"], NOW - 1);
        queue(&mut waiting, &room, "w", &["on_time"], NOW);
        waiting.start("w", &room, NOW, &mut ready);
        let ids: Vec<&str> = ready
            .iter()
            .map(|(job, _)| job.delivery_id.as_str())
            .collect();
        assert_eq!(ids, ["on_time"]);
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

//! The worker's scheduling state on this node, in one type: the request permits and each
//! webhook's slots (its [`Capacity`], from which the worker makes its hand-off offers), the
//! local queues of deliveries waiting for their webhook with the time each must start by to
//! finish inside its lease ([`Waiting`]), and the requests in flight.
//!
//! Every delivery, claimed or handed off, meets the same rule: it starts when its webhook has a
//! free slot and a permit is free; otherwise it waits in its webhook's queue (at most
//! [`Capacity::queue_cap`]) and starts as one of that webhook's requests finishes; otherwise it
//! goes back to the store. One that waited past its start-by time is not sent but given back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tidings_core::webhook::Webhook;
use tidings_store::{Completion, Job};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::queues::{Ready, Waiting};
use super::room::{Capacity, Handed};
use super::sender::Outcome;
use super::slots::FAST_ANSWER;
use crate::clock::Clock;

/// [`FAST_ANSWER`] in milliseconds, as attempts record their duration.
const FAST_MS: i64 = FAST_ANSWER.as_millis() as i64;

/// Sends one delivery and returns what to record (the worker's `attempt`).
pub(super) type Attempt =
    Box<dyn Fn(Job) -> Pin<Box<dyn Future<Output = Completion> + Send>> + Send + Sync>;

/// See the module documentation.
pub(super) struct Scheduler {
    room: Capacity,
    waiting: Waiting,
    /// The requests in flight; each ends with its webhook, whose slot it gave back.
    tasks: JoinSet<Arc<Webhook>>,
    attempt: Attempt,
    /// Where finished requests go to be recorded.
    done: mpsc::Sender<Completion>,
    clock: Clock,
    /// What a step lets start; reused.
    ready: Vec<Ready>,
}

impl Scheduler {
    pub fn new(
        room: Capacity,
        clock: Clock,
        done: mpsc::Sender<Completion>,
        attempt: Attempt,
    ) -> Self {
        Self {
            room,
            waiting: Waiting::default(),
            tasks: JoinSet::new(),
            attempt,
            done,
            clock,
            ready: Vec::new(),
        }
    }

    /// Permits free now: how many more requests may start.
    pub fn free_permits(&self) -> usize {
        self.room.permits.available_permits()
    }

    /// Whether requests are in flight.
    pub fn busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Webhooks to leave out of the next claim: at their slot limit, with a full local queue.
    pub fn saturated(&self) -> Vec<String> {
        let room = &self.room;
        room.slots
            .saturated()
            .into_iter()
            .filter(|(w, limit)| room.queued.len(w) >= limit * room.rounds)
            .map(|(w, _)| w)
            .collect()
    }

    /// Places claimed deliveries leased until `lease_until`: each starts, waits, or (neither
    /// possible) is returned by id, to go back to the store.
    pub fn admit_claimed(&mut self, jobs: Vec<Job>, lease_until: i64) -> Vec<String> {
        let mut overflow = Vec::new();
        for job in jobs {
            self.place(job, lease_until, &mut overflow);
        }
        self.launch();
        overflow
    }

    /// Places deliveries handed off by publishes, leased for `lease_ms` from their event's
    /// time, like claimed ones.
    pub fn admit_handed(&mut self, jobs: Handed, lease_ms: i64) -> Vec<String> {
        let mut overflow = Vec::new();
        for job in jobs {
            let lease_until = job.event.created_at.saturating_add(lease_ms);
            self.place(job, lease_until, &mut overflow);
        }
        self.launch();
        overflow
    }

    /// Starts `job` (a free slot of its webhook and a free permit), queues it (its webhook is
    /// at its limit and its queue has room) or adds it to `overflow`.
    fn place(&mut self, job: Job, lease_until: i64, overflow: &mut Vec<String>) {
        let room = &self.room;
        let webhook = job.webhook.id.as_str();
        if room.slots.try_take(webhook) {
            match room.permits.clone().try_acquire_owned() {
                Ok(permit) => self.ready.push((job, permit)),
                Err(_) => {
                    room.slots.give_back(webhook);
                    overflow.push(job.delivery_id);
                }
            }
        } else if room.queued.try_add(webhook, room.queue_cap(webhook)) {
            self.waiting.push(room.start_by(lease_until), job);
        } else {
            overflow.push(job.delivery_id);
        }
    }

    /// After a request of `webhook` finished: starts what waits for it (and for webhooks that
    /// waited for a permit). Returns whether its local queue ran low (time to claim more).
    pub fn finished(&mut self, webhook: &str) -> bool {
        let now = self.clock.now_ms();
        let low = self
            .waiting
            .after_finish(webhook, &self.room, now, &mut self.ready);
        self.launch();
        low
    }

    /// Takes in the requests that finished meanwhile, without waiting.
    pub fn reap(&mut self) {
        while let Some(Ok(webhook)) = self.tasks.try_join_next() {
            self.finished(&webhook.id);
        }
    }

    /// Waits for a request to finish and starts what waits for its webhook. Returns whether
    /// that webhook's queue ran low (a request lost to a panic counts as low); pending while
    /// nothing is in flight.
    pub async fn next_finished(&mut self) -> bool {
        match self.tasks.join_next().await {
            Some(Ok(webhook)) => self.finished(&webhook.id),
            Some(Err(_)) => true,
            None => std::future::pending().await,
        }
    }

    /// Moves what can no longer start inside its lease out of the local queues (at each poll
    /// tick, so that it happens even while nothing of its webhook finishes).
    pub fn expire(&mut self) {
        self.waiting.expire(self.clock.now_ms(), &self.room);
    }

    /// The deliveries that waited past their start-by time, to give back.
    pub fn take_expired(&mut self) -> Vec<String> {
        std::mem::take(&mut self.waiting.expired)
    }

    /// Whether some waited past their start-by time.
    pub fn has_expired(&self) -> bool {
        !self.waiting.expired.is_empty()
    }

    /// Stops scheduling: the ids of every delivery that waits locally or was handed off but
    /// not started (to give back), and the requests in flight.
    pub fn stop(
        self,
        handed: impl IntoIterator<Item = Job>,
    ) -> (Vec<String>, JoinSet<Arc<Webhook>>) {
        let mut ids = self.waiting.into_ids();
        ids.extend(handed.into_iter().map(|job| job.delivery_id));
        (ids, self.tasks)
    }

    /// Sends what is ready, each in its own task, which gives back its webhook's slot (telling
    /// it whether the answer was fast) and its permit before its completion is recorded.
    fn launch(&mut self) {
        for (job, permit) in self.ready.drain(..) {
            let webhook = job.webhook.clone();
            let slots = self.room.slots.clone();
            let done = self.done.clone();
            // Boxed by `attempt`: the attempt's future (the HTTP client's among it) is large,
            // and the task's own future is moved into and out of its cell; a small task moves
            // a pointer instead of kilobytes.
            let sending = (self.attempt)(job);
            self.tasks.spawn(async move {
                let completion = sending.await;
                match &completion.attempt {
                    Some(a) => {
                        let fast = a.outcome == Outcome::Ok.as_str() && a.duration_ms < FAST_MS;
                        slots.finished(&webhook.id, fast);
                    }
                    None => slots.give_back(&webhook.id),
                }
                drop(permit);
                let _ = done.send(completion).await;
                webhook
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::queues::tests::{NOW, job, room};

    /// A scheduler whose requests never finish (they hold their permit and slot), over `room`.
    fn stuck(room: Capacity) -> Scheduler {
        let (done, _) = mpsc::channel(16);
        let attempt: Attempt = Box::new(|_job| Box::pin(std::future::pending::<Completion>()));
        Scheduler::new(room, Clock::default(), done, attempt)
    }

    /// Handed-off deliveries meet the same rule as claimed ones: they start while their
    /// webhook has slots and permits are free, wait while its queue has room, and what is left
    /// comes back to be given to the store.
    #[tokio::test]
    async fn handed_off_deliveries_start_wait_or_come_back() {
        let mut sched = stuck(room(10));
        let jobs: Vec<Job> = (0..10).map(|i| job("w", &format!("d{i}"))).collect();
        // Leased from the event's time (0) for far longer than the timeout: none has expired.
        let back = sched.admit_handed(jobs, NOW * 2);
        assert_eq!(sched.free_permits(), 8, "two slots: two started");
        assert!(sched.busy());
        assert_eq!(sched.room.queued.len("w"), 6, "three rounds of two wait");
        assert_eq!(back, ["d8", "d9"]);
        assert_eq!(
            sched.saturated(),
            ["w"],
            "at its limit with a full queue: left out of claims"
        );
    }

    /// Without a free permit a delivery whose webhook has a free slot cannot start, and it
    /// does not take a queue place meant for webhooks at their limit: it goes back.
    #[tokio::test]
    async fn without_a_permit_a_delivery_goes_back() {
        let room = room(1);
        let _held = room.permits.clone().try_acquire_owned().unwrap();
        let mut sched = stuck(room);
        let back = sched.admit_claimed(vec![job("w", "d0")], NOW * 2);
        assert_eq!(back, ["d0"]);
        assert!(!sched.busy());
        assert_eq!(sched.room.queued.len("w"), 0);
    }
}

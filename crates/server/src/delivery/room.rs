//! The worker's side of the publish hand-off (see `tidings_store::handoff`): a new delivery is
//! leased to this node in the publish's own transaction and comes here as a ready job, instead
//! of waiting for the next claim, while the worker has room for it:
//!
//! - a free request slot of its webhook and a free permit: it starts at once;
//! - otherwise, while its webhook is at its slot limit but the webhook's local queue is not full
//!   (the same bound claimed deliveries wait under): it waits there and starts as one of that
//!   webhook's requests finishes.
//!
//! Room is reserved before the commit (a [`Reserved`] ticket holds the permit and the webhook's
//! slot, or a place in its queue) and given back if the ticket is dropped unused. Without the
//! second kind, a burst of publishes beyond the webhooks' slots went back to the store and cost a
//! claim each (an `UPDATE` and the event read again): under `fanout10` 7–12% of the deliveries
//! with 32 publishing connections, most of them with 64 (docs/perf-log/rounds-2026-11-24-to-12-05.md, sixteenth round).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_core::fasthash::HashMap;
use tidings_store::{Handoff, Job, Ticket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::slots::{Slots, count_down, count_up, lock};
use crate::config::DeliveryConfig;

/// At most this many multiples of a webhook's in-flight limit wait locally (fewer when the lease
/// is short compared with the request timeout).
const MAX_QUEUED_ROUNDS: usize = 3;

/// How many deliveries each webhook has waiting in the worker's local queue, or on their way
/// there (reserved by a publish not yet handed over). Shared by the worker and the publisher.
#[derive(Clone, Debug, Default)]
pub struct Queued(Arc<Mutex<HashMap<String, usize>>>);

impl Queued {
    /// Counts one more for `webhook` unless it has `cap` already.
    pub fn try_add(&self, webhook: &str, cap: usize) -> bool {
        count_up(&mut lock(&self.0), webhook, cap)
    }

    /// Counts one less for `webhook` (one started, or its reservation went unused).
    pub fn remove(&self, webhook: &str) {
        count_down(&mut lock(&self.0), webhook);
    }

    /// How many `webhook` has waiting or on their way.
    pub fn len(&self, webhook: &str) -> usize {
        lock(&self.0).get(webhook).copied().unwrap_or(0)
    }
}

/// The worker's room: permits bound its requests in flight, slots each webhook's share, and
/// `rounds` times a webhook's share may wait locally.
#[derive(Clone, Debug)]
pub struct Capacity {
    pub permits: Arc<Semaphore>,
    pub slots: Slots,
    pub queued: Queued,
    /// A webhook's local queue holds this many times its current slot limit.
    pub rounds: usize,
    /// The request timeout, in ms: a waiting delivery must start this long before its lease
    /// ends.
    pub timeout_ms: i64,
}

impl Capacity {
    pub fn new(config: &DeliveryConfig) -> Self {
        // A waiting delivery starts within (queue / limit) request timeouts; keep that inside
        // the lease so no other node takes it over meanwhile.
        let rounds = (config.lease.as_millis() / config.timeout.as_millis().max(1))
            .saturating_sub(1)
            .max(1);
        Self {
            permits: Arc::new(Semaphore::new(config.concurrency)),
            slots: Slots::new(
                config.per_webhook_concurrency,
                config.per_webhook_concurrency_max,
            ),
            queued: Queued::default(),
            rounds: usize::try_from(rounds).unwrap_or(1).min(MAX_QUEUED_ROUNDS),
            timeout_ms: i64::try_from(config.timeout.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// The time (Unix ms) a delivery whose lease ends at `lease_until` must start by to finish
    /// inside it.
    pub fn start_by(&self, lease_until: i64) -> i64 {
        lease_until.saturating_sub(self.timeout_ms)
    }

    /// How many deliveries `webhook` may have waiting locally now.
    pub fn queue_cap(&self, webhook: &str) -> usize {
        self.slots.limit(webhook) * self.rounds
    }
}

/// Room for one delivery of a webhook: a permit and the webhook's slot, or a place in its local
/// queue. Dropped unused, it gives them back.
#[derive(Debug)]
pub struct Reserved {
    room: Option<Room>,
    webhook: String,
}

/// What a [`Reserved`] ticket holds.
#[derive(Debug)]
enum Room {
    Start(OwnedSemaphorePermit, Slots),
    Wait(Queued),
}

/// What a handed-off delivery does with its room.
#[derive(Debug)]
pub enum Use {
    /// Starts now with this permit; the slot stays taken until the request finishes.
    Start(OwnedSemaphorePermit),
    /// Waits in its webhook's local queue; its place there is counted until it starts.
    Wait,
}

impl Reserved {
    /// Uses the room this delivery was given: the permit and slot, or the queue place, now
    /// belong to the delivery.
    pub fn take(mut self) -> Use {
        match self.room.take() {
            Some(Room::Start(permit, _)) => Use::Start(permit),
            Some(Room::Wait(_)) | None => Use::Wait,
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        match self.room.take() {
            Some(Room::Start(_permit, slots)) => slots.give_back(&self.webhook),
            Some(Room::Wait(queued)) => queued.remove(&self.webhook),
            None => {}
        }
    }
}

/// Jobs handed off by committed publishes, with their room.
pub type Handed = Vec<(Job, Reserved)>;

/// What the publisher holds: reserves room and passes committed jobs to the worker.
#[derive(Debug)]
pub struct ToWorker {
    owner: String,
    lease_ms: i64,
    capacity: Capacity,
    tx: mpsc::UnboundedSender<Handed>,
}

/// What the worker holds: the same room, and the jobs handed to it.
#[derive(Debug)]
pub struct Intake {
    pub capacity: Capacity,
    pub rx: mpsc::UnboundedReceiver<Handed>,
}

/// Connects the publisher to the worker of node `owner`, whose leases last `lease`.
pub fn channel(owner: &str, lease: Duration, capacity: Capacity) -> (Arc<ToWorker>, Intake) {
    let (tx, rx) = mpsc::unbounded_channel();
    let to = ToWorker {
        owner: owner.to_string(),
        lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
        capacity: capacity.clone(),
        tx,
    };
    (Arc::new(to), Intake { capacity, rx })
}

impl Handoff for ToWorker {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    fn reserve(&self, webhook_id: &str) -> Option<Ticket> {
        let Capacity {
            permits,
            slots,
            queued,
            ..
        } = &self.capacity;
        let room = if slots.try_take(webhook_id) {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // Every permit is taken: it waits for a claim.
                slots.give_back(webhook_id);
                return None;
            };
            Room::Start(permit, slots.clone())
        } else if queued.try_add(webhook_id, self.capacity.queue_cap(webhook_id)) {
            // At its limit: one of its requests in flight starts it when it finishes.
            Room::Wait(queued.clone())
        } else {
            return None;
        };
        Some(Box::new(Reserved {
            room: Some(room),
            webhook: webhook_id.to_string(),
        }))
    }

    fn deliver(&self, jobs: Vec<(Job, Ticket)>) {
        // The store carries the tickets `reserve` made without looking into them; they come
        // back here, typed again, and the worker only ever sees a `Reserved`. A ticket of
        // another kind cannot come from `reserve`: its job keeps the lease the publish gave it
        // and is sent when that expires.
        let handed: Handed = jobs
            .into_iter()
            .filter_map(|(job, ticket)| Some((job, *ticket.downcast::<Reserved>().ok()?)))
            .collect();
        // A worker that stopped drops them: the room is given back and the leases expire, so
        // the deliveries are sent later (by this node's next start or another node).
        let _ = self.tx.send(handed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publisher's side over a worker with `permits` permits, a fixed limit of `limit` requests
    /// per webhook, and queues of `rounds` times that.
    fn to_worker(permits: usize, limit: usize, rounds: usize) -> (Arc<ToWorker>, Capacity) {
        let capacity = Capacity {
            permits: Arc::new(Semaphore::new(permits)),
            slots: Slots::new(limit, limit),
            queued: Queued::default(),
            rounds,
            timeout_ms: 15_000,
        };
        let (to, _intake) = channel("node", Duration::from_secs(60), capacity.clone());
        (to, capacity)
    }

    fn used(ticket: Ticket) -> Use {
        ticket.downcast::<Reserved>().expect("our ticket").take()
    }

    #[test]
    fn a_webhook_at_its_limit_gets_queue_places_up_to_its_cap() {
        let (to, room) = to_worker(100, 2, 3);
        let start: Vec<Ticket> = (0..2).map(|_| to.reserve("w").expect("a slot")).collect();
        let wait: Vec<Ticket> = (0..6).map(|_| to.reserve("w").expect("a place")).collect();
        assert!(
            to.reserve("w").is_none(),
            "slots and queue full: left to a claim"
        );
        assert_eq!(room.queued.len("w"), 6);
        assert_eq!(
            room.permits.available_permits(),
            98,
            "waiting holds no permit"
        );
        assert!(
            to.reserve("other").is_some(),
            "another webhook has its own room"
        );

        let mut start = start.into_iter();
        assert!(matches!(used(start.next().unwrap()), Use::Start(_)));
        let mut wait = wait.into_iter();
        assert!(matches!(used(wait.next().unwrap()), Use::Wait));
        assert_eq!(
            room.queued.len("w"),
            6,
            "a used place counts until it starts"
        );
        drop(wait.next());
        assert_eq!(room.queued.len("w"), 5, "an unused place is given back");
        drop(start.next());
        assert!(room.slots.try_take("w"), "an unused slot is given back");
    }

    #[test]
    fn without_a_permit_nothing_is_reserved_and_the_slot_stays_free() {
        let (to, room) = to_worker(1, 2, 3);
        let _first = to.reserve("w").expect("the one permit");
        assert!(to.reserve("v").is_none());
        assert_eq!(room.queued.len("v"), 0);
        assert!(room.slots.try_take("v") && room.slots.try_take("v"));
    }
}

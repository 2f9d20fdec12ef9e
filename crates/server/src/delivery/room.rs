//! The worker's room, and the publish hand-off's side of it (see `tidings_store::handoff`):
//! before each publish the worker offers room for new deliveries, as data; the ones the store
//! leased under the offer come here as ready jobs after the commit, instead of waiting for the
//! next claim, and are placed like claimed ones: with a free slot of their webhook and a free
//! permit they start at once; while their webhook is at its slot limit but its local queue is
//! not full (the same bound claimed deliveries wait under) they wait there and start as one of
//! that webhook's requests finishes; anything else goes back to the queue.
//!
//! The offer counts both kinds of room. Without the second, a burst of publishes beyond the
//! webhooks' slots went back to the store and cost a claim each (an `UPDATE` and the event
//! read again): under `fanout10` 7–12% of the deliveries with 32 publishing connections, most
//! of them with 64 (docs/perf-log/rounds-2026-11-24-to-12-05.md, sixteenth round).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_core::fasthash::HashMap;
use tidings_store::{Handoff, Job, Offer};
use tokio::sync::{Semaphore, mpsc};

use super::slots::{Slots, count_down, count_up, lock};
use crate::config::DeliveryConfig;

/// At most this many multiples of a webhook's in-flight limit wait locally (fewer when the lease
/// is short compared with the request timeout).
const MAX_QUEUED_ROUNDS: usize = 3;

/// How many deliveries each webhook has waiting in the worker's local queue. Kept by the
/// worker, read by the publisher's offers.
#[derive(Clone, Debug, Default)]
pub struct Queued(Arc<Mutex<HashMap<String, usize>>>);

impl Queued {
    /// Counts one more for `webhook` unless it has `cap` already.
    pub fn try_add(&self, webhook: &str, cap: usize) -> bool {
        count_up(&mut lock(&self.0), webhook, cap)
    }

    /// Counts one less for `webhook` (one started, or went back to the store).
    pub fn remove(&self, webhook: &str) {
        count_down(&mut lock(&self.0), webhook);
    }

    /// How many `webhook` has waiting.
    pub fn len(&self, webhook: &str) -> usize {
        lock(&self.0).get(webhook).copied().unwrap_or(0)
    }

    /// How many each webhook has waiting, now.
    pub fn snapshot(&self) -> Vec<(String, usize)> {
        lock(&self.0).iter().map(|(w, n)| (w.clone(), *n)).collect()
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

/// Jobs handed off by committed publishes.
pub type Handed = Vec<Job>;

/// What the publisher holds: offers the worker's room and passes committed jobs to it.
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
    /// A webhook with requests in flight takes what its free slots start (while permits are
    /// free) plus the free places of its local queue; any other webhook its floor of slots and
    /// the queue behind them, while permits are free. Without a free permit only queue places
    /// are offered: a delivery that could start waits for a claim instead, as one that finds
    /// no permit on arrival would go back.
    fn offer(&self) -> Option<Offer> {
        let Capacity {
            permits,
            slots,
            queued,
            rounds,
            ..
        } = &self.capacity;
        let free = permits.available_permits();
        // One look at each count: the requests in flight and the deliveries waiting, per webhook.
        let in_flight: HashMap<String, usize> = slots.in_flight().into_iter().collect();
        let waiting: HashMap<String, usize> = queued.snapshot().into_iter().collect();
        let count = |m: &HashMap<String, usize>, w: &str| m.get(w).copied().unwrap_or(0);
        let mut room: HashMap<String, usize> = HashMap::default();
        let mut waiting_room = 0;
        for webhook in in_flight.keys().chain(waiting.keys()) {
            if room.contains_key(webhook) {
                continue;
            }
            let n = count(&in_flight, webhook);
            let limit = slots.limit(webhook);
            let wait = (limit * rounds).saturating_sub(count(&waiting, webhook));
            let start = if free > 0 { limit.saturating_sub(n) } else { 0 };
            // Under its limit without a free permit it would start, not wait: nothing offered.
            let take = if n < limit && free == 0 {
                0
            } else {
                start + wait
            };
            waiting_room += wait;
            room.insert(webhook.clone(), take);
        }
        let fresh = if free > 0 {
            slots.floor() * (1 + rounds)
        } else {
            0
        };
        let total = free * (1 + rounds) + waiting_room;
        (total > 0).then(|| Offer {
            owner: self.owner.clone(),
            lease_ms: self.lease_ms,
            total,
            room,
            fresh,
        })
    }

    fn deliver(&self, jobs: Vec<Job>) {
        // A worker that stopped drops them: their leases expire, and the deliveries are sent
        // later (by this node's next start or another node).
        let _ = self.tx.send(jobs);
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

    #[test]
    fn a_webhook_at_its_limit_is_offered_its_free_queue_places() {
        let (to, room) = to_worker(100, 2, 3);
        assert!(room.slots.try_take("w") && room.slots.try_take("w"));
        assert!(room.queued.try_add("w", 6));
        let offer = to.offer().expect("an offer");
        assert_eq!(offer.room["w"], 5, "no free slot, five of six queue places");
        assert_eq!(offer.fresh, 8, "a new webhook: two slots and six places");
        assert_eq!(offer.owner, "node");
        assert_eq!(offer.lease_ms, 60_000);
    }

    #[test]
    fn without_a_free_permit_only_queue_places_are_offered() {
        let (to, room) = to_worker(1, 2, 3);
        let _held = room.permits.clone().try_acquire_owned().unwrap();
        assert!(room.slots.try_take("busy") && room.slots.try_take("busy"));
        assert!(room.slots.try_take("under"));
        let offer = to.offer().expect("queue places");
        assert_eq!(offer.room["busy"], 6);
        assert_eq!(
            offer.room["under"], 0,
            "it would start, and no permit is free"
        );
        assert_eq!(offer.fresh, 0);
        assert_eq!(offer.total, 6 + 6);
    }

    #[test]
    fn a_full_worker_offers_nothing() {
        let (to, room) = to_worker(1, 1, 1);
        let _held = room.permits.clone().try_acquire_owned().unwrap();
        assert!(room.slots.try_take("w"));
        assert!(room.queued.try_add("w", 1));
        assert!(to.offer().is_none());
    }
}

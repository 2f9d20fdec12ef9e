//! The worker's side of the publish hand-off (see `tidings_store::handoff`): while the worker
//! has a free request slot for a webhook and a free permit, a new delivery of that webhook is
//! leased to this node in the publish's own transaction and comes here as a ready job, instead
//! of waiting for the next claim. Room is reserved before the commit (a [`Reserved`] ticket
//! holds the permit and the webhook's slot) and given back if the ticket is dropped unused.

use std::sync::Arc;
use std::time::Duration;

use tidings_store::{Handoff, Job, Ticket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::slots::Slots;
use crate::config::DeliveryConfig;

/// The worker's room: permits bound its requests in flight, slots each webhook's share.
#[derive(Clone, Debug)]
pub struct Capacity {
    pub permits: Arc<Semaphore>,
    pub slots: Slots,
}

impl Capacity {
    pub fn new(config: &DeliveryConfig, metrics: &crate::metrics::Metrics) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.concurrency)),
            slots: Slots::new(
                metrics.in_flight.clone(),
                config.per_webhook_concurrency,
                config.per_webhook_concurrency_max,
            ),
        }
    }
}

/// Room for one request of a webhook: a permit and the webhook's slot. Dropped unused, it gives
/// both back.
#[derive(Debug)]
pub struct Reserved {
    permit: Option<OwnedSemaphorePermit>,
    slot: Option<(Slots, String)>,
}

impl Reserved {
    /// The permit, for the request this room was reserved for; the slot stays taken (the request
    /// returns it when it finishes).
    pub fn start(mut self) -> Option<OwnedSemaphorePermit> {
        self.slot = None;
        self.permit.take()
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some((slots, webhook)) = self.slot.take() {
            slots.give_back(&webhook);
        }
    }
}

/// Jobs handed off by committed publishes, with their room.
pub type Handed = Vec<(Job, Ticket)>;

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
        // The permit first: without one the slot would be taken for nothing.
        let permit = self.capacity.permits.clone().try_acquire_owned().ok()?;
        if !self.capacity.slots.try_take(webhook_id) {
            return None;
        }
        Some(Box::new(Reserved {
            permit: Some(permit),
            slot: Some((self.capacity.slots.clone(), webhook_id.to_string())),
        }))
    }

    fn deliver(&self, jobs: Vec<(Job, Ticket)>) {
        // A worker that stopped drops them: the room is given back and the leases expire, so
        // the deliveries are sent later (by this node's next start or another node).
        let _ = self.tx.send(jobs);
    }
}

//! Handing new deliveries straight to this node's delivery worker.
//!
//! Before a publish, the worker says what it can take ([`Handoff::offer`]: an [`Offer`], plain
//! data). Inside the publish's transaction the store leases the new deliveries the offer has
//! room for to the worker, exactly as a claim would have left them, and inserts the others
//! pending, for a claim. Once the commit returned, the leased ones go to the worker as ready
//! [`Job`]s ([`Handoff::deliver`]). Nothing in the transaction calls the worker. The durable
//! record is the same either way: a crash before the attempt is recorded leaves a leased
//! delivery whose lease expires, and it is sent again (at-least-once). What a hand-off saves is
//! the claim: one `UPDATE` of the delivery and the re-reading of its event.
//!
//! An offer is a snapshot, not a reservation: what the worker cannot start or queue when the
//! jobs arrive (its requests were slower than the publish) goes back to the queue at once, as
//! a claim's overflow does.

use std::sync::Arc;

use tidings_core::event::Event;
use tidings_core::fasthash::HashMap;

use crate::Job;
use crate::queue_rules::{Claimed, Planned};

/// What the worker can take of the next publish.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// The lease owner taken deliveries are leased to.
    pub owner: String,
    /// How long their lease lasts, in milliseconds.
    pub lease_ms: i64,
    /// How many it takes in all.
    pub total: usize,
    /// How many more each webhook with requests in flight or waiting takes.
    pub room: HashMap<String, usize>,
    /// How many any other webhook takes.
    pub fresh: usize,
}

impl Offer {
    /// Takes one delivery of `webhook` if there is room for it.
    fn take(&mut self, webhook: &str) -> bool {
        if self.total == 0 {
            return false;
        }
        let left = match self.room.get_mut(webhook) {
            Some(left) => left,
            None => self.room.entry(webhook.to_string()).or_insert(self.fresh),
        };
        if *left == 0 {
            return false;
        }
        *left -= 1;
        self.total -= 1;
        true
    }
}

/// The worker side of a hand-off.
pub trait Handoff: Send + Sync + std::fmt::Debug {
    /// What the worker can take now; `None` when it takes nothing (every delivery waits for a
    /// claim).
    fn offer(&self) -> Option<Offer>;
    /// The committed deliveries that were leased under an offer.
    fn deliver(&self, jobs: Vec<Job>);
}

/// Which of a publish's deliveries are leased to the worker: one entry per planned delivery,
/// in the plan's order.
pub(crate) struct Leases {
    leased: Vec<bool>,
    owner: Option<String>,
    lease_ms: i64,
}

impl Leases {
    /// Leases each delivery (by its webhook id) while the offer has room.
    pub(crate) fn new<'a>(offer: Option<Offer>, webhooks: impl Iterator<Item = &'a str>) -> Self {
        match offer {
            None => Self {
                leased: webhooks.map(|_| false).collect(),
                owner: None,
                lease_ms: 0,
            },
            Some(mut offer) => Self {
                leased: webhooks.map(|w| offer.take(w)).collect(),
                owner: Some(offer.owner),
                lease_ms: offer.lease_ms,
            },
        }
    }

    /// The `lease_owner` and `next_attempt_at` of delivery `i`, created at `created_at`.
    pub(crate) fn lease(&self, i: usize, created_at: i64) -> (Option<&str>, i64) {
        match (&self.owner, self.leased.get(i)) {
            (Some(owner), Some(true)) => (
                Some(owner.as_str()),
                created_at.saturating_add(self.lease_ms),
            ),
            _ => (None, created_at),
        }
    }

    /// How many deliveries were left for a claim.
    pub(crate) fn queued(&self) -> usize {
        self.leased.iter().filter(|l| !**l).count()
    }

    pub(crate) fn any(&self) -> bool {
        self.leased.iter().any(|l| *l)
    }

    /// The leased deliveries as a claim would return them, with their events (from memory)
    /// and the time of the newest one (for anything the job building has to write).
    pub(crate) fn claimed(
        &self,
        planned: &[Planned<'_>],
    ) -> (Vec<Claimed>, HashMap<String, Arc<Event>>, i64) {
        let mut claimed = Vec::new();
        let mut events: HashMap<String, Arc<Event>> = HashMap::default();
        let mut now = 0;
        for ((id, e, webhook_id), leased) in planned.iter().zip(&self.leased) {
            if *leased {
                claimed.push((id.clone(), 0, e.id.clone(), (*webhook_id).to_string()));
                events
                    .entry(e.id.clone())
                    .or_insert_with(|| Arc::new((*e).clone()));
                now = now.max(e.created_at);
            }
        }
        (claimed, events, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::testing::{Recorder, request, store_with_webhooks};

    /// Deliveries with room arrive as jobs, leased: a claim does not find them. The others
    /// wait for the claim.
    #[tokio::test]
    async fn deliveries_with_room_are_handed_off_and_the_rest_are_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 3).await;
        let to = Arc::new(Recorder::with_room(2));
        let published = store
            .publish_with(vec![request("evt_1")], Some(to.clone()))
            .await
            .unwrap();
        assert_eq!(published.outcomes[0].deliveries, 3);
        assert_eq!(published.queued, 1, "one delivery had no room");
        let jobs = to.jobs.lock().unwrap().clone();
        assert_eq!(jobs.len(), 2);
        assert!(
            jobs.iter()
                .all(|j| j.event.id == "evt_1" && j.attempts == 0)
        );
        assert_ne!(jobs[0].webhook.id, jobs[1].webhook.id);
        let claimed = store.claim("node-b", 2_000, 62_000, 10, &[]).await.unwrap();
        assert_eq!(claimed.len(), 1, "handed-off deliveries are leased");
        assert!(jobs.iter().all(|j| j.delivery_id != claimed[0].delivery_id));
        // After the hand-off lease (created at 1 ms, + 60 s) they are due again (at-least-once).
        let expired = store
            .claim("node-b", 61_001, 121_000, 10, &[])
            .await
            .unwrap();
        assert_eq!(expired.len(), 2);
        store.close().await;
    }

    /// A publish that fails hands nothing off.
    #[tokio::test]
    async fn a_failed_publish_hands_nothing_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 2).await;
        store.publish(vec![request("evt_taken")]).await.unwrap();
        let to = Arc::new(Recorder::with_room(10));
        let failed = store
            .publish_with(
                vec![request("evt_new"), request("evt_taken")],
                Some(to.clone()),
            )
            .await;
        assert!(failed.is_err());
        assert!(to.jobs.lock().unwrap().is_empty());
        store.close().await;
    }

    /// An offer leases per webhook what it has room for, up to its total.
    #[test]
    fn an_offer_leases_within_each_webhooks_room_and_its_total() {
        let offer = super::Offer {
            owner: "node".into(),
            lease_ms: 60_000,
            total: 4,
            room: [("busy".to_string(), 1), ("full".to_string(), 0)]
                .into_iter()
                .collect(),
            fresh: 2,
        };
        let webhooks = [
            "busy", "busy", "full", "new", "new", "new", "other", "other",
        ];
        let leases = super::Leases::new(Some(offer), webhooks.into_iter());
        let leased: Vec<bool> = (0..webhooks.len())
            .map(|i| leases.lease(i, 0).0.is_some())
            .collect();
        assert_eq!(leased, [true, false, false, true, true, false, true, false]);
        assert_eq!(leases.queued(), 4);
        assert_eq!(leases.lease(0, 1_000), (Some("node"), 61_000));
        assert_eq!(leases.lease(1, 1_000), (None, 1_000));
    }
}

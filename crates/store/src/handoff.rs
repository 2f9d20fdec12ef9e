//! Handing new deliveries straight to this node's delivery worker.
//!
//! A publish asks the worker for room for each new delivery ([`Handoff::reserve`]). A delivery
//! with room is inserted already leased to the worker (exactly as a claim would have left it)
//! and, once the commit returned, passed to the worker as a ready [`Job`]
//! ([`Handoff::deliver`]); the others are inserted pending and wait for a claim. The durable
//! record is the same either way: a crash before the attempt is recorded leaves a leased
//! delivery whose lease expires, and it is sent again (at-least-once). What a hand-off saves is
//! the claim: one `UPDATE` of the delivery and the re-reading of its event.

use std::sync::Arc;

use tidings_core::event::Event;
use tidings_core::fasthash::HashMap;

use crate::Job;
use crate::queue::{Claimed, Planned};

/// Room the worker reserved for one delivery (a request slot); dropping it gives the room back.
/// Opaque to the store, which only carries it from [`Handoff::reserve`] to [`Handoff::deliver`].
pub type Ticket = Box<dyn std::any::Any + Send>;

/// The worker side of a hand-off.
pub trait Handoff: Send + Sync + std::fmt::Debug {
    /// The lease owner handed-off deliveries are leased to.
    fn owner(&self) -> &str;
    /// How long their lease lasts, in milliseconds.
    fn lease_ms(&self) -> i64;
    /// Room to start a delivery of `webhook_id` at once, or `None` (it waits for a claim).
    fn reserve(&self, webhook_id: &str) -> Option<Ticket>;
    /// The committed deliveries that got room, with their tickets.
    fn deliver(&self, jobs: Vec<(Job, Ticket)>);
}

/// A publish's reservations: one entry per planned delivery, in the plan's order.
pub(crate) struct Reservations {
    pub tickets: Vec<Option<Ticket>>,
    pub owner: Option<String>,
    pub lease_ms: i64,
}

impl Reservations {
    /// Reserves room for each delivery (by its webhook id) while the worker has some.
    pub(crate) fn new<'a>(
        handoff: Option<&dyn Handoff>,
        webhooks: impl Iterator<Item = &'a str>,
    ) -> Self {
        match handoff {
            None => Self {
                tickets: webhooks.map(|_| None).collect(),
                owner: None,
                lease_ms: 0,
            },
            Some(h) => Self {
                tickets: webhooks.map(|w| h.reserve(w)).collect(),
                owner: Some(h.owner().to_string()),
                lease_ms: h.lease_ms(),
            },
        }
    }

    /// The `lease_owner` and `next_attempt_at` of delivery `i`, created at `created_at`.
    pub(crate) fn lease(&self, i: usize, created_at: i64) -> (Option<&str>, i64) {
        match (&self.owner, self.tickets.get(i)) {
            (Some(owner), Some(Some(_))) => (
                Some(owner.as_str()),
                created_at.saturating_add(self.lease_ms),
            ),
            _ => (None, created_at),
        }
    }

    /// How many deliveries were left for a claim.
    pub(crate) fn queued(&self) -> usize {
        self.tickets.iter().filter(|t| t.is_none()).count()
    }

    pub(crate) fn any(&self) -> bool {
        self.tickets.iter().any(Option::is_some)
    }

    /// The reserved deliveries as a claim would return them, with their events (from memory)
    /// and the time of the newest one (for anything the job building has to write).
    pub(crate) fn claimed(
        &self,
        planned: &[Planned<'_>],
    ) -> (Vec<Claimed>, HashMap<String, Arc<Event>>, i64) {
        let mut claimed = Vec::new();
        let mut events: HashMap<String, Arc<Event>> = HashMap::default();
        let mut now = 0;
        for ((id, e, webhook_id), t) in planned.iter().zip(&self.tickets) {
            if t.is_some() {
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

/// Jobs with their tickets, once the commit returned.
#[derive(Default)]
pub(crate) struct HandedOff(pub Vec<(Job, Ticket)>);

impl std::fmt::Debug for HandedOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HandedOff({})", self.0.len())
    }
}

/// Pairs the jobs of the reserved deliveries with their tickets. A delivery without a job
/// (cannot happen within the publish's own transaction) keeps its lease and is sent once it
/// expires.
pub(crate) fn pair(planned: &[Planned<'_>], res: Reservations, jobs: Vec<Job>) -> HandedOff {
    let mut tickets: HashMap<&str, Ticket> = planned
        .iter()
        .zip(res.tickets)
        .filter_map(|((id, _, _), t)| t.map(|t| (id.as_str(), t)))
        .collect();
    HandedOff(
        jobs.into_iter()
            .filter_map(|job| {
                let t = tickets.remove(job.delivery_id.as_str())?;
                Some((job, t))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use crate::testing::{Recorder, request, store_with_webhooks};

    /// Deliveries with room arrive as jobs, leased: a claim does not find them. The others
    /// wait for the claim.
    #[tokio::test]
    async fn deliveries_with_room_are_handed_off_and_the_rest_are_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 3).await;
        let to = Arc::new(Recorder::default());
        to.room.store(2, Ordering::SeqCst);
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

    /// A publish that fails gives its reservations back and hands nothing off.
    #[tokio::test]
    async fn a_failed_publish_gives_the_room_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 2).await;
        store.publish(vec![request("evt_taken")]).await.unwrap();
        let to = Arc::new(Recorder::default());
        to.room.store(10, Ordering::SeqCst);
        let failed = store
            .publish_with(
                vec![request("evt_new"), request("evt_taken")],
                Some(to.clone()),
            )
            .await;
        assert!(failed.is_err());
        assert!(to.jobs.lock().unwrap().is_empty());
        assert_eq!(to.room.load(Ordering::SeqCst), 6, "room was reserved");
        assert_eq!(
            to.returned.load(Ordering::SeqCst),
            4,
            "every reservation was given back"
        );
        store.close().await;
    }
}

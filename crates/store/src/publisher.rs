//! Group commit for publishing: concurrent publish requests are gathered into one transaction,
//! so durability costs one fsync per batch instead of one per event.
//!
//! Each caller's unit (one event, or one `/v1/events/batch` body) is committed whole and
//! answered only after the commit returns; a failed commit fails every unit in it, and nothing
//! of it is visible.

use std::sync::{Arc, Mutex};

use tidings_core::fasthash::HashSet;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::{Handoff, PublishOutcome, PublishRequest, Store, StoreError};

type Reply = oneshot::Sender<Result<Vec<PublishOutcome>, Arc<StoreError>>>;

/// Handle for publishing; clone freely. Dropping every handle stops the batching task once it
/// has committed what it holds.
#[derive(Clone, Debug)]
pub struct Publisher {
    tx: mpsc::Sender<(Vec<PublishRequest>, Reply)>,
}

/// Why a publish was not made durable.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the store rejected the commit: {0}")]
    Store(Arc<StoreError>),
    #[error("the publisher is shutting down")]
    Closed,
}

impl Publisher {
    /// Starts the batching task. `max_batch` bounds the events in one commit; new deliveries go
    /// straight to `handoff` (this node's delivery worker) while it has room, and `committed`
    /// is notified after every commit that left deliveries for a claim (the worker waits on it).
    pub fn spawn(
        store: Store,
        max_batch: usize,
        committed: Arc<Notify>,
        handoff: Option<Arc<dyn Handoff>>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let sink = Sink { committed, handoff };
        let handle = tokio::spawn(run(store, rx, max_batch.max(1), sink));
        (Self { tx }, handle)
    }

    /// Makes the events durable in one commit (shared with other callers' events) and returns
    /// their outcomes in order.
    pub async fn publish(
        &self,
        events: Vec<PublishRequest>,
    ) -> Result<Vec<PublishOutcome>, PublishError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((events, reply))
            .await
            .map_err(|_| PublishError::Closed)?;
        rx.await
            .map_err(|_| PublishError::Closed)?
            .map_err(PublishError::Store)
    }
}

/// Where committed deliveries go.
#[derive(Clone)]
struct Sink {
    committed: Arc<Notify>,
    handoff: Option<Arc<dyn Handoff>>,
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<(Vec<PublishRequest>, Reply)>,
    max_batch: usize,
    sink: Sink,
) {
    // Commits in flight at once: a batch forms while earlier ones are being committed, and the
    // database overlaps their round trips and flushes (PostgreSQL merges concurrent commits into
    // one WAL flush; the embedded store's writer runs waiting batches in one transaction).
    let lanes = store.publish_lanes();
    let permits = Arc::new(Semaphore::new(lanes));
    // Idempotency keys of the batches in flight: a batch that repeats one waits for them, so the
    // second use finds the first instead of colliding with it.
    let keys_in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    while let Some(first) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let mut units: Vec<(Vec<PublishRequest>, Reply)> = vec![first];
        let mut total = units[0].0.len();
        // Take whatever else is already waiting, up to the batch bound: under load the queue
        // fills while earlier commits are being flushed, so batches grow by themselves.
        while total < max_batch {
            match rx.try_recv() {
                Ok(unit) => {
                    total += unit.0.len();
                    units.push(unit);
                }
                Err(_) => break,
            }
        }
        let keys: Vec<String> = units
            .iter()
            .flat_map(|(events, _)| events.iter())
            .filter_map(|r| r.event.idempotency_key.clone())
            .collect();
        let repeats = {
            let held = lock(&keys_in_flight);
            keys.iter().any(|k| held.contains(k))
        };
        let barrier = if repeats {
            // Wait for every other batch in flight (all lanes but ours).
            let others = u32::try_from(lanes - 1).unwrap_or(0);
            match permits.clone().acquire_many_owned(others).await {
                Ok(p) => Some(p),
                Err(_) => break,
            }
        } else {
            None
        };
        lock(&keys_in_flight).extend(keys.iter().cloned());
        let (store, sink, keys_in_flight) = (store.clone(), sink.clone(), keys_in_flight.clone());
        tokio::spawn(async move {
            commit(&store, units, sink).await;
            let mut held = lock(&keys_in_flight);
            for k in &keys {
                held.remove(k);
            }
            drop(held);
            drop((permit, barrier));
        });
    }
    // Let the commits in flight finish before the task ends.
    let _ = permits
        .acquire_many(u32::try_from(lanes).unwrap_or(1))
        .await;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Commits one batch and answers its callers.
async fn commit(store: &Store, mut units: Vec<(Vec<PublishRequest>, Reply)>, sink: Sink) {
    let lens: Vec<usize> = units.iter().map(|(events, _)| events.len()).collect();
    let batch: Vec<PublishRequest> = units
        .iter_mut()
        .flat_map(|(events, _)| std::mem::take(events))
        .collect();
    let events = batch.len();
    match store.publish_with(batch, sink.handoff).await {
        Ok(published) => {
            if published.queued > 0 {
                sink.committed.notify_one();
            }
            let mut outcomes = published.outcomes.into_iter();
            for ((_, reply), n) in units.drain(..).zip(lens) {
                let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, events, "publish commit failed");
            let e = Arc::new(e);
            for (_, reply) in units.drain(..) {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

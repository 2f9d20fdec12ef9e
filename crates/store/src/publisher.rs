//! Group commit for publishing: concurrent publish requests are gathered into one transaction,
//! so durability costs one fsync per batch instead of one per event.
//!
//! Each caller's unit (one event, or one `/v1/events/batch` body) is committed whole and
//! answered only after the commit returns; a failed commit fails every unit in it, and nothing
//! of it is visible.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::{PublishOutcome, PublishRequest, Store, StoreError};

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
    /// Starts the batching task. `max_batch` bounds the events in one commit; `committed` is
    /// notified after every commit that created deliveries (the delivery worker waits on it).
    pub fn spawn(
        store: Store,
        max_batch: usize,
        committed: Arc<Notify>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let handle = tokio::spawn(run(store, rx, max_batch.max(1), committed));
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

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<(Vec<PublishRequest>, Reply)>,
    max_batch: usize,
    committed: Arc<Notify>,
) {
    let mut units: Vec<(Vec<PublishRequest>, Reply)> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut total = first.0.len();
        units.push(first);
        // Take whatever else is already waiting, up to the batch bound: under load the queue
        // fills while the previous commit is being flushed, so batches grow by themselves.
        while total < max_batch {
            match rx.try_recv() {
                Ok(unit) => {
                    total += unit.0.len();
                    units.push(unit);
                }
                Err(_) => break,
            }
        }
        let lens: Vec<usize> = units.iter().map(|(events, _)| events.len()).collect();
        let batch: Vec<PublishRequest> = units
            .iter_mut()
            .flat_map(|(events, _)| std::mem::take(events))
            .collect();
        match store.publish(&batch).await {
            Ok(outcomes) => {
                if outcomes.iter().any(|o| o.deliveries > 0 && !o.duplicate) {
                    committed.notify_one();
                }
                let mut outcomes = outcomes.into_iter();
                for ((_, reply), n) in units.drain(..).zip(lens) {
                    let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "publish commit failed");
                let e = Arc::new(e);
                for (_, reply) in units.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

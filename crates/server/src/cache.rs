//! Short-lived read caches for the publish path: the event-type catalog and workspace chains
//! change rarely but are read on every publish. Entries live for [`TTL`]; changes made through
//! this node invalidate them at once, changes made through another node are seen within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidings_core::event::EventType;
use tidings_core::workspace::Workspace;
use tidings_store::{Store, StoreError};

/// How long a cached read is trusted.
pub const TTL: Duration = Duration::from_secs(1);
const MAX_CHAINS: usize = 100_000;

type Types = Arc<HashMap<String, EventType>>;
type Chain = Arc<Vec<Workspace>>;

#[derive(Default)]
pub struct Cache {
    types: Mutex<Option<(Instant, Types)>>,
    chains: Mutex<HashMap<String, (Instant, Chain)>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cache {
    /// The event-type catalog by name.
    pub async fn event_types(&self, store: &Store) -> Result<Types, StoreError> {
        if let Some((at, types)) = lock(&self.types).as_ref()
            && at.elapsed() < TTL
        {
            return Ok(types.clone());
        }
        let fresh: Types = Arc::new(
            store
                .event_type_list()
                .await?
                .into_iter()
                .map(|t| (t.name.clone(), t))
                .collect(),
        );
        *lock(&self.types) = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// The workspace and its ancestors (see [`Store::workspace_chain`]).
    pub async fn workspace_chain(&self, store: &Store, id: &str) -> Result<Chain, StoreError> {
        if let Some((at, chain)) = lock(&self.chains).get(id)
            && at.elapsed() < TTL
        {
            return Ok(chain.clone());
        }
        let fresh = Arc::new(store.workspace_chain(id).await?);
        let mut chains = lock(&self.chains);
        if chains.len() >= MAX_CHAINS {
            chains.clear();
        }
        chains.insert(id.to_string(), (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    pub fn invalidate_event_types(&self) {
        *lock(&self.types) = None;
    }

    pub fn invalidate_workspaces(&self) {
        lock(&self.chains).clear();
    }
}

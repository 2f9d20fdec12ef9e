//! Read caches for the publish path: the event-type catalog and workspace chains change rarely
//! but are read on every publish. Changes made through this node invalidate them at once. On
//! PostgreSQL, where other nodes may change them, entries live for [`SHARED_TTL`]; the embedded
//! store has one process (its data directory is locked), so every change passes through this
//! cache and entries live for [`SINGLE_NODE_TTL`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidings_core::event::EventType;
use tidings_core::workspace::Workspace;
use tidings_store::{Store, StoreError};

/// How long a cached read is trusted when other nodes share the database.
pub const SHARED_TTL: Duration = Duration::from_secs(1);
/// How long a cached read is trusted when this process is the only writer (a safety net: every
/// change invalidates the cache anyway).
pub const SINGLE_NODE_TTL: Duration = Duration::from_secs(300);
const MAX_CHAINS: usize = 100_000;

type Types = Arc<HashMap<String, EventType>>;
type Chain = Arc<Vec<Workspace>>;

pub struct Cache {
    ttl: Duration,
    types: Mutex<Option<(Instant, Types)>>,
    chains: Mutex<HashMap<String, (Instant, Chain)>>,
    /// Bumped by every invalidation: a read that began before one is not cached (it may have
    /// seen the data from before the change).
    types_generation: AtomicU64,
    chains_generation: AtomicU64,
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
    /// A cache for `store`: long-lived when this process is its only user.
    pub fn for_store(store: &Store) -> Self {
        Self {
            ttl: if store.is_single_node() {
                SINGLE_NODE_TTL
            } else {
                SHARED_TTL
            },
            types: Mutex::default(),
            chains: Mutex::default(),
            types_generation: AtomicU64::new(0),
            chains_generation: AtomicU64::new(0),
        }
    }

    /// The event-type catalog by name.
    pub async fn event_types(&self, store: &Store) -> Result<Types, StoreError> {
        if let Some((at, types)) = lock(&self.types).as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(types.clone());
        }
        let generation = self.types_generation.load(Ordering::SeqCst);
        let fresh: Types = Arc::new(
            store
                .event_type_list()
                .await?
                .into_iter()
                .map(|t| (t.name.clone(), t))
                .collect(),
        );
        let mut types = lock(&self.types);
        if self.types_generation.load(Ordering::SeqCst) == generation {
            *types = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }

    /// The workspace and its ancestors (see [`Store::workspace_chain`]).
    pub async fn workspace_chain(&self, store: &Store, id: &str) -> Result<Chain, StoreError> {
        if let Some((at, chain)) = lock(&self.chains).get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(chain.clone());
        }
        let generation = self.chains_generation.load(Ordering::SeqCst);
        let fresh = Arc::new(store.workspace_chain(id).await?);
        let mut chains = lock(&self.chains);
        if self.chains_generation.load(Ordering::SeqCst) != generation {
            return Ok(fresh);
        }
        if chains.len() >= MAX_CHAINS {
            chains.clear();
        }
        chains.insert(id.to_string(), (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    pub fn invalidate_event_types(&self) {
        let mut types = lock(&self.types);
        self.types_generation.fetch_add(1, Ordering::SeqCst);
        *types = None;
    }

    pub fn invalidate_workspaces(&self) {
        let mut chains = lock(&self.chains);
        self.chains_generation.fetch_add(1, Ordering::SeqCst);
        chains.clear();
    }
}

//! Shared application state handed to every handler.

use std::sync::Arc;

use tidings_store::Store;
use tidings_store::publisher::Publisher;

use crate::auth::keys::Keys;
use crate::clock::Clock;
use crate::config::Config;

/// Cheap to clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub publisher: Publisher,
    pub keys: Arc<Keys>,
    /// The master keys that seal the stored secrets, and where they come from.
    pub master_key: crate::master_key::MasterKey,
    /// The outbound client, shared by the worker and the emulator.
    pub sender: crate::delivery::sender::Sender,
    pub clock: Clock,
    /// Wakes the delivery worker (after a retry or replay).
    pub wake: Arc<tokio::sync::Notify>,
    pub metrics: crate::metrics::Metrics,
    /// The delivery worker's per-webhook slots (`None` on an API-only node), read by `/metrics`.
    pub worker_slots: Option<crate::delivery::slots::Slots>,
    /// The last hour of the metrics, for the console's health charts.
    pub history: crate::history::History,
    /// Short-lived caches of the publish path.
    pub cache: crate::publish_cache::Cache,
    /// Compiled JSON Schemas of event types.
    pub schemas: crate::schemas::SchemaCache,
    /// Rate limits of `/oauth/token` and the console sign-in.
    pub throttle: Arc<crate::throttle::Throttle>,
    /// The emulator's in-flight and rate limits per workspace.
    pub emulator_limits: Arc<crate::emulator_limits::EmulatorLimits>,
    /// SHA-256 of the operator key.
    pub operator_key_hash: String,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

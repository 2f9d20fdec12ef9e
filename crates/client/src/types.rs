//! What the API sends and takes, as Rust types. Field names follow the wire format
//! (camelCase); fields this version does not know are kept in `extra`, so nothing the server
//! sends is lost when a value is printed again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A page of a list: pass `next_cursor` back for the next one (`None` on the last).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A workspace (a customer account of the operator's product).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    pub name: String,
    /// `regular`, `channel` or `child`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub plan: String,
    pub integration_enabled: bool,
    #[serde(default)]
    pub notifications_enabled: bool,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A workspace as the operator creates or replaces it; `None` fields take their defaults.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications_enabled: Option<bool>,
}

/// Integration client credentials. `client_secret` is only present right after creating or
/// regenerating them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentials {
    pub client_id: String,
    pub workspace_id: String,
    pub name: String,
    pub generation: i64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An event type of the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub sample: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An event as the operator publishes it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub workspace_id: String,
    /// A JSON object.
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_unit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
}

/// What publishing an event did.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    pub id: String,
    /// Deliveries created (one per matching webhook).
    pub deliveries: u64,
    /// Matching webhooks that were skipped (plan, switches).
    pub suppressed: u64,
    /// The idempotency key was seen before: nothing new was created.
    pub duplicate: bool,
}

/// A webhook configuration. `secret` is the signing secret (`whsec_…`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub workspace_id: String,
    #[serde(default)]
    pub name: String,
    pub url: String,
    pub secret: String,
    pub triggers: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Notes about accepted but questionable settings (e.g. plain http).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A webhook body: every field optional here; creating and replacing need `url`, `triggers`,
/// `status` and `apply_to_all_descendants` (the API names what is missing). On update only
/// the fields set are changed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_to_all_descendants: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<String>>,
    /// `enabled` or `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Any other field of the API's webhook body (`contentType`, `fieldMapping`, …).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A delivery: one event to one webhook, with its state.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub workspace_id: String,
    /// `pending`, `succeeded` or `failed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// A count in lists; in [`Client::delivery`](crate::Client::delivery) the attempts
    /// themselves.
    pub attempts: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a replay re-queued.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Replayed {
    pub replayed: u64,
}

//! Records the store reads and writes that are not domain types of their own in `core`.

use std::sync::Arc;

use tidings_core::event::Event;
use tidings_core::webhook::Webhook;

/// An OAuth client (integration client). The secret exists only as its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationClient {
    pub client_id: String,
    pub workspace_id: String,
    pub name: String,
    pub secret_hash: String,
    /// Bumped by regenerate; tokens carry the generation they were issued under.
    pub generation: i64,
    pub created_at: i64,
    pub regenerated_at: Option<i64>,
}

/// An Ed25519 signing key pair for JWTs, shared by every node through the database.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 v1 DER of the private key.
    pub private_der: Vec<u8>,
    /// The 32-byte raw public key.
    pub public_raw: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("private_der", &"***")
            .finish()
    }
}

/// One event to make durable, with what the caller resolved about its workspace.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub event: Event,
    /// The event's workspace followed by its ancestors (nearest first). Webhooks of ancestors
    /// match only when they have `applyToAllDescendants`.
    pub workspace_chain: Vec<String>,
    /// False while the workspace's integration is off or its plan forbids it: the event is
    /// recorded but nothing is delivered.
    pub deliver: bool,
}

/// What publishing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub id: String,
    /// Deliveries created (webhooks that matched and were not suppressed).
    pub deliveries: i64,
    /// Webhooks that matched but belong to the client that caused the event (no echo).
    pub suppressed: i64,
    /// True when an event with the same idempotency key existed: nothing new was created.
    pub duplicate: bool,
}

/// What publishing a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// One per event, in order.
    pub outcomes: Vec<PublishOutcome>,
    /// New deliveries left for a claim (not handed off).
    pub queued: usize,
}

/// A claimed delivery, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery_id: String,
    /// Attempts already made before this one.
    pub attempts: i64,
    /// Shared by the jobs of one event's deliveries (fan-out): not copied per delivery.
    pub event: Arc<Event>,
    pub webhook: Arc<Webhook>,
    /// The event type's `statusPath` (for `dataMode: statusOnly`).
    pub status_path: Option<String>,
    /// JSON text of the event workspace's `fields` (for `extraFields`).
    pub company_fields: Option<String>,
}

/// The state a delivery moves to after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextState {
    Succeeded,
    /// Retries exhausted, or the receiver said 410 Gone.
    Failed,
    /// Try again at this time (Unix ms).
    Retry(i64),
    /// The webhook was deleted or disabled before the attempt.
    Cancelled,
}

/// One HTTP attempt, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub id: String,
    pub delivery_id: String,
    pub attempt_no: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    /// `ok`, `http_status`, `timeout`, `dns`, `connect`, `tls`, `blocked_address`, `too_large`, `protocol`.
    pub outcome: String,
    pub status: Option<i64>,
    /// JSON object, secrets redacted.
    pub request_headers: String,
    /// JSON object.
    pub response_headers: String,
    /// At most 64 KiB.
    pub response_body: String,
    pub error: Option<String>,
}

/// The result of working on one claimed delivery.
#[derive(Debug, Clone)]
pub struct Completion {
    pub delivery_id: String,
    pub webhook_id: String,
    /// Disable the webhook with this reason (the receiver answered `410 Gone`).
    pub disable_webhook: Option<String>,
    /// None when no HTTP attempt was made (e.g. the webhook was deleted).
    pub attempt: Option<AttemptRecord>,
    pub next: NextState,
    /// Attempts made in total, including this one.
    pub attempts: i64,
}

/// A page of a list: the items and, when there are more, the cursor for the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A delivery as the delivery log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub workspace_id: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_outcome: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored event with the counts recorded at publish time.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub event: Event,
    pub deliveries: i64,
    pub suppressed: i64,
}

/// A webhook Tidings just disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct DisabledWebhook {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub reason: String,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deliveries: u64,
    pub attempts: u64,
    pub events: u64,
}

/// A console session (docs/console.md). The cookie's value exists only as its SHA-256, the
/// key this record is found by.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSession {
    /// `operator` or `portal`.
    pub kind: String,
    /// A portal session's workspace (for a channel, its children too); `None` for the operator.
    pub workspace_id: Option<String>,
    /// Where the portal's "back" link leads (the operator's product).
    pub return_url: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What a redeemed portal link opens: a session on this workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalLink {
    pub workspace_id: String,
    pub return_url: Option<String>,
}

/// Which events an operator looks for (every part optional).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub workspace_id: Option<String>,
    pub kind: Option<String>,
    /// Created at or after (Unix ms).
    pub since: Option<i64>,
    /// Created before (Unix ms).
    pub until: Option<i64>,
}

/// A webhook that is failing (no success since `failing_since`) or disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct TroubledWebhook {
    pub webhook: Webhook,
    pub failing_since: Option<i64>,
    pub last_success_at: Option<i64>,
}

//! Helpers of the store's unit tests: embedded stores, publish requests, webhooks, and a
//! hand-off that records what it was given.

use std::sync::{Arc, Mutex};

use tidings_core::webhook::{Webhook, WebhookSpec};
use tidings_core::workspace::{Workspace, WorkspaceType};

use crate::handoff::{Handoff, Offer};
use crate::{AttemptRecord, Completion, Job, NextState, Store};

/// A migrated embedded store in a fresh temporary directory (kept alive by the guard).
pub(crate) async fn embedded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated(dir.path()).await;
    (dir, store)
}

/// A migrated embedded store in `dir`.
pub(crate) async fn migrated(dir: &std::path::Path) -> Store {
    let store = Store::open(
        &crate::Backend::Sqlite {
            data_dir: dir.to_path_buf(),
            shims: shims_from_env(),
        },
        keys(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store
}

/// A publish of a `workorder.created` event `id` in workspace `acme`, created at 1 ms.
pub(crate) fn request(id: &str) -> crate::PublishRequest {
    crate::PublishRequest {
        event: tidings_core::event::Event {
            id: id.to_string(),
            kind: "workorder.created".into(),
            workspace_id: "acme".into(),
            data: "{}".into(),
            branch_id: None,
            business_unit_id: None,
            subject_id: None,
            sender: None,
            origin_client_id: None,
            idempotency_key: None,
            occurred_at: 1,
            created_at: 1,
        },
        workspace_chain: vec!["acme".into()],
        deliver: true,
    }
}

/// A worker that takes `room` deliveries of each publish and keeps what it is handed.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub room: usize,
    pub jobs: Mutex<Vec<Job>>,
}

impl Recorder {
    pub fn with_room(room: usize) -> Self {
        Self {
            room,
            jobs: Mutex::default(),
        }
    }
}

impl Handoff for Recorder {
    fn offer(&self) -> Option<Offer> {
        Some(Offer {
            owner: "node-test".into(),
            lease_ms: 60_000,
            total: self.room,
            room: Default::default(),
            fresh: self.room,
        })
    }
    fn deliver(&self, jobs: Vec<Job>) {
        self.jobs.lock().unwrap().extend(jobs);
    }
}

/// Publishes event `id` ([`request`]) with room for 10 deliveries to be handed off; returns
/// the jobs handed off.
pub(crate) async fn handed_off(store: &Store, id: &str) -> Vec<Job> {
    let to = Arc::new(Recorder::with_room(10));
    store
        .publish_with(vec![request(id)], Some(to.clone()))
        .await
        .unwrap();
    to.jobs.lock().unwrap().clone()
}

/// Enabled webhook number `i` of workspace `acme`, subscribing to `workorder.created`.
pub(crate) fn webhook(i: usize) -> Webhook {
    let spec: WebhookSpec = serde_json::from_value(serde_json::json!({
        "name": format!("hook {i}"), "description": "", "applyToAllDescendants": false,
        "url": "http://127.0.0.1:9/", "secret": "s".repeat(32), "headers": {},
        "triggers": ["workorder.created"], "status": "enabled"
    }))
    .unwrap();
    Webhook {
        id: format!("{i:024}"),
        workspace_id: "acme".into(),
        spec,
        updated: 1,
        disabled_reason: None,
        previous_secret: None,
        owner_client_id: None,
        created_at: 1,
    }
}

/// A migrated embedded store with workspace `acme` and `n` webhooks ([`webhook`] 0 to n - 1);
/// the caller keeps `dir`.
pub(crate) async fn store_with_webhooks(dir: &std::path::Path, n: usize) -> Store {
    with_webhooks(migrated(dir).await, n).await
}

/// A migrated PostgreSQL store (TIDINGS_TEST_DATABASE_URL) in a schema of its own, selected
/// through `search_path`, with workspace `acme` and `n` webhooks; and the schema's name, for
/// [`drop_schema`].
pub(crate) async fn postgres_with_webhooks(n: usize) -> (String, Store) {
    use sqlx::Connection;
    let base = std::env::var("TIDINGS_TEST_DATABASE_URL").expect("TIDINGS_TEST_DATABASE_URL");
    let schema = format!(
        "store_{}",
        tidings_core::ids::random_alnum(12).to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open(
        &crate::Backend::Postgres {
            url,
            max_connections: 4,
        },
        keys(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    (schema, with_webhooks(store, n).await)
}

/// Drops a schema [`postgres_with_webhooks`] made.
pub(crate) async fn drop_schema(schema: &str) {
    use sqlx::Connection;
    let base = std::env::var("TIDINGS_TEST_DATABASE_URL").expect("TIDINGS_TEST_DATABASE_URL");
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// `store` with workspace `acme` and `n` webhooks ([`webhook`] 0 to n - 1).
async fn with_webhooks(store: Store, n: usize) -> Store {
    store
        .workspace_create(&Workspace {
            id: "acme".into(),
            name: "Acme".into(),
            kind: WorkspaceType::Regular,
            parent_id: None,
            plan: "free".into(),
            integration_enabled: true,
            notifications_enabled: true,
            branches: vec![],
            business_units: vec![],
            fields: Default::default(),
            created_at: 1,
        })
        .await
        .unwrap();
    for i in 0..n {
        store.webhook_create(&webhook(i), i64::MAX).await.unwrap();
    }
    store
}

/// An attempt of delivery `delivery` to `webhook` answered with `status`: a success for a
/// 2xx, else a retry.
pub(crate) fn answered(delivery: &str, webhook: &str, status: i64) -> Completion {
    let ok = (200..300).contains(&status);
    Completion {
        delivery_id: delivery.into(),
        webhook_id: webhook.into(),
        disable_webhook: None,
        attempt: Some(AttemptRecord {
            id: format!("atm_{delivery}_{status}"),
            delivery_id: delivery.into(),
            attempt_no: 1,
            started_at: 1,
            duration_ms: 1,
            outcome: if ok { "ok" } else { "http_status" }.into(),
            status: Some(status),
            request_headers: "{}".into(),
            response_headers: "{}".into(),
            response_body: String::new(),
            error: None,
        }),
        next: if ok {
            NextState::Succeeded
        } else {
            NextState::Retry(i64::MAX)
        },
        attempts: 1,
    }
}

/// Publishes an event to every webhook of `store` (two of them) and records each delivery's
/// failed attempt twice, as the writer or the recorder does when a commit's answer was lost:
/// every delivery must still have its attempt exactly once. Returns the jobs.
pub(crate) async fn completion_recorded_twice_stores_one_attempt(store: &Store) -> Vec<Job> {
    let jobs = handed_off(store, "evt_1").await;
    assert_eq!(jobs.len(), 2);
    let done: Arc<[Completion]> = jobs
        .iter()
        .map(|j| answered(&j.delivery_id, &j.webhook.id, 500))
        .collect();
    for _ in 0..2 {
        store
            .complete("node-test", 2, done.clone(), 0)
            .await
            .unwrap();
    }
    for j in &jobs {
        let attempts = store.attempts_of(&j.delivery_id).await.unwrap();
        assert_eq!(attempts.len(), 1, "{attempts:?}");
    }
    jobs
}

/// The embedded store's shims as the suite runs them: on, unless
/// `TIDINGS_DATABASE__SQLITE_SHIMS=false` (CI runs the suite both ways).
pub(crate) fn shims_from_env() -> bool {
    std::env::var("TIDINGS_DATABASE__SQLITE_SHIMS").map_or(true, |v| v != "false")
}

/// Master keys for a test store (a fresh random key).
pub(crate) fn keys() -> crate::Keys {
    crate::Keys::new(
        tidings_core::seal::Keyring::parse(&tidings_core::seal::generate_key()).unwrap(),
    )
}

//! What the writer reads on every publish, kept between its transactions: the webhooks that
//! match a (type, workspace chain), the webhooks themselves (parsed), the event types'
//! `statusPath`s and the workspaces' `fields`.
//!
//! The cache is exactly as fresh as the database: it is valid only while no other connection
//! has committed anything (`PRAGMA data_version`, read at the start of every transaction, moves
//! with each commit of another connection — webhook, workspace and event-type changes all go
//! through sqlx). The writer's own changes that affect these reads (a webhook disabled by
//! `complete`) clear it as they happen, and so does a transaction that does not commit cleanly.
//! With 1,000 workspaces publishing in turn, matching cost a join per event and the job a
//! webhook read and a JSON parse per delivery; with the cache a publish reads nothing it read
//! before.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;
use tidings_core::webhook::Webhook;

use crate::Result;
use crate::queue::MatchRow;

/// Entries (of each map) above which the cache starts over: this bounds a churn of workspaces
/// or webhooks; the working set of a node is far smaller.
const BOUND: usize = 100_000;

/// Matches of one event type: by workspace chain.
type ByChain = HashMap<Vec<String>, Arc<[MatchRow]>>;

#[derive(Default)]
pub(super) struct ReadCache {
    /// `PRAGMA data_version` when the entries were read (`None`: nothing read yet).
    version: Option<i64>,
    /// Matching webhooks by event type, then workspace chain.
    matches: HashMap<String, ByChain>,
    match_count: usize,
    webhooks: HashMap<String, Arc<Webhook>>,
    status_paths: Option<Arc<HashMap<String, Option<String>>>>,
    /// Workspace `fields` (JSON text) by workspace id.
    fields: HashMap<String, String>,
}

impl ReadCache {
    /// Called first in every transaction: drops everything if another connection committed
    /// since the entries were read.
    pub(super) fn begin(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.version != Some(version) {
            self.clear();
            self.version = Some(version);
        }
        Ok(())
    }

    /// Forgets everything and the version it was read at: the next transaction reads afresh
    /// whatever `data_version` says (a transaction did not commit cleanly).
    pub(super) fn invalidate(&mut self) {
        self.clear();
        self.version = None;
    }

    /// Forgets everything (the writer changed what was read).
    pub(super) fn clear(&mut self) {
        self.matches.clear();
        self.match_count = 0;
        self.webhooks.clear();
        self.status_paths = None;
        self.fields.clear();
    }

    pub(super) fn matches(&self, kind: &str, chain: &[String]) -> Option<&Arc<[MatchRow]>> {
        self.matches.get(kind)?.get(chain)
    }

    pub(super) fn put_matches(&mut self, kind: &str, chain: &[String], rows: Arc<[MatchRow]>) {
        if self.match_count >= BOUND {
            self.matches.clear();
            self.match_count = 0;
        }
        let by_chain = self.matches.entry(kind.to_string()).or_default();
        if by_chain.insert(chain.to_vec(), rows).is_none() {
            self.match_count += 1;
        }
    }

    pub(super) fn webhooks(&self) -> &HashMap<String, Arc<Webhook>> {
        &self.webhooks
    }

    pub(super) fn put_webhook(&mut self, w: Arc<Webhook>) {
        if self.webhooks.len() >= BOUND {
            self.webhooks.clear();
        }
        self.webhooks.insert(w.id.clone(), w);
    }

    pub(super) fn status_paths(&self) -> Option<&Arc<HashMap<String, Option<String>>>> {
        self.status_paths.as_ref()
    }

    pub(super) fn put_status_paths(&mut self, paths: HashMap<String, Option<String>>) {
        self.status_paths = Some(Arc::new(paths));
    }

    pub(super) fn fields(&self) -> &HashMap<String, String> {
        &self.fields
    }

    pub(super) fn put_fields(&mut self, workspace_id: String, fields: String) {
        if self.fields.len() >= BOUND {
            self.fields.clear();
        }
        self.fields.insert(workspace_id, fields);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use tidings_core::webhook::Status;

    use crate::testing::{Recorder, request, store_with_webhooks, webhook};
    use crate::{AttemptRecord, Completion, NextState, Store};

    /// How many deliveries a publish of a new event `id` creates.
    async fn deliveries(store: &Store, id: &str) -> i64 {
        store.publish(vec![request(id)]).await.unwrap()[0].deliveries
    }

    /// The publish after a publish sees every webhook change made in between through the
    /// other connection (created, disabled, changed, deleted), although the writer had cached
    /// its matches and webhooks.
    #[tokio::test]
    async fn a_publish_sees_the_webhook_changes_made_since_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 1).await;
        assert_eq!(deliveries(&store, "evt_1").await, 1);
        assert_eq!(deliveries(&store, "evt_1b").await, 1);

        store.webhook_create(&webhook(1)).await.unwrap();
        assert_eq!(
            deliveries(&store, "evt_2").await,
            2,
            "a new webhook matches"
        );

        let mut off = webhook(0);
        off.spec.status = Status::Disabled;
        off.updated = 2;
        store.webhook_update(&off).await.unwrap();
        assert_eq!(
            deliveries(&store, "evt_3").await,
            1,
            "a disabled one does not"
        );

        let mut moved = webhook(1);
        moved.spec.url = "http://127.0.0.1:10/moved".into();
        moved.updated = 2;
        store.webhook_update(&moved).await.unwrap();
        let to = Arc::new(Recorder::default());
        to.room.store(10, Ordering::SeqCst);
        store
            .publish_with(vec![request("evt_4")], Some(to.clone()))
            .await
            .unwrap();
        let jobs = to.jobs.lock().unwrap().clone();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].webhook.spec.url, "http://127.0.0.1:10/moved",
            "the job carries the changed webhook"
        );

        store.webhook_delete("acme", &moved.id, 3).await.unwrap();
        assert_eq!(
            deliveries(&store, "evt_5").await,
            0,
            "a deleted one does not"
        );
        store.close().await;
    }

    /// A webhook the writer itself disables (its receiver answered `410 Gone`) is not matched
    /// by the next publish: no other connection committed, so only the writer can forget it.
    #[tokio::test]
    async fn a_webhook_disabled_by_its_receiver_is_no_longer_matched() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 2).await;
        let to = Arc::new(Recorder::default());
        to.room.store(10, Ordering::SeqCst);
        store
            .publish_with(vec![request("evt_1")], Some(to.clone()))
            .await
            .unwrap();
        let job = to.jobs.lock().unwrap()[0].clone();
        let gone = Completion {
            delivery_id: job.delivery_id.clone(),
            webhook_id: job.webhook.id.clone(),
            disable_webhook: Some("the receiver answered 410 Gone".into()),
            attempt: Some(AttemptRecord {
                id: "atm_1".into(),
                delivery_id: job.delivery_id.clone(),
                attempt_no: 1,
                started_at: 2,
                duration_ms: 1,
                outcome: "http_status".into(),
                status: Some(410),
                request_headers: "{}".into(),
                response_headers: "{}".into(),
                response_body: String::new(),
                error: None,
            }),
            next: NextState::Failed,
            attempts: 1,
        };
        let disabled = store
            .complete("node-test", 3, Arc::from(vec![gone]), 0)
            .await
            .unwrap();
        assert_eq!(disabled.len(), 1);
        assert_eq!(
            deliveries(&store, "evt_2").await,
            1,
            "only the other webhook"
        );
        store.close().await;
    }
}

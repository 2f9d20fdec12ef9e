//! What the writer reads on every publish, kept between its transactions: the webhooks that
//! match a (type, workspace chain), the webhooks themselves (parsed), the event types'
//! `statusPath`s and the workspaces' `fields`; and the webhooks whose recent success it
//! recorded itself, so that the next successes within `last_success_at`'s resolution (a minute)
//! skip an `UPDATE` that would change nothing.
//!
//! The cache is exactly as fresh as the database: it is valid only while no other connection
//! has committed anything (`PRAGMA data_version`, read at the start of every transaction, moves
//! with each commit of another connection — webhook, workspace and event-type changes all go
//! through sqlx). The writer's own changes that affect these reads (a webhook disabled by
//! `complete`) clear it as they happen, and so does a transaction that does not commit cleanly.
//! With 1,000 workspaces publishing in turn, matching cost a join per event and the job a
//! webhook read and a JSON parse per delivery; with the cache a publish reads nothing it read
//! before.

use std::sync::Arc;

use rusqlite::Connection;
use tidings_core::fasthash::HashMap;
use tidings_core::webhook::Webhook;

use crate::queue_rules::{MatchRow, SUCCESS_RESOLUTION_MS};
use crate::{Keys, Result};

/// Entries (of each map) above which the cache starts over at the next transaction: this bounds
/// a churn of workspaces or webhooks; the working set of a node is far smaller.
const BOUND: usize = 100_000;

/// Matches of one event type: by workspace chain.
type ByChain = HashMap<Vec<String>, Arc<[MatchRow]>>;

pub(super) struct ReadCache {
    /// The master keys that open the secrets of the webhooks it parses.
    keys: Keys,
    /// Entries of a map above which it starts over ([`BOUND`]; smaller in tests).
    bound: usize,
    /// `PRAGMA data_version` when the entries were read (`None`: nothing read yet).
    version: Option<i64>,
    /// Matching webhooks by event type, then workspace chain.
    matches: HashMap<String, ByChain>,
    webhooks: HashMap<String, Arc<Webhook>>,
    status_paths: Option<Arc<HashMap<String, Option<String>>>>,
    /// Workspace `fields` (JSON text) by workspace id.
    fields: HashMap<String, String>,
    /// Webhooks whose success this writer recorded (`HEALTH_OK` wrote the row), with the time
    /// it wrote: until that time + [`SUCCESS_RESOLUTION_MS`] another success changes nothing.
    successes: HashMap<String, i64>,
}

impl ReadCache {
    pub(super) fn new(keys: Keys) -> Self {
        Self::with_bound(keys, BOUND)
    }

    fn with_bound(keys: Keys, bound: usize) -> Self {
        Self {
            keys,
            bound,
            version: None,
            matches: HashMap::default(),
            webhooks: HashMap::default(),
            status_paths: None,
            fields: HashMap::default(),
            successes: HashMap::default(),
        }
    }

    /// The master keys in force, to open the secrets of webhooks read from the database.
    pub(super) fn keyring(&self) -> std::sync::Arc<tidings_core::seal::Keyring> {
        self.keys.get()
    }

    /// Called first in every transaction: drops everything if another connection committed
    /// since the entries were read, and starts over the maps that outgrew the bound. Only here:
    /// within a transaction the maps only grow, so what one step found cached is still there
    /// for the next (a webhook missing from the map is taken for deleted).
    pub(super) fn begin(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.version != Some(version) {
            self.clear();
            self.version = Some(version);
        }
        if self.matches.values().map(HashMap::len).sum::<usize>() > self.bound {
            self.matches.clear();
        }
        if self.webhooks.len() > self.bound {
            self.webhooks.clear();
        }
        if self.fields.len() > self.bound {
            self.fields.clear();
        }
        if self.successes.len() > self.bound {
            self.successes.clear();
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
        self.webhooks.clear();
        self.status_paths = None;
        self.fields.clear();
        self.successes.clear();
    }

    pub(super) fn matches(&self, kind: &str, chain: &[String]) -> Option<&Arc<[MatchRow]>> {
        self.matches.get(kind)?.get(chain)
    }

    pub(super) fn put_matches(&mut self, kind: &str, chain: &[String], rows: Arc<[MatchRow]>) {
        let by_chain = self.matches.entry(kind.to_string()).or_default();
        by_chain.insert(chain.to_vec(), rows);
    }

    pub(super) fn webhooks(&self) -> &HashMap<String, Arc<Webhook>> {
        &self.webhooks
    }

    pub(super) fn put_webhook(&mut self, w: Arc<Webhook>) {
        self.webhooks.insert(w.id.clone(), w);
    }

    pub(super) fn status_paths(&self) -> Option<&Arc<HashMap<String, Option<String>>>> {
        self.status_paths.as_ref()
    }

    pub(super) fn put_status_paths(
        &mut self,
        paths: HashMap<String, Option<String>>,
    ) -> Arc<HashMap<String, Option<String>>> {
        let paths = Arc::new(paths);
        self.status_paths = Some(Arc::clone(&paths));
        paths
    }

    pub(super) fn fields(&self) -> &HashMap<String, String> {
        &self.fields
    }

    pub(super) fn put_fields(&mut self, workspace_id: String, fields: String) {
        self.fields.insert(workspace_id, fields);
    }

    /// Whether a success of `webhook` at `now` would change nothing: this writer recorded one
    /// recently enough, and no failure since.
    pub(super) fn success_recorded(&self, webhook: &str, now: i64) -> bool {
        self.successes
            .get(webhook)
            .is_some_and(|at| now <= at.saturating_add(SUCCESS_RESOLUTION_MS))
    }

    /// This writer recorded a success of `webhook` at `at` (the row now says so).
    pub(super) fn put_success(&mut self, webhook: &str, at: i64) {
        self.successes.insert(webhook.to_string(), at);
    }

    /// A failure of `webhook`: the next success must end its streak.
    pub(super) fn forget_success(&mut self, webhook: &str) {
        self.successes.remove(webhook);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidings_core::webhook::Status;

    use super::ReadCache;
    use crate::Store;
    use crate::testing::{answered, handed_off, request, store_with_webhooks, webhook};

    /// A map past the bound keeps every entry until the next transaction begins: a job built
    /// in the middle of one must find the webhooks it was told are cached.
    #[test]
    fn the_bound_applies_between_transactions_only() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut cache = ReadCache::with_bound(crate::testing::keys(), 2);
        cache.begin(&conn).unwrap();
        for i in 0..3 {
            cache.put_webhook(Arc::new(webhook(i)));
            cache.put_fields(format!("ws_{i}"), "{}".into());
        }
        assert_eq!(
            cache.webhooks().len(),
            3,
            "nothing is evicted mid-transaction"
        );
        assert_eq!(cache.fields().len(), 3);
        cache.begin(&conn).unwrap();
        assert!(cache.webhooks().is_empty(), "past the bound: starts over");
        assert!(cache.fields().is_empty());
        cache.put_webhook(Arc::new(webhook(0)));
        cache.begin(&conn).unwrap();
        assert_eq!(cache.webhooks().len(), 1, "within the bound: kept");
    }

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

        store.webhook_create(&webhook(1), i64::MAX).await.unwrap();
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
        let jobs = handed_off(&store, "evt_4").await;
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
        let job = handed_off(&store, "evt_1").await.remove(0);
        let mut gone = answered(&job.delivery_id, &job.webhook.id, 410);
        gone.disable_webhook = Some("the receiver answered 410 Gone".into());
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

    /// A success within a minute of the one the writer recorded is skipped, unless a failure
    /// came in between: then it must end the failing streak, or the webhook would be disabled
    /// for a streak that ended.
    #[tokio::test]
    async fn a_success_after_a_failure_ends_the_streak() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 1).await;
        let id = webhook(0).id;
        let complete = |n: i64, status: i64, cutoff: i64| {
            let store = store.clone();
            let c = answered(&format!("msg_{n}"), &id, status);
            async move {
                store
                    .complete("node-test", n * 1_000, Arc::from(vec![c]), cutoff)
                    .await
                    .unwrap()
            }
        };
        complete(1, 200, 0).await;
        complete(2, 500, 0).await; // a streak from 2 s
        complete(3, 204, 0).await; // ends it, 2 s after the recorded success
        let disabled = complete(4, 503, 3_500).await; // a new streak from 4 s
        assert!(disabled.is_empty(), "the streak of 2 s had ended");
        let disabled = complete(5, 503, 4_000).await;
        assert_eq!(disabled.len(), 1, "the streak of 4 s reaches the cut-off");
        store.close().await;
    }
}

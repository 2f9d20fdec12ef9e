//! Tidings storage: the only crate that speaks SQL.
//!
//! Two backends behind one [`Store`]: an embedded SQLite database (the default, in the data
//! directory, WAL, fsync on commit) and PostgreSQL (`TIDINGS_DATABASE_URL`). The SQL of the
//! resources is written once, in `queries.rs` (configuration) and `delivery_queries.rs` (the
//! delivery log and retention), and compiled for each backend (`include!` with a
//! `Db` alias), so the two cannot drift apart.
//!
//! The store also holds the durable delivery queue: deliveries are claimed with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several nodes can share one database), and
//! [`publisher::Publisher`] batches publishes into group commits. The queue's hot path (publish,
//! claim, complete, release) shares its logic in `queue_rules.rs` and runs per backend: on the
//! embedded store's writer thread (`writer/`, rusqlite, one transaction per batch of work),
//! and through sqlx with array parameters on PostgreSQL (`queue_sqlx.rs`).
#![forbid(unsafe_code)]

pub mod handoff;
pub mod publisher;
mod queue_rules;
mod records;
mod sealing;
mod webhook_index;
mod writer;

#[cfg(test)]
pub(crate) mod testing;

use std::path::PathBuf;
use std::time::Duration;

pub use handoff::{Handoff, Offer};
pub use records::*;
pub use sealing::Keys;
use tidings_core::event::{Event, EventType};
use tidings_core::webhook::{Webhook, WebhookSpec};
use tidings_core::workspace::{Unit, Workspace, WorkspaceType};

/// A storage failure. Callers map `NotFound`/`Conflict` to 404/409 and the rest to 503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("data directory: {0}")]
    DataDir(String),
    /// The embedded store's writer failed (the detail is for logs, not for clients).
    #[error("database error")]
    Embedded(String),
    #[error("the store is closed")]
    Closed,
    /// A sealed secret does not open with the master keys this server has (the detail is for
    /// logs: which key is missing).
    #[error("sealed secrets: {0}")]
    Sealed(String),
    /// A count the caller bounded (a plan's webhooks) would go past its bound.
    #[error("limit of {0} reached")]
    LimitReached(i64),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded store in this directory (created if missing). `shims`: the writer's WAL
    /// gathering (`tidings_walvfs`); off, SQLite runs as shipped.
    Sqlite { data_dir: PathBuf, shims: bool },
    /// A PostgreSQL URL (`postgres://…`); credentials in it are never logged.
    Postgres { url: String, max_connections: u32 },
}

/// The store: one of the two backends. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqlStore),
    Postgres(postgres::SqlStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Store {
    /// Opens (and for SQLite creates) the database; `keys` seal and open the secrets it keeps.
    /// Does not migrate: call [`Store::migrate`].
    pub async fn open(backend: &Backend, keys: Keys) -> Result<Self> {
        match backend {
            Backend::Sqlite { data_dir, shims } => {
                Ok(Self::Sqlite(sqlite::open(data_dir, *shims, keys).await?))
            }
            Backend::Postgres {
                url,
                max_connections,
            } => Ok(Self::Postgres(
                postgres::open(url, *max_connections, keys).await?,
            )),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Publish commits the publisher keeps in flight at once. PostgreSQL overlaps concurrent
    /// commits (one WAL flush for several); the embedded store has one writer thread, which
    /// commits one batch at a time (ADR 0020).
    pub fn publish_lanes(&self) -> usize {
        match self {
            Self::Sqlite(_) => PUBLISH_LANES_SQLITE,
            Self::Postgres(_) => 4,
        }
    }

    /// Whether only one process can use this store (SQLite: the data directory is locked).
    pub fn is_single_node(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }

    /// Publishes a batch (see [`Store::publish`]), handing the new deliveries that `handoff`
    /// has room for straight to it once committed; the others wait for a claim.
    pub async fn publish_with(
        &self,
        batch: Vec<PublishRequest>,
        handoff: Option<std::sync::Arc<dyn Handoff>>,
    ) -> Result<Published> {
        match self {
            Self::Sqlite(s) => s.publish(batch, handoff).await,
            // Boxed: sqlx's futures run to kilobytes, and a future awaiting one of two is as
            // large as the larger. Unboxed, every caller's future (the publisher's commit task,
            // spawned per batch) carried PostgreSQL's size on the embedded store too, and moving
            // it was a tenth of a publish's instructions there.
            Self::Postgres(s) => Box::pin(s.publish(batch, handoff)).await,
        }
    }

    /// Makes a batch of events durable with their deliveries, in one transaction; returns
    /// the outcomes in order.
    pub async fn publish(&self, batch: Vec<PublishRequest>) -> Result<Vec<PublishOutcome>> {
        Ok(self.publish_with(batch, None).await?.outcomes)
    }

    /// Closes the connection pools (and releases the data directory lock).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => {
                s.close_writer().await;
                s.close().await;
                s.finish_index().await;
            }
            Self::Postgres(s) => s.close().await,
        }
    }
}

/// Generates `Store` methods that forward to the backend.
macro_rules! forward {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Self::Sqlite(s) => s.$name($($arg),*).await,
                        // Boxed: see `Store::publish_with`.
                        Self::Postgres(s) => Box::pin(s.$name($($arg),*)).await,
                    }
                }
            )*
        }
    };
}

forward! {
    /// Applies pending migrations.
    fn migrate(&self) -> Result<()>;
    /// A trivial query: is the database reachable?
    fn ping(&self) -> Result<()>;
    fn setting_get(&self, key: &str) -> Result<Option<String>>;
    /// Inserts unless the key exists; returns whether it inserted.
    fn setting_insert_if_absent(&self, key: &str, value: &str) -> Result<bool>;
    fn signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// Inserts unless a key with that kid exists.
    fn insert_signing_key(&self, key: &SigningKey) -> Result<()>;
    /// Seals every stored secret again with the first master key (at start, and when the
    /// master key rotates); returns how many rows changed.
    fn reseal(&self) -> Result<u64>;

    /// Fails with `Conflict` when the id is taken.
    fn workspace_create(&self, ws: &Workspace) -> Result<()>;
    fn workspace_get(&self, id: &str) -> Result<Option<Workspace>>;
    fn workspace_list(&self, cursor: Option<&str>, limit: i64) -> Result<Page<Workspace>>;
    /// Replaces everything but id and createdAt; `NotFound` when absent.
    fn workspace_update(&self, ws: &Workspace) -> Result<()>;
    /// Deletes a workspace with its clients and webhooks and cancels their pending deliveries.
    /// `Conflict` while it has children; `NotFound` when absent.
    fn workspace_delete(&self, id: &str, now: i64) -> Result<()>;
    /// The workspace and its ancestors, nearest first; empty when it does not exist.
    fn workspace_chain(&self, id: &str) -> Result<Vec<Workspace>>;

    fn client_create(&self, client: &IntegrationClient) -> Result<()>;
    fn client_get(&self, client_id: &str) -> Result<Option<IntegrationClient>>;
    fn client_list(&self, workspace_id: &str, cursor: Option<&str>, limit: i64) -> Result<Page<IntegrationClient>>;
    /// Stores a new secret hash and bumps the generation; `NotFound` when absent.
    fn client_regenerate(&self, workspace_id: &str, client_id: &str, secret_hash: &str, now: i64) -> Result<IntegrationClient>;
    fn client_delete(&self, workspace_id: &str, client_id: &str) -> Result<()>;

    /// Inserts the built-in event types that do not exist yet.
    fn event_types_seed(&self, types: &[EventType], now: i64) -> Result<()>;
    fn event_type_list(&self) -> Result<Vec<EventType>>;
    /// `Conflict` when the name exists.
    fn event_type_create(&self, t: &EventType, now: i64) -> Result<()>;
    /// `NotFound` when absent.
    fn event_type_update(&self, t: &EventType) -> Result<()>;
    /// `Conflict` while webhooks subscribe to it; `NotFound` when absent.
    fn event_type_delete(&self, name: &str) -> Result<()>;

    /// Creates the webhook unless its workspace has `max` webhooks already (`LimitReached`):
    /// counted and inserted atomically, so concurrent creates cannot go past `max`.
    fn webhook_create(&self, webhook: &Webhook, max: i64) -> Result<()>;
    fn webhook_get(&self, workspace_id: &str, id: &str) -> Result<Option<Webhook>>;
    fn webhook_list(&self, workspace_id: &str, cursor: Option<&str>, limit: i64) -> Result<Page<Webhook>>;
    /// Replaces the configuration; `NotFound` when absent.
    fn webhook_update(&self, webhook: &Webhook) -> Result<()>;
    /// Deletes and cancels pending deliveries; `NotFound` when absent.
    fn webhook_delete(&self, workspace_id: &str, id: &str, now: i64) -> Result<()>;

    /// Makes events and their deliveries durable in one transaction (one commit for the batch).
    /// Claims up to `limit` due deliveries for `owner` until `lease_until`, skipping those of
    /// the `exclude`d webhooks.
    fn claim(&self, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>>;
    /// Gives claimed deliveries back to the queue, due at `at`, without an attempt.
    fn release(&self, owner: &str, ids: &[String], at: i64) -> Result<()>;
    /// Records attempts and moves deliveries on, in one transaction; keeps each webhook's
    /// failing streak and disables webhooks that answered `410 Gone` or have been failing since
    /// `disable_failing_since` or earlier. Returns the webhooks it disabled.
    /// The completions are shared, not copied: the embedded store hands them to its writer
    /// thread, and a caller may retry with the same batch.
    fn complete(&self, owner: &str, now: i64, completions: std::sync::Arc<[Completion]>, disable_failing_since: i64) -> Result<Vec<DisabledWebhook>>;
    /// Makes every leased delivery due now (single-node stores at start-up: no other process
    /// can hold a lease). Returns how many were released.
    fn release_all_leases(&self, now: i64) -> Result<u64>;
    /// The delivery log of a webhook, newest first, optionally of one state.
    fn delivery_list(&self, webhook_id: &str, state: Option<&str>, cursor: Option<&str>, limit: i64) -> Result<Page<DeliveryRecord>>;
    fn delivery_get(&self, id: &str) -> Result<Option<DeliveryRecord>>;
    fn attempts_of(&self, delivery_id: &str) -> Result<Vec<AttemptRecord>>;
    fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<DeliveryRecord>>;
    fn event_get(&self, id: &str) -> Result<Option<EventRecord>>;
    /// Makes a delivery pending and due now, whatever its state; `NotFound` when absent.
    fn delivery_retry(&self, id: &str, now: i64) -> Result<DeliveryRecord>;
    /// Makes the webhook's failed deliveries created in [since, until) due now; returns how many.
    fn replay(&self, webhook_id: &str, since: i64, until: i64, now: i64) -> Result<u64>;
    /// Retention: deletes succeeded deliveries (with their attempts) last changed before
    /// `succeeded_before`, failed and cancelled ones before `events_before`, and events created
    /// before `events_before` that no delivery refers to any more. Works in batches.
    fn prune(&self, succeeded_before: i64, events_before: i64, batch: i64) -> Result<PruneReport>;
    /// Pending deliveries (due or not); for readiness output and tests.
    fn pending_count(&self) -> Result<i64>;

    /// Stores a console session under the SHA-256 of its cookie.
    fn session_create(&self, token_hash: &str, session: &ConsoleSession) -> Result<()>;
    /// The unexpired session of this cookie hash.
    fn session_get(&self, token_hash: &str, now: i64) -> Result<Option<ConsoleSession>>;
    fn session_delete(&self, token_hash: &str) -> Result<()>;
    /// Stores a one-time portal link under the SHA-256 of its token.
    fn portal_link_create(&self, token_hash: &str, link: &PortalLink, now: i64, expires_at: i64) -> Result<()>;
    /// Uses the link if it is unused and unexpired (once, across all nodes).
    fn portal_link_redeem(&self, token_hash: &str, now: i64) -> Result<Option<PortalLink>>;
    /// Deletes expired sessions, and links that expired before `links_before`.
    fn console_prune(&self, now: i64, links_before: i64) -> Result<u64>;
    /// Events newest first by filter, examining a bounded number of rows per call.
    fn event_search(&self, filter: &EventFilter, cursor: Option<&str>, limit: i64) -> Result<Page<EventRecord>>;
    /// The child workspaces of a channel, at most `limit`.
    fn workspace_children(&self, parent_id: &str, limit: i64) -> Result<Vec<Workspace>>;
    /// Disabled and failing webhooks of every workspace.
    fn webhooks_troubled(&self, limit: i64) -> Result<Vec<TroubledWebhook>>;
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Creates `dir` (and its parents) if missing; `dir` itself is made readable by its owner only
/// (0700), also when it exists already.
pub fn private_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::DataDir(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::DataDir(format!("cannot restrict {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Creates `file` if missing; makes it readable and writable by its owner only (0600).
fn private_file(file: &std::path::Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options
            .open(file)
            .and_then(|_| std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| StoreError::DataDir(format!("cannot restrict {}: {e}", file.display())))?;
    }
    #[cfg(not(unix))]
    options
        .open(file)
        .map_err(|e| StoreError::DataDir(format!("cannot create {}: {e}", file.display())))?;
    Ok(())
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_string())
        }
        _ => StoreError::Db(e),
    }
}

const PUBLISH_LANES_SQLITE: usize = 1;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub mod sqlite {
    //! The embedded backend: one SQLite file in the data directory, WAL, `synchronous=FULL`
    //! (a commit is on disk before it returns), a single writer connection and a read pool.
    use super::*;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    type Db = sqlx::Sqlite;
    type DbRow = sqlx::sqlite::SqliteRow;
    /// A webhook's deliveries are listed through the per-webhook index kept beside the database
    /// (`webhook_index`): `webhook_deliveries` is a view over its merged entries and the
    /// deliveries not merged into it yet; retention prunes it too.
    const WEBHOOK_INDEX_TABLE: bool = true;
    /// The deliveries of the webhooks that the SQL `webhooks` selects (ids, or a subquery).
    fn deliveries_of(webhooks: &str) -> String {
        format!("id IN (SELECT delivery_id FROM webhook_deliveries WHERE hook_id IN ({webhooks}))")
    }
    /// Begins a transaction that reads and then writes. `IMMEDIATE` takes the write lock first
    /// (waiting for the writer thread like any writer): a deferred one that read before the
    /// writer's next commit could not start writing after it (`SQLITE_BUSY_SNAPSHOT`), which
    /// under steady load failed retention passes.
    const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
    /// Locks a selected row for the transaction: nothing to add, `BEGIN_WRITE` holds the
    /// database's only write lock already.
    const FOR_UPDATE: &str = "";
    /// Which deliveries are the event `$1`'s: those in the range of ids the event keeps
    /// (migration 0009; there is no index on `event_id`).
    const EVENT_DELIVERIES: &str = "id BETWEEN (SELECT first_delivery FROM events WHERE id = $1) \
         AND (SELECT last_delivery FROM events WHERE id = $1) AND event_id = $1";
    /// Whether a delivery `d` is of the event `e`, in a form that finds them by the range.
    const OF_EVENT: &str =
        "d.id BETWEEN e.first_delivery AND e.last_delivery AND d.event_id = e.id";
    static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    /// The SQLite store. The delivery queue's hot path (publish, claim, complete, release) runs
    /// on the writer thread (`writer/`); everything else through sqlx: `write` has one
    /// connection, `read` several.
    #[derive(Clone)]
    pub struct SqlStore {
        write: sqlx::Pool<Db>,
        read: sqlx::Pool<Db>,
        writer: std::sync::Arc<crate::writer::Writer>,
        keys: Keys,
        /// The data directory (the per-webhook index is finished there at close).
        dir: std::path::PathBuf,
        /// Held open with an exclusive lock: one process per data directory.
        _lock: std::sync::Arc<std::fs::File>,
    }

    /// Pool options for up to `max` connections kept open, each of which runs `attach` first
    /// (the per-webhook index, `webhook_index`).
    fn attaching(attach: String, max: u32) -> SqlitePoolOptions {
        SqlitePoolOptions::new()
            .max_connections(max)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(move |conn, _| {
                let sql = attach.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(conn)
                        .await
                        .map(drop)
                })
            })
    }

    pub(super) async fn open(
        data_dir: &std::path::Path,
        shims: bool,
        keys: Keys,
    ) -> Result<SqlStore> {
        // The directory and every file in it are the owner's only: the database holds the
        // secrets (sealed) and everything integrators sent.
        private_dir(data_dir)?;
        let lock_path = data_dir.join("LOCK");
        private_file(&lock_path)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                StoreError::DataDir(format!("cannot open {}: {e}", lock_path.display()))
            })?;
        lock.try_lock().map_err(|_| {
            StoreError::DataDir(format!(
                "{} is in use by another tidings process (the embedded store allows one; use PostgreSQL for several nodes)",
                data_dir.display()
            ))
        })?;
        let database = data_dir.join("tidings.db");
        // SQLite gives its log and shared-memory files the database file's permissions.
        private_file(&database)?;
        for name in ["tidings.db-wal", "tidings.db-shm"] {
            let file = data_dir.join(name);
            if file.exists() {
                private_file(&file)?;
            }
        }
        // Before any connection attaches it (see `webhook_index`).
        let index = crate::webhook_index::prepare(data_dir, &database)?;
        let attach = crate::webhook_index::attach_sql(&index)?;
        let attach_writing = crate::webhook_index::attach_writing_sql(&index)?;
        let opts = SqliteConnectOptions::new()
            .filename(&database)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", "-32000")
            .pragma("temp_store", "memory");
        // The writer thread gives way while this connection is in use (`writer::gate`).
        let gate = std::sync::Arc::new(crate::writer::gate::Gate::default());
        let (entering, leaving) = (gate.clone(), gate.clone());
        let write = attaching(attach_writing, 1)
            .min_connections(1)
            .before_acquire(move |_, _| {
                entering.enter();
                Box::pin(async { Ok(true) })
            })
            .after_release(move |_, _| {
                leaving.leave();
                Box::pin(async { Ok(true) })
            })
            .connect_with(opts.clone())
            .await?;
        let read = attaching(attach, 4)
            .connect_with(opts.read_only(true))
            .await?;
        let writer = crate::writer::Writer::start(
            &database,
            &index,
            BUSY_TIMEOUT,
            shims,
            keys.clone(),
            gate,
        )?;
        Ok(SqlStore {
            write,
            read,
            writer: std::sync::Arc::new(writer),
            keys,
            dir: data_dir.to_path_buf(),
            _lock: std::sync::Arc::new(lock),
        })
    }

    impl SqlStore {
        pub(crate) async fn publish(
            &self,
            batch: Vec<PublishRequest>,
            handoff: Option<std::sync::Arc<dyn Handoff>>,
        ) -> Result<Published> {
            let offer = handoff.as_ref().and_then(|h| h.offer());
            let (published, jobs) = self.writer.publish(batch, offer).await?;
            // Committed: the leased deliveries go to the worker.
            if let Some(h) = handoff.filter(|_| !jobs.is_empty()) {
                h.deliver(jobs);
            }
            Ok(published)
        }

        pub(crate) async fn claim(
            &self,
            owner: &str,
            now: i64,
            lease_until: i64,
            limit: i64,
            exclude: &[String],
        ) -> Result<Vec<Job>> {
            self.writer
                .claim(owner, now, lease_until, limit, exclude)
                .await
        }

        pub(crate) async fn complete(
            &self,
            owner: &str,
            now: i64,
            completions: std::sync::Arc<[Completion]>,
            disable_failing_since: i64,
        ) -> Result<Vec<DisabledWebhook>> {
            self.writer
                .complete(owner, now, completions, disable_failing_since)
                .await
        }

        pub(crate) async fn release(&self, owner: &str, ids: &[String], at: i64) -> Result<()> {
            self.writer.release(owner, ids, at).await
        }

        /// Finishes the writer's queued work and closes its connection.
        pub(crate) async fn close_writer(&self) {
            self.writer.close().await;
        }

        /// After every connection closed: flushes the per-webhook index and marks it clean.
        pub(crate) async fn finish_index(&self) {
            let dir = self.dir.clone();
            let _ = tokio::task::spawn_blocking(move || {
                crate::webhook_index::finish(&dir, &dir.join("tidings.db"))
            })
            .await;
        }
    }

    include!("queries.rs");
    include!("delivery_queries.rs");
    include!("console_queries.rs");
}

pub mod postgres {
    //! The PostgreSQL backend: one pool; several nodes may share the database.
    use super::*;
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use std::str::FromStr;

    type Db = sqlx::Postgres;
    type DbRow = sqlx::postgres::PgRow;
    /// A webhook's deliveries are listed through the `(webhook_id, id)` index of `deliveries`.
    const WEBHOOK_INDEX_TABLE: bool = false;
    /// The deliveries of the webhooks that the SQL `webhooks` selects (ids, or a subquery).
    fn deliveries_of(webhooks: &str) -> String {
        format!("webhook_id IN ({webhooks})")
    }
    /// Row locks need no more than a plain transaction here.
    const BEGIN_WRITE: &str = "BEGIN";
    /// Locks a selected row for the transaction.
    const FOR_UPDATE: &str = "FOR UPDATE";
    /// Which deliveries are the event `$1`'s (index `deliveries_event`).
    const EVENT_DELIVERIES: &str = "event_id = $1";
    /// Whether a delivery `d` is of the event `e`.
    const OF_EVENT: &str = "d.event_id = e.id";
    static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    #[derive(Clone)]
    pub struct SqlStore {
        write: sqlx::Pool<Db>,
        read: sqlx::Pool<Db>,
        keys: Keys,
    }

    pub(super) async fn open(url: &str, max_connections: u32, keys: Keys) -> Result<SqlStore> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(opts)
            .await?;
        Ok(SqlStore {
            write: pool.clone(),
            read: pool,
            keys,
        })
    }

    include!("queries.rs");
    include!("delivery_queries.rs");
    include!("console_queries.rs");
    include!("queue_sqlx.rs");
}

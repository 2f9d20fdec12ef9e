//! The embedded store's writer thread: publishes, claims, attempt records and releases run on
//! one dedicated thread that owns a SQLite connection (rusqlite), instead of one cross-thread
//! round trip per statement through sqlx's worker.
//!
//! Each item runs in a transaction of its own, in the order the items arrive. The items come
//! batched already, each by its own stream: a publish is the publisher's group commit
//! (`publisher.rs`), a completion the worker's recorder's batch, a claim the worker's, so
//! there is one group commit per stream and none on top of them here. A publish commits with
//! `synchronous = FULL` (fsync before anyone is answered), everything else with `NORMAL`: a
//! lost claim or attempt record only repeats a delivery, and in WAL mode the next FULL commit
//! makes those frames durable too. An item that fails is rolled back whole and gets its error.
//! The logic and the SQL are those of `queue_rules.rs`, shared with the PostgreSQL backend. With the
//! shims on, the connection opens through the `tidings-wal` VFS (`tidings_walvfs`, ADR 0008),
//! which writes each commit's log frames in one call.

mod checkpoint;
pub(crate) mod gate;
mod read_cache;
mod statements;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use read_cache::ReadCache;
use rusqlite::Connection;
use statements::{claim, complete, publish, release};
use tokio::sync::oneshot;

use crate::handoff::Offer;
use crate::{Completion, DisabledWebhook, Job, PublishRequest, Published, Result, StoreError};

/// The writer's SQLite page cache, in KiB. What it reads again and again is cached above SQLite
/// (`cache`), so its pages are mostly the ones it writes: the right edges of the tables and
/// indexes. It became this small when SQLite still walked the whole page cache after most b-tree
/// splits, and a cache four times larger cost ~20% more writer CPU per event
/// (docs/perf-log/rounds-2026-11-24-to-12-05.md, seventh round); the small cache also keeps the
/// RSS of a large backlog down.
const WRITER_CACHE_KIB: i64 = 8_000;

type Reply<T> = oneshot::Sender<Result<T>>;

enum Work {
    Publish(
        Vec<PublishRequest>,
        Option<Offer>,
        Reply<(Published, Vec<Job>)>,
    ),
    Claim {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: i64,
        exclude: Vec<String>,
        reply: Reply<Vec<Job>>,
    },
    Complete {
        owner: String,
        now: i64,
        completions: Arc<[Completion]>,
        cutoff: i64,
        reply: Reply<Vec<DisabledWebhook>>,
    },
    Release {
        owner: String,
        ids: Vec<String>,
        at: i64,
        reply: Reply<()>,
    },
}

/// What an item produced, answered once its transaction ended.
enum Output {
    Publish(Result<(Published, Vec<Job>)>),
    Claim(Result<Vec<Job>>),
    Complete(Result<Vec<DisabledWebhook>>),
    Release(Result<()>),
}

impl Output {
    fn is_ok(&self) -> bool {
        match self {
            Self::Publish(r) => r.is_ok(),
            Self::Claim(r) => r.is_ok(),
            Self::Complete(r) => r.is_ok(),
            Self::Release(r) => r.is_ok(),
        }
    }
}

impl Work {
    /// Runs the item's statements on `conn`, in its open transaction.
    fn perform(&mut self, conn: &Connection, cache: &mut ReadCache) -> Output {
        match self {
            Self::Publish(batch, offer, _) => {
                Output::Publish(publish(conn, cache, batch, offer.take()))
            }
            Self::Claim {
                owner,
                now,
                lease_until,
                limit,
                exclude,
                ..
            } => Output::Claim(claim(
                conn,
                cache,
                owner,
                *now,
                *lease_until,
                *limit,
                exclude,
            )),
            Self::Complete {
                owner,
                now,
                completions,
                cutoff,
                ..
            } => Output::Complete(complete(conn, cache, owner, *now, completions, *cutoff)),
            Self::Release { owner, ids, at, .. } => Output::Release(release(conn, owner, ids, *at)),
        }
    }

    /// Answers with what the item produced (after its transaction ended).
    fn answer(self, out: Output) {
        // A caller that went away does not need its answer.
        let _ = match (self, out) {
            (Self::Publish(_, _, tx), Output::Publish(r)) => tx.send(r).map_err(drop),
            (Self::Claim { reply, .. }, Output::Claim(r)) => reply.send(r).map_err(drop),
            (Self::Complete { reply, .. }, Output::Complete(r)) => reply.send(r).map_err(drop),
            (Self::Release { reply, .. }, Output::Release(r)) => reply.send(r).map_err(drop),
            (w, _) => {
                fail(w, "internal error: an item's output does not match it");
                Ok(())
            }
        };
    }
}

/// Handle to the writer thread; shared by every clone of the store.
pub(crate) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Work>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Embedded(e.to_string())
    }
}

impl Writer {
    /// Opens the connection (the database file must exist, WAL mode already set) and starts the
    /// thread.
    /// `index` is the per-webhook delivery index's file (`webhook_index`), which the checkpoint
    /// thread merges into; the writer itself never touches it.
    pub(crate) fn start(
        path: &Path,
        index: &Path,
        busy_timeout: std::time::Duration,
        shim: bool,
        keys: crate::Keys,
        gate: std::sync::Arc<gate::Gate>,
    ) -> Result<Self> {
        // With the shim, the writer's log frames go out one write per commit
        // (`tidings_walvfs`); readers and the checkpointer use the default VFS on the same files.
        let conn = if shim {
            let vfs =
                tidings_walvfs::register().map_err(|e| StoreError::Embedded(e.to_string()))?;
            Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)?
        } else {
            Connection::open(path)?
        };
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        conn.set_prepared_statement_cache_capacity(128);
        // Checkpoints run on their own thread; the writer's is a backstop (see `checkpoint`).
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpoint::WRITER_BACKSTOP_FRAMES,
        )?;
        let checkpointer = checkpoint::Checkpointer::start(path, index, busy_timeout)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tidings-writer".into())
            .spawn(move || run(conn, rx, keys, &gate))
            .map_err(|e| StoreError::DataDir(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    async fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> Work) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        {
            let queue = self
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let sender = queue.as_ref().ok_or(StoreError::Closed)?;
            sender.send(make(tx)).map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Takes the batch by value: it moves to the writer thread without a copy.
    /// Returns the deliveries leased under `offer`, as jobs, with the outcome.
    pub(crate) async fn publish(
        &self,
        batch: Vec<PublishRequest>,
        offer: Option<Offer>,
    ) -> Result<(Published, Vec<Job>)> {
        self.submit(|reply| Work::Publish(batch, offer, reply))
            .await
    }

    pub(crate) async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        exclude: &[String],
    ) -> Result<Vec<Job>> {
        let (owner, exclude) = (owner.to_string(), exclude.to_vec());
        self.submit(|reply| Work::Claim {
            owner,
            now,
            lease_until,
            limit,
            exclude,
            reply,
        })
        .await
    }

    pub(crate) async fn complete(
        &self,
        owner: &str,
        now: i64,
        completions: Arc<[Completion]>,
        cutoff: i64,
    ) -> Result<Vec<DisabledWebhook>> {
        let owner = owner.to_string();
        self.submit(|reply| Work::Complete {
            owner,
            now,
            completions,
            cutoff,
            reply,
        })
        .await
    }

    pub(crate) async fn release(&self, owner: &str, ids: &[String], at: i64) -> Result<()> {
        let (owner, ids) = (owner.to_string(), ids.to_vec());
        self.submit(|reply| Work::Release {
            owner,
            ids,
            at,
            reply,
        })
        .await
    }

    /// Stops the thread after the work already queued and closes its connection.
    pub(crate) async fn close(&self) {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(c) = checkpointer {
            let thread = c.stop();
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Work>, keys: crate::Keys, gate: &gate::Gate) {
    let mut durable_mode = true;
    let mut cache = ReadCache::new(keys);
    while let Ok(mut work) = rx.recv() {
        let durable = matches!(work, Work::Publish(..));
        if durable != durable_mode {
            let mode = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            // Before the switch counts as done, assume the stricter mode is not in force.
            durable_mode = false;
            if let Err(e) = run_cached(&conn, mode) {
                fail(work, &e.to_string());
                continue;
            }
            durable_mode = durable;
        }
        gate.give_way();
        match transaction(&mut conn, &mut cache, &mut work) {
            Ok(out) => work.answer(out),
            Err(e) => {
                tracing::error!(error = %e, "embedded store commit failed");
                fail(work, &e.to_string());
            }
        }
    }
}

fn fail(w: Work, e: &str) {
    fn err<T>(e: &str) -> Result<T> {
        Err(StoreError::Embedded(e.to_string()))
    }
    let _ = match w {
        Work::Publish(_, _, tx) => tx.send(err(e)).map_err(drop),
        Work::Claim { reply, .. } => reply.send(err(e)).map_err(drop),
        Work::Complete { reply, .. } => reply.send(err(e)).map_err(drop),
        Work::Release { reply, .. } => reply.send(err(e)).map_err(drop),
    };
}

/// How the transaction ended (its commit, or the rollback of a lone failed item).
type Ended = std::result::Result<(), rusqlite::Error>;

/// Runs a statement without parameters or rows through the statement cache. `BEGIN`,
/// `COMMIT` and the `synchronous` switch run around every transaction; rusqlite's own
/// `Transaction` and `pragma_update` prepare them afresh each time (~2% of the writer).
fn run_cached(conn: &Connection, sql: &str) -> Ended {
    conn.prepare_cached(sql)?.raw_execute().map(drop)
}

/// Commits the transaction `BEGIN IMMEDIATE` opened; if the commit fails and left it open, it
/// is rolled back (what dropping a rusqlite `Transaction` does).
fn commit(conn: &Connection) -> Ended {
    let done = run_cached(conn, "COMMIT");
    if done.is_err() && !conn.is_autocommit() {
        let _ = run_cached(conn, "ROLLBACK");
    }
    done
}

/// Rolls back the transaction `BEGIN IMMEDIATE` opened.
fn rollback(conn: &Connection) -> Ended {
    run_cached(conn, "ROLLBACK")
}

/// Runs the item in a transaction of its own: commits it, or rolls back an item that failed
/// (its output carries the error). `Err` is a transaction that could not begin or commit.
fn transaction(
    conn: &mut Connection,
    cache: &mut ReadCache,
    work: &mut Work,
) -> std::result::Result<Output, rusqlite::Error> {
    run_cached(conn, "BEGIN IMMEDIATE")?;
    if cache.begin(conn).is_err() {
        // Whatever this transaction reads is current; the next one starts afresh.
        cache.invalidate();
    }
    let out = work.perform(conn, cache);
    let ended = if out.is_ok() {
        commit(conn)
    } else {
        rollback(conn)
    };
    if !out.is_ok() || ended.is_err() {
        // What the cache read may have been undone with the transaction.
        cache.invalidate();
    }
    match ended {
        // The item's own error is the answer even if its rollback failed too.
        Err(e) if out.is_ok() => Err(e),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests;

//! The embedded store's writer thread: publishes, claims, attempt records and releases run on
//! one dedicated thread that owns a SQLite connection (rusqlite), instead of one cross-thread
//! round trip per statement through sqlx's worker.
//!
//! The thread takes whatever work is waiting (up to [`MAX_WORK`] items) and runs it in one
//! transaction. The items run straight in the transaction; if one fails, the transaction is
//! rolled back and run again with each item in its own savepoint, so the failing item is rolled
//! back alone and gets its error (savepoints on every item cost a statement journal each; a
//! failure is rare). The transaction commits with `synchronous = FULL` (fsync before anyone is
//! answered) whenever it holds a publish, and with `NORMAL` otherwise: a lost claim or attempt record only
//! repeats a delivery, and in WAL mode the next FULL commit makes those frames durable too.
//! Nobody is answered before the commit. The logic and the SQL are those of `queue.rs`, shared
//! with the PostgreSQL backend. The connection opens through the `tidings-wal` VFS
//! (`tidings_walvfs`, ADR 0008), which writes each commit's log frames in one call.

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

/// Work items in one transaction at most.
const MAX_WORK: usize = 64;

/// The writer's SQLite page cache, in KiB. What it reads again and again is cached above SQLite
/// (`cache`), so its pages are mostly the ones it writes: the right edges of the tables and
/// indexes. It became this small when SQLite still walked the whole page cache after most b-tree
/// splits, and a cache four times larger cost ~20% more writer CPU per event
/// (docs/perf-log/rounds-2026-11-24-to-12-05.md, seventh round); the walk is gone where
/// `tidings_walvfs::pcache` is installed (ADR 0011), and the small cache still keeps the RSS of a
/// large backlog down.
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

/// What an item produced, answered once the transaction committed.
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

    /// The same item, failed with `e`.
    fn failed(self, e: &str) -> Self {
        let err = || StoreError::Embedded(e.to_string());
        match self {
            Self::Publish(_) => Self::Publish(Err(err())),
            Self::Claim(_) => Self::Claim(Err(err())),
            Self::Complete(_) => Self::Complete(Err(err())),
            Self::Release(_) => Self::Release(Err(err())),
        }
    }
}

impl Work {
    /// Runs the item's statements on `conn` (the open transaction or a savepoint of it).
    fn perform(&self, conn: &Connection, cache: &mut ReadCache) -> Output {
        match self {
            Self::Publish(batch, offer, _) => {
                Output::Publish(publish(conn, cache, batch, offer.clone()))
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

    /// Answers with what the item produced; a failed commit turns every success into that
    /// failure.
    fn answer(self, out: Output, commit: Option<&str>) {
        fn settle<T>(r: Result<T>, commit: Option<&str>) -> Result<T> {
            match commit {
                Some(e) => r.and(Err(StoreError::Embedded(e.to_string()))),
                None => r,
            }
        }
        // A caller that went away does not need its answer.
        let _ = match (self, out) {
            (Self::Publish(_, _, tx), Output::Publish(r)) => {
                tx.send(settle(r, commit)).map_err(drop)
            }
            (Self::Claim { reply, .. }, Output::Claim(r)) => {
                reply.send(settle(r, commit)).map_err(drop)
            }
            (Self::Complete { reply, .. }, Output::Complete(r)) => {
                reply.send(settle(r, commit)).map_err(drop)
            }
            (Self::Release { reply, .. }, Output::Release(r)) => {
                reply.send(settle(r, commit)).map_err(drop)
            }
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
    while let Ok(first) = rx.recv() {
        let mut work = vec![first];
        while work.len() < MAX_WORK {
            match rx.try_recv() {
                Ok(w) => work.push(w),
                Err(_) => break,
            }
        }
        let durable = work.iter().any(|w| matches!(w, Work::Publish(..)));
        if durable != durable_mode {
            let mode = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            // Before the switch counts as done, assume the stricter mode is not in force.
            durable_mode = false;
            if let Err(e) = run_cached(&conn, mode) {
                let e = e.to_string();
                for w in work {
                    fail(w, &e);
                }
                continue;
            }
            durable_mode = durable;
        }
        gate.give_way();
        let (done, commit) = transaction(&mut conn, &mut cache, work);
        let commit = commit.err().map(|e| e.to_string());
        if let Some(e) = &commit {
            tracing::error!(error = %e, "embedded store commit failed");
        }
        for (w, out) in done {
            w.answer(out, commit.as_deref());
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

/// Runs the items in one transaction and commits. They run straight in the transaction first;
/// only if one fails is everything rolled back and run again with each item in its own
/// savepoint, so that the failing item loses alone (savepoints cost every item a statement
/// journal, and failures are rare).
fn transaction(
    conn: &mut Connection,
    cache: &mut ReadCache,
    work: Vec<Work>,
) -> (Vec<(Work, Output)>, Ended) {
    if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
        return (failed_all(work, &e), Err(e));
    }
    let tx: &Connection = conn;
    if cache.begin(tx).is_err() {
        // Whatever this transaction reads is current; the next one starts afresh.
        cache.invalidate();
    }
    // Stops at the first failure, so the last output tells whether all succeeded.
    let mut outputs = Vec::with_capacity(work.len());
    for w in &work {
        let out = w.perform(tx, cache);
        let ok = out.is_ok();
        outputs.push(out);
        if !ok {
            break;
        }
    }
    if outputs.last().is_none_or(Output::is_ok) {
        let commit = commit(tx);
        if commit.is_err() {
            cache.invalidate();
        }
        return (work.into_iter().zip(outputs).collect(), commit);
    }
    // One failed. Whatever the others produced is undone with the transaction (handed-off
    // reservations are given back as their outputs drop), and so may be what the cache read.
    cache.invalidate();
    if work.len() == 1 {
        let rolled = rollback(tx);
        return (work.into_iter().zip(outputs).collect(), rolled);
    }
    drop(outputs);
    if let Err(e) = rollback(tx) {
        return (failed_all(work, &e), Err(e));
    }
    one_savepoint_each(conn, cache, work)
}

/// Every item in its own savepoint of one transaction: a failing item is rolled back alone.
fn one_savepoint_each(
    conn: &mut Connection,
    cache: &mut ReadCache,
    work: Vec<Work>,
) -> (Vec<(Work, Output)>, Ended) {
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return (failed_all(work, &e), Err(e)),
    };
    let mut done = Vec::with_capacity(work.len());
    for w in work {
        let mut sp = match tx.savepoint() {
            Ok(sp) => sp,
            Err(e) => {
                fail(w, &e.to_string());
                continue;
            }
        };
        let out = w.perform(&sp, cache);
        // A savepoint that is not committed rolls back: the failed item leaves nothing behind
        // (and the cache forgets what it may have read of it).
        let kept = if out.is_ok() {
            sp.commit()
        } else {
            cache.invalidate();
            sp.rollback()
        };
        done.push(match kept {
            Ok(()) => (w, out),
            Err(e) => (w, out.failed(&e.to_string())),
        });
    }
    let commit = tx.commit();
    if commit.is_err() {
        cache.invalidate();
    }
    (done, commit)
}

/// Fails every item at once (nothing ran); returns nothing left to answer.
fn failed_all(work: Vec<Work>, e: &rusqlite::Error) -> Vec<(Work, Output)> {
    let msg = e.to_string();
    for w in work {
        fail(w, &msg);
    }
    Vec::new()
}

#[cfg(test)]
mod tests;

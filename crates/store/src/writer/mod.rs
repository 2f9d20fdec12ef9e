//! The embedded store's writer thread: publishes, claims, attempt records and releases run on
//! one dedicated thread that owns a SQLite connection (rusqlite), instead of one cross-thread
//! round trip per statement through sqlx's worker.
//!
//! The thread takes whatever work is waiting (up to [`MAX_WORK`] items) and runs it in one
//! transaction, each item in its own savepoint (a failing item is rolled back alone and gets its
//! error). The transaction commits with `synchronous = FULL` (fsync before anyone is answered)
//! whenever it holds a publish, and with `NORMAL` otherwise: a lost claim or attempt record only
//! repeats a delivery, and in WAL mode the next FULL commit makes those frames durable too.
//! Nobody is answered before the commit. The logic and the SQL are those of `queue.rs`, shared
//! with the PostgreSQL backend.

mod statements;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::Connection;
use statements::{claim, complete, publish, release};
use tokio::sync::oneshot;

use crate::handoff::{HandedOff, Handoff};
use crate::{Completion, DisabledWebhook, Job, PublishRequest, Published, Result, StoreError};

/// Work items in one transaction at most.
const MAX_WORK: usize = 64;

type Reply<T> = oneshot::Sender<Result<T>>;

type HandoffTo = Option<Arc<dyn Handoff>>;

enum Work {
    Publish(Vec<PublishRequest>, HandoffTo, Reply<Published>),
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
        completions: Vec<Completion>,
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

/// A finished item, answered once the transaction committed.
enum Done {
    Publish(Result<(Published, HandedOff)>, HandoffTo, Reply<Published>),
    Claim(Result<Vec<Job>>, Reply<Vec<Job>>),
    Complete(Result<Vec<DisabledWebhook>>, Reply<Vec<DisabledWebhook>>),
    Release(Result<()>, Reply<()>),
}

impl Done {
    /// Answers; a failed commit turns every success into that failure.
    fn answer(self, commit: Option<&str>) {
        fn out<T>(r: Result<T>, commit: Option<&str>) -> Result<T> {
            match commit {
                Some(e) => r.and(Err(StoreError::Embedded(e.to_string()))),
                None => r,
            }
        }
        // A caller that went away does not need its answer.
        let _ = match self {
            Self::Publish(r, handoff, tx) => {
                let r = out(r, commit).map(|(published, handed)| {
                    // Committed: the handed-off deliveries go to the worker.
                    if let Some(h) = handoff.filter(|_| !handed.0.is_empty()) {
                        h.deliver(handed.0);
                    }
                    published
                });
                tx.send(r).map_err(drop)
            }
            Self::Claim(r, tx) => tx.send(out(r, commit)).map_err(drop),
            Self::Complete(r, tx) => tx.send(out(r, commit)).map_err(drop),
            Self::Release(r, tx) => tx.send(out(r, commit)).map_err(drop),
        };
    }
}

/// Handle to the writer thread; shared by every clone of the store.
pub(crate) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Work>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
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
    pub(crate) fn start(path: &Path, busy_timeout: std::time::Duration) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -32000)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        conn.set_prepared_statement_cache_capacity(128);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tidings-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::DataDir(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
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
    pub(crate) async fn publish(
        &self,
        batch: Vec<PublishRequest>,
        handoff: HandoffTo,
    ) -> Result<Published> {
        self.submit(|reply| Work::Publish(batch, handoff, reply))
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
        completions: &[Completion],
        cutoff: i64,
    ) -> Result<Vec<DisabledWebhook>> {
        let (owner, completions) = (owner.to_string(), completions.to_vec());
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
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Work>) {
    let mut durable_mode = true;
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
            let mode = if durable { "FULL" } else { "NORMAL" };
            // Before the switch counts as done, assume the stricter mode is not in force.
            durable_mode = false;
            if let Err(e) = conn.pragma_update(None, "synchronous", mode) {
                let e = e.to_string();
                for w in work {
                    fail(w, &e);
                }
                continue;
            }
            durable_mode = durable;
        }
        let (done, commit) = transaction(&mut conn, work);
        let commit = commit.err().map(|e| e.to_string());
        if let Some(e) = &commit {
            tracing::error!(error = %e, "embedded store commit failed");
        }
        for d in done {
            d.answer(commit.as_deref());
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

/// Runs every item in its own savepoint of one transaction, then commits.
fn transaction(conn: &mut Connection, work: Vec<Work>) -> (Vec<Done>, rusqlite::Result<()>) {
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for w in work {
                fail(w, &msg);
            }
            return (Vec::new(), Err(e));
        }
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
        let keep;
        let d = match w {
            Work::Publish(batch, handoff, reply) => {
                let r = publish(&sp, &batch, handoff.as_deref());
                keep = r.is_ok();
                Done::Publish(r, handoff, reply)
            }
            Work::Claim {
                owner,
                now,
                lease_until,
                limit,
                exclude,
                reply,
            } => {
                let r = claim(&sp, &owner, now, lease_until, limit, &exclude);
                keep = r.is_ok();
                Done::Claim(r, reply)
            }
            Work::Complete {
                owner,
                now,
                completions,
                cutoff,
                reply,
            } => {
                let r = complete(&sp, &owner, now, &completions, cutoff);
                keep = r.is_ok();
                Done::Complete(r, reply)
            }
            Work::Release {
                owner,
                ids,
                at,
                reply,
            } => {
                let r = release(&sp, &owner, &ids, at);
                keep = r.is_ok();
                Done::Release(r, reply)
            }
        };
        // A savepoint dropped without commit rolls back: the failed item leaves nothing behind.
        let kept = if keep { sp.commit() } else { sp.rollback() };
        done.push(match kept {
            Ok(()) => d,
            Err(e) => with_error(d, &e.to_string()),
        });
    }
    let commit = tx.commit();
    (done, commit)
}

fn with_error(d: Done, e: &str) -> Done {
    let err = || StoreError::Embedded(e.to_string());
    match d {
        Done::Publish(_, h, r) => Done::Publish(Err(err()), h, r),
        Done::Claim(_, r) => Done::Claim(Err(err()), r),
        Done::Complete(_, r) => Done::Complete(Err(err()), r),
        Done::Release(_, r) => Done::Release(Err(err()), r),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::request;
    use crate::{Backend, Store, StoreError};

    /// Work items sharing the writer's transaction fail alone: a publish that breaks a
    /// constraint gets its error, the others commit.
    #[tokio::test]
    async fn a_failing_item_does_not_take_the_others_down() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Backend::Sqlite {
            data_dir: dir.path().to_path_buf(),
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store.publish(vec![request("evt_taken")]).await.unwrap();
        let bad = vec![request("evt_new_but_bad"), request("evt_taken")];
        let good = vec![request("evt_fine")];
        let (bad, good) = tokio::join!(store.publish(bad), store.publish(good));
        assert!(matches!(bad, Err(StoreError::Embedded(_))), "{bad:?}");
        assert_eq!(good.unwrap()[0].id, "evt_fine");
        assert!(store.event_get("evt_fine").await.unwrap().is_some());
        assert!(
            store.event_get("evt_new_but_bad").await.unwrap().is_none(),
            "nothing of the failed item is visible"
        );
        store.close().await;
        assert!(matches!(
            store.publish(vec![request("evt_late")]).await,
            Err(StoreError::Closed)
        ));
    }
}

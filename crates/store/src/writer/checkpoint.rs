//! Background checkpoints: copying the WAL's pages back into the database file off the writer
//! thread.
//!
//! SQLite's automatic checkpoint runs in the connection that commits, after its commit: on the
//! writer thread, between two transactions everybody waits for. Here a thread with its own
//! connection runs a `PASSIVE` checkpoint every [`INTERVAL`] (it never blocks the writer or
//! readers, and copies each page once however often it was rewritten meanwhile). The writer
//! keeps an automatic checkpoint as a backstop at [`WRITER_BACKSTOP_FRAMES`]: the WAL only starts
//! over from its beginning after a checkpoint that caught up completely, which the background
//! one rarely does under a steady stream of commits. The backstop then finds almost every frame
//! already copied.
//!
//! The same thread merges new deliveries into the per-webhook index (`webhook_index::merge`),
//! in batches of [`webhook_index::MERGE_ROWS`](crate::webhook_index::MERGE_ROWS) or every
//! [`webhook_index::MERGE_EVERY`](crate::webhook_index::MERGE_EVERY).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::{Result, StoreError};

/// How often the background checkpoint runs.
pub(super) const INTERVAL: Duration = Duration::from_millis(20);

/// The writer's own automatic checkpoint, in WAL frames (pages, 4 KiB each): SQLite's default
/// is 1,000. Each one holds up the commit that triggers it (the pages the background thread
/// has not copied yet, and an `fsync` of the database file), so it should be rare: at 4,000
/// frames, deliveries to 1,000 webhooks (a random index leaf each, ~3 log pages per event)
/// reached it about ten times a second at 15,000 events/s, and those commits set their publish
/// p99 (docs/perf-log/rounds-2026-11-24-to-12-05.md, eleventh round). The log file keeps its largest size, ~64 MiB
/// here, and is reused from its start.
pub(super) const WRITER_BACKSTOP_FRAMES: i64 = 16_000;

/// The running checkpoint thread; dropping [`Checkpointer::stop`]'s sender ends it.
pub(super) struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Opens a connection to the database at `path` (WAL mode already set) and starts the thread.
    /// The per-webhook index (`index`, attached as `wix`) is merged into here, and checkpointed
    /// alike, but never flushed (see `webhook_index`).
    pub(super) fn start(path: &Path, index: &Path, busy_timeout: Duration) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        // The database file is flushed after each checkpoint, as with the writer's own.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(&crate::webhook_index::attach_merging_sql(index)?)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tidings-checkpoint".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(|e| StoreError::DataDir(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { stop, thread })
    }

    /// Ends the thread after the checkpoint it may be running.
    pub(super) fn stop(self) -> JoinHandle<()> {
        drop(self.stop);
        self.thread
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    let mut merging = Merging::default();
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        merging.tick(conn);
        // (busy, frames in the WAL, frames copied): nothing to act on; the writer's backstop
        // covers a checkpoint that could not run.
        let done = conn
            .query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .and_then(|()| conn.query_row("PRAGMA wix.wal_checkpoint(PASSIVE)", [], |_| Ok(())));
        match done {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "background checkpoint failed; the writer checkpoints instead");
            }
            Err(_) => {}
        }
    }
}

/// When the per-webhook index was last merged into, and whether the last attempt failed.
struct Merging {
    last: Instant,
    failing: bool,
}

impl Default for Merging {
    fn default() -> Self {
        Self {
            last: Instant::now(),
            failing: false,
        }
    }
}

impl Merging {
    /// Merges when the tail is long enough or old enough. Before the first migration there is
    /// no `deliveries` table yet: that failure is not worth a warning.
    fn tick(&mut self, conn: &Connection) {
        use crate::webhook_index::{MERGE_EVERY, MERGE_ROWS, lag, merge};
        let done = lag(conn).and_then(|(newest, upto)| {
            let due = newest - upto >= MERGE_ROWS
                || (newest > upto && self.last.elapsed() >= MERGE_EVERY);
            if due {
                let started = Instant::now();
                let entries = merge(conn)?;
                self.last = Instant::now();
                tracing::debug!(
                    entries,
                    ms = (self.last - started).as_millis() as u64,
                    "merged into the per-webhook delivery index"
                );
            }
            Ok(())
        });
        match done {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing && !e.to_string().contains("no such table") => {
                self.failing = true;
                tracing::warn!(error = %e, "merging the per-webhook delivery index failed; listings scan a longer tail until it succeeds");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::request;

    /// What a publish committed reaches the database file itself (read here with the WAL
    /// ignored) without waiting for the writer's backstop, which one publish never reaches.
    #[tokio::test]
    async fn committed_pages_are_copied_into_the_database_file_in_the_background() {
        let (dir, store) = crate::testing::embedded().await;
        store.publish(vec![request("evt_copied")]).await.unwrap();
        let uri = format!(
            "file:{}?immutable=1",
            dir.path().join("tidings.db").display()
        );
        let in_file = || {
            let flags =
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
            let conn = rusqlite::Connection::open_with_flags(&uri, flags).unwrap();
            conn.query_row(
                "SELECT count(*) FROM events WHERE id = 'evt_copied'",
                [],
                |r| r.get::<_, i64>(0),
            )
            // Before the first checkpoint the file has no schema yet.
            .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while in_file() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the event never reached the database file"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        store.close().await;
    }
}

//! The embedded store's per-webhook delivery index, kept in a file of its own
//! ([ADR 0010](../../../docs/adr/0010-per-webhook-index-beside-the-database.md)).
//!
//! `webhook_deliveries (hook_id, delivery_id)` lists every delivery by webhook, for the API's
//! per-webhook listing, replays and the cancellations of a webhook's pending deliveries. As an
//! index of `deliveries` it put one random leaf per delivery into every publish's `fsync`
//! (deliveries to many webhooks land in as many places), which doubled the publish p99 of
//! events spread over many webhooks. Here it lives in `webhook-index.db` beside the database,
//! attached as `wix` to every connection, written in the same transactions as the deliveries
//! but never flushed (`synchronous=OFF`): the publish's `fsync` covers the database alone.
//!
//! It is derived data. A clean shutdown flushes it and leaves `webhook-index.clean` beside it,
//! naming the newest delivery; any other start (a crash, a kill, a first start, an upgrade, a
//! database replaced meanwhile) finds no matching marker and rebuilds the file from
//! `deliveries` before anything else opens it. The marker is removed (durably) before
//! the index is written again, so a crash after that point is always seen.
//!
//! PostgreSQL has no such file: there `webhook_deliveries` is a view over `deliveries` and its
//! `(webhook_id, id)` index, so the same SQL serves both backends.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::{Result, StoreError};

/// The index file, in the data directory.
pub(crate) const FILE: &str = "webhook-index.db";
/// Present only while the index file is known to match the database (after a clean shutdown);
/// holds the newest delivery's rowid at that shutdown.
const CLEAN: &str = "webhook-index.clean";
/// The schema name the index is attached under.
pub(crate) const SCHEMA: &str = "wix";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS webhook_deliveries (\
     hook_id TEXT NOT NULL, delivery_id TEXT NOT NULL, PRIMARY KEY (hook_id, delivery_id)\
     ) WITHOUT ROWID";

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::DataDir(format!("cannot {what} {}: {e}", path.display()))
}

/// Flushes the directory entry changes of `dir` (a created or removed marker).
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("flush", dir, e))
}

/// Whether the database attached as `schema` has its tables yet (not before the first
/// migration).
fn has_deliveries(conn: &Connection, schema: &str) -> Result<bool> {
    Ok(conn.query_row(
        &format!(
            "SELECT count(*) > 0 FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'deliveries'"
        ),
        [],
        |r| r.get(0),
    )?)
}

/// The newest delivery's rowid in the database (0 without any): what the marker records, so a
/// database replaced while the server was stopped (a restored backup) is not paired with an
/// index of another.
fn newest_delivery(database: &Path) -> Result<i64> {
    if !database.exists() {
        return Ok(0);
    }
    let conn = Connection::open(database)?;
    if !has_deliveries(&conn, "main")? {
        return Ok(0);
    }
    Ok(
        conn.query_row("SELECT coalesce(max(rowid), 0) FROM deliveries", [], |r| {
            r.get(0)
        })?,
    )
}

/// Makes the index file ready before any connection attaches it: reused after a clean
/// shutdown of this same database, otherwise built afresh from its `deliveries` (if it has any
/// yet). Returns its path.
pub(crate) fn prepare(dir: &Path, database: &Path) -> Result<PathBuf> {
    let path = dir.join(FILE);
    let clean = dir.join(CLEAN);
    let reuse = path.exists()
        && std::fs::read_to_string(&clean)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .is_some_and(|marked| newest_delivery(database).is_ok_and(|n| n == marked));
    if clean.exists() {
        // From here on the file may change without being flushed: a crash must not find the
        // marker.
        std::fs::remove_file(&clean).map_err(|e| io("remove", &clean, e))?;
        sync_dir(dir)?;
    }
    if !reuse {
        for suffix in ["", "-wal", "-shm"] {
            let f = dir.join(format!("{FILE}{suffix}"));
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &f, e)),
            }
        }
    }
    let conn = Connection::open(&path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.execute_batch(CREATE)?;
    if !reuse && database.exists() {
        let source = database
            .to_str()
            .ok_or_else(|| StoreError::DataDir(format!("{} is not UTF-8", database.display())))?;
        conn.execute("ATTACH DATABASE ?1 AS db", [source])?;
        if has_deliveries(&conn, "db")? {
            let started = std::time::Instant::now();
            let n = conn.execute(
                "INSERT INTO webhook_deliveries (hook_id, delivery_id) \
                 SELECT webhook_id, id FROM db.deliveries ORDER BY 1, 2",
                [],
            )?;
            tracing::info!(
                deliveries = n,
                ms = started.elapsed().as_millis() as u64,
                "rebuilt the per-webhook delivery index (no clean shutdown before this start)"
            );
        }
        conn.execute("DETACH DATABASE db", [])?;
    }
    Ok(path)
}

/// `ATTACH` for a connection that only reads the index.
pub(crate) fn attach_sql(path: &Path) -> Result<String> {
    let path = path
        .to_str()
        .ok_or_else(|| StoreError::DataDir(format!("{} is not UTF-8", path.display())))?;
    Ok(format!(
        "ATTACH DATABASE '{}' AS {SCHEMA}",
        path.replace('\'', "''")
    ))
}

/// `ATTACH` for a connection that writes the index: never flushed (see the module docs).
pub(crate) fn attach_writing_sql(path: &Path) -> Result<String> {
    Ok(format!(
        "{}; PRAGMA {SCHEMA}.synchronous = OFF",
        attach_sql(path)?
    ))
}

/// After every connection closed: copies the index's log into its file, flushes it and leaves
/// the marker that lets the next start reuse it. On any failure there is no marker, and the next
/// start rebuilds.
pub(crate) fn finish(dir: &Path, database: &Path) {
    let done = (|| -> Result<()> {
        let newest = newest_delivery(database)?;
        let path = dir.join(FILE);
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(StoreError::Embedded(
                "the index file is still in use".into(),
            ));
        }
        drop(conn);
        let clean = dir.join(CLEAN);
        std::fs::File::create(&clean)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "{newest}")?;
                f.sync_all()
            })
            .map_err(|e| io("create", &clean, e))?;
        sync_dir(dir)
    })();
    if let Err(e) = done {
        tracing::warn!(error = %e, "the per-webhook delivery index will be rebuilt at the next start");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::testing::{migrated, request, store_with_webhooks, webhook};

    fn index_rows(dir: &Path) -> i64 {
        let conn = Connection::open(dir.join(FILE)).unwrap();
        conn.query_row("SELECT count(*) FROM webhook_deliveries", [], |r| r.get(0))
            .unwrap()
    }

    /// Marks the deliveries matching `filter` succeeded long ago (due for retention), through a
    /// connection of the test's own that waits for the writer thread like any other.
    fn succeeded_long_ago(dir: &Path, filter: &str) {
        let conn = Connection::open(dir.join("tidings.db")).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn.execute(
            &format!("UPDATE deliveries SET state = 'succeeded', updated_at = 1 WHERE {filter}"),
            [],
        )
        .unwrap();
    }

    async fn listed(store: &Store, webhook: &str) -> Vec<String> {
        let page = store.delivery_list(webhook, None, None, 100).await.unwrap();
        page.items.into_iter().map(|d| d.event_id).collect()
    }

    /// A clean shutdown leaves the marker and the next start reuses the file (a stray entry
    /// written into it survives); a start without the marker (after a crash) throws the file
    /// away and builds it again from the deliveries.
    #[tokio::test]
    async fn the_index_is_reused_after_a_clean_shutdown_and_rebuilt_after_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 2).await;
        for i in 0..3 {
            store
                .publish(vec![request(&format!("evt_{i}"))])
                .await
                .unwrap();
        }
        let hook = webhook(1).id;
        assert_eq!(listed(&store, &hook).await, ["evt_2", "evt_1", "evt_0"]);
        store.close().await;
        drop(store);
        assert!(
            dir.path().join(CLEAN).exists(),
            "a clean shutdown leaves the marker"
        );
        Connection::open(dir.path().join(FILE))
            .unwrap()
            .execute(
                "INSERT INTO webhook_deliveries VALUES ('stray', 'msg_stray')",
                [],
            )
            .unwrap();

        let store = migrated(dir.path()).await;
        assert!(
            !dir.path().join(CLEAN).exists(),
            "the marker is gone while the index may change"
        );
        assert_eq!(
            index_rows(dir.path()),
            7,
            "reused: 2 webhooks × 3 events + the stray one"
        );
        store.close().await;
        drop(store);

        // As after a crash: no marker, and an index that lost entries.
        std::fs::remove_file(dir.path().join(CLEAN)).unwrap();
        Connection::open(dir.path().join(FILE))
            .unwrap()
            .execute(
                "DELETE FROM webhook_deliveries WHERE hook_id <> 'stray'",
                [],
            )
            .unwrap();
        let store = migrated(dir.path()).await;
        assert_eq!(
            index_rows(dir.path()),
            6,
            "rebuilt from the deliveries alone"
        );
        assert_eq!(listed(&store, &hook).await, ["evt_2", "evt_1", "evt_0"]);
        assert_eq!(listed(&store, &webhook(0).id).await.len(), 3);
        store.close().await;
        drop(store);
    }

    /// A database replaced while the server was stopped (here: one delivery more than the index
    /// was closed with) does not reuse the index of the other.
    #[tokio::test]
    async fn a_replaced_database_does_not_reuse_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 1).await;
        store.publish(vec![request("evt_0")]).await.unwrap();
        store.close().await;
        drop(store);
        let conn = Connection::open(dir.path().join("tidings.db")).unwrap();
        conn.execute(
            "INSERT INTO deliveries SELECT 'msg_restored', 'evt_restored', webhook_id, workspace_id, state, \
             attempts, next_attempt_at, lease_owner, last_status, last_outcome, created_at, updated_at \
             FROM deliveries",
            [],
        )
        .unwrap();
        drop(conn);
        let store = migrated(dir.path()).await;
        assert_eq!(
            index_rows(dir.path()),
            2,
            "rebuilt with the restored delivery"
        );
        store.close().await;
    }

    /// Retention passes succeed while the writer thread commits all the time: its batches take
    /// the write lock before they read (a deferred transaction that read before one of the
    /// writer's commits could not write after it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_succeeds_while_the_writer_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 2).await;
        // 200 old events (400 deliveries, pruned in 40 batches of 10), then new ones all along.
        for b in 0..4 {
            let batch = (0..50).map(|i| request(&format!("evt_old_{b}_{i}")));
            store.publish(batch.collect()).await.unwrap();
        }
        succeeded_long_ago(dir.path(), "true");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let publisher = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .publish(vec![request(&format!("evt_{n}"))])
                        .await
                        .unwrap();
                    n += 1;
                }
            })
        };
        let report = store.prune(2, 0, 10).await.unwrap();
        assert_eq!(report.deliveries, 400);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        publisher.await.unwrap();
        store.close().await;
    }

    /// Retention removes a pruned delivery's index entry in the same transaction.
    #[tokio::test]
    async fn retention_prunes_the_index_with_the_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_webhooks(dir.path(), 2).await;
        store.publish(vec![request("evt_old")]).await.unwrap();
        store.publish(vec![request("evt_kept")]).await.unwrap();
        succeeded_long_ago(dir.path(), "event_id = 'evt_old'");
        let report = store.prune(2, 0, 100).await.unwrap();
        assert_eq!(report.deliveries, 2);
        assert_eq!(
            index_rows(dir.path()),
            2,
            "only evt_kept's two entries are left"
        );
        assert_eq!(listed(&store, &webhook(0).id).await, ["evt_kept"]);
        store.close().await;
    }
}

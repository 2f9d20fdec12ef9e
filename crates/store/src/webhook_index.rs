//! The embedded store's per-webhook delivery index, kept in a file of its own
//! ([ADR 0010](../../../docs/adr/0010-per-webhook-index-beside-the-database.md)) and merged in
//! the background ([ADR 0012](../../../docs/adr/0012-per-webhook-index-merged-in-the-background.md)).
//!
//! `webhook_deliveries (hook_id, delivery_id)` lists every delivery by webhook, for the API's
//! per-webhook listing, replays and the cancellations of a webhook's pending deliveries. As an
//! index of `deliveries` it put one random leaf per delivery into every publish's `fsync`
//! (deliveries to many webhooks land in as many places). Here it lives in `webhook-index.db`
//! beside the database, attached as `wix`, never flushed (`synchronous=OFF`), and the publishes
//! do not write it at all: the checkpoint thread [`merge`]s the deliveries past the watermark
//! `wix.merged.upto` (a rowid of `deliveries`) into it in sorted batches, so that a leaf takes
//! several entries at once, and moves the watermark in the same transaction. Every connection
//! that reads it sees `webhook_deliveries` as a temporary view: the merged entries plus the
//! deliveries past the watermark (the tail), so nothing is missing between two merges.
//!
//! SQLite gives a new row the highest rowid plus one, so once the newest deliveries are deleted
//! their rowids are given out again: whatever deletes deliveries lowers the watermark to the
//! highest rowid left, in the same transaction ([`LOWER_WATERMARK`]; retention, in
//! `queries.rs`). A merge takes the index's write lock before it reads `deliveries`, so it never
//! works from a snapshot older than such a deletion. Every query joins the entries to
//! `deliveries`, so an entry without its delivery would be dropped, not listed.
//!
//! It is derived data. A clean shutdown merges the tail, flushes the file and leaves
//! `webhook-index.clean` beside it, naming the newest delivery; any other start (a crash, a
//! kill, a first start, an upgrade, a database replaced meanwhile) finds no matching marker (or a
//! file of another [`FORMAT`]) and rebuilds the file from `deliveries` before anything else opens
//! it. The marker is removed (durably) before the index is written again, so a crash after that
//! point is always seen.
//!
//! PostgreSQL has no such file: there `webhook_deliveries` is a view over `deliveries` and its
//! `(webhook_id, id)` index, so the same SQL serves both backends (but the listing, which has a
//! variant here that keeps its `ORDER BY … LIMIT` on the index).

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

/// The file's layout, in its `user_version`: a file of another (an older release's, which the
/// writer kept complete and had no watermark) is rebuilt.
const FORMAT: i64 = 2;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS webhook_deliveries (\
     hook_id TEXT NOT NULL, delivery_id TEXT NOT NULL, PRIMARY KEY (hook_id, delivery_id)\
     ) WITHOUT ROWID; \
     CREATE TABLE IF NOT EXISTS merged (upto INTEGER NOT NULL)";

/// What every connection that reads the index queries as `webhook_deliveries`: the merged
/// entries, and the deliveries past the watermark. A query by `hook_id` reaches both arms (SQLite
/// pushes it down): the index's range, and a scan of the tail by rowid. A migration that drops
/// or renames `deliveries.webhook_id` or `deliveries.id` must account for it (it exists on
/// sqlx's write connection, which runs the migrations).
const VIEW: &str = "CREATE TEMP VIEW IF NOT EXISTS webhook_deliveries (hook_id, delivery_id) AS \
     SELECT hook_id, delivery_id FROM wix.webhook_deliveries \
     UNION ALL SELECT webhook_id, id FROM main.deliveries WHERE rowid > (SELECT upto FROM wix.merged)";

/// For the transaction that deletes deliveries, after it did: new deliveries will reuse the
/// rowids above the highest one left, so the watermark must not be above it.
pub(crate) const LOWER_WATERMARK: &str = "UPDATE wix.merged \
     SET upto = (SELECT coalesce(max(rowid), 0) FROM main.deliveries) \
     WHERE upto > (SELECT coalesce(max(rowid), 0) FROM main.deliveries)";

/// Merge at least this many deliveries at once, the more entries per leaf the better: with
/// deliveries spread over 10,000 webhooks, a batch of 64 Ki puts ~6 into each leaf it writes.
/// The tail it leaves is what a listing scans besides the index (~10 ms for 64 Ki rows on the
/// bench VM, 0.3 ms for 5,000).
pub(crate) const MERGE_ROWS: i64 = 65_536;
/// …and merge whatever there is at least this often, so that a quiet store's tail stays short.
pub(crate) const MERGE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
    let newest = newest_delivery(database)?;
    let reuse = path.exists()
        && std::fs::read_to_string(&clean)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .is_some_and(|marked| marked == newest)
        && Connection::open(&path)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|v| v == FORMAT);
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
    // The owner's only, like the database (SQLite gives the log files the same permissions).
    crate::private_file(&path)?;
    let conn = Connection::open(&path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    if reuse {
        return Ok(path);
    }
    conn.execute_batch(CREATE)?;
    if database.exists() {
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
    // Everything up to the newest delivery is in; later ones are the tail.
    conn.execute("INSERT INTO merged (upto) VALUES (?1)", [newest])?;
    conn.pragma_update(None, "user_version", FORMAT)?;
    Ok(path)
}

fn attach_only(path: &Path) -> Result<String> {
    let path = path
        .to_str()
        .ok_or_else(|| StoreError::DataDir(format!("{} is not UTF-8", path.display())))?;
    Ok(format!(
        "ATTACH DATABASE '{}' AS {SCHEMA}",
        path.replace('\'', "''")
    ))
}

/// For a connection that only reads the index: `ATTACH`, and the view `webhook_deliveries`.
pub(crate) fn attach_sql(path: &Path) -> Result<String> {
    Ok(format!("{}; {VIEW}", attach_only(path)?))
}

/// For a connection that also writes the index (never flushed, see the module docs): `ATTACH`,
/// the view `webhook_deliveries`, and `wix.webhook_deliveries` for the entries themselves.
pub(crate) fn attach_writing_sql(path: &Path) -> Result<String> {
    Ok(format!(
        "{}; PRAGMA {SCHEMA}.synchronous = OFF",
        attach_sql(path)?
    ))
}

/// For the connection that [`merge`]s: `ATTACH` (never flushed), and a page cache for the index
/// that holds a batch's leaves (with 10,000 busy webhooks a batch writes ~7,000). Its size
/// trades memory for CPU: with 10,000 webhooks, 32 MB measured a peak RSS of 136–141 MB over
/// 30 s and CPU per event ×1.01–1.11 of one webhook's over twelve runs; 16 MB 116 MB and
/// ×0.99–1.18 over four (docs/benchmarks.md, item 56). It fills only as far as batches reach:
/// with few webhooks it stays small.
pub(crate) fn attach_merging_sql(path: &Path) -> Result<String> {
    Ok(format!(
        "{}; PRAGMA {SCHEMA}.synchronous = OFF; PRAGMA {SCHEMA}.cache_size = -32000",
        attach_only(path)?
    ))
}

/// The newest delivery's rowid, and the watermark: how far the index lags behind.
pub(crate) fn lag(conn: &Connection) -> Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT (SELECT coalesce(max(rowid), 0) FROM main.deliveries), (SELECT upto FROM wix.merged)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Adds the deliveries past the watermark to the index, sorted, and moves the watermark to the
/// newest, in one transaction of the index file alone (`conn` attaches it as `wix`). The index's
/// write lock comes first (waiting for a retention batch if need be), so the snapshot of
/// `deliveries` it then reads is no older than any deletion, and every delivery up to the
/// newest it sees has committed. Returns how many entries it added.
pub(crate) fn merge(conn: &Connection) -> Result<usize> {
    let tx = conn.unchecked_transaction()?;
    tx.execute("UPDATE wix.merged SET upto = upto", [])?;
    let newest: i64 = tx.query_row(
        "SELECT coalesce(max(rowid), 0) FROM main.deliveries",
        [],
        |r| r.get(0),
    )?;
    let n = tx.execute(
        "INSERT OR IGNORE INTO wix.webhook_deliveries (hook_id, delivery_id) \
         SELECT webhook_id, id FROM main.deliveries \
         WHERE rowid > (SELECT upto FROM wix.merged) AND rowid <= ?1 ORDER BY 1, 2",
        [newest],
    )?;
    tx.execute("UPDATE wix.merged SET upto = ?1 WHERE upto < ?1", [newest])?;
    tx.commit()?;
    Ok(n)
}

/// After every connection closed: merges the tail, copies the index's log into its file,
/// flushes it and leaves the marker that lets the next start reuse it. On any failure there is no
/// marker, and the next start rebuilds.
pub(crate) fn finish(dir: &Path, database: &Path) {
    let done = (|| -> Result<()> {
        let newest = newest_delivery(database)?;
        let path = dir.join(FILE);
        // The tail goes in too: the index is complete at rest.
        let conn = Connection::open(database)?;
        conn.execute_batch(&attach_merging_sql(&path)?)?;
        if has_deliveries(&conn, "main")? {
            merge(&conn)?;
        }
        drop(conn);
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
        // The owner's only, like every file of the data directory.
        crate::private_file(&clean)?;
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&clean)
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
mod tests;

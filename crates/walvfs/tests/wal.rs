//! The shim against SQLite itself: whatever a connection through it commits, readers on the
//! default VFS see at once, and a copy of the files taken right after the commit (what a crash
//! of the process would leave) recovers to exactly the committed state. Transactions are
//! random: multi-page rows, pages written again in one transaction, cache spills, rollbacks,
//! log restarts, both synchronous modes.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

type Model = BTreeMap<i64, Vec<u8>>;

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn writer(path: &Path) -> Connection {
    let vfs = tidings_walvfs::register().unwrap();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(path, flags, vfs).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    // The log only grows or restarts when this test says so.
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        .unwrap();
    conn
}

fn contents(conn: &Connection) -> Model {
    let mut stmt = conn.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn check_integrity(conn: &Connection) {
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// What a crash of the process right now would leave: the database and its log as the
/// operating system holds them, opened (and recovered) elsewhere with the default VFS.
fn recovered_copy(path: &Path, into: &Path) -> Model {
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).unwrap();
    let copy = into.join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    let wal = path.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, into.join("copy.db-wal")).unwrap();
    }
    let conn = Connection::open(&copy).unwrap();
    check_integrity(&conn);
    contents(&conn)
}

/// One random transaction on `conn`, mirrored on `model` when it commits.
fn transaction(conn: &mut Connection, model: &mut Model, rng: &mut Rng, step: usize) {
    let mut next = model.clone();
    let tx = conn.transaction().unwrap();
    let most = if rng.below(10) == 0 { 400 } else { 12 };
    let ops = 1 + rng.below(most);
    for _ in 0..ops {
        let k = rng.below(300) as i64;
        match rng.below(4) {
            0 => {
                tx.execute("DELETE FROM t WHERE k = ?1", [k]).unwrap();
                next.remove(&k);
            }
            _ => {
                // From a few bytes to several pages: overflow chains, pages written again.
                let len = match rng.below(3) {
                    0 => 1 + rng.below(64),
                    1 => 100 + rng.below(2_000),
                    _ => 4_000 + rng.below(20_000),
                } as usize;
                let v: Vec<u8> = (0..len)
                    .map(|i| (i as u64 ^ step as u64 ^ k as u64) as u8)
                    .collect();
                tx.execute(
                    "INSERT INTO t (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                    params![k, v],
                )
                .unwrap();
                next.insert(k, v);
            }
        }
    }
    if rng.below(8) == 0 {
        tx.rollback().unwrap();
    } else {
        tx.commit().unwrap();
        *model = next;
    }
}

fn run(seed: u64, cache_pages: i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = writer(&path);
    // A small page cache makes large transactions spill frames to the log before they commit.
    conn.pragma_update(None, "cache_size", cache_pages).unwrap();
    let reader = Connection::open(&path).unwrap();
    let mut model = Model::new();
    let mut rng = Rng(seed);
    for step in 0..300 {
        let mode = if rng.below(2) == 0 { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", mode).unwrap();
        transaction(&mut conn, &mut model, &mut rng, step);
        if rng.below(40) == 0 {
            // Another connection checkpoints and resets the log; the writer starts it over.
            let _: (i64, i64, i64) = reader
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
        }
        // A reader on the default VFS sees the commit at once, bytes and all.
        assert_eq!(contents(&reader), model, "reader after step {step}");
        if step % 25 == 24 {
            let copy = recovered_copy(&path, &dir.path().join("crash"));
            assert_eq!(copy, model, "recovered copy after step {step}");
        }
    }
    check_integrity(&conn);
    drop(reader);
    drop(conn);
    // Closed cleanly (the last connection checkpoints): the database alone holds it all.
    let reopened = Connection::open(&path).unwrap();
    check_integrity(&reopened);
    assert_eq!(contents(&reopened), model);
}

#[test]
fn commits_are_visible_and_recoverable_with_a_roomy_cache() {
    run(0x5eed_0001, 2_000);
}

#[test]
fn commits_are_visible_and_recoverable_when_transactions_spill() {
    run(0x5eed_0002, 10);
}

#[test]
fn a_transaction_over_the_flush_bound_commits_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = writer(&path);
    let rows = 3 * tidings_walvfs::FLUSH_BYTES / 4_000;
    let tx = conn.transaction().unwrap();
    for k in 0..rows as i64 {
        tx.execute("INSERT INTO t (k, v) VALUES (?1, zeroblob(4000))", [k])
            .unwrap();
    }
    tx.commit().unwrap();
    let copy = recovered_copy(&path, &dir.path().join("crash"));
    assert_eq!(copy.len(), rows);
}

//! The point of the shim: a transaction's frames reach the file in one write. (A test binary
//! of its own: the counts are per process.)

use rusqlite::{Connection, OpenFlags};

#[test]
fn a_commit_of_many_frames_is_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let vfs = tidings_walvfs::register().unwrap();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    let mut conn = Connection::open_with_flags_and_vfs(&path, flags, vfs).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        .unwrap();

    let (received, forwarded) = tidings_walvfs::write_counts();
    for round in 0..20 {
        let tx = conn.transaction().unwrap();
        for k in 0..10 {
            tx.execute(
                "INSERT INTO t (k, v) VALUES (?1, zeroblob(3000))",
                [round * 10 + k],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let (received, forwarded) = (
        tidings_walvfs::write_counts().0 - received,
        tidings_walvfs::write_counts().1 - forwarded,
    );
    // Ten rows of 3,000 bytes: at least eight pages per commit, two writes each from SQLite.
    assert!(received >= 20 * 16, "SQLite wrote {received} times");
    // One write per commit, and a lone first header now and then.
    assert!(
        forwarded <= 20 * 2,
        "{forwarded} writes reached the file for {received}"
    );

    let n: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200);
}

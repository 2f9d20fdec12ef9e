//! `tidings_walvfs::pcache` under the b-tree splits that swap sibling pages through the
//! temporary page number: the database stays intact and holds exactly what was written, in
//! the cache and read back from disk. Its own test binary, so the cache is installed before
//! SQLite's first use in the process (as the store does).

use std::collections::BTreeMap;

use rusqlite::Connection;

/// Keys in no particular order (xorshift), so inserts land in random leaves and split them.
fn keys(n: usize) -> impl Iterator<Item = String> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        format!("hook_{:05}/msg_{x:016x}", x % 10_000)
    })
}

fn contents(conn: &Connection) -> BTreeMap<String, i64> {
    let mut st = conn.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn pages_swapped_through_the_temporary_number_keep_the_database_intact() {
    assert!(
        tidings_walvfs::pcache::install(),
        "installed before SQLite's first use in this process"
    );
    assert!(tidings_walvfs::pcache::install(), "and stays installed");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = Connection::open(&path).unwrap();
    // A small cache: pages are evicted and read back while the inserts go on.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA cache_size = -256;
         CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;",
    )
    .unwrap();
    let mut expected = BTreeMap::new();
    let all: Vec<String> = keys(20_000).collect();
    for (chunk, batch) in all.chunks(50).enumerate() {
        let tx = conn.transaction().unwrap();
        for k in batch {
            tx.execute(
                "INSERT OR REPLACE INTO t (k, v) VALUES (?1, ?2)",
                (k, chunk as i64),
            )
            .unwrap();
            expected.insert(k.clone(), chunk as i64);
        }
        tx.commit().unwrap();
    }
    // Deletes merge and free pages too.
    for k in all.iter().step_by(3) {
        conn.execute("DELETE FROM t WHERE k = ?1", [k]).unwrap();
        expected.remove(k);
    }
    assert!(
        tidings_walvfs::pcache::renamed() > 0,
        "the workload swapped pages through the temporary number"
    );
    conn.execute_batch("PRAGMA shrink_memory").unwrap();
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(contents(&conn), expected);
    drop(conn);

    // Read back from the file by a new connection (a cold cache).
    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(contents(&conn), expected);
}

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

/// Merges the tail now, as the checkpoint thread does, through a connection of the test's
/// own; returns how many entries it added.
fn merge_now(dir: &Path) -> usize {
    let conn = Connection::open(dir.join("tidings.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute_batch(&attach_merging_sql(&dir.join(FILE)).unwrap())
        .unwrap();
    merge(&conn).unwrap()
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CLEAN))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the marker is its owner's only");
    }
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

/// A file of an older layout (the release before the watermark) is rebuilt, even after a
/// clean shutdown.
#[tokio::test]
async fn an_index_of_an_older_layout_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 1).await;
    store.publish(vec![request("evt_0")]).await.unwrap();
    store.close().await;
    drop(store);
    let conn = Connection::open(dir.path().join(FILE)).unwrap();
    conn.execute(
        "INSERT INTO webhook_deliveries VALUES ('stray', 'msg_stray')",
        [],
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let store = migrated(dir.path()).await;
    assert_eq!(
        index_rows(dir.path()),
        1,
        "rebuilt: the stray entry is gone"
    );
    assert_eq!(listed(&store, &webhook(0).id).await, ["evt_0"]);
    store.close().await;
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
    assert_eq!(merge_now(dir.path()), 4);
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

/// A webhook's deliveries are listed, paged, replayed and cancelled alike whether they are
/// merged into the index or still in the tail, and none twice.
#[tokio::test]
async fn merged_entries_and_the_tail_serve_every_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 2).await;
    let publish = |range: std::ops::Range<usize>| {
        let store = store.clone();
        async move {
            for i in range {
                store
                    .publish(vec![request(&format!("evt_{i}"))])
                    .await
                    .unwrap();
            }
        }
    };
    publish(0..5).await;
    assert_eq!(merge_now(dir.path()), 10);
    assert_eq!(merge_now(dir.path()), 0, "nothing past the watermark");
    publish(5..10).await;
    assert_eq!(index_rows(dir.path()), 10, "the tail is not merged yet");

    let hook = webhook(1).id;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .delivery_list(&hook, Some("pending"), cursor.as_deref(), 3)
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|d| d.event_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<String> = (0..10).rev().map(|i| format!("evt_{i}")).collect();
    assert_eq!(seen, newest_first, "pages of 3 across the watermark");
    assert!(
        store
            .delivery_list(&hook, Some("failed"), None, 3)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Failed ones on both sides of the watermark are replayed.
    Connection::open(dir.path().join("tidings.db"))
        .unwrap()
        .execute(
            "UPDATE deliveries SET state = 'failed' WHERE event_id IN ('evt_1', 'evt_8') AND webhook_id = ?1",
            [&hook],
        )
        .unwrap();
    assert_eq!(store.replay(&hook, 0, i64::MAX, 5).await.unwrap(), 2);

    // Deleting the webhook cancels its pending deliveries, merged or not, and no other's.
    store.webhook_delete("acme", &hook, 6).await.unwrap();
    let cancelled = store
        .delivery_list(&hook, Some("cancelled"), None, 100)
        .await
        .unwrap();
    assert_eq!(cancelled.items.len(), 10);
    assert_eq!(
        store
            .delivery_list(&webhook(0).id, Some("pending"), None, 100)
            .await
            .unwrap()
            .items
            .len(),
        10
    );
    store.close().await;
    assert_eq!(
        index_rows(dir.path()),
        20,
        "a clean shutdown merges the tail"
    );
}

/// Retention of the newest deliveries lowers the watermark: the next deliveries reuse their
/// rowids, and are listed.
#[tokio::test]
async fn retention_of_the_newest_deliveries_lowers_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 1).await;
    store.publish(vec![request("evt_kept")]).await.unwrap();
    for i in 0..3 {
        store
            .publish(vec![request(&format!("evt_old_{i}"))])
            .await
            .unwrap();
    }
    assert_eq!(merge_now(dir.path()), 4);
    succeeded_long_ago(dir.path(), "event_id <> 'evt_kept'");
    let report = store.prune(2, 0, 100).await.unwrap();
    assert_eq!(report.deliveries, 3);
    store.publish(vec![request("evt_new")]).await.unwrap();
    assert_eq!(
        listed(&store, &webhook(0).id).await,
        ["evt_new", "evt_kept"]
    );
    assert_eq!(merge_now(dir.path()), 1);
    assert_eq!(
        listed(&store, &webhook(0).id).await,
        ["evt_new", "evt_kept"]
    );
    store.close().await;
}

/// The checkpoint thread merges a quiet store's tail within [`MERGE_EVERY`].
#[tokio::test]
async fn the_tail_is_merged_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 1).await;
    store.publish(vec![request("evt_0")]).await.unwrap();
    let deadline = std::time::Instant::now() + MERGE_EVERY * 3;
    while index_rows(dir.path()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never merged into the index"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    store.close().await;
}

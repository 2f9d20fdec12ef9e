use super::Connection;
use crate::StoreError;
use crate::testing::{completion_recorded_twice_stores_one_attempt, request, store_with_webhooks};

/// While publishes keep the writer thread busy, writes through the sqlx connection
/// (retention here) still get the lock: the writer gives way between its transactions
/// (`gate`). Without it they waited out the busy timeout and failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writes_get_their_turn_while_publishes_keep_the_writer_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 1).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut publishers = Vec::new();
    for p in 0..64 {
        let (store, stop) = (store.clone(), stop.clone());
        publishers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store
                    .publish(vec![request(&format!("evt_{p}_{n}"))])
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    // Let the publishers fill the writer's queue first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Twenty small retention passes. Each needs the write lock once; giving way, the writer
    // lets each in within one of its transactions (~0.4 s for all in a debug build). Without
    // it they took 7 s here, and in a release build under `bench --scenarios soak` a third
    // of the passes waited out the 10 s busy timeout and failed.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let pruned = tokio::time::timeout(
            std::time::Duration::from_secs(8),
            store.prune(i64::MAX, 0, 1000),
        )
        .await;
        assert!(
            matches!(pruned, Ok(Ok(_))),
            "a retention pass under load: {pruned:?}"
        );
        // A transaction that reads before it writes: a deferred one failed at once
        // (`SQLITE_BUSY_SNAPSHOT`) whenever the writer committed in between.
        let deleted = store.workspace_delete("ws_unknown", 0).await;
        assert!(
            matches!(deleted, Err(StoreError::NotFound)),
            "a workspace delete under load: {deleted:?}"
        );
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "twenty passes took {took:?}: the writer thread did not give way"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut published = 0;
    for p in publishers {
        published += p.await.unwrap();
    }
    assert!(
        published > 100,
        "the publishers kept the writer busy ({published})"
    );
    store.close().await;
}

/// A publish that breaks a constraint gets its error and leaves nothing behind; one that
/// arrives beside it commits.
#[tokio::test]
async fn a_failing_item_does_not_take_the_others_down() {
    let (_dir, store) = crate::testing::embedded().await;
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

/// An event's deliveries are found through the range of ids it keeps (migration 0009):
/// each event of a batch lists exactly its own, one without deliveries none, pruning keeps
/// an old event while a delivery of it is left, and the migration gives the events written
/// before it their range.
#[tokio::test]
async fn an_events_deliveries_are_found_through_the_range_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 3).await;
    let mut quiet = request("evt_quiet");
    quiet.deliver = false;
    let batch = vec![request("evt_a"), quiet, request("evt_b"), request("evt_c")];
    store.publish(batch).await.unwrap();
    let listed = async |id: &str| {
        let found = store.deliveries_of_event(id).await.unwrap();
        assert!(found.iter().all(|d| d.event_id == id), "{found:?}");
        found.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    let mut all = Vec::new();
    for id in ["evt_a", "evt_b", "evt_c"] {
        let ids = listed(id).await;
        assert_eq!(ids.len(), 3, "{id}: {ids:?}");
        assert!(ids.is_sorted(), "{ids:?}");
        all.extend(ids);
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 9, "no delivery listed under two events");
    assert!(listed("evt_quiet").await.is_empty());
    assert!(listed("evt_unknown").await.is_empty());

    let pruned = store.prune(0, i64::MAX, 100).await.unwrap();
    assert_eq!(pruned.events, 1, "only the event without deliveries goes");
    assert!(store.event_get("evt_quiet").await.unwrap().is_none());
    assert!(store.event_get("evt_b").await.unwrap().is_some());

    // Back to the schema before 0009, then the migration again.
    let conn = Connection::open(dir.path().join("tidings.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute_batch(
        "ALTER TABLE events DROP COLUMN first_delivery; \
         ALTER TABLE events DROP COLUMN last_delivery; \
         CREATE INDEX deliveries_event ON deliveries (event_id);",
    )
    .unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0009_event_delivery_range.sql"
    ))
    .unwrap();
    drop(conn);
    let mut again = Vec::new();
    for id in ["evt_a", "evt_b", "evt_c"] {
        again.extend(listed(id).await);
    }
    again.sort();
    assert_eq!(again, all, "the migration finds every delivery again");
    store.close().await;
}

/// A completion recorded twice (its first commit's answer was lost) stores its attempt once;
/// migration 0007's rebuild of `attempts` keeps every row (run here a second time over
/// attempts it must carry across).
#[tokio::test]
async fn an_attempt_recorded_twice_is_stored_once_and_kept_by_the_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_webhooks(dir.path(), 2).await;
    let jobs = completion_recorded_twice_stores_one_attempt(&store).await;
    let conn = Connection::open(dir.path().join("tidings.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0007_attempts_without_id_index.sql"
    ))
    .unwrap();
    drop(conn);
    for j in &jobs {
        let attempts = store.attempts_of(&j.delivery_id).await.unwrap();
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].id, format!("atm_{}_500", j.delivery_id));
        assert_eq!(attempts[0].status, Some(500));
    }
    store.close().await;
}

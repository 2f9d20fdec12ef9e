// The SQL of the delivery log and its upkeep: listing deliveries, attempts and events, a
// retry or a replay asked through the API, and retention. Compiled once per backend like
// `queries.rs`, into the same `SqlStore`; the queue's hot path (publish, claim, complete) is
// in `queue_rules.rs`, `writer/` and `queue_sqlx.rs`.

const DELIVERY_COLS: &str = "id, event_id, webhook_id, workspace_id, state, attempts, next_attempt_at, last_status, last_outcome, created_at, updated_at";

fn delivery_from_row(row: &DbRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        webhook_id: row.try_get("webhook_id")?,
        workspace_id: row.try_get("workspace_id")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_outcome: row.try_get("last_outcome")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn attempt_from_row(row: &DbRow) -> Result<AttemptRecord> {
    Ok(AttemptRecord {
        id: row.try_get("id")?,
        delivery_id: row.try_get("delivery_id")?,
        attempt_no: row.try_get("attempt_no")?,
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get("duration_ms")?,
        outcome: row.try_get("outcome")?,
        status: row.try_get("status")?,
        request_headers: row.try_get("request_headers")?,
        response_headers: row.try_get("response_headers")?,
        response_body: row.try_get("response_body")?,
        error: row.try_get("error")?,
    })
}

/// `head`, one bound parameter per id separated by commas, then `tail`.
fn in_ids(head: &str, ids: &[String], tail: &str) -> sqlx::QueryBuilder<Db> {
    let mut qb = sqlx::QueryBuilder::<Db>::new(head);
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(id.as_str());
    }
    qb.push(tail);
    qb
}

impl SqlStore {
    pub(crate) async fn delivery_list(&self, webhook_id: &str, state: Option<&str>, cursor: Option<&str>, limit: i64) -> Result<Page<DeliveryRecord>> {
        // Newest first: message ids are time-ordered. On PostgreSQL through the (webhook_id, id)
        // index. The embedded store's per-webhook index is merged in the background
        // (`webhook_index`): its newest page is the merged entries' plus the tail's (deliveries
        // past the watermark), each arm limited on its own so that the index's range is read
        // newest first and no further than the page.
        let matching = |from: &str, id: &str, rest: &str| {
            format!("{from} WHERE {rest} AND ($2 = '' OR d.state = $2) AND ($3 = '' OR {id} < $3)")
        };
        let ids = if WEBHOOK_INDEX_TABLE {
            format!(
                "SELECT delivery_id FROM ({} ORDER BY w.delivery_id DESC LIMIT $4) \
                 UNION ALL SELECT id FROM ({})",
                matching(
                    "SELECT w.delivery_id FROM wix.webhook_deliveries w JOIN deliveries d ON d.id = w.delivery_id",
                    "w.delivery_id",
                    "w.hook_id = $1"
                ),
                matching(
                    "SELECT d.id FROM deliveries d",
                    "d.id",
                    "d.rowid > (SELECT upto FROM wix.merged) AND d.webhook_id = $1"
                ),
            )
        } else {
            format!("{} ORDER BY d.id DESC LIMIT $4", matching("SELECT d.id FROM deliveries d", "d.id", "d.webhook_id = $1"))
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE id IN ({ids}) ORDER BY id DESC LIMIT $4"
        )))
        .bind(webhook_id)
        .bind(state.unwrap_or(""))
        .bind(cursor.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(delivery_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |d| d.id.clone()))
    }

    pub(crate) async fn delivery_get(&self, id: &str) -> Result<Option<DeliveryRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    pub(crate) async fn attempts_of(&self, delivery_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY attempt_no, started_at")
            .bind(delivery_id)
            .fetch_all(&self.write)
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    pub(crate) async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE {EVENT_DELIVERIES} ORDER BY id")))
            .bind(event_id)
            .fetch_all(&self.write)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub(crate) async fn event_get(&self, id: &str) -> Result<Option<EventRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {EVENT_COLS}, e.deliveries AS e_deliveries, e.suppressed AS e_suppressed FROM events e WHERE e.id = $1")))
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref()
            .map(|r| {
                Ok(EventRecord { event: event_from_row(r)?, deliveries: r.try_get("e_deliveries")?, suppressed: r.try_get("e_suppressed")? })
            })
            .transpose()
    }

    pub(crate) async fn delivery_retry(&self, id: &str, now: i64) -> Result<DeliveryRecord> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = $2, lease_owner = NULL, updated_at = $2 \
             WHERE id = $1 RETURNING {DELIVERY_COLS}"
        )))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    pub(crate) async fn replay(&self, webhook_id: &str, since: i64, until: i64, now: i64) -> Result<u64> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = $4, lease_owner = NULL, updated_at = $4 \
             WHERE {} AND state = 'failed' AND created_at >= $2 AND created_at < $3",
            deliveries_of("$1")
        )))
        .bind(webhook_id)
        .bind(since)
        .bind(until)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn prune(&self, succeeded_before: i64, events_before: i64, batch: i64) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        // Small transactions: the writer is never held for long. One pass per partial index.
        for (filter, before) in [
            ("state = 'succeeded'", succeeded_before),
            ("state IN ('failed', 'cancelled')", events_before),
        ] {
            loop {
                let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
                let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT id FROM deliveries WHERE {filter} AND updated_at < $1 LIMIT $2"
                )))
                .bind(before)
                .bind(batch)
                .fetch_all(&mut *tx)
                .await?;
                if ids.is_empty() {
                    tx.commit().await?;
                    break;
                }
                if WEBHOOK_INDEX_TABLE {
                    // Found through the deliveries about to go, so before them.
                    in_ids(
                        "DELETE FROM wix.webhook_deliveries WHERE (hook_id, delivery_id) IN \
                         (SELECT webhook_id, id FROM deliveries WHERE id IN (",
                        &ids,
                        "))",
                    )
                    .build()
                    .execute(&mut *tx)
                    .await?;
                }
                for table in ["attempts", "deliveries"] {
                    let column = if table == "attempts" { "delivery_id" } else { "id" };
                    let n = in_ids(&format!("DELETE FROM {table} WHERE {column} IN ("), &ids, ")")
                        .build()
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if table == "attempts" { report.attempts += n } else { report.deliveries += n }
                }
                if WEBHOOK_INDEX_TABLE {
                    // The newest deliveries' rowids are given out again (`webhook_index`).
                    sqlx::query(crate::webhook_index::LOWER_WATERMARK).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        loop {
            // In a write transaction of its own, like the passes above: a statement that read
            // before the writer thread's next commit could not write after it (SQLITE_BUSY).
            let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
            let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE {OF_EVENT}) LIMIT $2)"
            )))
            .bind(events_before)
            .bind(batch)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            report.events += r.rows_affected();
            if r.rows_affected() == 0 {
                break;
            }
        }
        Ok(report)
    }

    pub(crate) async fn release_all_leases(&self, now: i64) -> Result<u64> {
        let r = sqlx::query("UPDATE deliveries SET lease_owner = NULL, next_attempt_at = $1 WHERE state = 'pending' AND lease_owner IS NOT NULL")
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn pending_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
            .fetch_one(&self.read)
            .await?)
    }
}

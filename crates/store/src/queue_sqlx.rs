// The delivery queue's hot path on PostgreSQL (the embedded store runs the same logic on its
// writer thread, `writer/`). Included by the backend module after `queries.rs`; the logic is
// in `queue_rules.rs`. The statements pass lists as arrays (`= ANY($n)`, `UNNEST`), so each has one
// fixed text: parsed and planned once per connection, whatever the batch size.

use std::sync::Arc;

use tidings_core::fasthash::HashMap;

use crate::handoff::{Handoff, Leases};
use crate::queue_rules::{self, Claimed, Earlier, MatchRow};

const EARLIER: &str = "SELECT idempotency_key, id, deliveries, suppressed, created_at FROM events WHERE idempotency_key = ANY($1)";
/// The matching webhooks with all their columns and the event type's `statusPath`: a publish
/// that hands deliveries off builds their jobs from these rows without reading them again.
static MATCH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT w.apply_to_all_descendants, w.branches, w.business_units, {}, et.status_path FROM webhook_triggers t \
         JOIN webhooks w ON w.id = t.webhook_id LEFT JOIN event_types et ON et.name = t.event_type \
         WHERE t.event_type = $1 AND w.status = 'enabled' AND t.workspace_id = ANY($2) ORDER BY w.id",
        *queue_rules::WEBHOOK_COLS_OF_W
    )
});
const FREE_KEYS: &str = "UPDATE events SET idempotency_key = NULL WHERE id = ANY($1)";
/// The new events (`$1`–`$14`) and their deliveries (`$15`–`$21`) in one statement: one round
/// trip fewer per publish. The two inserts touch different tables, so sharing a snapshot changes
/// nothing.
const INSERT_EVENTS_AND_DELIVERIES: &str = "WITH new_events AS (INSERT INTO events (id, type, workspace_id, data, branch_id, business_unit_id, subject_id, sender, origin_client_id, idempotency_key, occurred_at, created_at, deliveries, suppressed) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[])) \
     INSERT INTO deliveries (id, event_id, webhook_id, workspace_id, state, attempts, next_attempt_at, created_at, updated_at, lease_owner) \
     SELECT id, ev, wh, ws, 'pending', 0, due, t, t, owner FROM UNNEST($15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::bigint[], $21::text[]) AS u(id, ev, wh, ws, t, due, owner)";
const CLAIM: &str = "UPDATE deliveries SET lease_owner = $1, next_attempt_at = $2 WHERE id IN (SELECT id FROM deliveries \
     WHERE state = 'pending' AND next_attempt_at <= $3 AND NOT (webhook_id = ANY($5)) ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, attempts, event_id, webhook_id";
/// The attempts (`$9`–`$19`) and the deliveries' next states (`$1` now, `$2` owner, `$3`–`$8`)
/// in one statement. The update is guarded by the lease: a node whose lease expired and was
/// taken over must not overwrite the new owner's progress. The state guard is written
/// `(d.state = 'pending') IS TRUE` (the same rows, `state` is never null) so that the partial
/// `deliveries_due` index, whose predicate is `state = 'pending'`, cannot serve it: with
/// statistics taken before a backlog built up, the planner read every pending delivery
/// through that index for each batch (136 ms instead of 7 ms for 300 completions with 50,000
/// pending), and the recorder fell further behind the longer the backlog grew
/// (docs/perf-log/rounds-2026-11-24-to-12-05.md, ninth round). Looked up by primary key, a batch costs what it holds.
const RECORD_ATTEMPTS: &str = "WITH new_attempts AS (INSERT INTO attempts (id, delivery_id, attempt_no, started_at, duration_ms, outcome, status, request_headers, response_headers, response_body, error) \
     SELECT * FROM UNNEST($9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[], $15::bigint[], $16::text[], $17::text[], $18::text[], $19::text[]) \
     ON CONFLICT (delivery_id, attempt_no, id) DO NOTHING) \
     UPDATE deliveries d SET state = v.state, attempts = v.attempts, next_attempt_at = v.next_at, lease_owner = NULL, \
     last_status = COALESCE(v.status, d.last_status), last_outcome = COALESCE(v.outcome, d.last_outcome), updated_at = $1 \
     FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[]) AS v(id, state, attempts, next_at, status, outcome) \
     WHERE d.id = v.id AND d.lease_owner = $2 AND (d.state = 'pending') IS TRUE";
/// Gives leased deliveries back. Its state guard is written like `RECORD_ATTEMPTS`'s, for the
/// same reason: the ids are looked up by primary key, never through `deliveries_due`.
const RELEASE: &str = "UPDATE deliveries SET lease_owner = NULL, next_attempt_at = $2 WHERE id = ANY($3) AND lease_owner = $1 AND (state = 'pending') IS TRUE";

impl SqlStore {
    /// One transaction for the whole batch, a fixed number of statements: the idempotency keys
    /// are looked up at once, matching runs once per distinct (type, workspace chain), events and
    /// deliveries are inserted from arrays.
    pub(crate) async fn publish(&self, batch: Vec<PublishRequest>, handoff: Option<std::sync::Arc<dyn Handoff>>) -> Result<Published> {
        let batch = batch.as_slice();
        // What the worker can take, asked before the transaction: nothing in it calls out.
        let offer = handoff.as_ref().and_then(|h| h.offer());
        let mut tx = self.write.begin().await?;
        let keys = queue_rules::idempotency_keys(batch);
        let mut earlier: HashMap<String, Earlier> = HashMap::default();
        if !keys.is_empty() {
            for row in sqlx::query(EARLIER).bind(&keys).fetch_all(&mut *tx).await? {
                earlier.insert(
                    row.try_get("idempotency_key")?,
                    Earlier { id: row.try_get("id")?, deliveries: row.try_get("deliveries")?, suppressed: row.try_get("suppressed")?, created_at: row.try_get("created_at")? },
                );
            }
        }
        let mut matches: queue_rules::Matches<'_> = HashMap::default();
        let mut webhooks: HashMap<String, Arc<Webhook>> = HashMap::default();
        let mut status_paths: HashMap<String, Option<String>> = HashMap::default();
        for key in queue_rules::match_keys(batch) {
            let rows = sqlx::query(sqlx::AssertSqlSafe(MATCH.as_str())).bind(key.0).bind(key.1).fetch_all(&mut *tx).await?;
            let mut matched = Vec::with_capacity(rows.len());
            for row in &rows {
                matched.push(MatchRow::from(row)?);
                let w = queue_rules::webhook_from(row, &self.keys.get())?;
                webhooks.insert(w.id.clone(), Arc::new(w));
                status_paths.insert(key.0.to_string(), row.try_get("status_path")?);
            }
            matches.insert(key, matched.into());
        }
        let plan = queue_rules::plan_publish(batch, &earlier, &matches)?;
        let res = Leases::new(offer, plan.deliveries.iter().map(|d| d.2));
        if !plan.stale_keys.is_empty() {
            sqlx::query(FREE_KEYS).bind(&plan.stale_keys).execute(&mut *tx).await?;
        }
        if !plan.events.is_empty() {
            let values: Vec<queue_rules::EventValues<'_>> = plan.events.iter().map(|(e, t, s, _)| queue_rules::event_values(e, *t, *s)).collect();
            let text = |f: fn(&Event) -> &str| values.iter().map(|v| f(v.e)).collect::<Vec<_>>();
            let opt = |f: fn(&Event) -> Option<&str>| values.iter().map(|v| f(v.e)).collect::<Vec<_>>();
            let int = |f: fn(&queue_rules::EventValues<'_>) -> i64| values.iter().map(f).collect::<Vec<_>>();
            // Deliveries only come from new events: with none, both lists are empty.
            let d = &plan.deliveries;
            let leases: Vec<(Option<&str>, i64)> = d.iter().enumerate().map(|(i, (_, e, _))| res.lease(i, e.created_at)).collect();
            sqlx::query(INSERT_EVENTS_AND_DELIVERIES)
                .bind(text(|e| &e.id))
                .bind(text(|e| &e.kind))
                .bind(text(|e| &e.workspace_id))
                .bind(text(|e| &e.data))
                .bind(opt(|e| e.branch_id.as_deref()))
                .bind(opt(|e| e.business_unit_id.as_deref()))
                .bind(opt(|e| e.subject_id.as_deref()))
                .bind(values.iter().map(|v| v.sender.as_deref()).collect::<Vec<_>>())
                .bind(opt(|e| e.origin_client_id.as_deref()))
                .bind(opt(|e| e.idempotency_key.as_deref()))
                .bind(int(|v| v.e.occurred_at))
                .bind(int(|v| v.e.created_at))
                .bind(int(|v| v.targets))
                .bind(int(|v| v.suppressed))
                .bind(d.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>())
                .bind(d.iter().map(|(_, e, _)| e.id.as_str()).collect::<Vec<_>>())
                .bind(d.iter().map(|(_, _, w)| *w).collect::<Vec<_>>())
                .bind(d.iter().map(|(_, e, _)| e.workspace_id.as_str()).collect::<Vec<_>>())
                .bind(d.iter().map(|(_, e, _)| e.created_at).collect::<Vec<_>>())
                .bind(leases.iter().map(|l| l.1).collect::<Vec<_>>())
                .bind(leases.iter().map(|l| l.0).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        let published = Published { queued: res.queued(), outcomes: plan.out };
        if !res.any() {
            tx.commit().await?;
            return Ok(published);
        }
        // The handed-off deliveries become jobs in the same transaction, from the events in
        // hand: reading them back by id would cost a query the planner may turn into a scan
        // while the fresh table's statistics lag behind.
        // Their webhooks and statusPaths came with the matches.
        let (claimed, events, now) = res.claimed(&plan.deliveries);
        let jobs = self.jobs_in(&mut tx, &claimed, &events, webhooks, &status_paths, now).await?;
        tx.commit().await?;
        if let Some(h) = handoff.filter(|_| !jobs.is_empty()) {
            h.deliver(jobs);
        }
        Ok(published)
    }

    /// Runs `work` in a transaction that commits without waiting for the WAL flush (queue
    /// bookkeeping: a lost claim or attempt record only repeats a delivery); publishes keep
    /// `synchronous_commit = on`.
    async fn relaxed<T>(&self, work: impl for<'t> AsyncFnOnce(&'t mut sqlx::Transaction<'_, Db>) -> Result<T>) -> Result<T> {
        // One round trip: both statements go in one simple query.
        let mut tx = self.write.begin_with("BEGIN; SET LOCAL synchronous_commit = off").await?;
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    pub(crate) async fn claim(&self, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>> {
        self.relaxed(async |tx| self.claim_in(tx, owner, now, lease_until, limit, exclude).await).await
    }

    pub(crate) async fn complete(&self, owner: &str, now: i64, completions: Arc<[Completion]>, disable_failing_since: i64) -> Result<Vec<DisabledWebhook>> {
        self.relaxed(async |tx| self.complete_in(tx, owner, now, &completions, disable_failing_since).await).await
    }

    pub(crate) async fn release(&self, owner: &str, ids: &[String], at: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(RELEASE).bind(owner).bind(at).bind(ids).execute(&self.write).await?;
        Ok(())
    }

    async fn claim_in(&self, tx: &mut sqlx::Transaction<'_, Db>, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>> {
        let claimed: Vec<Claimed> = sqlx::query_as(CLAIM).bind(owner).bind(lease_until).bind(now).bind(limit).bind(exclude).fetch_all(&mut **tx).await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Events, webhooks and their context are read by primary key in separate queries: one
        // join let the planner walk every delivery of a busy webhook (its index is selective
        // only by webhook) instead of the few claimed ones.
        let mut ids: Vec<&str> = claimed.iter().map(|c| c.2.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut events: HashMap<String, Arc<Event>> = HashMap::default();
        // The event type's statusPath comes along (no separate query).
        let mut status_paths: HashMap<String, Option<String>> = HashMap::default();
        let sql = format!("SELECT {}, t.status_path AS e_status_path FROM events e LEFT JOIN event_types t ON t.name = e.type WHERE e.id = ANY($1)", queue_rules::EVENT_COLS);
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&ids).fetch_all(&mut **tx).await? {
            let e = queue_rules::event_from(&row)?;
            status_paths.insert(e.kind.clone(), row.try_get("e_status_path")?);
            events.insert(e.id.clone(), Arc::new(e));
        }
        self.jobs_in(tx, &claimed, &events, HashMap::default(), &status_paths, now).await
    }

    /// The jobs of leased deliveries, with their events and some of their `webhooks` in hand:
    /// the other webhooks and the context are read by primary key. A delivery whose webhook (or
    /// event) is gone is cancelled (`now` is its time).
    async fn jobs_in(&self, tx: &mut sqlx::Transaction<'_, Db>, claimed: &[Claimed], events: &HashMap<String, Arc<Event>>, mut webhooks: HashMap<String, Arc<Webhook>>, status_paths: &HashMap<String, Option<String>>, now: i64) -> Result<Vec<Job>> {
        let mut ids: Vec<&str> = claimed.iter().map(|c| c.3.as_str()).filter(|id| !webhooks.contains_key(*id)).collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let sql = format!("SELECT {} FROM webhooks WHERE id = ANY($1)", queue_rules::WEBHOOK_COLS);
            for row in sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&ids).fetch_all(&mut **tx).await? {
                let w = queue_rules::webhook_from(&row, &self.keys.get())?;
                webhooks.insert(w.id.clone(), Arc::new(w));
            }
        }
        let wanted: Vec<&str> = queue_rules::wanted_fields(claimed, events, &webhooks).into_iter().collect();
        let mut fields: HashMap<String, String> = HashMap::default();
        if !wanted.is_empty() {
            for row in sqlx::query("SELECT id, fields FROM workspaces WHERE id = ANY($1)").bind(&wanted).fetch_all(&mut **tx).await? {
                fields.insert(row.try_get("id")?, row.try_get("fields")?);
            }
        }
        let (jobs, gone) = queue_rules::assemble_jobs(claimed, events, &webhooks, status_paths, &fields);
        // The webhook was deleted after the delivery was queued: nothing to send.
        for id in gone {
            sqlx::query(queue_rules::CANCEL_CLAIMED).bind(id).bind(now).execute(&mut **tx).await?;
        }
        Ok(jobs)
    }

    async fn complete_in(&self, tx: &mut sqlx::Transaction<'_, Db>, owner: &str, now: i64, completions: &[Completion], disable_failing_since: i64) -> Result<Vec<DisabledWebhook>> {
        // One statement whatever the batch size: the attempts and the deliveries' next states,
        // from arrays (a completion without an attempt has no attempt row).
        let attempts: Vec<&AttemptRecord> = completions.iter().filter_map(|c| c.attempt.as_ref()).collect();
        let text = |f: fn(&AttemptRecord) -> &str| attempts.iter().map(|a| f(a)).collect::<Vec<_>>();
        let int = |f: fn(&AttemptRecord) -> i64| attempts.iter().map(|a| f(a)).collect::<Vec<_>>();
        let rows: Vec<_> = completions.iter().map(|c| (c, queue_rules::next_row(c, now))).collect();
        sqlx::query(RECORD_ATTEMPTS)
            .bind(now)
            .bind(owner)
            .bind(rows.iter().map(|(c, _)| c.delivery_id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|(c, _)| c.attempts).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.1).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.2).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.3).collect::<Vec<_>>())
            .bind(text(|a| &a.id))
            .bind(text(|a| &a.delivery_id))
            .bind(int(|a| a.attempt_no))
            .bind(int(|a| a.started_at))
            .bind(int(|a| a.duration_ms))
            .bind(text(|a| &a.outcome))
            .bind(attempts.iter().map(|a| a.status).collect::<Vec<_>>())
            .bind(text(|a| &a.request_headers))
            .bind(text(|a| &a.response_headers))
            .bind(text(|a| &a.response_body))
            .bind(attempts.iter().map(|a| a.error.as_deref()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        let health = queue_rules::health(completions);
        for (webhook_id, ok) in &health {
            let sql = if *ok { queue_rules::HEALTH_OK } else { queue_rules::HEALTH_FAILING };
            sqlx::query(sql).bind(*webhook_id).bind(now).execute(&mut **tx).await?;
        }
        let mut disabled = Vec::new();
        for (webhook_id, sql, reason) in queue_rules::to_disable(completions, &health) {
            let row = sqlx::query(sql).bind(webhook_id).bind(disable_failing_since).bind(&reason).bind(now).fetch_optional(&mut **tx).await?;
            if let Some(row) = row {
                let spec: WebhookSpec = parse_json("webhook spec", &row.try_get::<String, _>("spec")?)?;
                disabled.push(DisabledWebhook { id: row.try_get("id")?, workspace_id: row.try_get("workspace_id")?, url: spec.url, reason });
            }
        }
        Ok(disabled)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{
        completion_recorded_twice_stores_one_attempt, drop_schema, postgres_with_webhooks,
        request,
    };

    /// Migration 0007 moved the attempts' uniqueness into `attempts_delivery`; the completion
    /// statement's `ON CONFLICT` must name exactly that key, and a repeat must insert nothing.
    #[tokio::test]
    #[cfg_attr(
        not(tidings_pg),
        ignore = "PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    )]
    async fn a_completion_recorded_twice_stores_one_attempt() {
        let (schema, store) = postgres_with_webhooks(2).await;
        completion_recorded_twice_stores_one_attempt(&store).await;
        store.close().await;
        drop_schema(&schema).await;
    }

    /// A completion batch and a release find their deliveries by primary key even when the
    /// statistics predate the backlog: analysed while nothing was pending, then everything
    /// pending (what a queue that built up between two autovacuum runs looks like), neither
    /// plan may walk the pending deliveries through `deliveries_due`.
    #[tokio::test]
    #[cfg_attr(
        not(tidings_pg),
        ignore = "PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    )]
    async fn completions_do_not_walk_the_pending_deliveries() {
        let (schema, store) = postgres_with_webhooks(1).await;
        for chunk in 0..10 {
            let batch = (0..500).map(|i| request(&format!("evt_{chunk}_{i}"))).collect();
            store.publish(batch).await.unwrap();
        }
        let crate::Store::Postgres(pg) = &store else {
            unreachable!("a PostgreSQL store")
        };
        let pool = &pg.write;
        for sql in [
            "UPDATE deliveries SET state = 'succeeded'",
            "ANALYZE deliveries",
            "UPDATE deliveries SET state = 'pending', lease_owner = 'other'",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM deliveries ORDER BY id LIMIT 20")
            .fetch_all(pool)
            .await
            .unwrap();
        let n = ids.len();
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {}", super::RECORD_ATTEMPTS)))
            .bind(2_i64)
            .bind("node-test")
            .bind(&ids)
            .bind(vec!["succeeded".to_string(); n])
            .bind(vec![1_i64; n])
            .bind(vec![2_i64; n])
            .bind(vec![Some(204_i64); n])
            .bind(vec![Some("ok".to_string()); n])
            .bind(Vec::<String>::new())
            .bind(Vec::<String>::new())
            .bind(Vec::<i64>::new())
            .bind(Vec::<i64>::new())
            .bind(Vec::<i64>::new())
            .bind(Vec::<String>::new())
            .bind(Vec::<Option<i64>>::new())
            .bind(Vec::<String>::new())
            .bind(Vec::<String>::new())
            .bind(Vec::<String>::new())
            .bind(Vec::<Option<String>>::new())
            .fetch_all(pool)
            .await
            .unwrap();
        let plan = plan.join("\n");
        let release: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {}", super::RELEASE)))
            .bind("node-test")
            .bind(2_i64)
            .bind(&ids)
            .fetch_all(pool)
            .await
            .unwrap();
        let release = release.join("\n");
        store.close().await;
        drop_schema(&schema).await;
        assert!(!plan.contains("deliveries_due"), "{plan}");
        assert!(plan.contains("deliveries_pkey"), "{plan}");
        assert!(!release.contains("deliveries_due"), "{release}");
        assert!(release.contains("deliveries_pkey"), "{release}");
    }
}

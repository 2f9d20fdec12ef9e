// The delivery queue's hot path through sqlx (PostgreSQL; the embedded store runs the same
// logic and SQL on its writer thread, `writer.rs`). Included by the backend module after
// `queries.rs`; the logic and SQL text are in `queue.rs`.

use crate::queue::{self, Claimed, Earlier, MatchRow};

/// Binds a publish's event row.
fn bind_event<'q>(q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>, v: &'q queue::EventValues<'q>) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    let e = v.e;
    q.bind(e.id.as_str())
        .bind(e.kind.as_str())
        .bind(e.workspace_id.as_str())
        .bind(e.data.as_str())
        .bind(e.branch_id.as_deref())
        .bind(e.business_unit_id.as_deref())
        .bind(e.subject_id.as_deref())
        .bind(v.sender.as_deref())
        .bind(e.origin_client_id.as_deref())
        .bind(e.idempotency_key.as_deref())
        .bind(e.occurred_at)
        .bind(e.created_at)
        .bind(v.targets)
        .bind(v.suppressed)
}

impl SqlStore {
    /// One transaction for the whole batch, with few statements: the idempotency keys are looked
    /// up at once, matching runs once per distinct (type, workspace chain), and events and
    /// deliveries are inserted as multi-row statements.
    pub(crate) async fn publish(&self, batch: &[PublishRequest]) -> Result<Vec<PublishOutcome>> {
        use std::collections::HashMap;
        let mut tx = self.write.begin().await?;
        let keys = queue::idempotency_keys(batch);
        let mut earlier: HashMap<String, Earlier> = HashMap::new();
        if !keys.is_empty() {
            let sql = format!(
                "SELECT idempotency_key, id, deliveries, suppressed, created_at FROM events WHERE idempotency_key IN ({})",
                queue::in_list(0, keys.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in &keys {
                q = q.bind(*k);
            }
            for row in q.fetch_all(&mut *tx).await? {
                earlier.insert(
                    row.try_get("idempotency_key")?,
                    Earlier { id: row.try_get("id")?, deliveries: row.try_get("deliveries")?, suppressed: row.try_get("suppressed")?, created_at: row.try_get("created_at")? },
                );
            }
        }
        let mut matches: queue::Matches<'_> = HashMap::new();
        for key in queue::match_keys(batch) {
            matches.insert(key, match_webhooks(&mut tx, key.0, key.1).await?);
        }
        let plan = queue::plan_publish(batch, &earlier, &matches)?;
        if !plan.stale_keys.is_empty() {
            let sql = format!("UPDATE events SET idempotency_key = NULL WHERE id IN ({})", queue::in_list(0, plan.stale_keys.len()));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &plan.stale_keys {
                q = q.bind(id.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in plan.events.chunks(500) {
            let values: Vec<queue::EventValues<'_>> = chunk.iter().map(|(e, t, s)| queue::event_values(e, *t, *s)).collect();
            let sql = format!("{}VALUES {}", queue::EVENT_INSERT, queue::placeholders(0, values.len(), 14));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for v in &values {
                q = bind_event(q, v);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in plan.deliveries.chunks(2000) {
            let sql = format!("{}VALUES {}", queue::DELIVERY_INSERT, queue::placeholders(0, chunk.len(), 9));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, e, webhook_id) in chunk {
                q = q
                    .bind(id.as_str())
                    .bind(e.id.as_str())
                    .bind(*webhook_id)
                    .bind(e.workspace_id.as_str())
                    .bind("pending")
                    .bind(0i64)
                    .bind(e.created_at)
                    .bind(e.created_at)
                    .bind(e.created_at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(plan.out)
    }

    /// Runs `work` in a transaction that commits without waiting for the WAL flush (queue
    /// bookkeeping: a lost claim or attempt record only repeats a delivery); publishes keep
    /// `synchronous_commit = on`.
    async fn relaxed<T>(&self, work: impl for<'t> AsyncFnOnce(&'t mut sqlx::Transaction<'_, Db>) -> Result<T>) -> Result<T> {
        let mut tx = self.write.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    pub(crate) async fn claim(&self, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>> {
        self.relaxed(async |tx| self.claim_in(tx, owner, now, lease_until, limit, exclude).await).await
    }

    pub(crate) async fn complete(&self, owner: &str, now: i64, completions: &[Completion], disable_failing_since: i64) -> Result<Vec<DisabledWebhook>> {
        self.relaxed(async |tx| self.complete_in(tx, owner, now, completions, disable_failing_since).await).await
    }

    pub(crate) async fn release(&self, owner: &str, ids: &[String], at: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!("{}{})", queue::RELEASE, queue::in_list(2, ids.len()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(at);
        for id in ids {
            q = q.bind(id.as_str());
        }
        q.execute(&self.write).await?;
        Ok(())
    }

    async fn claim_in(&self, tx: &mut sqlx::Transaction<'_, Db>, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>> {
        use std::collections::HashMap;
        let sql = queue::claim_sql(exclude.len(), SKIP_LOCKED);
        let mut q = sqlx::query_as::<_, Claimed>(sqlx::AssertSqlSafe(sql)).bind(owner).bind(lease_until).bind(now).bind(limit);
        for w in exclude {
            q = q.bind(w.as_str());
        }
        let claimed: Vec<Claimed> = q.fetch_all(&mut **tx).await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Events, webhooks and their context are read by primary key in separate queries: one
        // join let the planner walk every delivery of a busy webhook (its index is selective
        // only by webhook) instead of the few claimed ones.
        let event_ids: std::collections::HashSet<&str> = claimed.iter().map(|c| c.2.as_str()).collect();
        let webhook_ids: std::collections::HashSet<&str> = claimed.iter().map(|c| c.3.as_str()).collect();
        let mut events: HashMap<String, Event> = HashMap::new();
        for row in by_ids(tx, &format!("SELECT {} FROM events e WHERE e.id IN (", queue::EVENT_COLS), &event_ids).await? {
            let e = queue::event_from(&row)?;
            events.insert(e.id.clone(), e);
        }
        let mut webhooks: HashMap<String, Webhook> = HashMap::new();
        for row in by_ids(tx, &format!("SELECT {} FROM webhooks WHERE id IN (", queue::WEBHOOK_COLS), &webhook_ids).await? {
            let w = queue::webhook_from(&row)?;
            webhooks.insert(w.id.clone(), w);
        }
        let status_paths: HashMap<String, Option<String>> =
            sqlx::query_as::<_, (String, Option<String>)>(queue::STATUS_PATHS).fetch_all(&mut **tx).await?.into_iter().collect();
        let wanted = queue::wanted_fields(&claimed, &events, &webhooks);
        let mut fields: HashMap<String, String> = HashMap::new();
        if !wanted.is_empty() {
            for row in by_ids(tx, "SELECT id, fields FROM workspaces WHERE id IN (", &wanted).await? {
                fields.insert(row.try_get("id")?, row.try_get("fields")?);
            }
        }
        let (jobs, gone) = queue::assemble_jobs(&claimed, &events, &webhooks, &status_paths, &fields);
        // The webhook was deleted after the delivery was queued: nothing to send.
        for id in gone {
            sqlx::query(queue::CANCEL_CLAIMED).bind(id).bind(now).execute(&mut **tx).await?;
        }
        Ok(jobs)
    }

    async fn complete_in(&self, tx: &mut sqlx::Transaction<'_, Db>, owner: &str, now: i64, completions: &[Completion], disable_failing_since: i64) -> Result<Vec<DisabledWebhook>> {
        // Two statements per chunk, whatever its size: the attempts as one multi-row insert, the
        // deliveries' next states as one UPDATE joined with a VALUES list.
        for chunk in completions.chunks(500) {
            let attempts: Vec<&AttemptRecord> = chunk.iter().filter_map(|c| c.attempt.as_ref()).collect();
            if !attempts.is_empty() {
                let sql = format!("{}VALUES {} ON CONFLICT (id) DO NOTHING", queue::ATTEMPT_INSERT, queue::placeholders(0, attempts.len(), 11));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for a in &attempts {
                    q = q
                        .bind(a.id.as_str())
                        .bind(a.delivery_id.as_str())
                        .bind(a.attempt_no)
                        .bind(a.started_at)
                        .bind(a.duration_ms)
                        .bind(a.outcome.as_str())
                        .bind(a.status)
                        .bind(a.request_headers.as_str())
                        .bind(a.response_headers.as_str())
                        .bind(a.response_body.as_str())
                        .bind(a.error.as_deref());
                }
                q.execute(&mut **tx).await?;
            }
            let sql = format!("{}VALUES {}{}", queue::DELIVERY_UPDATE, queue::placeholders(2, chunk.len(), 6), queue::DELIVERY_UPDATE_END);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(owner);
            for c in chunk {
                let (state, next_at, status, outcome) = queue::next_row(c, now);
                q = q.bind(c.delivery_id.as_str()).bind(state).bind(c.attempts).bind(next_at).bind(status).bind(outcome);
            }
            q.execute(&mut **tx).await?;
        }
        let health = queue::health(completions);
        for (webhook_id, ok) in &health {
            let sql = if *ok { queue::HEALTH_OK } else { queue::HEALTH_FAILING };
            sqlx::query(sql).bind(*webhook_id).bind(now).execute(&mut **tx).await?;
        }
        let mut disabled = Vec::new();
        for (webhook_id, sql, reason) in queue::to_disable(completions, &health) {
            let row = sqlx::query(sql).bind(webhook_id).bind(disable_failing_since).bind(&reason).bind(now).fetch_optional(&mut **tx).await?;
            if let Some(row) = row {
                let spec: WebhookSpec = parse_json("webhook spec", &row.try_get::<String, _>("spec")?)?;
                disabled.push(DisabledWebhook { id: row.try_get("id")?, workspace_id: row.try_get("workspace_id")?, url: spec.url, reason });
            }
        }
        Ok(disabled)
    }
}

/// Runs `prefix` + a placeholder list + `)` with the ids bound.
async fn by_ids(tx: &mut sqlx::Transaction<'_, Db>, prefix: &str, ids: &std::collections::HashSet<&str>) -> Result<Vec<DbRow>> {
    let sql = format!("{prefix}{})", queue::in_list(0, ids.len()));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&mut **tx).await?)
}

async fn match_webhooks(tx: &mut sqlx::Transaction<'_, Db>, kind: &str, chain: &[String]) -> Result<Vec<MatchRow>> {
    let sql = queue::match_sql(chain.len());
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind);
    for ws in chain {
        q = q.bind(ws.as_str());
    }
    q.fetch_all(&mut **tx).await?.iter().map(MatchRow::from).collect()
}

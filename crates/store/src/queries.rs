// The SQL of the store, compiled once per backend (see `lib.rs`): `Db` is the sqlx database
// type and `SKIP_LOCKED` the dialect's row-locking clause. Placeholders are `$N`, which both
// SQLite and PostgreSQL accept.

use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

const WORKSPACE_COLS: &str = "id, name, kind, parent_id, plan, integration_enabled, branches, business_units, fields, created_at";
const CLIENT_COLS: &str = "client_id, workspace_id, name, secret_hash, generation, created_at, regenerated_at";
const WEBHOOK_COLS: &str = "id, workspace_id, owner_client_id, status, spec, updated, created_at, disabled_reason, previous_secret, previous_secret_expires";
/// A repeated idempotency key within this window returns the first result.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

const DELIVERY_COLS: &str = "id, event_id, webhook_id, workspace_id, state, attempts, next_attempt_at, last_status, last_outcome, created_at, updated_at";
const EVENT_COLS: &str = "e.id AS e_id, e.type AS e_type, e.workspace_id AS e_workspace_id, e.data AS e_data, e.branch_id AS e_branch_id, e.business_unit_id AS e_business_unit_id, e.subject_id AS e_subject_id, e.sender AS e_sender, e.origin_client_id AS e_origin_client_id, e.idempotency_key AS e_idempotency_key, e.occurred_at AS e_occurred_at, e.created_at AS e_created_at";

fn workspace_from_row(row: &DbRow) -> Result<Workspace> {
    let kind: String = row.try_get("kind")?;
    Ok(Workspace {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: WorkspaceType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("workspace kind {kind}")))?,
        parent_id: row.try_get("parent_id")?,
        plan: row.try_get("plan")?,
        integration_enabled: row.try_get("integration_enabled")?,
        branches: parse_json::<Vec<Unit>>("branches", &row.try_get::<String, _>("branches")?)?,
        business_units: parse_json::<Vec<Unit>>(
            "business_units",
            &row.try_get::<String, _>("business_units")?,
        )?,
        fields: parse_json("fields", &row.try_get::<String, _>("fields")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn client_from_row(row: &DbRow) -> Result<Client> {
    Ok(Client {
        client_id: row.try_get("client_id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        generation: row.try_get("generation")?,
        created_at: row.try_get("created_at")?,
        regenerated_at: row.try_get("regenerated_at")?,
    })
}

fn webhook_from_row(row: &DbRow) -> Result<Webhook> {
    let mut spec: WebhookSpec = parse_json("webhook spec", &row.try_get::<String, _>("spec")?)?;
    // The status column is authoritative: Tidings disables webhooks without rewriting the spec.
    let status: String = row.try_get("status")?;
    spec.status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("webhook status {status}")))?;
    let previous: Option<String> = row.try_get("previous_secret")?;
    let previous_expires: Option<i64> = row.try_get("previous_secret_expires")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        spec,
        updated: row.try_get("updated")?,
        disabled_reason: row.try_get("disabled_reason")?,
        previous_secret: previous.zip(previous_expires),
        owner_client_id: row.try_get("owner_client_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn event_from_row(row: &DbRow) -> Result<Event> {
    let sender: Option<String> = row.try_get("e_sender")?;
    Ok(Event {
        id: row.try_get("e_id")?,
        kind: row.try_get("e_type")?,
        workspace_id: row.try_get("e_workspace_id")?,
        data: row.try_get("e_data")?,
        branch_id: row.try_get("e_branch_id")?,
        business_unit_id: row.try_get("e_business_unit_id")?,
        subject_id: row.try_get("e_subject_id")?,
        sender: sender.map(|s| parse_json::<Sender>("sender", &s)).transpose()?,
        origin_client_id: row.try_get("e_origin_client_id")?,
        idempotency_key: row.try_get("e_idempotency_key")?,
        occurred_at: row.try_get("e_occurred_at")?,
        created_at: row.try_get("e_created_at")?,
    })
}

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

/// Splits a `limit + 1` result into a page and the next cursor (the last item's key).
fn paginate<T>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next_cursor }
}

impl SqlStore {
    pub(crate) async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub(crate) async fn setting_get(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.write)
            .await?)
    }

    pub(crate) async fn setting_insert_if_absent(&self, key: &str, value: &str) -> Result<bool> {
        let r = sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub(crate) async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        let rows = sqlx::query("SELECT kid, private_der, public_raw, created_at FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.write)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKey {
                    kid: r.try_get("kid")?,
                    private_der: r.try_get("private_der")?,
                    public_raw: r.try_get("public_raw")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn insert_signing_key(&self, key: &SigningKey) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, private_der, public_raw, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO NOTHING")
            .bind(&key.kid)
            .bind(&key.private_der)
            .bind(&key.public_raw)
            .bind(key.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- workspaces ----

    pub(crate) async fn workspace_create(&self, ws: &Workspace) -> Result<()> {
        sqlx::query(
            "INSERT INTO workspaces (id, name, kind, parent_id, plan, integration_enabled, branches, business_units, fields, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&ws.id)
        .bind(&ws.name)
        .bind(ws.kind.as_str())
        .bind(&ws.parent_id)
        .bind(&ws.plan)
        .bind(ws.integration_enabled)
        .bind(json_text(&ws.branches))
        .bind(json_text(&ws.business_units))
        .bind(json_text(&ws.fields))
        .bind(ws.created_at)
        .execute(&self.write)
        .await
        .map_err(|e| conflict_or(e, "a workspace with this id exists"))?;
        Ok(())
    }

    pub(crate) async fn workspace_get(&self, id: &str) -> Result<Option<Workspace>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {WORKSPACE_COLS} FROM workspaces WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(workspace_from_row).transpose()
    }

    pub(crate) async fn workspace_list(&self, cursor: Option<&str>, limit: i64) -> Result<Page<Workspace>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WORKSPACE_COLS} FROM workspaces WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(cursor.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(workspace_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |w| w.id.clone()))
    }

    pub(crate) async fn workspace_update(&self, ws: &Workspace) -> Result<()> {
        let r = sqlx::query(
            "UPDATE workspaces SET name = $2, kind = $3, parent_id = $4, plan = $5, integration_enabled = $6, \
             branches = $7, business_units = $8, fields = $9, updated_at = $10 WHERE id = $1",
        )
        .bind(&ws.id)
        .bind(&ws.name)
        .bind(ws.kind.as_str())
        .bind(&ws.parent_id)
        .bind(&ws.plan)
        .bind(ws.integration_enabled)
        .bind(json_text(&ws.branches))
        .bind(json_text(&ws.business_units))
        .bind(json_text(&ws.fields))
        .bind(ws.created_at.max(0))
        .execute(&self.write)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub(crate) async fn workspace_delete(&self, id: &str, now: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE parent_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if children > 0 {
            return Err(StoreError::Conflict(format!(
                "workspace has {children} child workspace(s); delete them first"
            )));
        }
        let r = sqlx::query("DELETE FROM workspaces WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE deliveries SET state = 'cancelled', lease_owner = NULL, updated_at = $2 WHERE state = 'pending' AND webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $1)")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM webhook_triggers WHERE webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $1)",
            "DELETE FROM webhooks WHERE workspace_id = $1",
            "DELETE FROM clients WHERE workspace_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn workspace_chain(&self, id: &str) -> Result<Vec<Workspace>> {
        let mut chain: Vec<Workspace> = Vec::new();
        let mut next = Some(id.to_string());
        // The tree is shallow (regular, channel > child); the bound only guards against a cycle.
        while let Some(current) = next.take() {
            if chain.len() >= 16 || chain.iter().any(|w| w.id == current) {
                break;
            }
            let Some(ws) = self.workspace_get(&current).await? else {
                break;
            };
            next = ws.parent_id.clone();
            chain.push(ws);
        }
        Ok(chain)
    }

    // ---- clients ----

    pub(crate) async fn client_create(&self, c: &Client) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO clients ({CLIENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")))
            .bind(&c.client_id)
            .bind(&c.workspace_id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(c.generation)
            .bind(c.created_at)
            .bind(c.regenerated_at)
            .execute(&self.write)
            .await
            .map_err(|e| conflict_or(e, "client id exists"))?;
        Ok(())
    }

    pub(crate) async fn client_get(&self, client_id: &str) -> Result<Option<Client>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CLIENT_COLS} FROM clients WHERE client_id = $1")))
            .bind(client_id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub(crate) async fn client_list(&self, workspace_id: &str, cursor: Option<&str>, limit: i64) -> Result<Page<Client>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE workspace_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3"
        )))
        .bind(workspace_id)
        .bind(cursor.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(client_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |c| c.client_id.clone()))
    }

    pub(crate) async fn client_regenerate(&self, workspace_id: &str, client_id: &str, secret_hash: &str, now: i64) -> Result<Client> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE clients SET secret_hash = $3, generation = generation + 1, regenerated_at = $4 \
             WHERE workspace_id = $1 AND client_id = $2 RETURNING {CLIENT_COLS}"
        )))
        .bind(workspace_id)
        .bind(client_id)
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        row.as_ref().map(client_from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    pub(crate) async fn client_delete(&self, workspace_id: &str, client_id: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM clients WHERE workspace_id = $1 AND client_id = $2")
            .bind(workspace_id)
            .bind(client_id)
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    // ---- event types ----

    pub(crate) async fn event_types_seed(&self, types: &[EventType], now: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for t in types {
            sqlx::query("INSERT INTO event_types (name, description, sample, status_path, schema, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING")
                .bind(&t.name)
                .bind(&t.description)
                .bind(json_text(&t.sample))
                .bind(&t.status_path)
                .bind(t.schema.as_ref().map(json_text))
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn event_type_list(&self) -> Result<Vec<EventType>> {
        let rows = sqlx::query("SELECT name, description, sample, status_path, schema FROM event_types ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let schema: Option<String> = r.try_get("schema")?;
                Ok(EventType {
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    sample: parse_json("sample", &r.try_get::<String, _>("sample")?)?,
                    status_path: r.try_get("status_path")?,
                    schema: schema.map(|s| parse_json("schema", &s)).transpose()?,
                })
            })
            .collect()
    }

    pub(crate) async fn event_type_create(&self, t: &EventType, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO event_types (name, description, sample, status_path, schema, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&t.name)
            .bind(&t.description)
            .bind(json_text(&t.sample))
            .bind(&t.status_path)
            .bind(t.schema.as_ref().map(json_text))
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(|e| conflict_or(e, "an event type with this name exists"))?;
        Ok(())
    }

    pub(crate) async fn event_type_update(&self, t: &EventType) -> Result<()> {
        let r = sqlx::query("UPDATE event_types SET description = $2, sample = $3, status_path = $4, schema = $5 WHERE name = $1")
            .bind(&t.name)
            .bind(&t.description)
            .bind(json_text(&t.sample))
            .bind(&t.status_path)
            .bind(t.schema.as_ref().map(json_text))
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub(crate) async fn event_type_delete(&self, name: &str) -> Result<()> {
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_triggers WHERE event_type = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        if used > 0 {
            return Err(StoreError::Conflict(format!("{used} webhook(s) subscribe to this type; remove it from their triggers first")));
        }
        let r = sqlx::query("DELETE FROM event_types WHERE name = $1").bind(name).execute(&self.write).await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    // ---- webhooks ----

    pub(crate) async fn webhook_create(&self, w: &Webhook) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, workspace_id, owner_client_id, status, apply_to_all_descendants, spec, updated, created_at, \
             branches, business_units, disabled_reason, previous_secret, previous_secret_expires) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&w.id)
        .bind(&w.workspace_id)
        .bind(&w.owner_client_id)
        .bind(w.spec.status.as_str())
        .bind(w.spec.apply_to_all_descendants)
        .bind(json_text(&w.spec))
        .bind(w.updated)
        .bind(w.created_at)
        .bind(json_text(&w.spec.branches))
        .bind(json_text(&w.spec.business_units))
        .bind(&w.disabled_reason)
        .bind(w.previous_secret.as_ref().map(|p| p.0.as_str()))
        .bind(w.previous_secret.as_ref().map(|p| p.1))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "webhook id exists"))?;
        insert_triggers(&mut tx, w).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn webhook_get(&self, workspace_id: &str, id: &str) -> Result<Option<Webhook>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE workspace_id = $1 AND id = $2")))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    pub(crate) async fn webhook_list(&self, workspace_id: &str, cursor: Option<&str>, limit: i64) -> Result<Page<Webhook>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(workspace_id)
        .bind(cursor.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(webhook_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |w| w.id.clone()))
    }

    pub(crate) async fn webhook_count(&self, workspace_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_one(&self.read)
            .await?)
    }

    pub(crate) async fn webhook_update(&self, w: &Webhook) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let r = sqlx::query(
            "UPDATE webhooks SET failing_since = CASE WHEN $3 = 'enabled' AND status = 'disabled' THEN NULL ELSE failing_since END, \
             status = $3, apply_to_all_descendants = $4, spec = $5, updated = $6, \
             branches = $7, business_units = $8, disabled_reason = $9, previous_secret = $10, previous_secret_expires = $11 \
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(&w.workspace_id)
        .bind(&w.id)
        .bind(w.spec.status.as_str())
        .bind(w.spec.apply_to_all_descendants)
        .bind(json_text(&w.spec))
        .bind(w.updated)
        .bind(json_text(&w.spec.branches))
        .bind(json_text(&w.spec.business_units))
        .bind(&w.disabled_reason)
        .bind(w.previous_secret.as_ref().map(|p| p.0.as_str()))
        .bind(w.previous_secret.as_ref().map(|p| p.1))
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM webhook_triggers WHERE webhook_id = $1")
            .bind(&w.id)
            .execute(&mut *tx)
            .await?;
        insert_triggers(&mut tx, w).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn webhook_delete(&self, workspace_id: &str, id: &str, now: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let r = sqlx::query("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM webhook_triggers WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE deliveries SET state = 'cancelled', lease_owner = NULL, updated_at = $2 WHERE webhook_id = $1 AND state = 'pending'")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- events and the delivery queue ----

    /// One transaction for the whole batch, with few statements: the idempotency keys are looked
    /// up at once, matching runs once per distinct (type, workspace chain), and events and
    /// deliveries are inserted as multi-row statements.
    pub(crate) async fn publish(&self, batch: &[PublishRequest]) -> Result<Vec<PublishOutcome>> {
        use std::collections::HashMap;
        use sqlx::Connection;
        let mut conn = self.write.acquire().await?;
        if let Some(q) = DURABLE {
            sqlx::query(q).execute(&mut *conn).await?;
        }
        let mut tx = conn.begin().await?;
        let keys: Vec<&str> = batch.iter().filter_map(|r| r.event.idempotency_key.as_deref()).collect();
        let mut existing: HashMap<String, (String, i64, i64, i64)> = HashMap::new();
        if !keys.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "SELECT idempotency_key, id, deliveries, suppressed, created_at FROM events WHERE idempotency_key IN (",
            );
            let mut sep = qb.separated(", ");
            for k in &keys {
                sep.push_bind(*k);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let key: String = row.try_get("idempotency_key")?;
                existing.insert(key, (row.try_get("id")?, row.try_get("deliveries")?, row.try_get("suppressed")?, row.try_get("created_at")?));
            }
        }
        let mut matches: HashMap<(&str, &[String]), Vec<MatchRow>> = HashMap::new();
        for req in batch.iter().filter(|r| r.deliver && !r.workspace_chain.is_empty()) {
            let key = (req.event.kind.as_str(), req.workspace_chain.as_slice());
            if let std::collections::hash_map::Entry::Vacant(slot) = matches.entry(key) {
                slot.insert(match_webhooks(&mut tx, key.0, key.1).await?);
            }
        }
        let mut out: Vec<PublishOutcome> = Vec::with_capacity(batch.len());
        let mut in_batch: HashMap<&str, usize> = HashMap::new();
        let mut stale_keys: Vec<String> = Vec::new();
        let mut events: Vec<&Event> = Vec::new();
        let mut counts: Vec<(i64, i64)> = Vec::new();
        let mut deliveries: Vec<(String, &Event, &str)> = Vec::new();
        for req in batch {
            let e = &req.event;
            if let Some(key) = e.idempotency_key.as_deref() {
                if let Some(&first) = in_batch.get(key) {
                    let mut repeat = out[first].clone();
                    repeat.duplicate = true;
                    out.push(repeat);
                    continue;
                }
                match existing.get(key) {
                    Some((id, deliveries, suppressed, created_at)) if *created_at > e.created_at - IDEMPOTENCY_WINDOW_MS => {
                        out.push(PublishOutcome { id: id.clone(), deliveries: *deliveries, suppressed: *suppressed, duplicate: true });
                        continue;
                    }
                    // The earlier use is past the window: the key is free again.
                    Some((old_id, ..)) => stale_keys.push(old_id.clone()),
                    None => {}
                }
                in_batch.insert(key, out.len());
            }
            let mut suppressed = 0i64;
            let mut targets = 0i64;
            if let Some(rows) = matches.get(&(e.kind.as_str(), req.workspace_chain.as_slice())) {
                for m in rows {
                    if m.workspace_id != e.workspace_id && !m.descendants {
                        continue;
                    }
                    if !unit_matches(&m.branches, e.branch_id.as_deref())? || !unit_matches(&m.units, e.business_unit_id.as_deref())? {
                        continue;
                    }
                    if m.owner.is_some() && m.owner == e.origin_client_id {
                        suppressed += 1;
                        continue;
                    }
                    targets += 1;
                    deliveries.push((tidings_core::ids::message_id(), e, m.id.as_str()));
                }
            }
            events.push(e);
            counts.push((targets, suppressed));
            out.push(PublishOutcome { id: e.id.clone(), deliveries: targets, suppressed, duplicate: false });
        }
        if !stale_keys.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE events SET idempotency_key = NULL WHERE id IN (");
            let mut sep = qb.separated(", ");
            for id in &stale_keys {
                sep.push_bind(id.as_str());
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in events.iter().zip(&counts).collect::<Vec<_>>().chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO events (id, type, workspace_id, data, branch_id, business_unit_id, subject_id, sender, origin_client_id, idempotency_key, occurred_at, created_at, deliveries, suppressed) ",
            );
            qb.push_values(chunk, |mut b, (e, (targets, suppressed))| {
                b.push_bind(e.id.as_str())
                    .push_bind(e.kind.as_str())
                    .push_bind(e.workspace_id.as_str())
                    .push_bind(e.data.as_str())
                    .push_bind(e.branch_id.as_deref())
                    .push_bind(e.business_unit_id.as_deref())
                    .push_bind(e.subject_id.as_deref())
                    .push_bind(e.sender.as_ref().map(json_text))
                    .push_bind(e.origin_client_id.as_deref())
                    .push_bind(e.idempotency_key.as_deref())
                    .push_bind(e.occurred_at)
                    .push_bind(e.created_at)
                    .push_bind(*targets)
                    .push_bind(*suppressed);
            });
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in deliveries.chunks(2000) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO deliveries (id, event_id, webhook_id, workspace_id, state, attempts, next_attempt_at, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (id, e, webhook_id)| {
                b.push_bind(id.as_str())
                    .push_bind(e.id.as_str())
                    .push_bind(*webhook_id)
                    .push_bind(e.workspace_id.as_str())
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(e.created_at)
                    .push_bind(e.created_at)
                    .push_bind(e.created_at);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Runs `work` in a transaction that commits without waiting for the disk (queue
    /// bookkeeping; see `RELAXED_BEFORE`), and restores durable commits afterwards.
    async fn relaxed<T>(&self, work: impl for<'t> AsyncFnOnce(&'t mut sqlx::Transaction<'_, Db>) -> Result<T>) -> Result<T> {
        use sqlx::Connection;
        let mut conn = self.write.acquire().await?;
        if let Some(q) = RELAXED_BEFORE {
            sqlx::query(q).execute(&mut *conn).await?;
        }
        let result = async {
            let mut tx = conn.begin().await?;
            if let Some(q) = RELAXED_IN_TX {
                sqlx::query(q).execute(&mut *tx).await?;
            }
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        }
        .await;
        if let Some(q) = DURABLE {
            // Publishes set FULL themselves before they begin, so a failure here cannot make a
            // publish commit without fsync.
            sqlx::query(q).execute(&mut *conn).await?;
        }
        result
    }

    pub(crate) async fn claim(&self, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>> {
        self.relaxed(async |tx| self.claim_in(tx, owner, now, lease_until, limit, exclude).await).await
    }

    pub(crate) async fn complete(&self, owner: &str, now: i64, completions: &[Completion], disable_failing_since: i64) -> Result<Vec<DisabledWebhook>> {
        self.relaxed(async |tx| self.complete_in(tx, owner, now, completions, disable_failing_since).await).await
    }

    pub(crate) async fn claim_in(&self, tx: &mut sqlx::Transaction<'_, Db>, owner: &str, now: i64, lease_until: i64, limit: i64, exclude: &[String]) -> Result<Vec<Job>> {
        let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE deliveries SET lease_owner = ");
        qb.push_bind(owner);
        qb.push(", next_attempt_at = ");
        qb.push_bind(lease_until);
        qb.push(" WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ");
        qb.push_bind(now);
        if !exclude.is_empty() {
            // Webhooks already at their in-flight limit on this node wait their turn in the queue.
            qb.push(" AND webhook_id NOT IN (");
            let mut sep = qb.separated(", ");
            for w in exclude {
                sep.push_bind(w.as_str());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY next_attempt_at LIMIT ");
        qb.push_bind(limit);
        qb.push(" ");
        qb.push(SKIP_LOCKED);
        qb.push(") RETURNING id, attempts, event_id, webhook_id");
        let claimed: Vec<(String, i64, String, String)> = qb.build_query_as().fetch_all(&mut **tx).await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Events, webhooks and their context are read by primary key in separate queries: one
        // join let the planner walk every delivery of a busy webhook (its index is selective
        // only by webhook) instead of the few claimed ones.
        use std::collections::{HashMap, HashSet};
        let event_ids: HashSet<&str> = claimed.iter().map(|c| c.2.as_str()).collect();
        let webhook_ids: HashSet<&str> = claimed.iter().map(|c| c.3.as_str()).collect();
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!("SELECT {EVENT_COLS} FROM events e WHERE e.id IN ("));
        let mut sep = qb.separated(", ");
        for id in &event_ids {
            sep.push_bind(*id);
        }
        qb.push(")");
        let mut events: HashMap<String, Event> = HashMap::new();
        for row in qb.build().fetch_all(&mut **tx).await? {
            let e = event_from_row(&row)?;
            events.insert(e.id.clone(), e);
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE id IN ("));
        let mut sep = qb.separated(", ");
        for id in &webhook_ids {
            sep.push_bind(*id);
        }
        qb.push(")");
        let mut webhooks: HashMap<String, Webhook> = HashMap::new();
        for row in qb.build().fetch_all(&mut **tx).await? {
            let w = webhook_from_row(&row)?;
            webhooks.insert(w.id.clone(), w);
        }
        let status_paths: HashMap<String, Option<String>> = sqlx::query_as::<_, (String, Option<String>)>("SELECT name, status_path FROM event_types")
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        let wanted_fields: HashSet<&str> = events
            .values()
            .filter(|e| claimed.iter().any(|c| c.2 == e.id && webhooks.get(&c.3).is_some_and(|w| !w.spec.extra_fields.is_empty())))
            .map(|e| e.workspace_id.as_str())
            .collect();
        let mut fields: HashMap<String, String> = HashMap::new();
        if !wanted_fields.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT id, fields FROM workspaces WHERE id IN (");
            let mut sep = qb.separated(", ");
            for id in &wanted_fields {
                sep.push_bind(*id);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut **tx).await? {
                fields.insert(row.try_get("id")?, row.try_get("fields")?);
            }
        }
        let mut jobs = Vec::with_capacity(claimed.len());
        for (delivery_id, attempts, event_id, webhook_id) in &claimed {
            let (Some(event), Some(webhook)) = (events.get(event_id), webhooks.get(webhook_id)) else {
                continue;
            };
            jobs.push(Job {
                attempts: *attempts,
                delivery_id: delivery_id.clone(),
                status_path: status_paths.get(&event.kind).cloned().flatten(),
                company_fields: fields.get(&event.workspace_id).cloned(),
                event: event.clone(),
                webhook: webhook.clone(),
            });
        }
        if jobs.len() < claimed.len() {
            // The webhook was deleted after the delivery was queued: nothing to send.
            let found: std::collections::HashSet<&str> =
                jobs.iter().map(|j| j.delivery_id.as_str()).collect();
            for (id, ..) in claimed.iter().filter(|c| !found.contains(c.0.as_str())) {
                sqlx::query("UPDATE deliveries SET state = 'cancelled', lease_owner = NULL, updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(jobs)
    }

    pub(crate) async fn complete_in(&self, tx: &mut sqlx::Transaction<'_, Db>, owner: &str, now: i64, completions: &[Completion], disable_failing_since: i64) -> Result<Vec<DisabledWebhook>> {
        // Two statements per chunk, whatever its size: the attempts as one multi-row insert, the
        // deliveries' next states as one UPDATE joined with a VALUES list.
        for chunk in completions.chunks(500) {
            let attempts: Vec<&AttemptRecord> = chunk.iter().filter_map(|c| c.attempt.as_ref()).collect();
            if !attempts.is_empty() {
                let mut qb = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO attempts (id, delivery_id, attempt_no, started_at, duration_ms, outcome, status, request_headers, response_headers, response_body, error) ",
                );
                qb.push_values(&attempts, |mut b, a| {
                    b.push_bind(a.id.as_str())
                        .push_bind(a.delivery_id.as_str())
                        .push_bind(a.attempt_no)
                        .push_bind(a.started_at)
                        .push_bind(a.duration_ms)
                        .push_bind(a.outcome.as_str())
                        .push_bind(a.status)
                        .push_bind(a.request_headers.as_str())
                        .push_bind(a.response_headers.as_str())
                        .push_bind(a.response_body.as_str())
                        .push_bind(a.error.as_deref());
                });
                qb.push(" ON CONFLICT (id) DO NOTHING");
                qb.build().execute(&mut **tx).await?;
            }
            // Guarded by the lease: a node whose lease expired and was taken over must not
            // overwrite the new owner's progress.
            let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE deliveries SET state = v.column2, attempts = v.column3, next_attempt_at = v.column4, lease_owner = NULL, \
                 last_status = COALESCE(v.column5, deliveries.last_status), last_outcome = COALESCE(v.column6, deliveries.last_outcome), updated_at = ");
            qb.push_bind(now);
            qb.push(" FROM (");
            qb.push_values(chunk, |mut b, c| {
                let (state, next_at) = match c.next {
                    NextState::Succeeded => ("succeeded", now),
                    NextState::Failed => ("failed", now),
                    NextState::Cancelled => ("cancelled", now),
                    NextState::Retry(at) => ("pending", at),
                };
                let (status, outcome) = c.attempt.as_ref().map_or((None, None), |a| (a.status, Some(a.outcome.as_str())));
                b.push_bind(c.delivery_id.as_str())
                    .push_bind(state)
                    .push_bind(c.attempts)
                    .push_bind(next_at)
                    .push_bind(status)
                    .push_bind(outcome);
            });
            qb.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_owner = ");
            qb.push_bind(owner);
            qb.push(" AND deliveries.state = 'pending'");
            qb.build().execute(&mut **tx).await?;
        }
        // Webhook health, one update per webhook of the batch: a success clears the failing
        // streak; a failure starts one if none is running.
        let mut health: std::collections::BTreeMap<&str, bool> = std::collections::BTreeMap::new();
        for c in completions.iter().filter(|c| c.attempt.is_some()) {
            let ok = c.next == NextState::Succeeded;
            let entry = health.entry(c.webhook_id.as_str()).or_insert(ok);
            *entry = *entry || ok;
        }
        for (webhook_id, ok) in &health {
            let sql = if *ok {
                "UPDATE webhooks SET last_success_at = $2, failing_since = NULL WHERE id = $1"
            } else {
                "UPDATE webhooks SET failing_since = COALESCE(failing_since, $2) WHERE id = $1"
            };
            sqlx::query(sql).bind(*webhook_id).bind(now).execute(&mut **tx).await?;
        }
        let mut disabled = Vec::new();
        let mut to_disable: Vec<(&str, String)> = completions
            .iter()
            .filter_map(|c| c.disable_webhook.as_ref().map(|r| (c.webhook_id.as_str(), r.clone())))
            .collect();
        for (webhook_id, ok) in &health {
            if !*ok {
                to_disable.push((webhook_id, String::new()));
            }
        }
        for (webhook_id, reason) in to_disable {
            // An empty reason means "disable if it has been failing for too long".
            let (sql, reason) = if reason.is_empty() {
                (
                    "UPDATE webhooks SET status = 'disabled', disabled_reason = $3, updated = $4 \
                     WHERE id = $1 AND status = 'enabled' AND failing_since IS NOT NULL AND failing_since <= $2 \
                     RETURNING id, workspace_id, spec, disabled_reason",
                    "no successful delivery since the failures began; disabled automatically".to_string(),
                )
            } else {
                (
                    "UPDATE webhooks SET status = 'disabled', disabled_reason = $3, updated = $4 \
                     WHERE id = $1 AND status = 'enabled' AND $2 = $2 RETURNING id, workspace_id, spec, disabled_reason",
                    reason,
                )
            };
            let row = sqlx::query(sql)
                .bind(webhook_id)
                .bind(disable_failing_since)
                .bind(&reason)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(row) = row {
                let spec: WebhookSpec = parse_json("webhook spec", &row.try_get::<String, _>("spec")?)?;
                disabled.push(DisabledWebhook {
                    id: row.try_get("id")?,
                    workspace_id: row.try_get("workspace_id")?,
                    url: spec.url,
                    reason,
                });
            }
        }
        Ok(disabled)
    }

    pub(crate) async fn delivery_list(&self, webhook_id: &str, state: Option<&str>, cursor: Option<&str>, limit: i64) -> Result<Page<DeliveryRecord>> {
        // Newest first: message ids are time-ordered.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE webhook_id = $1 AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = $1 ORDER BY id")))
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
        let r = sqlx::query(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = $4, lease_owner = NULL, updated_at = $4 \
             WHERE webhook_id = $1 AND state = 'failed' AND created_at >= $2 AND created_at < $3",
        )
        .bind(webhook_id)
        .bind(since)
        .bind(until)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn release(&self, owner: &str, ids: &[String], at: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE deliveries SET lease_owner = NULL, next_attempt_at = ");
        qb.push_bind(at);
        qb.push(" WHERE state = 'pending' AND lease_owner = ");
        qb.push_bind(owner);
        qb.push(" AND id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(id.as_str());
        }
        qb.push(")");
        qb.build().execute(&self.write).await?;
        Ok(())
    }

    pub(crate) async fn prune(&self, succeeded_before: i64, events_before: i64, batch: i64) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        // Small transactions: the writer is never held for long. One pass per partial index.
        for (filter, before) in [
            ("state = 'succeeded'", succeeded_before),
            ("state IN ('failed', 'cancelled')", events_before),
        ] {
            loop {
                let mut tx = self.write.begin().await?;
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
                for table in ["attempts", "deliveries"] {
                    let column = if table == "attempts" { "delivery_id" } else { "id" };
                    let mut qb = sqlx::QueryBuilder::<Db>::new(format!("DELETE FROM {table} WHERE {column} IN ("));
                    let mut sep = qb.separated(", ");
                    for id in &ids {
                        sep.push_bind(id.as_str());
                    }
                    qb.push(")");
                    let n = qb.build().execute(&mut *tx).await?.rows_affected();
                    if table == "attempts" { report.attempts += n } else { report.deliveries += n }
                }
                tx.commit().await?;
            }
        }
        loop {
            let r = sqlx::query(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT $2)",
            )
            .bind(events_before)
            .bind(batch)
            .execute(&self.write)
            .await?;
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

/// Whether a webhook's unit filter (JSON list; empty = all) admits the event's unit.
fn unit_matches(filter: &str, unit: Option<&str>) -> Result<bool> {
    if filter == "[]" {
        return Ok(true);
    }
    let list: Vec<String> = parse_json("unit filter", filter)?;
    Ok(list.is_empty() || unit.is_some_and(|u| list.iter().any(|l| l == u)))
}

async fn insert_triggers(tx: &mut sqlx::Transaction<'static, Db>, w: &Webhook) -> Result<()> {
    for t in &w.spec.triggers {
        sqlx::query("INSERT INTO webhook_triggers (workspace_id, event_type, webhook_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&w.workspace_id)
            .bind(t)
            .bind(&w.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A webhook that may match an event: what fan-out needs to decide.
struct MatchRow {
    id: String,
    workspace_id: String,
    owner: Option<String>,
    descendants: bool,
    branches: String,
    units: String,
}

/// Enabled webhooks of the chain's workspaces that subscribe to `kind`, read through the
/// (workspace, type) index: the cost follows the matches, not all webhooks.
async fn match_webhooks(tx: &mut sqlx::Transaction<'_, Db>, kind: &str, chain: &[String]) -> Result<Vec<MatchRow>> {
    let mut qb = sqlx::QueryBuilder::<Db>::new(
        "SELECT w.id, w.workspace_id, w.owner_client_id, w.apply_to_all_descendants, w.branches, w.business_units FROM webhook_triggers t \
         JOIN webhooks w ON w.id = t.webhook_id WHERE t.event_type = ",
    );
    qb.push_bind(kind);
    qb.push(" AND w.status = 'enabled' AND t.workspace_id IN (");
    let mut sep = qb.separated(", ");
    for ws in chain {
        sep.push_bind(ws.as_str());
    }
    qb.push(") ORDER BY w.id");
    let rows = qb.build().fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|row| {
            Ok(MatchRow {
                id: row.try_get("id")?,
                workspace_id: row.try_get("workspace_id")?,
                owner: row.try_get("owner_client_id")?,
                descendants: row.try_get("apply_to_all_descendants")?,
                branches: row.try_get("branches")?,
                units: row.try_get("business_units")?,
            })
        })
        .collect()
}

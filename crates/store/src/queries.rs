// The SQL of the store, compiled once per backend (see `lib.rs`): `Db` is the sqlx database
// type and `DbRow` its row. Placeholders are `$N`, which both SQLite and PostgreSQL accept. The
// delivery queue's hot path is not here: see `queue_rules.rs` (shared logic), `writer/`
// (embedded) and `queue_sqlx.rs` (PostgreSQL).

use sqlx::Row;
use crate::queue_rules::{Cols, EVENT_COLS, WEBHOOK_COLS};

const WORKSPACE_COLS: &str = "id, name, kind, parent_id, plan, integration_enabled, notifications_enabled, branches, business_units, fields, created_at";
const CLIENT_COLS: &str = "client_id, workspace_id, name, secret_hash, generation, created_at, regenerated_at";

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
        notifications_enabled: row.try_get("notifications_enabled")?,
        branches: parse_json::<Vec<Unit>>("branches", &row.try_get::<String, _>("branches")?)?,
        business_units: parse_json::<Vec<Unit>>(
            "business_units",
            &row.try_get::<String, _>("business_units")?,
        )?,
        fields: parse_json("fields", &row.try_get::<String, _>("fields")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn client_from_row(row: &DbRow) -> Result<IntegrationClient> {
    Ok(IntegrationClient {
        client_id: row.try_get("client_id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        generation: row.try_get("generation")?,
        created_at: row.try_get("created_at")?,
        regenerated_at: row.try_get("regenerated_at")?,
    })
}

impl Cols for DbRow {
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.try_get(col)?)
    }
}

fn webhook_from_row(row: &DbRow, keys: &tidings_core::seal::Keyring) -> Result<Webhook> {
    crate::queue_rules::webhook_from(row, keys)
}

fn event_from_row(row: &DbRow) -> Result<Event> {
    crate::queue_rules::event_from(row)
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
        let keys = self.keys.get();
        let rows = sqlx::query("SELECT kid, private_der, public_raw, created_at FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.write)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKey {
                    kid: r.try_get("kid")?,
                    private_der: crate::sealing::open_signing_key(&keys, &r.try_get::<Vec<u8>, _>("private_der")?)?,
                    public_raw: r.try_get("public_raw")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Seals again, with the first master key, every stored secret that is plain or sealed with
    /// an older key: webhook secrets, header values and previous secrets, private signing keys.
    /// Webhooks go in pages; a row changed meanwhile is left as its writer sealed it.
    pub(crate) async fn reseal(&self) -> Result<u64> {
        use crate::sealing::{seal_previous, seal_signing_key, spec_needs_reseal, spec_text};
        let keys = self.keys.get();
        let mut changed = 0;
        let mut after = String::new();
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE id > $1 ORDER BY id LIMIT 500")))
                .bind(&after)
                .fetch_all(&self.write)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            for row in &rows {
                let spec: String = row.try_get("spec")?;
                let previous: Option<String> = row.try_get("previous_secret")?;
                if !spec_needs_reseal(&keys, &spec)? && !previous.as_deref().is_some_and(|p| keys.needs_reseal(p)) {
                    continue;
                }
                let w = webhook_from_row(row, &keys)?;
                changed += sqlx::query(
                    "UPDATE webhooks SET spec = $2, previous_secret = $3 WHERE id = $1 AND spec = $4 \
                     AND (previous_secret = $5 OR (previous_secret IS NULL AND $5 IS NULL))",
                )
                .bind(&w.id)
                .bind(spec_text(&keys, &w.spec))
                .bind(seal_previous(&keys, w.previous_secret.as_ref()))
                .bind(&spec)
                .bind(&previous)
                .execute(&self.write)
                .await?
                .rows_affected();
            }
        }
        for row in sqlx::query("SELECT kid, private_der FROM signing_keys").fetch_all(&self.write).await? {
            let stored: Vec<u8> = row.try_get("private_der")?;
            if !keys.needs_reseal(std::str::from_utf8(&stored).unwrap_or("")) {
                continue;
            }
            let private_der = crate::sealing::open_signing_key(&keys, &stored)?;
            changed += sqlx::query("UPDATE signing_keys SET private_der = $2 WHERE kid = $1")
                .bind(row.try_get::<String, _>("kid")?)
                .bind(seal_signing_key(&keys, &private_der))
                .execute(&self.write)
                .await?
                .rows_affected();
        }
        Ok(changed)
    }

    pub(crate) async fn insert_signing_key(&self, key: &SigningKey) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, private_der, public_raw, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO NOTHING")
            .bind(&key.kid)
            .bind(crate::sealing::seal_signing_key(&self.keys.get(), &key.private_der))
            .bind(&key.public_raw)
            .bind(key.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- workspaces ----

    pub(crate) async fn workspace_create(&self, ws: &Workspace) -> Result<()> {
        sqlx::query(
            "INSERT INTO workspaces (id, name, kind, parent_id, plan, integration_enabled, branches, business_units, fields, created_at, updated_at, notifications_enabled) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
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
        .bind(ws.notifications_enabled)
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
             branches = $7, business_units = $8, fields = $9, updated_at = $10, notifications_enabled = $11 WHERE id = $1",
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
        .bind(ws.notifications_enabled)
        .execute(&self.write)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub(crate) async fn workspace_delete(&self, id: &str, now: i64) -> Result<()> {
        // It reads (the children) before it writes: see `BEGIN_WRITE`.
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
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
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET state = 'cancelled', lease_owner = NULL, updated_at = $2 WHERE state = 'pending' AND {}",
            deliveries_of("SELECT id FROM webhooks WHERE workspace_id = $1")
        )))
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

    pub(crate) async fn client_create(&self, c: &IntegrationClient) -> Result<()> {
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

    pub(crate) async fn client_get(&self, client_id: &str) -> Result<Option<IntegrationClient>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CLIENT_COLS} FROM clients WHERE client_id = $1")))
            .bind(client_id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub(crate) async fn client_list(&self, workspace_id: &str, cursor: Option<&str>, limit: i64) -> Result<Page<IntegrationClient>> {
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

    pub(crate) async fn client_regenerate(&self, workspace_id: &str, client_id: &str, secret_hash: &str, now: i64) -> Result<IntegrationClient> {
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

    pub(crate) async fn webhook_create(&self, w: &Webhook, max: i64) -> Result<()> {
        let keys = self.keys.get();
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        // The workspace's row is locked before counting: a concurrent create waits here and
        // then counts this one too.
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT id FROM workspaces WHERE id = $1 {FOR_UPDATE}")))
            .bind(&w.workspace_id)
            .fetch_optional(&mut *tx)
            .await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE workspace_id = $1")
            .bind(&w.workspace_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= max {
            return Err(StoreError::LimitReached(max));
        }
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
        .bind(crate::sealing::spec_text(&keys, &w.spec))
        .bind(w.updated)
        .bind(w.created_at)
        .bind(json_text(&w.spec.branches))
        .bind(json_text(&w.spec.business_units))
        .bind(&w.disabled_reason)
        .bind(crate::sealing::seal_previous(&keys, w.previous_secret.as_ref()))
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
        let keys = self.keys.get();
        row.as_ref().map(|r| webhook_from_row(r, &keys)).transpose()
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
        let keys = self.keys.get();
        let items = rows.iter().map(|r| webhook_from_row(r, &keys)).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |w| w.id.clone()))
    }

    pub(crate) async fn webhook_update(&self, w: &Webhook) -> Result<()> {
        let keys = self.keys.get();
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
        .bind(crate::sealing::spec_text(&keys, &w.spec))
        .bind(w.updated)
        .bind(json_text(&w.spec.branches))
        .bind(json_text(&w.spec.business_units))
        .bind(&w.disabled_reason)
        .bind(crate::sealing::seal_previous(&keys, w.previous_secret.as_ref()))
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
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET state = 'cancelled', lease_owner = NULL, updated_at = $2 WHERE state = 'pending' AND {}",
            deliveries_of("$1")
        )))
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
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

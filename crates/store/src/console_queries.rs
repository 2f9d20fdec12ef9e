// The console's SQL (docs/console.md): sessions, one-time portal links, the operator's event
// search and troubled webhooks. Compiled once per backend like `queries.rs`, into the same
// `SqlStore`.

/// Rows of `events` one search request examines at most: a filter that matches rarely answers
/// with fewer results and a cursor to look further, instead of scanning the whole table.
const EVENT_SEARCH_SCAN: i64 = 5000;

/// The smallest event id made at `ms` or later (event ids are `evt_` + a UUIDv7, whose first
/// 48 bits are the Unix milliseconds), so a time window is a range of the primary key.
fn event_id_at(ms: i64) -> String {
    format!("evt_{:012x}{}", ms.clamp(0, 0xffff_ffff_ffff), "0".repeat(20))
}

fn session_from_row(row: &DbRow) -> Result<ConsoleSession> {
    Ok(ConsoleSession {
        kind: row.try_get("kind")?,
        workspace_id: row.try_get("workspace_id")?,
        return_url: row.try_get("return_url")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl SqlStore {
    pub(crate) async fn session_create(&self, token_hash: &str, s: &ConsoleSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, kind, workspace_id, return_url, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(&s.kind)
        .bind(&s.workspace_id)
        .bind(&s.return_url)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub(crate) async fn session_get(&self, token_hash: &str, now: i64) -> Result<Option<ConsoleSession>> {
        let row = sqlx::query(
            "SELECT kind, workspace_id, return_url, created_at, expires_at FROM console_sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub(crate) async fn session_delete(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub(crate) async fn portal_link_create(&self, token_hash: &str, link: &PortalLink, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_links (token_hash, workspace_id, return_url, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&link.workspace_id)
        .bind(&link.return_url)
        .bind(now)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Marks the link used, in one statement, if it is unused and unexpired: of two requests
    /// with the same link (on any node) exactly one gets it.
    pub(crate) async fn portal_link_redeem(&self, token_hash: &str, now: i64) -> Result<Option<PortalLink>> {
        let row = sqlx::query(
            "UPDATE portal_links SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING workspace_id, return_url",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        row.map(|r| {
            Ok(PortalLink {
                workspace_id: r.try_get("workspace_id")?,
                return_url: r.try_get("return_url")?,
            })
        })
        .transpose()
    }

    /// Deletes expired sessions and links that expired before `links_before`.
    pub(crate) async fn console_prune(&self, now: i64, links_before: i64) -> Result<u64> {
        let sessions = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.write)
            .await?
            .rows_affected();
        let links = sqlx::query("DELETE FROM portal_links WHERE expires_at < $1")
            .bind(links_before)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(sessions + links)
    }

    /// Events newest first, filtered; examines at most [`EVENT_SEARCH_SCAN`] rows per call.
    /// `cursor` continues below an id. The page's cursor is set whenever older events remain
    /// unexamined, even when this page holds fewer than `limit` (or no) events.
    pub(crate) async fn event_search(&self, filter: &EventFilter, cursor: Option<&str>, limit: i64) -> Result<Page<EventRecord>> {
        let upper = match (cursor, filter.until) {
            (Some(c), Some(u)) => c.to_string().min(event_id_at(u)),
            (Some(c), None) => c.to_string(),
            (None, Some(u)) => event_id_at(u),
            (None, None) => "evt_~".to_string(),
        };
        let lower = filter.since.map_or_else(|| "evt_".to_string(), event_id_at);
        // The lowest id this call may examine: the SCAN-th below `upper`, if there are that many.
        let boundary: Option<String> = sqlx::query_scalar(
            "SELECT id FROM events WHERE id < $1 AND id >= $2 ORDER BY id DESC LIMIT 1 OFFSET $3",
        )
        .bind(&upper)
        .bind(&lower)
        .bind(EVENT_SEARCH_SCAN - 1)
        .fetch_optional(&self.read)
        .await?;
        let floor = boundary.clone().map_or(lower, |b| b);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLS}, e.deliveries AS e_deliveries, e.suppressed AS e_suppressed FROM events e \
             WHERE e.id < $1 AND e.id >= $2 AND ($3 = '' OR e.workspace_id = $3) AND ($4 = '' OR e.type = $4) \
             ORDER BY e.id DESC LIMIT $5"
        )))
        .bind(&upper)
        .bind(&floor)
        .bind(filter.workspace_id.as_deref().unwrap_or(""))
        .bind(filter.kind.as_deref().unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(EventRecord { event: event_from_row(r)?, deliveries: r.try_get("e_deliveries")?, suppressed: r.try_get("e_suppressed")? })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut page = paginate(items, limit, |e| e.event.id.clone());
        if page.next_cursor.is_none() {
            page.next_cursor = boundary;
        }
        Ok(page)
    }

    /// The child workspaces of a channel, by id, at most `limit`.
    pub(crate) async fn workspace_children(&self, parent_id: &str, limit: i64) -> Result<Vec<Workspace>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WORKSPACE_COLS} FROM workspaces WHERE parent_id = $1 ORDER BY id LIMIT $2"
        )))
        .bind(parent_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    /// Disabled webhooks and webhooks failing without a success, most recently changed first.
    pub(crate) async fn webhooks_troubled(&self, limit: i64) -> Result<Vec<TroubledWebhook>> {
        let keys = self.keys.get();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLS}, failing_since, last_success_at FROM webhooks \
             WHERE status = 'disabled' OR failing_since IS NOT NULL ORDER BY updated DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TroubledWebhook {
                    webhook: webhook_from_row(r, &keys)?,
                    failing_since: r.try_get("failing_since")?,
                    last_success_at: r.try_get("last_success_at")?,
                })
            })
            .collect()
    }
}

//! What the console charts and searches: the node's health over the last hour and the webhooks
//! in trouble (operator), the operator's event search, and a webhook's deliveries over time
//! (integrator).

use super::doc::{Auth, Op, PageOf, Routes};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_store::EventFilter;

use crate::auth::extract::{Integrator, Operator};
use crate::error::{ApiError, ApiResult};
use crate::history::Point;
use crate::input::Pagination;
use crate::state::AppState;

/// Deliveries a stats request reads at most (newest first).
const STATS_READ: usize = 5000;
/// Buckets of a stats answer.
const STATS_BUCKETS: i64 = 24;

/// A webhook in trouble, as the health page lists it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TroubledView {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    /// `enabled` (but failing) or `disabled`.
    pub status: String,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub last_success_at: Option<String>,
}

/// The node's last hour and the webhooks that need attention.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    pub store: String,
    /// One point every 10 s, oldest first; this node's numbers (the same as `/metrics`).
    pub points: Vec<Point>,
    pub troubled_webhooks: Vec<TroubledView>,
}

async fn health(_: Operator, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let troubled = state.store.webhooks_troubled(100).await?;
    let now = crate::history::read(&state.store, &state.metrics, &state.clock).await;
    Ok(Json(json!(HealthView {
        store: state.store.kind().to_string(),
        points: state.history.points(now),
        troubled_webhooks: troubled
            .into_iter()
            .map(|t| TroubledView {
                id: t.webhook.id,
                workspace_id: t.webhook.workspace_id,
                url: t.webhook.spec.url,
                status: t.webhook.spec.status.as_str().to_string(),
                disabled_reason: t.webhook.disabled_reason,
                failing_since: t.failing_since.map(tidings_core::rfc3339),
                last_success_at: t.last_success_at.map(tidings_core::rfc3339),
            })
            .collect(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventQuery {
    workspace_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn time_param(name: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            tidings_core::parse_rfc3339(v)
                .ok_or_else(|| ApiError::invalid_field(name, "must be an RFC 3339 timestamp"))
        })
        .transpose()
}

/// A found event (without its data).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub workspace_id: String,
    pub deliveries: i64,
    pub suppressed: i64,
    pub created_at: String,
}

async fn search_events(
    _: Operator,
    State(state): State<AppState>,
    Query(q): Query<EventQuery>,
    page: Pagination,
) -> ApiResult<Json<Value>> {
    let filter = EventFilter {
        workspace_id: q.workspace_id.filter(|s| !s.is_empty()),
        kind: q.kind.filter(|s| !s.is_empty()),
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
    };
    let page = state
        .store
        .event_search(&filter, page.cursor.as_deref(), page.limit)
        .await?;
    let data: Vec<EventSummary> = page
        .items
        .into_iter()
        .map(|r| EventSummary {
            id: r.event.id,
            kind: r.event.kind,
            workspace_id: r.event.workspace_id,
            deliveries: r.deliveries,
            suppressed: r.suppressed,
            created_at: tidings_core::rfc3339(r.event.created_at),
        })
        .collect();
    Ok(Json(json!({"data": data, "nextCursor": page.next_cursor})))
}

#[derive(Debug, Deserialize)]
struct StatsQuery {
    hours: Option<i64>,
}

/// Deliveries created in one interval, by state.
#[derive(Debug, Default, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub start: String,
    pub succeeded: u64,
    pub failed: u64,
    pub pending: u64,
    pub cancelled: u64,
}

/// A webhook's deliveries over time.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    pub since: String,
    pub bucket_seconds: i64,
    pub buckets: Vec<Bucket>,
    /// True when the window held more deliveries than one answer reads (the newest 5,000
    /// are counted).
    pub truncated: bool,
}

async fn webhook_stats(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Value>> {
    state
        .store
        .webhook_get(&who.workspace.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let hours = q.hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(ApiError::invalid_field(
            "hours",
            "must be between 1 and 168",
        ));
    }
    let now = state.clock.now_ms();
    let width = hours * 3_600_000 / STATS_BUCKETS;
    let since = now - width * STATS_BUCKETS;
    let mut buckets: Vec<Bucket> = (0..STATS_BUCKETS)
        .map(|i| Bucket {
            start: tidings_core::rfc3339(since + i * width),
            ..Bucket::default()
        })
        .collect();
    let (mut read, mut cursor, mut truncated) = (0usize, None::<String>, false);
    'pages: loop {
        let page = state
            .store
            .delivery_list(&id, None, cursor.as_deref(), 500)
            .await?;
        for d in &page.items {
            if d.created_at < since {
                break 'pages;
            }
            read += 1;
            if read > STATS_READ {
                truncated = true;
                break 'pages;
            }
            let last = buckets.len() - 1;
            let i = usize::try_from((d.created_at - since) / width).unwrap_or(0);
            if let Some(b) = buckets.get_mut(i.min(last)) {
                match d.state.as_str() {
                    "succeeded" => b.succeeded += 1,
                    "failed" => b.failed += 1,
                    "cancelled" => b.cancelled += 1,
                    _ => b.pending += 1,
                }
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(Json(json!(StatsView {
        since: tidings_core::rfc3339(since),
        bucket_seconds: width / 1000,
        buckets,
        truncated,
    })))
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "get",
                "/v1/admin/health",
                "operator",
                Auth::Operator,
                "This node's last hour (deliveries/s, success rate, attempt time, queue depth) and the failing or disabled webhooks",
            )
            .returns::<HealthView>(200, "Health"),
            get(health),
        )
        .add(
            Op::new(
                "get",
                "/v1/admin/events",
                "operator",
                Auth::Operator,
                "Find events, newest first, by workspaceId, type and time (since, until); a page may be short with a cursor to look further",
            )
            .paginated()
            .returns::<PageOf<EventSummary>>(200, "A page"),
            get(search_events),
        )
        .add(
            Op::new(
                "get",
                "/v1/settings/webhooks/{id}/stats",
                "integrator",
                Auth::Integrator,
                "A webhook's deliveries over the last `hours` (default 24) in 24 intervals, by state",
            )
            .returns::<StatsView>(200, "The intervals"),
            get(webhook_stats),
        )
}

//! The delivery log and recovery (SPEC §4): list a webhook's deliveries, read one with its
//! attempts, retry one, replay failed ones in a window; and, for the operator, an event with
//! its deliveries.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tidings_store::{AttemptRecord, DeliveryRecord, StoreError};

use super::doc::{Auth, Op, PageOf, Routes};
use crate::auth::extract::{Integrator, Operator};
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Pagination};
use crate::state::AppState;

/// A delivery: one event to one webhook.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The message id (`webhook-id`).
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub workspace_id: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_outcome: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One HTTP attempt.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub id: String,
    pub attempt_no: i64,
    pub started_at: String,
    pub duration_ms: i64,
    /// `ok`, `http_status`, `timeout`, `dns`, `connect`, `tls`, `blocked_address`, `too_large`, `protocol`.
    pub outcome: String,
    pub status: Option<i64>,
    /// Credentials redacted as `***`.
    pub request_headers: BTreeMap<String, String>,
    pub response_headers: BTreeMap<String, String>,
    /// Up to 64 KiB.
    pub response_body: String,
    pub error: Option<String>,
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempts: Vec<AttemptView>,
}

pub fn delivery_view(d: &DeliveryRecord) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        event_id: d.event_id.clone(),
        webhook_id: d.webhook_id.clone(),
        workspace_id: d.workspace_id.clone(),
        state: d.state.clone(),
        attempts: d.attempts,
        next_attempt_at: (d.state == "pending").then(|| tidings_core::rfc3339(d.next_attempt_at)),
        last_status: d.last_status,
        last_outcome: d.last_outcome.clone(),
        created_at: tidings_core::rfc3339(d.created_at),
        updated_at: tidings_core::rfc3339(d.updated_at),
    }
}

fn attempt_view(a: &AttemptRecord) -> AttemptView {
    AttemptView {
        id: a.id.clone(),
        attempt_no: a.attempt_no,
        started_at: tidings_core::rfc3339(a.started_at),
        duration_ms: a.duration_ms,
        outcome: a.outcome.clone(),
        status: a.status,
        request_headers: serde_json::from_str(&a.request_headers).unwrap_or_default(),
        response_headers: serde_json::from_str(&a.response_headers).unwrap_or_default(),
        response_body: a.response_body.clone(),
        error: a.error.clone(),
    }
}

#[derive(Debug, Deserialize)]
struct StateFilter {
    state: Option<String>,
}

async fn webhook_exists(state: &AppState, who: &Integrator, id: &str) -> ApiResult<()> {
    state
        .store
        .webhook_get(&who.workspace.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(())
}

/// A delivery of one of the caller's webhooks.
async fn own_delivery(state: &AppState, who: &Integrator, id: &str) -> ApiResult<DeliveryRecord> {
    let d = state
        .store
        .delivery_get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    webhook_exists(state, who, &d.webhook_id)
        .await
        .map_err(|_| ApiError::not_found("delivery"))?;
    Ok(d)
}

async fn list(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(filter): Query<StateFilter>,
    page: Pagination,
) -> ApiResult<Json<Value>> {
    webhook_exists(&state, &who, &id).await?;
    let wanted = filter.state.filter(|s| !s.is_empty());
    if let Some(s) = &wanted
        && !["pending", "succeeded", "failed", "cancelled"].contains(&s.as_str())
    {
        return Err(ApiError::invalid_field(
            "state",
            "must be pending, succeeded, failed or cancelled",
        ));
    }
    let page = state
        .store
        .delivery_list(&id, wanted.as_deref(), page.cursor.as_deref(), page.limit)
        .await?;
    let data: Vec<DeliveryView> = page.items.iter().map(delivery_view).collect();
    Ok(Json(json!({"data": data, "nextCursor": page.next_cursor})))
}

async fn get_one(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = own_delivery(&state, &who, &id).await?;
    let attempts = state.store.attempts_of(&d.id).await?;
    Ok(Json(json!(DeliveryDetail {
        delivery: delivery_view(&d),
        attempts: attempts.iter().map(attempt_view).collect()
    })))
}

async fn retry(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    own_delivery(&state, &who, &id).await?;
    let d = state
        .store
        .delivery_retry(&id, state.clock.now_ms())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("delivery"),
            e => e.into(),
        })?;
    state.wake.notify_one();
    Ok(Json(json!(delivery_view(&d))))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    /// RFC 3339: replay failed deliveries created at or after this time.
    since: String,
    /// RFC 3339, default now: and before this time.
    until: Option<String>,
}

/// How many deliveries a replay re-queued.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ReplayResult {
    pub replayed: u64,
}

async fn replay(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ReplayInput>,
) -> ApiResult<Json<ReplayResult>> {
    webhook_exists(&state, &who, &id).await?;
    let now = state.clock.now_ms();
    let since = tidings_core::parse_rfc3339(&input.since)
        .ok_or_else(|| ApiError::invalid_field("since", "must be an RFC 3339 timestamp"))?;
    let until = match &input.until {
        Some(u) => tidings_core::parse_rfc3339(u)
            .ok_or_else(|| ApiError::invalid_field("until", "must be an RFC 3339 timestamp"))?,
        None => now + 1,
    };
    if until <= since {
        return Err(ApiError::invalid_field("until", "must be after since"));
    }
    let replayed = state.store.replay(&id, since, until, now).await?;
    if replayed > 0 {
        state.wake.notify_one();
    }
    tracing::info!(webhook = %id, replayed, "failed deliveries replayed");
    Ok(Json(ReplayResult { replayed }))
}

/// An event as the operator sees it, with its deliveries.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub workspace_id: String,
    pub data: Value,
    pub branch_id: Option<String>,
    pub business_unit_id: Option<String>,
    pub subject_id: Option<Value>,
    pub origin_client_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub occurred_at: String,
    pub created_at: String,
    pub suppressed: i64,
    pub deliveries: Vec<DeliveryView>,
}

async fn event(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    let rec = state
        .store
        .event_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    let deliveries = state.store.deliveries_of_event(&id).await?;
    let e = rec.event;
    Ok(Json(EventView {
        id: e.id,
        kind: e.kind,
        workspace_id: e.workspace_id,
        data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        branch_id: e.branch_id,
        business_unit_id: e.business_unit_id,
        subject_id: e.subject_id.and_then(|s| serde_json::from_str(&s).ok()),
        origin_client_id: e.origin_client_id,
        idempotency_key: e.idempotency_key,
        occurred_at: tidings_core::rfc3339(e.occurred_at),
        created_at: tidings_core::rfc3339(e.created_at),
        suppressed: rec.suppressed,
        deliveries: deliveries.iter().map(delivery_view).collect(),
    }))
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "get",
                "/v1/settings/webhooks/{id}/deliveries",
                "integrator",
                Auth::Integrator,
                "The webhook's deliveries, newest first (?state= filters)",
            )
            .paginated()
            .returns::<PageOf<DeliveryView>>(200, "A page"),
            get(list),
        )
        .add(
            Op::new(
                "get",
                "/v1/deliveries/{id}",
                "integrator",
                Auth::Integrator,
                "A delivery with its attempts",
            )
            .returns::<DeliveryDetail>(200, "The delivery"),
            get(get_one),
        )
        .add(
            Op::new(
                "post",
                "/v1/deliveries/{id}/retry",
                "integrator",
                Auth::Integrator,
                "Send a delivery again now (any state)",
            )
            .returns::<DeliveryView>(200, "Queued"),
            post(retry),
        )
        .add(
            Op::new(
                "post",
                "/v1/settings/webhooks/{id}/replay",
                "integrator",
                Auth::Integrator,
                "Re-send the failed deliveries created in a window",
            )
            .body::<ReplayInput>()
            .returns::<ReplayResult>(200, "How many were queued"),
            post(replay),
        )
        .add(
            Op::new(
                "get",
                "/v1/events/{id}",
                "operator",
                Auth::Operator,
                "An event with its deliveries",
            )
            .returns::<EventView>(200, "The event"),
            get(event),
        )
}

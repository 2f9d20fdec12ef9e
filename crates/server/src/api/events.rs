//! Operator API: publishing events (`POST /v1/events`, `POST /v1/events/batch`).
//! A 202 is answered only after the event and its deliveries are committed (group commit).

use super::doc::{Auth, Op, PageOf, Routes};
use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::event::{EventInput, EventType};
use tidings_core::ids;
use tidings_store::publisher::PublishError;
use tidings_store::{PublishOutcome, PublishRequest};

use crate::auth::extract::Operator;
use crate::error::{ApiError, ApiResult};
use crate::input::JsonBody;
use crate::state::AppState;

/// Most events in one `/v1/events/batch` body.
pub const MAX_BATCH: usize = 1000;

/// Validates one event and resolves what fan-out needs: the workspace chain of workspaces whose
/// plan and switch allow integration (the event's own first, then its ancestors).
async fn prepare(
    state: &AppState,
    input: EventInput,
    types: &HashMap<String, EventType>,
    prefix: &str,
) -> ApiResult<PublishRequest> {
    let event = input
        .into_event(ids::event_id(), state.clock.now_ms())
        .map_err(|mut e| {
            for f in &mut e.0 {
                f.field = format!("{prefix}{}", f.field);
            }
            ApiError::from(e)
        })?;
    let Some(event_type) = types.get(&event.kind) else {
        return Err(ApiError::invalid_field(
            &format!("{prefix}type"),
            format!(
                "unknown event type '{}'; the operator defines types at /v1/admin/event-types",
                event.kind
            ),
        ));
    };
    if let Some(schema) = &event_type.schema {
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        state.schemas.check(schema, &data).map_err(|e| {
            ApiError::invalid_field(
                &format!("{prefix}data"),
                format!("does not match the schema of '{}': {e}", event.kind),
            )
        })?;
    }
    let chain = state
        .cache
        .workspace_chain(&state.store, &event.workspace_id)
        .await?;
    if chain.is_empty() {
        return Err(ApiError::invalid_field(
            &format!("{prefix}workspaceId"),
            format!("no workspace '{}'", event.workspace_id),
        ));
    }
    // A webhook receives events only while its own workspace may integrate and has its
    // notifications on.
    let workspace_chain: Vec<String> = chain
        .iter()
        .filter(|w| {
            w.integration_enabled
                && w.notifications_enabled
                && state.config.plan(&w.plan).is_some_and(|p| p.integration)
        })
        .map(|w| w.id.clone())
        .collect();
    Ok(PublishRequest {
        deliver: !workspace_chain.is_empty(),
        workspace_chain,
        event,
    })
}

async fn event_types(state: &AppState) -> ApiResult<std::sync::Arc<HashMap<String, EventType>>> {
    Ok(state.cache.event_types(&state.store).await?)
}

/// What publishing one event did.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct OutcomeView {
    /// The event id.
    pub id: String,
    /// Webhooks that matched and will be notified.
    pub deliveries: i64,
    /// Webhooks that matched but belong to the client that caused the event (no echo).
    pub suppressed: i64,
    /// True when this repeats an earlier publish with the same idempotency key.
    pub duplicate: bool,
}

fn outcome_json(o: &PublishOutcome) -> Value {
    json!(OutcomeView {
        id: o.id.clone(),
        deliveries: o.deliveries,
        suppressed: o.suppressed,
        duplicate: o.duplicate
    })
}

fn publish_error(e: PublishError) -> ApiError {
    match e {
        PublishError::Store(e) => {
            tracing::error!(error = ?e, "publish failed");
            ApiError::unavailable("the event could not be stored; nothing was accepted, retry")
        }
        PublishError::Closed => ApiError::unavailable("the server is shutting down; retry"),
    }
}

/// The `Idempotency-Key` header, when sent.
fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::invalid_field("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()
}

async fn publish(
    _: Operator,
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(mut input): JsonBody<EventInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(key) = idempotency_header(&headers)? {
        input.idempotency_key = Some(key);
    }
    let types = event_types(&state).await?;
    let req = prepare(&state, input, &types, "").await?;
    let outcome = state
        .publisher
        .publish(vec![req])
        .await
        .map_err(publish_error)?;
    let o = outcome
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("no outcome"))?;
    if !o.duplicate {
        state.metrics.events_published(1);
    }
    Ok((StatusCode::ACCEPTED, Json(outcome_json(&o))))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    events: Vec<EventInput>,
}

async fn publish_batch(
    _: Operator,
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<Batch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    let types = event_types(&state).await?;
    let mut reqs = Vec::with_capacity(batch.events.len());
    for (i, input) in batch.events.into_iter().enumerate() {
        reqs.push(prepare(&state, input, &types, &format!("events[{i}].")).await?);
    }
    let outcomes = state.publisher.publish(reqs).await.map_err(publish_error)?;
    state
        .metrics
        .events_published(outcomes.iter().filter(|o| !o.duplicate).count() as u64);
    let data: Vec<Value> = outcomes.iter().map(outcome_json).collect();
    Ok((StatusCode::ACCEPTED, Json(json!({"data": data}))))
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "post",
                "/v1/events",
                "operator",
                Auth::Operator,
                "Publish an event; 202 once it and its deliveries are durable",
            )
            .body::<EventInput>()
            .returns::<OutcomeView>(202, "Accepted"),
            post(publish),
        )
        .add(
            Op::new(
                "post",
                "/v1/events/batch",
                "operator",
                Auth::Operator,
                "Publish up to 1000 events in one durable commit",
            )
            .body::<Batch>()
            .returns::<PageOf<OutcomeView>>(202, "Accepted, outcomes in order"),
            post(publish_batch),
        )
}

//! The emulator (seeds 000/001): sends one notification now, built exactly like a real one
//! (same headers, signature, envelope and options), and reports the request and the response.
//! Nothing is stored: an emulated notification is not a delivery.

use super::doc::{Auth, Op, Routes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::event::Event;
use tidings_core::ids;
use tidings_core::webhook::{Webhook, WebhookInput};
use tidings_core::workspace::Workspace;

use crate::auth::extract::Integrator;
use crate::delivery::sender::{MAX_RESPONSE_BODY, Notification, Outcome};
use crate::emulator_limits::Refused;
use crate::error::{ApiError, ApiResult};
use crate::input::JsonBody;
use crate::state::AppState;

/// What to emulate: an event type (default: the webhook's first trigger), its data (default:
/// the type's sample), and the branch or business unit the event is of (default: none).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A JSON object.
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub data: Option<Value>,
    /// A branch id of the workspace.
    pub branch_id: Option<String>,
    /// A business unit id of the workspace.
    pub business_unit_id: Option<String>,
}

/// `id`, if given, must be one of `units` (a workspace's branches or business units).
fn known_unit(
    field: &str,
    id: Option<String>,
    units: &[tidings_core::workspace::Unit],
) -> ApiResult<Option<String>> {
    match id.filter(|i| !i.is_empty()) {
        Some(i) if !units.iter().any(|u| u.id == i) => Err(ApiError::invalid_field(
            field,
            format!("the workspace has no such id '{i}'"),
        )),
        other => Ok(other),
    }
}

/// `429` for an emulation over its workspace's limits.
fn too_many(refused: Refused) -> ApiError {
    let (message, wait) = match refused {
        Refused::Busy(n) => (
            format!("the workspace has {n} emulations in flight already; wait for one to finish"),
            1,
        ),
        Refused::Rate(wait) => (
            "the workspace started its emulations for this minute".to_string(),
            crate::throttle::retry_after_secs(wait),
        ),
    };
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
    e.retry_after = Some(wait);
    e
}

/// Sends the notification and describes what happened.
pub async fn emulate(
    state: &AppState,
    workspace: &Workspace,
    webhook: &Webhook,
    input: TestInput,
) -> ApiResult<Value> {
    let kind = input
        .kind
        .or_else(|| webhook.spec.triggers.first().cloned())
        .unwrap_or_default();
    let types = state.cache.event_types(&state.store).await?;
    let Some(event_type) = types.get(&kind).cloned() else {
        return Err(ApiError::invalid_field(
            "type",
            format!("unknown event type '{kind}'"),
        ));
    };
    let data = input.data.unwrap_or_else(|| event_type.sample.clone());
    if !data.is_object() {
        return Err(ApiError::invalid_field("data", "must be a JSON object"));
    }
    let branch_id = known_unit("branchId", input.branch_id, &workspace.branches)?;
    let business_unit_id = known_unit(
        "businessUnitId",
        input.business_unit_id,
        &workspace.business_units,
    )?;
    let now = state.clock.now_ms();
    let event = Event {
        id: ids::event_id(),
        kind: kind.clone(),
        workspace_id: workspace.id.clone(),
        data: data.to_string(),
        branch_id,
        business_unit_id,
        subject_id: None,
        sender: None,
        origin_client_id: None,
        idempotency_key: None,
        occurred_at: now,
        created_at: now,
    };
    let message_id = ids::message_id();
    let _running = state
        .emulator_limits
        .start(&workspace.id)
        .map_err(|refused| {
            state.metrics.emulated("refused");
            too_many(refused)
        })?;
    let result = state
        .sender
        .send(
            Notification {
                webhook,
                event: &event,
                message_id: &message_id,
                status_path: event_type.status_path.as_deref(),
                company_fields: Some(&workspace.fields),
            },
            now,
        )
        .await;
    if result.outcome == Outcome::TooLarge && result.request_headers.as_str().is_empty() {
        // Nothing was sent: the options shape a body over `delivery.max_payload_bytes`.
        let spec = &webhook.spec;
        let field = if !spec.field_mapping.is_empty() {
            "fieldMapping"
        } else if !spec.extra_fields.is_empty() {
            "extraFields"
        } else {
            "data"
        };
        return Err(ApiError::invalid_field(
            field,
            result.error.unwrap_or_default(),
        ));
    }
    state.metrics.emulated(result.outcome.as_str());
    tracing::info!(webhook = %webhook.id, outcome = result.outcome.as_str(), status = ?result.status, "emulated notification sent");
    let response = result.status.map(|status| ReportResponse {
        status,
        headers: result.response_headers.to_map(),
        body: result.response_body,
    });
    Ok(json!(Report {
        message_id,
        kind,
        outcome: result.outcome.as_str().to_string(),
        duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        error: result.error,
        request: ReportRequest {
            method: "POST".into(),
            url: webhook.spec.url.clone(),
            headers: result.request_headers.to_map(),
            body: String::from_utf8_lossy(
                &result.request_body[..result.request_body.len().min(MAX_RESPONSE_BODY)],
            )
            .into_owned(),
        },
        response,
    }))
}

/// What the emulator sent and received.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `ok`, `http_status`, `timeout`, `dns`, `connect`, `tls`, `blocked_address`, `too_large`, `protocol`.
    pub outcome: String,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub request: ReportRequest,
    /// Null when no HTTP response arrived.
    pub response: Option<ReportResponse>,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ReportRequest {
    pub method: String,
    pub url: String,
    /// Credentials redacted as `***`.
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ReportResponse {
    pub status: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    /// Up to 64 KiB.
    pub body: String,
}

/// `POST /v1/emulator`: emulate for a webhook that is not saved. The body is a webhook body, or
/// `{"webhook": {...}, "type": ..., "data": ...}` to choose the event too.
async fn emulator(
    who: Integrator,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (webhook_body, test) = match body {
        Value::Object(mut m) if m.contains_key("webhook") => {
            let webhook = m.remove("webhook").unwrap_or_default();
            let test: TestInput =
                crate::input::parse_json(Value::Object(m).to_string().as_bytes())?;
            (webhook, test)
        }
        other => (other, TestInput::default()),
    };
    let input: WebhookInput = crate::input::parse_json(webhook_body.to_string().as_bytes())?;
    let types = state.cache.event_types(&state.store).await?;
    let (spec, _) = input.into_spec(|t| types.contains_key(t))?;
    let now = state.clock.now_ms();
    let webhook = Webhook {
        id: format!("emulator-{}", ids::webhook_id(now)),
        workspace_id: who.workspace.id.clone(),
        spec,
        updated: now,
        disabled_reason: None,
        previous_secret: None,
        owner_client_id: who.client_id.clone(),
        created_at: now,
    };
    emulate(&state, &who.workspace, &webhook, test)
        .await
        .map(Json)
}

/// `POST /v1/settings/webhooks/{id}/test`: the emulator for a saved webhook.
async fn test(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<JsonBody<TestInput>>,
) -> ApiResult<Json<Value>> {
    let webhook = state
        .store
        .webhook_get(&who.workspace.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let input = body.map(|b| b.0).unwrap_or_default();
    emulate(&state, &who.workspace, &webhook, input)
        .await
        .map(Json)
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "post",
                "/v1/settings/webhooks/{id}/test",
                "integrator",
                Auth::Integrator,
                "Emulator: send one notification now and report it",
            )
            .optional_body::<TestInput>()
            .returns::<Report>(200, "What was sent and received"),
            post(test),
        )
        .add(
            Op::new(
                "post",
                "/v1/emulator",
                "integrator",
                Auth::Integrator,
                "Emulator for an unsaved webhook: a webhook body, or {webhook, type, data}",
            )
            .body::<serde_json::Value>()
            .returns::<Report>(200, "What was sent and received"),
            post(emulator),
        )
}

//! Integrator API: webhook configurations (`/v1/settings/webhooks`), with the seed's fields
//! and paths. Every request acts on the workspace in the `Workspace` header.

use super::doc::{Auth, Op, PageOf, Routes};
use axum::routing::put;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::ids;
use tidings_core::webhook::{Status, Warnings, Webhook, WebhookInput, WebhookSpec};
use tidings_core::{FieldError, ValidationError};
use tidings_store::StoreError;

use crate::auth::extract::Integrator;
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Pagination};
use crate::state::AppState;

/// A webhook as the API shows it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Notes about accepted but questionable settings (e.g. plain http).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// After a rotation: until when the previous secret also signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
}

fn view(w: &Webhook, warnings: &Warnings) -> Value {
    json!(WebhookView {
        webhook: w.clone(),
        warnings: warnings.clone(),
        previous_secret_expires_at: w
            .previous_secret
            .as_ref()
            .map(|p| tidings_core::rfc3339(p.1)),
    })
}

async fn load(state: &AppState, who: &Integrator, id: &str) -> ApiResult<Webhook> {
    state
        .store
        .webhook_get(&who.workspace.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// A listen session's webhook changes only with its session (`tidings listen`).
fn not_a_session(w: &Webhook) -> ApiResult<()> {
    if w.spec.url.starts_with(crate::listen::SCHEME) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "listen_session",
            "this webhook is a listen session's (tidings listen): it changes with its session; delete it to end the session",
        ));
    }
    Ok(())
}

/// The next `updated` value: now, but always later than the previous one.
fn bump(state: &AppState, previous: i64) -> i64 {
    state.clock.now_ms().max(previous + 1)
}

/// Branches and business units a webhook filters on must exist in its workspace.
fn check_units(who: &Integrator, spec: &WebhookSpec) -> ApiResult<()> {
    let mut errors = Vec::new();
    for (field, wanted, known) in [
        ("branches", &spec.branches, &who.workspace.branches),
        (
            "businessUnits",
            &spec.business_units,
            &who.workspace.business_units,
        ),
    ] {
        for (i, id) in wanted.iter().enumerate() {
            if !known.iter().any(|u| &u.id == id) {
                errors.push(FieldError {
                    field: format!("{field}[{i}]"),
                    message: format!(
                        "workspace '{}' has no {} '{id}'",
                        who.workspace.id,
                        if field == "branches" {
                            "branch"
                        } else {
                            "business unit"
                        }
                    ),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationError(errors).into())
    }
}

/// Turning a webhook on again clears the reason Tidings disabled it for.
fn reenable(w: &mut Webhook, next: &WebhookSpec) {
    if next.status == Status::Enabled {
        w.disabled_reason = None;
    }
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("webhook"),
        e => e.into(),
    }
}

async fn create(
    who: Integrator,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let types = state.cache.event_types(&state.store).await?;
    let (spec, warnings) = input.into_spec(|t| types.contains_key(t))?;
    let now = state.clock.now_ms();
    let webhook = insert(&state, &who, ids::webhook_id(now), spec).await?;
    Ok((StatusCode::CREATED, Json(view(&webhook, &warnings))))
}

/// Stores a new webhook of the caller's workspace within its plan's limit (also the webhook of
/// a listen session).
pub(crate) async fn insert(
    state: &AppState,
    who: &Integrator,
    id: String,
    spec: WebhookSpec,
) -> ApiResult<Webhook> {
    check_units(who, &spec)?;
    let max = state
        .config
        .plan(&who.workspace.plan)
        .map_or(0, |p| p.max_webhooks);
    let now = state.clock.now_ms();
    let webhook = Webhook {
        id,
        workspace_id: who.workspace.id.clone(),
        spec,
        updated: now,
        disabled_reason: None,
        previous_secret: None,
        owner_client_id: who.client_id.clone(),
        created_at: now,
    };
    state
        .store
        .webhook_create(&webhook, max)
        .await
        .map_err(|e| match e {
            StoreError::LimitReached(max) => ApiError::forbidden(
                "plan_upgrade_required",
                format!(
                    "the plan '{}' allows {max} webhooks per workspace; delete one or upgrade the plan",
                    who.workspace.plan
                ),
            ),
            e => e.into(),
        })?;
    tracing::info!(workspace = %webhook.workspace_id, webhook = %webhook.id, "webhook created");
    Ok(webhook)
}

async fn list(
    who: Integrator,
    State(state): State<AppState>,
    page: Pagination,
) -> ApiResult<Json<Value>> {
    let page = state
        .store
        .webhook_list(&who.workspace.id, page.cursor.as_deref(), page.limit)
        .await?;
    let data: Vec<Value> = page.items.iter().map(|w| view(w, &Vec::new())).collect();
    Ok(Json(json!({"data": data, "nextCursor": page.next_cursor})))
}

async fn get_one(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let w = load(&state, &who, &id).await?;
    Ok(Json(view(&w, &Vec::new())))
}

/// `PUT`: replaces the configuration; the required fields of `POST` are required here too. An
/// omitted `secret` keeps the current one.
async fn replace(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(mut input): JsonBody<WebhookInput>,
) -> ApiResult<Json<Value>> {
    let w = load(&state, &who, &id).await?;
    not_a_session(&w)?;
    let types = state.cache.event_types(&state.store).await?;
    if input.secret.is_none() {
        input.secret = Some(w.spec.secret.clone());
    }
    let (spec, warnings) = input.into_spec(|t| types.contains_key(t))?;
    save(&state, &who, w, spec, &warnings).await
}

/// `PATCH`: changes only the fields sent.
async fn patch(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> ApiResult<Json<Value>> {
    let w = load(&state, &who, &id).await?;
    not_a_session(&w)?;
    let types = state.cache.event_types(&state.store).await?;
    let (spec, warnings) = input.merge_into(w.spec.clone(), |t| types.contains_key(t))?;
    save(&state, &who, w, spec, &warnings).await
}

/// Stores a changed configuration (after `PUT` or `PATCH`): checks the units, clears the
/// disabled reason when it is switched on again, bumps `updated`.
async fn save(
    state: &AppState,
    who: &Integrator,
    mut w: Webhook,
    spec: WebhookSpec,
    warnings: &Warnings,
) -> ApiResult<Json<Value>> {
    check_units(who, &spec)?;
    reenable(&mut w, &spec);
    w.spec = spec;
    w.updated = bump(state, w.updated);
    state.store.webhook_update(&w).await.map_err(not_found)?;
    Ok(Json(view(&w, warnings)))
}

async fn delete(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .webhook_delete(&who.workspace.id, &id, state.clock.now_ms())
        .await
        .map_err(not_found)?;
    tracing::info!(workspace = %who.workspace.id, webhook = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// How long a rotated-out secret keeps signing.
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    secret: Option<String>,
}

/// `POST .../secret/rotate`: a new secret (given or generated); the previous one keeps signing
/// for 24 hours, so notifications carry two signatures meanwhile.
async fn rotate(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<JsonBody<RotateInput>>,
) -> ApiResult<Json<Value>> {
    let mut w = load(&state, &who, &id).await?;
    let secret = body
        .and_then(|b| b.0.secret)
        .unwrap_or_else(tidings_core::secret::webhook_secret);
    if secret.is_empty() || secret.len() > 512 {
        return Err(ApiError::invalid_field(
            "secret",
            "must be 1-512 characters",
        ));
    }
    let now = state.clock.now_ms();
    let expires = now + ROTATION_OVERLAP_MS;
    w.previous_secret = Some((std::mem::replace(&mut w.spec.secret, secret), expires));
    w.updated = bump(&state, w.updated);
    state.store.webhook_update(&w).await.map_err(not_found)?;
    tracing::info!(workspace = %w.workspace_id, webhook = %w.id, "webhook secret rotated");
    Ok(Json(view(&w, &Vec::new())))
}

/// What `POST` and `PUT` require (`PATCH` takes any of the fields).
const WEBHOOK_REQUIRED: &[&str] = &["applyToAllDescendants", "url", "triggers", "status"];

pub fn routes() -> Routes {
    let base = "/v1/settings/webhooks";
    let one = "/v1/settings/webhooks/{id}";
    Routes::new()
        .add(
            Op::new(
                "post",
                base,
                "integrator",
                Auth::Integrator,
                "Create a webhook configuration",
            )
            .body_schema(|g| crate::api::doc::requiring::<WebhookInput>(g, WEBHOOK_REQUIRED))
            .returns::<WebhookView>(201, "Created"),
            post(create),
        )
        .add(
            Op::new(
                "get",
                base,
                "integrator",
                Auth::Integrator,
                "List the workspace's webhooks",
            )
            .paginated()
            .returns::<PageOf<WebhookView>>(200, "A page"),
            get(list),
        )
        .add(
            Op::new("get", one, "integrator", Auth::Integrator, "Get a webhook")
                .returns::<WebhookView>(200, "The webhook"),
            get(get_one),
        )
        .add(
            Op::new(
                "put",
                one,
                "integrator",
                Auth::Integrator,
                "Replace a webhook (an omitted secret is kept)",
            )
            .body_schema(|g| crate::api::doc::requiring::<WebhookInput>(g, WEBHOOK_REQUIRED))
            .returns::<WebhookView>(200, "Replaced"),
            put(replace),
        )
        .add(
            Op::new(
                "patch",
                one,
                "integrator",
                Auth::Integrator,
                "Change the fields sent",
            )
            .body::<WebhookInput>()
            .returns::<WebhookView>(200, "Changed"),
            axum::routing::patch(patch),
        )
        .add(
            Op::new(
                "delete",
                one,
                "integrator",
                Auth::Integrator,
                "Delete a webhook; pending deliveries are cancelled",
            )
            .empty(204, "Deleted"),
            axum::routing::delete(delete),
        )
        .add(
            Op::new(
                "post",
                "/v1/settings/webhooks/{id}/secret/rotate",
                "integrator",
                Auth::Integrator,
                "New secret; the previous one keeps signing for 24 hours",
            )
            .optional_body::<RotateInput>()
            .returns::<WebhookView>(
                200,
                "The webhook with its new secret and previousSecretExpiresAt",
            ),
            post(rotate),
        )
}

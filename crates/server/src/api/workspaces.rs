//! Operator API: workspaces (`/v1/admin/workspaces`).

use super::doc::{Auth, Op, PageOf, Routes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::routing::{delete, patch, post, put};
use serde::Serialize;
use serde_json::{Value, json};
use tidings_core::workspace::{Workspace, WorkspaceInput, WorkspaceType};

use crate::auth::extract::Operator;
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Pagination};
use crate::state::AppState;

/// A workspace as the API shows it.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView<'a> {
    #[serde(flatten)]
    ws: &'a Workspace,
    created_at: String,
}

pub fn view(ws: &Workspace) -> Value {
    json!(WorkspaceView {
        ws,
        created_at: tidings_core::rfc3339(ws.created_at)
    })
}

/// Checks what needs the store or the configuration: the plan exists, the parent is a channel.
async fn check_references(state: &AppState, ws: &Workspace) -> ApiResult<()> {
    if state.config.plan(&ws.plan).is_none() {
        let names: Vec<_> = state.config.plans.keys().map(String::as_str).collect();
        return Err(ApiError::invalid_field(
            "plan",
            format!(
                "unknown plan '{}'; configured: {}",
                ws.plan,
                names.join(", ")
            ),
        ));
    }
    if let Some(parent_id) = &ws.parent_id {
        if parent_id == &ws.id {
            return Err(ApiError::invalid_field(
                "parentId",
                "a workspace cannot be its own parent",
            ));
        }
        match state.store.workspace_get(parent_id).await? {
            Some(p) if p.kind == WorkspaceType::Channel => {}
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "parentId",
                    format!("'{parent_id}' is not a channel workspace"),
                ));
            }
            None => {
                return Err(ApiError::invalid_field(
                    "parentId",
                    format!("no workspace '{parent_id}'"),
                ));
            }
        }
    }
    Ok(())
}

async fn create(
    _: Operator,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<WorkspaceInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = input
        .id
        .clone()
        .ok_or_else(|| ApiError::invalid_field("id", "is required"))?;
    let ws = input.into_workspace(id, &state.config.default_plan, state.clock.now_ms())?;
    check_references(&state, &ws).await?;
    state.store.workspace_create(&ws).await?;
    state.cache.invalidate_workspaces();
    tracing::info!(workspace = %ws.id, "workspace created");
    Ok((StatusCode::CREATED, Json(view(&ws))))
}

async fn list(
    _: Operator,
    State(state): State<AppState>,
    page: Pagination,
) -> ApiResult<Json<Value>> {
    let page = state
        .store
        .workspace_list(page.cursor.as_deref(), page.limit)
        .await?;
    let data: Vec<Value> = page.items.iter().map(view).collect();
    Ok(Json(json!({"data": data, "nextCursor": page.next_cursor})))
}

async fn get_one(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let ws = load(&state, &id).await?;
    Ok(Json(view(&ws)))
}

/// The workspace, or 404.
async fn load(state: &AppState, id: &str) -> ApiResult<Workspace> {
    state
        .store
        .workspace_get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))
}

/// `PUT` replaces the workspace (omitted optional fields take their defaults); `PATCH` changes
/// only the fields sent.
async fn replace(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<WorkspaceInput>,
) -> ApiResult<Json<Value>> {
    let existing = load(&state, &id).await?;
    save(&state, existing, input).await
}

async fn patch_one(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let existing = load(&state, &id).await?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    // Merge onto the current representation, then validate the result as a whole.
    let mut merged = serde_json::to_value(&existing).unwrap_or_default();
    if let Value::Object(m) = &mut merged {
        m.extend(patch);
    }
    let input: WorkspaceInput = crate::input::parse_json(merged.to_string().as_bytes())?;
    save(&state, existing, input).await
}

async fn save(
    state: &AppState,
    existing: Workspace,
    mut input: WorkspaceInput,
) -> ApiResult<Json<Value>> {
    // The portal's switch belongs to the integrator: a PUT that does not name it keeps it.
    input.notifications_enabled = input
        .notifications_enabled
        .or(Some(existing.notifications_enabled));
    if input.id.as_ref().is_some_and(|i| i != &existing.id) {
        return Err(ApiError::invalid_field("id", "cannot be changed"));
    }
    let ws = input.into_workspace(
        existing.id.clone(),
        &state.config.default_plan,
        existing.created_at,
    )?;
    check_references(state, &ws).await?;
    state.store.workspace_update(&ws).await?;
    state.cache.invalidate_workspaces();
    Ok(Json(view(&ws)))
}

async fn remove(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .workspace_delete(&id, state.clock.now_ms())
        .await
        .map_err(|e| match e {
            tidings_store::StoreError::NotFound => ApiError::not_found("workspace"),
            e => e.into(),
        })?;
    state.cache.invalidate_workspaces();
    Ok(StatusCode::NO_CONTENT)
}

/// A configured plan (plans live in the configuration, not the database).
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub name: String,
    pub integration: bool,
    pub max_webhooks: i64,
    /// The plan new workspaces get when none is named.
    pub default: bool,
}

async fn plans(_: Operator, State(state): State<AppState>) -> Json<Value> {
    let data: Vec<PlanView> = state
        .config
        .plans
        .iter()
        .map(|(name, p)| PlanView {
            name: name.clone(),
            integration: p.integration,
            max_webhooks: p.max_webhooks,
            default: *name == state.config.default_plan,
        })
        .collect();
    Json(json!({"data": data, "nextCursor": null}))
}

pub fn routes() -> Routes {
    let one = "/v1/admin/workspaces/{id}";
    Routes::new()
        .add(
            Op::new(
                "get",
                "/v1/admin/plans",
                "operator",
                Auth::Operator,
                "The configured plans",
            )
            .returns::<PageOf<PlanView>>(200, "Every plan (one page)"),
            get(plans),
        )
        .add(
            Op::new(
                "post",
                "/v1/admin/workspaces",
                "operator",
                Auth::Operator,
                "Create a workspace",
            )
            .body_schema(|g| crate::api::doc::requiring::<WorkspaceInput>(g, &["id", "name"]))
            .returns::<WorkspaceView<'static>>(201, "Created"),
            post(create),
        )
        .add(
            Op::new(
                "get",
                "/v1/admin/workspaces",
                "operator",
                Auth::Operator,
                "List workspaces",
            )
            .paginated()
            .returns::<PageOf<WorkspaceView<'static>>>(200, "A page"),
            get(list),
        )
        .add(
            Op::new("get", one, "operator", Auth::Operator, "Get a workspace")
                .returns::<WorkspaceView<'static>>(200, "The workspace"),
            get(get_one),
        )
        .add(
            Op::new(
                "put",
                one,
                "operator",
                Auth::Operator,
                "Replace a workspace (omitted optional fields take their defaults)",
            )
            .body_schema(|g| crate::api::doc::shaped::<WorkspaceInput>(g, &["name"], &["id"]))
            .returns::<WorkspaceView<'static>>(200, "Replaced"),
            put(replace),
        )
        .add(
            Op::new(
                "patch",
                one,
                "operator",
                Auth::Operator,
                "Change the fields sent",
            )
            .body_schema(|g| crate::api::doc::shaped::<WorkspaceInput>(g, &[], &["id"]))
            .returns::<WorkspaceView<'static>>(200, "Changed"),
            patch(patch_one),
        )
        .add(
            Op::new(
                "delete",
                one,
                "operator",
                Auth::Operator,
                "Delete a workspace, its clients and webhooks (409 while it has children)",
            )
            .empty(204, "Deleted"),
            delete(remove),
        )
}

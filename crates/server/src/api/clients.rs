//! Operator API: integration clients (`/v1/admin/workspaces/{id}/clients`). The secret is
//! returned on creation and regeneration only; the store keeps its hash.

use super::doc::{Auth, Op, PageOf, Routes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::{ids, secret};
use tidings_store::{IntegrationClient, StoreError};

use crate::auth::extract::Operator;
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Pagination};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    #[serde(default)]
    name: Option<String>,
}

/// An integration client as the API shows it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    pub client_id: String,
    pub workspace_id: String,
    pub name: String,
    pub generation: i64,
    pub created_at: String,
    pub regenerated_at: Option<String>,
    /// Present only in the answers to create and regenerate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

fn view(c: &IntegrationClient, secret: Option<&str>) -> Value {
    json!(ClientView {
        client_id: c.client_id.clone(),
        workspace_id: c.workspace_id.clone(),
        name: c.name.clone(),
        generation: c.generation,
        created_at: tidings_core::rfc3339(c.created_at),
        regenerated_at: c.regenerated_at.map(tidings_core::rfc3339),
        client_secret: secret.map(str::to_string),
    })
}

async fn workspace_exists(state: &AppState, id: &str) -> ApiResult<()> {
    state
        .store
        .workspace_get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    Ok(())
}

async fn create(
    _: Operator,
    State(state): State<AppState>,
    Path(ws): Path<String>,
    body: Option<JsonBody<CreateClient>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    workspace_exists(&state, &ws).await?;
    let name = body.and_then(|b| b.0.name).unwrap_or_default();
    if name.len() > 256 {
        return Err(ApiError::invalid_field(
            "name",
            "must be at most 256 characters",
        ));
    }
    let secret = secret::random_token();
    let client = IntegrationClient {
        client_id: ids::client_id(),
        workspace_id: ws,
        name,
        secret_hash: secret::hash(secret.expose()),
        generation: 1,
        created_at: state.clock.now_ms(),
        regenerated_at: None,
    };
    state.store.client_create(&client).await?;
    tracing::info!(workspace = %client.workspace_id, client_id = %client.client_id, "integration client created");
    Ok((
        StatusCode::CREATED,
        Json(view(&client, Some(secret.expose()))),
    ))
}

async fn list(
    _: Operator,
    State(state): State<AppState>,
    Path(ws): Path<String>,
    page: Pagination,
) -> ApiResult<Json<Value>> {
    workspace_exists(&state, &ws).await?;
    let page = state
        .store
        .client_list(&ws, page.cursor.as_deref(), page.limit)
        .await?;
    let data: Vec<Value> = page.items.iter().map(|c| view(c, None)).collect();
    Ok(Json(json!({"data": data, "nextCursor": page.next_cursor})))
}

async fn regenerate(
    _: Operator,
    State(state): State<AppState>,
    Path((ws, client_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let secret = secret::random_token();
    let client = state
        .store
        .client_regenerate(
            &ws,
            &client_id,
            &secret::hash(secret.expose()),
            state.clock.now_ms(),
        )
        .await
        .map_err(not_found)?;
    tracing::info!(workspace = %ws, client_id = %client_id, generation = client.generation, "client credentials regenerated");
    Ok(Json(view(&client, Some(secret.expose()))))
}

async fn remove(
    _: Operator,
    State(state): State<AppState>,
    Path((ws, client_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .client_delete(&ws, &client_id)
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("client"),
        e => e.into(),
    }
}

pub fn routes() -> Routes {
    let base = "/v1/admin/workspaces/{id}/clients";
    Routes::new()
        .add(
            Op::new(
                "post",
                base,
                "operator",
                Auth::Operator,
                "Create integration client credentials (the secret is returned only here)",
            )
            .optional_body::<CreateClient>()
            .returns::<ClientView>(201, "Created, with clientSecret"),
            post(create),
        )
        .add(
            Op::new(
                "get",
                base,
                "operator",
                Auth::Operator,
                "List a workspace's clients (without secrets)",
            )
            .paginated()
            .returns::<PageOf<ClientView>>(200, "A page"),
            get(list),
        )
        .add(
            Op::new(
                "post",
                "/v1/admin/workspaces/{id}/clients/{client_id}/regenerate",
                "operator",
                Auth::Operator,
                "New secret; the old one and every token issued under it stop working",
            )
            .returns::<ClientView>(200, "The client with its new clientSecret"),
            post(regenerate),
        )
        .add(
            Op::new(
                "delete",
                "/v1/admin/workspaces/{id}/clients/{client_id}",
                "operator",
                Auth::Operator,
                "Delete a client",
            )
            .empty(204, "Deleted"),
            delete(remove),
        )
}

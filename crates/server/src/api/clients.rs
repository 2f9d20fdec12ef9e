//! Operator API: integration clients (`/v1/admin/workspaces/{id}/clients`). The secret is
//! returned on creation and regeneration only; the store keeps its hash.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::{ids, secret};
use tidings_store::{Client, StoreError};

use crate::auth::extract::Operator;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Pagination};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateClient {
    #[serde(default)]
    name: Option<String>,
}

fn view(c: &Client, secret: Option<&str>) -> Value {
    let mut v = json!({
        "clientId": c.client_id,
        "workspaceId": c.workspace_id,
        "name": c.name,
        "generation": c.generation,
        "createdAt": tidings_core::rfc3339(c.created_at),
        "regeneratedAt": c.regenerated_at.map(tidings_core::rfc3339),
    });
    if let Some(s) = secret {
        v["clientSecret"] = json!(s);
    }
    v
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
    let client = Client {
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

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/admin/workspaces/{id}/clients", get(list).post(create))
        .route(
            "/v1/admin/workspaces/{id}/clients/{client_id}/regenerate",
            post(regenerate),
        )
        .route(
            "/v1/admin/workspaces/{id}/clients/{client_id}",
            delete(remove),
        )
}

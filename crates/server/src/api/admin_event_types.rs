//! Operator API: the event-type catalog (`/v1/admin/event-types`). Integrators read it at
//! `GET /v1/event-types`.

use super::doc::{Auth, Op, PageOf, Routes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::event::EventType;
use tidings_store::StoreError;

use crate::auth::extract::Operator;
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Pagination};
use crate::state::AppState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventTypeInput {
    /// 1–128 of letters, digits, `.`, `_`, `-` and `:`; on `PUT` it comes from the path.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// A JSON object: example data of the type (default `{}`).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    sample: Option<Value>,
    #[serde(default)]
    status_path: Option<String>,
    /// A JSON Schema (an object or a boolean) that published data must match.
    #[serde(default)]
    #[schemars(extend("type" = ["object", "boolean", "null"]))]
    schema: Option<Value>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

fn build(name: String, input: EventTypeInput) -> ApiResult<EventType> {
    if !valid_name(&name) {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1-128 characters of letters, digits, '.', '_', '-' or ':'",
        ));
    }
    let sample = input.sample.unwrap_or_else(|| json!({}));
    if !sample.is_object() {
        return Err(ApiError::invalid_field(
            "sample",
            "must be a JSON object (a realistic `data`)",
        ));
    }
    if let Some(p) = &input.status_path
        && !(p.is_empty() || p.starts_with('/'))
    {
        return Err(ApiError::invalid_field(
            "statusPath",
            "must be a JSON pointer into data, such as /status",
        ));
    }
    if let Some(schema) = &input.schema {
        let validator = crate::schemas::compile(schema).map_err(|e| {
            ApiError::invalid_field("schema", format!("is not a valid JSON Schema: {e}"))
        })?;
        if let Err(e) = validator.validate(&sample) {
            return Err(ApiError::invalid_field(
                "sample",
                format!("does not satisfy the schema: {e}"),
            ));
        }
    }
    Ok(EventType {
        name,
        description: input.description,
        sample,
        status_path: input.status_path,
        schema: input.schema,
    })
}

/// The catalog page after `cursor` (names sort).
pub async fn page(state: &AppState, p: &Pagination) -> ApiResult<Value> {
    let all = state.store.event_type_list().await?;
    let after: Vec<&EventType> = all
        .iter()
        .filter(|t| p.cursor.as_deref().is_none_or(|c| t.name.as_str() > c))
        .collect();
    let limit = usize::try_from(p.limit).unwrap_or(50);
    let next = (after.len() > limit).then(|| after[limit - 1].name.clone());
    let data: Vec<&EventType> = after.into_iter().take(limit).collect();
    Ok(json!({"data": data, "nextCursor": next}))
}

async fn list(_: Operator, State(state): State<AppState>, p: Pagination) -> ApiResult<Json<Value>> {
    page(&state, &p).await.map(Json)
}

async fn find(state: &AppState, name: &str) -> ApiResult<EventType> {
    state
        .store
        .event_type_list()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::not_found("event type"))
}

async fn create(
    _: Operator,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<EventTypeInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid_field("name", "is required"))?;
    let t = build(name, input)?;
    state
        .store
        .event_type_create(&t, state.clock.now_ms())
        .await?;
    state.cache.invalidate_event_types();
    Ok((StatusCode::CREATED, Json(json!(t))))
}

async fn get_one(
    _: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(find(&state, &name).await?)))
}

async fn replace(
    _: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(input): JsonBody<EventTypeInput>,
) -> ApiResult<Json<Value>> {
    if input.name.as_ref().is_some_and(|n| n != &name) {
        return Err(ApiError::invalid_field("name", "cannot be changed"));
    }
    let t = build(name, input)?;
    state.store.event_type_update(&t).await.map_err(not_found)?;
    state.cache.invalidate_event_types();
    Ok(Json(json!(t)))
}

async fn delete_one(
    _: Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .event_type_delete(&name)
        .await
        .map_err(not_found)?;
    state.cache.invalidate_event_types();
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("event type"),
        e => e.into(),
    }
}

pub fn routes() -> Routes {
    let one = "/v1/admin/event-types/{name}";
    Routes::new()
        .add(
            Op::new(
                "post",
                "/v1/admin/event-types",
                "operator",
                Auth::Operator,
                "Add an event type",
            )
            .body_schema(|g| crate::api::doc::requiring::<EventTypeInput>(g, &["name"]))
            .returns::<EventType>(201, "Created"),
            post(create),
        )
        .add(
            Op::new(
                "get",
                "/v1/admin/event-types",
                "operator",
                Auth::Operator,
                "List event types",
            )
            .paginated()
            .returns::<PageOf<EventType>>(200, "A page"),
            get(list),
        )
        .add(
            Op::new("get", one, "operator", Auth::Operator, "Get an event type")
                .returns::<EventType>(200, "The type"),
            get(get_one),
        )
        .add(
            Op::new(
                "put",
                one,
                "operator",
                Auth::Operator,
                "Replace an event type",
            )
            .body_schema(|g| crate::api::doc::shaped::<EventTypeInput>(g, &[], &["name"]))
            .returns::<EventType>(200, "Replaced"),
            put(replace),
        )
        .add(
            Op::new(
                "delete",
                one,
                "operator",
                Auth::Operator,
                "Delete an event type (409 while webhooks subscribe to it)",
            )
            .empty(204, "Deleted"),
            axum::routing::delete(delete_one),
        )
}

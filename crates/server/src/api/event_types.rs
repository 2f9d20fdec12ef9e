//! The event-type catalog as integrators see it (`GET /v1/event-types`).

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::auth::extract::Integrator;
use crate::error::ApiResult;
use crate::state::AppState;

async fn list(_: Integrator, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let types = state.store.event_type_list().await?;
    Ok(Json(json!({"data": types, "nextCursor": null})))
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/event-types", get(list))
}

//! The event-type catalog as integrators see it (`GET /v1/event-types`).

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;

use crate::auth::extract::Integrator;
use crate::error::ApiResult;
use crate::extract::Pagination;
use crate::state::AppState;

async fn list(
    _: Integrator,
    State(state): State<AppState>,
    p: Pagination,
) -> ApiResult<Json<Value>> {
    super::admin_event_types::page(&state, &p).await.map(Json)
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/event-types", get(list))
}

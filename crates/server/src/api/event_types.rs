//! The event-type catalog as integrators see it (`GET /v1/event-types`).

use super::doc::{Auth, Op, Routes};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;

use crate::auth::extract::Integrator;
use crate::error::ApiResult;
use crate::input::Pagination;
use crate::state::AppState;

async fn list(
    _: Integrator,
    State(state): State<AppState>,
    p: Pagination,
) -> ApiResult<Json<Value>> {
    super::admin_event_types::page(&state, &p).await.map(Json)
}

pub fn routes() -> Routes {
    Routes::new().add(
        Op::new(
            "get",
            "/v1/event-types",
            "integrator",
            Auth::Integrator,
            "The event-type catalog, with samples",
        )
        .paginated()
        .returns::<super::doc::PageOf<tidings_core::event::EventType>>(200, "A page"),
        get(list),
    )
}

//! Liveness and readiness probes.

use super::doc::{Auth, Op, Routes};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `GET /healthz`: the process is up.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers.
async fn readyz(State(state): State<AppState>) -> ApiResult<(StatusCode, Json<Value>)> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::unavailable("the store is not reachable"))?;
    Ok((
        StatusCode::OK,
        Json(json!({"status": "ready", "store": state.store.kind()})),
    ))
}

/// Probe answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// `GET /metrics`: Prometheus / OpenMetrics text.
async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let depth = state.store.pending_count().await.ok();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(crate::metrics::Gauges {
            queue_depth: depth,
            emulating: state.emulator_limits.in_flight(),
            in_flight: state
                .worker_slots
                .as_ref()
                .map(crate::delivery::slots::Slots::in_flight)
                .unwrap_or_default(),
        }),
    )
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "get",
                "/metrics",
                "health",
                Auth::Public,
                "Prometheus metrics (OpenMetrics text)",
            )
            .empty(200, "Metrics"),
            get(metrics),
        )
        .add(
            Op::new(
                "get",
                "/healthz",
                "health",
                Auth::Public,
                "Liveness: the process is up",
            )
            .returns::<Health>(200, "Up"),
            get(healthz),
        )
        .add(
            Op::new(
                "get",
                "/readyz",
                "health",
                Auth::Public,
                "Readiness: the store answers",
            )
            .returns::<Health>(200, "Ready")
            .returns::<super::doc::ErrorBody>(503, "The store is unreachable"),
            get(readyz),
        )
}

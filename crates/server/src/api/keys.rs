//! Public keys: `GET /.well-known/jwks.json` and `GET /v1/certificates` (PEM download).
//! Unauthenticated: receivers fetch them to verify tokens.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks().clone()),
    )
}

async fn certificates(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tidings-public-keys.pem\"",
            ),
        ],
        state.keys.pem().to_string(),
    )
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/certificates", get(certificates))
}

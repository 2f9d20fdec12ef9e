//! Public keys: `GET /.well-known/jwks.json` and `GET /v1/certificates` (PEM download).
//! Unauthenticated: receivers fetch them to verify tokens.

use super::doc::{Auth, Op, Routes};
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

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "get",
                "/.well-known/jwks.json",
                "keys",
                Auth::Public,
                "JSON Web Key Set: the keys that verify access tokens and notification tokens",
            )
            .returns::<serde_json::Value>(200, "JWKS"),
            get(jwks),
        )
        .add(
            Op::new(
                "get",
                "/v1/certificates",
                "keys",
                Auth::Public,
                "The same public keys as a PEM bundle (download)",
            )
            .empty(200, "application/x-pem-file"),
            get(certificates),
        )
}

//! Public keys: `GET /.well-known/jwks.json` and `GET /v1/certificates` (PEM download),
//! unauthenticated (receivers fetch them to verify tokens); and the operator's rotation of the
//! master key that seals the stored secrets (`POST /v1/admin/master-key/rotate`).

use super::doc::{Auth, Op, Routes};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::extract::Operator;
use crate::error::{ApiError, ApiResult};
use crate::master_key::RotateError;
use crate::state::AppState;

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Rotated {
    /// Id of the master key that seals from now on (the first 8 hex digits of its SHA-256).
    kid: String,
    /// Rows whose secrets were sealed again with it.
    resealed: u64,
}

async fn rotate_master_key(_: Operator, State(state): State<AppState>) -> ApiResult<Json<Rotated>> {
    match crate::master_key::rotate(&state.master_key, &state.store).await {
        Ok((kid, resealed)) => {
            tracing::info!(kid = %kid, resealed, "master key rotated");
            Ok(Json(Rotated { kid, resealed }))
        }
        Err(e @ RotateError::FromEnvironment) => Err(ApiError::conflict(e.to_string())),
        Err(RotateError::Failed(e)) => {
            tracing::error!(error = format!("{e:#}"), "master key rotation failed");
            Err(ApiError::unavailable(
                "rotating the master key failed (see the log); stored secrets still open with the old key, and the next start or rotation finishes the work",
            ))
        }
    }
}

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
        .add(
            Op::new(
                "post",
                "/v1/admin/master-key/rotate",
                "operator",
                Auth::Operator,
                "Rotate the master key of a key file: a new key seals every stored secret again, online; 409 when the key comes from TIDINGS_MASTER_KEY",
            )
            .returns::<Rotated>(200, "Rotated"),
            post(rotate_master_key),
        )
}

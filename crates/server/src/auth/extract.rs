//! Request extractors for the two kinds of caller: the operator (API key) and integrators
//! (OAuth access token plus the `Workspace` header).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tidings_core::secret;
use tidings_core::workspace::Workspace;

use super::tokens::{self, AccessClaims, Rejection};
use crate::error::ApiError;
use crate::state::AppState;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer header"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "Authorization must be 'Bearer <token>'",
        ));
    }
    Ok(token.trim())
}

/// A request authenticated with the operator key.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?;
        if secret::verify(key, &state.operator_key_hash) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized("invalid operator key"))
        }
    }
}

/// A request authenticated with an integration client's access token, scoped to the
/// workspace named in the `Workspace` header.
#[derive(Debug, Clone)]
pub struct Integrator {
    pub claims: AccessClaims,
    /// The workspace the request acts on: the client's own or one of its descendants.
    pub workspace: Workspace,
}

impl FromRequestParts<AppState> for Integrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let claims = tokens::check(
            &state.keys,
            token,
            &state.config.public_url,
            &state.config.audiences,
            state.clock.now_secs(),
        )
        .map_err(|r| ApiError::unauthorized(r.message()))?;
        let client = state.store.client_get(&claims.client_id).await?;
        match client {
            Some(c) if c.generation == claims.generation && c.workspace_id == claims.sub => {}
            _ => return Err(ApiError::unauthorized(Rejection::Revoked.message())),
        }
        let header = parts
            .headers
            .get("workspace")
            .ok_or_else(|| {
                ApiError::bad_request(
                    "missing_workspace_header",
                    "the Workspace header is required",
                )
            })?
            .to_str()
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_workspace_header",
                    "the Workspace header is not valid text",
                )
            })?
            .trim()
            .to_string();
        if header.is_empty() {
            return Err(ApiError::bad_request(
                "missing_workspace_header",
                "the Workspace header is required",
            ));
        }
        let chain = state.store.workspace_chain(&header).await?;
        let Some(own) = chain.iter().find(|w| w.id == claims.sub) else {
            return Err(ApiError::forbidden(
                "forbidden_workspace",
                format!(
                    "workspace '{header}' is not this client's workspace or one of its descendants"
                ),
            ));
        };
        check_integration(state, own)?;
        let workspace = chain
            .into_iter()
            .next()
            .expect("chain holds the header's workspace");
        Ok(Integrator { claims, workspace })
    }
}

/// 403 unless the workspace's plan allows integration and its integration switch is on.
pub fn check_integration(state: &AppState, ws: &Workspace) -> Result<(), ApiError> {
    let allowed = state.config.plan(&ws.plan).is_some_and(|p| p.integration);
    if !allowed {
        return Err(ApiError::forbidden(
            "plan_upgrade_required",
            format!(
                "the plan '{}' of workspace '{}' does not include integration; upgrade the plan",
                ws.plan, ws.id
            ),
        ));
    }
    if !ws.integration_enabled {
        return Err(ApiError::forbidden(
            "integration_disabled",
            format!("integration is turned off for workspace '{}'", ws.id),
        ));
    }
    Ok(())
}

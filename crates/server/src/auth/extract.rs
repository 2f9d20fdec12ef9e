//! Request extractors for the two kinds of caller: the operator (API key) and integrators
//! (OAuth access token plus the `Workspace` header). Each also accepts the console's session
//! cookie of its kind ([`super::session`]) when the request has no `Authorization` header, so
//! the console uses the same handlers as every other caller.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tidings_core::secret;
use tidings_core::workspace::Workspace;

use super::session::{self, Kind};
use super::tokens::{self, Rejection};
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
        if !has_authorization(parts)
            && session::from_request(parts, state, Kind::Operator)
                .await?
                .is_some()
        {
            return Ok(Operator);
        }
        let key = bearer(parts)?;
        if secret::verify(key, &state.operator_key_hash) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized("invalid operator key"))
        }
    }
}

fn has_authorization(parts: &Parts) -> bool {
    parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
}

/// A request authenticated with an integration client's access token (or a portal session),
/// scoped to the workspace named in the `Workspace` header.
#[derive(Debug, Clone)]
pub struct Integrator {
    /// The client whose token made the request; `None` for a portal session (a person, not a
    /// client: what it creates belongs to no client, so no echo rule applies to it).
    pub client_id: Option<String>,
    /// The workspace the request acts on: the caller's own or one of its descendants.
    pub workspace: Workspace,
}

impl FromRequestParts<AppState> for Integrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (own_id, client_id) = match portal_session(parts, state).await? {
            Some(s) => (s, None),
            None => {
                let (sub, client) = client_token(parts, state).await?;
                (sub, Some(client))
            }
        };
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
        let Some(own) = chain.iter().find(|w| w.id == own_id) else {
            // The header is the caller's text: quoted back only when it could be an id.
            let named = if tidings_core::workspace::valid_id(&header) {
                format!("workspace '{header}'")
            } else {
                "the Workspace header".to_string()
            };
            return Err(ApiError::forbidden(
                "forbidden_workspace",
                format!("{named} is not this client's workspace or one of its descendants"),
            ));
        };
        check_integration(state, own)?;
        let workspace = chain
            .into_iter()
            .next()
            .expect("chain holds the header's workspace");
        Ok(Integrator {
            client_id,
            workspace,
        })
    }
}

/// The workspace of the request's portal session, when it has no `Authorization` header and
/// carries a portal cookie.
async fn portal_session(parts: &Parts, state: &AppState) -> Result<Option<String>, ApiError> {
    if has_authorization(parts) {
        return Ok(None);
    }
    Ok(session::from_request(parts, state, Kind::Portal)
        .await?
        .and_then(|s| s.workspace_id))
}

/// The workspace and client of a valid access token.
async fn client_token(parts: &Parts, state: &AppState) -> Result<(String, String), ApiError> {
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
        Some(c) if c.generation == claims.generation && c.workspace_id == claims.sub => {
            Ok((claims.sub, claims.client_id))
        }
        _ => Err(ApiError::unauthorized(Rejection::Revoked.message())),
    }
}

/// A portal session acting on its own workspace (the integration widget): no `Workspace`
/// header, and no integration check, since turning integration on is what it may be here for.
#[derive(Debug, Clone)]
pub struct Portal {
    pub workspace: Workspace,
    pub session: tidings_store::ConsoleSession,
}

impl FromRequestParts<AppState> for Portal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = session::from_request(parts, state, Kind::Portal)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("this endpoint needs a portal session (docs/console.md)")
            })?;
        let workspace = match &session.workspace_id {
            Some(id) => state.store.workspace_get(id).await?,
            None => None,
        }
        .ok_or_else(|| ApiError::unauthorized("the portal's workspace no longer exists"))?;
        Ok(Portal { workspace, session })
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

//! Opening, reading and closing console sessions: the operator signs in with the operator key;
//! an integrator arrives with a one-time portal link. Each answer that opens a session sets its
//! cookie and tells the page the session's CSRF token.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tidings_core::secret::{self, Secret};
use tidings_store::ConsoleSession;

use crate::api::doc::{Auth, Op, Routes};
use crate::auth::session::{self, Kind};
use crate::error::{ApiError, ApiResult};
use crate::input::JsonBody;
use crate::state::AppState;

/// The operator's sign-in.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorSignIn {
    pub operator_key: String,
}

/// A portal link's token (the part of its URL after `#token=`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalEntry {
    pub token: String,
}

/// A console session as its page sees it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// `operator` or `portal`.
    pub kind: String,
    /// A portal session's workspace.
    pub workspace_id: Option<String>,
    /// Send as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    pub expires_at: String,
    /// Where the portal's "Back" link leads.
    pub return_url: Option<String>,
}

fn answer(state: &AppState, kind: Kind, token: &Secret, s: &ConsoleSession) -> Response {
    let body = Json(json!(SessionView {
        kind: s.kind.clone(),
        workspace_id: s.workspace_id.clone(),
        csrf_token: session::csrf_token(token.expose()),
        expires_at: tidings_core::rfc3339(s.expires_at),
        return_url: s.return_url.clone(),
    }));
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(state, kind, Some(token)),
        )],
        body,
    )
        .into_response()
}

fn new_session(
    kind: Kind,
    workspace_id: Option<String>,
    return_url: Option<String>,
) -> ConsoleSession {
    ConsoleSession {
        kind: kind.as_str().to_string(),
        workspace_id,
        return_url,
        created_at: 0,
        expires_at: 0,
    }
}

async fn operator_sign_in(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    JsonBody(input): JsonBody<OperatorSignIn>,
) -> ApiResult<Response> {
    if let Err(wait) = state.throttle.check(None, peer.map(|p| p.0.0.ip())) {
        let secs = crate::throttle::retry_after_secs(wait);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many sign-in attempts; retry after {secs} s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    if !secret::verify(&input.operator_key, &state.operator_key_hash) {
        state.throttle.failed();
        return Err(ApiError::unauthorized("the operator key is not valid"));
    }
    let (token, stored) = session::open(&state, new_session(Kind::Operator, None, None)).await?;
    tracing::info!("operator signed in to the console");
    Ok(answer(&state, Kind::Operator, &token, &stored))
}

async fn portal_enter(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<PortalEntry>,
) -> ApiResult<Response> {
    let link = state
        .store
        .portal_link_redeem(&secret::hash(input.token.trim()), state.clock.now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::GONE,
                "portal_link_used_or_expired",
                "this portal link was already used or has expired; ask for a new one",
            )
        })?;
    let s = new_session(
        Kind::Portal,
        Some(link.workspace_id.clone()),
        link.return_url,
    );
    let (token, stored) = session::open(&state, s).await?;
    tracing::info!(workspace = %link.workspace_id, "portal link used");
    Ok(answer(&state, Kind::Portal, &token, &stored))
}

/// The request's session of `kind` with its token, or 401.
async fn current(
    parts: &Parts,
    state: &AppState,
    kind: Kind,
) -> ApiResult<(Secret, ConsoleSession)> {
    let s = session::from_request(parts, state, kind)
        .await?
        .ok_or_else(|| ApiError::unauthorized("no console session; sign in"))?;
    let token = session::cookie_value(&parts.headers, kind).unwrap_or_default();
    Ok((Secret::new(token), s))
}

async fn read(state: AppState, parts: Parts, kind: Kind) -> ApiResult<Json<serde_json::Value>> {
    let (token, s) = current(&parts, &state, kind).await?;
    Ok(Json(json!(SessionView {
        kind: s.kind,
        workspace_id: s.workspace_id,
        csrf_token: session::csrf_token(token.expose()),
        expires_at: tidings_core::rfc3339(s.expires_at),
        return_url: s.return_url,
    })))
}

async fn close(state: AppState, parts: Parts, kind: Kind) -> ApiResult<Response> {
    let (token, _) = current(&parts, &state, kind).await?;
    state
        .store
        .session_delete(&secret::hash(token.expose()))
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session::set_cookie(&state, kind, None));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

async fn read_operator(
    State(state): State<AppState>,
    parts: Parts,
) -> ApiResult<Json<serde_json::Value>> {
    read(state, parts, Kind::Operator).await
}

async fn read_portal(
    State(state): State<AppState>,
    parts: Parts,
) -> ApiResult<Json<serde_json::Value>> {
    read(state, parts, Kind::Portal).await
}

async fn close_operator(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    close(state, parts, Kind::Operator).await
}

async fn close_portal(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    close(state, parts, Kind::Portal).await
}

pub fn routes() -> Routes {
    let operator = "/console/session/operator";
    let portal = "/console/session/portal";
    Routes::new()
        .add(
            Op::new(
                "post",
                operator,
                "console",
                Auth::Public,
                "Sign in to the console with the operator key (sets the session cookie)",
            )
            .body::<OperatorSignIn>()
            .returns::<SessionView>(200, "The session"),
            post(operator_sign_in),
        )
        .add(
            Op::new(
                "get",
                operator,
                "console",
                Auth::Public,
                "The operator's console session",
            )
            .returns::<SessionView>(200, "The session"),
            get(read_operator),
        )
        .add(
            Op::new(
                "delete",
                operator,
                "console",
                Auth::Public,
                "Sign out (needs X-CSRF-Token)",
            )
            .empty(204, "Signed out"),
            axum::routing::delete(close_operator),
        )
        .add(
            Op::new(
                "post",
                portal,
                "console",
                Auth::Public,
                "Use a one-time portal link (sets the portal session cookie)",
            )
            .body::<PortalEntry>()
            .returns::<SessionView>(200, "The session"),
            post(portal_enter),
        )
        .add(
            Op::new("get", portal, "console", Auth::Public, "The portal session")
                .returns::<SessionView>(200, "The session"),
            get(read_portal),
        )
        .add(
            Op::new(
                "delete",
                portal,
                "console",
                Auth::Public,
                "Leave the portal (needs X-CSRF-Token)",
            )
            .empty(204, "Left"),
            axum::routing::delete(close_portal),
        )
}

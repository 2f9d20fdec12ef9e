//! `POST /oauth/token`: OAuth 2.0 client credentials (RFC 6749 §4.4). Accepts the seed's JSON
//! body and the standard form body (client credentials in the body or as HTTP Basic); answers
//! errors in the RFC 6749 §5.2 shape.

use super::doc::{Auth, Op, Routes};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use tidings_core::secret;

use crate::auth::tokens::AccessClaims;
use crate::input::{content_type, read_body};
use crate::state::AppState;

/// An RFC 6749 error response.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"tidings\""),
            );
        }
        resp
    }
}

/// A token request (RFC 6749 §4.4).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

/// Client credentials sent as `Authorization: Basic` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// The address the request came from, when the server knows it.
pub fn peer(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// `429` with `Retry-After`: too many token requests from this client or address.
fn too_many(wait: std::time::Duration) -> Response {
    let secs = crate::throttle::retry_after_secs(wait);
    let mut resp = OAuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!("too many token requests; retry after {secs} s"),
    )
    .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn token(State(state): State<AppState>, req: Request) -> Result<Response, OAuthError> {
    let address = peer(&req);
    let headers = req.headers().clone();
    let media = content_type(&headers);
    let body = read_body(req)
        .await
        .map_err(|e| OAuthError::invalid_request(e.message))?;
    let mut form: TokenRequest = match media.as_deref() {
        Some("application/json") => serde_json::from_slice(&body).map_err(|e| {
            OAuthError::invalid_request(format!("the body is not a valid token request: {e}"))
        })?,
        Some("application/x-www-form-urlencoded") => serde_urlencoded_like(&body)?,
        _ => {
            return Err(OAuthError::invalid_request(
                "send application/x-www-form-urlencoded (RFC 6749) or application/json",
            ));
        }
    };
    if let Some((id, secret)) = basic_credentials(&headers) {
        if form.client_id.as_ref().is_some_and(|c| c != &id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body and in Authorization differ",
            ));
        }
        form.client_id = Some(id);
        form.client_secret = Some(secret);
    }
    match form.grant_type.as_deref() {
        None | Some("") => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type '{other}' is not supported; use client_credentials"),
            ));
        }
    }
    let (Some(client_id), Some(client_secret)) = (form.client_id, form.client_secret) else {
        return Err(OAuthError::invalid_request(
            "client_id and client_secret are required",
        ));
    };
    // Before the secret is looked at: a guesser is slowed down whatever it guesses.
    if let Err(wait) = state.throttle.check(Some(&client_id), address) {
        return Ok(too_many(wait));
    }
    let audience = form
        .audience
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| state.config.public_url.clone());
    if !state.config.audiences.contains(&audience) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_audience",
            format!("audience '{audience}' is not accepted by this server"),
        ));
    }
    let client = state.store.client_get(&client_id).await.map_err(|e| {
        tracing::error!(error = ?e, "token endpoint store error");
        OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again",
        )
    })?;
    let Some(client) = client.filter(|c| secret::verify(&client_secret, &c.secret_hash)) else {
        // Counted and reported once a minute (`throttle::report`), not logged each time.
        state.throttle.failed();
        tracing::debug!(client_id = %client_id, "token request with unknown client or wrong secret");
        return Err(OAuthError::invalid_client());
    };
    let ws = state
        .store
        .workspace_get(&client.workspace_id)
        .await
        .ok()
        .flatten()
        .ok_or_else(OAuthError::invalid_client)?;
    if let Err(e) = crate::auth::extract::check_integration(&state, &ws) {
        return Err(OAuthError::new(StatusCode::FORBIDDEN, e.code, e.message));
    }
    let now = state.clock.now_secs();
    let ttl = i64::try_from(state.config.token_ttl.as_secs()).unwrap_or(86400);
    let claims = AccessClaims {
        iss: state.config.public_url.clone(),
        sub: client.workspace_id.clone(),
        aud: audience,
        iat: now,
        exp: now + ttl,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client.client_id.clone(),
        generation: client.generation,
        token_use: "access".into(),
    };
    let token = state.keys.sign(&claims);
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: ttl,
        }),
    )
        .into_response())
}

/// Parses a form body into the token request (repeated parameters are an error, RFC 6749 §3.2).
fn serde_urlencoded_like(body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let mut req = TokenRequest::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut req.grant_type,
            "client_id" => &mut req.client_id,
            "client_secret" => &mut req.client_secret,
            "audience" => &mut req.audience,
            "scope" => &mut req.scope,
            _ => continue,
        };
        if slot.is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k} is repeated"
            )));
        }
        *slot = Some(v.into_owned());
    }
    Ok(req)
}

/// The token response (RFC 6749 §5.1).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// The error response (RFC 6749 §5.2).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct OAuthErrorBody {
    pub error: String,
    pub error_description: String,
}

pub fn routes() -> Routes {
    Routes::new().add(
        Op::new(
            "post",
            "/oauth/token",
            "oauth",
            Auth::Client,
            "OAuth 2.0 client credentials: an access token (JSON or form body)",
        )
        .body::<TokenRequest>()
        .returns::<TokenResponse>(200, "Token")
        .returns::<OAuthErrorBody>(
            400,
            "invalid_request, unsupported_grant_type, invalid_audience",
        )
        .returns::<OAuthErrorBody>(401, "invalid_client")
        .returns::<OAuthErrorBody>(
            429,
            "too_many_requests: over the per-client or per-address limit (Retry-After)",
        )
        .returns::<OAuthErrorBody>(403, "integration_disabled, plan_upgrade_required"),
        post(token),
    )
}

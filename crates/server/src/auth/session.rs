//! Console sessions (docs/console.md): the cookie that a sign-in with the operator key or a
//! used portal link sets, and the CSRF token that every state change made with it must carry.
//!
//! A session is a random 256-bit token in an `HttpOnly` cookie; the database keeps only its
//! SHA-256, so every node finds it and a copy of the database opens no session. The CSRF token
//! is derived from the cookie (a SHA-256 under a domain tag), so it needs no storage and only a
//! page that could read the session's own API answers knows it. The operator and the portal
//! have cookies of their own, so an operator can open a workspace's portal beside the console.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tidings_core::secret::{self, Secret};
use tidings_store::ConsoleSession;

use crate::error::ApiError;
use crate::state::AppState;

/// The header a cookie-authenticated state change must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The two kinds of console session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Operator,
    Portal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Portal => "portal",
        }
    }

    fn cookie(self) -> &'static str {
        match self {
            Self::Operator => "tidings_operator",
            Self::Portal => "tidings_portal",
        }
    }
}

/// The CSRF token of the session whose cookie holds `token`.
pub fn csrf_token(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tidings console csrf\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The value of the `kind` cookie, if the request carries one.
pub fn cookie_value(headers: &HeaderMap, kind: Kind) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == kind.cookie())
        .map(|c| c.value().to_string())
}

/// Whether a request with this method changes state (and so must prove it is not forged).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session a request's `kind` cookie opens: `Ok(None)` without the cookie; `401` when it
/// names no live session; `403 csrf_failed` for a state change without the session's CSRF
/// token.
pub async fn from_request(
    parts: &Parts,
    state: &AppState,
    kind: Kind,
) -> Result<Option<ConsoleSession>, ApiError> {
    let Some(token) = cookie_value(&parts.headers, kind) else {
        return Ok(None);
    };
    let session = state
        .store
        .session_get(&secret::hash(&token), state.clock.now_ms())
        .await?
        .filter(|s| s.kind == kind.as_str())
        .ok_or_else(|| ApiError::unauthorized("the console session has ended; sign in again"))?;
    if changes_state(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(csrf_token(&token).as_bytes())) {
            return Err(ApiError::forbidden(
                "csrf_failed",
                format!(
                    "a console request that changes something must carry the {CSRF_HEADER} header of its session"
                ),
            ));
        }
    }
    Ok(Some(session))
}

/// Opens a session: stores it and returns its token (the cookie's value) and the session as
/// stored.
pub async fn open(
    state: &AppState,
    mut session: ConsoleSession,
) -> Result<(Secret, ConsoleSession), ApiError> {
    let token = secret::random_token();
    let now = state.clock.now_ms();
    session.created_at = now;
    session.expires_at = now.saturating_add(
        i64::try_from(state.config.console.session_ttl.as_millis()).unwrap_or(i64::MAX),
    );
    state
        .store
        .session_create(&secret::hash(token.expose()), &session)
        .await?;
    Ok((token, session))
}

/// `Set-Cookie` for a new session (`token`), or one that clears the cookie (`None`).
/// `HttpOnly` always; `Secure` when the public URL is https; `SameSite=Strict`, or, when the
/// console may be framed by other origins over https, `SameSite=None; Partitioned` (a framed
/// page is a third-party context).
pub fn set_cookie(state: &AppState, kind: Kind, token: Option<&Secret>) -> HeaderValue {
    let https = state.config.public_url.starts_with("https://");
    let framed = https && !state.config.console.frame_ancestors.is_empty();
    let ttl = state.config.console.session_ttl;
    let mut c = Cookie::build((kind.cookie(), token.map_or("", Secret::expose).to_string()))
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(if framed {
            SameSite::None
        } else {
            SameSite::Strict
        })
        .partitioned(framed)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .build();
    if token.is_none() {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_tied_to_the_cookie() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 32);
    }

    #[test]
    fn each_kind_reads_its_own_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; tidings_portal=p; tidings_operator=o"),
        );
        assert_eq!(cookie_value(&h, Kind::Operator).as_deref(), Some("o"));
        assert_eq!(cookie_value(&h, Kind::Portal).as_deref(), Some("p"));
        h.insert(header::COOKIE, HeaderValue::from_static("x=1"));
        assert_eq!(cookie_value(&h, Kind::Portal), None);
    }
}

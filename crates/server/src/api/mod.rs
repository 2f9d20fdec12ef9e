//! The HTTP API: one module per resource, each with its own `router()`, merged here with the
//! layers every request passes (request id, tracing, body limit, panic guard).

mod admin_event_types;
mod clients;
mod deliveries;
pub mod doc;
mod emulator;
mod event_types;
mod events;
mod health;
mod keys;
mod listen;
mod monitoring;
mod oauth;
mod portal;
mod webhooks;
mod workspaces;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids for requests that came without one: UUIDv7.
#[derive(Clone, Copy, Debug)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&tidings_core::ids::request_id())
            .ok()
            .map(RequestId::new)
    }
}

/// Whether a caller's request id may be echoed and logged as it is: 1–128 letters, digits,
/// `-`, `_` or `.` (SPEC §8). Any other is replaced by a generated one.
fn plain_request_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Drops an `X-Request-Id` that is not short and plain, so a fresh one is generated for it.
async fn plain_request_ids(mut req: Request) -> Request {
    if req
        .headers()
        .get_all(&X_REQUEST_ID)
        .iter()
        .any(|v| !plain_request_id(v.as_bytes()))
        || req.headers().get_all(&X_REQUEST_ID).iter().count() > 1
    {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

/// A client error that a framework layer answered in plain text (a path that is not UTF-8, a
/// malformed path parameter) gets the SPEC's error body like every other; its headers (e.g.
/// `Allow`, `Retry-After`) are kept.
async fn spec_error_bodies(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message: String = match text.trim() {
        "" => status
            .canonical_reason()
            .unwrap_or("client error")
            .to_string(),
        t => t.chars().take(300).collect(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        _ => "bad_request",
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(&format!("route {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; it was logged",
    )
    .into_response()
}

/// Every route with its documentation (the OpenAPI document is built from this).
pub fn routes() -> doc::Routes {
    doc::Routes::new()
        .merge(health::routes())
        .merge(keys::routes())
        .merge(oauth::routes())
        .merge(workspaces::routes())
        .merge(clients::routes())
        .merge(events::routes())
        .merge(admin_event_types::routes())
        .merge(event_types::routes())
        .merge(webhooks::routes())
        .merge(emulator::routes())
        .merge(deliveries::routes())
        .merge(listen::routes())
        .merge(portal::routes())
        .merge(monitoring::routes())
        .merge(crate::console::sessions::routes())
}

/// The OpenAPI 3.1 document of every route, `/openapi.json` included.
pub fn openapi_document() -> serde_json::Value {
    let mut ops = routes().ops;
    ops.push(openapi_op());
    doc::openapi(&ops)
}

fn openapi_op() -> doc::Op {
    doc::Op::new(
        "get",
        "/openapi.json",
        "meta",
        doc::Auth::Public,
        "This OpenAPI 3.1 document",
    )
    .returns::<serde_json::Value>(200, "The document")
}

/// The whole API with its layers.
pub fn router(state: AppState) -> axum::Router {
    let body_limit = state.config.max_body_bytes;
    let document = std::sync::Arc::new(openapi_document());
    let routes = routes().add(
        openapi_op(),
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json((*document).clone()) }
        }),
    );
    let pages = crate::console::pages(&state);
    routes
        .router
        .merge(pages)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::map_response(spec_error_bodies))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeId))
        .layer(axum::middleware::map_request(plain_request_ids))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(super::plain_request_id(b"req-1_2.3"));
        assert!(!super::plain_request_id(b""));
        assert!(!super::plain_request_id(&[b'a'; 129]));
        assert!(!super::plain_request_id(b"a b"));
        assert!(!super::plain_request_id(b"a\nb"));
        assert!(!super::plain_request_id("é".as_bytes()));
    }
}

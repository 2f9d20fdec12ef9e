//! The web console (SPEC §10, docs/console.md): a static single-page application embedded in
//! the binary and served under `/console`, plus the endpoints that open and close its
//! sessions. The pages call the same HTTP API as every other client, authenticated by the
//! session cookie instead of a bearer token; there is no second data path
//! ([ADR 0015](../../../../docs/adr/0015-console-as-a-static-app-over-the-api.md)).

mod assets;
pub mod sessions;

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

/// The console's pages and assets (not part of the API document: they are not API).
pub fn pages(state: &AppState) -> axum::Router<AppState> {
    if !state.config.console.enabled {
        return axum::Router::new();
    }
    let csp = content_security_policy(&state.config.console.frame_ancestors);
    let page = move || {
        let csp = csp.clone();
        async move { assets::page(&csp) }
    };
    axum::Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(page.clone()))
        .route("/console/portal", get(page))
        .route("/console/assets/{file}", get(assets::asset))
}

/// The page's policy: scripts, styles and connections from this origin only, no inline code,
/// no plugins, framed only by this origin and the configured ones.
fn content_security_policy(frame_ancestors: &[String]) -> HeaderValue {
    let mut ancestors = String::from("'self'");
    for origin in frame_ancestors {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// Headers every console response carries.
fn secured(mut response: Response, csp: Option<&HeaderValue>) -> Response {
    let h = response.headers_mut();
    if let Some(csp) = csp {
        h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response.into_response()
}

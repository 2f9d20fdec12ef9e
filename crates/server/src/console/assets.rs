//! The console's files, embedded at build time from `crates/server/console/`: no build step,
//! nothing to install, the same bytes on every node.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `(name, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/ui.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/charts.js"),
    ),
    (
        "portal.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/portal.js"),
    ),
    (
        "webhooks.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/webhooks.js"),
    ),
    (
        "deliveries.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/deliveries.js"),
    ),
    (
        "operator.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/operator.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../console/favicon.svg"),
    ),
];

const INDEX: &[u8] = include_bytes!("../../console/index.html");

/// The application's one page (every console URL shows it; the script picks the screen).
pub fn page(csp: &HeaderValue) -> Response {
    let response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response();
    super::secured(response, Some(csp))
}

/// `GET /console/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => {
            let response = ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response();
            super::secured(response, None)
        }
        None => crate::error::ApiError::not_found("console asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded(name: &str) -> bool {
        ASSETS.iter().any(|(n, _, _)| *n == name)
    }

    #[test]
    fn everything_the_page_and_its_modules_load_is_embedded() {
        let index = std::str::from_utf8(INDEX).unwrap();
        let mut wanted: Vec<&str> = index
            .split("/console/assets/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        for (name, _, bytes) in ASSETS {
            if name.ends_with(".js") {
                let text = std::str::from_utf8(bytes).unwrap();
                wanted.extend(
                    text.split("from './")
                        .skip(1)
                        .filter_map(|rest| rest.split('\'').next()),
                );
            }
        }
        assert!(wanted.len() > ASSETS.len() / 2, "{wanted:?}");
        for name in wanted {
            assert!(embedded(name), "{name} is loaded but not embedded");
        }
    }
}

//! `GET /openapi.json`: OpenAPI 3.1, built from the route registry. Fails when an endpoint of
//! the SPEC is missing from the document, when a documented operation is not routed, or when a
//! schema reference dangles.

use reqwest::Method;
use serde_json::Value;

use crate::harness::{Backend, TestApp};

/// Every endpoint the SPEC and the issues name.
const ENDPOINTS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/v1/certificates"),
    ("post", "/oauth/token"),
    ("post", "/v1/admin/workspaces"),
    ("get", "/v1/admin/workspaces"),
    ("get", "/v1/admin/workspaces/{id}"),
    ("put", "/v1/admin/workspaces/{id}"),
    ("patch", "/v1/admin/workspaces/{id}"),
    ("delete", "/v1/admin/workspaces/{id}"),
    ("post", "/v1/admin/workspaces/{id}/clients"),
    ("get", "/v1/admin/workspaces/{id}/clients"),
    (
        "post",
        "/v1/admin/workspaces/{id}/clients/{client_id}/regenerate",
    ),
    ("delete", "/v1/admin/workspaces/{id}/clients/{client_id}"),
    ("post", "/v1/admin/event-types"),
    ("get", "/v1/admin/event-types"),
    ("get", "/v1/admin/event-types/{name}"),
    ("put", "/v1/admin/event-types/{name}"),
    ("delete", "/v1/admin/event-types/{name}"),
    ("post", "/v1/events"),
    ("post", "/v1/events/batch"),
    ("get", "/v1/event-types"),
    ("post", "/v1/settings/webhooks"),
    ("get", "/v1/settings/webhooks"),
    ("get", "/v1/settings/webhooks/{id}"),
    ("put", "/v1/settings/webhooks/{id}"),
    ("patch", "/v1/settings/webhooks/{id}"),
    ("delete", "/v1/settings/webhooks/{id}"),
    ("post", "/v1/settings/webhooks/{id}/secret/rotate"),
    ("post", "/v1/admin/master-key/rotate"),
    ("post", "/v1/settings/webhooks/{id}/test"),
    ("post", "/v1/emulator"),
    ("get", "/v1/settings/webhooks/{id}/deliveries"),
    ("get", "/v1/deliveries/{id}"),
    ("post", "/v1/deliveries/{id}/retry"),
    ("post", "/v1/settings/webhooks/{id}/replay"),
    ("post", "/v1/listen/sessions"),
    ("get", "/v1/listen/sessions/{id}/stream"),
    ("post", "/v1/listen/sessions/{id}/answers"),
    ("delete", "/v1/listen/sessions/{id}"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/admin/plans"),
    ("post", "/v1/admin/workspaces/{id}/portal-sessions"),
    ("get", "/v1/admin/health"),
    ("get", "/v1/admin/events"),
    ("get", "/v1/settings/webhooks/{id}/stats"),
    ("get", "/v1/portal/workspace"),
    ("patch", "/v1/portal/workspace"),
    ("post", "/v1/portal/credentials"),
    ("post", "/console/session/operator"),
    ("get", "/console/session/operator"),
    ("delete", "/console/session/operator"),
    ("post", "/console/session/portal"),
    ("get", "/console/session/portal"),
    ("delete", "/console/session/portal"),
];

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap_or("").to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn the_openapi_document_covers_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();

    for (method, path) in ENDPOINTS {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is missing from /openapi.json"
        );
    }

    // Every documented operation is routed: the fallback answers unknown routes with a
    // "route ... not found" message and unknown methods with 405.
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path
                .replace("{id}", "x")
                .replace("{client_id}", "x")
                .replace("{name}", "x");
            // Every operation documents what it answers: a success, and the SPEC error body
            // for client errors (the token endpoint: RFC 6749's).
            let op = &item[method.as_str()];
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} has no responses"));
            assert!(
                responses.keys().any(|c| c.starts_with('2')),
                "{method} {path} documents no success"
            );
            assert!(
                responses.keys().any(|c| c.starts_with('4')),
                "{method} {path} documents no client error"
            );
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .http
                .request(m, app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !body.contains("\"message\":\"route "),
                "{method} {path} is documented but not routed: {body}"
            );
        }
    }
    assert_eq!(
        operations,
        ENDPOINTS.len(),
        "the document lists operations this test does not know; add them to ENDPOINTS"
    );

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    let webhook_input = &schemas["WebhookInput"]["properties"];
    for field in [
        "applyToAllDescendants",
        "url",
        "secret",
        "headers",
        "triggers",
        "status",
        "contentType",
        "authorization",
        "envelope",
    ] {
        assert!(
            webhook_input.get(field).is_some(),
            "WebhookInput.{field} is documented"
        );
    }
}

crate::both_backends!(the_openapi_document_covers_every_route);

//! Bad input gets its 4xx and the SPEC error body; never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Backend, TestApp, error_code};

async fn malformed_input_gets_the_right_status_and_error_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("acme").await;
    let post = |body: &'static str, ct: &'static str| {
        app.as_integrator(&who, Method::POST, "/v1/settings/webhooks")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let cases = [
        (
            post("{\"url\": ", "application/json").await.unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            post("{}", "text/plain").await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post("[1,2]", "application/json").await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            app.operator(Method::POST, "/v1/events")
                .header("content-type", "application/json")
                .body(vec![b' '; 300 * 1024])
                .send()
                .await
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            app.http
                .get(app.url("/v1/admin/workspaces"))
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            app.http
                .get(app.url("/v1/admin/workspaces"))
                .bearer_auth("not-the-key")
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            app.operator(Method::GET, "/v1/admin/workspaces/nope")
                .send()
                .await
                .unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.http
                .get(app.url("/no/such/route"))
                .send()
                .await
                .unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.http.delete(app.url("/healthz")).send().await.unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        // A path parameter that is not UTF-8: the framework's rejection, in the SPEC's body.
        (
            app.as_integrator(&who, Method::GET, "/v1/settings/webhooks/%FF%FE")
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            app.as_integrator(&who, Method::GET, "/v1/settings/webhooks?limit=0")
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        let request_id = r.headers().get("x-request-id").cloned();
        let (got_status, got_code, body) = error_code(r).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "case {i}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(request_id.is_some(), "case {i} has X-Request-Id");
    }
}

async fn the_request_id_is_echoed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-123");
}

async fn publishing_bad_events_names_the_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("acme", json!({})).await;
    let cases = [
        (
            json!({"type": "nope", "workspaceId": "acme", "data": {}}),
            "type",
        ),
        (
            json!({"type": "workorder.created", "workspaceId": "ghost", "data": {}}),
            "workspaceId",
        ),
        (
            json!({"type": "workorder.created", "workspaceId": "acme", "data": "text"}),
            "data",
        ),
        (
            json!({"type": "workorder.created", "workspaceId": "acme"}),
            "data",
        ),
        (
            json!({"type": "workorder.created", "workspaceId": "acme", "data": {}, "occurredAt": "yesterday"}),
            "occurredAt",
        ),
    ];
    for (body, field) in cases {
        let (status, code, v) = error_code(
            app.operator(Method::POST, "/v1/events")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{v}"
        );
        assert_eq!(v["error"]["details"][0]["field"], field, "{v}");
    }
    let (status, _, v) = error_code(
        app.operator(Method::POST, "/v1/events/batch")
            .json(&json!({"events": [{"type": "workorder.created", "workspaceId": "acme", "data": {}}, {"type": "x", "workspaceId": "acme", "data": {}}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "events[1].type");
}

crate::both_backends!(
    malformed_input_gets_the_right_status_and_error_body,
    the_request_id_is_echoed,
    publishing_bad_events_names_the_field_and_stores_nothing,
);

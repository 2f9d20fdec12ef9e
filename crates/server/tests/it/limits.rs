//! Bounds on what a tenant can make the server do (SPEC §12): every list in a webhook has a
//! bound named in its 422, and no webhook's options can shape a body past
//! `delivery.max_payload_bytes` — not in a delivery, not in the emulator.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, error_code, eventually, get};
use crate::receiver::TestReceiver;

fn hook(url: &str) -> Value {
    json!({"applyToAllDescendants": false, "url": url, "triggers": ["workorder.created"], "status": "enabled"})
}

/// `n` mappings of the whole event document (the empty pointer).
fn whole_event_mappings(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("copy{i}"), json!(""))).collect())
}

async fn an_emulated_body_over_the_bound_is_refused_and_never_built(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    // 100 copies of a 30 KB event: 3 MB against the 1 MiB default.
    let mut webhook = hook(&rx.url("/"));
    webhook["fieldMapping"] = whole_event_mappings(100);
    let r = app
        .as_integrator(&who, Method::POST, "/v1/emulator")
        .json(&json!({"webhook": webhook, "type": "workorder.created",
            "data": {"blob": "x".repeat(30_000)}}))
        .send()
        .await
        .unwrap();
    let (status, code, body) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["field"], "fieldMapping");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes"),
        "{body}"
    );
    assert!(rx.received().is_empty(), "nothing was sent");
}

async fn every_list_of_a_webhook_has_a_bound_named_in_a_short_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("acme").await;
    let many = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    for (field, value) in [
        ("fieldMapping", whole_event_mappings(101)),
        ("extraFields", json!(many(51))),
        ("branches", json!(many(1001))),
        ("businessUnits", json!(many(1001))),
        ("triggers", json!(many(10_000))),
    ] {
        let mut body = hook("https://receiver.example/");
        body[field] = value;
        let r = app
            .as_integrator(&who, Method::POST, "/v1/settings/webhooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, _, err) = error_code(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(err["error"]["details"][0]["field"], field, "{err}");
        assert!(err.to_string().len() < 1024, "{field}: {err}");
    }
}

async fn a_delivery_whose_body_would_be_too_large_fails_as_too_large(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__MAX_PAYLOAD_BYTES", "4096"),
            ("TIDINGS_DELIVERY__RETRY_SCHEDULE", "100ms"),
        ],
    )
    .await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let mut body = hook(&rx.url("/"));
    body["contentType"] = json!("application/x-www-form-urlencoded");
    body["fieldMapping"] = whole_event_mappings(3);
    let h = app.create_webhook(&who, body).await;
    // 1.5 KB of data fits on its own; three copies of it, form-encoded, do not.
    app.publish(json!({"type": "workorder.created", "workspaceId": "acme",
        "data": {"note": "y".repeat(1500)}}))
        .await;
    let failed = format!(
        "/v1/settings/webhooks/{}/deliveries?state=failed",
        h["id"].as_str().unwrap()
    );
    eventually(|| async { !get(&app, &who, &failed).await["data"][0].is_null() }).await;
    let id = get(&app, &who, &failed).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let detail = get(&app, &who, &format!("/v1/deliveries/{id}")).await;
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    for a in attempts {
        assert_eq!(a["outcome"], "too_large", "{detail}");
        assert!(a["status"].is_null(), "{detail}");
    }
    assert!(rx.received().is_empty(), "nothing was sent");
}

async fn concurrent_creates_never_pass_the_plans_webhook_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_PLANS__DEFAULT__MAX_WEBHOOKS", "5")]).await;
    let who = app.integrator("acme").await;
    let creates = (0..20).map(|_| {
        app.as_integrator(&who, Method::POST, "/v1/settings/webhooks")
            .json(&hook("https://receiver.example/"))
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((created, refused), (5, 15), "{statuses:?}");
    let list = get(&app, &who, "/v1/settings/webhooks?limit=100").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 5);
}

crate::both_backends!(
    concurrent_creates_never_pass_the_plans_webhook_limit,
    an_emulated_body_over_the_bound_is_refused_and_never_built,
    every_list_of_a_webhook_has_a_bound_named_in_a_short_422,
    a_delivery_whose_body_would_be_too_large_fails_as_too_large,
);

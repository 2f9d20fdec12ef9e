//! Fan-out and durable delivery: what a real receiver gets, retries, restarts.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Backend, TestApp, eventually, get};
use crate::receiver::{Received, TestReceiver};

const WAIT: Duration = Duration::from_secs(15);

/// Verifies a Standard Webhooks signature independently of the server's code: `whsec_` secrets
/// are base64, others raw bytes.
pub fn verify_signature(secret: &str, r: &Received) -> bool {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    verify_signature_key(&key, r)
}

fn verify_signature_key(secret_key: &[u8], r: &Received) -> bool {
    let id = r.header("webhook-id").unwrap();
    let ts = r.header("webhook-timestamp").unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret_key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.header("webhook-signature")
        .unwrap()
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

fn webhook(url: &str, triggers: &[&str]) -> Value {
    json!({"applyToAllDescendants": false, "url": url, "triggers": triggers, "status": "enabled"})
}

async fn a_delivery_arrives_signed_with_the_flat_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let mut body = webhook(&rx.url("/hook"), &["workorder.created"]);
    body["secret"] = json!("supersecuresecret");
    body["headers"] = json!({"X-Custom": "yes"});
    let hook = app.create_webhook(&who, body).await;

    let published = app
        .publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"WorkOrderId": 42, "Status": "New"},
            "occurredAt": "2021-07-30T18:40:00Z"}))
        .await;
    assert_eq!(published["deliveries"], 1);

    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook");
    assert!(
        verify_signature("supersecuresecret", r),
        "signature must verify"
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("event-type"), Some("workorder.created"));
    assert!(r.header("user-agent").unwrap().starts_with("Tidings/"));
    assert_eq!(r.header("x-custom"), Some("yes"));
    let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((ts - app.clock.now_secs()).abs() < 60);
    let msg_id = r.header("webhook-id").unwrap();
    assert_eq!(
        r.json(),
        json!({"id": msg_id, "timestamp": "1627670400000", "workspaceId": "acme",
            "type": "workorder.created", "data": {"WorkOrderId": 42, "Status": "New"}})
    );
    assert!(hook["id"].is_string());
}

async fn a_generated_whsec_secret_signs_with_its_decoded_bytes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let hook = app
        .create_webhook(&who, webhook(&rx.url("/"), &["contract.create"]))
        .await;
    let secret = hook["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    app.publish(
        json!({"type": "contract.create", "workspaceId": "acme", "data": {"status": "created"}}),
    )
    .await;
    let got = rx.wait_for(1, WAIT).await;
    assert!(verify_signature_key(&key, &got[0]));
    assert!(verify_signature(secret, &got[0]));
    assert!(!verify_signature("wrong", &got[0]));
}

async fn a_failed_attempt_is_retried_with_the_same_webhook_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    rx.script(&[500]);
    let who = app.integrator("acme").await;
    app.create_webhook(&who, webhook(&rx.url("/"), &["workorder.created"]))
        .await;
    app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": 1}}))
        .await;

    let got = rx.wait_for(2, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body, "the retry sends the same body");
    // Answered 200 the second time: the delivery succeeded with two attempts, so no third
    // attempt can follow.
    let hooks = get(&app, &who, "/v1/settings/webhooks").await;
    let hook = hooks["data"][0]["id"].as_str().unwrap();
    let path = format!("/v1/settings/webhooks/{hook}/deliveries");
    eventually(|| async {
        let list = get(&app, &who, &path).await;
        list["data"][0]["state"] == "succeeded"
    })
    .await;
    let list = get(&app, &who, &path).await;
    assert_eq!(list["data"][0]["attempts"], 2, "{list}");
    assert_eq!(rx.received().len(), 2);
}

async fn fan_out_reaches_only_enabled_webhooks_with_the_trigger(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (a, b, c) = (
        TestReceiver::start().await,
        TestReceiver::start().await,
        TestReceiver::start().await,
    );
    let who = app.integrator("acme").await;
    let other = app.integrator("globex").await;
    let d = TestReceiver::start().await;
    app.create_webhook(
        &who,
        webhook(&a.url("/"), &["workorder.created", "contract.create"]),
    )
    .await;
    app.create_webhook(&who, webhook(&b.url("/"), &["contract.create"]))
        .await;
    let mut disabled = webhook(&c.url("/"), &["workorder.created"]);
    disabled["status"] = json!("disabled");
    app.create_webhook(&who, disabled).await;
    app.create_webhook(&other, webhook(&d.url("/"), &["workorder.created"]))
        .await;

    let out = app
        .publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .await;
    // One delivery exists, and `a` received it.
    assert_eq!(out["deliveries"], 1);
    a.wait_for(1, WAIT).await;
    assert_eq!(
        (
            a.received().len(),
            b.received().len(),
            c.received().len(),
            d.received().len()
        ),
        (1, 0, 0, 0)
    );
}

async fn deliveries_pending_at_shutdown_are_sent_after_restart(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("TIDINGS_DELIVERY__ENABLED", "false")]).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, webhook(&rx.url("/"), &["workorder.created"]))
        .await;
    for n in 0..5 {
        app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": n}}))
            .await;
    }
    // No worker runs in this process: the five wait in the queue.
    let hooks = get(&app, &who, "/v1/settings/webhooks").await;
    let hook = hooks["data"][0]["id"].as_str().unwrap();
    let list = get(
        &app,
        &who,
        &format!("/v1/settings/webhooks/{hook}/deliveries"),
    )
    .await;
    let states: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending"; 5]);
    assert!(rx.received().is_empty());

    app.restart_with(&[("TIDINGS_DELIVERY__ENABLED", "true")])
        .await;
    let got = rx.wait_for(5, WAIT).await;
    let mut ns: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, [0, 1, 2, 3, 4]);
}

async fn a_delivery_cut_off_by_shutdown_is_sent_again_after_restart(backend: Backend) {
    let mut app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__SHUTDOWN_GRACE", "100ms"),
            ("TIDINGS_DELIVERY__TIMEOUT", "5s"),
            ("TIDINGS_DELIVERY__LEASE", "6s"),
        ],
    )
    .await;
    let rx = TestReceiver::start().await;
    rx.set_delay(Duration::from_secs(3));
    let who = app.integrator("acme").await;
    app.create_webhook(&who, webhook(&rx.url("/"), &["workorder.created"]))
        .await;
    app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": 1}}))
        .await;
    // The receiver has the request (and holds its answer back): it is in flight now.
    rx.wait_for(1, WAIT).await;
    app.stop().await;
    rx.set_delay(Duration::ZERO);
    app.restart_with(&[]).await;
    // The redelivery comes as soon as the lease is released (embedded store: at start;
    // PostgreSQL: when it expires), with the same message id.
    let got = rx.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
}

async fn an_event_caused_by_a_client_is_not_sent_to_its_own_webhooks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, webhook(&rx.url("/"), &["workorder.created"]))
        .await;
    let out = app
        .publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}, "originClientId": who.client_id}))
        .await;
    assert_eq!(
        (out["deliveries"].as_i64(), out["suppressed"].as_i64()),
        (Some(0), Some(1))
    );
    assert!(rx.received().is_empty());
}

crate::both_backends!(
    a_delivery_arrives_signed_with_the_flat_envelope,
    a_generated_whsec_secret_signs_with_its_decoded_bytes,
    a_failed_attempt_is_retried_with_the_same_webhook_id,
    fan_out_reaches_only_enabled_webhooks_with_the_trigger,
    deliveries_pending_at_shutdown_are_sent_after_restart,
    a_delivery_cut_off_by_shutdown_is_sent_again_after_restart,
    an_event_caused_by_a_client_is_not_sent_to_its_own_webhooks,
);

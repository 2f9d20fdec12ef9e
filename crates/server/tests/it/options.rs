//! Payload and authentication options (SPEC §4/§5), asserted on what a real receiver got.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::verify_signature;
use crate::harness::{Backend, PUBLIC_URL, TestApp};
use crate::receiver::{Received, TestReceiver};

const WAIT: Duration = Duration::from_secs(15);

fn hook(url: &str, extra: Value) -> Value {
    let mut body = json!({"applyToAllDescendants": false, "url": url, "triggers": ["workorder.created"], "status": "enabled"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

async fn deliver_one(app: &TestApp, rx: &TestReceiver, event: Value) -> Received {
    let before = rx.received().len();
    app.publish(event).await;
    rx.wait_for(before + 1, WAIT).await.pop().unwrap()
}

fn event() -> Value {
    json!({"type": "workorder.created", "workspaceId": "acme", "data": {"Status": "New", "Items": [{"sku": "a-1"}]},
        "subjectId": 42, "branchId": "492042", "sender": {"name": "Jon Snow", "phone": "+12025550141", "type": "CorrigoPro"}})
}

/// Verifies a notification bearer token with the published JWKS only.
async fn verify_bearer(app: &TestApp, token: &str) -> Value {
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_issuer(&[PUBLIC_URL]);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

async fn bearer_tokens_verify_against_the_jwks_and_are_reused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let h = app
        .create_webhook(&who, hook(&rx.url("/in"), json!({})))
        .await;
    let first = deliver_one(&app, &rx, event()).await;
    let token = first
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let claims = verify_bearer(&app, &token).await;
    assert_eq!(claims["aud"], format!("http://{}", rx.addr));
    assert_eq!(claims["sub"], "acme");
    assert_eq!(claims["webhook"], h["id"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    let second = deliver_one(&app, &rx, event()).await;
    assert_eq!(
        second.header("authorization"),
        first.header("authorization"),
        "the token is reused"
    );
}

async fn basic_none_and_a_custom_authorization_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (a, b, c) = (
        TestReceiver::start().await,
        TestReceiver::start().await,
        TestReceiver::start().await,
    );
    let who = app.integrator("acme").await;
    app.create_webhook(
        &who,
        hook(
            &a.url("/"),
            json!({"authorization": "basic", "basicUsername": "crm", "secret": "s3cret"}),
        ),
    )
    .await;
    app.create_webhook(&who, hook(&b.url("/"), json!({"authorization": "none"})))
        .await;
    app.create_webhook(
        &who,
        hook(
            &c.url("/"),
            json!({"headers": {"Authorization": "Bearer YOUR_ACCESS_TOKEN"}}),
        ),
    )
    .await;
    app.publish(event()).await;
    let (ra, rb, rc) = (
        a.wait_for(1, WAIT).await,
        b.wait_for(1, WAIT).await,
        c.wait_for(1, WAIT).await,
    );
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("crm:s3cret")
    );
    assert_eq!(ra[0].header("authorization"), Some(expected.as_str()));
    assert_eq!(rb[0].header("authorization"), None);
    assert_eq!(
        rc[0].header("authorization"),
        Some("Bearer YOUR_ACCESS_TOKEN")
    );
}

async fn form_bodies_flatten_nested_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let h = app
        .create_webhook(
            &who,
            hook(
                &rx.url("/"),
                json!({"contentType": "application/x-www-form-urlencoded"}),
            ),
        )
        .await;
    let got = deliver_one(&app, &rx, event()).await;
    assert_eq!(
        got.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&got.body)
        .into_owned()
        .collect();
    for expected in [
        ("type", "workorder.created"),
        ("workspaceId", "acme"),
        ("data[Status]", "New"),
        ("data[Items][0][sku]", "a-1"),
    ] {
        assert!(
            pairs.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {pairs:?}"
        );
    }
    assert!(
        verify_signature(h["secret"].as_str().unwrap(), &got),
        "the signature covers the form body"
    );
}

async fn status_only_extra_fields_and_field_mapping_shape_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("acme", json!({"fields": {"vatId": "DE123", "tier": "gold"}, "branches": [{"id": "492042", "name": "North"}]})).await;
    let (client_id, secret) = app.create_client("acme").await;
    let who = crate::harness::Integrator {
        token: app.token(&client_id, &secret).await,
        client_id,
        workspace: "acme".into(),
    };
    let (a, b, c) = (
        TestReceiver::start().await,
        TestReceiver::start().await,
        TestReceiver::start().await,
    );
    app.create_webhook(&who, hook(&a.url("/"), json!({"dataMode": "statusOnly"})))
        .await;
    app.create_webhook(
        &who,
        hook(&b.url("/"), json!({"extraFields": ["vatId", "missing"]})),
    )
    .await;
    app.create_webhook(&who, hook(&c.url("/"), json!({"fieldMapping": {"state": "/data/Status", "order": "/subjectId", "firstSku": "/data/Items/0/sku"}}))).await;
    app.publish(event()).await;
    let (ra, rb, rc) = (
        a.wait_for(1, WAIT).await,
        b.wait_for(1, WAIT).await,
        c.wait_for(1, WAIT).await,
    );
    assert_eq!(
        ra[0].json()["data"],
        json!({"status": "New", "subjectId": 42, "branchId": "492042"})
    );
    assert_eq!(
        rb[0].json()["data"]["company"],
        json!({"vatId": "DE123", "missing": null})
    );
    assert_eq!(rb[0].json()["data"]["Status"], "New");
    assert_eq!(
        rc[0].json()["data"],
        json!({"firstSku": "a-1", "order": 42, "state": "New"})
    );
}

async fn the_header_envelope_carries_the_seed_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook(&rx.url("/"), json!({"envelope": "header"})))
        .await;
    let got = deliver_one(&app, &rx, event()).await;
    let body = got.json();
    let header = &body["Header"];
    assert_eq!(header["WorkOrderId"], 42);
    assert_eq!(header["BranchId"], 492042);
    assert_eq!(
        header["Sender"],
        json!({"Name": "Jon Snow", "Phone": "+12025550141", "Type": "CorrigoPro"})
    );
    assert_eq!(header["Action"], "workorder.created");
    assert_eq!(header["ApiVersion"], "1.1");
    assert_eq!(header["MessageId"], got.header("webhook-id").unwrap());
    assert!(header["ActionDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["Status"], "New", "data fields sit at the top level");
    assert_eq!(got.header("event-type"), Some("workorder.created"));
}

async fn ssl_verification_refuses_a_self_signed_receiver_unless_disabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start_tls().await;
    let who = app.integrator("acme").await;
    let h = app
        .create_webhook(&who, hook(&rx.https_url("/secure"), json!({})))
        .await;
    let path = format!("/v1/settings/webhooks/{}", h["id"].as_str().unwrap());
    let report: Value = app
        .as_integrator(&who, Method::POST, &format!("{path}/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["outcome"], "tls", "{report}");
    assert!(rx.received().is_empty());

    app.as_integrator(&who, Method::PATCH, &path)
        .json(&json!({"sslVerification": "disabled"}))
        .send()
        .await
        .unwrap();
    let report: Value = app
        .as_integrator(&who, Method::POST, &format!("{path}/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["outcome"], "ok", "{report}");
    let got = deliver_one(&app, &rx, event()).await;
    assert_eq!(got.path, "/secure");
}

async fn a_rotated_secret_keeps_signing_for_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let h = app
        .create_webhook(&who, hook(&rx.url("/"), json!({"secret": "old-secret"})))
        .await;
    let r = app
        .as_integrator(
            &who,
            Method::POST,
            &format!(
                "/v1/settings/webhooks/{}/secret/rotate",
                h["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_"));
    assert!(rotated["previousSecretExpiresAt"].is_string());

    let got = deliver_one(&app, &rx, event()).await;
    assert_eq!(
        got.header("webhook-signature").unwrap().split(' ').count(),
        2
    );
    assert!(verify_signature("old-secret", &got) && verify_signature(&new_secret, &got));

    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let later = deliver_one(&app, &rx, event()).await;
    assert_eq!(
        later
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    assert!(verify_signature(&new_secret, &later) && !verify_signature("old-secret", &later));
}

crate::both_backends!(
    bearer_tokens_verify_against_the_jwks_and_are_reused,
    basic_none_and_a_custom_authorization_header,
    form_bodies_flatten_nested_data,
    status_only_extra_fields_and_field_mapping_shape_data,
    the_header_envelope_carries_the_seed_header,
    ssl_verification_refuses_a_self_signed_receiver_unless_disabled,
    a_rotated_secret_keeps_signing_for_a_day,
);

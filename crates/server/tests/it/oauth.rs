//! OAuth client credentials: issue, rejection, revocation, expiry, JWKS.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PUBLIC_URL, TestApp, error_code};

async fn oauth_error(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or("").to_string())
}

async fn the_seed_token_request_returns_a_bearer_token_for_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("company1Workspace", json!({})).await;
    let (id, secret) = app.create_client("company1Workspace").await;
    let r = app
        .token_response(json!({"client_id": id, "client_secret": secret, "audience": PUBLIC_URL, "grant_type": "client_credentials"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 86400);
    // The token is a JWT whose key is published in the JWKS.
    let token = v["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"])
    );
}

/// `GET /v1/certificates`: the JWKS keys as PEM (SPKI), downloadable.
async fn the_certificates_are_the_jwks_keys_as_pem(backend: Backend) {
    use base64::Engine;
    let app = TestApp::spawn(backend).await;
    let r = app
        .http
        .get(app.url("/v1/certificates"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-pem-file");
    let pem = r.text().await.unwrap();
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    assert_eq!(der.len(), 44, "Ed25519 SubjectPublicKeyInfo");
    assert_eq!(&der[12..], x.as_slice());
}

async fn the_form_body_and_basic_client_authentication_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("w", json!({})).await;
    let (id, secret) = app.create_client("w").await;
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn bad_token_requests_get_rfc6749_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("w", json!({})).await;
    let (id, secret) = app.create_client("w").await;
    let base = json!({"client_id": id, "client_secret": secret, "audience": PUBLIC_URL, "grant_type": "client_credentials"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let r = app
        .token_response(with("client_secret", json!("wrong")))
        .await;
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"tidings\"");
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let r = app.token_response(with("client_id", json!("nobody"))).await;
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let r = app
        .token_response(with("grant_type", json!("password")))
        .await;
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
    let r = app
        .token_response(with("audience", json!("https://api.elsewhere.example")))
        .await;
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::BAD_REQUEST, "invalid_audience".into())
    );
    let r = app
        .token_response(json!({"grant_type": "client_credentials"}))
        .await;
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .body("x")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

async fn expired_and_forged_tokens_are_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("w").await;
    let list = |token: String| {
        app.http
            .get(app.url("/v1/settings/webhooks"))
            .bearer_auth(token)
            .header("Workspace", "w")
    };
    assert_eq!(
        list(who.token.clone()).send().await.unwrap().status(),
        StatusCode::OK
    );
    let mut forged = who.token.clone();
    forged.pop();
    forged.push(if who.token.ends_with('A') { 'B' } else { 'A' });
    let (status, code, _) = error_code(list(forged).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );

    app.clock.advance(Duration::from_secs(86_400 + 1));
    let r = list(who.token.clone()).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let (status, _, body) = error_code(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

async fn regenerated_credentials_reject_the_old_secret_and_old_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("w", json!({})).await;
    let (id, old_secret) = app.create_client("w").await;
    let old_token = app.token(&id, &old_secret).await;
    let r = app
        .operator(
            Method::POST,
            &format!("/v1/admin/workspaces/w/clients/{id}/regenerate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let new_secret = v["clientSecret"].as_str().unwrap();
    assert_eq!(v["generation"], 2);

    let r = app.token_response(json!({"client_id": id, "client_secret": old_secret, "grant_type": "client_credentials"})).await;
    assert_eq!(oauth_error(r).await.0, StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .get(app.url("/v1/settings/webhooks"))
        .bearer_auth(&old_token)
        .header("Workspace", "w")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let new_token = app.token(&id, new_secret).await;
    let r = app
        .http
        .get(app.url("/v1/settings/webhooks"))
        .bearer_auth(&new_token)
        .header("Workspace", "w")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn workspaces_without_integration_get_403_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("off", json!({"integrationEnabled": false}))
        .await;
    app.create_workspace("basic", json!({"plan": "basic"}))
        .await;
    for (ws, code) in [
        ("off", "integration_disabled"),
        ("basic", "plan_upgrade_required"),
    ] {
        let (id, secret) = app.create_client(ws).await;
        let r = app.token_response(json!({"client_id": id, "client_secret": secret, "grant_type": "client_credentials"})).await;
        assert_eq!(
            oauth_error(r).await,
            (StatusCode::FORBIDDEN, code.to_string())
        );
    }
}

crate::both_backends!(
    the_seed_token_request_returns_a_bearer_token_for_a_day,
    the_certificates_are_the_jwks_keys_as_pem,
    the_form_body_and_basic_client_authentication_work,
    bad_token_requests_get_rfc6749_errors,
    expired_and_forged_tokens_are_rejected,
    regenerated_credentials_reject_the_old_secret_and_old_tokens,
    workspaces_without_integration_get_403_with_the_reason,
);

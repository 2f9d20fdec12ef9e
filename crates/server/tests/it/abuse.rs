//! Limits on what one caller can make the server do: token guessing and the emulator.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PUBLIC_URL, TestApp, eventually};
use crate::receiver::TestReceiver;

fn wrong_secret(client_id: &str) -> Value {
    json!({"client_id": client_id, "client_secret": "not-the-secret", "audience": PUBLIC_URL,
        "grant_type": "client_credentials"})
}

async fn metrics(app: &TestApp) -> String {
    app.http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A `429` with `Retry-After` in whole seconds, and its body.
async fn too_many(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    r.json().await.unwrap()
}

async fn token_guessing_is_slowed_down_per_client_then_per_address(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_OAUTH__REQUESTS_PER_MINUTE_PER_CLIENT", "3"),
            ("TIDINGS_OAUTH__REQUESTS_PER_MINUTE_PER_ADDRESS", "6"),
        ],
    )
    .await;
    app.create_workspace("acme", json!({})).await;
    let (guessed, secret) = app.create_client("acme").await;
    for _ in 0..3 {
        let r = app.token_response(wrong_secret(&guessed)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth guess is refused before the secret is checked, even the right secret.
    let body = too_many(
        app.token_response(json!({"client_id": guessed, "client_secret": secret,
            "audience": PUBLIC_URL, "grant_type": "client_credentials"}))
            .await,
    )
    .await;
    assert_eq!(body["error"], "too_many_requests", "{body}");
    // Another client id from the same address goes on until the address's limit.
    let (other, _) = app.create_client("acme").await;
    for _ in 0..2 {
        let r = app.token_response(wrong_secret(&other)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(app.token_response(wrong_secret("never-seen")).await).await;
}

/// A receiver that accepts connections and never answers.
async fn silent_receiver() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn emulated(url: &str) -> Value {
    json!({"applyToAllDescendants": false, "url": url, "triggers": ["contract.send"],
        "status": "enabled"})
}

async fn the_emulator_holds_a_workspace_to_its_concurrency_and_counts_in_metrics(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__TIMEOUT", "3s"),
            ("TIDINGS_EMULATOR__CONCURRENCY_PER_WORKSPACE", "1"),
            ("TIDINGS_EMULATOR__REQUESTS_PER_MINUTE_PER_WORKSPACE", "0"),
        ],
    )
    .await;
    let acme = app.integrator("acme").await;
    let globex = app.integrator("globex").await;
    let silent = format!("http://{}/", silent_receiver().await);
    let first = app
        .as_integrator(&acme, Method::POST, "/v1/emulator")
        .json(&emulated(&silent))
        .send();
    let first = tokio::spawn(first);
    eventually(|| async { metrics(&app).await.contains("tidings_emulator_in_flight 1") }).await;
    let body = too_many(
        app.as_integrator(&acme, Method::POST, "/v1/emulator")
            .json(&emulated(&silent))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    // Another workspace is not held back by acme's request.
    let rx = TestReceiver::start().await;
    let r = app
        .as_integrator(&globex, Method::POST, "/v1/emulator")
        .json(&emulated(&rx.url("/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = first.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(report["outcome"], "timeout", "{report}");
    let text = metrics(&app).await;
    for line in [
        "tidings_emulator_in_flight 0",
        "tidings_emulator_attempts_total{outcome=\"refused\"} 1",
        "tidings_emulator_attempts_total{outcome=\"timeout\"} 1",
        "tidings_emulator_attempts_total{outcome=\"ok\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

async fn the_emulator_holds_a_workspace_to_its_rate(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("TIDINGS_EMULATOR__REQUESTS_PER_MINUTE_PER_WORKSPACE", "2")],
    )
    .await;
    let acme = app.integrator("acme").await;
    let rx = TestReceiver::start().await;
    let send = || {
        app.as_integrator(&acme, Method::POST, "/v1/emulator")
            .json(&emulated(&rx.url("/")))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    }
    let body = too_many(send().await.unwrap()).await;
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert_eq!(rx.received().len(), 2);
}

crate::both_backends!(
    token_guessing_is_slowed_down_per_client_then_per_address,
    the_emulator_holds_a_workspace_to_its_concurrency_and_counts_in_metrics,
    the_emulator_holds_a_workspace_to_its_rate,
);

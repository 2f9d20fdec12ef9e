//! Operator API: workspaces, clients, publishing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, error_code};

async fn workspaces_are_created_listed_updated_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_workspace("chan", json!({"type": "channel", "branches": [{"id": "b1", "name": "North"}], "fields": {"vat": "X1"}}))
        .await;
    assert_eq!(created["type"], "channel");
    assert_eq!(created["plan"], "default");
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    app.create_workspace("kid", json!({"type": "child", "parentId": "chan"}))
        .await;

    let (status, code, _) = error_code(
        app.operator(Method::POST, "/v1/admin/workspaces")
            .json(&json!({"id": "chan", "name": "again"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let (status, _, v) = error_code(
        app.operator(Method::POST, "/v1/admin/workspaces")
            .json(&json!({"id": "orphan", "name": "o", "type": "child", "parentId": "kid"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "parentId");

    let list: Value = app
        .operator(Method::GET, "/v1/admin/workspaces?limit=1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], "chan");
    assert_eq!(list["nextCursor"], "chan");

    let patched: Value = app
        .operator(Method::PATCH, "/v1/admin/workspaces/kid")
        .json(&json!({"integrationEnabled": false, "name": "Kid Co"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            patched["integrationEnabled"].as_bool(),
            patched["name"].as_str(),
            patched["parentId"].as_str()
        ),
        (Some(false), Some("Kid Co"), Some("chan"))
    );

    let (status, _, _) = error_code(
        app.operator(Method::DELETE, "/v1/admin/workspaces/chan")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a channel with children is not deleted"
    );
    assert_eq!(
        app.operator(Method::DELETE, "/v1/admin/workspaces/kid")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.operator(Method::GET, "/v1/admin/workspaces/kid")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn client_secrets_are_shown_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("w", json!({})).await;
    let (id, secret) = app.create_client("w").await;
    assert!(secret.len() >= 40);
    let list: Value = app
        .operator(Method::GET, "/v1/admin/workspaces/w/clients")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["clientId"], id.as_str());
    assert!(list["data"][0].get("clientSecret").is_none());
    assert!(!list.to_string().contains(&secret));
    assert_eq!(
        app.operator(
            Method::DELETE,
            &format!("/v1/admin/workspaces/w/clients/{id}")
        )
        .send()
        .await
        .unwrap()
        .status(),
        StatusCode::NO_CONTENT
    );
    let r = app
        .token_response(
            json!({"client_id": id, "client_secret": secret, "grant_type": "client_credentials"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn a_batch_is_accepted_whole_and_an_idempotent_repeat_creates_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_DELIVERY__ENABLED", "false")]).await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": ["workorder.created"], "status": "enabled"})).await;
    let events: Vec<Value> = (0..3)
        .map(|n| json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": n}}))
        .collect();
    let r = app
        .operator(Method::POST, "/v1/events/batch")
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["deliveries"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );

    let first = app
        .operator(Method::POST, "/v1/events")
        .header("Idempotency-Key", "order-1")
        .json(&json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let again = app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}, "idempotencyKey": "order-1"})).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(first["duplicate"], false);
}

crate::both_backends!(
    workspaces_are_created_listed_updated_and_deleted,
    client_secrets_are_shown_once,
    a_batch_is_accepted_whole_and_an_idempotent_repeat_creates_nothing,
);

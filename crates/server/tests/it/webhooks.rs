//! The webhook configuration API with the seed's fields and paths.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, error_code};

/// The request body of the seed's example, verbatim.
const SEED_BODY: &str = r#"{"name": "Billing webhooks",
"description": "Used for updating QuickBooks",
"applyToAllDescendants": true,
"url": "https://www.customer.example/quickbookwebhook",
"secret": "supersecuresecret",
"headers":{
"Authorization": "Bearer YOUR_ACCESS_TOKEN",
"Content-Type": "application/json"
},
"triggers": [
"workspace-created"
],
"status": "enabled"
}"#;

async fn the_seed_example_request_returns_the_seed_response_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("company1Workspace").await;
    let r = app
        .as_integrator(&who, Method::POST, "/v1/settings/webhooks")
        .header("Content-Type", "application/json")
        .body(SEED_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let sent: Value = serde_json::from_str(SEED_BODY).unwrap();
    for key in [
        "name",
        "description",
        "applyToAllDescendants",
        "url",
        "secret",
        "headers",
        "triggers",
        "status",
    ] {
        assert_eq!(v[key], sent[key], "{key} is echoed");
    }
    assert!(
        v["id"]
            .as_str()
            .is_some_and(|id| id.len() == 24 && id.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert!(
        v["updated"].as_i64().unwrap() > 1_700_000_000_000,
        "updated is Unix ms"
    );
    assert!(v.get("warnings").is_none(), "https gets no warning");
}

async fn the_workspace_header_is_required_and_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("acme").await;
    app.create_workspace("globex", json!({})).await;
    let r = app
        .http
        .get(app.url("/v1/settings/webhooks"))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "missing_workspace_header")
    );
    for ws in ["globex", "does-not-exist"] {
        let r = app
            .http
            .get(app.url("/v1/settings/webhooks"))
            .bearer_auth(&who.token)
            .header("Workspace", ws)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_code(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden_workspace"),
            "{ws}"
        );
    }
    let r = app
        .http
        .get(app.url("/v1/settings/webhooks"))
        .header("Workspace", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn a_channel_client_manages_its_children_but_a_child_cannot_reach_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let msp = app.integrator("msp").await;
    app.operator(Method::PATCH, "/v1/admin/workspaces/msp")
        .json(&json!({"type": "channel"}))
        .send()
        .await
        .unwrap();
    app.create_workspace("kid", json!({"type": "child", "parentId": "msp"}))
        .await;
    let (id, secret) = app.create_client("kid").await;
    let kid = crate::harness::Integrator {
        token: app.token(&id, &secret).await,
        client_id: id,
        workspace: "kid".into(),
    };

    let mut as_msp_on_kid = msp.clone();
    as_msp_on_kid.workspace = "kid".into();
    let hook = app
        .create_webhook(&as_msp_on_kid, json!({"applyToAllDescendants": false, "url": "https://kid.example/", "triggers": ["workorder.created"], "status": "enabled"}))
        .await;
    assert_eq!(hook["workspaceId"], "kid");
    let r = app
        .as_integrator(
            &kid,
            Method::GET,
            &format!("/v1/settings/webhooks/{}", hook["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the child sees webhooks of its own workspace"
    );

    let mut kid_on_msp = kid.clone();
    kid_on_msp.workspace = "msp".into();
    let (status, code, _) = error_code(
        app.as_integrator(&kid_on_msp, Method::GET, "/v1/settings/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden_workspace")
    );
}

async fn get_put_patch_delete_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("acme").await;
    let created = app
        .create_webhook(&who, json!({"name": "a", "applyToAllDescendants": false, "url": "https://a.example/", "triggers": ["workorder.created"], "status": "enabled"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/settings/webhooks/{id}");

    let got: Value = app
        .as_integrator(&who, Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);

    let r = app
        .as_integrator(&who, Method::PUT, &path)
        .json(&json!({"name": "b", "applyToAllDescendants": true, "url": "https://b.example/", "triggers": ["contract.create"], "status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let put: Value = r.json().await.unwrap();
    assert_eq!(
        (
            put["name"].as_str(),
            put["status"].as_str(),
            put["triggers"][0].as_str()
        ),
        (Some("b"), Some("disabled"), Some("contract.create"))
    );
    assert_eq!(
        put["secret"], created["secret"],
        "PUT without secret keeps it"
    );
    assert!(put["updated"].as_i64() > created["updated"].as_i64());

    let patched: Value = app
        .as_integrator(&who, Method::PATCH, &path)
        .json(&json!({"status": "enabled"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (patched["status"].as_str(), patched["name"].as_str()),
        (Some("enabled"), Some("b"))
    );
    assert!(patched["updated"].as_i64() > put["updated"].as_i64());

    assert_eq!(
        app.as_integrator(&who, Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let (status, code, _) = error_code(
        app.as_integrator(&who, Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(
        app.as_integrator(&who, Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn invalid_webhooks_get_422_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("acme").await;
    let post = |body: Value| {
        app.as_integrator(&who, Method::POST, "/v1/settings/webhooks")
            .json(&body)
            .send()
    };
    let cases = [
        (
            json!({"applyToAllDescendants": false, "triggers": ["workorder.created"], "status": "enabled"}),
            "url",
        ),
        (
            json!({"applyToAllDescendants": false, "url": "ftp://x.example", "triggers": ["workorder.created"], "status": "enabled"}),
            "url",
        ),
        (
            json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": ["no.such.type"], "status": "enabled"}),
            "triggers[0]",
        ),
        (
            json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": [], "status": "enabled"}),
            "triggers",
        ),
        (
            json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": ["workorder.created"], "status": "on"}),
            "status",
        ),
        (
            json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": ["workorder.created"], "status": "enabled", "colour": "red"}),
            "colour",
        ),
        (
            json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": ["workorder.created"], "status": "enabled", "headers": {"webhook-id": "x"}}),
            "headers.webhook-id",
        ),
    ];
    for (body, field) in cases {
        let (status, code, v) = error_code(post(body).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{field}: {v}"
        );
        let fields: Vec<&str> = v["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field} not named in {v}");
    }
    let plain = app
        .create_webhook(&who, json!({"applyToAllDescendants": false, "url": "http://x.example", "triggers": ["workorder.created"], "status": "enabled"}))
        .await;
    assert!(plain["warnings"][0].as_str().unwrap().contains("http"));
}

async fn the_list_is_paginated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let who = app.integrator("acme").await;
    for n in 0..3 {
        app.create_webhook(&who, json!({"name": format!("h{n}"), "applyToAllDescendants": false, "url": "https://x.example", "triggers": ["workorder.created"], "status": "enabled"}))
            .await;
    }
    let page1: Value = app
        .as_integrator(&who, Method::GET, "/v1/settings/webhooks?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let page2: Value = app
        .as_integrator(
            &who,
            Method::GET,
            &format!("/v1/settings/webhooks?limit=2&cursor={cursor}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert!(page2["nextCursor"].is_null());
    let names: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["data"].as_array().unwrap())
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["h0", "h1", "h2"]);
}

crate::both_backends!(
    the_seed_example_request_returns_the_seed_response_shape,
    the_workspace_header_is_required_and_checked,
    a_channel_client_manages_its_children_but_a_child_cannot_reach_up,
    get_put_patch_delete_round_trip,
    invalid_webhooks_get_422_naming_the_field,
    the_list_is_paginated,
);

//! The console's sessions and the portal API over HTTP (the browser tests in crates/cli drive
//! the pages): one-time portal links that expire, cookies and CSRF, the portal's scope, its
//! switches and credentials, and the operator's health, plans, event search and stats.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, OPERATOR_KEY, TestApp, error_code, get};
use crate::receiver::TestReceiver;

/// A portal session: its cookie header and CSRF token.
struct Portal {
    cookie: String,
    csrf: String,
}

impl Portal {
    fn request(&self, app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
        let csrf = self.csrf.clone();
        app.http
            .request(method, app.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", csrf)
    }
}

async fn link(app: &TestApp, workspace: &str) -> String {
    let r = app
        .operator(
            Method::POST,
            &format!("/v1/admin/workspaces/{workspace}/portal-sessions"),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let url = body["url"].as_str().unwrap().to_string();
    url.split_once("#token=").unwrap().1.to_string()
}

async fn enter(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/console/session/portal"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

fn cookie_of(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn portal(app: &TestApp, workspace: &str) -> Portal {
    let r = enter(app, &link(app, workspace).await).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = cookie_of(&r);
    let body: Value = r.json().await.unwrap();
    Portal {
        cookie,
        csrf: body["csrfToken"].as_str().unwrap().to_string(),
    }
}

async fn a_portal_link_works_once_and_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("acme", json!({})).await;
    let token = link(&app, "acme").await;
    let first = enter(&app, &token).await;
    assert_eq!(first.status(), StatusCode::OK);
    let set = first.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let (status, code, _) = error_code(enter(&app, &token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::GONE, "portal_link_used_or_expired")
    );
    // Unused, but older than its 10 minutes.
    let late = link(&app, "acme").await;
    app.clock.advance(Duration::from_secs(601));
    assert_eq!(enter(&app, &late).await.status(), StatusCode::GONE);
}

async fn a_portal_session_acts_on_its_workspace_and_children_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("msp", json!({"type": "channel"}))
        .await;
    app.create_workspace("msp-kid", json!({"type": "child", "parentId": "msp"}))
        .await;
    app.create_workspace("rival", json!({})).await;
    let p = portal(&app, "msp").await;
    let hooks = |ws: &str| {
        p.request(&app, Method::GET, "/v1/settings/webhooks")
            .header("workspace", ws.to_string())
            .send()
    };
    assert_eq!(hooks("msp").await.unwrap().status(), StatusCode::OK);
    assert_eq!(hooks("msp-kid").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        hooks("rival").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let admin = p
        .request(&app, Method::GET, "/v1/admin/workspaces")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::UNAUTHORIZED);
    // A state change with the cookie but without the session's CSRF token.
    let body = json!({"applyToAllDescendants": false, "url": "https://x.example/", "triggers": ["workorder.created"], "status": "enabled"});
    let forged = app
        .http
        .post(app.url("/v1/settings/webhooks"))
        .header("cookie", &p.cookie)
        .header("workspace", "msp")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(forged).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    let made = p
        .request(&app, Method::POST, "/v1/settings/webhooks")
        .header("workspace", "msp-kid")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    // Leaving ends the session everywhere.
    let left = p
        .request(&app, Method::DELETE, "/console/session/portal")
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        hooks("msp").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn the_portal_switches_gate_notifications_without_touching_webhooks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    app.create_workspace("acme", json!({"integrationEnabled": false}))
        .await;
    app.create_workspace("small", json!({"plan": "basic"}))
        .await;
    let p = portal(&app, "acme").await;
    let switch = |body: Value| {
        p.request(&app, Method::PATCH, "/v1/portal/workspace")
            .json(&body)
            .send()
    };
    assert_eq!(
        switch(json!({"integrationEnabled": true}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Credentials made in the portal get tokens.
    let creds: Value = p
        .request(&app, Method::POST, "/v1/portal/credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = app
        .token(
            creds["clientId"].as_str().unwrap(),
            creds["clientSecret"].as_str().unwrap(),
        )
        .await;
    let who = crate::harness::Integrator {
        token,
        client_id: creds["clientId"].as_str().unwrap().to_string(),
        workspace: "acme".into(),
    };
    let hook = app
        .create_webhook(
            &who,
            json!({"applyToAllDescendants": false, "url": rx.url("/"), "triggers": ["workorder.created"], "status": "enabled"}),
        )
        .await;
    let event = json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": 1}});
    let off: Value = switch(json!({"notificationsEnabled": false}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(off["workspace"]["notificationsEnabled"], false);
    assert_eq!(app.publish(event.clone()).await["deliveries"], 0);
    let still = get(
        &app,
        &who,
        &format!("/v1/settings/webhooks/{}", hook["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(still["status"], "enabled", "each webhook keeps its status");
    switch(json!({"notificationsEnabled": true})).await.unwrap();
    assert_eq!(app.publish(event).await["deliveries"], 1);
    rx.wait_for(1, Duration::from_secs(15)).await;

    let small = portal(&app, "small").await;
    let r = small
        .request(&app, Method::PATCH, "/v1/portal/workspace")
        .json(&json!({"integrationEnabled": true}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "plan_upgrade_required")
    );
}

async fn the_operator_signs_in_and_out_and_reads_the_console_views(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let wrong = app
        .http
        .post(app.url("/console/session/operator"))
        .json(&json!({"operatorKey": "nope-nope-nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .post(app.url("/console/session/operator"))
        .json(&json!({ "operatorKey": OPERATOR_KEY }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = cookie_of(&r);
    let session: Value = r.json().await.unwrap();
    let as_operator = |path: &str| app.http.get(app.url(path)).header("cookie", &cookie).send();
    let health: Value = as_operator("/v1/admin/health")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!health["points"].as_array().unwrap().is_empty(), "{health}");
    let plans: Value = as_operator("/v1/admin/plans")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plans["data"][1]["name"], "default");
    assert_eq!(plans["data"][1]["default"], true);
    app.create_workspace("acme", json!({})).await;
    app.create_workspace("other", json!({})).await;
    let mut ids = Vec::new();
    for ws in ["acme", "other", "acme"] {
        ids.push(
            app.publish(json!({"type": "workorder.created", "workspaceId": ws, "data": {}}))
                .await["id"]
                .clone(),
        );
    }
    let found: Value = as_operator("/v1/admin/events?workspaceId=acme&limit=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"][0]["id"], ids[2], "newest first");
    let cursor = found["nextCursor"].as_str().unwrap().to_string();
    let next: Value = as_operator(&format!(
        "/v1/admin/events?workspaceId=acme&cursor={cursor}"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["data"][0]["id"], ids[0]);
    let out = app
        .http
        .delete(app.url("/console/session/operator"))
        .header("cookie", &cookie)
        .header("x-csrf-token", session["csrfToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        as_operator("/v1/admin/health").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn an_embedded_console_over_https_gets_third_party_cookies_and_its_frame_ancestors(
    backend: Backend,
) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_PUBLIC_URL", "https://hooks.example"),
            ("TIDINGS_AUDIENCES", "https://hooks.example"),
            ("TIDINGS_CONSOLE__FRAME_ANCESTORS", "https://app.example"),
        ],
    )
    .await;
    let page = app.http.get(app.url("/console/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' https://app.example"),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    app.create_workspace("acme", json!({})).await;
    let r = enter(&app, &link(&app, "acme").await).await;
    let set = r.headers()["set-cookie"].to_str().unwrap();
    for attribute in ["Secure", "SameSite=None", "Partitioned", "HttpOnly"] {
        assert!(set.contains(attribute), "{set}");
    }
}

crate::both_backends!(
    a_portal_link_works_once_and_expires,
    a_portal_session_acts_on_its_workspace_and_children_only,
    the_portal_switches_gate_notifications_without_touching_webhooks,
    the_operator_signs_in_and_out_and_reads_the_console_views,
    an_embedded_console_over_https_gets_third_party_cookies_and_its_frame_ancestors,
);

//! Workspace tree, branches and business units, the integration switch and plans.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Integrator, TestApp, error_code};
use crate::receiver::TestReceiver;

const WAIT: Duration = Duration::from_secs(15);

fn hook(url: &str, extra: Value) -> Value {
    let mut body = json!({"applyToAllDescendants": false, "url": url, "triggers": ["workorder.created"], "status": "enabled"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

async fn client_for(app: &TestApp, ws: &str) -> Integrator {
    let (client_id, secret) = app.create_client(ws).await;
    Integrator {
        token: app.token(&client_id, &secret).await,
        client_id,
        workspace: ws.into(),
    }
}

async fn a_channel_webhook_for_all_descendants_hears_its_children(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("msp", json!({"type": "channel"}))
        .await;
    // The child's own integration switch stays off: the channel's webhook still hears it.
    app.create_workspace(
        "kid",
        json!({"type": "child", "parentId": "msp", "integrationEnabled": false}),
    )
    .await;
    let msp = client_for(&app, "msp").await;
    let (all, own) = (TestReceiver::start().await, TestReceiver::start().await);
    app.create_webhook(
        &msp,
        hook(&all.url("/"), json!({"applyToAllDescendants": true})),
    )
    .await;
    app.create_webhook(&msp, hook(&own.url("/"), json!({})))
        .await;

    let out = app
        .publish(json!({"type": "workorder.created", "workspaceId": "kid", "data": {"n": 1}}))
        .await;
    assert_eq!(out["deliveries"], 1);
    // The one delivery went to the channel's webhook: the parent's own webhook has none.
    let got = all.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["workspaceId"], "kid");
    assert!(own.received().is_empty());
}

async fn branch_and_business_unit_filters_select_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace(
        "acme",
        json!({"branches": [{"id": "north", "name": "North"}, {"id": "south", "name": "South"}],
               "businessUnits": [{"id": "provider-bu", "name": "Provider BU"}]}),
    )
    .await;
    let who = client_for(&app, "acme").await;
    let (north, bu) = (TestReceiver::start().await, TestReceiver::start().await);
    app.create_webhook(&who, hook(&north.url("/"), json!({"branches": ["north"]})))
        .await;
    app.create_webhook(
        &who,
        hook(&bu.url("/"), json!({"businessUnits": ["provider-bu"]})),
    )
    .await;

    let publish = |extra: Value| {
        let mut e = json!({"type": "workorder.created", "workspaceId": "acme", "data": {}});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        app.publish(e)
    };
    assert_eq!(publish(json!({"branchId": "north"})).await["deliveries"], 1);
    assert_eq!(publish(json!({"branchId": "south"})).await["deliveries"], 0);
    assert_eq!(publish(json!({})).await["deliveries"], 0);
    assert_eq!(
        publish(json!({"branchId": "south", "businessUnitId": "provider-bu"})).await["deliveries"],
        1
    );
    north.wait_for(1, WAIT).await;
    bu.wait_for(1, WAIT).await;

    let r = app
        .as_integrator(&who, Method::POST, "/v1/settings/webhooks")
        .json(&hook("https://x.example", json!({"branches": ["west"]})))
        .send()
        .await
        .unwrap();
    let (status, _, v) = error_code(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "branches[0]");
}

async fn nothing_is_sent_while_integration_is_off_and_delivery_resumes_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook(&rx.url("/"), json!({})))
        .await;
    let toggle = |on: bool| {
        app.operator(Method::PATCH, "/v1/admin/workspaces/acme")
            .json(&json!({"integrationEnabled": on}))
            .send()
    };
    assert_eq!(toggle(false).await.unwrap().status(), StatusCode::OK);

    let off = app
        .publish(
            json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": "while off"}}),
        )
        .await;
    assert_eq!(off["deliveries"], 0);
    let (status, code, _) = error_code(
        app.as_integrator(&who, Method::GET, "/v1/settings/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "integration_disabled")
    );

    toggle(true).await.unwrap();
    let out = app
        .publish(
            json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": "after"}}),
        )
        .await;
    assert_eq!(out["deliveries"], 1, "{out}");
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(rx.received().len(), 1);
    assert_eq!(got[0].json()["data"]["n"], "after");
}

async fn the_plan_limits_webhooks_per_workspace(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_PLANS__DEFAULT__MAX_WEBHOOKS", "1")]).await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook("https://x.example", json!({})))
        .await;
    let r = app
        .as_integrator(&who, Method::POST, "/v1/settings/webhooks")
        .json(&hook("https://y.example", json!({})))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "plan_upgrade_required")
    );
}

crate::both_backends!(
    a_channel_webhook_for_all_descendants_hears_its_children,
    branch_and_business_unit_filters_select_events,
    nothing_is_sent_while_integration_is_off_and_delivery_resumes_after,
    the_plan_limits_webhooks_per_workspace,
);

//! The event-type catalog and the emulator.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::delivery::verify_signature;
use crate::harness::{Backend, TestApp, error_code};
use crate::receiver::TestReceiver;

async fn operators_define_event_types_and_their_schema_is_enforced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let schema = json!({"type": "object", "required": ["invoiceId"], "properties": {"invoiceId": {"type": "string"}}});
    let body = json!({"name": "invoice.paid", "description": "An invoice was paid.", "sample": {"invoiceId": "INV-1", "state": "paid"},
        "statusPath": "/state", "schema": schema});
    let r = app
        .operator(Method::POST, "/v1/admin/event-types")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let bad_schema = json!({"name": "x.y", "schema": {"type": "nonsense"}});
    let (status, _, v) = error_code(
        app.operator(Method::POST, "/v1/admin/event-types")
            .json(&bad_schema)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, v["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("schema"))
    );

    let who = app.integrator("acme").await;
    let catalog: Value = app
        .as_integrator(&who, Method::GET, "/v1/event-types")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"invoice.paid")
            && names.contains(&"workspace-created")
            && names.contains(&"contract.expired")
    );
    app.create_webhook(&who, json!({"applyToAllDescendants": false, "url": "https://x.example", "triggers": ["invoice.paid"], "status": "enabled"})).await;

    let r = app
        .operator(Method::POST, "/v1/events")
        .json(&json!({"type": "invoice.paid", "workspaceId": "acme", "data": {"invoiceId": 7}}))
        .send()
        .await
        .unwrap();
    let (status, _, v) = error_code(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "data");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/invoiceId"),
        "{v}"
    );
    app.publish(
        json!({"type": "invoice.paid", "workspaceId": "acme", "data": {"invoiceId": "INV-2"}}),
    )
    .await;

    let (status, code, _) = error_code(
        app.operator(Method::DELETE, "/v1/admin/event-types/invoice.paid")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "conflict"),
        "a subscribed type stays"
    );
}

async fn the_emulator_sends_a_real_notification_and_reports_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let h = app
        .create_webhook(&who, json!({"applyToAllDescendants": false, "url": rx.url("/emu"), "triggers": ["workspace-created"], "status": "enabled", "secret": "emu-secret"}))
        .await;
    let r = app
        .as_integrator(
            &who,
            Method::POST,
            &format!("/v1/settings/webhooks/{}/test", h["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    let got = rx.wait_for(1, std::time::Duration::from_secs(5)).await;
    assert!(verify_signature("emu-secret", &got[0]));
    assert_eq!(
        got[0].json()["data"]["companyName"],
        "company1",
        "the type's sample is the default data"
    );
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["response"]["status"], 200);
    assert_eq!(report["response"]["body"], "answered 200");
    assert_eq!(
        report["request"]["headers"]["authorization"], "***",
        "credentials are redacted"
    );
    assert_eq!(
        report["request"]["headers"]["webhook-id"],
        got[0].header("webhook-id").unwrap()
    );
    assert_eq!(
        report["request"]["body"].as_str().unwrap().as_bytes(),
        got[0].body.as_slice()
    );

    // An unsaved webhook, a chosen event, a failing receiver.
    rx.script(&[503]);
    let report: Value = app
        .as_integrator(&who, Method::POST, "/v1/emulator")
        .json(&json!({"webhook": {"applyToAllDescendants": false, "url": rx.url("/draft"), "triggers": ["contract.send"], "status": "enabled"},
            "type": "contract.send", "data": {"status": "sent"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            report["outcome"].as_str(),
            report["response"]["status"].as_i64()
        ),
        (Some("http_status"), Some(503))
    );
    assert_eq!(rx.received()[1].json()["data"], json!({"status": "sent"}));

    // Nobody listening: a port of our own, bound but not listening (a just-freed port could
    // be taken by someone else meanwhile).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = socket.local_addr().unwrap();
    let report: Value = app
        .as_integrator(&who, Method::POST, "/v1/emulator")
        .json(&json!({"applyToAllDescendants": false, "url": format!("http://{closed}/"), "triggers": ["contract.send"], "status": "enabled"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["outcome"], "connect", "{report}");
    assert!(report["response"].is_null());
}

async fn loopback_receivers_are_blocked_without_an_allow_list(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_ALLOW_ADDRESSES", "")]).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    for url in [rx.url("/"), format!("http://localhost:{}/", rx.addr.port())] {
        let report: Value = app
            .as_integrator(&who, Method::POST, "/v1/emulator")
            .json(&json!({"applyToAllDescendants": false, "url": url, "triggers": ["contract.send"], "status": "enabled"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(report["outcome"], "blocked_address", "{url}: {report}");
    }
    assert!(rx.received().is_empty());
}

/// A receiver that takes the connection, writes `answer` (maybe nothing) and then holds the
/// connection open without another byte.
async fn stalling_receiver(answer: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(answer).await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

async fn the_timeout_covers_the_answer_and_a_body_cut_short_keeps_its_status(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_DELIVERY__TIMEOUT", "1s")]).await;
    let who = app.integrator("acme").await;
    let emulate = |addr: std::net::SocketAddr| {
        app.as_integrator(&who, Method::POST, "/v1/emulator")
            .json(&json!({"applyToAllDescendants": false, "url": format!("http://{addr}/"), "triggers": ["contract.send"], "status": "enabled"}))
            .send()
    };
    // Connected, but no answer at all.
    let silent = stalling_receiver(b"").await;
    let report: Value = emulate(silent).await.unwrap().json().await.unwrap();
    assert_eq!(report["outcome"], "timeout", "{report}");
    assert!(report["response"].is_null(), "{report}");
    // The status arrives, the body never finishes: the status decides, the error says why the
    // body is short.
    let partial = stalling_receiver(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await;
    let report: Value = emulate(partial).await.unwrap().json().await.unwrap();
    assert_eq!(report["outcome"], "ok", "{report}");
    assert_eq!(report["response"]["status"], 200, "{report}");
    assert_eq!(report["response"]["body"], "partial", "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("reading the response body")),
        "{report}"
    );
}

crate::both_backends!(
    operators_define_event_types_and_their_schema_is_enforced,
    the_emulator_sends_a_real_notification_and_reports_it,
    loopback_receivers_are_blocked_without_an_allow_list,
    the_timeout_covers_the_answer_and_a_body_cut_short_keeps_its_status,
);

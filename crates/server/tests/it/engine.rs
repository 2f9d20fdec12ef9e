//! The delivery engine under hard receivers: the delivery log, retry and replay, 410, auto-disable,
//! redirects, isolation from a slow receiver, metrics.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Integrator, TestApp, eventually, get};
use crate::receiver::TestReceiver;

const WAIT: Duration = Duration::from_secs(15);

fn hook(url: &str) -> Value {
    json!({"applyToAllDescendants": false, "url": url, "triggers": ["workorder.created"], "status": "enabled"})
}

async fn the_delivery_log_shows_attempts_and_failed_deliveries_can_be_retried_and_replayed(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_DELIVERY__RETRY_SCHEDULE", "200ms")]).await;
    let rx = TestReceiver::start().await;
    rx.script(&[500, 500, 500]);
    let who = app.integrator("acme").await;
    let mut body = hook(&rx.url("/"));
    body["headers"] = json!({"X-Api-Key": "very-secret"});
    let h = app.create_webhook(&who, body).await;
    let id = h["id"].as_str().unwrap();
    let published = app
        .publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": 1}}))
        .await;

    // Two attempts (the schedule has one retry), both 500: the delivery fails.
    let list_path = format!("/v1/settings/webhooks/{id}/deliveries?state=failed");
    eventually(|| async {
        get(&app, &who, &list_path).await["data"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    let list = get(&app, &who, &list_path).await;
    let delivery = &list["data"][0];
    assert_eq!(
        (
            delivery["attempts"].as_i64(),
            delivery["lastStatus"].as_i64()
        ),
        (Some(2), Some(500))
    );
    assert_eq!(delivery["eventId"], published["id"]);
    let did = delivery["id"].as_str().unwrap();
    let detail = get(&app, &who, &format!("/v1/deliveries/{did}")).await;
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["outcome"], "http_status");
    assert_eq!(attempts[0]["responseBody"], "answered 500");
    assert_eq!(attempts[0]["requestHeaders"]["x-api-key"], "***");
    assert_eq!(attempts[0]["requestHeaders"]["authorization"], "***");
    assert_eq!(attempts[0]["requestHeaders"]["webhook-id"], did);
    assert!(!detail.to_string().contains("very-secret"));
    assert_eq!(
        get(
            &app,
            &who,
            &format!("/v1/settings/webhooks/{id}/deliveries?state=pending")
        )
        .await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // A manual retry: one more attempt (500 again), then failed again.
    let r = app
        .as_integrator(&who, Method::POST, &format!("/v1/deliveries/{did}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    rx.wait_for(3, WAIT).await;
    eventually(|| async {
        get(&app, &who, &format!("/v1/deliveries/{did}")).await["state"] == "failed"
    })
    .await;

    // Replay the window: the receiver now accepts.
    let since = tidings_core::rfc3339(app.clock.now_ms() - 60_000);
    let r: Value = app
        .as_integrator(
            &who,
            Method::POST,
            &format!("/v1/settings/webhooks/{id}/replay"),
        )
        .json(&json!({"since": since}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["replayed"], 1);
    eventually(|| async {
        get(&app, &who, &format!("/v1/deliveries/{did}")).await["state"] == "succeeded"
    })
    .await;
    assert!(
        rx.received()
            .iter()
            .all(|r| r.header("webhook-id") == Some(did)),
        "same message id throughout"
    );

    // The operator sees the event with its delivery.
    let event: Value = app
        .operator(
            Method::GET,
            &format!("/v1/events/{}", published["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(event["deliveries"][0]["state"], "succeeded");
    assert_eq!(event["data"], json!({"n": 1}));
}

async fn gone_disables_the_webhook_and_tells_the_operator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rx, ops_rx) = (TestReceiver::start().await, TestReceiver::start().await);
    rx.script(&[410]);
    let who = app.integrator("acme").await;
    let h = app.create_webhook(&who, hook(&rx.url("/"))).await;
    // The operator listens on the operational workspace.
    let (client_id, secret) = app.create_client("tidings-operator").await;
    let ops = Integrator {
        token: app.token(&client_id, &secret).await,
        client_id,
        workspace: "tidings-operator".into(),
    };
    let mut ops_hook = hook(&ops_rx.url("/ops"));
    ops_hook["triggers"] = json!(["webhook.disabled"]);
    app.create_webhook(&ops, ops_hook).await;

    app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .await;
    let got = ops_rx.wait_for(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["type"], "webhook.disabled");
    assert_eq!(body["data"]["webhookId"], h["id"]);
    assert_eq!(body["data"]["workspaceId"], "acme");
    let now = get(
        &app,
        &who,
        &format!("/v1/settings/webhooks/{}", h["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(now["status"], "disabled");
    assert!(now["disabledReason"].as_str().unwrap().contains("410"));
    // Disabled: later events make no delivery for it.
    let later = app
        .publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .await;
    assert_eq!(later["deliveries"], 0, "{later}");
    assert_eq!(rx.received().len(), 1);
    // Turning it on again clears the reason.
    let on: Value = app
        .as_integrator(
            &who,
            Method::PATCH,
            &format!("/v1/settings/webhooks/{}", h["id"].as_str().unwrap()),
        )
        .json(&json!({"status": "enabled"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(on.get("disabledReason").is_none());
}

async fn a_webhook_failing_for_the_configured_period_is_disabled(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__AUTO_DISABLE_AFTER", "1h"),
            (
                "TIDINGS_DELIVERY__RETRY_SCHEDULE",
                "200ms,200ms,200ms,200ms,200ms",
            ),
        ],
    )
    .await;
    let rx = TestReceiver::start().await;
    rx.script(&[500; 10]);
    let who = app.integrator("acme").await;
    let h = app.create_webhook(&who, hook(&rx.url("/"))).await;
    app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .await;
    // The second attempt is sent only after the first failure was recorded (the streak began).
    rx.wait_for(2, WAIT).await;
    // An hour and a bit of failures, without sleeping: move the clock.
    app.clock.advance(Duration::from_secs(3700));
    let path = format!("/v1/settings/webhooks/{}", h["id"].as_str().unwrap());
    eventually(|| async { get(&app, &who, &path).await["status"] == "disabled" }).await;
    let w = get(&app, &who, &path).await;
    assert!(
        w["disabledReason"]
            .as_str()
            .unwrap()
            .contains("automatically")
    );
}

async fn redirects_are_not_followed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (rx, target) = (TestReceiver::start().await, TestReceiver::start().await);
    rx.script(&[302]);
    let who = app.integrator("acme").await;
    let h = app.create_webhook(&who, hook(&rx.url("/"))).await;
    let report: Value = app
        .as_integrator(
            &who,
            Method::POST,
            &format!("/v1/settings/webhooks/{}/test", h["id"].as_str().unwrap()),
        )
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
        (Some("http_status"), Some(302))
    );
    assert!(target.received().is_empty());
}

async fn a_slow_receiver_does_not_delay_the_others(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__CONCURRENCY", "16"),
            ("TIDINGS_DELIVERY__PER_WEBHOOK_CONCURRENCY", "4"),
            ("TIDINGS_DELIVERY__TIMEOUT", "20s"),
            ("TIDINGS_DELIVERY__LEASE", "30s"),
            ("TIDINGS_DELIVERY__SHUTDOWN_GRACE", "100ms"),
        ],
    )
    .await;
    let slow = TestReceiver::start().await;
    slow.set_delay(Duration::from_secs(10));
    let who = app.integrator("acme").await;
    let mut slow_hook = hook(&slow.url("/"));
    slow_hook["triggers"] = json!(["contract.create"]);
    app.create_webhook(&who, slow_hook).await;
    let mut healthy = Vec::new();
    for _ in 0..10 {
        let rx = TestReceiver::start().await;
        app.create_webhook(&who, hook(&rx.url("/"))).await;
        healthy.push(rx);
    }
    // 40 deliveries for the slow receiver go first and would fill every slot without isolation.
    let events: Vec<Value> = (0..40)
        .map(|n| json!({"type": "contract.create", "workspaceId": "acme", "data": {"n": n}}))
        .collect();
    app.operator(Method::POST, "/v1/events/batch")
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    slow.wait_for(4, WAIT).await;

    let started = Instant::now();
    for n in 0..3 {
        app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": n}}))
            .await;
    }
    for rx in &healthy {
        rx.wait_for(3, Duration::from_secs(5)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "healthy receivers waited {took:?}"
    );
    assert!(
        slow.received().len() <= 4,
        "at most 4 requests in flight to the slow receiver"
    );
}

async fn a_fast_receiver_earns_more_than_the_floor_and_a_slow_one_does_not(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__PER_WEBHOOK_CONCURRENCY", "2"),
            ("TIDINGS_DELIVERY__PER_WEBHOOK_CONCURRENCY_MAX", "12"),
            ("TIDINGS_DELIVERY__SHUTDOWN_GRACE", "100ms"),
        ],
    )
    .await;
    let fast = TestReceiver::start().await;
    fast.set_delay(Duration::from_millis(20));
    let slow = TestReceiver::start().await;
    slow.set_delay(Duration::from_millis(1_100));
    let who = app.integrator("acme").await;
    let mut fast_hook = hook(&fast.url("/"));
    fast_hook["triggers"] = json!(["contract.create"]);
    app.create_webhook(&who, fast_hook).await;
    let mut slow_hook = hook(&slow.url("/"));
    slow_hook["triggers"] = json!(["workorder.created"]);
    app.create_webhook(&who, slow_hook).await;
    for kind in ["contract.create", "workorder.created"] {
        let events: Vec<Value> = (0..200)
            .map(|n| json!({"type": kind, "workspaceId": "acme", "data": {"n": n}}))
            .collect();
        app.operator(Method::POST, "/v1/events/batch")
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap();
    }
    fast.wait_for(200, WAIT).await;
    slow.wait_for(8, WAIT).await;
    let (fast_max, slow_max) = (fast.max_in_flight(), slow.max_in_flight());
    assert!(
        (3..=12).contains(&fast_max),
        "a receiver answering in 20 ms earns slots above the floor of 2, up to the max of 12: {fast_max}"
    );
    assert_eq!(
        slow_max, 2,
        "a receiver answering in over 1 s stays at the floor"
    );
}

async fn metrics_count_events_and_attempts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook(&rx.url("/"))).await;
    app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .await;
    rx.wait_for(1, WAIT).await;
    let metrics = || async {
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    eventually(|| async {
        let t = metrics().await;
        t.contains("tidings_delivery_attempts_total{outcome=\"ok\"} 1")
            && t.contains("tidings_queue_depth 0")
    })
    .await;
    let text = metrics().await;
    assert!(text.contains("tidings_events_published_total 1"), "{text}");
    assert!(text.contains("tidings_queue_depth 0"), "{text}");
    assert!(
        text.contains("tidings_attempt_duration_seconds_count 1"),
        "{text}"
    );
}

async fn retention_removes_finished_work_then_old_events(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_RETENTION__INTERVAL", "50ms"),
            ("TIDINGS_RETENTION__SUCCEEDED", "1h"),
            ("TIDINGS_RETENTION__FAILED", "2h"),
        ],
    )
    .await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let h = app.create_webhook(&who, hook(&rx.url("/"))).await;
    let event = app
        .publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {}}))
        .await;
    let list = format!(
        "/v1/settings/webhooks/{}/deliveries?state=succeeded",
        h["id"].as_str().unwrap()
    );
    eventually(|| async {
        get(&app, &who, &list).await["data"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    let event_path = format!("/v1/events/{}", event["id"].as_str().unwrap());

    app.clock.advance(Duration::from_secs(3601));
    eventually(|| async {
        get(&app, &who, &list).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    let r = app.operator(Method::GET, &event_path).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the event outlives its succeeded delivery"
    );

    app.clock.advance(Duration::from_secs(2 * 3600));
    eventually(|| async {
        app.operator(Method::GET, &event_path)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::NOT_FOUND
    })
    .await;
}

async fn an_idempotency_key_is_honoured_for_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_workspace("acme", json!({})).await;
    let body = json!({"type": "workorder.created", "workspaceId": "acme", "data": {}, "idempotencyKey": "k-1"});
    let first = app.publish(body.clone()).await;
    let again = app.publish(body.clone()).await;
    assert_eq!(
        (again["id"].clone(), again["duplicate"].as_bool()),
        (first["id"].clone(), Some(true))
    );
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let later = app.publish(body).await;
    assert_ne!(later["id"], first["id"]);
    assert_eq!(later["duplicate"], false);
}

/// Concurrent publishes of one key (commits of several batches overlap on PostgreSQL): one
/// event, every caller gets its id.
async fn concurrent_publishes_with_one_idempotency_key_make_one_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    app.create_webhook(&who, hook(&rx.url("/"))).await;
    let mut calls = Vec::new();
    let app = &app;
    for n in 0..40 {
        // Other events in between, so the repeats land in different batches.
        let key = if n % 2 == 0 {
            "same".to_string()
        } else {
            format!("other-{n}")
        };
        let body = json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": n}, "idempotencyKey": key});
        calls.push(async move { (n, app.publish(body).await) });
    }
    let results = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .filter(|(n, _)| n % 2 == 0)
        .map(|(_, r)| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one event for the repeated key: {ids:?}");
    // The deliveries that exist: one per distinct event (the receiver answers 200 at once, so
    // none is sent twice).
    let events: std::collections::HashMap<&str, i64> = results
        .iter()
        .map(|(_, r)| (r["id"].as_str().unwrap(), r["deliveries"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        events.values().sum::<i64>(),
        21,
        "20 other events and one for the key"
    );
    rx.wait_for(21, WAIT).await;
    assert_eq!(rx.received().len(), 21);
}

crate::both_backends!(
    retention_removes_finished_work_then_old_events,
    an_idempotency_key_is_honoured_for_a_day,
    concurrent_publishes_with_one_idempotency_key_make_one_event,
    the_delivery_log_shows_attempts_and_failed_deliveries_can_be_retried_and_replayed,
    gone_disables_the_webhook_and_tells_the_operator,
    a_webhook_failing_for_the_configured_period_is_disabled,
    redirects_are_not_followed,
    a_slow_receiver_does_not_delay_the_others,
    a_fast_receiver_earns_more_than_the_floor_and_a_slow_one_does_not,
    metrics_count_events_and_attempts,
);

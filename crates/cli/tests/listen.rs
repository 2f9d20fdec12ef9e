//! `tidings listen` against a real server: a published event reaches a local receiver whose
//! check with the stock `standardwebhooks` crate passes, the delivery log shows the local
//! status, the CLI reconnects after the server restarts, and a session never sees another
//! workspace's events.

use std::convert::Infallible;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tidings_client::{Client, NewEvent, WorkspaceInput};

#[path = "common/running.rs"]
mod running;
use running::{BIN, OPERATOR_KEY, Running, server};

/// What the local receiver got: (workspace of the event, verified by `standardwebhooks`).
type Received = Arc<Mutex<Vec<(String, bool)>>>;

/// A local endpoint that checks each notification with the stock Standard Webhooks library and
/// answers 204 when it verifies, 401 when not. The secret is set once the session is open.
async fn receiver(secret: Arc<Mutex<Option<String>>>) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (secret, seen) = (secret.clone(), seen.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (secret, seen) = (secret.clone(), seen.clone());
                    async move {
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let key = secret.lock().unwrap().clone().unwrap_or_default();
                        let verified = standardwebhooks::Webhook::new(&key)
                            .and_then(|wh| wh.verify(&body, &headers))
                            .is_ok();
                        let workspace = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v["workspaceId"].as_str().map(String::from))
                            .unwrap_or_default();
                        seen.lock().unwrap().push((workspace, verified));
                        let status = if verified { 204 } else { 401 };
                        let mut r = hyper::Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, received)
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "not reached in time: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn publish(operator: &Client, workspace: &str, n: u64) -> u64 {
    operator
        .publish(&NewEvent {
            kind: "listen.test".into(),
            workspace_id: workspace.into(),
            data: json!({"n": n}),
            ..Default::default()
        })
        .await
        .unwrap()
        .deliveries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_signed_notifications_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let (server_process, url) = server(data.path(), "127.0.0.1:0");
    let listen_addr = url.trim_start_matches("http://").to_string();
    let operator = Client::operator(&url, OPERATOR_KEY).unwrap();
    operator
        .create_event_type(&json!({"name": "listen.test"}))
        .await
        .unwrap();
    let mut credentials = Vec::new();
    for ws in ["a", "b"] {
        operator
            .create_workspace(&WorkspaceInput {
                id: Some(ws.into()),
                name: ws.into(),
                integration_enabled: Some(true),
                ..Default::default()
            })
            .await
            .unwrap();
        credentials.push(operator.create_client(ws, "cli").await.unwrap());
    }
    let secret = Arc::new(Mutex::new(None));
    let (local, received) = receiver(secret.clone()).await;

    let a = &credentials[0];
    let mut cmd = Command::new(BIN);
    cmd.args([
        "listen",
        "--forward-to",
        &local,
        "--events",
        "listen.test",
        "-o",
        "json",
    ])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("TIDINGS_URL", &url)
    .env("TIDINGS_CLIENT_ID", &a.client_id)
    .env("TIDINGS_CLIENT_SECRET", a.client_secret.as_deref().unwrap())
    .env("TIDINGS_WORKSPACE", "a");
    let (listen, _) = Running::start(cmd, "ready:");
    let out = listen.output();
    let session_secret = out
        .lines()
        .find_map(|l| l.strip_prefix("notifications are signed with "))
        .expect("the CLI prints the session's secret")
        .trim()
        .to_string();
    *secret.lock().unwrap() = Some(session_secret);

    // B's event: no session of B; A's session must not see it. Then A's event arrives, signed.
    assert_eq!(publish(&operator, "b", 1).await, 0);
    assert_eq!(publish(&operator, "a", 2).await, 1);
    wait_until("A's event at the local endpoint", || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        received.lock().unwrap().clone(),
        vec![("a".to_string(), true)]
    );
    listen.wait_for("\"status\":204", 1);

    // The delivery log shows the local answer.
    let integrator =
        Client::integrator(&url, &a.client_id, a.client_secret.as_deref().unwrap(), "a").unwrap();
    let webhooks: Vec<_> = integrator.webhooks().try_collect().await.unwrap();
    assert_eq!(webhooks.len(), 1, "the session is a webhook of A");
    let session = webhooks[0].id.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d: Vec<_> = integrator
            .deliveries(&session, None)
            .try_collect()
            .await
            .unwrap();
        if d.first()
            .is_some_and(|d| d.state == "succeeded" && d.last_status == Some(204))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the attempt is not recorded: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The server restarts: the CLI reconnects by itself, and the next event still arrives.
    drop(server_process);
    let (_server_again, _) = server(data.path(), &listen_addr);
    listen.wait_for("ready:", 2);
    assert_eq!(publish(&operator, "a", 3).await, 1);
    wait_until("the event after the restart", || {
        received.lock().unwrap().len() == 2
    })
    .await;
    let all = received.lock().unwrap().clone();
    assert!(
        all.iter().all(|(ws, verified)| ws == "a" && *verified),
        "{all:?}"
    );
}

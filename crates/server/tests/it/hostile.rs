//! Receivers that integrators control may answer anything: endless interim answers, endless
//! trailers, huge heads, a byte at a time, broken framing. Each attempt ends within its timeout
//! with an outcome that says what happened, and a healthy webhook beside them keeps its pace.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, TestApp};
use crate::receiver::TestReceiver;

/// A receiver that reads the request's head, then writes `answer` (which may never end).
async fn hostile(answer: Answer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                answer(stream).await;
            });
        }
    });
    addr
}

/// Writes `answer` once and holds the connection open (past the attempt's timeout).
async fn answer_once(mut s: tokio::net::TcpStream, answer: &'static [u8]) {
    let _ = s.write_all(answer).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// Writes `chunk` forever (until the peer goes).
async fn forever(mut s: tokio::net::TcpStream, head: &'static [u8], chunk: &'static [u8]) {
    if s.write_all(head).await.is_err() {
        return;
    }
    while s.write_all(chunk).await.is_ok() {}
}

async fn emulate(
    app: &TestApp,
    who: &crate::harness::Integrator,
    addr: SocketAddr,
) -> (Value, Duration) {
    let started = Instant::now();
    let report: Value = app
        .as_integrator(who, Method::POST, "/v1/emulator")
        .json(&json!({"applyToAllDescendants": false, "url": format!("http://{addr}/"), "triggers": ["contract.send"], "status": "enabled"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (report, started.elapsed())
}

/// How a hostile receiver answers on the connection it accepted.
type Answer = fn(tokio::net::TcpStream) -> futures::future::BoxFuture<'static, ()>;

async fn hostile_answers_end_in_time_with_an_outcome_that_says_why(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("TIDINGS_DELIVERY__TIMEOUT", "3s"),
            ("TIDINGS_EMULATOR__CONCURRENCY_PER_WORKSPACE", "0"),
            ("TIDINGS_EMULATOR__REQUESTS_PER_MINUTE_PER_WORKSPACE", "0"),
        ],
    )
    .await;
    let who = app.integrator("acme").await;
    let cases: Vec<(&str, Answer, &[&str])> = vec![
        (
            "endless 1xx",
            |s| {
                Box::pin(forever(
                    s,
                    b"",
                    b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
                ))
            },
            &["too_large"],
        ),
        (
            "endless trailers",
            |s| {
                Box::pin(forever(
                    s,
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
                    b"x-trailer: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                ))
            },
            &["ok"],
        ),
        (
            "a 10 MB head",
            |s| {
                Box::pin(forever(
                    s,
                    b"HTTP/1.1 200 OK\r\n",
                    b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                ))
            },
            &["too_large"],
        ),
        (
            "a byte a second",
            |mut s| {
                Box::pin(async move {
                    for b in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" {
                        if s.write_all(&[*b]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                })
            },
            &["timeout"],
        ),
        (
            "a plus in the length",
            |s| {
                Box::pin(answer_once(
                    s,
                    b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello",
                ))
            },
            &["protocol"],
        ),
        (
            "a padded chunk size",
            |s| {
                Box::pin(answer_once(
                    s,
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n  2\r\nok\r\n0\r\n\r\n",
                ))
            },
            &["ok", "protocol"],
        ),
        (
            "garbage",
            |s| Box::pin(answer_once(s, b"SMTP ready\r\n\r\n")),
            &["protocol"],
        ),
        (
            "a second, unasked answer",
            |s| {
                Box::pin(answer_once(s, b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n"))
            },
            &["ok"],
        ),
        (
            "bare line feeds",
            |s| Box::pin(answer_once(s, b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok")),
            &["ok", "protocol"],
        ),
    ];
    for (name, answer, outcomes) in cases {
        let addr = hostile(answer).await;
        let (report, took) = emulate(&app, &who, addr).await;
        assert!(
            took < Duration::from_secs(5),
            "{name}: took {took:?}: {report}"
        );
        let outcome = report["outcome"].as_str().unwrap_or_default();
        assert!(outcomes.contains(&outcome), "{name}: {report}");
        if outcome != "ok" {
            assert!(
                report["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{name}: {report}"
            );
        }
    }
}

async fn a_healthy_webhook_keeps_its_pace_beside_hostile_receivers(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("TIDINGS_DELIVERY__TIMEOUT", "3s")]).await;
    let rx = TestReceiver::start().await;
    let who = app.integrator("acme").await;
    let endless = hostile(|s| Box::pin(forever(s, b"", b"HTTP/1.1 100 Continue\r\n\r\n"))).await;
    for i in 0..4 {
        app.create_webhook(
            &who,
            json!({"name": format!("hostile {i}"), "applyToAllDescendants": false, "url": format!("http://{endless}/{i}"), "triggers": ["workorder.created"], "status": "enabled"}),
        )
        .await;
    }
    app.create_webhook(
        &who,
        json!({"name": "healthy", "applyToAllDescendants": false, "url": rx.url("/"), "triggers": ["workorder.created"], "status": "enabled"}),
    )
    .await;
    for n in 0..20 {
        let sent = Instant::now();
        app.publish(json!({"type": "workorder.created", "workspaceId": "acme", "data": {"n": n}}))
            .await;
        rx.wait_for(n + 1, Duration::from_secs(2)).await;
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "event {n} took {:?} beside the hostile receivers",
            sent.elapsed()
        );
    }
}

crate::both_backends!(
    hostile_answers_end_in_time_with_an_outcome_that_says_why,
    a_healthy_webhook_keeps_its_pace_beside_hostile_receivers,
);

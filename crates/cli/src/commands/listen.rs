//! `tidings listen`: receive a workspace's notifications on this machine without exposing it.
//! Opens a listen session (ADR 0018), forwards each notification to a local URL with its
//! original headers and signature, prints a line per delivery, reports the local answer back
//! (the delivery log shows it), and reconnects with backoff when the connection drops.

use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use tidings_client::{Client, Error, ListenEvent, ListenSession, LocalAnswer, Notification};

use super::output::Format;
use super::{Connection, Outcome};

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n\n    tidings listen --forward-to http://localhost:3000/hook --events invoice.paid,invoice.voided"
)]
pub struct Listen {
    /// The local endpoint each notification is sent to.
    #[arg(long, value_name = "URL")]
    pub forward_to: String,
    /// Event types to receive, comma-separated (default: every type of the catalog).
    #[arg(long, value_delimiter = ',')]
    pub events: Option<Vec<String>>,
}

pub async fn listen(conn: &Connection, args: &Listen) -> Outcome {
    let api = conn.integrator()?;
    let format = conn.format();
    let local = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| super::usage(format!("--forward-to: {e}")))?;
    let session = api.open_listen_session(args.events.as_deref()).await?;
    eprintln!(
        "listen session {} of workspace {}: {} → {}",
        session.id,
        session.workspace_id,
        session.triggers.join(","),
        args.forward_to
    );
    eprintln!("notifications are signed with {}", session.secret);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(250);
    loop {
        let served = tokio::select! {
            _ = &mut stop => break,
            served = serve(&api, &session, &local, &args.forward_to, format) => served,
        };
        match served {
            Ok(true) => backoff = Duration::from_millis(250),
            Ok(false) => {}
            Err(e) if e.status() == Some(404) => {
                eprintln!("the session was closed on the server");
                return Err(e.into());
            }
            Err(
                e @ (Error::OAuth { .. }
                | Error::Api {
                    status: 401 | 403, ..
                }),
            ) => {
                return Err(e.into());
            }
            Err(e) => eprintln!("connection lost ({e}); reconnecting in {backoff:?}"),
        }
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    match api.close_listen_session(&session.id).await {
        Ok(()) => eprintln!("session closed"),
        Err(e) => eprintln!(
            "could not close the session ({e}); `tidings webhooks delete {}` removes it",
            session.id
        ),
    }
    Ok(())
}

/// Holds the stream until it ends; whether it got as far as `ready`.
async fn serve(
    api: &Client,
    session: &ListenSession,
    local: &reqwest::Client,
    forward_to: &str,
    format: Format,
) -> Result<bool, Error> {
    let mut events = api.listen_stream(&session.id).await?;
    let mut ready = false;
    while let Some(event) = events.next().await {
        match event? {
            ListenEvent::Ready => {
                ready = true;
                eprintln!("ready: waiting for notifications (Ctrl-C stops)");
            }
            ListenEvent::Notification(n) => {
                // Each on its own task: a slow local endpoint does not hold the others.
                let (api, local, id, to) = (
                    api.clone(),
                    local.clone(),
                    session.id.clone(),
                    forward_to.to_string(),
                );
                tokio::spawn(async move {
                    let answer = forward(&local, &to, &n).await;
                    print_line(format, &n, &answer);
                    if let Err(e) = api.answer_listen(&id, &answer).await {
                        eprintln!("could not report the answer to {} ({e})", n.message_id);
                    }
                });
            }
        }
    }
    Ok(ready)
}

/// Sends one notification to the local endpoint as Tidings built it.
async fn forward(local: &reqwest::Client, to: &str, n: &Notification) -> LocalAnswer {
    let mut req = local.post(to).body(n.body.clone());
    for (name, value) in &n.headers {
        req = req.header(name, value);
    }
    let started = Instant::now();
    let mut answer = LocalAnswer {
        attempt: n.attempt.clone(),
        ..Default::default()
    };
    match req.send().await {
        Ok(r) => {
            answer.status = Some(r.status().as_u16());
            answer.body = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(4096)
                .collect();
        }
        Err(e) => {
            let cause =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            answer.error = Some(format!("{to}: {cause}"));
        }
    }
    answer.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    answer
}

fn print_line(format: Format, n: &Notification, a: &LocalAnswer) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"time": now.to_string(), "type": n.event_type, "id": n.message_id,
                "status": a.status, "ms": a.duration_ms, "error": a.error})
        ),
        Format::Table => {
            let status = a
                .status
                .map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string());
            println!(
                "{now}  {}  {}  {status}  {} ms",
                n.event_type, n.message_id, a.duration_ms
            );
        }
    }
}

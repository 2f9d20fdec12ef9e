//! Listen sessions (`tidings listen`): a webhook of the integrator's workspace whose
//! notifications arrive over a server-sent-event stream held open by this client, which
//! forwards each to a local endpoint and reports the local answer back as the attempt's
//! outcome.

use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Client, Error, Result, seg};

/// An open session. Its `id` is also the id of its webhook (whose deliveries the log shows).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenSession {
    pub id: String,
    pub workspace_id: String,
    pub triggers: Vec<String>,
    /// The secret the notifications are signed with.
    pub secret: String,
}

/// One notification: the request Tidings built (signature included), to send to the local
/// endpoint as it is.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Names this attempt in [`LocalAnswer::attempt`].
    pub attempt: String,
    pub message_id: String,
    pub event_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What the local endpoint answered.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalAnswer {
    pub attempt: String,
    /// The local status; `None` when the endpoint could not be reached (say why in `error`).
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The start of the local answer's body (the server keeps 4 KiB).
    pub body: String,
}

/// What a session's stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenEvent {
    /// The stream is connected: notifications published from now on arrive on it.
    Ready,
    Notification(Notification),
}

impl Client {
    /// Opens a session receiving `triggers` (default: every type of the catalog).
    pub async fn open_listen_session(&self, triggers: Option<&[String]>) -> Result<ListenSession> {
        let body = triggers.map_or_else(|| json!({}), |t| json!({ "triggers": t }));
        self.call(Method::POST, "/v1/listen/sessions", Some(&body))
            .await
    }

    /// The session's stream, until the server ends it or the connection drops.
    pub async fn listen_stream(
        &self,
        session: &str,
    ) -> Result<BoxStream<'static, Result<ListenEvent>>> {
        let path = format!("/v1/listen/sessions/{}/stream", seg(session));
        let mut response = None;
        for attempt in 0..2 {
            let r = self.authorized(Method::GET, &path).await?.send().await?;
            if r.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token();
                continue;
            }
            response = Some(r);
            break;
        }
        let r = response.expect("the loop sets it");
        if !r.status().is_success() {
            return Err(crate::error::from_response(r).await);
        }
        let events = r.bytes_stream().eventsource().filter_map(|e| async move {
            match e {
                Err(e) => Some(Err(Error::Unexpected {
                    status: 200,
                    detail: format!("the event stream broke: {e}"),
                })),
                Ok(e) if e.event == "ready" => Some(Ok(ListenEvent::Ready)),
                Ok(e) if e.event == "notification" => Some(
                    serde_json::from_str(&e.data)
                        .map(ListenEvent::Notification)
                        .map_err(|err| Error::Unexpected {
                            status: 200,
                            detail: format!("not a notification: {err}"),
                        }),
                ),
                Ok(_) => None,
            }
        });
        Ok(events.boxed())
    }

    /// Reports a local answer: it becomes the attempt's outcome in the delivery log.
    pub async fn answer_listen(&self, session: &str, answer: &LocalAnswer) -> Result<()> {
        self.send(
            Method::POST,
            &format!("/v1/listen/sessions/{}/answers", seg(session)),
            &[],
            Some(answer),
        )
        .await
        .map(|_| ())
    }

    /// Closes a session: its webhook and pending deliveries go.
    pub async fn close_listen_session(&self, session: &str) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/v1/listen/sessions/{}", seg(session)),
        )
        .await
    }
}

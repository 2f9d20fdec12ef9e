//! Listen sessions (`tidings listen`, ADR 0018): a webhook whose destination is a stream held
//! open by the integrator's CLI instead of a URL. The webhook is a real one of its workspace
//! (URL `listen:<webhook id>`), so its deliveries go through the same queue, retries, limits and
//! log as any other; only the last step differs: instead of an HTTP request, the signed
//! notification is pushed down the session's server-sent-event stream, and the attempt waits
//! for the CLI to post back what the local endpoint answered.
//!
//! The registry is per node: a session is connected to the node that serves its stream. A
//! session whose stream has been gone for [`GRACE`] (the CLI was killed, the laptop closed) is
//! closed by [`janitor`]: its webhook and pending deliveries go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::delivery::recorded::RecordedHeaders;
use crate::delivery::sender::{AttemptResult, Outcome};
use tokio_util::sync::CancellationToken;

/// The URL scheme of a listen session's webhook.
pub const SCHEME: &str = "listen:";

/// Notifications queued for one session before new ones are refused (the CLI is slow or gone).
const QUEUE: usize = 64;

/// How long a session may stay disconnected before it is closed.
pub const GRACE: Duration = Duration::from_secs(10 * 60);

/// Bytes of the local answer's body kept for the delivery log.
pub const ANSWER_BODY_BYTES: usize = 4096;

/// One notification as the CLI gets it: what it sends to the local URL, as Tidings built it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forward {
    /// Names this attempt in the answer.
    pub attempt: String,
    pub message_id: String,
    pub event_type: String,
    /// The request headers, signature included.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Forward {
    /// The notification Tidings built, as the session's CLI gets it.
    pub fn new(
        message_id: &str,
        event_type: &str,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Self {
        Self {
            attempt: format!("{message_id}.{}", tidings_core::ids::random_alnum(12)),
            message_id: message_id.to_string(),
            event_type: event_type.to_string(),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

/// What the local endpoint answered, as the CLI reports it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Answer {
    /// The `attempt` of the notification.
    pub attempt: String,
    /// The local HTTP status (100–599); absent when the local endpoint could not be reached.
    #[serde(default, deserialize_with = "http_status")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<u16>,
    #[serde(default, deserialize_with = "whole_number")]
    pub duration_ms: u64,
    /// Why there is no status (e.g. connection refused).
    #[serde(default)]
    pub error: Option<String>,
    /// The start of the local answer's body.
    #[serde(default)]
    pub body: String,
}

/// A non-negative whole number, also when written `12.0` (JSON does not tell them apart);
/// beyond `u64::MAX` it is `u64::MAX`.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = f64::deserialize(d)?;
    if n >= 0.0 && n.fract() == 0.0 {
        // The cast is exact below 2^53 and saturates above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(n as u64)
    } else {
        Err(serde::de::Error::custom(
            "must be a whole number of milliseconds",
        ))
    }
}

/// An HTTP status, also when written `204.0`.
fn http_status<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let Some(n) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if n.fract() == 0.0 && (100.0..=599.0).contains(&n) {
        // In range and whole: exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Some(n as u16))
    } else {
        Err(serde::de::Error::custom(
            "must be an HTTP status from 100 to 599",
        ))
    }
}

struct Connected {
    /// Which connection this is (a reconnect replaces an older one).
    generation: u64,
    workspace: String,
    queue: mpsc::Sender<Forward>,
}

#[derive(Default)]
struct State {
    connected: HashMap<String, Connected>,
    /// Sessions whose stream ended: their workspace and since when.
    idle: HashMap<String, (String, Instant)>,
    /// Attempts waiting for an answer: their session and where the answer goes.
    waiting: HashMap<String, (String, oneshot::Sender<Answer>)>,
    generations: u64,
}

/// The sessions connected to this node, and the attempts waiting for their answers.
pub struct Sessions {
    state: Mutex<State>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

/// Why a notification could not be handed to a session.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    #[error("the listen session is not connected")]
    NotConnected,
    #[error("the listen session has {QUEUE} notifications waiting")]
    Busy,
    #[error("the listen session did not report an answer in time")]
    NoAnswer,
}

/// A connected session's stream: yields its notifications until the server stops or another
/// connection of the same session replaces it; unregisters itself when dropped.
pub struct Stream {
    sessions: Arc<Sessions>,
    session: String,
    generation: u64,
    pub queue: mpsc::Receiver<Forward>,
    pub shutdown: CancellationToken,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut state = self.sessions.lock();
        if state
            .connected
            .get(&self.session)
            .is_some_and(|c| c.generation == self.generation)
            && let Some(c) = state.connected.remove(&self.session)
        {
            state
                .idle
                .insert(self.session.clone(), (c.workspace, Instant::now()));
        }
    }
}

impl Sessions {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            state: Mutex::default(),
            shutdown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connects `session` of `workspace`, replacing an older connection of it.
    pub fn connect(self: &Arc<Self>, session: &str, workspace: &str) -> Stream {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut state = self.lock();
        state.generations += 1;
        let generation = state.generations;
        state.idle.remove(session);
        state.connected.insert(
            session.to_string(),
            Connected {
                generation,
                workspace: workspace.to_string(),
                queue: tx,
            },
        );
        Stream {
            sessions: self.clone(),
            session: session.to_string(),
            generation,
            queue: rx,
            shutdown: self.shutdown.clone(),
        }
    }

    /// Forgets a closed session.
    pub fn forget(&self, session: &str) {
        self.lock().idle.remove(session);
    }

    /// Takes the sessions disconnected for longer than `grace` at `now`: (workspace, session).
    pub fn take_expired(&self, now: Instant, grace: Duration) -> Vec<(String, String)> {
        let mut state = self.lock();
        let expired: Vec<String> = state
            .idle
            .iter()
            .filter(|(_, (_, since))| now.saturating_duration_since(*since) >= grace)
            .map(|(s, _)| s.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|s| state.idle.remove(&s).map(|(ws, _)| (ws, s)))
            .collect()
    }

    /// Whether `session` is connected to this node.
    pub fn is_connected(&self, session: &str) -> bool {
        self.lock().connected.contains_key(session)
    }

    /// Pushes a notification to its session and waits, until `timeout`, for the answer.
    pub async fn deliver(
        &self,
        session: &str,
        forward: Forward,
        timeout: Duration,
    ) -> Result<Answer, Unreachable> {
        let attempt = forward.attempt.clone();
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            let queue = state
                .connected
                .get(session)
                .ok_or(Unreachable::NotConnected)?
                .queue
                .clone();
            match queue.try_send(forward) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return Err(Unreachable::Busy),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(Unreachable::NotConnected);
                }
            }
            state
                .waiting
                .insert(attempt.clone(), (session.to_string(), tx));
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        self.lock().waiting.remove(&attempt);
        match answer {
            Ok(Ok(a)) => Ok(a),
            _ => Err(Unreachable::NoAnswer),
        }
    }

    /// One attempt of a `listen:` webhook: sends the notification down its session's stream
    /// and records what the local endpoint answered (as the CLI reports it) like a receiver's
    /// answer. `recorded` is the request as the delivery log keeps it.
    pub async fn attempt(
        &self,
        session: &str,
        forward: Forward,
        recorded: (bytes::Bytes, RecordedHeaders),
        timeout: Duration,
    ) -> AttemptResult {
        let (request_body, request_headers) = recorded;
        let started = Instant::now();
        let mut result = AttemptResult {
            outcome: Outcome::Connect,
            request_body,
            status: None,
            request_headers,
            response_headers: RecordedHeaders::default(),
            response_body: String::new(),
            duration: Duration::ZERO,
            error: None,
            retry_after: None,
        };
        match self.deliver(session, forward, timeout).await {
            Ok(answer) => {
                let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
                result.outcome = match answer.status {
                    Some(_) if ok => Outcome::Ok,
                    Some(_) => Outcome::HttpStatus,
                    None => Outcome::Connect,
                };
                result.error = match (answer.status, answer.error) {
                    (_, Some(e)) => Some(format!("local endpoint: {e}")),
                    (Some(s), None) if !ok => Some(format!("local endpoint answered {s}")),
                    _ => None,
                };
                result.status = answer.status;
                result.response_body = answer.body;
                result.duration = Duration::from_millis(answer.duration_ms);
            }
            Err(e) => {
                result.outcome = match e {
                    Unreachable::NoAnswer => Outcome::Timeout,
                    _ => Outcome::Connect,
                };
                result.error = Some(e.to_string());
                result.duration = started.elapsed();
            }
        }
        result
    }

    /// Hands an answer to the attempt of `session` waiting for it; false if none is (late,
    /// unknown, or another session's: a session answers only its own attempts).
    pub fn answer(&self, session: &str, mut answer: Answer) -> bool {
        if answer.body.len() > ANSWER_BODY_BYTES {
            let mut cut = ANSWER_BODY_BYTES;
            while !answer.body.is_char_boundary(cut) {
                cut -= 1;
            }
            answer.body.truncate(cut);
        }
        let mut state = self.lock();
        match state.waiting.get(&answer.attempt) {
            Some((of, _)) if of == session => {}
            _ => return false,
        }
        let Some((_, tx)) = state.waiting.remove(&answer.attempt) else {
            return false;
        };
        drop(state);
        tx.send(answer).is_ok()
    }
}

/// Closes the sessions disconnected for longer than [`GRACE`], every minute until shutdown.
pub async fn janitor(
    sessions: Arc<Sessions>,
    store: tidings_store::Store,
    clock: crate::clock::Clock,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        for (workspace, session) in sessions.take_expired(Instant::now(), GRACE) {
            let still_a_session = store
                .webhook_get(&workspace, &session)
                .await
                .ok()
                .flatten()
                .is_some_and(|w| w.spec.url.starts_with(SCHEME));
            if !still_a_session {
                continue;
            }
            match store
                .webhook_delete(&workspace, &session, clock.now_ms())
                .await
            {
                Ok(()) | Err(tidings_store::StoreError::NotFound) => {
                    tracing::info!(%workspace, %session, "listen session closed: disconnected too long");
                }
                Err(e) => {
                    tracing::warn!(%workspace, %session, error = %e, "could not close an idle listen session")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(attempt: &str) -> Forward {
        Forward {
            attempt: attempt.into(),
            message_id: "msg_1".into(),
            event_type: "t".into(),
            headers: vec![],
            body: "{}".into(),
        }
    }

    #[tokio::test]
    async fn a_notification_reaches_its_stream_and_the_answer_its_attempt() {
        let sessions = Arc::new(Sessions::new(CancellationToken::new()));
        assert!(matches!(
            sessions
                .deliver("s1", forward("a0"), Duration::from_secs(1))
                .await,
            Err(Unreachable::NotConnected)
        ));
        let mut stream = sessions.connect("s1", "w1");
        let s = sessions.clone();
        let waiting =
            tokio::spawn(
                async move { s.deliver("s1", forward("a1"), Duration::from_secs(5)).await },
            );
        let got = stream.queue.recv().await.unwrap();
        assert_eq!(got.attempt, "a1");
        assert!(
            !sessions.answer(
                "s2",
                Answer {
                    attempt: "a1".into(),
                    status: Some(500),
                    duration_ms: 1,
                    error: None,
                    body: String::new(),
                }
            ),
            "another session cannot answer s1's attempt"
        );
        assert!(!sessions.answer(
            "s1",
            Answer {
                attempt: "unknown".into(),
                status: Some(200),
                duration_ms: 1,
                error: None,
                body: String::new(),
            }
        ));
        assert!(sessions.answer(
            "s1",
            Answer {
                attempt: "a1".into(),
                status: Some(204),
                duration_ms: 3,
                error: None,
                body: "x".repeat(10_000),
            }
        ));
        let answer = waiting.await.unwrap().unwrap();
        assert_eq!(
            (answer.status, answer.body.len()),
            (Some(204), ANSWER_BODY_BYTES)
        );
        drop(stream);
        assert!(!sessions.is_connected("s1"));
    }

    #[test]
    fn a_session_disconnected_past_the_grace_expires_once_unless_it_came_back() {
        let sessions = Arc::new(Sessions::new(CancellationToken::new()));
        drop(sessions.connect("gone", "w1"));
        drop(sessions.connect("back", "w2"));
        let _again = sessions.connect("back", "w2");
        let grace = Duration::from_secs(60);
        assert!(sessions.take_expired(Instant::now(), grace).is_empty());
        let later = Instant::now() + grace;
        assert_eq!(
            sessions.take_expired(later, grace),
            vec![("w1".to_string(), "gone".to_string())]
        );
        assert!(sessions.take_expired(later, grace).is_empty());
    }

    #[tokio::test]
    async fn a_reconnect_replaces_the_older_stream() {
        let sessions = Arc::new(Sessions::new(CancellationToken::new()));
        let old = sessions.connect("s1", "w1");
        let mut new = sessions.connect("s1", "w1");
        drop(old);
        assert!(
            sessions.is_connected("s1"),
            "dropping the replaced stream keeps the new one"
        );
        let s = sessions.clone();
        let waiting = tokio::spawn(async move {
            s.deliver("s1", forward("a"), Duration::from_millis(200))
                .await
        });
        assert_eq!(new.queue.recv().await.unwrap().attempt, "a");
        assert!(matches!(waiting.await.unwrap(), Err(Unreachable::NoAnswer)));
    }
}

//! Listen sessions over the API (`tidings listen`, ADR 0018): an integrator opens a session (a
//! webhook of its workspace whose destination is the session), holds its server-sent-event
//! stream, posts back what its local endpoint answered, and closes it.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{delete, get, post};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tidings_core::ids;
use tidings_core::webhook::{AuthMode, Status, Webhook, WebhookInput};

use super::doc::{Auth, Op, Routes};
use crate::auth::extract::Integrator;
use crate::error::{ApiError, ApiResult};
use crate::input::JsonBody;
use crate::listen::{Answer, SCHEME};
use crate::state::AppState;

/// What a session receives.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    /// Event types to receive (default: every type of the catalog).
    #[schemars(length(min = 1, max = 100))]
    triggers: Option<Vec<String>>,
}

/// An open session.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The session's id: also the id of its webhook, whose deliveries the log shows.
    pub id: String,
    pub workspace_id: String,
    pub triggers: Vec<String>,
    /// The secret notifications are signed with (verify them with it locally).
    pub secret: String,
}

async fn open(
    who: Integrator,
    State(state): State<AppState>,
    body: Option<JsonBody<SessionInput>>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    let input = body.map(|b| b.0).unwrap_or_default();
    let types = state.cache.event_types(&state.store).await?;
    let triggers = input
        .triggers
        .unwrap_or_else(|| types.keys().cloned().collect());
    let id = ids::webhook_id(state.clock.now_ms());
    // Validated as a webhook to an ordinary URL, then pointed at the session: the API never
    // accepts a `listen:` URL from a caller.
    let (mut spec, _) = WebhookInput {
        name: Some("tidings listen".into()),
        url: Some("https://listen.invalid/".into()),
        triggers: Some(triggers),
        status: Some(Status::Enabled),
        apply_to_all_descendants: Some(false),
        // The signature authenticates; a bearer token would name no audience.
        authorization: Some(AuthMode::None),
        ..Default::default()
    }
    .into_spec(|t| types.contains_key(t))?;
    spec.url = format!("{SCHEME}{id}");
    let webhook = super::webhooks::insert(&state, &who, id, spec).await?;
    tracing::info!(workspace = %webhook.workspace_id, session = %webhook.id, "listen session opened");
    Ok((
        StatusCode::CREATED,
        Json(SessionView {
            id: webhook.id.clone(),
            workspace_id: webhook.workspace_id.clone(),
            triggers: webhook.spec.triggers.clone(),
            secret: webhook.spec.secret.clone(),
        }),
    ))
}

/// The session's webhook, if `id` is a session of the caller's workspace.
async fn session(state: &AppState, who: &Integrator, id: &str) -> ApiResult<Webhook> {
    state
        .store
        .webhook_get(&who.workspace.id, id)
        .await?
        .filter(|w| w.spec.url.starts_with(SCHEME))
        .ok_or_else(|| ApiError::not_found("listen session"))
}

async fn stream(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    session(&state, &who, &id).await?;
    let connected = state.sender.sessions().connect(&id, &who.workspace.id);
    tracing::info!(workspace = %who.workspace.id, session = %id, "listen session connected");
    let ready = Event::default().event("ready").data(id);
    let notifications = futures::stream::unfold(connected, |mut s| async move {
        let next = tokio::select! {
            () = s.shutdown.cancelled() => None,
            f = s.queue.recv() => f,
        }?;
        let event = Event::default()
            .event("notification")
            .json_data(&next)
            .unwrap_or_default();
        Some((Ok(event), s))
    });
    let all = futures::StreamExt::chain(futures::stream::once(async { Ok(ready) }), notifications);
    Ok(Sse::new(all).keep_alive(KeepAlive::default()))
}

async fn answer(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(answer): JsonBody<Answer>,
) -> ApiResult<StatusCode> {
    session(&state, &who, &id).await?;
    // An answer nobody waits for (late, after the attempt timed out) is dropped.
    state.sender.sessions().answer(&id, answer);
    Ok(StatusCode::NO_CONTENT)
}

async fn close(
    who: Integrator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    session(&state, &who, &id).await?;
    state
        .store
        .webhook_delete(&who.workspace.id, &id, state.clock.now_ms())
        .await?;
    state.sender.sessions().forget(&id);
    tracing::info!(workspace = %who.workspace.id, session = %id, "listen session closed");
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> Routes {
    let one = "/v1/listen/sessions/{id}";
    Routes::new()
        .add(
            Op::new(
                "post",
                "/v1/listen/sessions",
                "integrator",
                Auth::Integrator,
                "Open a listen session: a webhook whose destination is the session's stream (tidings listen)",
            )
            .optional_body::<SessionInput>()
            .returns::<SessionView>(201, "The session"),
            post(open),
        )
        .add(
            Op::new(
                "get",
                "/v1/listen/sessions/{id}/stream",
                "integrator",
                Auth::Integrator,
                "The session's notifications as server-sent events: `ready`, then one `notification` (JSON) per attempt",
            )
            .empty(200, "A text/event-stream"),
            get(stream),
        )
        .add(
            Op::new(
                "post",
                "/v1/listen/sessions/{id}/answers",
                "integrator",
                Auth::Integrator,
                "Report what the local endpoint answered to a notification (the attempt's outcome; a late answer is dropped)",
            )
            .body::<Answer>()
            .empty(204, "Recorded"),
            post(answer),
        )
        .add(
            Op::new(
                "delete",
                one,
                "integrator",
                Auth::Integrator,
                "Close a listen session: its webhook and pending deliveries go",
            )
            .empty(204, "Closed"),
            delete(close),
        )
}

//! The integrator portal's own API (SPEC §10): the operator opens a portal link for a
//! workspace; a portal session reads its workspace and works the integration widget (the
//! Integration and Event Notifications switches, Regenerate credentials). Everything else the
//! portal shows goes through the integrator API with the session cookie.

use super::doc::{Auth, Op, Routes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tidings_core::secret;
use tidings_core::workspace::{Workspace, WorkspaceType};
use tidings_store::{IntegrationClient, PortalLink};

use crate::auth::extract::{Operator, Portal};
use crate::error::{ApiError, ApiResult};
use crate::input::JsonBody;
use crate::state::AppState;

/// The body of `POST /v1/admin/workspaces/{id}/portal-sessions` (optional).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalSessionInput {
    /// Seconds the link stays usable: 30 to 86400 (default `console.portal_link_ttl`, 10 min).
    #[schemars(range(min = 30, max = 86400))]
    pub expires_in: Option<u64>,
    /// Where the portal's "Back" link leads: an absolute http(s) URL of the operator's product.
    #[schemars(regex(pattern = r"^https?://"), length(max = 2048))]
    pub return_url: Option<String>,
}

/// A one-time portal link.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalSessionView {
    /// Open (or redirect the user to) this URL once; its token is in the fragment, which
    /// browsers never send to a server or in a `Referer`.
    pub url: String,
    pub expires_at: String,
}

async fn create_portal_session(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<JsonBody<PortalSessionInput>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = body.map(|b| b.0).unwrap_or_default();
    state
        .store
        .workspace_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let ttl = match input.expires_in {
        None => state.config.console.portal_link_ttl.as_secs(),
        Some(s) if (30..=86_400).contains(&s) => s,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "expiresIn",
                "must be between 30 and 86400 seconds",
            ));
        }
    };
    if let Some(u) = &input.return_url {
        let ok = u.len() <= 2048
            && url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(ApiError::invalid_field(
                "returnUrl",
                "must be an absolute http(s) URL of at most 2048 characters",
            ));
        }
    }
    let token = secret::random_token();
    let now = state.clock.now_ms();
    let expires_at = now + i64::try_from(ttl).unwrap_or(0) * 1000;
    let link = PortalLink {
        workspace_id: id.clone(),
        return_url: input.return_url,
    };
    state
        .store
        .portal_link_create(&secret::hash(token.expose()), &link, now, expires_at)
        .await?;
    tracing::info!(workspace = %id, "portal link created");
    let url = format!(
        "{}/console/portal#token={}",
        state.config.public_url,
        token.expose()
    );
    Ok((
        StatusCode::CREATED,
        Json(json!(PortalSessionView {
            url,
            expires_at: tidings_core::rfc3339(expires_at),
        })),
    ))
}

/// A plan as the portal shows it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub name: String,
    /// Whether the plan includes integration; if not, the portal shows the upgrade state.
    pub integration: bool,
    pub max_webhooks: i64,
}

/// What the portal's home needs: the workspace, its plan, its clients (no secrets) and, for a
/// channel, its children.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalWorkspaceView {
    pub workspace: Value,
    pub plan: PlanView,
    pub clients: Vec<Value>,
    pub children: Vec<Value>,
    pub return_url: Option<String>,
}

fn client_view(c: &IntegrationClient, secret: Option<&str>) -> Value {
    json!({
        "clientId": c.client_id,
        "name": c.name,
        "generation": c.generation,
        "createdAt": tidings_core::rfc3339(c.created_at),
        "regeneratedAt": c.regenerated_at.map(tidings_core::rfc3339),
        "clientSecret": secret,
    })
}

async fn portal_view(
    state: &AppState,
    ws: &Workspace,
    return_url: Option<String>,
) -> ApiResult<Value> {
    let plan = state.config.plan(&ws.plan);
    let clients = state.store.client_list(&ws.id, None, 20).await?.items;
    let children = if ws.kind == WorkspaceType::Channel {
        state.store.workspace_children(&ws.id, 500).await?
    } else {
        Vec::new()
    };
    Ok(json!(PortalWorkspaceView {
        workspace: super::workspaces::view(ws),
        plan: PlanView {
            name: ws.plan.clone(),
            integration: plan.is_some_and(|p| p.integration),
            max_webhooks: plan.map_or(0, |p| p.max_webhooks),
        },
        clients: clients.iter().map(|c| client_view(c, None)).collect(),
        children: children
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "branches": c.branches, "businessUnits": c.business_units}))
            .collect(),
        return_url,
    }))
}

async fn get_workspace(portal: Portal, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    portal_view(&state, &portal.workspace, portal.session.return_url.clone())
        .await
        .map(Json)
}

/// The portal's switches.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalSwitches {
    /// The seed's "Integration" toggle.
    pub integration_enabled: Option<bool>,
    /// The seed's "Event Notifications (Webhooks)" toggle: all of the workspace's webhooks at
    /// once, each keeping its own status.
    pub notifications_enabled: Option<bool>,
}

async fn patch_workspace(
    portal: Portal,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<PortalSwitches>,
) -> ApiResult<Json<Value>> {
    let mut ws = portal.workspace;
    if input.integration_enabled == Some(true)
        && !state.config.plan(&ws.plan).is_some_and(|p| p.integration)
    {
        return Err(ApiError::forbidden(
            "plan_upgrade_required",
            format!(
                "the plan '{}' does not include integration; upgrade your membership to enable it",
                ws.plan
            ),
        ));
    }
    if let Some(v) = input.integration_enabled {
        ws.integration_enabled = v;
    }
    if let Some(v) = input.notifications_enabled {
        ws.notifications_enabled = v;
    }
    state.store.workspace_update(&ws).await?;
    state.cache.invalidate_workspaces();
    tracing::info!(workspace = %ws.id, integration = ws.integration_enabled, notifications = ws.notifications_enabled, "portal switches changed");
    portal_view(&state, &ws, portal.session.return_url.clone())
        .await
        .map(Json)
}

/// The seed's "Regenerate": new credentials for the workspace's client (created on first
/// use). The secret is in this answer only.
async fn regenerate_credentials(
    portal: Portal,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let ws = &portal.workspace;
    crate::auth::extract::check_integration(&state, ws)?;
    let secret = secret::random_token();
    let hash = secret::hash(secret.expose());
    let now = state.clock.now_ms();
    let existing = state.store.client_list(&ws.id, None, 1).await?.items;
    let client = match existing.first() {
        Some(c) => {
            state
                .store
                .client_regenerate(&ws.id, &c.client_id, &hash, now)
                .await?
        }
        None => {
            let c = IntegrationClient {
                client_id: tidings_core::ids::client_id(),
                workspace_id: ws.id.clone(),
                name: "portal".into(),
                secret_hash: hash,
                generation: 1,
                created_at: now,
                regenerated_at: None,
            };
            state.store.client_create(&c).await?;
            c
        }
    };
    tracing::info!(workspace = %ws.id, client_id = %client.client_id, generation = client.generation, "credentials regenerated in the portal");
    Ok(Json(client_view(&client, Some(secret.expose()))))
}

pub fn routes() -> Routes {
    Routes::new()
        .add(
            Op::new(
                "post",
                "/v1/admin/workspaces/{id}/portal-sessions",
                "operator",
                Auth::Operator,
                "Open a one-time portal link for a workspace (docs/console.md)",
            )
            .optional_body::<PortalSessionInput>()
            .returns::<PortalSessionView>(201, "The link and when it expires"),
            post(create_portal_session),
        )
        .add(
            Op::new(
                "get",
                "/v1/portal/workspace",
                "portal",
                Auth::Portal,
                "The portal session's workspace, plan, clients and children",
            )
            .returns::<PortalWorkspaceView>(200, "The workspace"),
            get(get_workspace),
        )
        .add(
            Op::new(
                "patch",
                "/v1/portal/workspace",
                "portal",
                Auth::Portal,
                "Turn integration or event notifications on or off",
            )
            .body::<PortalSwitches>()
            .returns::<PortalWorkspaceView>(200, "The workspace"),
            axum::routing::patch(patch_workspace),
        )
        .add(
            Op::new(
                "post",
                "/v1/portal/credentials",
                "portal",
                Auth::Portal,
                "Regenerate the workspace's client credentials (created on first use)",
            )
            .returns::<Value>(200, "The client id and its new secret, shown once"),
            post(regenerate_credentials),
        )
}

//! The operator side: workspaces, their clients, the event-type catalog, publishing, and the
//! master key. Needs a client made with [`Client::operator`].

use futures::stream::BoxStream;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    Client, ClientCredentials, EventType, NewEvent, Page, Published, Result, Workspace,
    WorkspaceInput, seg,
};

impl Client {
    /// Creates a workspace (`input.id` is required here).
    pub async fn create_workspace(&self, input: &WorkspaceInput) -> Result<Workspace> {
        self.call(Method::POST, "/v1/admin/workspaces", Some(input))
            .await
    }

    /// Every workspace.
    pub fn workspaces(&self) -> BoxStream<'static, Result<Workspace>> {
        self.stream("/v1/admin/workspaces".into(), Vec::new())
    }

    pub async fn workspace(&self, id: &str) -> Result<Workspace> {
        self.call::<_, ()>(
            Method::GET,
            &format!("/v1/admin/workspaces/{}", seg(id)),
            None,
        )
        .await
    }

    /// Changes the fields of `patch` (a JSON object of workspace fields).
    pub async fn update_workspace(&self, id: &str, patch: &Value) -> Result<Workspace> {
        self.call(
            Method::PATCH,
            &format!("/v1/admin/workspaces/{}", seg(id)),
            Some(patch),
        )
        .await
    }

    pub async fn delete_workspace(&self, id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &format!("/v1/admin/workspaces/{}", seg(id)))
            .await
    }

    /// New client credentials of a workspace; the answer holds the secret, shown only here.
    pub async fn create_client(&self, workspace: &str, name: &str) -> Result<ClientCredentials> {
        self.call(
            Method::POST,
            &format!("/v1/admin/workspaces/{}/clients", seg(workspace)),
            Some(&json!({ "name": name })),
        )
        .await
    }

    /// A workspace's clients (without secrets).
    pub fn clients(&self, workspace: &str) -> BoxStream<'static, Result<ClientCredentials>> {
        self.stream(
            format!("/v1/admin/workspaces/{}/clients", seg(workspace)),
            Vec::new(),
        )
    }

    /// A new secret for a client; its older tokens stop working.
    pub async fn regenerate_client(
        &self,
        workspace: &str,
        client_id: &str,
    ) -> Result<ClientCredentials> {
        self.call::<_, ()>(
            Method::POST,
            &format!(
                "/v1/admin/workspaces/{}/clients/{}/regenerate",
                seg(workspace),
                seg(client_id)
            ),
            None,
        )
        .await
    }

    pub async fn delete_client(&self, workspace: &str, client_id: &str) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!(
                "/v1/admin/workspaces/{}/clients/{}",
                seg(workspace),
                seg(client_id)
            ),
        )
        .await
    }

    /// Adds an event type to the catalog: `body` has `name` and optionally `description`,
    /// `sample`, `schema`, `statusPath`.
    pub async fn create_event_type(&self, body: &Value) -> Result<EventType> {
        self.call(Method::POST, "/v1/admin/event-types", Some(body))
            .await
    }

    /// The catalog (as the operator sees it; integrators use [`Client::catalog`]).
    pub fn event_types(&self) -> BoxStream<'static, Result<EventType>> {
        self.stream("/v1/admin/event-types".into(), Vec::new())
    }

    pub async fn event_type(&self, name: &str) -> Result<EventType> {
        self.call::<_, ()>(
            Method::GET,
            &format!("/v1/admin/event-types/{}", seg(name)),
            None,
        )
        .await
    }

    /// Replaces an event type's description, sample, schema and status path.
    pub async fn replace_event_type(&self, name: &str, body: &Value) -> Result<EventType> {
        self.call(
            Method::PUT,
            &format!("/v1/admin/event-types/{}", seg(name)),
            Some(body),
        )
        .await
    }

    pub async fn delete_event_type(&self, name: &str) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/v1/admin/event-types/{}", seg(name)),
        )
        .await
    }

    /// Publishes an event: answered once it and its deliveries are durable.
    pub async fn publish(&self, event: &NewEvent) -> Result<Published> {
        self.call(Method::POST, "/v1/events", Some(event)).await
    }

    /// Publishes up to 1000 events in one commit; outcomes in order.
    pub async fn publish_batch(&self, events: &[NewEvent]) -> Result<Vec<Published>> {
        let page: Page<Published> = self
            .call(
                Method::POST,
                "/v1/events/batch",
                Some(&json!({ "events": events })),
            )
            .await?;
        Ok(page.data)
    }

    /// An event with its deliveries.
    pub async fn event(&self, id: &str) -> Result<Value> {
        self.call::<_, ()>(Method::GET, &format!("/v1/events/{}", seg(id)), None)
            .await
    }

    /// Events, newest first; `filters` are `workspaceId`, `type`, `since`, `until`.
    pub fn events(&self, filters: &[(&'static str, String)]) -> BoxStream<'static, Result<Value>> {
        self.stream("/v1/admin/events".into(), filters.to_vec())
    }

    /// Rotates the master key of a key-file setup (409 when it comes from the environment).
    pub async fn rotate_master_key(&self) -> Result<Value> {
        self.call::<_, ()>(Method::POST, "/v1/admin/master-key/rotate", None)
            .await
    }
}

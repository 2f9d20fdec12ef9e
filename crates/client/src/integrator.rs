//! The integrator side: the catalog, webhooks, deliveries and the emulator. Needs a client
//! made with [`Client::integrator`]; every call acts on its workspace.

use futures::stream::BoxStream;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Client, Delivery, EventType, Replayed, Result, Webhook, WebhookInput, seg};

impl Client {
    /// The event types a webhook can subscribe to, with samples.
    pub fn catalog(&self) -> BoxStream<'static, Result<EventType>> {
        self.stream("/v1/event-types".into(), Vec::new())
    }

    pub async fn create_webhook(&self, input: &WebhookInput) -> Result<Webhook> {
        self.call(Method::POST, "/v1/settings/webhooks", Some(input))
            .await
    }

    /// The workspace's webhooks.
    pub fn webhooks(&self) -> BoxStream<'static, Result<Webhook>> {
        self.stream("/v1/settings/webhooks".into(), Vec::new())
    }

    pub async fn webhook(&self, id: &str) -> Result<Webhook> {
        self.call::<_, ()>(Method::GET, &webhook_path(id, ""), None)
            .await
    }

    /// Changes the fields set in `input` (`PATCH`).
    pub async fn update_webhook(&self, id: &str, input: &WebhookInput) -> Result<Webhook> {
        self.call(Method::PATCH, &webhook_path(id, ""), Some(input))
            .await
    }

    /// Deletes a webhook; its pending deliveries are cancelled.
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &webhook_path(id, "")).await
    }

    /// A new signing secret (`secret`, or a generated one); the previous one keeps signing for
    /// 24 hours.
    pub async fn rotate_webhook_secret(&self, id: &str, secret: Option<&str>) -> Result<Webhook> {
        let body = secret.map_or_else(|| json!({}), |s| json!({ "secret": s }));
        self.call(
            Method::POST,
            &webhook_path(id, "/secret/rotate"),
            Some(&body),
        )
        .await
    }

    /// Sends one notification now (the emulator) and reports what was sent and answered.
    /// `body` may name `type`, `data`, `branchId`, `businessUnitId`.
    pub async fn test_webhook(&self, id: &str, body: &Value) -> Result<Value> {
        self.call(Method::POST, &webhook_path(id, "/test"), Some(body))
            .await
    }

    /// Re-sends the failed deliveries created since `since` (RFC 3339), until `until`.
    pub async fn replay(&self, id: &str, since: &str, until: Option<&str>) -> Result<Replayed> {
        let mut body = json!({ "since": since });
        if let Some(u) = until {
            body["until"] = json!(u);
        }
        self.call(Method::POST, &webhook_path(id, "/replay"), Some(&body))
            .await
    }

    /// A webhook's deliveries, newest first; `state` filters (`pending`, `succeeded`,
    /// `failed`).
    pub fn deliveries(
        &self,
        webhook: &str,
        state: Option<&str>,
    ) -> BoxStream<'static, Result<Delivery>> {
        let query = state
            .map(|s| vec![("state", s.to_string())])
            .unwrap_or_default();
        self.stream(webhook_path(webhook, "/deliveries"), query)
    }

    /// One page of a webhook's deliveries, newest first (what `deliveries tail` polls).
    pub async fn deliveries_page(
        &self,
        webhook: &str,
        cursor: Option<&str>,
    ) -> Result<crate::Page<Delivery>> {
        self.page(&webhook_path(webhook, "/deliveries"), &[], cursor)
            .await
    }

    /// A delivery with its attempts.
    pub async fn delivery(&self, id: &str) -> Result<Delivery> {
        self.call::<_, ()>(Method::GET, &format!("/v1/deliveries/{}", seg(id)), None)
            .await
    }

    /// Sends a delivery again now, whatever its state.
    pub async fn retry_delivery(&self, id: &str) -> Result<Delivery> {
        self.call::<_, ()>(
            Method::POST,
            &format!("/v1/deliveries/{}/retry", seg(id)),
            None,
        )
        .await
    }
}

fn webhook_path(id: &str, rest: &str) -> String {
    format!("/v1/settings/webhooks/{}{rest}", seg(id))
}

//! The typed async client of the [Tidings](https://example.invalid/tidings) HTTP API: the
//! operator side (workspaces, clients, event types, events) with the operator key, and the
//! integrator side (webhooks, deliveries, the emulator) with OAuth client credentials, whose
//! access token it fetches and renews by itself.
//!
//! Errors are typed: an answer that is not a success is an [`Error::Api`] carrying the API's
//! `code`, `message` and field `details`. Lists come as a [`Stream`](futures::Stream) of every
//! item, read page by page as it is consumed.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use tidings_client::{Client, NewEvent, WebhookInput};
//!
//! # async fn run() -> Result<(), tidings_client::Error> {
//! // The operator publishes an event for a workspace.
//! let operator = Client::operator("http://127.0.0.1:8080", "my-operator-key")?;
//! let outcome = operator
//!     .publish(&NewEvent {
//!         kind: "invoice.paid".into(),
//!         workspace_id: "acme".into(),
//!         data: serde_json::json!({"amount": 42}),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("event {} → {} deliveries", outcome.id, outcome.deliveries);
//!
//! // An integrator configures a webhook and reads its deliveries.
//! let integrator = Client::integrator("http://127.0.0.1:8080", "client-id", "client-secret", "acme")?;
//! let webhook = integrator
//!     .create_webhook(&WebhookInput {
//!         url: Some("https://example.com/hooks".into()),
//!         triggers: Some(vec!["invoice.paid".into()]),
//!         status: Some("enabled".into()),
//!         apply_to_all_descendants: Some(false),
//!         ..Default::default()
//!     })
//!     .await?;
//! let deliveries: Vec<_> = integrator.deliveries(&webhook.id, None).try_collect().await?;
//! println!("{} deliveries so far", deliveries.len());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod error;
mod integrator;
mod listen;
mod operator;
mod token;
mod types;

use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{Error, FieldError, Result};
pub use listen::{ListenEvent, ListenSession, LocalAnswer, Notification};
pub use types::*;

/// Who the client acts as.
#[derive(Clone)]
enum Credentials {
    Operator(String),
    Integrator {
        tokens: std::sync::Arc<token::Tokens>,
        workspace: String,
    },
}

/// A client of one Tidings server. Cheap to clone; clones share connections and the access
/// token.
#[derive(Clone)]
pub struct Client {
    base: url::Url,
    http: reqwest::Client,
    credentials: Credentials,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.credentials {
            Credentials::Operator(_) => "operator".to_string(),
            Credentials::Integrator { workspace, .. } => format!("integrator of {workspace}"),
        };
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("as", &who)
            .finish()
    }
}

fn parse_base(base: &str) -> Result<url::Url> {
    let mut url = url::Url::parse(base)
        .map_err(|e| Error::Config(format!("invalid server URL '{base}': {e}")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "invalid server URL '{base}': use http(s)://host[:port]"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// How long one request may take (a listen stream is not one request: it may stay open, as
/// long as bytes keep arriving within [`READ_TIMEOUT`]).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("tidings-client/", env!("CARGO_PKG_VERSION")))
        .read_timeout(READ_TIMEOUT)
        .build()
        .expect("an HTTP client with default TLS settings")
}

impl Client {
    /// A client acting as the operator, with the operator API key.
    pub fn operator(base: &str, key: &str) -> Result<Self> {
        Ok(Self {
            base: parse_base(base)?,
            http: http(),
            credentials: Credentials::Operator(key.to_string()),
        })
    }

    /// A client acting as an integrator of `workspace` (its own workspace or one of its
    /// descendants), with its client credentials. The access token is fetched on first use
    /// and renewed before it expires.
    pub fn integrator(base: &str, client_id: &str, secret: &str, workspace: &str) -> Result<Self> {
        let base = parse_base(base)?;
        Ok(Self {
            credentials: Credentials::Integrator {
                tokens: std::sync::Arc::new(token::Tokens::new(
                    base.join("oauth/token")
                        .map_err(|e| Error::Config(e.to_string()))?,
                    client_id,
                    secret,
                )),
                workspace: workspace.to_string(),
            },
            base,
            http: http(),
        })
    }

    /// The same credentials acting on another workspace (an integrator's descendant).
    pub fn for_workspace(&self, workspace: &str) -> Self {
        let mut c = self.clone();
        if let Credentials::Integrator { workspace: w, .. } = &mut c.credentials {
            *w = workspace.to_string();
        }
        c
    }

    fn url(&self, path: &str) -> Result<url::Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Config(format!("invalid path {path}: {e}")))
    }

    async fn authorized(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder> {
        let req = self.http.request(method, self.url(path)?);
        Ok(match &self.credentials {
            Credentials::Operator(key) => req.bearer_auth(key),
            Credentials::Integrator { tokens, workspace } => req
                .bearer_auth(tokens.get(&self.http).await?)
                .header("Workspace", workspace),
        })
    }

    /// Sends a request and reads a JSON answer (`None` for `204 No Content`). An integrator's
    /// request refused with 401 is sent once more with a fresh token (its client may have been
    /// regenerated since the token was issued).
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Option<serde_json::Value>> {
        for attempt in 0..2 {
            let mut req = self
                .authorized(method.clone(), path)
                .await?
                .query(query)
                .timeout(REQUEST_TIMEOUT);
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = req.send().await?;
            if r.status() == reqwest::StatusCode::UNAUTHORIZED
                && attempt == 0
                && let Credentials::Integrator { tokens, .. } = &self.credentials
            {
                tokens.forget();
                continue;
            }
            if !r.status().is_success() {
                return Err(error::from_response(r).await);
            }
            if r.status() == reqwest::StatusCode::NO_CONTENT {
                return Ok(None);
            }
            let status = r.status().as_u16();
            let text = r.text().await?;
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Unexpected {
                    status,
                    detail: format!("not JSON: {e}"),
                });
        }
        unreachable!("the loop returns on its second pass")
    }

    /// A JSON answer as `T`.
    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let value = self.send(method, path, &[], body).await?;
        decode(value.unwrap_or(serde_json::Value::Null))
    }

    /// A request whose answer has no body (`204`).
    async fn call_empty(&self, method: reqwest::Method, path: &str) -> Result<()> {
        self.send::<()>(method, path, &[], None).await.map(|_| ())
    }

    /// One page of a list.
    async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        cursor: Option<&str>,
    ) -> Result<Page<T>> {
        let mut q = query.to_vec();
        q.push(("limit", "100".into()));
        if let Some(c) = cursor {
            q.push(("cursor", c.to_string()));
        }
        let value = self
            .send::<()>(reqwest::Method::GET, path, &q, None)
            .await?
            .unwrap_or_default();
        decode(value)
    }

    /// Every item of a list, page after page, as it is read.
    fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
        query: Vec<(&'static str, String)>,
    ) -> BoxStream<'static, Result<T>> {
        let client = self.clone();
        let pages = futures::stream::try_unfold(Some(None::<String>), move |cursor| {
            let client = client.clone();
            let path = path.clone();
            let query = query.clone();
            async move {
                let Some(cursor) = cursor else {
                    return Ok::<_, Error>(None);
                };
                let page: Page<T> = client.page(&path, &query, cursor.as_deref()).await?;
                let next = page.next_cursor.map(Some);
                Ok(Some((
                    futures::stream::iter(page.data.into_iter().map(Ok)),
                    next,
                )))
            }
        });
        futures::StreamExt::boxed(futures::TryStreamExt::try_flatten(pages))
    }

    /// Drops an integrator's cached access token (the API refused it).
    fn forget_token(&self) {
        if let Credentials::Integrator { tokens, .. } = &self.credentials {
            tokens.forget();
        }
    }

    /// `GET` of any path as JSON, for what this client has no method for yet.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        self.call::<serde_json::Value, ()>(reqwest::Method::GET, path, None)
            .await
    }
}

fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Unexpected {
        status: 200,
        detail: format!("the answer does not have the documented shape: {e}"),
    })
}

/// A path segment, percent-encoded (ids come from users).
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
